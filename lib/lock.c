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

void lock_init(struct lock *lock, uint64_t max_queue)
{
    *lock = (struct lock){.max_queue = max_queue};
    pthread_mutex_init(&lock->mu, NULL);
    waitq_init(&lock->waiters);
    hist_init(&lock->stats.wait_us);
    hist_init(&lock->stats.hold_us);
}

void lock_share(struct lock *lock)
{
    lock->shared = true;
    lock->waiters.mu = &lock->mu;
}

static void enter(struct lock *lock)
{
    if (lock->shared)
        pthread_mutex_lock(&lock->mu);
}

static void leave(struct lock *lock)
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
    enter(lock);
    lock->max_queue = max_queue;
    leave(lock);
}

void lock_read_stats(struct lock *lock, struct lock_stats *out)
{
    enter(lock);
    *out = lock->stats;
    leave(lock);
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
    lock->stats.waiters = lock->waiters.len;
}

/* Cleanup of an owner destroyed before it released: pass the lock on. */
static void owner_abandon(void *arg)
{
    struct lock *lock = arg;
    enter(lock);
    hand_off(lock);
    leave(lock);
}

/* A waiter destroyed while parked (under mu): it left the queue already;
 * if it had been handed the lock, pass it on. */
static void waiter_abandoned(struct waitq_entry *e)
{
    struct lock_waiter *w = (struct lock_waiter *)e;
    w->lock->stats.waiters = w->lock->waiters.len;
    if (e->woken)
        hand_off(w->lock);
    else
        w->lock->stats.cancellations++;
}

/* Times come from loop_clock_us(): reading the clock would cost more than
 * the rest of an uncontended acquire and release together. Under mu. */
static int own(struct lock *lock, coro_t *self, int64_t queued_at_us)
{
    int64_t now = loop_clock_us();
    int rc = coro_defer(self, owner_abandon, lock);
    if (rc < 0) {
        hand_off(lock);
        return rc;
    }
    set_owner(lock, self);
    lock->acquired_at_us = now;
    lock->stats.acquisitions++;
    hist_record(&lock->stats.wait_us, (uint64_t)(now - queued_at_us));
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
    lock->stats.waiters = lock->waiters.len;
    if (lock->stats.waiters > lock->stats.max_waiters)
        lock->stats.max_waiters = lock->stats.waiters;
    int rc = waitq_park(&w.e, deadline_us);
    lock->stats.waiters = lock->waiters.len;
    if (w.e.woken) { /* a grant beats a timeout or cancel of the same turn */
        lock->stats.contended++;
        return own(lock, self, w.queued_at_us);
    }
    if (rc == -ETIMEDOUT)
        lock->stats.timeouts++;
    else if (rc == -ECANCELED) /* cancelled, or a stray wake */
        lock->stats.cancellations++;
    return rc; /* or -ENOSPC: no room for the cleanup (coro.h) */
}

static int acquire(struct lock *lock, coro_t *self, int64_t deadline_us)
{
    if (lock->owner == self)
        return -EDEADLK;
    if (!lock->owner)
        return own(lock, self, loop_clock_us());
    if (lock->max_queue && lock->waiters.len >= lock->max_queue) {
        lock->stats.shed++;
        return -EBUSY;
    }
    return wait_turn(lock, self, deadline_us);
}

int lock_acquire(struct lock *lock, int64_t deadline_us)
{
    enter(lock);
    int rc = acquire(lock, coro_current(), deadline_us);
    leave(lock);
    return rc;
}

int lock_release(struct lock *lock)
{
    coro_t *self = coro_current();
    enter(lock);
    if (!self || lock->owner != self) {
        leave(lock);
        return -EPERM;
    }
    coro_undefer(self, owner_abandon, lock);
    hist_record(&lock->stats.hold_us, (uint64_t)(loop_clock_us() - lock->acquired_at_us));
    hand_off(lock);
    leave(lock);
    return 0;
}
