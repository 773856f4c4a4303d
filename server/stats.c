/* stats: the /stats document. Field names are a contract (DESIGN.md):
 * add fields freely, never rename these. */
#include "stats.h"

#include <stdarg.h>
#include <stdio.h>

#include "server.h"

struct out {
    char *buf;
    size_t cap, len;
    bool overflow;
};

static void put(struct out *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->buf + o->len, o->len < o->cap ? o->cap - o->len : 0, fmt, ap);
    va_end(ap);
    if (n < 0 || o->len + (size_t)n >= o->cap)
        o->overflow = true;
    else
        o->len += (size_t)n;
}

static void put_hist(struct out *o, const char *name, const struct hist *h)
{
    put(o, "\"%s\": {\"p50\": %llu, \"p90\": %llu, \"p99\": %llu, \"max\": %llu, \"count\": %llu}",
        name, (unsigned long long)hist_percentile(h, 50), (unsigned long long)hist_percentile(h, 90),
        (unsigned long long)hist_percentile(h, 99), (unsigned long long)h->max,
        (unsigned long long)h->count);
}

static void put_lock(struct out *o, const struct resource *r)
{
    const struct lock_stats *s = &r->lock.stats;
    put(o,
        "\"lock\": {\"enabled\": %s, \"locked\": %s, \"waiters\": %llu, \"max_waiters\": %llu, "
        "\"acquisitions\": %llu, \"contended\": %llu, \"timeouts\": %llu, "
        "\"cancellations\": %llu, \"shed\": %llu, ",
        r->use_lock ? "true" : "false", lock_locked(&r->lock) ? "true" : "false",
        (unsigned long long)s->waiters, (unsigned long long)s->max_waiters,
        (unsigned long long)s->acquisitions, (unsigned long long)s->contended,
        (unsigned long long)s->timeouts, (unsigned long long)s->cancellations,
        (unsigned long long)s->shed);
    put_hist(o, "wait_us", &s->wait_us);
    put(o, ", ");
    put_hist(o, "hold_us", &s->hold_us);
    put(o, "}");
}

static void put_server(struct out *o, const struct server *srv)
{
    const struct server_stats *s = &srv->stats;
    put(o,
        "\"requests\": {\"total\": %llu, \"access\": %llu, \"in_section\": %llu, "
        "\"responses\": {\"2xx\": %llu, \"3xx\": %llu, \"4xx\": %llu, \"5xx\": %llu}, "
        "\"gone\": %llu}, ",
        (unsigned long long)s->requests, (unsigned long long)s->access,
        (unsigned long long)srv->resource.in_section, (unsigned long long)s->responses[2],
        (unsigned long long)s->responses[3], (unsigned long long)s->responses[4],
        (unsigned long long)s->responses[5], (unsigned long long)s->gone);
    put(o,
        "\"connections\": {\"active\": %llu, \"accepted\": %llu, \"refused\": %llu, "
        "\"closed\": {\"client\": %llu, \"done\": %llu, \"bad_request\": %llu, "
        "\"timeout\": %llu, \"idle\": %llu, \"gone\": %llu}}, ",
        (unsigned long long)s->active, (unsigned long long)s->accepted,
        (unsigned long long)s->spawn_failures, (unsigned long long)s->ended[CONN_END_CLIENT],
        (unsigned long long)s->ended[CONN_END_DONE],
        (unsigned long long)s->ended[CONN_END_BAD_REQUEST],
        (unsigned long long)s->ended[CONN_END_TIMEOUT], (unsigned long long)s->ended[CONN_END_IDLE],
        (unsigned long long)s->ended[CONN_END_GONE]);
}

size_t stats_json(const struct server *srv, char *buf, size_t cap)
{
    struct out o = {.buf = buf, .cap = cap};
    double uptime = (double)(loop_now_us() - srv->stats.started_us) / 1e6;
    put(&o, "{\"counter\": %llu, \"uptime_s\": %.3f, \"draining\": %s, ",
        (unsigned long long)srv->resource.counter, uptime, srv->draining ? "true" : "false");
    put_server(&o, srv);
    put_lock(&o, &srv->resource);
    put(&o, "}\n");
    return o.overflow ? 0 : o.len;
}
