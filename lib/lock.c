/* lock: fair async lock. See lock.h for the contract.
 *
 * Waiters wait in a waitq (waitq.h): on their own coroutine's stack, so
 * queueing never allocates and leaving is O(1). The invariant that makes
 * hand-off simple: owner == NULL implies the queue is empty.
 *
 * Shared between loops, every change happens under lock->mu, and the
 * waitq's park releases it while the waiter sleeps. The grant, the
 * timeout and the cancel all decide under mu, so a grant that races a
 * timeout on another thread still resolves to exactly one of them: the
 * grant, if it came first (waitq.h). */
#include "lock.h"

#include <errno.h>

#include "loop.h"

struct lock_waiter {
    struct waitq_entry e; /* first: the entry is the waiter */
    struct lock *lock;
    int64_t queued_at_us;
};

/* ---- statistics ---- */

void lock_stats_init(struct lock_stats *s)
{
    *s = (struct lock_stats){0};
    hist_init(&s->wait_us);
    hist_init(&s->hold_us);
}

void lock_stats_add(struct lock_stats *to, const struct lock_stats *from)
{
    to->waiters += from->waiters;
    if (from->max_waiters > to->max_waiters)
        to->max_waiters = from->max_waiters;
    to->acquisitions += from->acquisitions;
    to->contended += from->contended;
    to->timeouts += from->timeouts;
    to->cancellations += from->cancellations;
    to->shed += from->shed;
    hist_merge(&to->wait_us, &from->wait_us);
    hist_merge(&to->hold_us, &from->hold_us);
}

/* ---- the lock ---- */

void lock_init(struct lock *lock, uint64_t max_queue)
{
    *lock = (struct lock){.max_queue = max_queue};
    pthread_mutex_init(&lock->mu, NULL);
    waitq_init(&lock->waiters);
    lock_stats_init(&lock->stats);
}

void lock_share(struct lock *lock)
{
    lock->shared = true;
    lock->waiters.mu = &lock->mu;
}

/* The mutex, taken only when the lock is shared between loops. */
static void take_mu(struct lock *lock)
{
    if (lock->shared)
        pthread_mutex_lock(&lock->mu);
}

static void drop_mu(struct lock *lock)
{
    if (lock->shared)
        pthread_mutex_unlock(&lock->mu);
}

/* lock_locked() reads the owner without mu: atomic, and relaxed, as it
 * only reports. */
static void set_owner(struct lock *lock, coro_t *co)
{
    __atomic_store_n(&lock->owner, co, __ATOMIC_RELAXED);
}

bool lock_locked(const struct lock *lock)
{
    return __atomic_load_n(&lock->owner, __ATOMIC_RELAXED) != NULL;
}

void lock_set_max_queue(struct lock *lock, uint64_t max_queue)
{
    take_mu(lock);
    lock->max_queue = max_queue;
    drop_mu(lock);
}

void lock_read_stats(struct lock *lock, struct lock_stats *out)
{
    take_mu(lock);
    *out = lock->stats;
    drop_mu(lock);
}

/* Gives the lock to the head waiter, or frees it if nobody waits. Under
 * mu. */
static void hand_off(struct lock *lock)
{
    struct waitq_entry *e = waitq_head(&lock->waiters);
    if (!e) {
        set_owner(lock, NULL);
        return;
    }
    set_owner(lock, e->co);
    waitq_wake(e, 0);
    lock_stats_waiting(&lock->stats, lock->waiters.len);
}

/* Cleanup of an owner destroyed before it released: pass the lock on. */
static void owner_abandon(void *arg)
{
    struct lock *lock = arg;
    take_mu(lock);
    hand_off(lock);
    drop_mu(lock);
}

/* A waiter destroyed while parked (under mu): it left the queue already;
 * if it had been handed the lock, pass it on. */
static void waiter_abandoned(struct waitq_entry *e)
{
    struct lock_waiter *w = (struct lock_waiter *)e;
    lock_stats_waiting(&w->lock->stats, w->lock->waiters.len);
    if (e->woken)
        hand_off(w->lock);
    else
        lock_stats_refused(&w->lock->stats, -ECANCELED);
}

/* Times come from loop_clock_us(): reading the clock would cost more than
 * the rest of an uncontended acquire and release together. Under mu. */
static int own(struct lock *lock, coro_t *self, int64_t queued_at_us, bool contended)
{
    int64_t now = loop_clock_us();
    int rc = coro_defer(self, owner_abandon, lock);
    if (rc < 0) {
        hand_off(lock);
        return rc;
    }
    set_owner(lock, self);
    lock->acquired_at_us = now;
    lock_stats_acquired(&lock->stats, now - queued_at_us, contended);
    return 0;
}

/* Queues the caller and parks it until granted, timed out or cancelled.
 * Under mu (released while parked). Out of line: the uncontended acquire
 * stays a few instructions with no stack frame to speak of. */
static __attribute__((noinline)) int wait_turn(struct lock *lock, coro_t *self, int64_t deadline_us)
{
    struct lock_waiter w = {.e = {.co = self, .abandoned = waiter_abandoned},
                            .lock = lock,
                            .queued_at_us = loop_clock_us()};
    waitq_join(&lock->waiters, &w.e, NULL);
    lock_stats_waiting(&lock->stats, lock->waiters.len);
    int rc = waitq_park(&w.e, deadline_us);
    lock_stats_waiting(&lock->stats, lock->waiters.len);
    if (w.e.woken) /* a grant beats a timeout or cancel of the same turn */
        return own(lock, self, w.queued_at_us, true);
    /* -ETIMEDOUT, -ECANCELED (cancelled, or a stray wake), or -ENOSPC: no
     * room for the cleanup (coro.h), which is not counted. */
    lock_stats_refused(&lock->stats, rc);
    return rc;
}

static int acquire(struct lock *lock, coro_t *self, int64_t deadline_us)
{
    if (lock->owner == self)
        return -EDEADLK;
    if (!lock->owner)
        return own(lock, self, loop_clock_us(), false);
    if (lock->max_queue && lock->waiters.len >= lock->max_queue) {
        lock_stats_refused(&lock->stats, -EBUSY);
        return -EBUSY;
    }
    return wait_turn(lock, self, deadline_us);
}

int lock_acquire(struct lock *lock, int64_t deadline_us)
{
    take_mu(lock);
    int rc = acquire(lock, coro_current(), deadline_us);
    drop_mu(lock);
    return rc;
}

int lock_release(struct lock *lock)
{
    coro_t *self = coro_current();
    take_mu(lock);
    if (!self || lock->owner != self) {
        drop_mu(lock);
        return -EPERM;
    }
    coro_undefer(self, owner_abandon, lock);
    lock_stats_released(&lock->stats, loop_clock_us() - lock->acquired_at_us);
    hand_off(lock);
    drop_mu(lock);
    return 0;
}
