/* etcd_json: the gateway's JSON, read without building a tree.
 *
 * One strict pass over a length-bounded text (RFC 8259: objects, arrays,
 * strings with every escape, numbers, literals; UTF-8 checked; nesting at
 * most ETCD_JSON_MAX_DEPTH, a coroutine's stack being small) records one
 * token per value, in a flat array that is reused from one text to the
 * next. Values are then read in place: a member found by name (a name
 * given twice is a bad value, never a guess), arrays walked in order,
 * strings unescaped only when copied out, int64s as the gateway writes
 * them (decimal strings, numbers taken too). Anything malformed is an
 * error; nothing reads outside the text. No I/O, no loop.
 *
 * A value (struct etcd_jv) may be none (an absent member) or bad (a
 * member named twice, or a member asked of what is not an object): reads
 * of none give their zero, reads of a bad value -EIO, so lookups chain. */
#ifndef TURNSTILE_ETCD_JSON_H
#define TURNSTILE_ETCD_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ETCD_JSON_MAX_DEPTH 32 /* etcd's replies nest 6 deep */

enum etcd_json_type {
    ETCD_JSON_NONE, /* absent */
    ETCD_JSON_BAD,  /* see above */
    ETCD_JSON_OBJECT,
    ETCD_JSON_ARRAY,
    ETCD_JSON_STRING,
    ETCD_JSON_NUMBER,
    ETCD_JSON_TRUE,
    ETCD_JSON_FALSE,
    ETCD_JSON_NULL,
};

struct etcd_json_tok;

/* A parsed text. Zeroed, it holds nothing; the text is the caller's and
 * must not change while its values are read. */
struct etcd_json {
    const char *text;
    struct etcd_json_tok *tok;
    uint32_t n, cap;
};

/* A value of a parsed text, valid until it is parsed again or freed.
 * Zeroed, it is none. */
struct etcd_jv {
    const struct etcd_json *json;
    int32_t at; /* private */
};

/* Parses text (len bytes, no NUL needed): exactly one value, blanks
 * around it allowed. Returns 0, -EIO (not JSON, or deeper than allowed),
 * -ENOMEM. The tokens of an earlier text are reused, then forgotten. */
int etcd_json_parse(struct etcd_json *j, const char *text, size_t len);

/* Frees the tokens; j is zeroed. */
void etcd_json_free(struct etcd_json *j);

/* The top value (none if nothing was parsed). */
struct etcd_jv etcd_json_root(const struct etcd_json *j);

enum etcd_json_type etcd_json_type(struct etcd_jv v);

/* obj's member `name`: none if absent (or obj is none), bad if named twice
 * or obj is anything but an object. */
struct etcd_jv etcd_json_get(struct etcd_jv obj, const char *name);

/* An array's elements or an object's members; 0 for anything else. */
size_t etcd_json_count(struct etcd_jv v);

/* An array's first element, and the element after v: none at the end (and
 * for anything but an array). */
struct etcd_jv etcd_json_first(struct etcd_jv array);
struct etcd_jv etcd_json_next(struct etcd_jv v);

/* An int64: a number without fraction or exponent, or a string of one as
 * the gateway writes it ("-12"; no '+', no blanks). None gives 0. Returns
 * 0, or -EIO (another type, or past int64). */
int etcd_json_int(struct etcd_jv v, int64_t *out);

/* true or false; none gives false. Returns 0 or -EIO. */
int etcd_json_bool(struct etcd_jv v, bool *out);

/* A string, unescaped into buf (cap > 0 bytes, NUL-terminated, cut to
 * cap - 1 bytes): 0 with *len (if not NULL) its whole length, -ENOENT
 * (none) or -EIO (not a string) with buf "". */
int etcd_json_string(struct etcd_jv v, char *buf, size_t cap, size_t *len);

/* The bytes a buffer needs for etcd_json_string to copy v whole (its NUL
 * included); 1 for anything but a string. */
size_t etcd_json_string_cap(struct etcd_jv v);

/* True if v is a string equal to text. */
bool etcd_json_string_is(struct etcd_jv v, const char *text);

#endif
