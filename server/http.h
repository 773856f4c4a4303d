/* http: an allocation-free HTTP/1.1 request parser for one connection, a
 * thin wrapper around llhttp (replies: reply.h).
 *
 * The parser copies what the routes need (method, normalised path, version,
 * keep-alive, the 100-continue expectation) into struct http_request, so the
 * caller may compact or reuse its read buffer between calls. Bodies are
 * counted and discarded. Every limit and every verdict is the same however
 * the bytes are split across calls: a client that sends one byte at a time
 * meets the same 400/413/414/417/431/501/505 as one that sends everything at
 * once. */
#ifndef TURNSTILE_HTTP_H
#define TURNSTILE_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <llhttp.h>

#include "chunkline.h"
#include "fields.h"
#include "reqline.h"

/* Longest path kept in struct http_request. Longer paths (still within
 * max_url) are truncated and flagged, and no route matches them. */
#define HTTP_MAX_PATH 256

struct http_limits {
    size_t max_header_bytes; /* request line + headers; more is 431 */
    size_t max_url;          /* request target alone; more is 414 (wins over 431) */
    unsigned max_headers;    /* header (and trailer) fields; more is 431 */
    uint64_t max_body;       /* Content-Length or chunked total; more is 413 */
};

/* After nginx and h2o: 8 KiB of head, a URL may use all of it, 100 fields,
 * 1 MiB of body. */
#define HTTP_LIMITS_DEFAULT                                                                        \
    {                                                                                              \
        .max_header_bytes = 8192, .max_url = 8192, .max_headers = 100, .max_body = 1024 * 1024     \
    }

/* Valid from head_done on (body_bytes and keep_alive: from complete on). */
struct http_request {
    int method; /* llhttp_method_t; HEAD parses like GET */
    /* NUL-terminated, without query or fragment. An origin-form path is
     * normalised (RFC 3986 6.2.2): %XX of an unreserved character decoded,
     * other %XX kept with upper-case digits (so %2F never becomes a
     * separator), "." and ".." segments removed. Absolute-form
     * ("http://host/p") keeps only its path; any other form is kept as sent. */
    char path[HTTP_MAX_PATH + 1];
    size_t path_len;
    bool path_truncated; /* path was longer than HTTP_MAX_PATH */
    /* The target was "*" (asterisk-form, RFC 9112 3.2.4), which names the
     * server itself: on an OPTIONS request only (path is "*" then too). */
    bool asterisk;
    unsigned char major, minor; /* 1.0 or 1.1; 1.2 and up are read as 1.1 */
    bool keep_alive;            /* the connection may serve another request */
    /* "Expect: 100-continue" on an HTTP/1.1 request that has a body: the
     * client may wait for "100 Continue" before sending it. See
     * http_parser_continue_due(). */
    bool expect_continue;
    /* Idempotency-Key (fields.h has its syntax): idem_len > 0, the key in
     * idem_key (not NUL-terminated); idem_bad, one that is not a key, or
     * two: only GET /access reads them. */
    bool idem_bad;
    unsigned char idem_len;
    char idem_key[FIELDS_IDEM_MAX];
    uint64_t body_bytes; /* body bytes seen (and discarded) */
};

struct http_parser {
    llhttp_t llhttp;
    struct http_limits limits;
    struct http_request req;
    int error_status;           /* != 0: reply with this status and close */
    bool head_done;             /* request line and headers parsed: req's head fields are final */
    bool complete;              /* req holds one whole request; call http_parser_next() */
    struct {                    /* per request, see http.c; zeroed by http_parser_next() */
        struct reqline line;    /* the request line's strict form */
        bool line_only;         /* llhttp gave up on the method: we read the line */
        unsigned char target;   /* request-target form: enum target_state */
        unsigned char pct;      /* hex digits of a %XX in the path seen so far */
        unsigned char pct_hi;   /* the value of the first one */
        uint16_t seg;           /* where the path's last segment starts */
        bool path_done;         /* '?' or '#' seen: the rest of the target is ignored */
        bool url_open;          /* inside the request target */
        bool lf_pending;        /* last head byte was LF: the next must not fold */
        char prev;              /* last head byte fed so far */
        struct fields fields;   /* Host, Expect, Transfer-Encoding */
        bool continue_sent;     /* see http_parser_continue_sent() */
        size_t head_bytes;      /* request line + headers so far */
        size_t url_bytes;       /* request target so far */
        size_t field_len;       /* current header name so far */
        unsigned nheaders;      /* header and trailer fields so far */
        uint64_t body_wire;     /* bytes after the head: data plus chunk framing */
        uint64_t chunk_total;   /* declared chunk sizes so far */
        struct chunkline chunk; /* where in a chunk-size line */
    } st;
};

/* Prepares p for a new connection; limits NULL means HTTP_LIMITS_DEFAULT. */
void http_parser_init(struct http_parser *p, const struct http_limits *limits);

/* Feeds len bytes and returns how many were consumed. Afterwards exactly one
 * of: p->complete (one whole request parsed; bytes after it were not
 * consumed), p->error_status != 0 (reply and close), or neither (all bytes
 * consumed, more are needed). Once complete or failed, further calls
 * consume nothing. The error statuses:
 *  400  malformed request line, header or chunk; HTTP/0.9 (as soon as its
 *       line ends); the target "*" with a method other than OPTIONS;
 *       HTTP/1.1 without Host; two Host fields; a Host that is
 *       not host[:port] (reg-name, IPv4 or [IPv6]); a bad %XX, %00 or ".."
 *       above the root in the path; Transfer-Encoding on HTTP/1.0 or without
 *       chunked last; CL + TE; obs-fold; bare LF; spaces in field names
 *  413  Content-Length or chunk sizes over max_body (before the body is read)
 *  414  request target over max_url
 *  417  an expectation other than 100-continue
 *  431  head over max_header_bytes or max_headers
 *  501  a method llhttp does not know (on a well-formed request line), or
 *       a transfer coding other than chunked ("gzip, chunked")
 *  505  a major version other than 1 */
size_t http_parse(struct http_parser *p, const char *data, size_t len);

/* Forgets the complete request and readies p for the next pipelined one.
 * Only after a keep-alive request: otherwise llhttp ignores what follows,
 * and the caller must close instead. */
void http_parser_next(struct http_parser *p);

/* True when the client waits for "100 Continue" (REPLY_CONTINUE) before
 * sending the body: the head of a request with expect_continue is parsed,
 * the request is neither complete nor failed, and http_parser_continue_sent()
 * was not called. The caller sends REPLY_CONTINUE and goes on reading, or
 * sends the final status at once (404, 405) without reading the body, and
 * then closes (RFC 9110 10.1.1). Parsing does not stop for it. */
bool http_parser_continue_due(const struct http_parser *p);

/* Records that the expectation was answered (until http_parser_next()). */
void http_parser_continue_sent(struct http_parser *p);

/* True while no byte of the next request has arrived (keep-alive idle, as
 * opposed to a header in progress). */
bool http_parser_idle(const struct http_parser *p);

#endif
