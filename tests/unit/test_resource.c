/* Unit tests for server/resource.c: the counter behind GET /access and its
 * critical section. Increments under the lock, FIFO among concurrent
 * callers, the lock timeout, the queue limit, a cancelled waiter, a section
 * that completes although its coroutine is cancelled, the lost updates of
 * --no-lock, and the timings it reports.
 *
 * A holder coroutine keeps the lock until the test wakes it, so "the lock
 * is busy" never depends on how fast the machine is. Timings are only
 * bounded from below (a section is never shorter than its delay). */
#include <check.h>
#include <errno.h>
#include <stdbool.h>

#include "check_run.h"
#include "loop.h"
#include "run_task.h"
#include "resource.h"
#include "server_fixture.h"

enum { N = 8 };

struct accessor {
    int id;
    int rc; /* 1 until resource_access() returned */
    uint64_t n;
    struct resource_timing t;
    coro_t *co; /* NULL once finished */
};

static struct loop loop;
static struct resource res;
static struct accessor as[N];
static int order[N], norder; /* ids in the order resource_access() returned 0 */
static struct fixture_holder holder;

static void setup(void)
{
    ck_assert_int_eq(loop_init(&loop, 0, N + 2), 0);
    norder = 0;
}

static void teardown(void)
{
    loop_fini(&loop);
}

static void init(double delay_ms, double lock_timeout_ms, uint64_t max_waiters, bool use_lock)
{
    struct resource_settings s = {.delay_ms = delay_ms,
                                  .lock_timeout_ms = lock_timeout_ms,
                                  .max_waiters = max_waiters,
                                  .use_lock = use_lock};
    resource_init(&res, &s);
}

static void accessor_main(void *arg)
{
    struct accessor *a = arg;
    a->rc = resource_access(&res, NULL, &a->n, &a->t);
    if (a->rc == 0)
        order[norder++] = a->id;
    a->co = NULL;
}

/* Starts accessor id; it runs until it first parks (queued, or in its
 * section's delay) or finishes. */
static struct accessor *start(int id)
{
    as[id] = (struct accessor){.id = id, .rc = 1};
    ck_assert_int_eq(loop_spawn(&loop, accessor_main, &as[id], &as[id].co), 0);
    return &as[id];
}

/* Polls, a millisecond at a time, until a has returned (at most 10 s). */
static void wait_done(struct accessor *a)
{
    int64_t limit = loop_now_us() + 10 * 1000000;
    while (a->rc == 1 && loop_now_us() < limit)
        ck_assert_int_eq(loop_sleep_us(1000), 0);
    ck_assert_msg(a->rc != 1, "accessor %d never returned", a->id);
}

static void run(coro_fn fn, void *arg)
{
    run_task(&loop, fn, arg);
    ck_assert(!lock_locked(&res.lock));
    ck_assert_uint_eq(res.in_section, 0);
}

/* ---- settings ---- */

START_TEST(settings_are_converted_to_microseconds)
{
    struct resource_settings s = {.delay_ms = 1.5,
                                  .jitter_ms = 0.25,
                                  .lock_timeout_ms = 2,
                                  .max_waiters = 7,
                                  .use_lock = true};
    resource_init(&res, &s);
    ck_assert_int_eq(res.delay_us, 1500);
    ck_assert_int_eq(res.jitter_us, 250);
    ck_assert_int_eq(res.lock_timeout_us, 2000);
    ck_assert_uint_eq(res.lock.max_queue, 7);
    ck_assert(res.use_lock);
    ck_assert_uint_eq(res.counter, 0);
    ck_assert_ptr_null(res.state);
    ck_assert(!lock_locked(&res.lock));
}
END_TEST

/* ---- the counter ---- */

static void three_in_a_row(void *arg)
{
    (void)arg;
    for (uint64_t i = 1; i <= 3; i++) {
        uint64_t n = 0;
        struct resource_timing t;
        ck_assert_int_eq(resource_access(&res, NULL, &n, &t), 0);
        ck_assert_uint_eq(n, i);
        ck_assert_uint_eq(res.counter, i);
        ck_assert(!lock_locked(&res.lock)); /* released on the way out */
    }
}

START_TEST(counter_increments_under_the_lock)
{
    init(0, 0, 0, true);
    run(three_in_a_row, NULL);
    ck_assert_uint_eq(res.counter, 3);
    ck_assert_uint_eq(res.lock.stats.acquisitions, 3);
    ck_assert_uint_eq(res.lock.stats.hold_us.count, 3);
}
END_TEST

/* While a section runs (in its delay) the lock is held and in_section
 * says so. */
static void inside(void *arg)
{
    (void)arg;
    struct accessor *a = start(0);
    ck_assert_int_eq(a->rc, 1);
    ck_assert_uint_eq(res.in_section, 1);
    ck_assert(lock_locked(&res.lock));
    ck_assert_uint_eq(res.counter, 0); /* read, not yet written */
    wait_done(a);
    ck_assert_uint_eq(res.in_section, 0);
    ck_assert_uint_eq(res.counter, 1);
}

START_TEST(section_is_visible_while_it_runs)
{
    init(5, 0, 0, true);
    run(inside, NULL);
    ck_assert_int_eq(as[0].rc, 0);
}
END_TEST

static void fifo(void *arg)
{
    (void)arg;
    fixture_hold(&holder, &loop, &res.lock);
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(start(i)->rc, 1);
    ck_assert_uint_eq(res.lock.stats.waiters, 5);
    ck_assert_uint_eq(res.in_section, 0);
    fixture_release(&holder);
}

START_TEST(concurrent_callers_are_served_in_arrival_order)
{
    init(1, 0, 0, true);
    run(fifo, NULL);
    for (int i = 0; i < 5; i++) {
        ck_assert_int_eq(as[i].rc, 0);
        ck_assert_msg(as[i].n == (uint64_t)i + 1, "caller %d wrote %llu", i,
                      (unsigned long long)as[i].n);
        ck_assert_int_eq(order[i], i);
    }
    ck_assert_uint_eq(res.counter, 5);
    ck_assert_uint_eq(res.lock.stats.contended, 5);
}
END_TEST

/* ---- refusals: the counter is untouched ---- */

static void timeout(void *arg)
{
    (void)arg;
    fixture_hold(&holder, &loop, &res.lock);
    int64_t t0 = loop_now_us();
    struct accessor *a = start(0);
    wait_done(a);
    ck_assert_int_eq(a->rc, -ETIMEDOUT);
    ck_assert_int_ge(loop_now_us() - t0, 5000); /* not before the timeout */
    ck_assert_uint_eq(res.counter, 0);
    ck_assert_uint_eq(res.lock.stats.waiters, 0);
    fixture_release(&holder);
}

START_TEST(lock_timeout_is_etimedout_and_leaves_the_counter)
{
    init(0, 5, 0, true);
    run(timeout, NULL);
    ck_assert_uint_eq(res.counter, 0);
    ck_assert_uint_eq(res.lock.stats.timeouts, 1);
    ck_assert_int_eq(norder, 0);
}
END_TEST

static void full(void *arg)
{
    (void)arg;
    fixture_hold(&holder, &loop, &res.lock);
    ck_assert_int_eq(start(0)->rc, 1);      /* queued */
    ck_assert_int_eq(start(1)->rc, -EBUSY); /* refused at once */
    ck_assert_uint_eq(res.counter, 0);
    fixture_release(&holder);
}

START_TEST(max_waiters_is_ebusy)
{
    init(0, 0, 1, true);
    run(full, NULL);
    ck_assert_int_eq(as[0].rc, 0);
    ck_assert_uint_eq(as[0].n, 1);
    ck_assert_uint_eq(res.counter, 1);
    ck_assert_uint_eq(res.lock.stats.shed, 1);
}
END_TEST

static void cancel_queued(void *arg)
{
    (void)arg;
    fixture_hold(&holder, &loop, &res.lock);
    struct accessor *a = start(0);
    start(1);
    ck_assert_int_eq(loop_cancel(a->co), 0);
    wait_done(a);
    ck_assert_int_eq(a->rc, -ECANCELED);
    ck_assert_uint_eq(res.counter, 0);
    ck_assert_uint_eq(res.lock.stats.waiters, 1);
    fixture_release(&holder);
}

START_TEST(cancelled_waiter_is_ecanceled_and_leaves_the_counter)
{
    init(0, 0, 0, true);
    run(cancel_queued, NULL);
    ck_assert_int_eq(as[1].rc, 0);
    ck_assert_uint_eq(as[1].n, 1); /* the cancelled one wrote nothing */
    ck_assert_uint_eq(res.counter, 1);
    ck_assert_uint_eq(res.lock.stats.cancellations, 1);
}
END_TEST

/* resource.h: once the section has started it always completes, cancelled
 * or not. The cancel lands in the section's delay. */
static void cancel_inside(void *arg)
{
    (void)arg;
    struct accessor *a = start(0);
    start(1); /* queued behind it */
    ck_assert_uint_eq(res.in_section, 1);
    ck_assert_int_eq(loop_cancel(a->co), 0); /* it is parked in its delay */
    wait_done(a);
}

START_TEST(started_section_completes_when_cancelled)
{
    init(20, 0, 0, true);
    run(cancel_inside, NULL);
    ck_assert_int_eq(as[0].rc, 0);
    ck_assert_uint_eq(as[0].n, 1);
    ck_assert_int_ge(as[0].t.work_us, 20000); /* the whole delay, not cut short */
    ck_assert_int_eq(as[1].rc, 0);
    ck_assert_uint_eq(as[1].n, 2);
    ck_assert_uint_eq(res.counter, 2);
    ck_assert_uint_eq(res.lock.stats.cancellations, 0);
}
END_TEST

/* ---- --no-lock ---- */

/* Five callers read the counter before any of them writes: every one
 * writes 1. The demonstration --no-lock exists for. */
static void unlocked(void *arg)
{
    (void)arg;
    for (int i = 0; i < 5; i++)
        start(i);
    ck_assert_uint_eq(res.in_section, 5);
    ck_assert(!lock_locked(&res.lock));
}

START_TEST(no_lock_loses_updates_under_concurrency)
{
    init(5, 0, 0, false);
    run(unlocked, NULL);
    for (int i = 0; i < 5; i++) {
        ck_assert_int_eq(as[i].rc, 0);
        ck_assert_uint_eq(as[i].n, 1);
    }
    ck_assert_uint_eq(res.counter, 1); /* 5 updates, 4 lost */
    ck_assert_uint_eq(res.lock.stats.acquisitions, 0);
}
END_TEST

/* Without concurrency nothing is lost, lock or not. */
START_TEST(no_lock_alone_counts_right)
{
    init(0, 0, 0, false);
    run(three_in_a_row, NULL);
    ck_assert_uint_eq(res.counter, 3);
}
END_TEST

/* ---- timings ---- */

static int64_t spawn_gap_us; /* from before the first start to after the second */

static void timed(void *arg)
{
    (void)arg;
    int64_t t0 = loop_now_us();
    start(0);
    start(1);
    spawn_gap_us = loop_now_us() - t0;
}

START_TEST(timings_cover_the_wait_and_the_delay)
{
    init(10, 0, 0, true);
    run(timed, NULL);
    ck_assert_int_eq(as[0].rc, 0);
    ck_assert_int_eq(as[1].rc, 0);
    ck_assert_int_ge(as[0].t.work_us, 10000);
    ck_assert_int_ge(as[1].t.work_us, 10000);
    ck_assert_int_ge(as[0].t.wait_us, 0);
    /* The second waited for the whole of the first's section, less the
     * time between their arrivals. */
    ck_assert_int_ge(as[1].t.wait_us, 10000 - spawn_gap_us);
    ck_assert_uint_ge(res.lock.stats.hold_us.max, 10000);
}
END_TEST

/* Jitter adds to the delay, never takes from it. */
static void jittered(void *arg)
{
    (void)arg;
    for (int i = 0; i < 4; i++) {
        uint64_t n;
        struct resource_timing t;
        ck_assert_int_eq(resource_access(&res, NULL, &n, &t), 0);
        ck_assert_int_ge(t.work_us, 1000);
    }
}

START_TEST(jitter_never_shortens_the_delay)
{
    struct resource_settings s = {.delay_ms = 1, .jitter_ms = 1, .use_lock = true};
    resource_init(&res, &s);
    run(jittered, NULL);
    ck_assert_uint_eq(res.counter, 4);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("resource");
    TCase *tc = tcase_create("resource");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, settings_are_converted_to_microseconds);
    tcase_add_test(tc, counter_increments_under_the_lock);
    tcase_add_test(tc, section_is_visible_while_it_runs);
    tcase_add_test(tc, concurrent_callers_are_served_in_arrival_order);
    tcase_add_test(tc, lock_timeout_is_etimedout_and_leaves_the_counter);
    tcase_add_test(tc, max_waiters_is_ebusy);
    tcase_add_test(tc, cancelled_waiter_is_ecanceled_and_leaves_the_counter);
    tcase_add_test(tc, started_section_completes_when_cancelled);
    tcase_add_test(tc, no_lock_loses_updates_under_concurrency);
    tcase_add_test(tc, no_lock_alone_counts_right);
    tcase_add_test(tc, timings_cover_the_wait_and_the_delay);
    tcase_add_test(tc, jitter_never_shortens_the_delay);
    suite_add_tcase(s, tc);
    return check_run(s);
}
