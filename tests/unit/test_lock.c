/* Unit tests for lib/lock.c, after CPython's test_locks.py, Trio's fairness
 * tests and Tokio's aborted-future tests: FIFO with late arrivals, no
 * barging after a hand-off, cancellation at the head and in the middle,
 * timeout against grant in one turn (both orders), a seeded random storm,
 * misuse, 20 000 waiters, shedding, destroyed waiters and owners, stats. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>

#include "rng.h"
#include "check_run.h"
#include "lock.h"
#include "loop.h"
#include "run_task.h"

static struct loop loop;
static struct lock lk;

enum { MAXW = 20000 };
static int order[MAXW]; /* ids in the order they got the lock */
static int norder;
static int holders; /* coroutines inside the lock now: never above 1 */

struct waiter {
    int id;
    int64_t deadline;
    int64_t hold_us; /* 0: release at once */
    int rc;
    coro_t *co; /* NULL once finished */
};
static struct waiter ws[MAXW];

static void setup(void)
{
    ck_assert_int_eq(loop_init(&loop, 16 * 1024, MAXW), 0);
    lock_init(&lk, 0);
    norder = 0;
    holders = 0;
}

static void teardown(void)
{
    loop_fini(&loop);
}

/* For tests that run several rounds inside one fixture. */
static void fresh_start(void)
{
    teardown();
    setup();
}

static void run(coro_fn fn, void *arg)
{
    run_task(&loop, fn, arg);
    ck_assert(!lock_locked(&lk));
    ck_assert_uint_eq(lk.stats.waiters, 0);
}

static void waiter_main(void *arg)
{
    struct waiter *w = arg;
    w->rc = lock_acquire(&lk, w->deadline);
    if (w->rc == 0) {
        ck_assert_int_eq(++holders, 1);
        order[norder++] = w->id;
        if (w->hold_us)
            ck_assert_int_eq(loop_sleep_us(w->hold_us), 0);
        holders--;
        ck_assert_int_eq(lock_release(&lk), 0);
    }
    w->co = NULL;
}

/* Starts waiter i; it queues (or takes the lock) before this returns. */
static struct waiter *start(int i, int64_t deadline, int64_t hold_us)
{
    ws[i] = (struct waiter){.id = i, .deadline = deadline, .hold_us = hold_us, .rc = 1};
    ck_assert_int_eq(loop_spawn(&loop, waiter_main, &ws[i], &ws[i].co), 0);
    return &ws[i];
}

static void assert_order(const int *want, int n)
{
    ck_assert_int_eq(norder, n);
    for (int i = 0; i < n; i++)
        ck_assert_msg(order[i] == want[i], "grant %d went to %d, not %d", i, order[i], want[i]);
}

/* Sleeps in short steps until a waiter's result is in (rc != 1): a
 * timeout or cancel is delivered late in a loop turn, and on a loaded
 * machine a fixed sleep may end before it. Ten seconds at most. */
static void settle(const int *rc)
{
    for (int i = 0; i < 10000 && *rc == 1; i++)
        ck_assert_int_eq(loop_sleep_us(1000), 0);
}

/* ---- basics ---- */

static int sibling_ran;

static void sibling(void *arg)
{
    (void)arg;
    loop_park(LOOP_FOREVER);
    sibling_ran = 1;
}

static void uncontended(void *arg)
{
    (void)arg;
    coro_t *sib;
    sibling_ran = 0;
    ck_assert_int_eq(loop_spawn(&loop, sibling, NULL, &sib), 0);
    ck_assert_int_eq(loop_wake(sib, 0), 0); /* runnable: would run if we yielded */
    ck_assert(!lock_locked(&lk));
    ck_assert_int_eq(lock_acquire(&lk, LOOP_FOREVER), 0);
    ck_assert(lock_locked(&lk));
    ck_assert_int_eq(lock_release(&lk), 0);
    ck_assert_int_eq(sibling_ran, 0); /* no yield happened */
    ck_assert(!lock_locked(&lk));
}

START_TEST(uncontended_acquire_does_not_yield)
{
    run(uncontended, NULL);
    ck_assert_uint_eq(lk.stats.acquisitions, 1);
    ck_assert_uint_eq(lk.stats.contended, 0);
}
END_TEST

/* Holds the lock until the director wakes it: tests that need the lock
 * busy for a while do not depend on how fast a loaded machine runs. */
static void holder_main(void *arg)
{
    ck_assert_int_eq(lock_acquire(&lk, LOOP_FOREVER), 0);
    order[norder++] = *(int *)arg;
    ck_assert_int_eq(loop_park(LOOP_FOREVER), 0);
    ck_assert_int_eq(lock_release(&lk), 0);
}

static void fifo_late_arrivals(void *arg)
{
    static int zero = 0;
    coro_t *holder;
    (void)arg;
    ck_assert_int_eq(loop_spawn(&loop, holder_main, &zero, &holder), 0);
    for (int i = 1; i <= 5; i++)
        start(i, LOOP_FOREVER, 0);
    ck_assert_int_eq(loop_sleep_us(500), 0);
    for (int i = 6; i <= 10; i++) /* arrive while the first five wait */
        start(i, LOOP_FOREVER, 100);
    ck_assert_uint_eq(lk.stats.waiters, 10);
    ck_assert_int_eq(loop_wake(holder, 0), 0);
}

START_TEST(fifo_with_late_arrivals)
{
    run(fifo_late_arrivals, NULL);
    int want[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    assert_order(want, 11);
    ck_assert_uint_eq(lk.stats.max_waiters, 10);
}
END_TEST

/* The owner releases and, in the same turn, a newcomer asks: the lock was
 * handed to the waiter, so the newcomer must queue behind it. */
static void no_barging(void *arg)
{
    (void)arg;
    ck_assert_int_eq(lock_acquire(&lk, LOOP_FOREVER), 0);
    start(1, LOOP_FOREVER, 0);
    ck_assert_int_eq(lock_release(&lk), 0);
    ck_assert(lock_locked(&lk)); /* owned by waiter 1, which has not run yet */
    ck_assert_int_eq(ws[1].rc, 1);
    start(2, LOOP_FOREVER, 0);
    ck_assert_int_eq(ws[2].rc, 1); /* queued, not granted */
    ck_assert_uint_eq(lk.stats.waiters, 1);
}

START_TEST(newcomer_queues_behind_hand_off)
{
    run(no_barging, NULL);
    int want[] = {1, 2};
    assert_order(want, 2);
}
END_TEST

/* ---- cancellation ---- */

static void cancel_middle(void *arg)
{
    (void)arg;
    ck_assert_int_eq(lock_acquire(&lk, LOOP_FOREVER), 0);
    for (int i = 1; i <= 5; i++)
        start(i, LOOP_FOREVER, 0);
    ck_assert_int_eq(loop_cancel(ws[3].co), 0);
    settle(&ws[3].rc); /* let the cancellation land */
    ck_assert_int_eq(ws[3].rc, -ECANCELED);
    ck_assert_uint_eq(lk.stats.waiters, 4); /* it left the queue */
    ck_assert_int_eq(lock_release(&lk), 0);
}

START_TEST(cancel_a_middle_waiter)
{
    run(cancel_middle, NULL);
    int want[] = {1, 2, 4, 5};
    assert_order(want, 4);
    ck_assert_uint_eq(lk.stats.cancellations, 1);
    ck_assert_uint_eq(lk.stats.acquisitions, 5);
}
END_TEST

/* The head is cancelled and the lock released in the same turn, in both
 * orders: exactly one outcome, the grant, and the rest follow in order. */
static void cancel_head_releasing(void *arg)
{
    int cancel_first = *(int *)arg;
    ck_assert_int_eq(lock_acquire(&lk, LOOP_FOREVER), 0);
    for (int i = 1; i <= 3; i++)
        start(i, LOOP_FOREVER, 0);
    if (cancel_first) {
        ck_assert_int_eq(loop_cancel(ws[1].co), 0);
        ck_assert_int_eq(lock_release(&lk), 0);
    } else {
        ck_assert_int_eq(lock_release(&lk), 0);
        ck_assert_int_eq(loop_cancel(ws[1].co), -EALREADY);
    }
}

START_TEST(cancel_the_head_while_releasing)
{
    for (int cancel_first = 0; cancel_first < 2; cancel_first++) {
        fresh_start();
        run(cancel_head_releasing, &cancel_first);
        ck_assert_int_eq(ws[1].rc, 0);
        int want[] = {1, 2, 3};
        assert_order(want, 3);
        ck_assert_uint_eq(lk.stats.cancellations, 0);
    }
}
END_TEST

/* ---- timeouts ---- */

static void times_out(void *arg)
{
    (void)arg;
    ck_assert_int_eq(lock_acquire(&lk, LOOP_FOREVER), 0);
    int64_t t0 = loop_now_us();
    start(1, t0 + 20000, 0);
    start(2, LOOP_FOREVER, 0);
    settle(&ws[1].rc);
    ck_assert_int_ge(loop_now_us() - t0, 20000);
    ck_assert_int_eq(ws[1].rc, -ETIMEDOUT);
    ck_assert_uint_eq(lk.stats.waiters, 1);
    ck_assert(lock_locked(&lk));
    ck_assert_int_eq(lock_release(&lk), 0);
}

START_TEST(timeout_leaves_the_queue)
{
    run(times_out, NULL);
    int want[] = {2};
    assert_order(want, 1);
    ck_assert_uint_eq(lk.stats.timeouts, 1);
}
END_TEST

static void spin_until(int64_t t)
{
    while (loop_now_us() < t)
        ;
}

/* Waiter 1's deadline passes while the owner still holds the lock, and the
 * release comes in the same loop turn as the timeout: either before the
 * loop saw the deadline (grant first), or after the timer fired but before
 * the waiter ran (timeout first). The grant wins both times. */
static void timeout_vs_grant(void *arg)
{
    int timeout_first = *(int *)arg;
    ck_assert_int_eq(lock_acquire(&lk, LOOP_FOREVER), 0);
    int64_t deadline = loop_now_us() + 2000;
    start(1, deadline, 0);
    spin_until(deadline + 1000); /* the deadline is past; the loop cannot see it yet */
    if (timeout_first)
        ck_assert_int_eq(loop_sleep_us(1), 0); /* its timer and ours fire in one turn */
    ck_assert_int_eq(ws[1].rc, 1);
    ck_assert_int_eq(lock_release(&lk), 0);
}

START_TEST(timeout_and_grant_in_one_turn)
{
    for (int timeout_first = 0; timeout_first < 2; timeout_first++) {
        fresh_start();
        run(timeout_vs_grant, &timeout_first);
        ck_assert_int_eq(ws[1].rc, 0);
        int want[] = {1};
        assert_order(want, 1);
        ck_assert_uint_eq(lk.stats.timeouts, 0);
        ck_assert_uint_eq(lk.stats.acquisitions, 2);
    }
}
END_TEST

/* ---- misuse ---- */

static void misuse(void *arg)
{
    (void)arg;
    ck_assert_int_eq(lock_release(&lk), -EPERM); /* not locked */
    start(1, LOOP_FOREVER, 5000);                /* waiter 1 holds it */
    ck_assert_int_eq(lock_release(&lk), -EPERM); /* not ours */
    ck_assert(lock_locked(&lk));
    ck_assert_int_eq(lock_acquire(&lk, LOOP_FOREVER), 0);
    ck_assert_int_eq(lock_acquire(&lk, LOOP_FOREVER), -EDEADLK); /* not recursive */
    ck_assert_int_eq(lock_release(&lk), 0);
    ck_assert_int_eq(lock_release(&lk), -EPERM); /* twice */
}

START_TEST(release_misuse_is_refused)
{
    ck_assert_int_eq(lock_release(&lk), -EPERM); /* outside any coroutine */
    run(misuse, NULL);
    ck_assert_uint_eq(lk.stats.acquisitions, 2);
}
END_TEST

/* ---- scale ---- */

static void twenty_thousand(void *arg)
{
    (void)arg;
    ck_assert_int_eq(lock_acquire(&lk, LOOP_FOREVER), 0);
    for (int i = 0; i < MAXW; i++)
        start(i, LOOP_FOREVER, 0);
    ck_assert_uint_eq(lk.stats.waiters, MAXW);
    ck_assert_int_eq(lock_release(&lk), 0);
}

START_TEST(twenty_thousand_waiters_in_order)
{
    run(twenty_thousand, NULL);
    for (int i = 0; i < MAXW; i++)
        ck_assert_int_eq(order[i], i);
    ck_assert_int_eq(norder, MAXW);
    ck_assert_uint_eq(lk.stats.contended, MAXW);
}
END_TEST

static void shedding(void *arg)
{
    (void)arg;
    ck_assert_int_eq(lock_acquire(&lk, LOOP_FOREVER), 0);
    start(1, LOOP_FOREVER, 0);
    start(2, LOOP_FOREVER, 0);
    start(3, LOOP_FOREVER, 0);
    ck_assert_int_eq(ws[3].rc, -EBUSY); /* at once, without queueing */
    ck_assert_int_eq(lock_release(&lk), 0);
}

START_TEST(full_queue_sheds)
{
    lock_init(&lk, 2);
    run(shedding, NULL);
    int want[] = {1, 2};
    assert_order(want, 2);
    ck_assert_uint_eq(lk.stats.shed, 1);
}
END_TEST

/* ---- destroyed coroutines (Tokio's aborted futures) ---- */

static void destroyed(void *arg)
{
    (void)arg;
    start(0, LOOP_FOREVER, 60 * 1000000); /* holds for a minute... */
    for (int i = 1; i <= 4; i++)
        start(i, LOOP_FOREVER, 0);
    coro_destroy(ws[2].co); /* queued: leaves the queue */
    ck_assert_uint_eq(lk.stats.waiters, 3);
    coro_destroy(ws[0].co); /* ...but is aborted: the lock passes to 1 */
    ck_assert(lock_locked(&lk));
    coro_destroy(ws[1].co); /* granted, never ran: passes to 3 */
    ck_assert(lock_locked(&lk));
    holders = 0; /* the destroyed owner never left its section */
}

START_TEST(destroyed_waiters_and_owners_pass_the_lock_on)
{
    run(destroyed, NULL);
    int want[] = {0, 3, 4};
    assert_order(want, 3);
    ck_assert_uint_eq(lk.stats.cancellations, 1);
}
END_TEST

/* ---- random storm ---- */

/* 3000 arrivals at random moments, with random deadlines, holds and
 * cancellations. Survivors get the lock in arrival order, one at a time. */
static void storm(void *arg)
{
    enum { N = 3000 };
    (void)arg;
    for (int i = 0; i < N; i++) {
        int64_t now = loop_now_us();
        int64_t deadline = rng() % 4 ? LOOP_FOREVER : now + (int64_t)(rng() % 3000);
        start(i, deadline, rng() % 3 ? 0 : (int64_t)(rng() % 50));
        if (rng() % 4 == 0) { /* cancel a random earlier waiter still queued */
            struct waiter *v = &ws[rng() % (uint64_t)(i + 1)];
            if (v->co && v->rc == 1 && loop_parked(v->co))
                ck_assert_int_eq(loop_cancel(v->co), 0);
        }
        if (rng() % 8 == 0)
            ck_assert_int_eq(loop_sleep_us((int64_t)(rng() % 200)), 0);
    }
}

START_TEST(random_storm_keeps_fifo_among_survivors)
{
    for (uint64_t seed = 1; seed <= 3; seed++) {
        fresh_start();
        rng_seed(0x9E3779B97F4A7C15ull * seed);
        run(storm, NULL);
        for (int i = 1; i < norder; i++)
            ck_assert_msg(order[i - 1] < order[i], "seed %lu: %d granted before %d",
                          (unsigned long)seed, order[i - 1], order[i]);
        int ok = 0, timeouts = 0, cancels = 0;
        for (int i = 0; i < 3000; i++) {
            ok += ws[i].rc == 0;
            timeouts += ws[i].rc == -ETIMEDOUT;
            cancels += ws[i].rc == -ECANCELED;
        }
        ck_assert_int_eq(ok + timeouts + cancels, 3000);
        ck_assert_int_eq(ok, norder);
        ck_assert_uint_eq(lk.stats.acquisitions, (uint64_t)ok);
        ck_assert_uint_eq(lk.stats.timeouts, (uint64_t)timeouts);
        ck_assert_uint_eq(lk.stats.cancellations, (uint64_t)cancels);
        ck_assert_int_gt(timeouts, 0); /* the storm really exercised them */
        ck_assert_int_gt(cancels, 0);
    }
}
END_TEST

/* ---- statistics ---- */

static void timed(void *arg)
{
    (void)arg;
    start(0, LOOP_FOREVER, 5000);
    start(1, LOOP_FOREVER, 5000);
    start(2, LOOP_FOREVER, 0);
}

START_TEST(stats_and_histograms_match)
{
    run(timed, NULL);
    const struct lock_stats *s = &lk.stats;
    ck_assert_uint_eq(s->acquisitions, 3);
    ck_assert_uint_eq(s->contended, 2);
    ck_assert_uint_eq(s->max_waiters, 2);
    ck_assert_uint_eq(s->wait_us.count, 3);
    ck_assert_uint_eq(s->hold_us.count, 3);
    /* Waiter 2 waited for two 5 ms holds; holds were 5, 5 and ~0 ms. */
    ck_assert_uint_ge(s->wait_us.max, 10000);
    ck_assert_uint_ge(hist_percentile(&s->wait_us, 50), 5000);
    ck_assert_uint_ge(hist_percentile(&s->hold_us, 90), 5000);
    ck_assert_uint_lt(hist_percentile(&s->hold_us, 30), 5000);
    ck_assert_uint_ge(s->hold_us.sum, 10000);
}
END_TEST

/* Two loops' statistics of one lock: counts and those waiting now add up,
 * the most that waited at once is the larger (7 and 5 at different times
 * is not 12 at once), histograms merge. */
START_TEST(stats_of_parts_add_up_and_a_max_stays_a_max)
{
    struct lock_stats a, b;
    lock_stats_init(&a);
    lock_stats_init(&b);
    lock_stats_waiting(&a, 7);
    lock_stats_waiting(&a, 1);
    lock_stats_waiting(&b, 5);
    lock_stats_waiting(&b, 2);
    lock_stats_acquired(&a, 10, true);
    lock_stats_acquired(&b, 30, false);
    lock_stats_released(&b, 40);
    lock_stats_refused(&a, -ETIMEDOUT);
    lock_stats_refused(&b, -ECANCELED);
    lock_stats_refused(&b, -EBUSY);
    lock_stats_refused(&b, -ENOSPC); /* not the lock's to count */
    lock_stats_add(&a, &b);
    ck_assert_uint_eq(a.waiters, 3);
    ck_assert_uint_eq(a.max_waiters, 7);
    ck_assert_uint_eq(a.acquisitions, 2);
    ck_assert_uint_eq(a.contended, 1);
    ck_assert_uint_eq(a.timeouts, 1);
    ck_assert_uint_eq(a.cancellations, 1);
    ck_assert_uint_eq(a.shed, 1);
    ck_assert_uint_eq(a.wait_us.count, 2);
    ck_assert_uint_eq(a.wait_us.max, 30);
    ck_assert_uint_eq(a.hold_us.count, 1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("lock");
    TCase *tc = tcase_create("lock");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, uncontended_acquire_does_not_yield);
    tcase_add_test(tc, fifo_with_late_arrivals);
    tcase_add_test(tc, newcomer_queues_behind_hand_off);
    tcase_add_test(tc, cancel_a_middle_waiter);
    tcase_add_test(tc, cancel_the_head_while_releasing);
    tcase_add_test(tc, timeout_leaves_the_queue);
    tcase_add_test(tc, timeout_and_grant_in_one_turn);
    tcase_add_test(tc, release_misuse_is_refused);
    tcase_add_test(tc, twenty_thousand_waiters_in_order);
    tcase_add_test(tc, full_queue_sheds);
    tcase_add_test(tc, destroyed_waiters_and_owners_pass_the_lock_on);
    tcase_add_test(tc, random_storm_keeps_fifo_among_survivors);
    tcase_add_test(tc, stats_and_histograms_match);
    tcase_add_test(tc, stats_of_parts_add_up_and_a_max_stays_a_max);
    suite_add_tcase(s, tc);
    return check_run(s);
}
