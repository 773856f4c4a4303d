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
    idem_init(&r->idem, s->idem_retention_ms, s->idem_max_keys);
    resource_configure(r, s);
}

void resource_fini(struct resource *r)
{
    idem_destroy(&r->idem);
}

void resource_configure(struct resource *r, const struct resource_settings *s)
{
    STORE(r->delay_us, loop_ms_to_us(s->delay_ms));
    STORE(r->jitter_us, loop_ms_to_us(s->jitter_ms));
    STORE(r->lock_timeout_us, loop_ms_to_us(s->lock_timeout_ms));
    STORE(r->max_waiters, s->max_waiters);
    STORE(r->idem_retention_ms, s->idem_retention_ms);
    lock_set_max_queue(&r->lock, s->max_waiters);
    idem_configure(&r->idem, s->idem_retention_ms, s->idem_max_keys);
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

static void recover_key(void *arg, const struct state_key *k)
{
    struct resource *r = arg;
    struct idem_key key = {k->key, k->len};
    idem_put(&r->idem, &key, loop_now_us(), &(struct idem_outcome){.n = k->n});
}

void resource_recover_keys(struct resource *r, const struct state *st)
{
    state_recovered_keys(st, recover_key, r);
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

void resource_cluster_view(struct resource *r, struct cluster_view *out)
{
    if (r->cluster)
        cluster_read_view(r->cluster, out);
}

void resource_idem_stats(struct resource *r, struct idem_stats *out)
{
    idem_read_stats(&r->idem, out);
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
 * lost: the point of --no-lock (and a key's repeats running at the same
 * time may both apply). A key is looked up again here, holding the lock: a
 * repeat that queued while its first ran finds its outcome now. */
static uint64_t section_local(struct resource *r, const struct idem_key *key, uint64_t *seq)
{
    struct idem_outcome o;
    if (key && idem_find(&r->idem, key, loop_now_us(), &o)) {
        *seq = o.seq;
        return o.n;
    }
    uint64_t value = LOAD(r->counter); /* read ... */
    work(r);
    STORE(r->counter, value + 1); /* ... write */
    *seq =
        r->state ? state_commit(r->state, value + 1, key ? key->s : NULL, key ? key->len : 0) : 0;
    o = (struct idem_outcome){.n = value + 1, .seq = *seq};
    if (key)
        idem_put(&r->idem, key, loop_now_us(), &o); /* -ENOMEM: forgotten, the 200 stands */
    return value + 1;
}

/* The section in the cluster: the write is a fenced transaction in etcd
 * that also releases the lock, and remembers the key. A repeat is found
 * there, by the txn: the work is done all the same (the lookup and the
 * write are one txn, after it). */
static int section_cluster(struct resource *r, struct cluster_hold *h, const struct idem_key *key,
                           uint64_t *n)
{
    struct cluster_idem idem = {0};
    if (key)
        idem = (struct cluster_idem){
            .key = key->s, .len = key->len, .retention_ms = LOAD(r->idem_retention_ms)};
    work(r);
    int rc = cluster_commit(r->cluster, h, key ? &idem : NULL, n);
    if (rc == 0 && idem.repeat)
        idem_count_repeat(&r->idem);
    return rc;
}

/* Releases the local lock. Handed to a waiter: let its section start
 * before we spend time sending our reply, so the lock is never held idle. */
static void give_lock(struct resource *r)
{
    lock_release(&r->lock);
    if (lock_locked(&r->lock) && LOAD(r->delay_us) > 0)
        loop_yield();
}

/* A key answered before: its N, once saved (with a state). */
static int repeat(struct resource *r, const struct idem_outcome *o, uint64_t *n,
                  struct resource_timing *t)
{
    *n = o->n;
    *t = (struct resource_timing){0};
    return r->state ? state_wait(r->state, o->seq) : 0;
}

int resource_access(struct resource *r, const struct idem_key *key, uint64_t *n,
                    struct resource_timing *t)
{
    struct cluster_hold hold;
    struct idem_outcome done;
    uint64_t seq = 0;
    if (key && !r->cluster && idem_find(&r->idem, key, loop_now_us(), &done))
        return repeat(r, &done, n, t);
    int64_t asked = loop_clock_us();
    int rc = take_lock(r, &hold);
    if (rc < 0)
        return rc;
    int64_t entered = loop_clock_us();
    __atomic_add_fetch(&r->in_section, 1, __ATOMIC_RELAXED);
    if (r->cluster)
        rc = section_cluster(r, &hold, key, n);
    else
        *n = section_local(r, key, &seq);
    t->wait_us = entered - asked;
    t->work_us = loop_clock_us() - entered;
    __atomic_sub_fetch(&r->in_section, 1, __ATOMIC_RELAXED);
    if (r->cluster)
        return rc;
    if (r->use_lock)
        give_lock(r);
    /* Outside the lock: the next section runs while this one's value is
     * being saved, and one save covers both. A cancel (the client hung up,
     * or only half-closed: conn.c) does not take back an update that ran:
     * wait on, so the reply can still say N. */
    rc = 0;
    while (r->state && (rc = state_wait(r->state, seq)) == -ECANCELED)
        continue;
    return rc;
}
