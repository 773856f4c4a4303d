/* waitq: coroutines waiting in line for something another coroutine hands
 * them (the lock, a finished disk round), with the one cleanup that keeps
 * the line whole when a waiter's coroutine is destroyed while it waits.
 *
 * An entry lives on its waiter's stack, so waiting never allocates and
 * leaving is O(1). How a park ends:
 *   - waitq_wake(): the entry left the line, and the park returns the
 *     result given; a wake beats a timeout or cancel of the same loop turn
 *     (loop.h), so the waiter never loses what it was handed;
 *   - the deadline passes or the coroutine is cancelled: the waiter leaves
 *     the line itself, -ETIMEDOUT or -ECANCELED;
 *   - the coroutine is destroyed: the cleanup takes the entry out of the
 *     line and calls `abandoned`, which tells the line's owner (a lock
 *     passes itself on if the entry had been handed it).
 *
 * A line shared by the coroutines of several loops (threads) names the
 * mutex that guards it in `mu`: its owner holds it around every call here,
 * waitq_park() included, which releases it while parked, as
 * pthread_cond_wait() does. A wake then reaches a waiter of another loop
 * through that loop's inbox (loop.h). mu NULL: one loop, no locking. */
#ifndef TURNSTILE_WAITQ_H
#define TURNSTILE_WAITQ_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "coro.h"
#include "list.h"

struct waitq {
    struct list_node head;
    uint64_t len;        /* entries in line now */
    pthread_mutex_t *mu; /* see above; NULL after waitq_init() */
};

struct waitq_entry {
    struct list_node link; /* in the line while waiting */
    struct waitq *q;
    coro_t *co;
    uint64_t ticket; /* of the park it waits in (loop_park_ticket) */
    int result;      /* what waitq_wake() gave */
    bool woken;      /* waitq_wake() came: the entry is out of the line */
    /* Runs if the waiter's coroutine is destroyed while parked, once the
     * entry is out of the line; `woken` tells whether it had been handed
     * something. May be NULL. */
    void (*abandoned)(struct waitq_entry *e);
};

void waitq_init(struct waitq *q);

/* The first entry in line, or NULL. */
struct waitq_entry *waitq_head(const struct waitq *q);
/* The last entry in line, and the one before e (toward the head): NULL
 * if none. */
struct waitq_entry *waitq_tail(const struct waitq *q);
struct waitq_entry *waitq_prev(const struct waitq_entry *e);
/* The one after e (toward the tail): NULL if none. */
struct waitq_entry *waitq_next(const struct waitq_entry *e);

/* Puts e (co = the caller, abandoned set) in line: at the tail, or just
 * before `pos` (NULL: at the tail) for lines kept in another order. */
void waitq_join(struct waitq *q, struct waitq_entry *e, struct waitq_entry *pos);

/* Parks the calling coroutine, which joined with e, until waitq_wake(e),
 * the deadline (loop_now_us() clock; LOOP_FOREVER) or a cancel. Returns
 * the woken result, or -ETIMEDOUT / -ECANCELED with e out of line, or
 * -ENOSPC (e out of line) when the coroutine has no room for the cleanup. */
int waitq_park(struct waitq_entry *e, int64_t deadline_us);

/* Takes e out of line and ends its park with `result`: the waiter resumes
 * on a coming turn of its own loop, never inside this call (the caller
 * may hold the line's mutex). */
void waitq_wake(struct waitq_entry *e, int result);

#endif
