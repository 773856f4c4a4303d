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

#include <stdbool.h>
#include <stdint.h>

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
    coro_t *owner;
    struct waitq waiters; /* FIFO: the order of lock_acquire() calls */
    uint64_t max_queue;   /* 0: unbounded */
    int64_t acquired_at_us;
    struct lock_stats stats;
};

/* max_queue: how many may wait at once (0 = unbounded); acquire refuses
 * the next with -EBUSY. */
void lock_init(struct lock *lock, uint64_t max_queue);

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
