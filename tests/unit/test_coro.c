/* Unit tests for lib/coro.c: switching, many live coroutines, pooled
 * stacks, cleanups, and the guard page. */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check_run.h"
#include "coro.h"

static int trace[16];
static int ntrace;

static void ping(void *arg)
{
    int base = *(int *)arg;
    for (int i = 0; i < 3; i++) {
        trace[ntrace++] = base + i;
        coro_yield();
    }
}

START_TEST(switch_back_and_forth)
{
    struct coro_pool pool;
    coro_pool_init(&pool, 0, 4);
    coro_t *a, *b;
    int ba = 10, bb = 20;
    ck_assert_int_eq(coro_create(&pool, ping, &ba, &a), 0);
    ck_assert_int_eq(coro_create(&pool, ping, &bb, &b), 0);
    ntrace = 0;
    ck_assert_ptr_null(coro_current());
    for (int i = 0; i < 3; i++) {
        ck_assert(coro_resume(a));
        ck_assert(coro_resume(b));
    }
    ck_assert(!coro_resume(a)); /* the fourth resume returns from ping */
    ck_assert(!coro_resume(b));
    int want[] = {10, 20, 11, 21, 12, 22};
    ck_assert_int_eq(ntrace, 6);
    ck_assert_mem_eq(trace, want, sizeof(want));
    ck_assert_uint_eq(pool.nlive, 0);
    coro_pool_fini(&pool);
}
END_TEST

/* Callee-saved registers and locals survive switches: a computation
 * interleaved across coroutines gives the same answer as a plain loop. */
static void summer(void *arg)
{
    uint64_t *out = arg;
    uint64_t a = 1, b = 2, c = 3, d = 4, e = 5, f = 6;
    for (int i = 0; i < 100; i++) {
        a += b * 3;
        b ^= c + (uint64_t)i;
        c += d;
        d = d * 7 + e;
        e += f;
        f = f * 3 + a;
        coro_yield();
    }
    *out = a + b + c + d + e + f;
}

START_TEST(locals_survive_switches)
{
    struct coro_pool pool;
    coro_pool_init(&pool, 0, 8);
    uint64_t results[8];
    coro_t *cos[8];
    for (int i = 0; i < 8; i++)
        ck_assert_int_eq(coro_create(&pool, summer, &results[i], &cos[i]), 0);
    while (pool.nlive > 0)
        for (int i = 0; i < 8; i++)
            if (cos[i] && !coro_resume(cos[i]))
                cos[i] = NULL;
    for (int i = 1; i < 8; i++)
        ck_assert_uint_eq(results[i], results[0]);
    uint64_t expect;
    coro_t *one;
    ck_assert_int_eq(coro_create(&pool, summer, &expect, &one), 0);
    while (coro_resume(one))
        ;
    ck_assert_uint_eq(results[0], expect);
    coro_pool_fini(&pool);
}
END_TEST

static void count_up(void *arg)
{
    (*(int *)arg)++;
    coro_yield();
    (*(int *)arg)++;
}

START_TEST(many_live_coroutines)
{
    enum { N = 5000 };
    struct coro_pool pool;
    coro_pool_init(&pool, 16 * 1024, N);
    static coro_t *cos[N];
    static int counts[N];
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(coro_create(&pool, count_up, &counts[i], &cos[i]), 0);
        ck_assert(coro_resume(cos[i]));
    }
    ck_assert_uint_eq(pool.nlive, N);
    for (int i = N - 1; i >= 0; i--)
        ck_assert(!coro_resume(cos[i]));
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(counts[i], 2);
    ck_assert_uint_eq(pool.nlive, 0);
    ck_assert_uint_eq(pool.nfree, N);
    coro_pool_fini(&pool);
}
END_TEST

static void noop(void *arg)
{
    (void)arg;
}

START_TEST(pool_reuses_stacks)
{
    struct coro_pool pool;
    coro_pool_init(&pool, 0, 2);
    coro_t *a, *b, *c;
    ck_assert_int_eq(coro_create(&pool, count_up, &(int){0}, &a), 0);
    ck_assert_int_eq(coro_create(&pool, count_up, &(int){0}, &b), 0);
    ck_assert_uint_eq(pool.nmaps, 2);
    coro_destroy(a);
    coro_destroy(b);
    for (int i = 0; i < 1000; i++) {
        ck_assert_int_eq(coro_create(&pool, noop, NULL, &c), 0);
        ck_assert(c == a || c == b); /* a recycled stack, not a new one */
        ck_assert(!coro_resume(c));
    }
    ck_assert_uint_eq(pool.nmaps, 2);
    /* Beyond max_free, finished stacks are unmapped, not hoarded. */
    coro_t *extra[3];
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(coro_create(&pool, noop, NULL, &extra[i]), 0);
    ck_assert_uint_eq(pool.nmaps, 3);
    for (int i = 0; i < 3; i++)
        coro_destroy(extra[i]);
    ck_assert_uint_eq(pool.nfree, 2);
    coro_pool_fini(&pool);
}
END_TEST

/* Under ASan: a coroutine destroyed deep in its frames leaves no poisoned
 * redzones behind on its stack for the next one (library code built
 * without ASan that puts a buffer there would be reported). */
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>

static void deep_then_yield(void *arg)
{
    volatile char frame[512]; /* address taken: ASan puts redzones around it */
    intptr_t depth = (intptr_t)arg;
    frame[0] = (char)depth;
    if (depth > 0)
        deep_then_yield((void *)(depth - 1));
    else
        coro_yield();
    (void)frame[0];
}

static void check_stack_clean(void *arg)
{
    const char *lo = (const char *)coro_guard_page(coro_current()) + sysconf(_SC_PAGESIZE);
    const char *hi = (const char *)__builtin_frame_address(0) - 4096;
    *(const void **)arg = __asan_region_is_poisoned((void *)lo, (size_t)(hi - lo));
}

START_TEST(destroyed_stack_is_unpoisoned)
{
    struct coro_pool pool;
    coro_pool_init(&pool, 0, 2);
    coro_t *deep, *next;
    const void *poisoned = &pool;
    ck_assert_int_eq(coro_create(&pool, deep_then_yield, (void *)(intptr_t)40, &deep), 0);
    ck_assert(coro_resume(deep));
    coro_destroy(deep);
    ck_assert_int_eq(coro_create(&pool, check_stack_clean, &poisoned, &next), 0);
    ck_assert_ptr_eq(next, deep); /* the same stack */
    ck_assert(!coro_resume(next));
    ck_assert_ptr_null(poisoned);
    coro_pool_fini(&pool);
}
END_TEST
#endif

static char cleanup_log[8];
static int ncleanup;

static void log_cleanup(void *arg)
{
    cleanup_log[ncleanup++] = *(char *)arg;
}

static char ca = 'a', cb = 'b', cc = 'c';

static void with_cleanups(void *arg)
{
    coro_t *self = coro_current();
    ck_assert_int_eq(coro_defer(self, log_cleanup, &ca), 0);
    ck_assert_int_eq(coro_defer(self, log_cleanup, &cb), 0);
    ck_assert_int_eq(coro_defer(self, log_cleanup, &cc), 0);
    coro_undefer(self, log_cleanup, &cb); /* released normally */
    if (arg)
        coro_yield();
}

START_TEST(cleanups_run_last_first)
{
    struct coro_pool pool;
    coro_pool_init(&pool, 0, 2);
    coro_t *co;
    ncleanup = 0;
    ck_assert_int_eq(coro_create(&pool, with_cleanups, NULL, &co), 0);
    ck_assert(!coro_resume(co));
    ck_assert_int_eq(ncleanup, 2);
    ck_assert_mem_eq(cleanup_log, "ca", 2);
    /* Destroying a suspended coroutine runs them too. */
    ncleanup = 0;
    ck_assert_int_eq(coro_create(&pool, with_cleanups, &pool, &co), 0);
    ck_assert(coro_resume(co));
    ck_assert_int_eq(ncleanup, 0);
    coro_destroy(co);
    ck_assert_int_eq(ncleanup, 2);
    ck_assert_uint_eq(pool.nlive, 0);
    coro_pool_fini(&pool);
}
END_TEST

static void fill_defers(void *arg)
{
    coro_t *self = coro_current();
    int *rc = arg;
    for (int i = 0; i < CORO_MAX_DEFER; i++)
        ck_assert_int_eq(coro_defer(self, log_cleanup, &ca), 0);
    *rc = coro_defer(self, log_cleanup, &ca);
}

START_TEST(too_many_cleanups_is_an_error)
{
    struct coro_pool pool;
    coro_pool_init(&pool, 0, 2);
    coro_t *co;
    int rc = 0;
    ncleanup = 0;
    ck_assert_int_eq(coro_create(&pool, fill_defers, &rc, &co), 0);
    ck_assert(!coro_resume(co));
    ck_assert_int_eq(rc, -ENOSPC);
    ck_assert_int_eq(ncleanup, CORO_MAX_DEFER);
    coro_pool_fini(&pool);
}
END_TEST

/* Nested: a coroutine resumes another; yields return to the right place. */
static void inner(void *arg)
{
    strcat(arg, "i1");
    coro_yield();
    strcat(arg, "i2");
}

static void outer(void *arg)
{
    struct coro_pool *pool = *(struct coro_pool **)((char *)arg + 32);
    coro_t *in;
    ck_assert_int_eq(coro_create(pool, inner, arg, &in), 0);
    strcat(arg, "o1");
    ck_assert(coro_resume(in));
    ck_assert_ptr_nonnull(coro_current());
    strcat(arg, "o2");
    coro_yield();
    ck_assert(!coro_resume(in));
    strcat(arg, "o3");
}

START_TEST(nested_resume)
{
    struct coro_pool pool;
    coro_pool_init(&pool, 0, 4);
    char buf[40] = {0};
    *(struct coro_pool **)(buf + 32) = &pool;
    coro_t *out;
    ck_assert_int_eq(coro_create(&pool, outer, buf, &out), 0);
    ck_assert(coro_resume(out));
    ck_assert_str_eq(buf, "o1i1o2");
    ck_assert(!coro_resume(out));
    ck_assert_str_eq(buf, "o1i1o2i2o3");
    coro_pool_fini(&pool);
}
END_TEST

/* ---- guard page: death test in a forked child ---- */

static const char *guard_lo;
static size_t guard_len;

static void on_segv(int sig, siginfo_t *si, void *uc)
{
    (void)sig, (void)uc;
    const char *addr = si->si_addr;
    _exit(addr >= guard_lo && addr < guard_lo + guard_len ? 42 : 43);
}

static int recurse(int depth)
{
    volatile char pad[512];
    pad[0] = (char)depth;
    if (depth > 1000000) /* never reached: 512 MiB of frames */
        return 0;
    return recurse(depth + 1) + pad[0];
}

static void overflow(void *arg)
{
    *(int *)arg = recurse(0);
}

static void overflow_child(void)
{
    static char altstack[64 * 1024];
    stack_t ss = {.ss_sp = altstack, .ss_size = sizeof(altstack)};
    struct sigaction sa = {.sa_sigaction = on_segv, .sa_flags = SA_SIGINFO | SA_ONSTACK};
    sigaltstack(&ss, NULL);
    sigaction(SIGSEGV, &sa, NULL);
    sigaction(SIGBUS, &sa, NULL);

    struct coro_pool pool;
    coro_pool_init(&pool, 16 * 1024, 1);
    coro_t *co;
    int sink = 0;
    if (coro_create(&pool, overflow, &sink, &co) != 0)
        _exit(44);
    guard_lo = coro_guard_page(co);
    guard_len = (size_t)sysconf(_SC_PAGESIZE);
    coro_resume(co);
    _exit(45); /* the recursion cannot come back */
}

START_TEST(stack_overflow_hits_guard_page)
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0)
        overflow_child();
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status), "child died of signal %d", WTERMSIG(status));
    ck_assert_int_eq(WEXITSTATUS(status), 42);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("coro");
    TCase *tc = tcase_create("coro");
    tcase_add_test(tc, switch_back_and_forth);
    tcase_add_test(tc, locals_survive_switches);
    tcase_add_test(tc, many_live_coroutines);
    tcase_add_test(tc, pool_reuses_stacks);
    tcase_add_test(tc, cleanups_run_last_first);
#if defined(__SANITIZE_ADDRESS__)
    tcase_add_test(tc, destroyed_stack_is_unpoisoned);
#endif
    tcase_add_test(tc, too_many_cleanups_is_an_error);
    tcase_add_test(tc, nested_resume);
    tcase_add_test(tc, stack_overflow_hits_guard_page);
    suite_add_tcase(s, tc);
    return check_run(s);
}
