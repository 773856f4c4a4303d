/* resource: the counter and its critical section. See resource.h. */
#include "resource.h"

#include <errno.h>

#include "cluster/cluster.h"
#include "loop.h"

/* With several loops, the section runs on whichever thread holds the lock,
 * and /stats reads from any: the fields below that more than one thread
 * touches are read and written whole, with relaxed atomics. */
#define LOAD(field)       __atomic_load_n(&(field), __ATOMIC_RELAXED)
#define STORE(field, val) __atomic_store_n(&(field), (val), __ATOMIC_RELAXED)

void resource_init(struct resource *r, const struct resource_settings *s)
{
    *r = (struct resource){.use_lock = s->use_lock};
    lock_init(&r->lock, s->max_waiters);
    resource_configure(r, s);
}

void resource_configure(struct resource *r, const struct resource_settings *s)
{
    STORE(r->delay_us, loop_ms_to_us(s->delay_ms));
    STORE(r->jitter_us, loop_ms_to_us(s->jitter_ms));
    STORE(r->lock_timeout_us, loop_ms_to_us(s->lock_timeout_ms));
    STORE(r->max_waiters, s->max_waiters);
    lock_set_max_queue(&r->lock, s->max_waiters);
}

uint64_t resource_counter(const struct resource *r)
{
    return r->cluster ? cluster_counter(r->cluster) : LOAD(r->counter);
}

uint64_t resource_in_section(const struct resource *r)
{
    return LOAD(r->in_section);
}

void resource_set_counter(struct resource *r, uint64_t value)
{
    STORE(r->counter, value);
}

void resource_lock_stats(struct resource *r, struct lock_stats *out, bool *locked)
{
    if (r->cluster) {
        cluster_lock_stats(r->cluster, out, locked);
        return;
    }
    lock_read_stats(&r->lock, out);
    *locked = lock_locked(&r->lock);
}

bool resource_cluster_stats(struct resource *r, struct stats_cluster *out)
{
    if (r->cluster)
        cluster_read_stats(r->cluster, out);
    return r->cluster != NULL;
}

/* xorshift64, one per thread: jitter needs to be spread, not
 * unpredictable, and --no-lock sections run on several threads at once. */
static uint64_t next_random(void)
{
    static _Thread_local uint64_t rng;
    if (!rng)
        rng = (uint64_t)loop_now_us() | 1;
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* The simulated work. A cancellation (the client hung up) does not cut it
 * short: the update was promised to run to the end once started. */
static void work(struct resource *r)
{
    int64_t us = LOAD(r->delay_us), jitter = LOAD(r->jitter_us);
    if (jitter > 0)
        us += (int64_t)(next_random() % (uint64_t)(jitter + 1));
    if (us <= 0)
        return; /* --delay-ms 0: no clock to read */
    int64_t end = loop_now_us() + us;
    for (int64_t left = us; left > 0; left = end - loop_now_us())
        loop_sleep_us(left);
}

static int64_t lock_deadline(const struct resource *r)
{
    int64_t timeout = LOAD(r->lock_timeout_us);
    return timeout ? loop_now_us() + timeout : LOOP_FOREVER;
}

/* Takes the lock: the local one (unless --no-lock), or the cluster's,
 * whose place h then holds. */
static int take_lock(struct resource *r, struct cluster_hold *h)
{
    if (r->cluster)
        return cluster_acquire(r->cluster, lock_deadline(r), LOAD(r->max_waiters), h);
    return r->use_lock ? lock_acquire(&r->lock, lock_deadline(r)) : 0;
}

/* The section here: read, work, write; with a state, the value is handed
 * to the writer (*seq is what to wait for). Without the lock, updates get
 * lost: the point of --no-lock. */
static uint64_t section_local(struct resource *r, uint64_t *seq)
{
    uint64_t value = LOAD(r->counter); /* read ... */
    work(r);
    STORE(r->counter, value + 1); /* ... write */
    *seq = r->state ? state_commit(r->state, value + 1) : 0;
    return value + 1;
}

/* The section in the cluster: the write is a fenced transaction in etcd
 * that also releases the lock. */
static int section_cluster(struct resource *r, struct cluster_hold *h, uint64_t *n)
{
    work(r);
    return cluster_commit(r->cluster, h, n);
}

/* Releases the local lock. Handed to a waiter: let its section start
 * before we spend time sending our reply, so the lock is never held idle. */
static void give_lock(struct resource *r)
{
    lock_release(&r->lock);
    if (lock_locked(&r->lock) && LOAD(r->delay_us) > 0)
        loop_yield();
}

int resource_access(struct resource *r, uint64_t *n, struct resource_timing *t)
{
    struct cluster_hold hold;
    uint64_t seq = 0;
    int64_t asked = loop_clock_us();
    int rc = take_lock(r, &hold);
    if (rc < 0)
        return rc;
    int64_t entered = loop_clock_us();
    __atomic_add_fetch(&r->in_section, 1, __ATOMIC_RELAXED);
    if (r->cluster)
        rc = section_cluster(r, &hold, n);
    else
        *n = section_local(r, &seq);
    t->wait_us = entered - asked;
    t->work_us = loop_clock_us() - entered;
    __atomic_sub_fetch(&r->in_section, 1, __ATOMIC_RELAXED);
    if (r->cluster)
        return rc;
    if (r->use_lock)
        give_lock(r);
    /* Outside the lock: the next section runs while this one's value is
     * being saved, and one save covers both. */
    return r->state ? state_wait(r->state, seq) : 0;
}
