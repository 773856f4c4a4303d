/* resource: the shared counter behind GET /access, and its critical section
 * (read -> simulated delay -> write) inside the fair lock. With a state
 * (--state-file) an update is also saved, and resource_access() returns
 * only once it is on disk; the lock is not held while it waits for that.
 *
 * The one seam between the routes and the two kinds of resource: here, or
 * in cluster mode (--etcd) the counter and the lock in etcd
 * (server/cluster/cluster.h). Callers see the same calls either way. */
#ifndef TURNSTILE_RESOURCE_H
#define TURNSTILE_RESOURCE_H

#include <stdbool.h>
#include <stdint.h>

#include "idem.h"
#include "lock.h"
#include "state.h"

struct cluster;       /* server/cluster/cluster.h */
struct stats_cluster; /* stats_cluster.h */
struct cluster_view;  /* cluster_view.h */

struct resource {
    struct lock lock;        /* unused in cluster mode */
    uint64_t counter;        /* unused in cluster mode */
    uint64_t max_waiters;    /* the queue's cap, here or in the cluster; 0: none */
    int64_t delay_us;        /* fixed part of the simulated work */
    int64_t jitter_us;       /* plus uniform random 0..jitter_us */
    int64_t lock_timeout_us; /* longest wait for the lock; 0: forever */
    bool use_lock;           /* false only for the --no-lock demonstration */
    uint64_t in_section;     /* coroutines inside the critical section now */
    struct state *state;     /* set by the owner after resource_init; NULL: memory only */
    /* Cluster mode (--etcd), set by the owner after resource_init: the
     * counter and the lock live in etcd. NULL: everything is here. */
    struct cluster *cluster;
    /* Idempotency-Keys answered here (single-node); in cluster mode only
     * its repeats count: the keys live in etcd, kept this long. */
    struct idem idem;
    uint64_t idem_retention_ms;
};

/* The settings that shape the critical section, in milliseconds as the
 * configuration gives them. */
struct resource_settings {
    double delay_ms, jitter_ms, lock_timeout_ms;
    uint64_t max_waiters;                      /* 0: unbounded */
    uint64_t idem_retention_ms, idem_max_keys; /* Idempotency-Keys: idem.h */
    bool use_lock;
};

void resource_init(struct resource *r, const struct resource_settings *s);

/* Frees the remembered keys. */
void resource_fini(struct resource *r);

/* Applies new settings while running (a reload): the next section, and
 * the next request to queue, see them; the counter, the lock's holder and
 * its queue are untouched. use_lock cannot change here. */
void resource_configure(struct resource *r, const struct resource_settings *s);

/* The counter now, and how many requests are inside the section now:
 * from any thread. */
uint64_t resource_counter(const struct resource *r);
uint64_t resource_in_section(const struct resource *r);
/* Before serving: the counter recovered from disk. */
void resource_set_counter(struct resource *r, uint64_t value);
/* Before serving: the Idempotency-Keys saved with it, remembered anew (their
 * window starts again: their age is not saved). */
void resource_recover_keys(struct resource *r, const struct state *st);

/* The lock's statistics in either mode: the local lock's, or this
 * instance's requests for the cluster-wide lock; *locked: the lock is held
 * (in cluster mode: the cluster's queue is not empty, as seen here). From
 * any thread. */
void resource_lock_stats(struct resource *r, struct lock_stats *out, bool *locked);

/* In cluster mode, fills *out with cluster mode's own numbers and returns
 * true; else returns false and leaves *out alone. From any thread. */
bool resource_cluster_stats(struct resource *r, struct stats_cluster *out);
/* In cluster mode, fills *out with the cluster at a glance (members, the
 * queue, etcd's health); else leaves it alone. From any thread. */
void resource_cluster_view(struct resource *r, struct cluster_view *out);

/* The Idempotency-Key numbers, in either mode. From any thread. */
void resource_idem_stats(struct resource *r, struct idem_stats *out);

/* Where one access spent its time (loop clock, microseconds). */
struct resource_timing {
    int64_t wait_us; /* queued for the lock */
    int64_t work_us; /* inside the critical section */
};

/* Runs the critical section for the calling coroutine. With a key (NULL:
 * none) that was answered 200 within the retention window, here or (in
 * cluster mode) on any instance, nothing runs again: it returns 0 with the
 * same *n; a key whose first request is still running waits for it in the
 * lock's queue. Otherwise: returns 0 with *n the
 * value written (and, with a state, saved), or -ETIMEDOUT (the lock
 * timeout passed), -EBUSY (queue full) or -ECANCELED (cancelled while
 * queued); then the counter is untouched. Once the section has started it
 * always completes, cancelled or not, and so does the wait for the disk
 * that follows with a state (a cancel there does not take back the N the
 * reply may still give): it may end in -EIO (saving failed: the update
 * must not be reported as done).
 * In cluster mode also -EAGAIN: etcd is unreachable, or the request's place
 * in the queue was lost (fenced off): certainly not counted; and
 * -ENOTRECOVERABLE: the write's outcome cannot be proven (it may or may
 * not have been counted). No number may be reported then. */
int resource_access(struct resource *r, const struct idem_key *key, uint64_t *n,
                    struct resource_timing *t);

#endif
