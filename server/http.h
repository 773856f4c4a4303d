/* http: an allocation-free HTTP/1.1 request parser (a thin wrapper around
 * llhttp) and reply formatter for one connection.
 *
 * The parser copies what the routes need (method, path, version, keep-alive)
 * into struct http_request, so the caller may compact or reuse its read
 * buffer between calls. Bodies are counted and discarded. Every limit is
 * enforced across calls: a client that sends one byte at a time meets the
 * same 414/431/413 as one that sends everything at once. */
#ifndef TURNSTILE_HTTP_H
#define TURNSTILE_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <llhttp.h>

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

struct http_request {
    int method;                   /* llhttp_method_t */
    char path[HTTP_MAX_PATH + 1]; /* NUL-terminated, without query or fragment */
    size_t path_len;
    bool path_truncated;        /* path was longer than HTTP_MAX_PATH */
    unsigned char major, minor; /* always 1.0 or 1.1 on a complete request */
    bool keep_alive;            /* the connection may serve another request */
    uint64_t body_bytes;        /* body bytes seen (and discarded) */
};

struct http_parser {
    llhttp_t llhttp;
    struct http_limits limits;
    struct http_request req;
    int error_status;         /* != 0: reply with this status and close */
    bool complete;            /* req holds one whole request; call http_parser_next() */
    struct {                  /* per request, see http.c; zeroed by http_parser_next() */
        bool head_done;       /* request line and headers parsed */
        bool url_open;        /* inside the request target */
        bool path_done;       /* '?' or '#' seen: the rest of the target is ignored */
        bool lf_pending;      /* last head byte was LF: the next must not fold */
        char prev;            /* last head byte fed so far */
        bool version_done;    /* llhttp accepted the version's syntax */
        char version[3];      /* "D.D" as sent, to tell 505 from 400 */
        size_t version_len;   /* all version bytes, even past version[] */
        size_t head_bytes;    /* request line + headers so far */
        size_t url_bytes;     /* request target so far */
        size_t field_len;     /* current header name so far */
        unsigned nheaders;    /* header and trailer fields so far */
        uint64_t body_wire;   /* bytes after the head: data plus chunk framing */
        uint64_t chunk_total; /* declared chunk sizes so far */
    } st;
};

/* Prepares p for a new connection; limits NULL means HTTP_LIMITS_DEFAULT. */
void http_parser_init(struct http_parser *p, const struct http_limits *limits);

/* Feeds len bytes and returns how many were consumed. Afterwards exactly one
 * of: p->complete (one whole request parsed; bytes after it were not
 * consumed), p->error_status != 0 (400, 413, 414, 431 or 505: reply and
 * close), or neither (all bytes consumed, more are needed). Once complete or
 * failed, further calls consume nothing. */
size_t http_parse(struct http_parser *p, const char *data, size_t len);

/* Forgets the complete request and readies p for the next pipelined one.
 * Only after a keep-alive request: otherwise llhttp ignores what follows,
 * and the caller must close instead. */
void http_parser_next(struct http_parser *p);

/* True while no byte of the next request has arrived (keep-alive idle, as
 * opposed to a header in progress). */
bool http_parser_idle(const struct http_parser *p);

struct http_reply {
    int status;               /* 100..999 */
    const char *content_type; /* NULL: text/plain if there is a body */
    const char *body;         /* may be NULL when body_len is 0 */
    size_t body_len;
    const char *extra_headers; /* whole lines, e.g. "Allow: GET\r\n", or NULL */
    bool keep_alive;           /* false adds "Connection: close" */
    bool http10;               /* HTTP/1.0 client: keep-alive is announced */
    bool head;                 /* HEAD: headers only, Content-Length kept */
    bool stream;               /* a body that ends with the connection (server-sent
                                  events): no Content-Length, Connection: close */
    time_t now;                /* for Date; 0 means time(NULL) */
};

/* Formats a whole response (status line, Date, Server, Content-Type,
 * Content-Length, Connection, extra_headers, body) into buf; returns its
 * length, or 0 if cap is too small or the status is not three digits. */
size_t http_format_reply(char *buf, size_t cap, const struct http_reply *r);

/* Writes v in decimal at dst (room for 20 digits); returns the length.
 * printf-free: replies are on the hot path. */
size_t http_u64(char *dst, uint64_t v);

/* The reason phrase of a status, "" for one we never send. */
const char *http_reason(int status);

/* IMF-fixdate of now ("Sun, 06 Nov 1994 08:49:37 GMT", HTTP_DATE_LEN chars)
 * from a per-thread one-entry cache, rebuilt only when the second changes:
 * the pointer never changes, the text until a call with another second. */
const char *http_date(time_t now);

#define HTTP_DATE_LEN 29

#endif
