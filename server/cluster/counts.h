/* counts: what cluster mode counts, per loop, and their sum for /stats.
 *
 * Each loop writes its own counts (under its mutex, as other threads read
 * them) and publishes a copy of its state after each step that changes it;
 * any thread sums them. The lock's statistics are kept as lib/lock keeps
 * its own (lock.h's recorders), so the /stats lock group means the same in
 * either mode: this instance's requests for the cluster-wide lock. */
#ifndef TURNSTILE_CLUSTER_COUNTS_H
#define TURNSTILE_CLUSTER_COUNTS_H

#include <stdbool.h>
#include <stdint.h>

#include "instance.h"

/* Before the loop's first count. */
void counts_init(struct cluster_loop *cl);

/* One more of field, a member of cl->shown; counts_add: n more. */
void counts_bump(struct cluster_loop *cl, uint64_t *field);
void counts_add(struct cluster_loop *cl, uint64_t *field, uint64_t n);

/* The lock's bookkeeping (lock.h), for this loop's requests. */
void counts_waiting(struct cluster_loop *cl, int delta);
void counts_acquired(struct cluster_loop *cl, int64_t waited_us, bool contended);
void counts_held(struct cluster_loop *cl, int64_t held_us);
void counts_refused(struct cluster_loop *cl, int rc);

/* A hand-off from another instance took handoff_us. */
void counts_handoff(struct cluster_loop *cl, int64_t handoff_us);

/* Copies this loop's state (health, queue, revision, etcd errors, the
 * endpoint in use) for other threads to read. */
void counts_publish(struct cluster_loop *cl);

/* The lock's statistics summed over the loops; *locked: someone holds the
 * cluster-wide lock, as seen here. Any thread. */
void counts_lock(struct cluster *c, struct lock_stats *out, bool *locked);

/* The rest summed over the loops. Any thread. */
void counts_sum(struct cluster *c, struct stats_cluster *out);

#endif
