/* route: what each path answers. /access runs the critical section, /stats
 * shows the counters; anything else is 404, a wrong method 405. */
#ifndef TURNSTILE_ROUTE_H
#define TURNSTILE_ROUTE_H

#include <stdbool.h>
#include <stddef.h>

#include "http.h"
#include "stats.h"

/* The buffer a route may build a small body in (/access: the body and its
 * Server-Timing header). It lives on the connection's stack: kept small,
 * so the frames below it share pages with the connection's own. */
#define ROUTE_BODY_CAP 512
/* Generated documents (/stats, /metrics) are allocated at this size, only
 * for the requests that ask for them, and freed once sent. */
#define ROUTE_DOC_CAP 16384

struct server;
struct conn;

/* A route that streams (server-sent events) gets the connection after its
 * head is sent, and writes until it returns. */
typedef void (*route_stream_fn)(struct server *srv, struct conn *c);

struct route_reply {
    int status; /* 0: no reply, the client is gone */
    const char *content_type;
    const char *body;
    size_t body_len;
    const char *extra_headers; /* whole header lines, or NULL */
    bool close;                /* end the connection after this reply */
    enum stats_route route;    /* which route answered, for the counters */
    route_stream_fn stream;    /* non-NULL: the body is a stream (see above) */
    int64_t wait_us;           /* time queued for the lock, for the access log; 0 if none */
    void *owned;               /* heap memory behind body: the connection frees it */
};

/* True for requests that may park (queue for the lock, simulated work):
 * replies waiting before them are sent first. */
bool route_may_block(const struct http_request *req);

/* Gives back a reply's `owned` memory once the reply is sent. */
void route_release(void *owned);

/* Answers req; a body the route builds goes into buf (cap bytes). */
void route_dispatch(struct server *srv, const struct http_request *req, struct route_reply *out,
                    char *buf, size_t cap);

#endif
