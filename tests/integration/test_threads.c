/* Integration tests for --threads: the real binary with four event loops,
 * each accepting on its own socket. The counter stays exact under many
 * concurrent clients (every N distinct, the last one the number of 200s),
 * and the lock stays one strict FIFO across the loops for arrivals that
 * are staggered in time. Also run under ThreadSanitizer (scripts/test). */
#include <check.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_run.h"
#include "harness.h"

static struct srv srv;

static void teardown(void)
{
    if (srv.pid > 0)
        srv_stop(&srv, SIGKILL);
}

enum { CONNS = 64, ROUNDS = 10 };

/* Every connection keeps one request in flight per round, so requests of
 * all loops queue for the lock at once. */
START_TEST(counter_exact_across_loops)
{
    static struct reader rd[CONNS];
    static bool seen[CONNS * ROUNDS + 1];
    srv_start(&srv, "--threads", "4", "--delay-ms", "0", NULL);
    ck_assert_int_eq(stat_value(srv.port, "threads"), 4);
    for (int i = 0; i < CONNS; i++)
        reader_connect(&rd[i], srv.port);
    for (int round = 0; round < ROUNDS; round++) {
        for (int i = 0; i < CONNS; i++)
            send_get_access(rd[i].fd);
        for (int i = 0; i < CONNS; i++) {
            struct resp r;
            ck_assert_int_eq(read_response(&rd[i], &r, 20000), 0);
            ck_assert_int_eq(r.status, 200);
            long long n = access_n(&r);
            ck_assert(n >= 1 && n <= CONNS * ROUNDS);
            ck_assert_msg(!seen[n], "N=%lld twice", n);
            seen[n] = true;
        }
    }
    ck_assert_int_eq(stat_value(srv.port, "counter"), CONNS * ROUNDS);
    ck_assert_int_eq(stat_value(srv.port, "lock.acquisitions"), CONNS * ROUNDS);
    for (int i = 0; i < CONNS; i++)
        close(rd[i].fd);
    ck_assert_int_eq(srv_stop(&srv, SIGTERM), 0);
}
END_TEST

/* Each request arrives (on a new connection, so on any loop) only once the
 * one before it is queued: they must be granted in that order. */
START_TEST(fifo_across_loops_for_staggered_arrivals)
{
    enum { N = 24 };
    static struct reader rd[N];
    /* Sections long enough that arrivals outpace them even under TSan on
     * a loaded machine, so a queue forms. */
    srv_start(&srv, "--threads", "4", "--delay-ms", "300", NULL);
    for (int i = 0; i < N; i++) {
        reader_connect(&rd[i], srv.port);
        send_get_access(rd[i].fd);
        /* Counted as it asks for the lock, with no wait in between. */
        ck_assert(wait_stat(srv.port, "requests.access", i + 1, 10000));
    }
    ck_assert_int_gt(stat_value(srv.port, "lock.max_waiters"), 1); /* they did queue */
    for (int i = 0; i < N; i++) {
        struct resp r;
        ck_assert_int_eq(read_response(&rd[i], &r, 30000), 0);
        ck_assert_int_eq(r.status, 200);
        ck_assert_msg(access_n(&r) == i + 1, "arrival %d got N=%lld", i + 1, access_n(&r));
        close(rd[i].fd);
    }
    ck_assert_int_eq(srv_stop(&srv, SIGTERM), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("threads");
    TCase *tc = tcase_create("threads");
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, counter_exact_across_loops);
    tcase_add_test(tc, fifo_across_loops_for_staggered_arrivals);
    suite_add_tcase(s, tc);
    return check_run(s);
}
