/* Micro-benchmarks of the runtime (not run by `meson test`):
 *   switch   one coroutine switch (half a resume+yield round trip)
 *   lock     uncontended lock_acquire + lock_release
 *   handoff  release -> the new owner running (two coroutines passing the
 *            lock back and forth through the loop)
 *   shared   uncontended acquire + release of a lock shared between loops
 *   xhandoff release on one loop -> the new owner running on another loop's
 *            thread (through that loop's inbox)
 *   memory   resident bytes per parked coroutine
 * Usage: bench_runtime [iterations] */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lock.h"
#include "loop.h"

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void yielder(void *arg)
{
    long n = *(long *)arg;
    for (long i = 0; i < n; i++)
        coro_yield();
}

static double bench_switch(long n)
{
    struct coro_pool pool;
    coro_pool_init(&pool, 0, 1);
    coro_t *co;
    coro_create(&pool, yielder, &n, &co);
    double t0 = now_ns();
    while (coro_resume(co))
        ;
    double ns = (now_ns() - t0) / (2.0 * (double)n);
    coro_pool_fini(&pool);
    return ns;
}

struct lock_bench {
    struct lock lock;
    long n;
    double ns;
};

static void uncontended(void *arg)
{
    struct lock_bench *b = arg;
    double t0 = now_ns();
    for (long i = 0; i < b->n; i++) {
        lock_acquire(&b->lock, LOOP_FOREVER);
        lock_release(&b->lock);
    }
    b->ns = (now_ns() - t0) / (double)b->n;
}

/* Two coroutines take turns: each release hands the lock to the other. */
static void ping_pong(void *arg)
{
    struct lock_bench *b = arg;
    for (long i = 0; i < b->n; i++) {
        lock_acquire(&b->lock, LOOP_FOREVER);
        lock_release(&b->lock);
    }
}

static void handoff(void *arg)
{
    struct lock_bench *b = arg;
    lock_acquire(&b->lock, LOOP_FOREVER);
    loop_spawn(loop_current(), ping_pong, b, NULL); /* queues behind us */
    double t0 = now_ns();
    for (long i = 0; i < b->n; i++) {
        lock_release(&b->lock);
        lock_acquire(&b->lock, LOOP_FOREVER); /* queues; wakes after the other's turn */
    }
    b->ns = (now_ns() - t0) / (2.0 * (double)b->n);
    lock_release(&b->lock);
}

static double run_lock(coro_fn fn, long n, bool shared)
{
    struct loop loop;
    struct lock_bench b = {.n = n};
    loop_init(&loop, 0, 4);
    lock_init(&b.lock, 0);
    if (shared)
        lock_share(&b.lock);
    loop_spawn(&loop, fn, &b, NULL);
    loop_run(&loop);
    loop_fini(&loop);
    return b.ns;
}

/* ---- across threads ---- */

/* Two sides, one per loop (thread), pass the lock back and forth. Each
 * lets go only once the other is queued, so every release is a hand-off
 * across threads; the new owner measures from the release's timestamp to
 * its own first instruction. */
static struct loop xloops[2];
static struct lock xlock;
static int64_t released_at_ns; /* atomic: written by the side letting go */
static int sides_done;         /* atomic */
static struct hist xlat;       /* hand-off latencies, ns (under xlock: the owner writes) */

static int64_t now_i64(void)
{
    return (int64_t)now_ns();
}

static bool other_queued(void)
{
    struct lock_stats s;
    lock_read_stats(&xlock, &s);
    return s.waiters > 0;
}

static void stop_loop(void *arg)
{
    loop_break(arg);
}

static void side(void *arg)
{
    static struct loop_post stops[2] = {{.fn = stop_loop, .arg = &xloops[0]},
                                        {.fn = stop_loop, .arg = &xloops[1]}};
    long n = *(long *)arg;
    for (long i = 0; i < n; i++) {
        lock_acquire(&xlock, LOOP_FOREVER);
        int64_t at = __atomic_load_n(&released_at_ns, __ATOMIC_ACQUIRE);
        if (at)
            hist_record(&xlat, (uint64_t)(now_i64() - at));
        while (!other_queued() && __atomic_load_n(&sides_done, __ATOMIC_ACQUIRE) == 0)
            ; /* spin: sleeping here would measure the sleep */
        __atomic_store_n(&released_at_ns, now_i64(), __ATOMIC_RELEASE);
        lock_release(&xlock);
    }
    if (__atomic_add_fetch(&sides_done, 1, __ATOMIC_ACQ_REL) == 2) {
        loop_post(&xloops[0], &stops[0]);
        loop_post(&xloops[1], &stops[1]);
    }
}

static void spawn_side(void *arg)
{
    loop_spawn(&xloops[1], side, arg, NULL); /* on loop 1's thread */
}

static void *xthread(void *arg)
{
    loop_run(arg);
    return NULL;
}

/* p50 of the release -> owner running latency across threads, in ns. */
static double cross_thread_handoff(long n, double *p99)
{
    static struct loop_post spawn = {.fn = spawn_side};
    pthread_t t;
    lock_init(&xlock, 0);
    lock_share(&xlock);
    hist_init(&xlat);
    for (int i = 0; i < 2; i++) {
        loop_init(&xloops[i], 0, 4);
        loop_open_inbox(&xloops[i]);
    }
    pthread_create(&t, NULL, xthread, &xloops[1]);
    spawn.arg = &n;
    loop_post(&xloops[1], &spawn);
    loop_spawn(&xloops[0], side, &n, NULL);
    loop_run(&xloops[0]);
    pthread_join(t, NULL);
    *p99 = (double)hist_percentile(&xlat, 99);
    return (double)hist_percentile(&xlat, 50);
}

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    while (f && fgets(line, sizeof(line), f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            kib = atol(line + 6);
    if (f)
        fclose(f);
    return kib;
}

static void park_forever(void *arg)
{
    (void)arg;
    loop_park(LOOP_FOREVER);
}

static double bytes_per_coroutine(int n)
{
    struct loop loop;
    loop_init(&loop, 0, 0);
    long before = rss_kib();
    for (int i = 0; i < n; i++)
        loop_spawn(&loop, park_forever, NULL, NULL);
    double per = (double)(rss_kib() - before) * 1024.0 / n;
    return per; /* the loop is not torn down: the parked stacks are the measurement */
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 10000000;
    printf("switch      %6.1f ns\n", bench_switch(n));
    printf("lock        %6.1f ns  (uncontended acquire+release)\n",
           run_lock(uncontended, n, false));
    printf("handoff     %6.1f ns  (release -> new owner running)\n",
           run_lock(handoff, n / 10, false));
    printf("shared      %6.1f ns  (uncontended acquire+release, lock shared by loops)\n",
           run_lock(uncontended, n, true));
    double p99, p50 = cross_thread_handoff(n / 100, &p99);
    printf("xhandoff    %6.0f ns  p50, %.0f ns p99 (release -> new owner running on another "
           "loop's thread)\n",
           p50, p99);
    printf("memory      %6.0f B   per parked coroutine (10 000 parked)\n",
           bytes_per_coroutine(10000));
    return 0;
}
