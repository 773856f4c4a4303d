/* failover: the shared table, moving off abandoned endpoints, and the
 * probes. See failover.h. */
#include "failover.h"

#include <errno.h>
#include <string.h>

#define PROBE_US 200000 /* between two checks of an abandoned endpoint */

/* An endpoint was abandoned or restored, on any thread: every loop moves
 * its calls on its own thread; this one's at once (with one loop there is
 * no inbox to post to). */
static void on_change(void *arg)
{
    struct cluster *c = arg;
    unsigned n = atomic_load(&c->nloops);
    for (unsigned i = 0; i < n && i < CLUSTER_LOOPS; i++) {
        struct cluster_loop *cl = atomic_load(&c->loops[i]);
        if (!cl || atomic_exchange(&cl->moved_posted, true))
            continue;
        if (cl->loop == loop_current())
            failover_on_moved(cl);
        else
            loop_post(cl->loop, &cl->moved_post);
    }
}

int failover_init(struct cluster *c)
{
    const struct etcd_endpoints *e = &c->lease_client.endpoints;
    c->health = (struct endpoints){.on_change = on_change, .arg = c};
    for (unsigned i = 0; i < e->n; i++)
        if (endpoints_add(&c->health, e->at[i].url) < 0)
            return -EINVAL;
    return 0;
}

void failover_share(struct cluster *c, struct etcd_client *ec)
{
    ec->endpoints.health = &c->health;
    /* Half a call: a caller whose own deadline is shorter than that (a
     * short --lock-timeout-ms) does not make the member look dead. */
    ec->endpoints.blame_us = c->call_ms * 1000 / 2;
}

void failover_on_moved(void *arg)
{
    struct cluster_loop *cl = arg;
    atomic_store(&cl->moved_posted, false);
    etcd_client_move(&cl->queue);
    etcd_client_move(&cl->section);
    etcd_client_move(&cl->watchc);
    if (cl->first) {
        etcd_client_move(&cl->c->lease_client);
        etcd_client_move(&cl->c->maint);
    }
    /* The watcher reopens on a healthy endpoint when its wait ends
     * (watcher.c): its member may have stopped sending events. */
    if (cl->watch && etcd_watch_abandoned(cl->watch) && loop_parked(cl->watcher))
        loop_cancel(cl->watcher);
}

/* Linearizable (the range's default): served only with a leader that a
 * quorum follows, which is what a write needs too. */
static void probe_once(struct failover_probe *p)
{
    struct cluster *c = p->cl->c;
    struct etcd_range_req req = {
        .key = c->counter_key, .key_len = strlen(c->counter_key), .count_only = true};
    struct etcd_reply r;
    int rc = etcd_range(&p->client, &req, &r, instance_call_deadline(c, LOOP_FOREVER));
    etcd_reply_free(&r);
    if (rc == 0)
        endpoints_restore(&c->health, p->endpoint);
}

static void probe_main(void *arg)
{
    struct failover_probe *p = arg;
    struct cluster *c = p->cl->c;
    while (!atomic_load(&c->stopping)) {
        if (endpoints_bad(&c->health, p->endpoint))
            probe_once(p);
        loop_sleep_us(PROBE_US);
    }
    p->cl->running--;
}

int failover_start(struct cluster_loop *cl)
{
    struct cluster *c = cl->c;
    for (unsigned i = 0; i < c->health.n; i++) {
        struct failover_probe *p = &c->probes[i];
        *p = (struct failover_probe){.cl = cl, .endpoint = i};
        int rc = etcd_client_init(&p->client, c->health.url[i]);
        if (rc == 0)
            etcd_client_secure(&p->client, c->secure);
        if (rc == 0)
            rc = loop_spawn(cl->loop, probe_main, p, &p->co);
        if (rc < 0)
            return rc;
        cl->running++;
    }
    return 0;
}

void failover_cancel(struct cluster *c)
{
    for (unsigned i = 0; i < c->health.n; i++)
        if (c->probes[i].co && loop_parked(c->probes[i].co))
            loop_cancel(c->probes[i].co);
}

void failover_fini(struct cluster *c)
{
    for (unsigned i = 0; i < c->health.n; i++)
        if (c->probes[i].cl)
            etcd_client_fini(&c->probes[i].client);
}
