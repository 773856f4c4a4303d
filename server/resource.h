/* resource: the shared counter behind GET /access, and its critical section
 * (read -> simulated delay -> write) inside the fair lock. With a state
 * (--state-file) an update is also saved, and resource_access() returns
 * only once it is on disk; the lock is not held while it waits for that. */
#ifndef TURNSTILE_RESOURCE_H
#define TURNSTILE_RESOURCE_H

#include <stdbool.h>
#include <stdint.h>

#include "lock.h"
#include "state.h"

struct resource {
    struct lock lock;
    uint64_t counter;
    int64_t delay_us;  /* fixed part of the simulated work */
    int64_t jitter_us; /* plus uniform random 0..jitter_us */
    bool use_lock;     /* false only for the --no-lock demonstration */
    uint64_t rng;
    uint64_t in_section; /* coroutines inside the critical section now */
    struct state *state; /* set by the owner after resource_init; NULL: memory only */
};

void resource_init(struct resource *r, double delay_ms, double jitter_ms, uint64_t max_waiters,
                   bool use_lock);

/* Runs the critical section for the calling coroutine. Returns 0 with *n the
 * value written (and, with a state, saved), or -ETIMEDOUT (lock deadline
 * passed), -EBUSY (queue full) or -ECANCELED (cancelled while queued); then
 * the counter is untouched. Once the section has started it always
 * completes, cancelled or not; with a state, the wait for the disk that
 * follows may still end in -ECANCELED (the update is saved all the same)
 * or -EIO (saving failed: the update must not be reported as done). */
/* Where one access spent its time (loop clock, microseconds). */
struct resource_timing {
    int64_t wait_us; /* queued for the lock */
    int64_t work_us; /* inside the critical section */
};

int resource_access(struct resource *r, int64_t deadline_us, uint64_t *n,
                    struct resource_timing *t);

#endif
