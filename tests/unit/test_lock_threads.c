/* Unit tests for lib/lock.c shared between loops (lock_share): the FIFO,
 * cancellation-storm and timeout-against-grant cases of test_lock.c with
 * the waiters spread over four loops, each on its own thread, so that
 * every hand-off crosses threads through the loops' inboxes. Run under
 * ThreadSanitizer too (scripts/test). */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "check_run.h"
#include "lock.h"
#include "loop.h"
#include "rng.h"

enum { NLOOPS = 4, MAXW = 4000 };

static struct loop loops[NLOOPS];
static pthread_t threads[NLOOPS];
static struct lock lk;

/* What the waiters record, from any thread. */
static pthread_mutex_t rec_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t rec_cv = PTHREAD_COND_INITIALIZER;
static int order[MAXW + 1]; /* ids in the order they got the lock */
static int norder;
static int holders; /* inside the lock now: never above 1 */
static int finished;

struct waiter {
    int id;
    int loop;
    int64_t deadline;
    int64_t hold_us;
    int rc;
    coro_t *co;
};
static struct waiter ws[MAXW + 1];

static void *thread_main(void *arg)
{
    loop_run(arg);
    return NULL;
}

static void setup(void)
{
    lock_init(&lk, 0);
    lock_share(&lk);
    norder = holders = finished = 0;
    for (int i = 0; i < NLOOPS; i++) {
        ck_assert_int_eq(loop_init(&loops[i], 16 * 1024, MAXW), 0);
        ck_assert_int_eq(loop_open_inbox(&loops[i]), 0);
        ck_assert_int_eq(pthread_create(&threads[i], NULL, thread_main, &loops[i]), 0);
    }
}

/* ---- running things on a loop's thread ---- */

struct call {
    struct loop_post post;
    void (*fn)(void *arg);
    void *arg;
    bool done;
};

static void run_call(void *arg)
{
    struct call *c = arg;
    c->fn(c->arg);
    pthread_mutex_lock(&rec_mu);
    c->done = true;
    pthread_cond_broadcast(&rec_cv);
    pthread_mutex_unlock(&rec_mu);
}

/* Runs fn(arg) on loop i's thread and returns once it has. */
static void on_loop(int i, void (*fn)(void *), void *arg)
{
    struct call c = {.post = {.fn = run_call, .arg = &c}, .fn = fn, .arg = arg};
    loop_post(&loops[i], &c.post);
    pthread_mutex_lock(&rec_mu);
    while (!c.done)
        pthread_cond_wait(&rec_cv, &rec_mu);
    pthread_mutex_unlock(&rec_mu);
}

static void stop_loop(void *arg)
{
    loop_break(arg);
}

static void teardown(void)
{
    for (int i = 0; i < NLOOPS; i++) {
        on_loop(i, stop_loop, &loops[i]);
        pthread_join(threads[i], NULL);
        ck_assert_uint_eq(loops[i].pool.nlive, 0); /* everyone finished */
        loop_fini(&loops[i]);
    }
    ck_assert(!lock_locked(&lk));
    ck_assert_uint_eq(lk.waiters.len, 0);
}

/* Waits (no sleeping: a condition variable) until n waiters finished. */
static void wait_finished(int n)
{
    struct timespec end;
    clock_gettime(CLOCK_REALTIME, &end);
    end.tv_sec += 60;
    pthread_mutex_lock(&rec_mu);
    while (finished < n)
        ck_assert_int_eq(pthread_cond_timedwait(&rec_cv, &rec_mu, &end), 0);
    pthread_mutex_unlock(&rec_mu);
}

/* ---- waiters ---- */

static void record_grant(int id)
{
    pthread_mutex_lock(&rec_mu);
    ck_assert_int_eq(++holders, 1);
    order[norder++] = id;
    pthread_mutex_unlock(&rec_mu);
}

static void waiter_main(void *arg)
{
    struct waiter *w = arg;
    int rc = lock_acquire(&lk, w->deadline);
    pthread_mutex_lock(&rec_mu);
    w->rc = rc;
    pthread_mutex_unlock(&rec_mu);
    if (rc == 0) {
        record_grant(w->id);
        if (w->hold_us)
            ck_assert_int_eq(loop_sleep_us(w->hold_us), 0);
        pthread_mutex_lock(&rec_mu);
        holders--;
        pthread_mutex_unlock(&rec_mu);
        ck_assert_int_eq(lock_release(&lk), 0);
    }
    pthread_mutex_lock(&rec_mu);
    w->co = NULL;
    finished++;
    pthread_cond_broadcast(&rec_cv);
    pthread_mutex_unlock(&rec_mu);
}

static void spawn_waiter(void *arg)
{
    struct waiter *w = arg;
    ck_assert_int_eq(loop_spawn(&loops[w->loop], waiter_main, w, &w->co), 0);
}

/* Starts waiter id on loop `loop`: it has queued (or taken the lock) by
 * the time this returns, so ids are the arrival order. */
static void start(int id, int loop, int64_t deadline, int64_t hold_us)
{
    ws[id] =
        (struct waiter){.id = id, .loop = loop, .deadline = deadline, .hold_us = hold_us, .rc = 1};
    on_loop(loop, spawn_waiter, &ws[id]);
}

/* Holds the lock on loop 0 until told to let go. */
static coro_t *holder;

static void holder_main(void *arg)
{
    (void)arg;
    ck_assert_int_eq(lock_acquire(&lk, LOOP_FOREVER), 0);
    record_grant(0);
    ck_assert_int_eq(loop_park(LOOP_FOREVER), 0);
    pthread_mutex_lock(&rec_mu);
    holders--;
    pthread_mutex_unlock(&rec_mu);
    ck_assert_int_eq(lock_release(&lk), 0);
}

static void spawn_holder(void *arg)
{
    (void)arg;
    ck_assert_int_eq(loop_spawn(&loops[0], holder_main, NULL, &holder), 0);
}

static void wake_holder(void *arg)
{
    (void)arg;
    ck_assert_int_eq(loop_wake(holder, 0), 0);
}

/* On the waiter's own loop. A waiter already granted (or gone) is past
 * cancelling: that is the race the storm is after. */
static void cancel_waiter(void *arg)
{
    struct waiter *w = arg;
    pthread_mutex_lock(&rec_mu);
    coro_t *co = w->co;
    pthread_mutex_unlock(&rec_mu);
    if (co) {
        int rc = loop_cancel(co);
        ck_assert(rc == 0 || rc == -EALREADY);
    }
}

/* ---- tests ---- */

START_TEST(fifo_across_loops)
{
    enum { N = 400 };
    on_loop(0, spawn_holder, NULL);
    for (int i = 1; i <= N; i++)
        start(i, i % NLOOPS, LOOP_FOREVER, i % 7 == 0 ? 50 : 0);
    ck_assert_uint_eq(lk.stats.max_waiters, N);
    on_loop(0, wake_holder, NULL);
    wait_finished(N);
    ck_assert_int_eq(norder, N + 1);
    for (int i = 0; i <= N; i++)
        ck_assert_msg(order[i] == i, "grant %d went to %d", i, order[i]);
    ck_assert_uint_eq(lk.stats.acquisitions, N + 1);
    ck_assert_uint_eq(lk.stats.contended, N);
}
END_TEST

/* A seeded storm: random waiters cancelled on their own loops, some while
 * the lock is held, some while it is being handed from loop to loop. The
 * survivors are granted in arrival order; no cancelled waiter ever owns. */
START_TEST(cancel_storm_across_loops)
{
    enum { N = 2000 };
    uint64_t seed = 0x5eed;
    static bool cancelled[N + 1];
    int ncancelled = 0;
    on_loop(0, spawn_holder, NULL);
    for (int i = 1; i <= N; i++) {
        start(i, (int)(rng_next(&seed) % NLOOPS), LOOP_FOREVER, 0);
        cancelled[i] = false;
    }
    for (int i = 1; i <= N; i++) /* while held: every cancel lands */
        if (rng_next(&seed) % 4 == 0) {
            on_loop(ws[i].loop, cancel_waiter, &ws[i]);
            cancelled[i] = true;
            ncancelled++;
        }
    on_loop(0, wake_holder, NULL);
    for (int i = N; i >= 1; i -= 3) /* while handing off: some land, some are too late */
        if (!cancelled[i] && rng_next(&seed) % 2 == 0) {
            pthread_mutex_lock(&rec_mu);
            bool waiting = ws[i].co != NULL && ws[i].rc == 1;
            pthread_mutex_unlock(&rec_mu);
            if (waiting)
                on_loop(ws[i].loop, cancel_waiter, &ws[i]);
        }
    wait_finished(N);
    int last = 0, granted = 0, late_cancels = 0;
    for (int k = 1; k < norder; k++) {
        ck_assert_msg(order[k] > last, "grant %d went to %d after %d", k, order[k], last);
        ck_assert_msg(!cancelled[order[k]], "cancelled waiter %d got the lock", order[k]);
        last = order[k];
    }
    for (int i = 1; i <= N; i++) {
        ck_assert(ws[i].rc == 0 || ws[i].rc == -ECANCELED);
        granted += ws[i].rc == 0;
        late_cancels += ws[i].rc == -ECANCELED && !cancelled[i];
    }
    ck_assert_int_eq(granted, norder - 1);
    ck_assert_int_eq(granted + ncancelled + late_cancels, N);
    ck_assert_uint_eq(lk.stats.cancellations, (uint64_t)(ncancelled + late_cancels));
}
END_TEST

/* The holder lets go on one loop just as a waiter's deadline passes on
 * another, hundreds of times: each round resolves to exactly one outcome
 * (granted, and then it released; or timed out, and never owned), and the
 * lock ends free. */
static void release_at(void *arg)
{
    int64_t at = *(int64_t *)arg;
    ck_assert_int_eq(lock_acquire(&lk, LOOP_FOREVER), 0);
    record_grant(0);
    int64_t left = at - loop_now_us();
    if (left > 0)
        ck_assert_int_eq(loop_sleep_us(left), 0);
    pthread_mutex_lock(&rec_mu);
    holders--;
    pthread_mutex_unlock(&rec_mu);
    ck_assert_int_eq(lock_release(&lk), 0);
    pthread_mutex_lock(&rec_mu);
    finished++;
    pthread_cond_broadcast(&rec_cv);
    pthread_mutex_unlock(&rec_mu);
}

static int64_t release_time;

static void spawn_releaser(void *arg)
{
    (void)arg;
    ck_assert_int_eq(loop_spawn(&loops[0], release_at, &release_time, NULL), 0);
}

START_TEST(timeout_against_grant_across_loops)
{
    enum { ROUNDS = 300 };
    uint64_t seed = 42;
    int granted = 0, timed_out = 0;
    for (int r = 1; r <= ROUNDS; r++) {
        int64_t now = loop_now_us();
        release_time = now + 2000;
        on_loop(0, spawn_releaser, NULL);
        /* The deadline falls within +-100 us of the release. */
        int64_t deadline = release_time - 100 + (int64_t)(rng_next(&seed) % 200);
        start(r, 1 + r % (NLOOPS - 1), deadline, 0);
        wait_finished(2 * r);
        pthread_mutex_lock(&rec_mu);
        int rc = ws[r].rc;
        pthread_mutex_unlock(&rec_mu);
        ck_assert(rc == 0 || rc == -ETIMEDOUT);
        granted += rc == 0;
        timed_out += rc == -ETIMEDOUT;
    }
    ck_assert_int_eq(granted + timed_out, ROUNDS);
    ck_assert_uint_eq(lk.stats.acquisitions, (uint64_t)(ROUNDS + granted));
    ck_assert_uint_eq(lk.stats.timeouts, (uint64_t)timed_out);
    ck_assert_int_eq(norder, ROUNDS + granted);
}
END_TEST

/* ---- the inbox ---- */

static uint64_t parked_ticket;
static coro_t *parked_co;
static int parked_rc = 1;
static bool in_post, go;

static void parker(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&rec_mu);
    parked_ticket = loop_park_ticket();
    pthread_mutex_unlock(&rec_mu);
    int rc = loop_park(LOOP_FOREVER);
    pthread_mutex_lock(&rec_mu);
    parked_rc = rc;
    pthread_cond_broadcast(&rec_cv);
    pthread_mutex_unlock(&rec_mu);
}

static void spawn_parker(void *arg)
{
    (void)arg;
    ck_assert_int_eq(loop_spawn(&loops[1], parker, NULL, &parked_co), 0);
}

/* Blocks loop 1 inside a post until the test says go. */
static void slow_post(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&rec_mu);
    in_post = true;
    pthread_cond_broadcast(&rec_cv);
    while (!go)
        pthread_cond_wait(&rec_cv, &rec_mu);
    pthread_mutex_unlock(&rec_mu);
}

static void nothing(void *arg)
{
    (void)arg;
}

/* A wake that arrives while the loop is busy with one post and another
 * post waits behind it: the loop must look at its wakes again before it
 * sleeps, or the wake is stranded (the pusher does not poke a non-empty
 * inbox). From a thread that runs no loop, too. */
START_TEST(wake_during_posts_is_not_stranded)
{
    static struct loop_post slow = {.fn = slow_post}, after = {.fn = nothing};
    on_loop(1, spawn_parker, NULL);
    loop_post(&loops[1], &slow);
    loop_post(&loops[1], &after);
    pthread_mutex_lock(&rec_mu);
    while (!in_post)
        pthread_cond_wait(&rec_cv, &rec_mu);
    uint64_t ticket = parked_ticket;
    pthread_mutex_unlock(&rec_mu);
    loop_wake_park(parked_co, ticket, 7);
    pthread_mutex_lock(&rec_mu);
    go = true;
    pthread_cond_broadcast(&rec_cv);
    struct timespec end;
    clock_gettime(CLOCK_REALTIME, &end);
    end.tv_sec += 10;
    while (parked_rc == 1)
        ck_assert_int_eq(pthread_cond_timedwait(&rec_cv, &rec_mu, &end), 0);
    pthread_mutex_unlock(&rec_mu);
    ck_assert_int_eq(parked_rc, 7);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("lock_threads");
    TCase *tc = tcase_create("across loops");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, fifo_across_loops);
    tcase_add_test(tc, cancel_storm_across_loops);
    tcase_add_test(tc, timeout_against_grant_across_loops);
    tcase_add_test(tc, wake_during_posts_is_not_stranded);
    suite_add_tcase(s, tc);
    return check_run(s);
}
