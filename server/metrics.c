/* metrics: see metrics.h. Names follow Prometheus conventions: base units
 * (seconds), _total for counters, one HELP and TYPE line per family. */
#include "metrics.h"

#include "server.h"
#include "textbuf.h"

/* Histogram buckets, in microseconds: 100 us to 10 s, 1-2.5-5 steps. */
static const uint64_t bucket_us[] = {100,    250,    500,     1000,    2500,    5000,
                                     10000,  25000,  50000,   100000,  250000,  500000,
                                     1000000, 2500000, 5000000, 10000000};

static void family(struct textbuf *t, const char *name, const char *type, const char *help)
{
    textbuf_printf(t, "# HELP turnstile_%s %s\n# TYPE turnstile_%s %s\n", name, help, name, type);
}

static void single(struct textbuf *t, const char *name, const char *type, const char *help,
                   unsigned long long value)
{
    family(t, name, type, help);
    textbuf_printf(t, "turnstile_%s %llu\n", name, value);
}

static void histogram(struct textbuf *t, const char *name, const char *help, const struct hist *h)
{
    family(t, name, "histogram", help);
    for (size_t i = 0; i < sizeof(bucket_us) / sizeof(bucket_us[0]); i++)
        textbuf_printf(t, "turnstile_%s_bucket{le=\"%g\"} %llu\n", name, (double)bucket_us[i] / 1e6,
                       (unsigned long long)hist_count_le(h, bucket_us[i]));
    textbuf_printf(t, "turnstile_%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)h->count);
    textbuf_printf(t, "turnstile_%s_sum %.6f\n", name, (double)h->sum / 1e6);
    textbuf_printf(t, "turnstile_%s_count %llu\n", name, (unsigned long long)h->count);
}

static void requests(struct textbuf *t, const struct server_stats *s)
{
    family(t, "requests_total", "counter", "Responses sent, by route and status code.");
    for (int r = 0; r < STATS_ROUTE_COUNT; r++)
        for (int i = 0; i < STATS_NSTATUS; i++) {
            if (!s->by_route[r][i])
                continue;
            textbuf_printf(t, "turnstile_requests_total{route=\"%s\",code=\"", stats_route_names[r]);
            if (stats_statuses[i])
                textbuf_printf(t, "%d\"} %llu\n", stats_statuses[i],
                               (unsigned long long)s->by_route[r][i]);
            else
                textbuf_printf(t, "other\"} %llu\n", (unsigned long long)s->by_route[r][i]);
        }
}

static void connections(struct textbuf *t, const struct server_stats *s)
{
    single(t, "connections_active", "gauge", "Connections open now.", s->active);
    single(t, "connections_accepted_total", "counter", "Connections accepted.", s->accepted);
    single(t, "connections_refused_total", "counter",
           "Connections answered 503 at once: no coroutine stack to be had.", s->spawn_failures);
    family(t, "connections_closed_total", "counter", "Connections closed, by reason.");
    for (int i = 0; i < CONN_END_COUNT; i++)
        textbuf_printf(t, "turnstile_connections_closed_total{reason=\"%s\"} %llu\n", conn_end_names[i],
                       (unsigned long long)s->ended[i]);
}

static void lock_metrics(struct textbuf *t, const struct resource *r)
{
    const struct lock_stats *s = &r->lock.stats;
    single(t, "lock_held", "gauge", "1 while the lock is held.", lock_locked(&r->lock));
    single(t, "lock_waiters", "gauge", "Requests queued for the lock now.", s->waiters);
    single(t, "lock_waiters_max", "gauge", "Most requests ever queued at once.", s->max_waiters);
    single(t, "lock_acquisitions_total", "counter", "Times the lock was taken.", s->acquisitions);
    single(t, "lock_contended_total", "counter", "Acquisitions that had to queue.", s->contended);
    single(t, "lock_timeouts_total", "counter", "Waits ended by --lock-timeout-ms.", s->timeouts);
    single(t, "lock_cancellations_total", "counter", "Waits ended by the client leaving.",
           s->cancellations);
    single(t, "lock_shed_total", "counter", "Requests refused: queue full (--max-waiters).",
           s->shed);
    histogram(t, "lock_wait_seconds", "Time from asking for the lock to holding it.", &s->wait_us);
    histogram(t, "lock_hold_seconds", "Time the lock was held.", &s->hold_us);
}

size_t metrics_text(const struct server *srv, char *buf, size_t cap)
{
    struct textbuf t;
    textbuf_init(&t, buf, cap);
    single(&t, "resource_value", "gauge", "The shared counter: the N of the latest GET /access.",
           srv->resource.counter);
    family(&t, "uptime_seconds", "gauge", "Seconds since the server started.");
    textbuf_printf(&t, "turnstile_uptime_seconds %.3f\n",
                   (double)(loop_now_us() - srv->stats.started_us) / 1e6);
    requests(&t, &srv->stats);
    connections(&t, &srv->stats);
    lock_metrics(&t, &srv->resource);
    return textbuf_len(&t);
}
