/* resource: the counter and its critical section. See resource.h. */
#include "resource.h"

#include <errno.h>

#include "loop.h"

static int64_t ms_to_us(double ms)
{
    return (int64_t)(ms * 1000.0 + 0.5);
}

void resource_init(struct resource *r, const struct resource_settings *s)
{
    *r = (struct resource){.use_lock = s->use_lock, .rng = (uint64_t)loop_now_us() | 1};
    lock_init(&r->lock, s->max_waiters);
    resource_configure(r, s);
}

void resource_configure(struct resource *r, const struct resource_settings *s)
{
    r->delay_us = ms_to_us(s->delay_ms);
    r->jitter_us = ms_to_us(s->jitter_ms);
    r->lock_timeout_us = ms_to_us(s->lock_timeout_ms);
    r->lock.max_queue = s->max_waiters;
}

/* xorshift64: jitter needs to be spread, not unpredictable. */
static uint64_t next_random(struct resource *r)
{
    r->rng ^= r->rng << 13;
    r->rng ^= r->rng >> 7;
    r->rng ^= r->rng << 17;
    return r->rng;
}

/* The simulated work. A cancellation (the client hung up) does not cut it
 * short: the update was promised to run to the end once started. */
static void work(struct resource *r)
{
    int64_t us = r->delay_us;
    if (r->jitter_us > 0)
        us += (int64_t)(next_random(r) % (uint64_t)(r->jitter_us + 1));
    if (us <= 0)
        return; /* --delay-ms 0: no clock to read */
    int64_t end = loop_now_us() + us;
    for (int64_t left = us; left > 0; left = end - loop_now_us())
        loop_sleep_us(left);
}

static int64_t lock_deadline(const struct resource *r)
{
    return r->lock_timeout_us ? loop_now_us() + r->lock_timeout_us : LOOP_FOREVER;
}

/* The same section with the cluster's lock and counter (cluster.h): the
 * write is a fenced transaction in etcd that also releases the lock. */
static int access_cluster(struct resource *r, uint64_t *n, struct resource_timing *t)
{
    int64_t asked = loop_clock_us();
    struct cluster_hold hold;
    int rc = cluster_acquire(r->cluster, lock_deadline(r), r->lock.max_queue, &hold);
    if (rc < 0)
        return rc;
    int64_t entered = loop_clock_us();
    r->in_section++;
    work(r);
    rc = cluster_commit(r->cluster, &hold, n);
    r->in_section--;
    if (rc == 0)
        r->counter = *n;
    t->wait_us = entered - asked;
    t->work_us = loop_clock_us() - entered;
    return rc;
}

int resource_access(struct resource *r, uint64_t *n, struct resource_timing *t)
{
    if (r->cluster)
        return access_cluster(r, n, t);
    int64_t asked = loop_clock_us();
    if (r->use_lock) {
        int rc = lock_acquire(&r->lock, lock_deadline(r));
        if (rc < 0)
            return rc;
    }
    int64_t entered = loop_clock_us();
    r->in_section++;
    uint64_t value = r->counter; /* read ... */
    work(r);
    r->counter = value + 1; /* ... write: without the lock, updates get lost */
    t->wait_us = entered - asked;
    t->work_us = loop_clock_us() - entered;
    uint64_t seq = r->state ? state_commit(r->state, r->counter) : 0;
    r->in_section--;
    *n = value + 1;
    if (r->use_lock) {
        lock_release(&r->lock);
        /* Handed to a waiter: let its section start before we spend time
         * sending our reply, so the lock is never held idle. */
        if (lock_locked(&r->lock) && r->delay_us > 0)
            loop_yield();
    }
    /* Outside the lock: the next section runs while this one's value is
     * being saved, and one save covers both. */
    return r->state ? state_wait(r->state, seq) : 0;
}
