/* Integration tests for --state-file: the real binary keeps its counter
 * across a clean restart and across SIGKILLs under concurrent load (no
 * acknowledged update lost, none invented), and refuses a file that is not
 * its own, or a path it cannot use, without touching anything. */
#include <check.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_run.h"
#include "scratch.h"
#include "harness.h"

static struct srv srv;
static char dir[64], state_path[128];

static void setup(void)
{
    strcpy(dir, "/tmp/test_durable_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(state_path, sizeof(state_path), "%s/counter", dir);
}

/* A failed test must not leave its server running, nor its files. */
static void teardown(void)
{
    if (srv.pid > 0)
        srv_stop(&srv, SIGKILL);
    scratch_remove(dir);
}

static void start_durable(void)
{
    srv_start(&srv, "--delay-ms", "0", "--state-file", state_path, NULL);
}

static long long access_once(void)
{
    struct resp r;
    ck_assert_int_eq(http_get(srv.port, "/access", &r), 0);
    ck_assert_int_eq(r.status, 200);
    return access_n(&r);
}

/* ---- restarts ---- */

START_TEST(clean_restart_keeps_the_counter)
{
    static char config[192];
    start_durable();
    for (long long n = 1; n <= 25; n++)
        ck_assert_int_eq(access_once(), n);
    ck_assert_int_eq(srv_stop(&srv, SIGTERM), 0);

    /* The same file again, named by the config-file key this time. */
    snprintf(config, sizeof(config), "%s/turnstile.ini", dir);
    FILE *f = fopen(config, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "delay_ms = 0\nstate_file = %s\n", state_path);
    fclose(f);
    srv_start(&srv, "--config", config, NULL);
    ck_assert_int_eq(access_once(), 26);
    ck_assert_int_eq(stat_value(srv.port, "counter"), 26);
    ck_assert_int_eq(srv_stop(&srv, SIGTERM), 0);
}
END_TEST

/* ---- SIGKILL under load ---- */

enum { CYCLES = 20, CLIENTS = 20 };

static struct reader rd[CLIENTS];
struct tally {
    long long sent;      /* /access requests written to a socket: updates started */
    long long acked_max; /* the highest N any client was told */
};

/* Reads the one reply client i has in flight and sends its next request.
 * Every N told must be above what earlier cycles acknowledged. */
static void take_reply(int i, struct tally *t, long long floor)
{
    struct resp r;
    ck_assert_msg(read_response(&rd[i], &r, 10000) == 0, "client %d: no reply", i);
    ck_assert_int_eq(r.status, 200);
    long long n = access_n(&r);
    ck_assert_msg(n > floor, "told N=%lld, but %lld was acknowledged before a kill", n, floor);
    if (n > t->acked_max)
        t->acked_max = n;
    send_get_access(rd[i].fd);
    t->sent++;
}

/* One cycle: CLIENTS keep-alive clients, one /access in flight each,
 * until at least `replies` replies came; then SIGKILL. */
static void kill_under_load(struct tally *t, int replies)
{
    long long floor = t->acked_max;
    start_durable();
    for (int i = 0; i < CLIENTS; i++) {
        rd[i] = (struct reader){.fd = tcp_connect(srv.port)};
        send_get_access(rd[i].fd);
        t->sent++;
    }
    for (int got = 0; got < replies;) {
        struct pollfd p[CLIENTS];
        for (int i = 0; i < CLIENTS; i++)
            p[i] = (struct pollfd){.fd = rd[i].fd, .events = POLLIN};
        ck_assert_msg(poll(p, CLIENTS, 10000) > 0, "no reply within 10 s");
        for (int i = 0; i < CLIENTS; i++) {
            if (p[i].revents) {
                take_reply(i, t, floor);
                got++;
            }
        }
    }
    ck_assert_int_eq(srv_stop(&srv, SIGKILL), 128 + SIGKILL);
    for (int i = 0; i < CLIENTS; i++)
        close(rd[i].fd);
}

START_TEST(sigkill_under_load_loses_no_acknowledged_update)
{
    struct tally t = {0};
    for (int cycle = 0; cycle < CYCLES; cycle++)
        kill_under_load(&t, 10 + cycle * 37 % 90); /* kill at varied moments */
    start_durable();
    long long counter = stat_value(srv.port, "counter");
    ck_assert_msg(counter >= t.acked_max, "counter %lld < acknowledged %lld", counter, t.acked_max);
    ck_assert_msg(counter <= t.sent, "counter %lld > %lld updates started", counter, t.sent);
    ck_assert_int_gt(t.acked_max, CYCLES * 10); /* the load did run */
    ck_assert_int_eq(srv_stop(&srv, SIGTERM), 0);
}
END_TEST

/* ---- refusals ---- */

START_TEST(foreign_file_is_refused_untouched)
{
    static char before[8192], after[8192], out[4096], err[4096], want[256];
    static const char text[] = "counter = 41\n# not a turnstile state file\n";
    int fd = open(state_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_eq(write(fd, text, sizeof(text) - 1), (ssize_t)sizeof(text) - 1);
    close(fd);
    size_t n = scratch_read(state_path, before, sizeof(before));

    int rc = run_binary(10000, out, sizeof(out), err, sizeof(err), "--port", "0", "--state-file",
                        state_path, NULL);
    ck_assert_msg(rc == 2, "exit %d, stdout '%s', stderr '%s'", rc, out, err);
    snprintf(want, sizeof(want), "turnstile: %s: not a turnstile state file\n", state_path);
    ck_assert_str_eq(err, want);
    ck_assert_uint_eq(scratch_read(state_path, after, sizeof(after)), n);
    ck_assert(memcmp(before, after, n) == 0);
}
END_TEST

START_TEST(unusable_path_exits_2)
{
    static char out[4096], err[4096], missing[192];
    snprintf(missing, sizeof(missing), "%s/no-such-dir/counter", dir);
    int rc = run_binary(10000, out, sizeof(out), err, sizeof(err), "--port", "0", "--state-file",
                        missing, NULL);
    ck_assert_msg(rc == 2, "exit %d, stdout '%s', stderr '%s'", rc, out, err);
    ck_assert_msg(strncmp(err, "turnstile: ", 11) == 0 && strstr(err, missing), "stderr: %s", err);
    ck_assert_msg(strchr(err, '\n') == err + strlen(err) - 1, "not one line: %s", err);
    ck_assert_str_eq(out, "");
}
END_TEST

START_TEST(second_server_on_the_file_exits_1)
{
    static char out[4096], err[4096], want[256];
    start_durable();
    int rc = run_binary(10000, out, sizeof(out), err, sizeof(err), "--port", "0", "--state-file",
                        state_path, NULL);
    ck_assert_msg(rc == 1, "exit %d, stdout '%s', stderr '%s'", rc, out, err);
    snprintf(want, sizeof(want), "turnstile: %s: in use by another turnstile\n", state_path);
    ck_assert_str_eq(err, want);
    ck_assert_int_eq(access_once(), 1); /* the first one never noticed */
    ck_assert_int_eq(srv_stop(&srv, SIGTERM), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("durable");
    TCase *tc = tcase_create("durable");
    tcase_set_timeout(tc, 240);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, clean_restart_keeps_the_counter);
    tcase_add_test(tc, sigkill_under_load_loses_no_acknowledged_update);
    tcase_add_test(tc, foreign_file_is_refused_untouched);
    tcase_add_test(tc, unusable_path_exits_2);
    tcase_add_test(tc, second_server_on_the_file_exits_1);
    suite_add_tcase(s, tc);
    return check_run(s);
}
