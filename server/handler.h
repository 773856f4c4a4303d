/* handler: what a route handler sees and what it fills in. The routing
 * table (route.c) and the handlers (route.c, dashboard.c) sit below the
 * connection layer: a handler knows nothing of connections, only this
 * context, and a streaming handler writes through the narrow
 * struct handler_stream that the connection lends it. */
#ifndef TURNSTILE_HANDLER_H
#define TURNSTILE_HANDLER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tally.h"

struct resource;
struct grants;
struct http_request;
struct stats_source;

/* Everything a handler may use. Set up once by the server. */
struct handler_ctx {
    struct resource *resource;        /* the counter and its lock */
    struct tally_requests *tally;     /* counts a handler adds to (access) */
    struct grants *grants;            /* recent grants, for the dashboard */
    const struct stats_source *stats; /* for /stats, /metrics, /events */
    /* The public port when the internals have one of their own
     * (--admin-listen): only /access is routed here, the rest is 404. */
    bool access_only;
};

/* A connection lent to a streaming handler (server-sent events). */
struct handler_stream {
    /* Sends len bytes within timeout_ms; a negative errno when the client
     * left or reads too slowly (the stream should end then). */
    int (*write)(void *conn, const char *buf, size_t len, uint64_t timeout_ms);
    /* Sleeps between events; false when the stream should end (the client
     * hung up or the server is stopping). */
    bool (*pause)(void *conn, int64_t us);
    void *conn;
};

typedef void (*handler_stream_fn)(const struct handler_ctx *ctx, const struct handler_stream *s);

struct handler_reply {
    int status; /* 0: no reply, the client is gone */
    const char *content_type;
    const char *body;
    size_t body_len;
    const char *extra_headers; /* whole header lines, or NULL */
    bool close;                /* end the connection after this reply */
    enum tally_route route;    /* which route answered, for the counts */
    handler_stream_fn stream;  /* non-NULL: the body is a stream, after the head */
    int64_t wait_us;           /* time queued for the lock, for the access log; 0 if none */
    void *owned;               /* heap memory behind body: route_release() frees it */
};

/* A handler answers req into out; a small body it builds goes into buf
 * (cap bytes, on the connection's stack). */
typedef void (*handler_fn)(const struct handler_ctx *ctx, const struct http_request *req,
                           struct handler_reply *out, char *buf, size_t cap);

#endif
