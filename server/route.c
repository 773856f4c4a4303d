/* route: the routing table and its handlers. See route.h. */
#include "route.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dashboard.h"
#include "grants.h"
#include "loop.h"
#include "metrics.h"
#include "reply.h"
#include "resource.h"
#include "stats.h"

/* Every route answers GET and HEAD (RFC 9110 9.1: a general-purpose
 * server MUST). A HEAD runs `head` when the GET has effects (it must not
 * take the lock), else the GET's own handler: the connection then sends
 * the head of its reply, Content-Length included, and no body. */
struct route {
    enum tally_route id; /* its path is tally_route_names[id] */
    handler_fn get;
    handler_fn head; /* NULL: as get */
    bool internal;   /* the server's internals: on the admin port, if there is one */
};

#define ALLOW "Allow: GET, HEAD\r\n"

static void text(struct handler_reply *out, int status, const char *body, const char *extra)
{
    *out = (struct handler_reply){.status = status,
                                  .content_type = "text/plain",
                                  .body = body,
                                  .body_len = strlen(body),
                                  .extra_headers = extra};
}

static size_t access_body(char *buf, uint64_t n)
{
    static const char head[] = "Resource accessed ", tail[] = " times.";
    size_t len = sizeof(head) - 1;
    memcpy(buf, head, len);
    len += reply_u64(buf + len, n);
    memcpy(buf + len, tail, sizeof(tail) - 1);
    return len + sizeof(tail) - 1;
}

/* Microseconds as milliseconds with three decimals: "12.345". */
static size_t put_ms(char *p, int64_t us)
{
    uint64_t v = us > 0 ? (uint64_t)us : 0;
    size_t len = reply_u64(p, v / 1000);
    p[len++] = '.';
    p[len++] = (char)('0' + v / 100 % 10);
    p[len++] = (char)('0' + v / 10 % 10);
    p[len++] = (char)('0' + v % 10);
    return len;
}

/* "Server-Timing: lock;dur=W, work;dur=S": browser devtools and curl -v
 * users see where the time went (W3C Server Timing). */
static size_t server_timing(char *p, const struct resource_timing *t)
{
    static const char a[] = "Server-Timing: lock;dur=", b[] = ", work;dur=";
    size_t len = sizeof(a) - 1;
    memcpy(p, a, len);
    len += put_ms(p + len, t->wait_us);
    memcpy(p + len, b, sizeof(b) - 1);
    len += sizeof(b) - 1;
    len += put_ms(p + len, t->work_us);
    memcpy(p + len, "\r\n", 2);
    return len + 2;
}

/* "Resource accessed N times." and a Server-Timing header, without printf
 * on the hot path. The header goes after the body in buf. */
static void access_ok(const struct handler_ctx *ctx, struct handler_reply *out, char *buf,
                      uint64_t n, const struct resource_timing *t)
{
    size_t len = access_body(buf, n);
    char *hdr = buf + len;
    grants_record(ctx->grants, n, (uint64_t)t->wait_us, loop_clock_us());
    size_t h = server_timing(hdr, t);
    hdr[h] = '\0';
    *out = (struct handler_reply){.status = 200,
                                  .content_type = "text/plain",
                                  .body = buf,
                                  .body_len = len,
                                  .extra_headers = hdr,
                                  .wait_us = t->wait_us};
}

/* HEAD /access: what a GET would answer now, without its effects: no
 * lock, no simulated work, no new N. The length is that of the body the
 * next GET would get; Server-Timing is left out, as nothing ran. */
static void route_access_head(const struct handler_ctx *ctx, const struct http_request *req,
                              struct handler_reply *out, char *buf, size_t cap)
{
    (void)req, (void)cap;
    size_t len = access_body(buf, resource_counter(ctx->resource) + 1);
    *out = (struct handler_reply){
        .status = 200, .content_type = "text/plain", .body = buf, .body_len = len};
}

/* buf has ROUTE_BODY_CAP bytes: far more than the longest body here. */
static void route_access(const struct handler_ctx *ctx, const struct http_request *req,
                         struct handler_reply *out, char *buf, size_t cap)
{
    uint64_t n;
    struct resource_timing t;
    struct idem_key key = {req->idem_key, req->idem_len};
    (void)cap;
    tally_add(&ctx->tally->access, 1);
    if (req->idem_bad) {
        text(out, 400, "Bad Idempotency-Key.\n", NULL);
        out->close = true; /* as every bad request */
        return;
    }
    switch (resource_access(ctx->resource, key.len ? &key : NULL, &n, &t)) {
    case 0:
        access_ok(ctx, out, buf, n, &t);
        return;
    case -ETIMEDOUT:
        text(out, 503, "Timed out waiting for the lock.\n", "Retry-After: 1\r\n");
        return;
    case -EBUSY:
        text(out, 503, "Too many requests waiting for the lock.\n", "Retry-After: 1\r\n");
        return;
    case -EAGAIN: /* cluster mode: etcd unreachable, or this request's place was lost */
        text(out, 503, "The cluster's store (etcd) is unreachable; try again.\n",
             "Retry-After: 1\r\n");
        return;
    case -ENOTRECOVERABLE: /* cluster mode: 500, not 503/504, which clients and proxies retry */
        text(out, 500, "Outcome unknown: the count may or may not have moved.\n", NULL);
        return;
    case -EIO: /* the update happened but is not on disk: never claim it is */
        text(out, 500, "Could not save the counter.\n", NULL);
        return;
    default: /* cancelled: the client hung up while queued */
        *out = (struct handler_reply){.status = 0};
    }
}

typedef size_t (*document_fn)(const struct stats_source *src, char *buf, size_t cap);

/* One document buffer kept back: a dashboard polling /stats, or pipelined
 * requests for it, reuse it instead of allocating each time. */
static _Thread_local char *spare_doc; /* each loop its own */

void route_forget_spare(void)
{
    free(spare_doc);
    spare_doc = NULL;
}

void route_release(void *owned)
{
    if (owned && !spare_doc)
        spare_doc = owned;
    else
        free(owned);
}

/* A document buffer. Short of memory, the loop first gives back the
 * coroutine stacks it keeps idle for reuse: under a memory limit they are
 * what holds it, and /stats is the very page that should say so. */
static char *new_doc(void)
{
    char *doc = malloc(ROUTE_DOC_CAP);
    if (!doc && loop_current()) {
        loop_trim(loop_current());
        doc = malloc(ROUTE_DOC_CAP);
    }
    return doc;
}

/* A generated document (/metrics, /stats) in a buffer of its own; 500 if
 * it does not fit, 503 if no memory can be had. */
static void document(const struct handler_ctx *ctx, struct handler_reply *out, const char *ctype,
                     document_fn write)
{
    char *doc = spare_doc ? spare_doc : new_doc();
    spare_doc = NULL;
    if (!doc) {
        text(out, 503, "Out of memory.\n", "Retry-After: 1\r\n");
        return;
    }
    size_t len = write(ctx->stats, doc, ROUTE_DOC_CAP);
    if (len == 0) {
        free(doc);
        text(out, 500, "The document does not fit the reply buffer.\n", NULL);
        return;
    }
    *out = (struct handler_reply){.status = 200,
                                  .content_type = ctype,
                                  .body = doc,
                                  .body_len = len,
                                  .extra_headers = "Cache-Control: no-store\r\n",
                                  .owned = doc};
}

static void route_metrics(const struct handler_ctx *ctx, const struct http_request *req,
                          struct handler_reply *out, char *buf, size_t cap)
{
    (void)req, (void)buf, (void)cap;
    document(ctx, out, METRICS_CONTENT_TYPE, metrics_text);
}

static void route_stats(const struct handler_ctx *ctx, const struct http_request *req,
                        struct handler_reply *out, char *buf, size_t cap)
{
    (void)req, (void)buf, (void)cap;
    document(ctx, out, "application/json", stats_json);
}

static const struct route routes[] = {
    {TALLY_ACCESS, route_access, route_access_head, false},
    {TALLY_STATS, route_stats, NULL, true},
    {TALLY_METRICS, route_metrics, NULL, true},
    {TALLY_DASHBOARD, dashboard_page, NULL, true},
    {TALLY_EVENTS, dashboard_events, NULL, true},
};

static const struct route *find(const struct handler_ctx *ctx, const struct http_request *req)
{
    if (req->path_truncated)
        return NULL;
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
        if (strcmp(req->path, tally_route_names[routes[i].id]) == 0)
            return routes[i].internal && ctx->access_only ? NULL : &routes[i];
    return NULL;
}

bool route_may_block(const struct handler_ctx *ctx, const struct http_request *req)
{
    const struct route *r = find(ctx, req);
    return r && r->get == route_access && req->method == HTTP_GET;
}

/* OPTIONS * (RFC 9110 9.3.7): what the server as a whole takes, no body.
 * http.c refused "*" with any other method (400). */
static void server_options(struct handler_reply *out)
{
    *out = (struct handler_reply){
        .status = 200, .extra_headers = "Allow: GET, HEAD, OPTIONS\r\n", .route = TALLY_UNKNOWN};
}

int route_refusal(const struct handler_ctx *ctx, const struct http_request *req)
{
    if (req->asterisk)
        return 0;
    if (!find(ctx, req))
        return 404;
    return req->method == HTTP_GET || req->method == HTTP_HEAD ? 0 : 405;
}

void route_dispatch(const struct handler_ctx *ctx, const struct http_request *req,
                    struct handler_reply *out, char *buf, size_t cap)
{
    const struct route *r = find(ctx, req);
    bool get = req->method == HTTP_GET, head = req->method == HTTP_HEAD;
    int refusal = route_refusal(ctx, req);
    if (req->asterisk) {
        server_options(out);
        return;
    }
    if (refusal == 404)
        text(out, 404, "Not found.\n", NULL);
    else if (refusal == 405)
        text(out, 405, "Method not allowed.\n", ALLOW);
    else if (head && r->head)
        r->head(ctx, req, out, buf, cap);
    else
        r->get(ctx, req, out, buf, cap);
    out->route = r && (get || head) ? r->id : TALLY_UNKNOWN;
}
