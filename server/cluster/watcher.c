/* watcher: the watch and the mirror. See watcher.h. */
#include "watcher.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "counter.h"
#include "counts.h"
#include "etcd_watch.h"
#include "ticket.h"

#define LIVENESS_US 1000000 /* a watch silent this long while requests wait is checked */

static void on_queue_put(struct cluster_loop *cl, const struct etcd_kv *kv)
{
    struct mirror_entry *e;
    if (mirror_add(&cl->mirror, kv->key, kv->key_len, &e) < 0)
        return; /* out of memory: the next resync repairs the mirror */
    /* The value is the key's arrival sequence (queue.h); anything else
     * orders as 0 within its revision. */
    mirror_queue(&cl->mirror, e, kv->create_revision, strtoull(kv->value, NULL, 10));
    /* Ours, but no request has it: a PUT applied after its request gave
     * up. It would block the queue until the lease ends. */
    if (!e->tag && ticket_key_is_ours(cl, e))
        ticket_ghost(cl, e, kv->lease);
}

static void on_queue_delete(struct cluster_loop *cl, const struct etcd_kv *kv)
{
    struct mirror_entry *e = mirror_find(&cl->mirror, kv->key, kv->key_len);
    if (!e)
        return;
    struct ticket *t = e->tag;
    if (!t) {
        mirror_remove(&cl->mirror, e);
        return;
    }
    mirror_unqueue(&cl->mirror, e);
    if (t->state == T_QUEUED)
        ticket_lost(t, kv->mod_revision);
}

static void on_released(struct cluster_loop *cl, const struct etcd_kv *kv)
{
    long long at = 0;
    char who[17] = "";
    if (sscanf(kv->value, "%lld %16s", &at, who) == 2) {
        cl->released_wall_us = at;
        cl->released_elsewhere = strcmp(who, cl->c->self) != 0;
    }
}

static void apply_event(struct cluster_loop *cl, const struct etcd_event *ev)
{
    const struct etcd_kv *kv = &ev->kv;
    const struct cluster *c = cl->c;
    size_t qlen = strlen(c->queue_prefix);
    if (kv->mod_revision <= cl->read_rev)
        return; /* the range read it already (a txn's events share a revision) */
    if (kv->mod_revision > cl->revision)
        cl->revision = kv->mod_revision;
    bool queue = kv->key_len > qlen && memcmp(kv->key, c->queue_prefix, qlen) == 0;
    if (queue && ev->type == ETCD_EVENT_PUT)
        on_queue_put(cl, kv);
    else if (queue)
        on_queue_delete(cl, kv);
    else if (ev->type == ETCD_EVENT_PUT && strcmp(kv->key, c->counter_key) == 0)
        counter_read(cl, &(struct etcd_op_result){.nkvs = 1, .kvs = (struct etcd_kv *)kv});
    else if (ev->type == ETCD_EVENT_PUT && strcmp(kv->key, c->released_key) == 0)
        on_released(cl, kv);
    ticket_collect(cl);
    ticket_grant_head(cl);
    counts_publish(cl);
}

/* Forgets the mirror's queue: what is not ours goes, ours wait for the range. */
static void mirror_forget(struct cluster_loop *cl)
{
    struct mirror_entry *e;
    while ((e = mirror_head(&cl->mirror))) {
        if (e->tag)
            mirror_unqueue(&cl->mirror, e);
        else
            mirror_remove(&cl->mirror, e);
    }
}

/* Reads the queue and the counter at one revision, after the watch was
 * created: with the events after it, the mirror misses nothing. */
static int resync(struct cluster_loop *cl)
{
    struct cluster *c = cl->c;
    struct etcd_op ops[2] = {instance_range_op(c->queue_prefix, true, false),
                             instance_range_op(c->counter_key, false, false)};
    ops[0].range.sort_order = ETCD_SORT_ASCEND;
    ops[0].range.sort_target = ETCD_SORT_CREATE;
    struct etcd_txn txn = {.success = ops, .nsuccess = 2};
    struct etcd_reply r;
    int rc = etcd_txn(&cl->watchc, &txn, &r, instance_call_deadline(c, LOOP_FOREVER));
    if (rc < 0)
        return rc;
    mirror_forget(cl);
    cl->revision = cl->read_rev = r.revision;
    for (size_t i = 0; i < r.ops[0].nkvs; i++)
        on_queue_put(cl, &r.ops[0].kvs[i]);
    rc = counter_read(cl, &r.ops[1]);
    etcd_reply_free(&r);
    ticket_drop_missing(cl, cl->revision);
    ticket_collect(cl); /* the range is the truth now */
    return rc;
}

/* A watch can go silent without breaking (its member stalled): while
 * requests wait, compare with a fresh read now and then. */
static bool watch_alive(struct cluster_loop *cl)
{
    struct etcd_range_req req = {
        .key = cl->c->counter_key, .key_len = strlen(cl->c->counter_key), .count_only = true};
    struct etcd_reply r;
    if (cl->lock.waiters == 0) /* written on this thread alone */
        return true;
    int rc = etcd_range(&cl->watchc, &req, &r, instance_call_deadline(cl->c, LOOP_FOREVER));
    bool alive = rc == 0 && r.revision <= cl->revision;
    etcd_reply_free(&r);
    return alive || rc == -ECANCELED;
}

/* Until the watch breaks, or its endpoint is abandoned (by any client of
 * the process: failover_on_moved cancels this wait), or it stays silent and
 * a fresh read shows it missed something. */
static void follow(struct cluster_loop *cl, struct etcd_watch *w)
{
    struct etcd_event ev;
    int64_t quiet_until = loop_now_us() + LIVENESS_US;
    while (!atomic_load(&cl->c->stopping)) {
        int rc = etcd_watch_next(w, &ev, quiet_until);
        if (rc == 0) {
            apply_event(cl, &ev);
            quiet_until = loop_now_us() + LIVENESS_US;
            continue;
        }
        if (rc != -ETIMEDOUT && rc != -ECANCELED)
            return;
        if (etcd_watch_abandoned(w) || (rc == -ETIMEDOUT && !watch_alive(cl)) ||
            etcd_watch_abandoned(w)) /* again: learnt while watch_alive() waited */
            return;
        if (rc == -ETIMEDOUT)
            quiet_until = loop_now_us() + LIVENESS_US;
    }
}

void watcher_main(void *arg)
{
    struct cluster_loop *cl = arg;
    struct cluster *c = cl->c;
    while (!atomic_load(&c->stopping)) {
        struct etcd_watch w;
        int rc = etcd_watch_open(&cl->watchc, &w, c->prefix, strlen(c->prefix), true,
                                 instance_call_deadline(c, LOOP_FOREVER));
        if (rc < 0) {
            loop_sleep_us(CLUSTER_RETRY_US);
            continue;
        }
        rc = resync(cl);
        if (rc == 0) {
            cl->synced = true;
            counts_bump(cl, &cl->shown.resyncs);
            ticket_grant_head(cl);
            counts_publish(cl);
            cl->watch = &w;
            follow(cl, &w);
            cl->watch = NULL;
        } else {
            loop_sleep_us(CLUSTER_RETRY_US);
        }
        cl->synced = false;
        counts_publish(cl);
        etcd_watch_close(&w);
    }
    cl->running--;
}
