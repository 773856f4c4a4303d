/* cluster: setting up and tearing down cluster mode, and its API. See
 * cluster.h and docs/design.md, "Cluster mode". */
#include "cluster.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alarm.h"
#include "commit.h"
#include "compactor.h"
#include "counts.h"
#include "failover.h"
#include "glance.h"
#include "instance.h"
#include "queue.h"
#include "session.h"
#include "ticket.h"
#include "watcher.h"

#define STOP_WAIT_US 2000000 /* for the loop's coroutines to end at detach */

static bool name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n >= CLUSTER_NAME_MAX)
        return false;
    return strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") == n;
}

static void make_keys(struct cluster *c)
{
    snprintf(c->prefix, sizeof(c->prefix), "/turnstile/%s/", c->name);
    snprintf(c->counter_key, sizeof(c->counter_key), "%scounter", c->prefix);
    snprintf(c->queue_prefix, sizeof(c->queue_prefix), "%squeue/", c->prefix);
    snprintf(c->released_key, sizeof(c->released_key), "%sreleased", c->prefix);
    snprintf(c->compact_key, sizeof(c->compact_key), "%scompact", c->prefix);
    /* Unique per process: the time and the pid, so a restarted instance
     * never mistakes its predecessor's keys for its own. */
    uint64_t id = (uint64_t)instance_wall_us() * 2654435761u ^ ((uint64_t)getpid() << 40);
    snprintf(c->self, sizeof(c->self), "%016" PRIx64, id);
}

/* Every etcd client of the instance's that may go to any member: TLS and
 * auth as configured, and the process's endpoint health (failover.h). */
static void client_ready(struct cluster *c, struct etcd_client *ec)
{
    etcd_client_secure(ec, c->secure);
    failover_share(c, ec);
}

int cluster_open(struct cluster **out, const struct cluster_settings *s)
{
    struct cluster *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    snprintf(c->endpoints, sizeof(c->endpoints), "%s", s->endpoints);
    c->call_ms = s->call_ms;
    c->ttl_s = (s->lease_ttl_ms + 999) / 1000;
    c->compact_ms = s->compact_ms;
    c->notify = s->notify;
    c->notify_arg = s->notify_arg;
    c->secure = s->secure;
    if (!name_ok(s->name) || etcd_client_init(&c->lease_client, c->endpoints) < 0 ||
        etcd_client_init(&c->maint, c->endpoints) < 0 || failover_init(c) < 0) {
        free(c);
        return -EINVAL;
    }
    client_ready(c, &c->lease_client);
    client_ready(c, &c->maint);
    snprintf(c->name, sizeof(c->name), "%s", s->name);
    make_keys(c);
    *out = c;
    return 0;
}

static int spawn(struct cluster_loop *cl, coro_fn fn, coro_t **co)
{
    int rc = loop_spawn(cl->loop, fn, cl, co);
    if (rc == 0)
        cl->running++;
    return rc;
}

/* A loop's share, before its coroutines start. */
static void share_init(struct cluster_loop *cl, struct cluster *c, struct loop *loop, unsigned i)
{
    *cl = (struct cluster_loop){.c = c, .loop = loop, .first = i == 0};
    cl->lost_post = (struct loop_post){.fn = session_on_lost, .arg = cl};
    cl->news_post = (struct loop_post){.fn = session_on_news, .arg = cl};
    cl->moved_post = (struct loop_post){.fn = failover_on_moved, .arg = cl};
    if (cl->first)
        c->alarm_post = (struct loop_post){.fn = alarm_on_suspect, .arg = cl};
    waitq_init(&cl->lease_waiters);
    waitq_init(&cl->write_line);
    snprintf(cl->key_prefix, sizeof(cl->key_prefix), "%squeue/%s.%u-", c->prefix, c->self, i);
    counts_init(cl);
    list_init(&cl->live);
    list_init(&cl->joining);
    list_init(&cl->leaving);
    list_init(&cl->done);
    mirror_init(&cl->mirror);
    etcd_client_init(&cl->queue, c->endpoints);
    etcd_client_init(&cl->section, c->endpoints);
    etcd_client_init(&cl->watchc, c->endpoints);
    client_ready(c, &cl->queue);
    client_ready(c, &cl->section);
    client_ready(c, &cl->watchc);
}

int cluster_attach(struct cluster *c, struct loop *loop)
{
    unsigned i = atomic_fetch_add(&c->nloops, 1);
    struct cluster_loop *cl = i < CLUSTER_LOOPS ? calloc(1, sizeof(*cl)) : NULL;
    if (!cl)
        return -ENOMEM;
    share_init(cl, c, loop, i);
    atomic_store(&c->loops[i], cl);
    instance_set_here(cl);
    int rc = spawn(cl, watcher_main, &cl->watcher);
    if (rc == 0)
        rc = spawn(cl, queue_joiner_main, &cl->joiner);
    if (rc == 0)
        rc = spawn(cl, queue_reaper_main, &cl->reaper);
    if (rc == 0 && cl->first)
        rc = spawn(cl, session_keeper_main, &cl->keeper);
    if (rc == 0 && cl->first)
        rc = spawn(cl, alarm_sentry_main, &cl->sentry);
    if (rc == 0 && cl->first && c->compact_ms)
        rc = spawn(cl, compactor_main, &cl->compactor);
    if (rc == 0 && cl->first)
        rc = glance_start(cl);
    if (rc == 0 && cl->first)
        rc = failover_start(cl);
    return rc;
}

/* Runs on the loop at detach: ends our coroutines, revokes the lease. */
static void stopper_main(void *arg)
{
    struct cluster_loop *cl = arg;
    struct cluster *c = cl->c;
    int64_t end = loop_now_us() + STOP_WAIT_US;
    coro_t *ours[6] = {cl->watcher, cl->joiner, cl->reaper, cl->keeper, cl->compactor, cl->sentry};
    for (int i = 0; i < 6; i++)
        if (ours[i] && loop_parked(ours[i]))
            loop_cancel(ours[i]);
    session_on_news(cl); /* requests waiting for a lease: there will be none */
    if (cl->first) {
        glance_stop(c);
        failover_cancel(c);
    }
    while (cl->running > 0 && loop_now_us() < end)
        loop_sleep_us(1000);
    int64_t lease = atomic_exchange(&c->lease, 0);
    if (cl->first && lease)
        etcd_lease_revoke(&c->lease_client, lease, instance_call_deadline(c, LOOP_FOREVER));
    cl->running = -1;
    loop_break(cl->loop);
}

void cluster_detach(struct cluster *c, struct loop *loop)
{
    struct cluster_loop *cl = instance_here();
    if (!cl || cl->loop != loop)
        return;
    atomic_store(&c->stopping, true);
    if (loop_spawn(loop, stopper_main, cl, NULL) == 0)
        while (cl->running != -1)
            loop_run(loop);
    etcd_client_fini(&cl->queue);
    etcd_client_fini(&cl->section);
    etcd_client_fini(&cl->watchc);
    if (cl->first) {
        etcd_client_fini(&c->lease_client);
        etcd_client_fini(&c->maint);
        glance_close(c);
        failover_fini(c);
    }
    ticket_free_all(&cl->live);
    ticket_free_all(&cl->leaving);
    ticket_free_all(&cl->done);
    mirror_fini(&cl->mirror);
    free(cl->slots.free);
    instance_set_here(NULL);
}

void cluster_close(struct cluster *c)
{
    unsigned n = atomic_load(&c->nloops);
    for (unsigned i = 0; i < n && i < CLUSTER_LOOPS; i++) {
        struct cluster_loop *cl = atomic_load(&c->loops[i]);
        if (cl)
            pthread_mutex_destroy(&cl->mu);
        free(cl);
    }
    glance_free(c);
    free(c);
}

/* ---- the lock and the counter ---- */

int cluster_acquire(struct cluster *c, int64_t deadline_us, uint64_t max_waiters,
                    struct cluster_hold *h)
{
    (void)c; /* the calling loop's share is the one */
    return queue_acquire(instance_here(), deadline_us, max_waiters, &h->t);
}

int cluster_commit(struct cluster *c, struct cluster_hold *h, struct cluster_idem *idem,
                   uint64_t *n)
{
    (void)c;
    return commit_write(instance_here(), h->t, idem, n);
}

uint64_t cluster_counter(const struct cluster *c)
{
    return atomic_load_explicit(&c->counter, memory_order_relaxed);
}

void cluster_lock_stats(struct cluster *c, struct lock_stats *out, bool *locked)
{
    counts_lock(c, out, locked);
}

void cluster_read_stats(struct cluster *c, struct stats_cluster *out)
{
    counts_sum(c, out);
}

void cluster_announce(struct cluster *c, const char *addr, const char *admin, unsigned loops,
                      uint64_t etcd_quota_bytes)
{
    struct glance_self me = {.loops = loops, .etcd_quota_bytes = etcd_quota_bytes};
    snprintf(me.addr, sizeof(me.addr), "%s", addr);
    snprintf(me.admin, sizeof(me.admin), "%s", admin);
    glance_announce(c, &me);
}

void cluster_read_view(struct cluster *c, struct cluster_view *out)
{
    glance_read(c, out);
}
