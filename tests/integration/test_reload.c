/* Integration tests for operating a running server: SIGHUP re-reads the
 * configuration (applied at once where it can be, refused with a log line
 * where only a restart can change it, ignored whole if it does not parse),
 * and SIGUSR1 reopens the access log so that logrotate loses no line. */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check_run.h"
#include "harness.h"
#include "scratch.h"

static struct srv srv;
static char dir[64], conf[128], access_path[128];

static void setup(void)
{
    strcpy(dir, "/tmp/test_reload_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(conf, sizeof(conf), "%s/turnstile.conf", dir);
    snprintf(access_path, sizeof(access_path), "%s/access.log", dir);
}

static void teardown(void)
{
    if (srv.pid > 0)
        srv_stop(&srv, SIGKILL);
    scratch_remove(dir);
}

/* Replaces the file whole (write aside, rename), as an editor or a
 * configuration manager would: a reload never reads half of it. */
static void write_conf(const char *text)
{
    char tmp[160];
    snprintf(tmp, sizeof(tmp), "%s.new", conf);
    FILE *f = fopen(tmp, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    ck_assert_int_eq(fclose(f), 0);
    ck_assert_int_eq(rename(tmp, conf), 0);
}

static void reload(const char *expect_in_log)
{
    ck_assert_int_eq(kill(srv.pid, SIGHUP), 0);
    ck_assert_msg(srv_log_wait(&srv, expect_in_log, 10000), "no '%s' in the log", expect_in_log);
}

/* The work;dur= of a Server-Timing header, in ms; -1 if none. */
static double work_ms(const struct resp *r)
{
    const char *p = strstr(r->headers, "work;dur=");
    return p ? atof(p + strlen("work;dur=")) : -1;
}

static double access_work_ms(void)
{
    struct resp r;
    ck_assert_int_eq(http_get(srv.port, "/access", &r), 0);
    ck_assert_int_eq(r.status, 200);
    return work_ms(&r);
}

START_TEST(reload_applies_the_delay_and_spares_the_queue)
{
    static struct reader holder, queued;
    struct resp r;
    /* Seconds: the waiter queues and the reload lands inside the
     * holder's section even on a loaded machine. */
    write_conf("delay-ms = 3000\n");
    srv_start(&srv, "--config", conf, NULL);
    reader_send_access(&holder, srv.port);
    ck_assert(wait_stat(srv.port, "lock.locked", 1, 10000));
    reader_send_access(&queued, srv.port);
    ck_assert(wait_stat(srv.port, "lock.waiters", 1, 10000));

    write_conf("delay-ms = 5\n");
    reload("reload: applied");

    /* Both were untouched: the holder ran its 3000 ms, the queued one was
     * served, and the next request runs with the new delay. */
    ck_assert_int_eq(read_response(&holder, &r, 10000), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_double_ge(work_ms(&r), 3000);
    ck_assert_int_eq(read_response(&queued, &r, 10000), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq(access_n(&r), 2);
    ck_assert_double_lt(access_work_ms(), 1500);
    close(holder.fd);
    close(queued.fd);
    ck_assert_int_eq(srv_stop(&srv, SIGTERM), 0);
}
END_TEST

START_TEST(bad_reload_changes_nothing)
{
    write_conf("delay-ms = 150\n");
    srv_start(&srv, "--config", conf, NULL);
    write_conf("delay-ms = 1\nno-such-key = 2\n");
    reload("nothing changed");
    ck_assert_double_ge(access_work_ms(), 150); /* the old delay, not the default 100 */
    write_conf("delay-ms = 1\ndelay-ms = x\n");
    reload("nothing changed");
    ck_assert_double_ge(access_work_ms(), 150);
    ck_assert_int_eq(unlink(conf), 0);
    reload("nothing changed");
    ck_assert_double_ge(access_work_ms(), 150);
    ck_assert_int_eq(srv_stop(&srv, SIGTERM), 0);
}
END_TEST

START_TEST(restart_settings_are_kept_and_named)
{
    static char text[512];
    write_conf("delay-ms = 1000\n");
    srv_start(&srv, "--config", conf, NULL);
    snprintf(text, sizeof(text), "delay-ms = 1\nstate-file = %s/counter\nbind = 127.0.0.2\n", dir);
    write_conf(text);
    ck_assert_int_eq(kill(srv.pid, SIGHUP), 0);
    ck_assert(srv_log_wait(&srv, "state-file changed, but only a restart", 10000));
    ck_assert(srv_log_wait(&srv, "reload: applied", 10000));
    /* The rest applied; the server still listens where it did and keeps
     * its counter in memory. */
    ck_assert_double_lt(access_work_ms(), 500);
    ck_assert_int_ne(access(text + strlen("delay-ms = 1\nstate-file = "), F_OK), 0);
    ck_assert_int_eq(srv_stop(&srv, SIGTERM), 0);
}
END_TEST

/* ---- SIGUSR1 ---- */

enum { CONNS = 8, ROUNDS = 200, ROTATE_EVERY = 20 };

static long count_lines(const char *path)
{
    FILE *f = fopen(path, "r");
    long n = 0;
    int c, last = '\n';
    if (!f)
        return 0;
    while ((c = fgetc(f)) != EOF) {
        n += c == '\n';
        last = c;
    }
    fclose(f);
    ck_assert_msg(last == '\n', "%s ends in the middle of a line", path);
    return n;
}

/* True once the server has opened the log at path anew, which it does
 * as it handles SIGUSR1; false after timeout_ms. */
static bool wait_reopened(const char *path, int timeout_ms)
{
    long long end = now_ms() + timeout_ms;
    while (access(path, F_OK) != 0) {
        if (now_ms() >= end)
            return false;
        nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
    }
    return true;
}

/* Requests are in flight on every connection while the log is renamed and
 * reopened, as under logrotate with its postrotate SIGUSR1. The next
 * rotation waits for the reopening, as logrotate's next run would. */
START_TEST(rotation_under_load_loses_no_line)
{
    static struct reader rd[CONNS];
    static char text[256], rotated[160];
    struct resp r;
    int rotations = 0;
    snprintf(text, sizeof(text), "delay-ms = 0\naccess-log = %s\n", access_path);
    write_conf(text);
    srv_start(&srv, "--config", conf, NULL);
    for (int i = 0; i < CONNS; i++)
        reader_connect(&rd[i], srv.port);
    for (int round = 1; round <= ROUNDS; round++) {
        for (int i = 0; i < CONNS; i++)
            send_get_access(rd[i].fd);
        if (round % ROTATE_EVERY == 0) {
            snprintf(rotated, sizeof(rotated), "%s.%d", access_path, ++rotations);
            ck_assert_int_eq(rename(access_path, rotated), 0);
            ck_assert_int_eq(kill(srv.pid, SIGUSR1), 0);
            ck_assert_msg(wait_reopened(access_path, 10000), "rotation %d: not reopened",
                          rotations);
        }
        for (int i = 0; i < CONNS; i++) {
            ck_assert_int_eq(read_response(&rd[i], &r, 10000), 0);
            ck_assert_int_eq(r.status, 200);
        }
    }
    for (int i = 0; i < CONNS; i++)
        close(rd[i].fd);
    ck_assert_int_eq(srv_stop(&srv, SIGTERM), 0); /* the last lines are written at exit */
    long lines = count_lines(access_path);
    for (int i = 1; i <= rotations; i++) {
        snprintf(rotated, sizeof(rotated), "%s.%d", access_path, i);
        lines += count_lines(rotated);
    }
    ck_assert_int_eq(lines, CONNS * ROUNDS);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("reload");
    TCase *tc = tcase_create("reload");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, reload_applies_the_delay_and_spares_the_queue);
    tcase_add_test(tc, bad_reload_changes_nothing);
    tcase_add_test(tc, restart_settings_are_kept_and_named);
    tcase_add_test(tc, rotation_under_load_loses_no_line);
    suite_add_tcase(s, tc);
    return check_run(s);
}
