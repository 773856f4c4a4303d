/* reply: an HTTP/1.1 response formatted whole into one buffer (status
 * line, Date, Server, Content-Type, Content-Length, Connection, the
 * caller's extra headers, body), so that a connection sends it with one
 * write; and the pieces of it that other replies reuse (reason phrases,
 * the date, decimal numbers). printf-free: replies are on the hot path. */
#ifndef TURNSTILE_REPLY_H
#define TURNSTILE_REPLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* The interim reply to "Expect: 100-continue" (RFC 9110 15.2.1): a status
 * line and nothing else. reply_format() gives the same for status 100. */
#define REPLY_CONTINUE     "HTTP/1.1 100 Continue\r\n\r\n"
#define REPLY_CONTINUE_LEN (sizeof(REPLY_CONTINUE) - 1)

struct reply {
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
 * length, or 0 if cap is too small or the status is not three digits. A 1xx
 * reply is its status line and extra_headers only; a 1xx or 204 reply never
 * has a body, nor a HEAD reply (whose Content-Length stays that of the body
 * a GET would get). */
size_t reply_format(char *buf, size_t cap, const struct reply *r);

/* Writes v in decimal at dst (room for 20 digits); returns the length. */
size_t reply_u64(char *dst, uint64_t v);

/* The reason phrase of a status, "" for one we never send. */
const char *reply_reason(int status);

/* IMF-fixdate of now ("Sun, 06 Nov 1994 08:49:37 GMT", REPLY_DATE_LEN chars)
 * from a per-thread one-entry cache, rebuilt only when the second changes:
 * the pointer never changes, the text until a call with another second. */
const char *reply_date(time_t now);

#define REPLY_DATE_LEN 29

#endif
