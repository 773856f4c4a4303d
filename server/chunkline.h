/* chunkline: the blanks before a chunk extension ("5 ;a=b"), which RFC
 * 9112 7.1.1 allows (BWS before ';') and llhttp 8.1 refuses ("Invalid
 * character in chunk size") whatever its lenient flags say. A chunked
 * body's bytes pass through chunkline_pass() on their way to llhttp: in a
 * chunk-size line, the blanks between the size and its ';' are held back
 * from llhttp, and blanks followed by anything but ';' make the line bad,
 * so "5 5" is never read as 0x55. One byte of state, no copy: the verdict
 * is the same however the line is split across reads. */
#ifndef TURNSTILE_CHUNKLINE_H
#define TURNSTILE_CHUNKLINE_H

#include <stddef.h>

enum chunkline_state {
    CHUNKLINE_OUT,  /* not in a chunk size: every byte goes to llhttp */
    CHUNKLINE_SIZE, /* in a chunk size's hex digits */
    CHUNKLINE_BWS,  /* blanks after the size: only more of them or ';' may follow */
    CHUNKLINE_BAD,  /* blanks followed by something else: refuse the request */
};

/* Zeroed: CHUNKLINE_OUT. */
struct chunkline {
    unsigned char state; /* enum chunkline_state */
};

/* The next byte begins a chunk-size line. */
void chunkline_start(struct chunkline *c);

/* How many of s[0..n) go to llhttp as they are. Fewer than n means s[ret]
 * does not: in state CHUNKLINE_BWS it is a blank to drop, in state
 * CHUNKLINE_BAD the byte that makes the line malformed (400). Outside a
 * size line it returns n at once. */
size_t chunkline_pass(struct chunkline *c, const char *s, size_t n);

#endif
