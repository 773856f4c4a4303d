/* counts: per-loop counts and their sums. See counts.h. */
#include "counts.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "etcd_secure.h"

_Static_assert(ETCD_ERR_COUNT == STATS_ETCD_ERRORS, "stats.h counts etcd errors by etcd's kinds");

void counts_init(struct cluster_loop *cl)
{
    pthread_mutex_init(&cl->mu, NULL);
    lock_stats_init(&cl->lock);
    cl->shown = (struct stats_cluster){0};
    hist_init(&cl->shown.handoff_us);
}

void counts_bump(struct cluster_loop *cl, uint64_t *field)
{
    counts_add(cl, field, 1);
}

void counts_add(struct cluster_loop *cl, uint64_t *field, uint64_t n)
{
    pthread_mutex_lock(&cl->mu);
    *field += n;
    pthread_mutex_unlock(&cl->mu);
}

void counts_waiting(struct cluster_loop *cl, int delta)
{
    pthread_mutex_lock(&cl->mu);
    lock_stats_waiting(&cl->lock, cl->lock.waiters + (uint64_t)delta);
    pthread_mutex_unlock(&cl->mu);
}

void counts_acquired(struct cluster_loop *cl, int64_t waited_us, bool contended)
{
    pthread_mutex_lock(&cl->mu);
    lock_stats_acquired(&cl->lock, waited_us, contended);
    pthread_mutex_unlock(&cl->mu);
}

void counts_held(struct cluster_loop *cl, int64_t held_us)
{
    pthread_mutex_lock(&cl->mu);
    lock_stats_released(&cl->lock, held_us);
    pthread_mutex_unlock(&cl->mu);
}

void counts_refused(struct cluster_loop *cl, int rc)
{
    pthread_mutex_lock(&cl->mu);
    lock_stats_refused(&cl->lock, rc);
    pthread_mutex_unlock(&cl->mu);
}

void counts_handoff(struct cluster_loop *cl, int64_t handoff_us)
{
    pthread_mutex_lock(&cl->mu);
    hist_record(&cl->shown.handoff_us, (uint64_t)handoff_us);
    pthread_mutex_unlock(&cl->mu);
}

void counts_publish(struct cluster_loop *cl)
{
    const struct etcd_client *clients[5] = {&cl->queue, &cl->section, &cl->watchc,
                                            cl->first ? &cl->c->lease_client : NULL,
                                            cl->first ? &cl->c->maint : NULL};
    struct stats_cluster *s = &cl->shown;
    pthread_mutex_lock(&cl->mu);
    s->healthy = cl->synced;
    s->queue_length = cl->mirror.queued;
    s->revision = (uint64_t)cl->revision;
    memset(s->errors, 0, sizeof(s->errors));
    for (int i = 0; i < 5; i++)
        for (int e = 0; clients[i] && e < ETCD_ERR_COUNT; e++)
            s->errors[e] += clients[i]->stats.errors[e];
    snprintf(s->endpoint, sizeof(s->endpoint), "%s", etcd_endpoint(&cl->queue));
    pthread_mutex_unlock(&cl->mu);
}

/* ---- sums, from any thread ---- */

/* The loops attached so far, in order; NULL past the last. */
static struct cluster_loop *share_at(struct cluster *c, unsigned i)
{
    unsigned n = atomic_load(&c->nloops);
    return i < n && i < CLUSTER_LOOPS ? atomic_load(&c->loops[i]) : NULL;
}

void counts_lock(struct cluster *c, struct lock_stats *out, bool *locked)
{
    struct cluster_loop *cl;
    lock_stats_init(out);
    *locked = false;
    for (unsigned i = 0; (cl = share_at(c, i)); i++) {
        pthread_mutex_lock(&cl->mu);
        lock_stats_add(out, &cl->lock);
        *locked = *locked || cl->shown.queue_length > 0;
        pthread_mutex_unlock(&cl->mu);
    }
}

/* Sums what adds up; the queue and the revision are the most any loop saw. */
static void add(struct stats_cluster *to, const struct stats_cluster *from)
{
    if (from->queue_length > to->queue_length)
        to->queue_length = from->queue_length;
    if (from->revision > to->revision)
        to->revision = from->revision;
    to->lease_grants += from->lease_grants;
    to->lease_losses += from->lease_losses;
    to->fenced += from->fenced;
    to->unavailable += from->unavailable;
    to->unknown += from->unknown;
    to->resyncs += from->resyncs;
    to->local_handoffs += from->local_handoffs;
    to->pipelined += from->pipelined;
    to->grouped += from->grouped;
    to->compactions += from->compactions;
    for (int e = 0; e < STATS_ETCD_ERRORS; e++)
        to->errors[e] += from->errors[e];
    hist_merge(&to->handoff_us, &from->handoff_us);
}

void counts_sum(struct cluster *c, struct stats_cluster *out)
{
    struct cluster_loop *cl;
    *out = (struct stats_cluster){0};
    hist_init(&out->handoff_us);
    bool healthy = share_at(c, 0) != NULL;
    for (unsigned i = 0; (cl = share_at(c, i)); i++) {
        pthread_mutex_lock(&cl->mu);
        healthy = healthy && cl->shown.healthy;
        out->waiters += cl->lock.waiters;
        add(out, &cl->shown);
        if (i == 0)
            memcpy(out->endpoint, cl->shown.endpoint, sizeof(out->endpoint));
        pthread_mutex_unlock(&cl->mu);
    }
    int64_t lease = atomic_load(&c->lease);
    unsigned alarms = atomic_load(&c->alarms);
    out->healthy = healthy && lease && !alarms;
    out->alarm_nospace = (alarms & ETCD_ALARM_NOSPACE) != 0;
    out->alarm_corrupt = (alarms & ETCD_ALARM_CORRUPT) != 0;
    out->lease_ttl_ms = (uint64_t)atomic_load(&c->lease_ttl_ms);
    out->endpoints_abandoned = atomic_load(&c->health.abandoned);
    endpoints_describe(&c->health, out->endpoints, sizeof(out->endpoints));
    snprintf(out->lease, sizeof(out->lease), lease ? "%" PRIx64 : "", (uint64_t)lease);
    if (c->secure)
        etcd_secure_refusal(c->secure, out->error, sizeof(out->error));
}
