/* Unit tests for lib/waitq.c, the one "wait with a cleanup" primitive under
 * the lock and the durable-state waiters: joining at the tail and before an
 * entry, wake order, a wake against a timeout or a cancel of the same loop
 * turn (both orders, as test_lock.c does for grants), timeouts and cancels
 * that leave the line whole, coroutines destroyed while parked (woken or
 * not), no room for the cleanup, stray wakes, and the accessors.
 *
 * Entries live in a static array rather than on the waiters' stacks, so a
 * test can look at an entry after its coroutine has finished. */
#include <check.h>
#include <errno.h>
#include <stdbool.h>

#include "check_run.h"
#include "loop.h"
#include "run_task.h"
#include "waitq.h"

enum { N = 8 };

struct waiter {
    struct waitq_entry e; /* first: an entry is its waiter */
    int id;
    int64_t deadline;
    struct waiter *before; /* join just before this one, NULL: at the tail */
    int rc;                /* what the park returned; 1 while parked */
    bool linked_after;     /* the entry was still linked when the park ended */
    int64_t ended_at;      /* loop_now_us() when the park ended */
    coro_t *co;            /* NULL once finished */
};

static struct loop loop;
static struct waitq q;
static struct waiter ws[N];
static int order[N], norder; /* ids in the order their parks ended */

static struct {
    int calls;
    bool woken;
    int result;
    bool linked;  /* the entry was still linked when abandoned ran */
    uint64_t len; /* q.len when abandoned ran */
} ab;

static void setup(void)
{
    ck_assert_int_eq(loop_init(&loop, 16 * 1024, N), 0);
    waitq_init(&q);
    norder = 0;
    ab.calls = 0;
}

static void teardown(void)
{
    loop_fini(&loop);
}

static void fresh_start(void)
{
    teardown();
    setup();
}

static struct waiter *of(struct waitq_entry *e)
{
    return (struct waiter *)e;
}

static void on_abandoned(struct waitq_entry *e)
{
    ab.calls++;
    ab.woken = e->woken;
    ab.result = e->result;
    ab.linked = list_linked(&e->link);
    ab.len = q.len;
}

static void waiter_main(void *arg)
{
    struct waiter *w = arg;
    w->e = (struct waitq_entry){.co = coro_current(), .abandoned = on_abandoned};
    waitq_join(&q, &w->e, w->before ? &w->before->e : NULL);
    w->rc = waitq_park(&w->e, w->deadline);
    w->ended_at = loop_now_us();
    w->linked_after = list_linked(&w->e.link);
    order[norder++] = w->id;
    w->co = NULL;
}

/* Starts waiter id; it is in line, parked, when this returns. */
static struct waiter *start(int id, int64_t deadline, struct waiter *before)
{
    ws[id] = (struct waiter){.id = id, .deadline = deadline, .before = before, .rc = 1};
    ck_assert_int_eq(loop_spawn(&loop, waiter_main, &ws[id], &ws[id].co), 0);
    ck_assert_ptr_nonnull(ws[id].co);
    return &ws[id];
}

static void run(coro_fn fn, void *arg)
{
    run_task(&loop, fn, arg);
    ck_assert_uint_eq(q.len, 0);
    ck_assert(list_empty(&q.head));
}

static void assert_order(const int *want, int n)
{
    ck_assert_int_eq(norder, n);
    for (int i = 0; i < n; i++)
        ck_assert_msg(order[i] == want[i], "park %d ended for %d, not %d", i, order[i], want[i]);
}

/* The line, read from the tail with waitq_prev(), must be want (head
 * first), and waitq_head() / waitq_tail() / len must agree with it. */
static void assert_line(const int *want, int n)
{
    ck_assert_uint_eq(q.len, (uint64_t)n);
    int i = n;
    for (struct waitq_entry *e = waitq_tail(&q); e; e = waitq_prev(e)) {
        ck_assert_int_gt(i, 0);
        ck_assert_int_eq(of(e)->id, want[--i]);
        ck_assert_ptr_eq(e->q, &q);
    }
    ck_assert_int_eq(i, 0);
    if (n > 0)
        ck_assert_int_eq(of(waitq_head(&q))->id, want[0]);
    else
        ck_assert_ptr_null(waitq_head(&q));
}

/* Waits, a millisecond at a time, until w's park has ended (at most 10 s:
 * a machine that slow fails the test instead of hanging it). */
static void wait_ended(struct waiter *w)
{
    int64_t limit = loop_now_us() + 10 * 1000000;
    while (w->rc == 1 && loop_now_us() < limit)
        ck_assert_int_eq(loop_sleep_us(1000), 0);
    ck_assert_msg(w->rc != 1, "waiter %d is still parked", w->id);
}

static void spin_until(int64_t t)
{
    while (loop_now_us() < t)
        ;
}

/* ---- the accessors, with no coroutine at all ---- */

START_TEST(accessors_on_an_empty_and_a_full_line)
{
    ck_assert_ptr_null(waitq_head(&q));
    ck_assert_ptr_null(waitq_tail(&q));
    ck_assert_uint_eq(q.len, 0);

    /* Joining touches no coroutine: co may stay NULL here. */
    waitq_join(&q, &ws[0].e, NULL);
    ws[0].id = 0;
    ck_assert_ptr_eq(waitq_head(&q), &ws[0].e);
    ck_assert_ptr_eq(waitq_tail(&q), &ws[0].e);
    ck_assert_ptr_null(waitq_prev(&ws[0].e));
    ck_assert(!ws[0].e.woken);

    for (int i = 1; i < N; i++) {
        ws[i].id = i;
        waitq_join(&q, &ws[i].e, NULL);
    }
    int want[N];
    for (int i = 0; i < N; i++)
        want[i] = i;
    assert_line(want, N);
    ck_assert_ptr_eq(waitq_head(&q), &ws[0].e);
    ck_assert_ptr_eq(waitq_tail(&q), &ws[N - 1].e);
    ck_assert_ptr_null(waitq_prev(&ws[0].e));
    ck_assert_ptr_eq(waitq_prev(&ws[1].e), &ws[0].e);
}
END_TEST

START_TEST(join_before_an_entry)
{
    for (int i = 0; i < 5; i++)
        ws[i].id = i;
    waitq_join(&q, &ws[0].e, NULL);
    waitq_join(&q, &ws[1].e, NULL);
    waitq_join(&q, &ws[2].e, &ws[1].e); /* in the middle */
    waitq_join(&q, &ws[3].e, &ws[0].e); /* before the head: the new head */
    waitq_join(&q, &ws[4].e, NULL);     /* NULL: still the tail */
    int want[] = {3, 0, 2, 1, 4};
    assert_line(want, 5);
}
END_TEST

/* ---- waking ---- */

/* The line is 2, 0, 3, 1 (joins at the tail and before entries); waking
 * the head again and again ends the parks in line order, each with the
 * result it was given, and each wake takes its entry out at once. */
static void wake_in_line_order(void *arg)
{
    (void)arg;
    start(0, LOOP_FOREVER, NULL);
    start(1, LOOP_FOREVER, NULL);
    start(2, LOOP_FOREVER, &ws[0]);
    start(3, LOOP_FOREVER, &ws[1]);
    int want[] = {2, 0, 3, 1};
    assert_line(want, 4);
    uint64_t len = q.len;
    for (struct waitq_entry *e; (e = waitq_head(&q));) {
        waitq_wake(e, 100 + of(e)->id);
        ck_assert(e->woken);
        ck_assert(!list_linked(&e->link));
        ck_assert_uint_eq(q.len, --len);
        ck_assert_int_eq(of(e)->rc, 1); /* resumes on a coming turn, not inside the wake */
    }
}

START_TEST(wakes_end_parks_in_order_with_their_results)
{
    run(wake_in_line_order, NULL);
    int want[] = {2, 0, 3, 1};
    assert_order(want, 4);
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(ws[i].rc, 100 + i);
        ck_assert(!ws[i].linked_after);
    }
}
END_TEST

/* Waking from the middle of the line leaves the others in order. */
static void wake_middle(void *arg)
{
    (void)arg;
    for (int i = 0; i < 4; i++)
        start(i, LOOP_FOREVER, NULL);
    waitq_wake(&ws[2].e, 7);
    int want[] = {0, 1, 3};
    assert_line(want, 3);
    loop_yield(); /* waiter 2 runs first */
    ck_assert_int_eq(ws[2].rc, 7);
    while (waitq_head(&q))
        waitq_wake(waitq_head(&q), 0);
}

START_TEST(wake_from_the_middle)
{
    run(wake_middle, NULL);
    int want[] = {2, 0, 1, 3};
    assert_order(want, 4);
}
END_TEST

/* Outside any coroutine too, the waiter runs on the loop's next turn, not
 * inside waitq_wake(): its caller may hold the line's mutex. */
START_TEST(wake_from_outside_a_coroutine_runs_on_the_next_turn)
{
    struct waiter *w = start(0, LOOP_FOREVER, NULL);
    waitq_wake(&w->e, 3);
    ck_assert_int_eq(w->rc, 1); /* not yet */
    ck_assert_int_eq(loop_run(&loop), 0);
    ck_assert_int_eq(w->rc, 3);
    ck_assert_ptr_null(w->co); /* finished */
    ck_assert_uint_eq(q.len, 0);
    ck_assert_uint_eq(loop.pool.nlive, 0);
}
END_TEST

/* A loop_wake() that did not come through waitq_wake() handed nothing:
 * the waiter leaves the line as if cancelled. */
static void stray(void *arg)
{
    (void)arg;
    start(0, LOOP_FOREVER, NULL);
    start(1, LOOP_FOREVER, NULL);
    ck_assert_int_eq(loop_wake(ws[0].co, 5), 0);
    wait_ended(&ws[0]);
    int want[] = {1};
    assert_line(want, 1);
    waitq_wake(&ws[1].e, 0);
}

START_TEST(stray_wake_leaves_the_line_as_cancelled)
{
    run(stray, NULL);
    ck_assert_int_eq(ws[0].rc, -ECANCELED);
    ck_assert(!ws[0].linked_after);
    ck_assert(!ws[0].e.woken);
    ck_assert_int_eq(ws[1].rc, 0);
}
END_TEST

/* ---- a wake against a timeout or a cancel of the same turn ---- */

/* The waiter's deadline passes while nobody has woken it, and the wake
 * comes in the same loop turn as the timeout: either before the loop saw
 * the deadline, or after the timer fired but before the waiter ran. The
 * wake wins both times: the waiter never loses what it was handed. */
static void timeout_vs_wake(void *arg)
{
    int timeout_first = *(int *)arg;
    int64_t deadline = loop_now_us() + 2000;
    struct waiter *w = start(1, deadline, NULL);
    spin_until(deadline + 1000); /* the deadline is past; the loop cannot see it yet */
    if (timeout_first) {
        ck_assert_int_eq(loop_sleep_us(1), 0); /* its timer and ours fire in one turn */
        ck_assert(!loop_parked(w->co));        /* the timeout is on its way */
    } else {
        ck_assert(loop_parked(w->co));
    }
    ck_assert_int_eq(w->rc, 1);
    waitq_wake(&w->e, 42);
    ck_assert_uint_eq(q.len, 0);
}

START_TEST(wake_beats_a_timeout_of_the_same_turn)
{
    for (int timeout_first = 0; timeout_first < 2; timeout_first++) {
        fresh_start();
        run(timeout_vs_wake, &timeout_first);
        ck_assert_msg(ws[1].rc == 42, "timeout_first=%d: park returned %d", timeout_first,
                      ws[1].rc);
        ck_assert(!ws[1].linked_after);
    }
}
END_TEST

static void cancel_vs_wake(void *arg)
{
    int cancel_first = *(int *)arg;
    struct waiter *w = start(1, LOOP_FOREVER, NULL);
    if (cancel_first) {
        ck_assert_int_eq(loop_cancel(w->co), 0);
        waitq_wake(&w->e, 42);
    } else {
        waitq_wake(&w->e, 42);
        ck_assert_int_eq(loop_cancel(w->co), -EALREADY);
    }
    ck_assert_uint_eq(q.len, 0);
}

START_TEST(wake_beats_a_cancel_of_the_same_turn)
{
    for (int cancel_first = 0; cancel_first < 2; cancel_first++) {
        fresh_start();
        run(cancel_vs_wake, &cancel_first);
        ck_assert_msg(ws[1].rc == 42, "cancel_first=%d: park returned %d", cancel_first, ws[1].rc);
        ck_assert(!ws[1].linked_after);
    }
}
END_TEST

/* ---- leaving the line ---- */

/* Waiter 1 of 0, 1, 2 times out: it leaves, and 0 and 2 are linked to
 * each other directly, with nothing pointing at 1's entry. */
static void times_out(void *arg)
{
    (void)arg;
    start(0, LOOP_FOREVER, NULL);
    struct waiter *w = start(1, loop_now_us() + 5000, NULL);
    start(2, LOOP_FOREVER, NULL);
    wait_ended(w);
    int want[] = {0, 2};
    assert_line(want, 2);
    ck_assert_ptr_eq(ws[0].e.link.next, &ws[2].e.link);
    ck_assert_ptr_eq(ws[2].e.link.prev, &ws[0].e.link);
    while (waitq_head(&q))
        waitq_wake(waitq_head(&q), 0);
}

START_TEST(timeout_leaves_the_line)
{
    run(times_out, NULL);
    ck_assert_int_eq(ws[1].rc, -ETIMEDOUT);
    ck_assert_int_ge(ws[1].ended_at, ws[1].deadline); /* never early */
    ck_assert(!ws[1].linked_after);
    ck_assert(!ws[1].e.woken);
    ck_assert_int_eq(ws[0].rc, 0);
    ck_assert_int_eq(ws[2].rc, 0);
    ck_assert_int_eq(ab.calls, 0); /* abandoned is for destroyed coroutines only */
}
END_TEST

static void cancelled(void *arg)
{
    (void)arg;
    start(0, LOOP_FOREVER, NULL);
    struct waiter *w = start(1, LOOP_FOREVER, NULL);
    start(2, LOOP_FOREVER, NULL);
    ck_assert_int_eq(loop_cancel(w->co), 0);
    wait_ended(w);
    int want[] = {0, 2};
    assert_line(want, 2);
    ck_assert_ptr_eq(ws[0].e.link.next, &ws[2].e.link);
    ck_assert_ptr_eq(ws[2].e.link.prev, &ws[0].e.link);
    /* The head, too. */
    ck_assert_int_eq(loop_cancel(ws[0].co), 0);
    wait_ended(&ws[0]);
    int want2[] = {2};
    assert_line(want2, 1);
    ck_assert_ptr_null(waitq_prev(&ws[2].e));
    waitq_wake(&ws[2].e, 0);
}

START_TEST(cancel_leaves_the_line)
{
    run(cancelled, NULL);
    ck_assert_int_eq(ws[1].rc, -ECANCELED);
    ck_assert_int_eq(ws[0].rc, -ECANCELED);
    ck_assert(!ws[1].linked_after);
    ck_assert(!ws[0].linked_after);
    ck_assert_int_eq(ws[2].rc, 0);
    ck_assert_int_eq(ab.calls, 0);
}
END_TEST

/* ---- destroyed while parked ---- */

/* Not woken: the cleanup takes the entry out of the line, then tells the
 * owner with woken false. */
static void destroy_unwoken(void *arg)
{
    (void)arg;
    for (int i = 0; i < 3; i++)
        start(i, LOOP_FOREVER, NULL);
    coro_destroy(ws[1].co);
    ws[1].co = NULL;
    ck_assert_int_eq(ab.calls, 1);
    ck_assert(!ab.woken);
    ck_assert(!ab.linked);        /* out of line before abandoned ran */
    ck_assert_uint_eq(ab.len, 2); /* and counted out */
    int want[] = {0, 2};
    assert_line(want, 2);
    ck_assert_ptr_eq(ws[0].e.link.next, &ws[2].e.link);
    ck_assert_int_eq(ws[1].rc, 1); /* its park never returned */
    while (waitq_head(&q))
        waitq_wake(waitq_head(&q), 0);
}

START_TEST(destroyed_unwoken_waiter_leaves_and_is_abandoned)
{
    run(destroy_unwoken, NULL);
    int want[] = {0, 2};
    assert_order(want, 2);
    ck_assert_int_eq(ab.calls, 1);
}
END_TEST

/* Woken but destroyed before it ran: it had been handed something, and
 * abandoned says so (a lock passes itself on from there). */
static void destroy_woken(void *arg)
{
    (void)arg;
    start(0, LOOP_FOREVER, NULL);
    start(1, LOOP_FOREVER, NULL);
    waitq_wake(&ws[0].e, 9);
    ck_assert_uint_eq(q.len, 1);
    coro_destroy(ws[0].co);
    ws[0].co = NULL;
    ck_assert_int_eq(ab.calls, 1);
    ck_assert(ab.woken);
    ck_assert_int_eq(ab.result, 9);
    ck_assert(!ab.linked);
    ck_assert_uint_eq(ab.len, 1); /* the wake had taken it out already: not twice */
    int want[] = {1};
    assert_line(want, 1);
    ck_assert_ptr_null(waitq_prev(&ws[1].e));
    waitq_wake(&ws[1].e, 0);
}

START_TEST(destroyed_woken_waiter_is_abandoned_as_woken)
{
    run(destroy_woken, NULL);
    int want[] = {1};
    assert_order(want, 1); /* waiter 0 never ran: its wake-up was dropped */
    ck_assert_int_eq(ws[0].rc, 1);
}
END_TEST

/* abandoned may be NULL. */
static void destroy_without_callback(void *arg)
{
    (void)arg;
    start(0, LOOP_FOREVER, NULL);
    ws[0].e.abandoned = NULL;
    start(1, LOOP_FOREVER, NULL);
    coro_destroy(ws[0].co);
    ws[0].co = NULL;
    int want[] = {1};
    assert_line(want, 1);
    waitq_wake(&ws[1].e, 0);
}

START_TEST(destroyed_waiter_without_abandoned)
{
    run(destroy_without_callback, NULL);
    ck_assert_int_eq(ab.calls, 0);
}
END_TEST

/* A waiter destroyed while parked with a deadline: its timer must not
 * fire into a recycled stack (ASan would see it). */
static void destroy_with_deadline(void *arg)
{
    (void)arg;
    struct waiter *w = start(0, loop_now_us() + 2000, NULL);
    coro_destroy(w->co);
    w->co = NULL;
    ck_assert_uint_eq(q.len, 0);
    ck_assert_int_eq(loop_sleep_us(5000), 0); /* past the deadline */
}

START_TEST(destroyed_waiter_with_a_deadline)
{
    run(destroy_with_deadline, NULL);
    ck_assert_int_eq(ab.calls, 1);
    ck_assert_int_eq(ws[0].rc, 1);
}
END_TEST

/* ---- no room for the cleanup ---- */

static void noop(void *arg)
{
    (void)arg;
}

static int sibling_ran;

static void sibling(void *arg)
{
    (void)arg;
    loop_park(LOOP_FOREVER);
    sibling_ran = 1;
}

static void no_room(void *arg)
{
    coro_t *self = coro_current(), *sib;
    int n = 0;
    (void)arg;
    start(0, LOOP_FOREVER, NULL);
    sibling_ran = 0;
    ck_assert_int_eq(loop_spawn(&loop, sibling, NULL, &sib), 0);
    ck_assert_int_eq(loop_wake(sib, 0), 0); /* would run if we parked */
    while (coro_defer(self, noop, NULL) == 0)
        n++;
    ck_assert_int_gt(n, 0);
    ck_assert_int_lt(n, CORO_MAX_DEFER); /* the loop holds one slot itself */

    ws[1] = (struct waiter){.id = 1, .rc = 1};
    ws[1].e = (struct waitq_entry){.co = self, .abandoned = on_abandoned};
    waitq_join(&q, &ws[1].e, NULL);
    ck_assert_uint_eq(q.len, 2);
    ck_assert_int_eq(waitq_park(&ws[1].e, LOOP_FOREVER), -ENOSPC);
    ck_assert_int_eq(sibling_ran, 0); /* returned without parking */
    ck_assert(!list_linked(&ws[1].e.link));
    int want[] = {0};
    assert_line(want, 1);
    ck_assert_ptr_eq(ws[0].e.link.next, &q.head);

    while (n--)
        coro_undefer(self, noop, NULL);
    waitq_wake(&ws[0].e, 0);
}

START_TEST(no_room_for_the_cleanup_is_enospc_out_of_line)
{
    run(no_room, NULL);
    ck_assert_int_eq(sibling_ran, 1);
    ck_assert_int_eq(ws[0].rc, 0);
    ck_assert_int_eq(ab.calls, 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("waitq");
    TCase *tc = tcase_create("waitq");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, accessors_on_an_empty_and_a_full_line);
    tcase_add_test(tc, join_before_an_entry);
    tcase_add_test(tc, wakes_end_parks_in_order_with_their_results);
    tcase_add_test(tc, wake_from_the_middle);
    tcase_add_test(tc, wake_from_outside_a_coroutine_runs_on_the_next_turn);
    tcase_add_test(tc, stray_wake_leaves_the_line_as_cancelled);
    tcase_add_test(tc, wake_beats_a_timeout_of_the_same_turn);
    tcase_add_test(tc, wake_beats_a_cancel_of_the_same_turn);
    tcase_add_test(tc, timeout_leaves_the_line);
    tcase_add_test(tc, cancel_leaves_the_line);
    tcase_add_test(tc, destroyed_unwoken_waiter_leaves_and_is_abandoned);
    tcase_add_test(tc, destroyed_woken_waiter_is_abandoned_as_woken);
    tcase_add_test(tc, destroyed_waiter_without_abandoned);
    tcase_add_test(tc, destroyed_waiter_with_a_deadline);
    tcase_add_test(tc, no_room_for_the_cleanup_is_enospc_out_of_line);
    suite_add_tcase(s, tc);
    return check_run(s);
}
