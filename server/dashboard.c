/* dashboard: see dashboard.h.
 *
 * The page is server/dashboard/ (HTML, CSS, JS), inlined into one document
 * and compiled in as dashboard_html by scripts/embed_page.py, so the binary
 * needs no files at run time. It references no URL but its own routes, and
 * its Content-Security-Policy makes the browser refuse anything else. */
#include "dashboard.h"

#include <string.h>

#include "dashboard_html.h"
#include "stats.h"

/* A few updates a second: smooth enough to watch the queue fill and drain,
 * and cheap, one /stats document per subscriber per tick. */
#define DASHBOARD_PERIOD_US 250000
/* A subscriber whose socket buffer stays full this long reads too slowly:
 * drop it, so that nothing piles up for it beyond that buffer. */
#define DASHBOARD_WRITE_TIMEOUT_MS 1000
/* Sent once: the browser reconnects this long after the stream ends. */
#define DASHBOARD_RETRY "retry: 1000\n"
/* One event: "data: " and the /stats document: 6.9 KiB with every counter
 * at 20 digits and GRANTS_CAP grants (test_dashboard), and up to about
 * another KiB in cluster mode, whose numbers that test cannot fill. Twice
 * that, for the rows still to come. It lives on the connection's coroutine
 * stack (64 KiB). */
#define DASHBOARD_EVENT_CAP 16384

#define DASHBOARD_HEADERS                                                                          \
    "Cache-Control: no-cache\r\n"                                                                  \
    "Content-Security-Policy: default-src 'none'; script-src 'unsafe-inline'; "                    \
    "style-src 'unsafe-inline'; connect-src 'self'; img-src data:\r\n"

void dashboard_page(const struct handler_ctx *ctx, const struct http_request *req,
                    struct handler_reply *out, char *buf, size_t cap)
{
    (void)ctx, (void)req, (void)buf, (void)cap;
    *out = (struct handler_reply){.status = 200,
                                  .content_type = "text/html; charset=utf-8",
                                  .body = dashboard_html,
                                  .body_len = dashboard_html_len,
                                  .extra_headers = DASHBOARD_HEADERS};
}

/* prefix, the /stats document (one line, ending in "\n"), and the blank
 * line that ends the event. Returns its length, 0 if it does not fit. */
static size_t event(const struct handler_ctx *ctx, char *buf, size_t cap, const char *prefix)
{
    size_t head = strlen(prefix);
    memcpy(buf, prefix, head);
    size_t len = stats_json(ctx->stats, buf + head, cap - head - 1);
    if (len == 0)
        return 0;
    buf[head + len] = '\n';
    return head + len + 1;
}

/* One subscriber, on its connection's coroutine: an event at once, then one
 * per period until the client leaves, reads too slowly or the server stops. */
static void stream(const struct handler_ctx *ctx, const struct handler_stream *s)
{
    char buf[DASHBOARD_EVENT_CAP];
    const char *prefix = DASHBOARD_RETRY "data: ";
    do {
        size_t len = event(ctx, buf, sizeof(buf), prefix);
        if (len == 0 || s->write(s->conn, buf, len, DASHBOARD_WRITE_TIMEOUT_MS) < 0)
            return;
        prefix = "data: ";
    } while (s->pause(s->conn, DASHBOARD_PERIOD_US));
}

void dashboard_events(const struct handler_ctx *ctx, const struct http_request *req,
                      struct handler_reply *out, char *buf, size_t cap)
{
    (void)ctx, (void)req, (void)buf, (void)cap;
    *out = (struct handler_reply){.status = 200,
                                  .content_type = "text/event-stream",
                                  .extra_headers = "Cache-Control: no-store\r\n",
                                  .stream = stream};
}
