/* conn: one client connection, served start to end by one coroutine: read,
 * parse, dispatch, reply, keep-alive, in order for pipelined requests.
 *
 * A connection sees only its struct conn_ctx: its limits, the handlers'
 * context for route_dispatch(), the counts it may add to, whether the
 * server is stopping, and two hooks through which its owner (server.c)
 * learns that it opened and closed. The owner alone keeps the list of
 * connections and the connection counts. */
#ifndef TURNSTILE_CONN_H
#define TURNSTILE_CONN_H

#include <stdbool.h>
#include <stdint.h>

#include "handler.h"
#include "http.h"
#include "list.h"
#include "tally.h"

struct conn;
struct loop;

struct conn_limits {
    struct http_limits http;
    uint64_t header_timeout_ms;    /* the whole request head (408) */
    uint64_t keepalive_timeout_ms; /* idle between requests */
    uint64_t send_timeout_ms;      /* a reply, however slowly read */
};

struct conn_ctx {
    struct loop *loop; /* where the connections' coroutines run */
    const struct conn_limits *limits;
    const struct handler_ctx *handlers;
    struct tally_requests *tally; /* requests and responses */
    const bool *draining;         /* the server is stopping: no new requests */
    /* The owner's hooks: a connection began serving, and it has ended (its
     * descriptor is closed by then). */
    void (*opened)(void *owner, struct conn *c);
    void (*closed)(void *owner, struct conn *c, enum tally_end why);
    /* It begins (on) and ends a staged close: reading and dropping what the
     * client still sends after a reply that ends the connection. */
    void (*lingering)(void *owner, struct conn *c, bool on);
    void *owner;
};

/* Takes over an accepted, non-blocking socket and starts its coroutine,
 * which calls ctx->opened before it first waits. Returns 0, or -ENOMEM when
 * no coroutine (or no watch for the socket) can be had: the socket is
 * still the caller's then (see conn_refuse). */
int conn_accept(const struct conn_ctx *ctx, int fd);

/* Tells a client that could not be served that the server is overloaded
 * (503, Retry-After), without waiting; the caller closes fd. */
void conn_refuse(int fd);

/* On stop: ends a connection at once if it is idle between requests or
 * in a staged close; a busy one finishes its request and closes after the
 * reply. */
void conn_drain(struct conn *c);

/* The node through which the owner lists c, and back. */
struct list_node *conn_node(struct conn *c);
struct conn *conn_of_node(struct list_node *node);

#endif
