/* cluster: one counter and one strict-FIFO lock shared by every turnstile
 * instance of a cluster (--etcd, --cluster), kept in etcd. The algorithm,
 * the keys and the fencing are in docs/design.md, "Cluster mode".
 *
 * The resource uses it as it uses the local lock: cluster_acquire() takes
 * a place in the cluster-wide queue and waits for its turn; the critical
 * section then runs here, and cluster_commit() writes the new value and
 * releases the lock in one fenced etcd transaction. A request whose place
 * was lost (its instance's lease expired, it was paused or cut off) cannot
 * write: it gets -EAGAIN, never a number another request also got.
 *
 * Each loop (thread) that serves requests has a part of its own: its etcd
 * clients, a watch of the cluster's keys and its copy of the queue; the
 * lease is the instance's, kept alive from the first loop. Every function
 * but cluster_open(), cluster_close(), cluster_counter() and
 * cluster_read_stats() runs on a loop that cluster_attach() attached. */
#ifndef TURNSTILE_CLUSTER_H
#define TURNSTILE_CLUSTER_H

#include <stdbool.h>
#include <stdint.h>

#include "cluster/etcd.h"
#include "hist.h"
#include "lock.h"

#define CLUSTER_NAME_MAX 64 /* --cluster: letters, digits, '-', '_', '.' */

struct cluster_settings {
    const char *endpoints; /* --etcd: comma-separated http://IP:PORT */
    const char *name;      /* --cluster: the key prefix is /turnstile/NAME/ */
    int64_t lease_ttl_ms;  /* --lease-ttl-ms: rounded up to whole seconds */
    int64_t call_ms;       /* how long one etcd call may take before it is given up */
};

/* What /stats, /metrics and the page show; summed over the loops. */
struct cluster_stats {
    struct lock_stats lock; /* this instance's requests, as the local lock counts them */
    uint64_t healthy;       /* 1 while every loop's watch follows etcd and a lease is held */
    uint64_t queue_length;  /* keys in the cluster-wide queue (holder included), as seen here */
    uint64_t revision;      /* the latest etcd revision seen */
    uint64_t lease_ttl_ms;  /* as granted */
    uint64_t lease_grants;  /* leases granted to this instance */
    uint64_t lease_losses;  /* leases that expired or could not be kept alive */
    uint64_t fenced;        /* writes refused: the writer's place was gone */
    uint64_t unavailable;   /* requests answered "etcd unreachable" (fenced ones excluded) */
    uint64_t unknown;       /* writes whose outcome could not be learnt (then answered 503) */
    uint64_t resyncs;       /* times a watch was (re)opened and the queue read anew */
    uint64_t errors[ETCD_ERR_COUNT]; /* failed etcd calls by kind, every client */
    struct hist handoff_us;          /* release on another instance -> grant here */
    char endpoint[72];               /* the etcd endpoint in use */
    char lease[20];                  /* the lease ID in hex, "" while none */
};

struct cluster;

/* Checks the settings and makes the instance's state: no loop, no call
 * yet. Returns 0 or -EINVAL (bad endpoints or name) / -ENOMEM. */
int cluster_open(struct cluster **out, const struct cluster_settings *s);

/* From the loop's thread, before it serves requests: gives this loop its
 * part. The first loop attached also keeps the instance's lease. Returns
 * 0 or a negative errno. */
int cluster_attach(struct cluster *c, struct loop *loop);

/* From the loop's thread, outside its coroutines, after it stopped
 * serving: ends this loop's part (the first loop revokes the lease, so the
 * instance's keys go at once). Runs the loop for a moment. */
void cluster_detach(struct cluster *c, struct loop *loop);

/* After every loop detached. */
void cluster_close(struct cluster *c);

/* A place in the queue, held between cluster_acquire() and cluster_commit(). */
struct cluster_hold {
    struct ticket *t;
};

/* Joins the cluster-wide queue and waits for the lock. Returns 0 (the
 * caller holds it), -ETIMEDOUT (deadline_us
 * passed), -ECANCELED, -EBUSY (the cluster's queue is max_waiters long) or
 * -EAGAIN (etcd unreachable, no lease, or the place was lost). */
int cluster_acquire(struct cluster *c, int64_t deadline_us, uint64_t max_waiters,
                    struct cluster_hold *h);

/* Writes the counter's value + 1 and releases the lock, in one
 * transaction that holds only while h's place in the queue does. Returns
 * 0 with *n the value written, or -EAGAIN (fenced off, or the outcome
 * could not be learnt): then no reply may claim a number. Always releases. */
int cluster_commit(struct cluster *c, struct cluster_hold *h, uint64_t *n);

/* The highest value of the counter this instance has seen; any thread. */
uint64_t cluster_counter(const struct cluster *c);

/* A copy of the statistics, from any thread. */
void cluster_read_stats(struct cluster *c, struct cluster_stats *out);

#endif
