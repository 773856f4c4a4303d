/* dashboard: GET / serves a self-contained live page (inline CSS and JS,
 * compiled in) that shows the lock queue at work; GET /events feeds it the
 * /stats document as server-sent events, a few times a second. */
#ifndef TURNSTILE_DASHBOARD_H
#define TURNSTILE_DASHBOARD_H

#include <stddef.h>

#include "handler.h"

/* Handlers (handler.h). */
void dashboard_page(const struct handler_ctx *ctx, const struct http_request *req,
                    struct handler_reply *out, char *buf, size_t cap);
void dashboard_events(const struct handler_ctx *ctx, const struct http_request *req,
                      struct handler_reply *out, char *buf, size_t cap);

#endif
