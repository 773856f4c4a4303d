/* stats: the /stats document. Field names are a contract (DESIGN.md):
 * add fields freely, never rename these. */
#include "stats.h"

#include "server.h"
#include "textbuf.h"

/* 0 stands for any other status (none is sent today). */
const int stats_statuses[STATS_NSTATUS] = {200, 400, 404, 405, 408, 413,
                                           414, 431, 500, 503, 505, 0};
const char *const stats_route_names[STATS_ROUTE_COUNT] = {
    "/access", "/stats", "/metrics", "/", "/events", "unknown", "none"};

static unsigned status_slot(int status)
{
    for (unsigned i = 0; i < STATS_NSTATUS; i++)
        if (stats_statuses[i] == status)
            return i;
    return STATS_NSTATUS - 1; /* the "other" slot */
}

void stats_count(struct server_stats *s, enum stats_route route, int status)
{
    s->by_route[route][status_slot(status)]++;
    s->responses[status / 100 % 6]++;
}

static void put_hist(struct textbuf *o, const char *name, const struct hist *h)
{
    textbuf_printf(o, "\"%s\": {\"p50\": %llu, \"p90\": %llu, \"p99\": %llu, \"max\": %llu, \"count\": %llu}",
        name, (unsigned long long)hist_percentile(h, 50), (unsigned long long)hist_percentile(h, 90),
        (unsigned long long)hist_percentile(h, 99), (unsigned long long)h->max,
        (unsigned long long)h->count);
}

static void put_lock(struct textbuf *o, const struct resource *r)
{
    const struct lock_stats *s = &r->lock.stats;
    textbuf_printf(o,
        "\"lock\": {\"enabled\": %s, \"locked\": %s, \"waiters\": %llu, \"max_waiters\": %llu, "
        "\"acquisitions\": %llu, \"contended\": %llu, \"timeouts\": %llu, "
        "\"cancellations\": %llu, \"shed\": %llu, ",
        r->use_lock ? "true" : "false", lock_locked(&r->lock) ? "true" : "false",
        (unsigned long long)s->waiters, (unsigned long long)s->max_waiters,
        (unsigned long long)s->acquisitions, (unsigned long long)s->contended,
        (unsigned long long)s->timeouts, (unsigned long long)s->cancellations,
        (unsigned long long)s->shed);
    put_hist(o, "wait_us", &s->wait_us);
    textbuf_printf(o, ", ");
    put_hist(o, "hold_us", &s->hold_us);
    textbuf_printf(o, "}");
}

static void put_server(struct textbuf *o, const struct server *srv)
{
    const struct server_stats *s = &srv->stats;
    textbuf_printf(o,
        "\"requests\": {\"total\": %llu, \"access\": %llu, \"in_section\": %llu, "
        "\"responses\": {\"2xx\": %llu, \"3xx\": %llu, \"4xx\": %llu, \"5xx\": %llu}, "
        "\"gone\": %llu}, ",
        (unsigned long long)s->requests, (unsigned long long)s->access,
        (unsigned long long)srv->resource.in_section, (unsigned long long)s->responses[2],
        (unsigned long long)s->responses[3], (unsigned long long)s->responses[4],
        (unsigned long long)s->responses[5], (unsigned long long)s->gone);
    textbuf_printf(o,
        "\"connections\": {\"active\": %llu, \"accepted\": %llu, \"refused\": %llu, "
        "\"closed\": {",
        (unsigned long long)s->active, (unsigned long long)s->accepted,
        (unsigned long long)s->spawn_failures);
    for (int i = 0; i < CONN_END_COUNT; i++)
        textbuf_printf(o, "%s\"%s\": %llu", i ? ", " : "", conn_end_names[i],
                       (unsigned long long)s->ended[i]);
    textbuf_printf(o, "}}, ");
}

size_t stats_json(const struct server *srv, char *buf, size_t cap)
{
    struct textbuf o;
    textbuf_init(&o, buf, cap);
    double uptime = (double)(loop_now_us() - srv->stats.started_us) / 1e6;
    textbuf_printf(&o, "{\"counter\": %llu, \"uptime_s\": %.3f, \"draining\": %s, ",
        (unsigned long long)srv->resource.counter, uptime, srv->draining ? "true" : "false");
    put_server(&o, srv);
    put_lock(&o, &srv->resource);
    textbuf_printf(&o, ", ");
    grants_json(&srv->stats.grants, &o, srv->stats.started_us);
    textbuf_printf(&o, "}\n");
    return textbuf_len(&o);
}
