/* Unit tests for what the daemon's stop and reload hang on in lib/loop.c:
 * a signal reaches its watch whichever stack or thread it arrives on, and
 * posts from other threads survive being posted twice. In the 'threads'
 * suite, so that scripts/test runs it under ThreadSanitizer, the build
 * where a signal could be lost (issue 30). */
#include <check.h>
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "check_run.h"
#include "loop.h"

#define DEADLINE_US (10 * 1000000) /* far beyond a delivery, even under TSan */

static struct loop loop;
static struct loop_watch *sig_watch, *deadline;
static int signals_seen;

static void on_signal(void *arg)
{
    (void)arg;
    signals_seen++;
    loop_break(&loop);
}

static void on_deadline(void *arg)
{
    (void)arg;
    loop_break(&loop);
}

static void setup(void)
{
    ck_assert_int_eq(loop_init(&loop, 0, 4), 0);
    signals_seen = 0;
    sig_watch = loop_watch_signal(&loop, SIGUSR2, LOOP_PRIO_IO, on_signal, NULL);
    deadline = loop_watch_timer(&loop, false, LOOP_PRIO_LATE, on_deadline, NULL);
    ck_assert(sig_watch && deadline);
    ck_assert_int_eq(loop_watch_start(sig_watch, 0), 0);
    ck_assert_int_eq(loop_watch_start(deadline, DEADLINE_US), 0);
}

static void teardown(void)
{
    loop_watch_free(sig_watch);
    loop_watch_free(deadline);
    loop_fini(&loop);
}

/* The signal comes while a coroutine runs, after the last call of its
 * that ThreadSanitizer intercepts, and the coroutine then ends. Sent with
 * the raw system call: libc's kill() is intercepted, and a signal a thread
 * sends itself through it is handled at once, which is not the case under
 * test (a SIGTERM from another process). ThreadSanitizer keeps a signal
 * that comes outside a blocking call for the fiber's next intercepted call;
 * that fiber is gone when the coroutine ends, and a handler-based watch
 * (libevent's EV_SIGNAL, before this fix) never heard of it. */
static void signal_then_end(void *arg)
{
    (void)arg;
    syscall(SYS_tgkill, getpid(), gettid(), SIGUSR2);
}

START_TEST(signal_at_a_coroutine_end_is_not_lost)
{
    ck_assert_int_eq(loop_spawn(&loop, signal_then_end, NULL, NULL), 0);
    ck_assert_int_eq(loop_run(&loop), 0);
    ck_assert_msg(signals_seen == 1, "the signal never reached its watch");
}
END_TEST

static void *kill_process(void *arg)
{
    (void)arg;
    kill(getpid(), SIGUSR2);
    return NULL;
}

/* Sent to the process from a thread started after the watch: the thread
 * inherits the blocked mask, so the signal waits for the loop instead of
 * taking its default action (the end of the process) there. */
START_TEST(signal_from_another_thread_reaches_the_loop)
{
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, kill_process, NULL), 0);
    ck_assert_int_eq(loop_run(&loop), 0);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    ck_assert_msg(signals_seen == 1, "the signal never reached its watch");
}
END_TEST

/* Once the watch is freed, the signal is no longer blocked: it does again
 * what it did before the watch. */
START_TEST(free_restores_the_mask)
{
    sigset_t mask;
    loop_watch_free(sig_watch);
    sig_watch = NULL;
    ck_assert_int_eq(pthread_sigmask(SIG_SETMASK, NULL, &mask), 0);
    ck_assert(!sigismember(&mask, SIGUSR2));
}
END_TEST

static int posts_run;

static void count_post(void *arg)
{
    (void)arg;
    posts_run++;
}

static void break_post(void *arg)
{
    (void)arg;
    loop_break(&loop);
}

/* A post posted again while it still waits runs once, and the inbox stays
 * whole: the stop posted a worker's stop_post twice when the drain
 * deadline passed (issue 30), and resetting the queued link cut the list,
 * a crash at the next post the loop took. */
START_TEST(post_twice_before_it_runs_runs_once)
{
    struct loop_post twice = {.fn = count_post}, last = {.fn = break_post};
    posts_run = 0;
    ck_assert_int_eq(loop_open_inbox(&loop), 0);
    loop_post(&loop, &twice);
    loop_post(&loop, &twice);
    loop_post(&loop, &last);
    ck_assert_int_eq(loop_run(&loop), 0);
    ck_assert_int_eq(posts_run, 1);
    loop_post(&loop, &twice); /* after it ran: a post like any other */
    loop_post(&loop, &last);
    ck_assert_int_eq(loop_run(&loop), 0);
    ck_assert_int_eq(posts_run, 2);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("loop_threads");
    TCase *tc = tcase_create("signals and posts");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, signal_at_a_coroutine_end_is_not_lost);
    tcase_add_test(tc, signal_from_another_thread_reaches_the_loop);
    tcase_add_test(tc, free_restores_the_mask);
    tcase_add_test(tc, post_twice_before_it_runs_runs_once);
    suite_add_tcase(s, tc);
    return check_run(s);
}
