/* stats: the table of numbers and the /stats document. See stats.h. */
#include "stats.h"

#include <string.h>

#include "grants.h"
#include "loop.h"
#include "resource.h"
#include "textbuf.h"

static const char *const class_names[] = {"2xx", "3xx", "4xx", "5xx"};

static const struct stats_dim by_class = {"class", class_names, 4};
static const struct stats_dim by_route = {"route", tally_route_names, TALLY_ROUTES};
static const struct stats_dim by_status = {"code", tally_status_names, TALLY_STATUSES};
static const struct stats_dim by_end = {"reason", tally_end_names, TALLY_ENDS};
/* In the order of the etcd client's enum etcd_err_kind
 * (server/cluster/etcd_client.h). */
static const char *const etcd_err_names[STATS_ETCD_ERRORS] = {
    "timeout", "canceled", "connect", "broken", "bad_reply", "etcd", "local"};
static const struct stats_dim by_kind = {"kind", etcd_err_names, STATS_ETCD_ERRORS};

/* A row: kind, /stats path, /metrics family (NULL: none), the field of
 * struct stats_snapshot, help text; vectors and matrices add their labels. */
#define ROW(k, p, m, f, h)                                                                         \
    {                                                                                              \
        .path = p, .metric = m, .kind = STATS_##k, .off = offsetof(struct stats_snapshot, f),      \
        .help = h                                                                                  \
    }
#define LABELLED(k, p, m, f, h, ...)                                                               \
    {                                                                                              \
        .path = p, .metric = m, .kind = STATS_##k, .off = offsetof(struct stats_snapshot, f),      \
        .help = h, .dims = {                                                                       \
            __VA_ARGS__                                                                            \
        }                                                                                          \
    }

/* In /stats order: rows of one object stay together. */
const struct stats_row stats_rows[] = {
    ROW(GAUGE, "counter", "resource_value", counter,
        "The shared counter: the N of the latest GET /access."),
    ROW(SECONDS, "uptime_s", "uptime_seconds", uptime_us, "Seconds since the server started."),
    ROW(FLAG, "draining", "draining", draining, "1 while the server is stopping (SIGINT/SIGTERM)."),
    ROW(GAUGE, "threads", "threads", threads, "Event loops, each on its own thread (--threads)."),

    ROW(COUNTER, "requests.total", NULL, requests.total,
        "Requests answered or dropped, malformed ones included."),
    ROW(COUNTER, "requests.access", "access_requests_total", requests.access,
        "GET /access requests."),
    ROW(GAUGE, "requests.in_section", "requests_in_section", in_section,
        "Requests inside the critical section now."),
    LABELLED(VECTOR, "requests.responses", NULL, responses, "Responses sent, by status class.",
             &by_class),
    ROW(COUNTER, "requests.gone", "requests_gone_total", requests.gone,
        "Clients that left before their reply (nginx's 499)."),
    LABELLED(MATRIX, "requests.by_route", "requests_total", requests.by_route,
             "Responses sent, by route and status code.", &by_route, &by_status),

    ROW(GAUGE, "connections.active", "connections_active", conns.active, "Connections open now."),
    ROW(COUNTER, "connections.accepted", "connections_accepted_total", conns.accepted,
        "Connections accepted."),
    ROW(COUNTER, "connections.refused", "connections_refused_total", conns.refused,
        "Connections answered 503 at once: no coroutine stack to be had."),
    ROW(GAUGE, "connections.lingering", "connections_lingering", conns.lingering,
        "Connections in a staged close: the reply is sent, their input is drained."),
    LABELLED(VECTOR, "connections.closed", "connections_closed_total", conns.ended,
             "Connections closed, by reason.", &by_end),

    ROW(FLAG, "lock.enabled", "lock_enabled", lock_enabled,
        "0 when run with --no-lock (a demonstration)."),
    ROW(FLAG, "lock.locked", "lock_held", lock_locked, "1 while the lock is held."),
    ROW(GAUGE, "lock.waiters", "lock_waiters", lock.waiters, "Requests queued for the lock now."),
    ROW(GAUGE, "lock.max_waiters", "lock_waiters_max", lock.max_waiters,
        "Most requests ever queued at once."),
    ROW(COUNTER, "lock.acquisitions", "lock_acquisitions_total", lock.acquisitions,
        "Times the lock was taken."),
    ROW(COUNTER, "lock.contended", "lock_contended_total", lock.contended,
        "Acquisitions that had to queue."),
    ROW(COUNTER, "lock.timeouts", "lock_timeouts_total", lock.timeouts,
        "Waits ended by --lock-timeout-ms."),
    ROW(COUNTER, "lock.cancellations", "lock_cancellations_total", lock.cancellations,
        "Waits ended by the client leaving."),
    ROW(COUNTER, "lock.shed", "lock_shed_total", lock.shed,
        "Requests refused: queue full (--max-waiters)."),
    ROW(HIST, "lock.wait_us", "lock_wait_seconds", lock.wait_us,
        "Time from asking for the lock to holding it."),
    ROW(HIST, "lock.hold_us", "lock_hold_seconds", lock.hold_us, "Time the lock was held."),

    /* Cluster mode (--etcd): the lock rows above then count this
     * instance's requests for the cluster-wide lock. */
    ROW(FLAG, "cluster.enabled", "cluster_enabled", cluster_enabled,
        "1 in cluster mode: the counter and the lock live in etcd."),
    ROW(FLAG, "cluster.healthy", "cluster_healthy", cluster.healthy,
        "1 while etcd answers: a lease is held, the queue is followed, no etcd alarm."),
    ROW(TEXT, "cluster.endpoint", "cluster_endpoint_info", cluster.endpoint,
        "The etcd endpoint in use."),
    ROW(TEXT, "cluster.endpoints", "cluster_endpoints_info", cluster.endpoints,
        "Each etcd endpoint and its health as this instance knows it: up, or down "
        "(abandoned after a failure until a linearizable read succeeds there)."),
    ROW(COUNTER, "cluster.endpoints_abandoned", "cluster_endpoints_abandoned_total",
        cluster.endpoints_abandoned, "Times an etcd endpoint was abandoned by this instance."),
    ROW(TEXT, "cluster.lease", "cluster_lease_info", cluster.lease,
        "This instance's etcd lease ID (hex); empty while it has none."),
    ROW(TEXT, "cluster.error", "cluster_error_info", cluster.error,
        "Why etcd refused this instance or the reverse (a certificate, a name, a password, "
        "a role); empty since a call succeeded."),
    ROW(GAUGE, "cluster.lease_ttl_ms", "cluster_lease_ttl_milliseconds", cluster.lease_ttl_ms,
        "The lease's TTL as granted."),
    ROW(COUNTER, "cluster.lease_grants", "cluster_lease_grants_total", cluster.lease_grants,
        "Leases granted to this instance."),
    ROW(COUNTER, "cluster.lease_losses", "cluster_lease_losses_total", cluster.lease_losses,
        "Leases lost: expired, or not kept alive for a whole TTL."),
    ROW(GAUGE, "cluster.waiters", "cluster_waiters", cluster.waiters,
        "This instance's requests waiting in the cluster-wide queue."),
    ROW(GAUGE, "cluster.queue_length", "cluster_queue_length", cluster.queue_length,
        "Requests in the cluster-wide queue, the holder included, as seen here."),
    ROW(GAUGE, "cluster.revision", "cluster_revision", cluster.revision,
        "The latest etcd revision seen."),
    ROW(COUNTER, "cluster.fenced", "cluster_fenced_total", cluster.fenced,
        "Writes refused because the writer's place was gone (a lease lost): 503."),
    ROW(COUNTER, "cluster.unavailable", "cluster_unavailable_total", cluster.unavailable,
        "Requests answered 503 because etcd did not answer."),
    ROW(COUNTER, "cluster.unknown", "cluster_unknown_total", cluster.unknown,
        "Writes whose outcome could not be proven: answered 500, outcome unknown."),
    ROW(COUNTER, "cluster.resyncs", "cluster_resyncs_total", cluster.resyncs,
        "Times the queue was read anew (watch opened or reopened)."),
    ROW(FLAG, "cluster.alarm_nospace", "cluster_alarm_nospace", cluster.alarm_nospace,
        "1 while etcd's NOSPACE alarm is raised: its quota is reached, writes are refused."),
    ROW(FLAG, "cluster.alarm_corrupt", "cluster_alarm_corrupt", cluster.alarm_corrupt,
        "1 while etcd's CORRUPT alarm is raised: a member's data differs."),
    ROW(COUNTER, "cluster.compactions", "cluster_compactions_total", cluster.compactions,
        "Compactions of etcd's history made by this instance (--compact-interval-ms)."),
    LABELLED(VECTOR, "cluster.errors", "cluster_etcd_errors_total", cluster.errors,
             "Failed etcd calls, by kind.", &by_kind),
    ROW(HIST, "cluster.handoff_us", "cluster_handoff_seconds", cluster.handoff_us,
        "From a release on another instance to the grant here."),
    ROW(COUNTER, "cluster.local_handoffs", "cluster_local_handoffs_total", cluster.local_handoffs,
        "Grants that followed a release on the same loop, on its reply, with no watch event."),
    ROW(COUNTER, "cluster.pipelined", "cluster_pipelined_total", cluster.pipelined,
        "Grants made as the previous section on the same loop ended, before its write "
        "committed (pipelined)."),
    ROW(COUNTER, "cluster.grouped", "cluster_grouped_total", cluster.grouped,
        "Fenced writes carried by an earlier request's txn on the same loop (group commit)."),

    /* Idempotency-Key on GET /access: in cluster mode the keys live in
     * etcd, and only repeats are counted here. */
    ROW(GAUGE, "idempotency.keys", "idempotency_keys", idem.keys,
        "Idempotency-Keys remembered here now (single-node mode)."),
    ROW(GAUGE, "idempotency.max_keys", "idempotency_keys_max", idem.max_keys,
        "Keys remembered at most (--idempotency-max-keys)."),
    ROW(GAUGE, "idempotency.retention_ms", "idempotency_retention_milliseconds", idem.retention_ms,
        "How long a key is remembered (--idempotency-retention-ms)."),
    ROW(COUNTER, "idempotency.repeats", "idempotency_repeats_total", idem.repeats,
        "Requests answered with a key's first outcome, not applied again."),
    ROW(COUNTER, "idempotency.expired", "idempotency_expired_total", idem.expired,
        "Keys forgotten: past the retention window."),
    ROW(COUNTER, "idempotency.evicted", "idempotency_evicted_total", idem.evicted,
        "Keys forgotten early, oldest first: the cap was reached."),
};

const size_t stats_nrows = sizeof(stats_rows) / sizeof(stats_rows[0]);

/* Responses by class, from the counts by route and status. */
static void count_classes(struct stats_snapshot *s)
{
    memset(s->responses, 0, sizeof(s->responses));
    for (unsigned r = 0; r < TALLY_ROUTES; r++)
        for (unsigned i = 0; i < TALLY_STATUSES; i++) {
            int code = tally_status_code((enum tally_status)i);
            if (code >= 200 && code < 600)
                s->responses[code / 100 - 2] += s->requests.by_route[r][i];
        }
}

const struct stats_snapshot *stats_take(const struct stats_source *src)
{
    /* Thread-local and static: two struct hist are too big for a
     * coroutine's stack, and taking a snapshot never yields. */
    static _Thread_local struct stats_snapshot s;
    struct resource *r = src->resource;
    s.counter = resource_counter(r);
    s.uptime_us = (uint64_t)(loop_now_us() - src->started_us);
    s.draining = __atomic_load_n(src->draining, __ATOMIC_RELAXED);
    s.threads = src->nloops;
    memset(&s.requests, 0, sizeof(s.requests));
    memset(&s.conns, 0, sizeof(s.conns));
    for (unsigned i = 0; i < src->nloops; i++) {
        tally_sum_requests(&s.requests, src->requests[i]);
        tally_sum_conns(&s.conns, src->conns[i]);
    }
    s.in_section = resource_in_section(r);
    count_classes(&s);
    s.lock_enabled = r->use_lock;
    bool locked;
    resource_lock_stats(r, &s.lock, &locked);
    s.lock_locked = locked;
    s.cluster_enabled = resource_cluster_stats(r, &s.cluster);
    if (s.cluster_enabled)
        resource_cluster_view(r, &s.view);
    resource_idem_stats(r, &s.idem);
    return &s;
}

/* ---- the JSON document ---- */

/* Objects open in the document: the groups of the last row's path (all
 * its keys but the last). */
struct nest {
    struct textbuf *o;
    const char *open; /* path of the last member written */
    size_t depth;     /* objects open below the top level */
    bool first;       /* nothing written yet in the innermost object */
};

static size_t key_len(const char *key)
{
    return strcspn(key, ".");
}

/* The i-th key of path. */
static const char *key_at(const char *path, size_t i)
{
    while (i--)
        path += key_len(path) + 1;
    return path;
}

static size_t groups_of(const char *path)
{
    size_t n = 0;
    for (; *path; path++)
        n += *path == '.';
    return n;
}

static void member(struct nest *n, const char *key, size_t len)
{
    textbuf_printf(n->o, "%s\"%.*s\": ", n->first ? "" : ", ", (int)len, key);
    n->first = false;
}

/* Closes the objects path does not share with the last member, opens
 * those it adds, and writes its own key. */
static void enter(struct nest *n, const char *path)
{
    size_t want = groups_of(path), keep = 0;
    for (; keep < n->depth && keep < want; keep++) {
        const char *a = key_at(n->open, keep), *b = key_at(path, keep);
        if (key_len(a) != key_len(b) || memcmp(a, b, key_len(a)) != 0)
            break;
    }
    for (; n->depth > keep; n->depth--)
        textbuf_printf(n->o, "}");
    for (; n->depth < want; n->depth++) {
        const char *key = key_at(path, n->depth);
        member(n, key, key_len(key));
        textbuf_printf(n->o, "{");
        n->first = true;
    }
    n->open = path;
    const char *last = key_at(path, want);
    member(n, last, strlen(last));
}

static void put_hist(struct textbuf *o, const struct hist *h)
{
    textbuf_printf(
        o, "{\"p50\": %llu, \"p90\": %llu, \"p99\": %llu, \"max\": %llu, \"count\": %llu}",
        (unsigned long long)hist_percentile(h, 50), (unsigned long long)hist_percentile(h, 90),
        (unsigned long long)hist_percentile(h, 99), (unsigned long long)h->max,
        (unsigned long long)h->count);
}

static void put_vector(struct textbuf *o, const uint64_t *v, const struct stats_dim *d,
                       bool skip_zero)
{
    bool first = true;
    textbuf_printf(o, "{");
    for (unsigned i = 0; i < d->n; i++) {
        if (skip_zero && !v[i])
            continue;
        textbuf_printf(o, "%s\"%s\": %llu", first ? "" : ", ", d->names[i],
                       (unsigned long long)v[i]);
        first = false;
    }
    textbuf_printf(o, "}");
}

static bool all_zero(const uint64_t *v, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        if (v[i])
            return false;
    return true;
}

/* Rows with nothing counted are left out, and zeros within a row. */
static void put_matrix(struct textbuf *o, const uint64_t *m, const struct stats_dim *const dims[2])
{
    unsigned cols = dims[1]->n;
    bool first = true;
    textbuf_printf(o, "{");
    for (unsigned r = 0; r < dims[0]->n; r++) {
        if (all_zero(m + r * cols, cols))
            continue;
        textbuf_printf(o, "%s\"%s\": ", first ? "" : ", ", dims[0]->names[r]);
        put_vector(o, m + r * cols, dims[1], true);
        first = false;
    }
    textbuf_printf(o, "}");
}

static void put_value(struct textbuf *o, const struct stats_row *row,
                      const struct stats_snapshot *s)
{
    const void *p = (const char *)s + row->off;
    bool scalar = row->kind <= STATS_SECONDS; /* COUNTER, GAUGE, FLAG, SECONDS: one uint64_t */
    uint64_t v = scalar ? *(const uint64_t *)p : 0;
    switch (row->kind) {
    case STATS_COUNTER:
    case STATS_GAUGE:
        textbuf_printf(o, "%llu", (unsigned long long)v);
        break;
    case STATS_FLAG:
        textbuf_printf(o, "%s", v ? "true" : "false");
        break;
    case STATS_SECONDS:
        textbuf_printf(o, "%.3f", (double)v / 1e6);
        break;
    case STATS_HIST:
        put_hist(o, p);
        break;
    case STATS_VECTOR:
        put_vector(o, p, row->dims[0], false);
        break;
    case STATS_MATRIX:
        put_matrix(o, p, row->dims);
        break;
    case STATS_TEXT:
        textbuf_printf(o, "\"%s\"", (const char *)p);
        break;
    }
}

static bool in_cluster(size_t i)
{
    return i < stats_nrows && strncmp(stats_rows[i].path, "cluster.", strlen("cluster.")) == 0;
}

/* Row i is the last of "cluster": the object a JSON document may hold once. */
static bool ends_cluster(size_t i)
{
    return in_cluster(i) && !in_cluster(i + 1);
}

/* The cluster at a glance: lists, not rows, inside "cluster" after its rows. */
static void put_view(struct nest *n, struct textbuf *o, const struct stats_snapshot *s)
{
    for (unsigned i = 0; i < cluster_view_nparts; i++) {
        enter(n, cluster_view_parts[i].path);
        cluster_view_parts[i].put(o, &s->view);
    }
}

size_t stats_json(const struct stats_source *src, char *buf, size_t cap)
{
    const struct stats_snapshot *s = stats_take(src);
    struct textbuf o;
    struct nest n = {.o = &o, .open = "", .first = true};
    textbuf_init(&o, buf, cap);
    textbuf_printf(&o, "{");
    for (size_t i = 0; i < stats_nrows; i++) {
        enter(&n, stats_rows[i].path);
        put_value(&o, &stats_rows[i], s);
        if (s->cluster_enabled && ends_cluster(i))
            put_view(&n, &o, s);
    }
    enter(&n, "grants");
    grants_json(src->grants, &o, src->started_us);
    textbuf_printf(&o, "}\n");
    return textbuf_len(&o);
}
