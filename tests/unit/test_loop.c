/* Unit tests for lib/loop.c: sleeps, fd waits with deadlines, cancel and
 * wake, and spawn failure. Timing assertions only bound from the side a
 * loaded machine cannot break: a sleep is never shorter than asked, and the
 * shortest of many is not rounded up to the next millisecond. */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check_run.h"
#include "loop.h"
#include "run_task.h"

static struct loop loop;

static void setup(void)
{
    ck_assert_int_eq(loop_init(&loop, 0, 64), 0);
}

static void teardown(void)
{
    loop_fini(&loop);
}

struct sleep_case {
    int64_t us;
    int64_t min_seen, max_ok_min;
};

static void sleeper(void *arg)
{
    struct sleep_case *c = arg;
    c->min_seen = INT64_MAX;
    for (int i = 0; i < 200; i++) { /* the fastest of many: a loaded machine has quiet moments */
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
    run_task(&loop, sleeper, &one_ms);
    ck_assert_msg(one_ms.min_seen < one_ms.max_ok_min, "1 ms sleeps took at least %ld us",
                  (long)one_ms.min_seen);
    struct sleep_case quarter = {.us = 250, .max_ok_min = 900}; /* fractional ms */
    run_task(&loop, sleeper, &quarter);
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
    run_task(&loop, busy_then_sleep, NULL);
}
END_TEST

/* loop_yield() lets a coroutine that is ready run first, then continues:
 * the lock's old holder uses it so the new owner starts at once. */
static int yield_log[4], nyield;

static void woken(void *arg)
{
    (void)arg;
    ck_assert_int_eq(loop_park(LOOP_FOREVER), 0);
    yield_log[nyield++] = 2;
}

static void yielder(void *arg)
{
    coro_t *other;
    (void)arg;
    ck_assert_int_eq(loop_spawn(loop_current(), woken, NULL, &other), 0);
    ck_assert_int_eq(loop_wake(other, 0), 0); /* ready, not yet run */
    yield_log[nyield++] = 1;
    loop_yield();
    yield_log[nyield++] = 3;
}

START_TEST(yield_lets_the_ready_run_first)
{
    nyield = 0;
    run_task(&loop, yielder, NULL);
    int want[] = {1, 2, 3};
    ck_assert_int_eq(nyield, 3);
    ck_assert_mem_eq(yield_log, want, sizeof(want));
}
END_TEST

static int sv[2]; /* a socketpair: sv[0] is ours, sv[1] the peer */

static void peer_writes(void *arg)
{
    (void)arg;
    ck_assert_int_eq(loop_sleep_us(5000), 0);
    ck_assert_int_eq(write(sv[1], "x", 1), 1);
}

static void reader(void *arg)
{
    struct loop_io io;
    char c;
    (void)arg;
    ck_assert_int_eq(loop_io_open(&io, sv[0], NULL, NULL), 0);
    ck_assert_int_lt(read(sv[0], &c, 1), 0); /* nothing yet: EAGAIN */
    loop_io_clear(&io, LOOP_READ);
    int64_t t0 = loop_now_us();
    ck_assert_int_eq(loop_io_wait(&io, LOOP_READ, t0 + 30000), -ETIMEDOUT);
    ck_assert_int_ge(loop_now_us() - t0, 30000);
    ck_assert_int_eq(loop_spawn(loop_current(), peer_writes, NULL, NULL), 0);
    t0 = loop_now_us();
    ck_assert_int_eq(loop_io_wait(&io, LOOP_READ, t0 + 10 * 1000000), 0);
    ck_assert_int_lt(loop_now_us() - t0, 10 * 1000000);
    ck_assert_int_eq(read(sv[0], &c, 1), 1);
    /* Writable at once: the first wait needs no edge. */
    ck_assert_int_eq(loop_io_wait(&io, LOOP_WRITE, LOOP_FOREVER), 0);
    loop_io_close(&io);
}

START_TEST(io_wait_with_deadline)
{
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    run_task(&loop, reader, NULL);
    close(sv[0]);
    close(sv[1]);
}
END_TEST

/* LOOP_READ and LOOP_WRITE work where EV_READ and EV_WRITE do: modules that
 * must not include libevent wait with them. */
static void waits_by_loop_names(void *arg)
{
    struct loop_io io;
    char c;
    (void)arg;
    ck_assert_int_eq(loop_io_open(&io, sv[0], NULL, NULL), 0);
    loop_io_clear(&io, LOOP_READ | LOOP_WRITE);
    ck_assert_int_eq(loop_io_wait(&io, LOOP_WRITE, loop_now_us() + 5000000), 0);
    ck_assert_int_eq(loop_io_wait(&io, LOOP_READ, loop_now_us() + 20000), -ETIMEDOUT);
    ck_assert_int_eq(write(sv[1], "x", 1), 1);
    ck_assert_int_eq(loop_io_wait(&io, LOOP_READ, loop_now_us() + 5000000), 0);
    ck_assert_int_eq(read(sv[0], &c, 1), 1);
    loop_io_close(&io);
}

START_TEST(io_wait_by_loop_names)
{
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    run_task(&loop, waits_by_loop_names, NULL);
    close(sv[0]);
    close(sv[1]);
}
END_TEST

/* An edge that comes while the owner is busy elsewhere is kept: the next
 * wait returns at once instead of sleeping through it. */
static void busy_owner(void *arg)
{
    struct loop_io io;
    char c;
    (void)arg;
    ck_assert_int_eq(loop_io_open(&io, sv[0], NULL, NULL), 0);
    loop_io_clear(&io, LOOP_READ | LOOP_WRITE);
    ck_assert_int_eq(write(sv[1], "y", 1), 1);
    ck_assert_int_eq(loop_sleep_us(2000), 0); /* the edge lands meanwhile */
    ck_assert(io.ready & LOOP_READ);
    ck_assert_int_eq(loop_io_wait(&io, LOOP_READ, loop_now_us() + 1000), 0);
    ck_assert_int_eq(read(sv[0], &c, 1), 1);
    loop_io_close(&io);
}

START_TEST(edge_while_busy_is_kept)
{
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    run_task(&loop, busy_owner, NULL);
    close(sv[0]);
    close(sv[1]);
}
END_TEST

/* A deadline later than the one the timer is set for is honoured by
 * re-arming when the timer fires. Nothing else runs on the loop, so the
 * loop's cached clock is as old as the owner's last resume (just after the
 * first wait) when the re-arm happens, two seconds later: a re-arm that
 * measured from it would fire two seconds late. */
static void rearms_on_time(void *arg)
{
    struct loop_io io;
    char c;
    (void)arg;
    ck_assert_int_eq(loop_io_open(&io, sv[0], NULL, NULL), 0);
    loop_io_clear(&io, LOOP_READ);
    int64_t t0 = loop_now_us();
    ck_assert_int_eq(write(sv[1], "z", 1), 1);
    ck_assert_int_eq(loop_io_wait(&io, LOOP_READ, t0 + 2000000), 0); /* the timer: t0 + 2 s */
    ck_assert_int_eq(read(sv[0], &c, 1), 1);
    loop_io_clear(&io, LOOP_READ);
    int64_t deadline = t0 + 4000000; /* later: the timer stays, and re-arms when it fires */
    ck_assert_int_eq(loop_io_wait(&io, LOOP_READ, deadline), -ETIMEDOUT);
    int64_t late = loop_now_us() - deadline;
    ck_assert_int_ge(late, 0);
    ck_assert_msg(late < 1500000, "the deadline passed %lld us before the timeout came",
                  (long long)late);
    loop_io_close(&io);
}

START_TEST(rearmed_deadline_is_on_time)
{
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    run_task(&loop, rearms_on_time, NULL);
    close(sv[0]);
    close(sv[1]);
}
END_TEST

/* Data and the peer's FIN arrive in one edge: after the data is read and
 * the readiness cleared (a short read), a wait must still return at once,
 * for the next read to see the end. */
static void data_then_eof(void *arg)
{
    struct loop_io io;
    char buf[16];
    (void)arg;
    ck_assert_int_eq(loop_io_open(&io, sv[0], NULL, NULL), 0);
    ck_assert_int_lt(read(sv[0], buf, sizeof(buf)), 0);
    loop_io_clear(&io, LOOP_READ);
    ck_assert_int_eq(write(sv[1], "req", 3), 3);
    ck_assert_int_eq(shutdown(sv[1], SHUT_WR), 0);
    ck_assert_int_eq(loop_io_wait(&io, LOOP_READ, loop_now_us() + 5000000), 0);
    ck_assert_int_eq(read(sv[0], buf, sizeof(buf)), 3);
    loop_io_clear(&io, LOOP_READ); /* a short read */
    ck_assert_int_eq(loop_io_wait(&io, LOOP_READ, loop_now_us() + 1000000), 0);
    ck_assert_int_eq(read(sv[0], buf, sizeof(buf)), 0);
    loop_io_close(&io);
}

START_TEST(eof_with_the_last_data_is_not_lost)
{
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    run_task(&loop, data_then_eof, NULL);
    close(sv[0]);
    close(sv[1]);
}
END_TEST

/* The peer leaves while the owner is parked elsewhere: on_hangup runs and
 * can cancel the owner's park. */
static int hangups;
static coro_t *hangup_owner;

static void on_hangup(void *arg)
{
    hangups++;
    ck_assert_ptr_eq(arg, &hangups);
    loop_cancel(hangup_owner);
}

static void closer(void *arg)
{
    (void)arg;
    ck_assert_int_eq(loop_sleep_us(2000), 0);
    close(sv[1]);
}

static void parked_elsewhere(void *arg)
{
    struct loop_io io;
    (void)arg;
    hangup_owner = coro_current();
    ck_assert_int_eq(loop_io_open(&io, sv[0], on_hangup, &hangups), 0);
    ck_assert_int_eq(loop_spawn(loop_current(), closer, NULL, NULL), 0);
    ck_assert_int_eq(loop_park(loop_now_us() + 10 * 1000000), -ECANCELED);
    loop_io_close(&io);
}

START_TEST(hangup_while_parked_elsewhere)
{
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    hangups = 0;
    run_task(&loop, parked_elsewhere, NULL);
    ck_assert_int_eq(hangups, 1);
    close(sv[0]);
}
END_TEST

struct victim {
    coro_t *co;
    int rc;
    int mode; /* 0 park forever, 1 sleep, 2 io wait */
};

static void victim_main(void *arg)
{
    struct victim *v = arg;
    if (v->mode == 0)
        v->rc = loop_park(LOOP_FOREVER);
    else if (v->mode == 1)
        v->rc = loop_sleep_us(60 * 1000000);
    else {
        struct loop_io io;
        ck_assert_int_eq(loop_io_open(&io, sv[0], NULL, NULL), 0);
        loop_io_clear(&io, LOOP_READ);
        v->rc = loop_io_wait(&io, LOOP_READ, LOOP_FOREVER);
        loop_io_close(&io);
    }
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
        ck_assert_int_eq(vs[i].rc, 1);                      /* delivered on a later turn */
    }
}

START_TEST(cancel_ends_any_park)
{
    struct victim vs[3];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    int64_t t0 = loop_now_us();
    run_task(&loop, canceller, vs);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(vs[i].rc, -ECANCELED);
    ck_assert_int_lt(loop_now_us() - t0, 30 * 1000000); /* not the 60 s sleep */
    close(sv[0]);
    close(sv[1]);
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
    run_task(&loop, waker, vs);
    ck_assert_int_eq(vs[0].rc, 7);
    ck_assert_int_eq(vs[1].rc, 8);
    ck_assert_int_eq(vs[2].rc, -ECANCELED);
}
END_TEST

/* Work whose next event is a millisecond away (an etcd reply) is not
 * followed by a spin: the loop learns that polling after it catches
 * nothing and sleeps. A peer thread sends a byte every millisecond; a
 * loop that polled 50 us after each would burn at least 50 us of its
 * thread's CPU per wake-up, one that sleeps a few (epoll, recv): about
 * 56 and 9 here. The cheapest batch of wake-ups counts: a loaded machine
 * has quiet moments. */
#define SLOW_BYTES 100
#define SLOW_BATCH 10

static void *slow_peer(void *arg)
{
    (void)arg;
    for (int i = 0; i < SLOW_BYTES; i++) {
        nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
        if (write(sv[1], "s", 1) != 1)
            break; /* the reader's wait times out and fails the test */
    }
    return NULL;
}

static int64_t thread_cpu_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Reads SLOW_BYTES; *arg: the least CPU per wake-up over batches of
 * SLOW_BATCH wake-ups (a batch of bytes may come in one when the reader
 * was kept off its core). */
static void slow_reader(void *arg)
{
    int64_t *least = arg, batch_start = thread_cpu_us();
    int waits = 0;
    struct loop_io io;
    char c;
    ck_assert_int_eq(loop_io_open(&io, sv[0], NULL, NULL), 0);
    for (int got = 0; got < SLOW_BYTES; got++) {
        while (read(sv[0], &c, 1) != 1) {
            ck_assert_int_eq(errno, EAGAIN);
            loop_io_clear(&io, LOOP_READ);
            ck_assert_int_eq(loop_io_wait(&io, LOOP_READ, loop_now_us() + 5000000), 0);
            if (++waits % SLOW_BATCH)
                continue;
            int64_t now = thread_cpu_us();
            if ((now - batch_start) / SLOW_BATCH < *least)
                *least = (now - batch_start) / SLOW_BATCH;
            batch_start = now;
        }
    }
    loop_io_close(&io);
}

START_TEST(no_spin_while_waiting_far)
{
    pthread_t peer;
    int64_t least = INT64_MAX;
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    ck_assert_int_eq(pthread_create(&peer, NULL, slow_peer, NULL), 0);
    run_task(&loop, slow_reader, &least);
    pthread_join(peer, NULL);
    ck_assert_int_ne(least, INT64_MAX); /* at least one batch */
    ck_assert_msg(least < 30, "%lld us of CPU per wake-up 1 ms apart", (long long)least);
    close(sv[0]);
    close(sv[1]);
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
    tcase_add_test(tc, yield_lets_the_ready_run_first);
    tcase_add_test(tc, io_wait_with_deadline);
    tcase_add_test(tc, io_wait_by_loop_names);
    tcase_add_test(tc, edge_while_busy_is_kept);
    tcase_add_test(tc, hangup_while_parked_elsewhere);
    tcase_add_test(tc, eof_with_the_last_data_is_not_lost);
    tcase_add_test(tc, rearmed_deadline_is_on_time);
    tcase_add_test(tc, cancel_ends_any_park);
    tcase_add_test(tc, wake_beats_pending_cancel);
    tcase_add_test(tc, no_spin_while_waiting_far);
    tcase_add_test(tc, spawn_failure_is_an_error);
    suite_add_tcase(s, tc);
    return check_run(s);
}
