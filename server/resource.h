/* resource: the shared counter behind GET /access, and its critical section
 * (read -> simulated delay -> write) inside the fair lock. */
#ifndef TURNSTILE_RESOURCE_H
#define TURNSTILE_RESOURCE_H

#include <stdbool.h>
#include <stdint.h>

#include "lock.h"

struct resource {
    struct lock lock;
    uint64_t counter;
    int64_t delay_us;   /* fixed part of the simulated work */
    int64_t jitter_us;  /* plus uniform random 0..jitter_us */
    bool use_lock;      /* false only for the --no-lock demonstration */
    uint64_t rng;
    uint64_t in_section; /* coroutines inside the critical section now */
};

void resource_init(struct resource *r, double delay_ms, double jitter_ms, uint64_t max_waiters,
                   bool use_lock);

/* Runs the critical section for the calling coroutine. Returns 0 with *n the
 * value written, or -ETIMEDOUT (lock deadline passed), -EBUSY (queue full)
 * or -ECANCELED (cancelled while queued); then the counter is untouched.
 * Once the section has started it always completes, cancelled or not. */
int resource_access(struct resource *r, int64_t deadline_us, uint64_t *n);

#endif
