/* dashboard: GET / serves a self-contained live page (inline CSS and JS,
 * compiled in) that shows the lock queue at work; GET /events feeds it the
 * /stats document as server-sent events, a few times a second. */
#ifndef TURNSTILE_DASHBOARD_H
#define TURNSTILE_DASHBOARD_H

#include <stddef.h>

struct server;
struct route_reply;

/* Route handlers (route_fn in route.c). */
void dashboard_page(struct server *srv, struct route_reply *out, char *buf, size_t cap);
void dashboard_events(struct server *srv, struct route_reply *out, char *buf, size_t cap);

#endif
