/* route: the routing table. A request's path and method pick a handler
 * (handler.h): /access runs the critical section, /stats and /metrics show
 * the numbers, / and /events the dashboard; anything else is 404, a known
 * path with another method 405. OPTIONS * (the server's own options) is
 * 200 with Allow. On a port that serves /access only (handler_ctx's
 * access_only), the other routes are 404 too. */
#ifndef TURNSTILE_ROUTE_H
#define TURNSTILE_ROUTE_H

#include <stdbool.h>
#include <stddef.h>

#include "handler.h"
#include "http.h"

/* The buffer a route may build a small body in (/access: the body and its
 * Server-Timing header). It lives on the connection's stack: kept small,
 * so the frames below it share pages with the connection's own. */
#define ROUTE_BODY_CAP 512
/* Generated documents (/stats, /metrics) are allocated at this size, only
 * for the requests that ask for them, and freed once sent. The cluster
 * group (cluster mode) took /metrics past 16 KiB at its largest. */
#define ROUTE_DOC_CAP 32768

/* True for requests that may park (queue for the lock, simulated work):
 * replies waiting before them are sent first. */
bool route_may_block(const struct handler_ctx *ctx, const struct http_request *req);

/* The status req will be refused with (404: no such path, 405: a method
 * it does not take), or 0 if a handler will answer it. */
int route_refusal(const struct handler_ctx *ctx, const struct http_request *req);

/* Answers req; a body the handler builds goes into buf (cap bytes). */
void route_dispatch(const struct handler_ctx *ctx, const struct http_request *req,
                    struct handler_reply *out, char *buf, size_t cap);

/* Gives back a reply's `owned` memory once the reply is sent. */
void route_release(void *owned);

/* Frees the document buffer this thread keeps for reuse: when a loop's
 * thread ends. */
void route_forget_spare(void);

#endif
