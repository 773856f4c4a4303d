/* cluster_view: the cluster at a glance, rendered. See cluster_view.h. */
#include "cluster_view.h"

#include <string.h>

/* A JSON string: members' fields and etcd's messages come from other
 * processes, so quotes, backslashes and control bytes are escaped. */
static void put_str(struct textbuf *o, const char *s)
{
    textbuf_printf(o, "\"");
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            textbuf_printf(o, "\\%c", ch);
        else if (ch < 0x20 || ch == 0x7f)
            textbuf_printf(o, "\\u%04x", ch);
        else
            textbuf_printf(o, "%c", ch);
    }
    textbuf_printf(o, "\"");
}

/* Wall-clock microseconds as seconds since the epoch, to the millisecond. */
static void put_time(struct textbuf *o, int64_t wall_us)
{
    textbuf_printf(o, "%lld.%03lld", (long long)(wall_us / 1000000),
                   (long long)(wall_us % 1000000 / 1000));
}

uint64_t cluster_view_keys_of(const struct cluster_view *v, const char *id)
{
    for (unsigned i = 0; i < v->queue.nshares; i++)
        if (strcmp(v->queue.shares[i].id, id) == 0)
            return v->queue.shares[i].keys;
    return 0;
}

static void put_self(struct textbuf *o, const struct cluster_view *v)
{
    put_str(o, v->self);
}

static void put_member(struct textbuf *o, const struct cluster_view *v,
                       const struct cluster_view_member *m)
{
    textbuf_printf(o, "{\"id\": ");
    put_str(o, m->id);
    textbuf_printf(o, ", \"self\": %s, \"addr\": ", strcmp(m->id, v->self) == 0 ? "true" : "false");
    put_str(o, m->addr);
    textbuf_printf(o, ", \"admin\": ");
    put_str(o, m->admin);
    textbuf_printf(o, ", \"version\": ");
    put_str(o, m->version);
    textbuf_printf(o, ", \"started\": ");
    put_time(o, m->started_us);
    textbuf_printf(o, ", \"loops\": %llu, \"queued\": %llu, \"holder\": %s}",
                   (unsigned long long)m->loops, (unsigned long long)cluster_view_keys_of(v, m->id),
                   strcmp(m->id, v->queue.holder) == 0 ? "true" : "false");
}

static void put_members(struct textbuf *o, const struct cluster_view *v)
{
    textbuf_printf(o, "{\"count\": %llu, \"stale\": %s, \"list\": [",
                   (unsigned long long)v->nmembers, v->members_stale ? "true" : "false");
    for (unsigned i = 0; i < v->nlisted; i++) {
        textbuf_printf(o, "%s", i ? ", " : "");
        put_member(o, v, &v->members[i]);
    }
    textbuf_printf(o, "]}");
}

static void put_holder(struct textbuf *o, const struct cluster_view *v)
{
    const struct cluster_view_queue *q = &v->queue;
    if (!q->holder[0]) {
        textbuf_printf(o, "null");
        return;
    }
    int64_t held_us = v->now_us > q->holder_since_us ? v->now_us - q->holder_since_us : 0;
    textbuf_printf(o, "{\"member\": ");
    put_str(o, q->holder);
    textbuf_printf(o, ", \"revision\": %lld, \"since\": ", (long long)q->holder_revision);
    put_time(o, q->holder_since_us);
    textbuf_printf(o, ", \"held_ms\": %lld}", (long long)(held_us / 1000));
}

static void put_queue(struct textbuf *o, const struct cluster_view *v)
{
    const struct cluster_view_queue *q = &v->queue;
    textbuf_printf(o, "{\"length\": %llu, \"holder\": ", (unsigned long long)q->length);
    put_holder(o, v);
    textbuf_printf(o, ", \"waiters\": [");
    for (unsigned i = 0; i < q->nwaiters; i++) {
        textbuf_printf(o, "%s{\"member\": ", i ? ", " : "");
        put_str(o, q->waiters[i].member);
        textbuf_printf(o, ", \"revision\": %lld}", (long long)q->waiters[i].revision);
    }
    textbuf_printf(o, "], \"by_member\": {");
    for (unsigned i = 0; i < q->nshares; i++) {
        textbuf_printf(o, "%s", i ? ", " : "");
        put_str(o, q->shares[i].id);
        textbuf_printf(o, ": %llu", (unsigned long long)q->shares[i].keys);
    }
    textbuf_printf(o, "}, \"other_keys\": %llu}", (unsigned long long)q->other_keys);
}

/* The alarms, "NOSPACE CORRUPT", as a list. */
static void put_alarms(struct textbuf *o, const char *alarms)
{
    textbuf_printf(o, "[");
    for (const char *a = alarms + strspn(alarms, " "); *a; a += strspn(a, " ")) {
        size_t n = strcspn(a, " ");
        textbuf_printf(o, "%s\"%.*s\"", a == alarms + strspn(alarms, " ") ? "" : ", ", (int)n, a);
        a += n;
    }
    textbuf_printf(o, "]");
}

static void put_etcd_row(struct textbuf *o, const struct cluster_view *v,
                         const struct cluster_view_etcd *e)
{
    textbuf_printf(o, "{\"endpoint\": ");
    put_str(o, e->endpoint);
    textbuf_printf(o, ", \"reachable\": %s, \"error\": ", e->reachable ? "true" : "false");
    put_str(o, e->error);
    textbuf_printf(o, ", \"member_id\": ");
    put_str(o, e->member_id);
    textbuf_printf(o, ", \"version\": ");
    put_str(o, e->version);
    textbuf_printf(o,
                   ", \"leader\": %s, \"raft_term\": %llu, \"db_size\": %llu, "
                   "\"db_size_in_use\": %llu, \"quota\": %llu, \"alarms\": ",
                   e->leader ? "true" : "false", (unsigned long long)e->raft_term,
                   (unsigned long long)e->db_size, (unsigned long long)e->db_size_in_use,
                   (unsigned long long)v->quota_bytes);
    put_alarms(o, e->alarms);
    textbuf_printf(o, "}");
}

static void put_etcd(struct textbuf *o, const struct cluster_view *v)
{
    textbuf_printf(o, "[");
    for (unsigned i = 0; i < v->netcd; i++) {
        textbuf_printf(o, "%s", i ? ", " : "");
        put_etcd_row(o, v, &v->etcd[i]);
    }
    textbuf_printf(o, "]");
}

const struct cluster_view_part cluster_view_parts[] = {
    {"cluster.self", put_self},
    {"cluster.members", put_members},
    {"cluster.queue", put_queue},
    {"cluster.etcd", put_etcd},
};
const unsigned cluster_view_nparts = sizeof(cluster_view_parts) / sizeof(cluster_view_parts[0]);

/* ---- /metrics ---- */

enum { UP, LEADER, DB, IN_USE, QUOTA, ALARMS, NFAMILIES };

/* The gauges of each etcd endpoint, in this order. */
static const struct {
    const char *name, *help;
} families[NFAMILIES] = {
    {"cluster_etcd_up", "1 if the etcd endpoint answered its last status call."},
    {"cluster_etcd_leader", "1 if the etcd endpoint's member is the leader."},
    {"cluster_etcd_db_size_bytes", "etcd's backend size on the endpoint's member."},
    {"cluster_etcd_db_size_in_use_bytes",
     "etcd's backend bytes in use (the rest is free after a compaction)."},
    {"cluster_etcd_quota_bytes", "etcd's backend quota (--etcd-quota-bytes): NOSPACE past it."},
    {"cluster_etcd_alarms", "Alarms raised on the endpoint's member (NOSPACE, CORRUPT)."},
};

static unsigned count_words(const char *s)
{
    unsigned n = 0;
    for (; *s; s++)
        n += *s != ' ' && (s[1] == ' ' || s[1] == '\0');
    return n;
}

static void values_of(const struct cluster_view *v, const struct cluster_view_etcd *e,
                      uint64_t out[NFAMILIES])
{
    out[UP] = e->reachable;
    out[LEADER] = e->leader;
    out[DB] = e->db_size;
    out[IN_USE] = e->db_size_in_use;
    out[QUOTA] = v->quota_bytes;
    out[ALARMS] = count_words(e->alarms);
}

static void family(struct textbuf *o, const char *name, const char *help)
{
    textbuf_printf(o, "# HELP turnstile_%s %s\n# TYPE turnstile_%s gauge\n", name, help, name);
}

void cluster_view_metrics(struct textbuf *o, const struct cluster_view *v)
{
    uint64_t values[NFAMILIES];
    family(o, "cluster_members", "Live turnstile instances registered in etcd.");
    textbuf_printf(o, "turnstile_cluster_members %llu\n", (unsigned long long)v->nmembers);
    for (unsigned f = 0; f < NFAMILIES; f++) {
        if (f == QUOTA && !v->quota_bytes)
            continue; /* unknown: no family rather than a quota of 0 */
        family(o, families[f].name, families[f].help);
        for (unsigned i = 0; i < v->netcd; i++) {
            values_of(v, &v->etcd[i], values);
            textbuf_printf(o, "turnstile_%s{endpoint=\"%s\"} %llu\n", families[f].name,
                           v->etcd[i].endpoint, (unsigned long long)values[f]);
        }
    }
}
