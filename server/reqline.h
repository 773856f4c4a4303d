/* reqline: the request line's strict form, checked byte by byte beside
 * llhttp, which in loose mode (Debian's llhttp 8.1) lets through what we
 * must refuse: a bare LF, HTTP/0.9 lines without a version, several
 * spaces, "RTSP/1.0" and "ICE/1.0". A few bytes of state, no copy: the
 * verdict is the same however the line is split across reads. */
#ifndef TURNSTILE_REQLINE_H
#define TURNSTILE_REQLINE_H

#include <stdbool.h>
#include <stddef.h>

/* RFC 9112 3: method SP request-target SP HTTP-version CRLF, one SP each. */
enum reqline_state {
    REQLINE_START, /* empty lines before a request are skipped (RFC 9112 2.2) */
    REQLINE_METHOD,
    REQLINE_TARGET0, /* the target's first byte */
    REQLINE_TARGET,
    REQLINE_PROTO, /* "HTTP/", idx bytes of it so far */
    REQLINE_MAJOR,
    REQLINE_DOT,
    REQLINE_MINOR,
    REQLINE_CR,
    REQLINE_LF,
    REQLINE_DONE,
    REQLINE_BAD,
};

/* Zeroed: before a request's first byte. */
struct reqline {
    unsigned char state; /* enum reqline_state */
    unsigned char idx;   /* bytes of "HTTP/" matched */
    char major;          /* the version's major digit, from REQLINE_DOT on */
};

/* Takes one byte; returns the new state (REQLINE_DONE and REQLINE_BAD are
 * final: further bytes change nothing). */
enum reqline_state reqline_step(struct reqline *l, unsigned char c);

/* reqline_step() over s[0..n), with fast paths for the bytes that change
 * no state; stops at the end of the line. Returns false once the line is
 * malformed. Past the line it costs one comparison per call. */
bool reqline_scan(struct reqline *l, const char *s, size_t n);

#endif
