/* lock: a fair (strict FIFO) async lock for coroutines on a loop.
 *
 * - Uncontended acquire takes the lock without yielding.
 * - Waiters are granted in the order they called lock_acquire(). Release
 *   hands ownership straight to the head waiter, so the lock never looks
 *   free while someone waits and a newcomer cannot barge in between.
 * - A waiter whose deadline passes or that is cancelled (loop_cancel) leaves
 *   the queue in O(1) and never owns the lock; a grant that comes in the
 *   same loop turn as its timeout wins (see loop.h).
 * - A coroutine destroyed while waiting leaves the queue, and one destroyed
 *   after its grant but before it ran passes the lock on.
 * The lock keeps its own statistics. */
#ifndef TURNSTILE_LOCK_H
#define TURNSTILE_LOCK_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

#include <pthread.h>

#include "coro.h"
#include "hist.h"
#include "waitq.h"

struct lock_stats {
    uint64_t waiters;       /* queued now */
    uint64_t max_waiters;   /* most queued at once */
    uint64_t acquisitions;  /* successful acquires */
    uint64_t contended;     /* acquires that had to queue (and later got it) */
    uint64_t timeouts;      /* waits ended by their deadline */
    uint64_t cancellations; /* waits ended by loop_cancel or destruction */
    uint64_t shed;          /* refused at once: queue full */
    struct hist wait_us;    /* queueing time of every acquisition */
    struct hist hold_us;    /* acquire to release */
};

struct lock {
    /* Shared between loops (lock_share): guards every field below. */
    pthread_mutex_t mu;
    bool shared;
    coro_t *owner;        /* written under mu, read anywhere (lock_locked) */
    struct waitq waiters; /* FIFO: the order of lock_acquire() calls */
    uint64_t max_queue;   /* 0: unbounded */
    int64_t acquired_at_us;
    struct lock_stats stats;
};

/* max_queue: how many may wait at once (0 = unbounded); acquire refuses
 * the next with -EBUSY. The lock serves the coroutines of one loop. */
void lock_init(struct lock *lock, uint64_t max_queue);

/* From then on the lock serves the coroutines of several loops, each on
 * its own thread: FIFO across all of them, the hand-off wakes the new
 * owner on its own loop (every such loop needs loop_open_inbox()). Costs a
 * mutex on every acquire and release. Before any coroutine uses it. */
void lock_share(struct lock *lock);

/* Changes the queue cap (a reload); waiters already queued stay. */
void lock_set_max_queue(struct lock *lock, uint64_t max_queue);

/* A consistent copy of the statistics, from any thread. */
void lock_read_stats(struct lock *lock, struct lock_stats *out);

/* The statistics' bookkeeping, for this lock and for any other lock that
 * counts the same things (cluster mode's, one struct per loop). The caller
 * serialises calls on one struct. Inline: the uncontended acquire and
 * release record through them and must stay a few instructions. */
void lock_stats_init(struct lock_stats *s);

/* `waiting` wait now (after a join or a leave); the most at once follows. */
static inline void lock_stats_waiting(struct lock_stats *s, uint64_t waiting)
{
    s->waiters = waiting;
    if (waiting > s->max_waiters)
        s->max_waiters = waiting;
}

/* An acquisition after waited_us in line; contended: it had to queue. */
static inline void lock_stats_acquired(struct lock_stats *s, int64_t waited_us, bool contended)
{
    s->acquisitions++;
    s->contended += contended;
    hist_record(&s->wait_us, (uint64_t)waited_us);
}

/* A hold of held_us ended. */
static inline void lock_stats_released(struct lock_stats *s, int64_t held_us)
{
    hist_record(&s->hold_us, (uint64_t)held_us);
}

/* A failed acquire: -ETIMEDOUT, -ECANCELED or -EBUSY is counted (timeouts,
 * cancellations, shed); any other value is not the lock's to count. */
static inline void lock_stats_refused(struct lock_stats *s, int rc)
{
    if (rc == -ETIMEDOUT)
        s->timeouts++;
    else if (rc == -ECANCELED)
        s->cancellations++;
    else if (rc == -EBUSY)
        s->shed++;
}

/* Adds from to to, as the statistics of two parts of one lock (its loops):
 * counts and the waiting now add up, the most that waited at once is the
 * larger of the two (no more is known), the histograms merge. */
void lock_stats_add(struct lock_stats *to, const struct lock_stats *from);

/* From a loop coroutine. Returns 0 (the caller owns the lock), -ETIMEDOUT
 * (deadline_us, on loop_now_us()'s clock, passed; LOOP_FOREVER never
 * does), -ECANCELED, -EBUSY (queue full) or -EDEADLK (caller already owns
 * it: the lock is not recursive). */
int lock_acquire(struct lock *lock, int64_t deadline_us);

/* Returns 0, or -EPERM if the calling coroutine does not own the lock
 * (nothing changes then). */
int lock_release(struct lock *lock);

/* True from an acquire to the release that ends it, hand-offs included. */
bool lock_locked(const struct lock *lock);

#endif
