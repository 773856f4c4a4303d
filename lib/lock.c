/* lock: fair async lock. See lock.h for the contract.
 *
 * Waiters live on their own coroutine's stack, in an intrusive doubly
 * linked queue, so queueing never allocates and leaving is O(1). The
 * invariant that makes hand-off simple: owner == NULL implies the queue is
 * empty. */
#include "lock.h"

#include <errno.h>

#include "loop.h"

struct lock_waiter {
    struct lock_waiter *prev, *next;
    struct lock *lock;
    coro_t *co;
    int64_t queued_at_us;
    bool granted; /* set by the hand-off; the waiter owns the lock */
};

void lock_init(struct lock *lock, uint64_t max_queue)
{
    *lock = (struct lock){.max_queue = max_queue};
    hist_init(&lock->stats.wait_us);
    hist_init(&lock->stats.hold_us);
}

bool lock_locked(const struct lock *lock)
{
    return lock->owner != NULL;
}

static void enqueue(struct lock *lock, struct lock_waiter *w)
{
    w->prev = lock->tail;
    w->next = NULL;
    if (lock->tail)
        lock->tail->next = w;
    else
        lock->head = w;
    lock->tail = w;
    if (++lock->stats.waiters > lock->stats.max_waiters)
        lock->stats.max_waiters = lock->stats.waiters;
}

static void dequeue(struct lock *lock, struct lock_waiter *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else
        lock->head = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        lock->tail = w->prev;
    w->prev = w->next = NULL;
    lock->stats.waiters--;
}

/* Gives the lock to the head waiter, or frees it if nobody waits. */
static void hand_off(struct lock *lock)
{
    struct lock_waiter *w = lock->head;
    if (!w) {
        lock->owner = NULL;
        return;
    }
    dequeue(lock, w);
    w->granted = true;
    lock->owner = w->co;
    loop_wake(w->co, 0);
}

/* Cleanup of an owner destroyed before it released: pass the lock on. */
static void owner_abandon(void *arg)
{
    hand_off(arg);
}

/* Cleanup of a waiter destroyed while parked. */
static void waiter_abandon(void *arg)
{
    struct lock_waiter *w = arg;
    if (w->granted) {
        hand_off(w->lock);
        return;
    }
    dequeue(w->lock, w);
    w->lock->stats.cancellations++;
}

/* Times come from loop_clock_us(): reading the clock would cost more than
 * the rest of an uncontended acquire and release together. */
static int own(struct lock *lock, coro_t *self, int64_t queued_at_us)
{
    int64_t now = loop_clock_us();
    int rc = coro_defer(self, owner_abandon, lock);
    if (rc < 0) {
        hand_off(lock);
        return rc;
    }
    lock->owner = self;
    lock->acquired_at_us = now;
    lock->stats.acquisitions++;
    hist_record(&lock->stats.wait_us, (uint64_t)(now - queued_at_us));
    return 0;
}

/* Queues the caller and parks it until granted, timed out or cancelled.
 * Out of line: the uncontended acquire stays a few instructions with no
 * stack frame to speak of. */
static __attribute__((noinline)) int wait_turn(struct lock *lock, coro_t *self, int64_t deadline_us)
{
    struct lock_waiter w = {.lock = lock, .co = self, .queued_at_us = loop_clock_us()};
    int rc = coro_defer(self, waiter_abandon, &w);
    if (rc < 0)
        return rc;
    enqueue(lock, &w);
    rc = loop_park(deadline_us);
    coro_undefer(self, waiter_abandon, &w);
    if (w.granted) { /* a grant beats a timeout or cancel of the same turn */
        lock->stats.contended++;
        return own(lock, self, w.queued_at_us);
    }
    dequeue(lock, &w);
    if (rc == -ETIMEDOUT) {
        lock->stats.timeouts++;
        return -ETIMEDOUT;
    }
    lock->stats.cancellations++; /* cancelled, or woken by a stray loop_wake */
    return -ECANCELED;
}

int lock_acquire(struct lock *lock, int64_t deadline_us)
{
    coro_t *self = coro_current();
    if (lock->owner == self)
        return -EDEADLK;
    if (!lock->owner)
        return own(lock, self, loop_clock_us());
    if (lock->max_queue && lock->stats.waiters >= lock->max_queue) {
        lock->stats.shed++;
        return -EBUSY;
    }
    return wait_turn(lock, self, deadline_us);
}

int lock_release(struct lock *lock)
{
    coro_t *self = coro_current();
    if (!self || lock->owner != self)
        return -EPERM;
    coro_undefer(self, owner_abandon, lock);
    hist_record(&lock->stats.hold_us, (uint64_t)(loop_clock_us() - lock->acquired_at_us));
    hand_off(lock);
    return 0;
}
