/* cluster: one counter and one strict-FIFO lock shared by every turnstile
 * instance of a cluster (--etcd, --cluster), kept in etcd. The algorithm,
 * the keys and the fencing are in docs/design.md, "Cluster mode"; the
 * pieces are in this directory, one concept a file:
 *   instance.h  the state: the instance, and each loop's share of it
 *   session.h   the lease (grant, keep-alive, loss)
 *   ticket.h    one request's place in the queue
 *   queue.h     joining the queue and waiting for the lock; the reaper
 *   watcher.h   the watch that keeps each loop's copy of the queue (mirror.h)
 *   commit.h    the fenced write that releases the lock
 *   proof.h     settling a write whose reply was lost
 *   counter.h   the counter's value, "N KEY"
 *   counts.h    the statistics
 *   etcd.h      the etcd client they all use
 *
 * The resource uses it as it uses the local lock: cluster_acquire() takes
 * a place in the cluster-wide queue and waits for its turn; the critical
 * section then runs there, and cluster_commit() writes the new value and
 * releases the lock in one fenced etcd transaction. A request whose place
 * was lost (its instance's lease expired, it was paused or cut off) cannot
 * write: it gets -EAGAIN, never a number another request also got.
 *
 * Each loop (thread) that serves requests has its share: its etcd
 * clients, a watch of the cluster's keys and its copy of the queue; the
 * lease is the instance's, kept alive from the first loop. Every function
 * but cluster_open(), cluster_close(), cluster_counter() and the
 * statistics runs on a loop that cluster_attach() attached. */
#ifndef TURNSTILE_CLUSTER_H
#define TURNSTILE_CLUSTER_H

#include <stdbool.h>
#include <stdint.h>

#include "etcd_conn.h" /* ETCD_MAX_ENDPOINTS */
#include "remember.h"  /* struct cluster_idem */

struct loop;
struct lock_stats;    /* lock.h */
struct stats_cluster; /* stats_cluster.h */
struct cluster_view;  /* cluster_view.h */
struct etcd_secure;   /* etcd_secure.h */
struct ticket;

struct cluster_settings {
    const char *endpoints; /* --etcd: comma-separated http(s)://IP:PORT */
    const char *name;      /* --cluster: the key prefix is /turnstile/NAME/; letters,
                              digits, '-', '_', '.', at most 63 */
    int64_t lease_ttl_ms;  /* --lease-ttl-ms: rounded up to whole seconds */
    int64_t call_ms;       /* how long one etcd call may take before it is given up */
    int64_t compact_ms;    /* --compact-interval-ms: etcd's history is kept this long; 0: no
                              compaction (compactor.h) */
    /* Called on the first loop attached, as the instance becomes usable
     * or etcd stops answering it: state is sd_notify(3)'s ("READY=1\n
     * STATUS=..." or "STATUS=..."). May be NULL. */
    void (*notify)(void *arg, const char *state);
    void *notify_arg;
    /* TLS and etcd's auth (https:// endpoints, --etcd-user), and where
     * refusals are reported; NULL: none. Outlives the instance. */
    struct etcd_secure *secure;
};

struct cluster;

/* Checks the settings and makes the instance's state: no loop, no call
 * yet. Returns 0 or -EINVAL (bad endpoints, a mix of http:// and
 * https://, or a bad name) / -ENOMEM. */
int cluster_open(struct cluster **out, const struct cluster_settings *s);

/* From the loop's thread, before it serves requests: gives this loop its
 * share. The first loop attached also keeps the instance's lease. Returns
 * 0 or a negative errno. */
int cluster_attach(struct cluster *c, struct loop *loop);

/* From the loop's thread, outside its coroutines, after it stopped
 * serving: ends this loop's share (the first loop revokes the lease, so
 * the instance's keys go at once). Runs the loop for a moment. */
void cluster_detach(struct cluster *c, struct loop *loop);

/* After every loop detached. */
void cluster_close(struct cluster *c);

/* A place in the queue, held between cluster_acquire() and cluster_commit(). */
struct cluster_hold {
    struct ticket *t;
};

/* Joins the cluster-wide queue and waits for the lock. Returns 0 (the
 * caller holds it), -ETIMEDOUT (deadline_us passed), -ECANCELED, -EBUSY
 * (the cluster's queue, as seen here, is more than max_waiters long; 0: no
 * cap) or -EAGAIN (etcd unreachable, no lease, or the place was lost). */
int cluster_acquire(struct cluster *c, int64_t deadline_us, uint64_t max_waiters,
                    struct cluster_hold *h);

/* Writes the counter's value + 1 and releases the lock, in one
 * transaction that holds only while h's place in the queue does; with idem
 * (NULL: none), only if its key is not in etcd, and the key -> N goes in
 * the same transaction. Returns 0 with *n the value written (or, with
 * idem->repeat, the key's first N), -EAGAIN (certainly not written: fenced
 * off or refused; a retry is safe) or -ENOTRECOVERABLE (the outcome cannot
 * be proven: it may or may not have been written; a retry without a key
 * may count twice). Always releases. */
int cluster_commit(struct cluster *c, struct cluster_hold *h, struct cluster_idem *idem,
                   uint64_t *n);

/* The highest value of the counter this instance has seen; any thread. */
uint64_t cluster_counter(const struct cluster *c);

/* This instance's requests for the cluster-wide lock, counted as the local
 * lock counts its own; *locked: the cluster's queue is not empty, as seen
 * here. Any thread. */
void cluster_lock_stats(struct cluster *c, struct lock_stats *out, bool *locked);

/* The rest of what /stats shows of cluster mode, summed over the loops.
 * Any thread. */
void cluster_read_stats(struct cluster *c, struct stats_cluster *out);

/* Once the instance listens, before the loops run: what it registers of
 * itself in etcd (its URLs, "" for an admin port it has not; its loops)
 * and the quota etcd was given (0: unknown), for the view. */
void cluster_announce(struct cluster *c, const char *addr, const char *admin, unsigned loops,
                      uint64_t etcd_quota_bytes);

/* The cluster at a glance (cluster_view.h): members, the queue, etcd's
 * health, as last gathered. Any thread. */
void cluster_read_view(struct cluster *c, struct cluster_view *out);

#endif
