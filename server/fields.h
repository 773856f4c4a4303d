/* fields: the header fields a request's head is judged by, read as their
 * bytes arrive beside llhttp: Host (one, and a valid host[:port]), Expect
 * (100-continue or nothing), Transfer-Encoding (chunked, last), and
 * Idempotency-Key (the one field copied: its value is a key). Any
 * other field is ruled out at its first byte or so and costs nothing more.
 * The state is a few bytes and no copy of a field, so every verdict is the
 * same however the head is split across reads.
 *
 * http.c calls these from llhttp's callbacks, in the order llhttp meets
 * the pieces: fields_name() for each piece of a name, fields_name_end(),
 * fields_value() for each piece of its value, fields_value_end(); and, once
 * the head is whole, fields_verdict(). */
#ifndef TURNSTILE_FIELDS_H
#define TURNSTILE_FIELDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <llhttp.h>

/* Idempotency-Key (IETF httpapi draft): an sf-string, "..." holding 1 to
 * FIELDS_IDEM_MAX visible ASCII characters other than '"' and '\' (no
 * escapes), or, as nginx's $request_id is sent, the same length of bare
 * [A-Za-z0-9._~-]. The key is what lies between the quotes. */
#define FIELDS_IDEM_MAX 64

/* Zeroed: before a request's first field. Only expect_continue and the
 * idem_ fields are for the caller to read. */
struct fields {
    unsigned char field;            /* the field being read: enum field (fields.c) */
    unsigned char name_len;         /* its name so far, while it may match */
    unsigned char name_cand;        /* the field it may still be */
    unsigned char host;             /* Host value check: enum host_state */
    unsigned char hosts;            /* Host fields so far */
    unsigned char te_fields;        /* Transfer-Encoding fields so far */
    unsigned char v6_len;           /* bytes in v6 */
    char v6[46];                    /* an IPv6 literal in Host, for inet_pton */
    unsigned char member_len;       /* list member so far (saturates) */
    bool member_miss;               /* it is not the member we look for */
    bool member_ws;                 /* whitespace after its token */
    bool expect_continue;           /* Expect holds 100-continue */
    bool expect_other;              /* Expect holds another expectation: 417 */
    bool te_other;                  /* a transfer coding other than chunked: 501 */
    bool idem_bad;                  /* an Idempotency-Key that is not one, or two of them */
    unsigned char idem_fields;      /* Idempotency-Key fields so far (saturates) */
    unsigned char idem_len;         /* its value's bytes kept in idem; then the key's */
    bool idem_long;                 /* more than idem holds (beyond trailing whitespace) */
    char idem[FIELDS_IDEM_MAX + 2]; /* the value, quotes included; then the key */
};

/* Another piece of a field's name (llhttp has refused what is no token). */
void fields_name(struct fields *f, const char *at, size_t n);

/* The name is whole. A trailer (after a chunked body) is read as no field:
 * it is discarded. Returns 0, or 400 for a second Host (RFC 9112 3.2). */
int fields_name_end(struct fields *f, bool trailer);

/* Another piece of the field's value. Returns 0, or 400 when the bytes so
 * far cannot begin a valid Host. */
int fields_value(struct fields *f, const char *at, size_t n);

/* The value is whole. Returns 0, or 400 for an invalid (or empty) Host.
 * A bad Idempotency-Key is no 400 here: only /access reads it (idem_bad),
 * the other routes ignore it. */
int fields_value_end(struct fields *f);

/* What is wrong with a head llhttp accepted (h after its headers), in
 * order of precedence: 400 for HTTP/1.1 without Host, or a
 * Transfer-Encoding on HTTP/1.0 or without chunked last; 501 for a coding
 * other than chunked; 417 for an expectation other than 100-continue; 413
 * for a Content-Length over max_body. 0 when nothing is. */
int fields_verdict(const struct fields *f, const llhttp_t *h, uint64_t max_body);

#endif
