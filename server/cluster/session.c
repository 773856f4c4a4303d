/* session: the lease. See session.h. */
#include "session.h"

#include <errno.h>
#include <inttypes.h>

#include "counts.h"
#include "log.h"
#include "ticket.h"

/* On cl's own loop: if the keeper lives here (the first loop), it asks for
 * a new lease now rather than at its next renewal. */
static void wake_keeper(struct cluster_loop *cl)
{
    if (cl->keeper && loop_parked(cl->keeper))
        loop_wake(cl->keeper, 0);
}

void session_on_lost(void *arg)
{
    struct cluster_loop *cl = arg;
    atomic_store(&cl->lost_posted, false);
    ticket_drop_lease(cl, atomic_load(&cl->lost_lease));
    wake_keeper(cl);
}

/* The other loops' waiting requests lose their place too, even when etcd
 * is too far away for their watches to see the keys go. */
static void tell_other_loops(struct cluster_loop *from, int64_t lease)
{
    struct cluster *c = from->c;
    unsigned n = atomic_load(&c->nloops);
    for (unsigned i = 0; i < n && i < CLUSTER_LOOPS; i++) {
        struct cluster_loop *other = atomic_load(&c->loops[i]);
        if (!other || other == from)
            continue;
        atomic_store(&other->lost_lease, lease);
        if (!atomic_exchange(&other->lost_posted, true))
            loop_post(other->loop, &other->lost_post);
    }
}

void session_lost(struct cluster_loop *cl, int64_t lease)
{
    struct cluster *c = cl->c;
    int64_t expect = lease;
    if (!atomic_compare_exchange_strong(&c->lease, &expect, 0))
        return;
    log_msg(LOG_LEVEL_WARN, "cluster: lease %" PRIx64 " lost; waiting requests get 503",
            (uint64_t)lease);
    counts_bump(cl, &cl->shown.lease_losses);
    ticket_drop_lease(cl, lease);
    tell_other_loops(cl, lease);
    wake_keeper(cl); /* or the first loop does, as it is told */
}

static void wake_waiters(struct cluster_loop *cl)
{
    struct waitq_entry *e;
    while ((e = waitq_head(&cl->lease_waiters)))
        waitq_wake(e, 0);
}

void session_on_news(void *arg)
{
    struct cluster_loop *cl = arg;
    atomic_store(&cl->news_posted, false);
    wake_waiters(cl);
}

/* From the keeper: a lease came, or etcd did not answer; every loop's
 * waiting requests look again, and systemd is told. */
static void announce(struct cluster_loop *from, bool down, const char *state)
{
    struct cluster *c = from->c;
    unsigned n = atomic_load(&c->nloops);
    atomic_store(&c->etcd_down, down);
    for (unsigned i = 0; i < n && i < CLUSTER_LOOPS; i++) {
        struct cluster_loop *other = atomic_load(&c->loops[i]);
        if (other && other != from && !atomic_exchange(&other->news_posted, true))
            loop_post(other->loop, &other->news_post);
    }
    wake_waiters(from);
    if (c->notify)
        c->notify(c->notify_arg, state);
}

int session_wait(struct cluster_loop *cl, int64_t deadline_us, int64_t *lease)
{
    struct cluster *c = cl->c;
    while (!(*lease = atomic_load(&c->lease))) {
        if (atomic_load(&c->etcd_down) || atomic_load(&c->stopping))
            return -EAGAIN;
        struct waitq_entry e = {.co = coro_current()};
        waitq_join(&cl->lease_waiters, &e, NULL);
        int rc = waitq_park(&e, deadline_us);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int grant(struct cluster_loop *cl)
{
    struct cluster *c = cl->c;
    int64_t id, ttl;
    int rc = etcd_lease_grant(&c->lease_client, c->ttl_s, &id, &ttl,
                              instance_call_deadline(c, LOOP_FOREVER));
    if (rc < 0)
        return rc;
    if (c->stale_lease) /* its keys would block the queue until it expires */
        etcd_lease_revoke(&c->lease_client, c->stale_lease,
                          instance_call_deadline(c, LOOP_FOREVER));
    c->stale_lease = 0;
    atomic_store(&c->lease_ttl_ms, ttl * 1000);
    atomic_store(&c->lease, id);
    counts_bump(cl, &cl->shown.lease_grants);
    log_msg(LOG_LEVEL_INFO, "cluster: lease %" PRIx64 " granted, TTL %" PRId64 " s", (uint64_t)id,
            ttl);
    return 0;
}

/* Renews the lease every third of its TTL; a lease that could not be
 * renewed for a whole TTL is taken as lost here (etcd may still have it:
 * it is revoked once etcd answers). */
static void keep(struct cluster_loop *cl, int64_t id, int64_t *valid_until)
{
    struct cluster *c = cl->c;
    int64_t ttl_us = atomic_load(&c->lease_ttl_ms) * 1000, sent = loop_now_us();
    int rc =
        etcd_lease_keepalive(&c->lease_client, id, NULL, instance_call_deadline(c, *valid_until));
    if (rc == 0) {
        *valid_until = sent + ttl_us;
        loop_sleep_us(ttl_us / 3);
        return;
    }
    if (rc == -ENOENT || loop_now_us() >= *valid_until) {
        if (rc != -ENOENT)
            c->stale_lease = id;
        session_lost(cl, id);
        return;
    }
    loop_sleep_us(CLUSTER_RETRY_US);
}

void session_keeper_main(void *arg)
{
    struct cluster_loop *cl = arg;
    struct cluster *c = cl->c;
    bool said_down = false;
    int64_t valid_until = 0;
    while (!atomic_load(&c->stopping)) {
        int64_t id = atomic_load(&c->lease);
        if (id) {
            keep(cl, id, &valid_until);
            counts_publish(cl);
            continue;
        }
        int rc = grant(cl);
        counts_publish(cl);
        if (rc == 0) {
            said_down = false;
            valid_until = loop_now_us() + atomic_load(&c->lease_ttl_ms) * 1000;
            announce(cl, false, "READY=1\nSTATUS=cluster mode: a lease is held, etcd answers");
            continue;
        }
        if (!said_down) { /* once per outage, not every retry */
            log_msg(LOG_LEVEL_WARN, "cluster: etcd (%s) does not answer: %s; /access answers 503",
                    etcd_endpoint(&c->lease_client), etcd_last_error(&c->lease_client));
            announce(cl, true, "STATUS=cluster mode: etcd does not answer; /access answers 503");
        }
        said_down = true;
        loop_sleep_us(CLUSTER_RETRY_US);
    }
    cl->running--;
}
