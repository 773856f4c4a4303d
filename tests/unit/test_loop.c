/* Unit tests for lib/loop.c: sleeps, fd waits with deadlines, cancel and
 * wake, and spawn failure. Timing assertions only bound from the side a
 * loaded machine cannot break: a sleep is never shorter than asked, and the
 * shortest of many is not rounded up to the next millisecond. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>

#include "loop.h"

static struct loop loop;

static void setup(void)
{
    ck_assert_int_eq(loop_init(&loop, 0, 64), 0);
}

static void teardown(void)
{
    loop_fini(&loop);
}

/* Spawns fn and runs the loop until nothing is left to do. */
static void run(coro_fn fn, void *arg)
{
    ck_assert_int_eq(loop_spawn(&loop, fn, arg, NULL), 0);
    ck_assert_int_eq(loop_run(&loop), 0);
    ck_assert_uint_eq(loop.pool.nlive, 0);
}

struct sleep_case {
    int64_t us;
    int64_t min_seen, max_ok_min;
};

static void sleeper(void *arg)
{
    struct sleep_case *c = arg;
    c->min_seen = INT64_MAX;
    for (int i = 0; i < 21; i++) {
        int64_t t0 = loop_now_us();
        ck_assert_int_eq(loop_sleep_us(c->us), 0);
        int64_t took = loop_now_us() - t0;
        ck_assert_int_ge(took, c->us); /* never early */
        if (took < c->min_seen)
            c->min_seen = took;
    }
}

START_TEST(sleep_is_precise)
{
    struct sleep_case one_ms = {.us = 1000, .max_ok_min = 1500};
    run(sleeper, &one_ms);
    ck_assert_msg(one_ms.min_seen < one_ms.max_ok_min, "1 ms sleeps took at least %ld us",
                  (long)one_ms.min_seen);
    struct sleep_case quarter = {.us = 250, .max_ok_min = 900}; /* fractional ms */
    run(sleeper, &quarter);
    ck_assert_msg(quarter.min_seen < quarter.max_ok_min, "0.25 ms sleeps took at least %ld us",
                  (long)quarter.min_seen);
}
END_TEST

/* Time spent running before a sleep must not be taken off the sleep:
 * libevent measures from its cached time unless told otherwise. */
static void busy_then_sleep(void *arg)
{
    (void)arg;
    ck_assert_int_eq(loop_sleep_us(100), 0); /* now inside a loop callback */
    int64_t spin_end = loop_now_us() + 3000;
    while (loop_now_us() < spin_end)
        ;
    int64_t t0 = loop_now_us();
    ck_assert_int_eq(loop_sleep_us(2000), 0);
    ck_assert_int_ge(loop_now_us() - t0, 2000);
}

START_TEST(sleep_counts_from_the_call)
{
    run(busy_then_sleep, NULL);
}
END_TEST

static int pipefd[2];

static void writer(void *arg)
{
    (void)arg;
    ck_assert_int_eq(loop_sleep_us(5000), 0);
    ck_assert_int_eq(write(pipefd[1], "x", 1), 1);
}

static void reader(void *arg)
{
    (void)arg;
    int64_t t0 = loop_now_us();
    ck_assert_int_eq(loop_wait_fd(pipefd[0], EV_READ, t0 + 30000), -ETIMEDOUT);
    ck_assert_int_ge(loop_now_us() - t0, 30000);
    ck_assert_int_eq(loop_spawn(loop_current(), writer, NULL, NULL), 0);
    t0 = loop_now_us();
    ck_assert_int_eq(loop_wait_fd(pipefd[0], EV_READ, t0 + 10 * 1000000), 0);
    ck_assert_int_lt(loop_now_us() - t0, 10 * 1000000);
    char c;
    ck_assert_int_eq(read(pipefd[0], &c, 1), 1);
    /* A writable fd is ready at once. */
    ck_assert_int_eq(loop_wait_fd(pipefd[1], EV_WRITE, LOOP_FOREVER), 0);
}

START_TEST(fd_wait_with_deadline)
{
    ck_assert_int_eq(pipe(pipefd), 0);
    run(reader, NULL);
    close(pipefd[0]);
    close(pipefd[1]);
}
END_TEST

struct victim {
    coro_t *co;
    int rc;
    int mode; /* 0 park forever, 1 sleep, 2 fd wait */
};

static void victim_main(void *arg)
{
    struct victim *v = arg;
    if (v->mode == 0)
        v->rc = loop_park(LOOP_FOREVER);
    else if (v->mode == 1)
        v->rc = loop_sleep_us(60 * 1000000);
    else
        v->rc = loop_wait_fd(pipefd[0], EV_READ, LOOP_FOREVER);
}

static void canceller(void *arg)
{
    struct victim *vs = arg;
    for (int i = 0; i < 3; i++) {
        vs[i].mode = i;
        vs[i].rc = 1;
        ck_assert_int_eq(loop_spawn(loop_current(), victim_main, &vs[i], &vs[i].co), 0);
        ck_assert(loop_parked(vs[i].co));
    }
    ck_assert_int_eq(loop_sleep_us(1000), 0);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(loop_cancel(vs[i].co), 0);
        ck_assert_int_eq(loop_cancel(vs[i].co), -EALREADY); /* once */
        ck_assert_int_eq(vs[i].rc, 1); /* delivered on a later turn */
    }
}

START_TEST(cancel_ends_any_park)
{
    struct victim vs[3];
    ck_assert_int_eq(pipe(pipefd), 0);
    int64_t t0 = loop_now_us();
    run(canceller, vs);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(vs[i].rc, -ECANCELED);
    ck_assert_int_lt(loop_now_us() - t0, 30 * 1000000); /* not the 60 s sleep */
    close(pipefd[0]);
    close(pipefd[1]);
}
END_TEST

/* A wake that comes before the coroutine ran beats a pending cancel or
 * timeout; a cancel after a wake changes nothing. */
static void waker(void *arg)
{
    struct victim *vs = arg;
    for (int i = 0; i < 3; i++) {
        vs[i].mode = 0;
        ck_assert_int_eq(loop_spawn(loop_current(), victim_main, &vs[i], &vs[i].co), 0);
    }
    ck_assert_int_eq(loop_cancel(vs[0].co), 0);
    ck_assert_int_eq(loop_wake(vs[0].co, 7), 0);
    ck_assert_int_eq(loop_wake(vs[1].co, 8), 0);
    ck_assert_int_eq(loop_cancel(vs[1].co), -EALREADY);
    ck_assert_int_eq(loop_wake(vs[1].co, 9), -EALREADY); /* first wake wins */
    ck_assert_int_eq(loop_cancel(vs[2].co), 0);
}

START_TEST(wake_beats_pending_cancel)
{
    struct victim vs[3];
    run(waker, vs);
    ck_assert_int_eq(vs[0].rc, 7);
    ck_assert_int_eq(vs[1].rc, 8);
    ck_assert_int_eq(vs[2].rc, -ECANCELED);
}
END_TEST

static void parker(void *arg)
{
    (void)arg;
    loop_park(LOOP_FOREVER);
}

/* Running out of stacks is an error the caller sees, never a crash. Run in
 * a child: it lowers the address-space limit (not under ASan, whose shadow
 * memory needs the address space). */
START_TEST(spawn_failure_is_an_error)
{
#if defined(__SANITIZE_ADDRESS__)
    return;
#endif
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        struct rlimit rl = {.rlim_cur = 512u << 20, .rlim_max = 512u << 20};
        setrlimit(RLIMIT_AS, &rl);
        int rc = 0, n = 0;
        coro_t *first;
        if (loop_spawn(&loop, parker, NULL, &first) != 0)
            _exit(2);
        while (n < 100000 && (rc = loop_spawn(&loop, parker, NULL, NULL)) == 0)
            n++;
        /* Once a coroutine ends, its stack serves the next spawn. */
        coro_destroy(first);
        int again = loop_spawn(&loop, parker, NULL, NULL);
        _exit(rc == -ENOMEM && n > 100 && again == 0 ? 0 : 1);
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("loop");
    TCase *tc = tcase_create("loop");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, sleep_is_precise);
    tcase_add_test(tc, sleep_counts_from_the_call);
    tcase_add_test(tc, fd_wait_with_deadline);
    tcase_add_test(tc, cancel_ends_any_park);
    tcase_add_test(tc, wake_beats_pending_cancel);
    tcase_add_test(tc, spawn_failure_is_an_error);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
