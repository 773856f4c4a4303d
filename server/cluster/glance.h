/* glance: the cluster at a glance (issue 23), gathered on the first loop
 * for /stats, /metrics and the page (cluster_view.h says what it holds).
 *
 * Two coroutines of the first loop, each with etcd clients of its own so
 * that nothing here ever queues on the lock's path:
 *   - the sampler, every GLANCE_SAMPLE_US: copies the head and the first
 *     waiters of the loop's mirror (no I/O: every loop's mirror holds the
 *     whole queue) and counts its keys per member; and registers this
 *     instance (members.h) under each new lease;
 *   - the poller, every GLANCE_POLL_US: reads the live members, and each
 *     etcd endpoint's status (health.h): one call per endpoint a round;
 *     and puts in each endpoint's row the alarms of its member as the
 *     alarm sentry last read them (alarm.h: it alone reads them).
 * Both publish into one view under a mutex that any thread copies. */
#ifndef TURNSTILE_CLUSTER_GLANCE_H
#define TURNSTILE_CLUSTER_GLANCE_H

#include <stdint.h>

#include "cluster_view.h"
#include "instance.h"

#define GLANCE_SAMPLE_US 250000  /* the queue's view is this fresh */
#define GLANCE_POLL_US   2000000 /* members and etcd's health: a modest rate */

/* What the server tells of this instance (cluster_announce()). */
struct glance_self {
    char addr[72], admin[72];
    unsigned loops;
    uint64_t etcd_quota_bytes; /* 0: unknown */
};

/* On the first loop, from cluster_attach(): makes c->glance and starts
 * its coroutines (counted in cl->running). Returns 0 or a negative errno. */
int glance_start(struct cluster_loop *cl);

/* Before the loops run: what this instance registers and shows. */
void glance_announce(struct cluster *c, const struct glance_self *me);

/* On the first loop, at its detach: cancels the coroutines that wait. */
void glance_stop(struct cluster *c);

/* On the first loop, once its coroutines ended: closes its etcd clients. */
void glance_close(struct cluster *c);

/* After every loop detached (cluster_close()): frees it. */
void glance_free(struct cluster *c);

/* The view now, from any thread; zeros but self before the first round. */
void glance_read(struct cluster *c, struct cluster_view *out);

#endif
