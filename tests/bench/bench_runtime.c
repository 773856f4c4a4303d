/* Micro-benchmarks of the runtime (not run by `meson test`):
 *   switch   one coroutine switch (half a resume+yield round trip)
 *   lock     uncontended lock_acquire + lock_release
 *   handoff  release -> the new owner running (two coroutines passing the
 *            lock back and forth through the loop)
 *   memory   resident bytes per parked coroutine
 * Usage: bench_runtime [iterations] */
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

static double run_lock(coro_fn fn, long n)
{
    struct loop loop;
    struct lock_bench b = {.n = n};
    loop_init(&loop, 0, 4);
    lock_init(&b.lock, 0);
    loop_spawn(&loop, fn, &b, NULL);
    loop_run(&loop);
    loop_fini(&loop);
    return b.ns;
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
    printf("lock        %6.1f ns  (uncontended acquire+release)\n", run_lock(uncontended, n));
    printf("handoff     %6.1f ns  (release -> new owner running)\n", run_lock(handoff, n / 10));
    printf("memory      %6.0f B   per parked coroutine (10 000 parked)\n",
           bytes_per_coroutine(10000));
    return 0;
}
