/* glance: the cluster at a glance, gathered. See glance.h. */
#include "glance.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alarm.h"
#include "failover.h"
#include "health.h"
#include "members.h"

struct glance {
    struct cluster_loop *cl; /* the first loop's, whose mirror is sampled */
    pthread_mutex_t mu;
    struct cluster_view shown; /* under mu */
    struct glance_self me;     /* set before the loops run */
    struct members_self reg;
    int64_t registered_lease; /* the lease this instance's key is on; 0: none yet */
    /* The sampler's: the holder it saw last, and when. */
    char head_key[CLUSTER_KEY_MAX];
    int64_t head_since_us, sampled_us;
    struct cluster_view work; /* the poller's round, before it is shown */
    struct etcd_client poll;  /* registration, members */
    struct etcd_client status[CLUSTER_VIEW_ETCD];
    unsigned nstatus;
    coro_t *sampler, *poller;
};

/* ---- the queue, from the first loop's mirror ---- */

/* The member of a queue key: I of queue/I.L-S. */
static void member_of(const struct cluster *c, const struct mirror_entry *e,
                      char id[CLUSTER_VIEW_ID])
{
    size_t plen = strlen(c->queue_prefix);
    const char *name = e->key_len > plen ? e->key + plen : "";
    snprintf(id, CLUSTER_VIEW_ID, "%.*s", (int)strcspn(name, "."), name);
}

static void count_key(struct cluster_view_queue *q, const char *id)
{
    for (unsigned i = 0; i < q->nshares; i++)
        if (strcmp(q->shares[i].id, id) == 0) {
            q->shares[i].keys++;
            return;
        }
    if (q->nshares == CLUSTER_VIEW_MEMBERS) {
        q->other_keys++;
        return;
    }
    struct cluster_view_share *s = &q->shares[q->nshares++];
    snprintf(s->id, sizeof(s->id), "%s", id);
    s->keys = 1;
}

/* When the holder got the lock: a holder new since the last sample got it
 * from the last release (its time is in `released`), unless it found the
 * queue empty after that release, at some time since the last sample. */
static void holder_since(struct glance *g, const struct mirror_entry *head, int64_t now_us)
{
    if (strcmp(head->key, g->head_key) == 0)
        return;
    snprintf(g->head_key, sizeof(g->head_key), "%s", head->key);
    int64_t released = g->cl->released_wall_us;
    g->head_since_us = g->sampled_us == 0         ? now_us
                       : released > g->sampled_us ? released
                                                  : g->sampled_us;
}

/* Walks the whole queue to count keys per member: on the first loop, no
 * I/O, a few microseconds per thousand keys. */
static void sample_queue(struct glance *g, struct cluster_view_queue *q)
{
    const struct mirror *m = &g->cl->mirror;
    const struct mirror_entry *head = mirror_head(m);
    int64_t now_us = instance_wall_us();
    unsigned pos = 0;
    *q = (struct cluster_view_queue){.length = m->queued};
    if (!head)
        g->head_key[0] = '\0';
    else
        holder_since(g, head, now_us);
    for (const struct mirror_entry *e = head; e; e = mirror_next(m, e), pos++) {
        char id[CLUSTER_VIEW_ID];
        member_of(g->cl->c, e, id);
        count_key(q, id);
        if (pos == 0) {
            snprintf(q->holder, sizeof(q->holder), "%s", id);
            q->holder_revision = e->create_revision;
            q->holder_since_us = g->head_since_us;
        } else if (q->nwaiters < CLUSTER_VIEW_WAITERS) {
            snprintf(q->waiters[q->nwaiters].member, CLUSTER_VIEW_ID, "%s", id);
            q->waiters[q->nwaiters++].revision = e->create_revision;
        }
    }
    g->sampled_us = now_us;
}

/* This instance's key, under each new lease (and again if it went). */
static void register_self(struct glance *g)
{
    struct cluster *c = g->cl->c;
    int64_t lease = atomic_load(&c->lease);
    if (!lease || lease == g->registered_lease)
        return;
    if (members_register(&g->poll, c, &g->reg, lease, instance_call_deadline(c, LOOP_FOREVER)) == 0)
        g->registered_lease = lease;
}

static void sampler_main(void *arg)
{
    struct glance *g = arg;
    struct cluster_loop *cl = g->cl;
    struct cluster_view_queue q;
    while (!atomic_load(&cl->c->stopping)) {
        sample_queue(g, &q);
        pthread_mutex_lock(&g->mu);
        g->shown.queue = q;
        pthread_mutex_unlock(&g->mu);
        register_self(g);
        loop_sleep_us(GLANCE_SAMPLE_US);
    }
    cl->running--;
}

/* ---- members and etcd's health ---- */

/* Reads what the round shows into g->work; members that could not be
 * read keep their last values, and so do alarms (alarm.h). */
static void poll_round(struct glance *g)
{
    struct cluster *c = g->cl->c;
    struct cluster_view *w = &g->work;
    w->members_stale = members_read(&g->poll, c, w, instance_call_deadline(c, LOOP_FOREVER)) < 0;
    bool self_listed = false;
    for (unsigned i = 0; i < w->nlisted; i++)
        self_listed = self_listed || strcmp(w->members[i].id, c->self) == 0;
    if (!w->members_stale && !self_listed && w->nmembers < CLUSTER_VIEW_MEMBERS)
        g->registered_lease = 0; /* the key went (deleted by hand?): the sampler puts it back */
    for (unsigned i = 0; i < g->nstatus; i++)
        health_status(&g->status[i], &w->etcd[i], instance_call_deadline(c, LOOP_FOREVER));
    struct etcd_alarms alarms;
    alarm_read(c, &alarms); /* the sentry's reading: one reader of etcd's alarms */
    health_alarms(&alarms, w->etcd, g->nstatus);
}

static void poller_main(void *arg)
{
    struct glance *g = arg;
    struct cluster_loop *cl = g->cl;
    while (!atomic_load(&cl->c->stopping)) {
        poll_round(g);
        pthread_mutex_lock(&g->mu);
        g->shown.nmembers = g->work.nmembers;
        g->shown.members_stale = g->work.members_stale;
        g->shown.nlisted = g->work.nlisted;
        memcpy(g->shown.members, g->work.members, sizeof(g->shown.members));
        memcpy(g->shown.etcd, g->work.etcd, sizeof(g->shown.etcd));
        pthread_mutex_unlock(&g->mu);
        loop_sleep_us(GLANCE_POLL_US);
    }
    cl->running--;
}

/* ---- life ---- */

/* A client per endpoint, each knowing only its own: a status call must
 * reach the member it names, never move on to another (so none of them
 * follows, or reports to, the process's endpoint health: failover.h). */
static int open_clients(struct glance *g, struct cluster *c)
{
    struct etcd_endpoints eps;
    int rc = etcd_endpoints_parse(&eps, c->endpoints);
    if (rc == 0)
        rc = etcd_client_init(&g->poll, c->endpoints);
    if (rc == 0) { /* TLS and auth, and the process's endpoint health, as every client */
        etcd_client_secure(&g->poll, c->secure);
        failover_share(c, &g->poll);
    }
    for (unsigned i = 0; rc == 0 && i < eps.n && i < CLUSTER_VIEW_ETCD; i++) {
        rc = etcd_client_init(&g->status[i], eps.at[i].url);
        if (rc == 0) {
            etcd_client_secure(&g->status[i], c->secure);
            g->nstatus = i + 1;
        }
        snprintf(g->work.etcd[i].endpoint, sizeof(g->work.etcd[i].endpoint), "%s", eps.at[i].url);
    }
    g->work.netcd = g->nstatus;
    return rc;
}

static int spawn(struct glance *g, coro_fn fn, coro_t **co)
{
    int rc = loop_spawn(g->cl->loop, fn, g, co);
    if (rc == 0)
        g->cl->running++;
    return rc;
}

int glance_start(struct cluster_loop *cl)
{
    struct cluster *c = cl->c;
    struct glance *g = calloc(1, sizeof(*g));
    if (!g)
        return -ENOMEM;
    g->cl = cl;
    pthread_mutex_init(&g->mu, NULL);
    g->reg.started_us = instance_wall_us();
    c->glance = g;
    int rc = open_clients(g, c);
    g->shown.netcd = g->work.netcd;
    memcpy(g->shown.etcd, g->work.etcd, sizeof(g->shown.etcd));
    if (rc == 0)
        rc = spawn(g, sampler_main, &g->sampler);
    if (rc == 0)
        rc = spawn(g, poller_main, &g->poller);
    return rc;
}

void glance_announce(struct cluster *c, const struct glance_self *me)
{
    struct glance *g = c->glance;
    if (!g)
        return;
    snprintf(g->reg.addr, sizeof(g->reg.addr), "%s", me->addr);
    snprintf(g->reg.admin, sizeof(g->reg.admin), "%s", me->admin);
    g->reg.loops = me->loops;
    pthread_mutex_lock(&g->mu);
    g->shown.quota_bytes = me->etcd_quota_bytes;
    pthread_mutex_unlock(&g->mu);
}

void glance_stop(struct cluster *c)
{
    struct glance *g = c->glance;
    coro_t *ours[2] = {g ? g->sampler : NULL, g ? g->poller : NULL};
    for (int i = 0; i < 2; i++)
        if (ours[i] && loop_parked(ours[i]))
            loop_cancel(ours[i]);
}

void glance_close(struct cluster *c)
{
    struct glance *g = c->glance;
    if (!g)
        return;
    etcd_client_fini(&g->poll);
    for (unsigned i = 0; i < g->nstatus; i++)
        etcd_client_fini(&g->status[i]);
}

void glance_free(struct cluster *c)
{
    struct glance *g = c->glance;
    if (!g)
        return;
    pthread_mutex_destroy(&g->mu);
    free(g);
    c->glance = NULL;
}

void glance_read(struct cluster *c, struct cluster_view *out)
{
    struct glance *g = c->glance;
    if (g) {
        pthread_mutex_lock(&g->mu);
        *out = g->shown;
        pthread_mutex_unlock(&g->mu);
    } else {
        *out = (struct cluster_view){0};
    }
    snprintf(out->self, sizeof(out->self), "%s", c->self);
    out->now_us = instance_wall_us();
}
