/* Unit tests for server/cluster/errlog.c: when a run of one etcd error is
 * told (a failure ERRLOG_RUN_US after the first, none succeeding), that it is told again only every
 * ERRLOG_REPEAT_US, that a success ends it (and says so), that each errno runs on its own, and that
 * what others tell is left to them. The clock is the test's: no waiting. stderr goes to a scratch
 * file where a test reads the lines. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_run.h"
#include "cluster/errlog.h"
#include "log.h"
#include "scratch.h"

#define S 1000000LL /* a second of the test's clock */

static struct errlog l;

static void setup(void)
{
    errlog_init(&l);
    log_set_level(LOG_LEVEL_INFO);
}

static void teardown(void)
{
    errlog_fini(&l);
}

static enum errlog_said failed_at(int rc, int64_t at_us)
{
    return errlog_note(&l, rc, "etcd: timed out", at_us);
}

START_TEST(a_run_is_told_once_then_once_a_minute)
{
    for (int i = 0; i < 50; i++) /* many clients failing at one slow moment: a blip */
        ck_assert_int_eq(failed_at(-ETIMEDOUT, i), ERRLOG_QUIET);
    ck_assert_int_eq(failed_at(-ETIMEDOUT, ERRLOG_RUN_US - 1), ERRLOG_QUIET);
    ck_assert_int_eq(failed_at(-ETIMEDOUT, ERRLOG_RUN_US), ERRLOG_STARTED);
    for (int64_t t = ERRLOG_RUN_US; t < ERRLOG_RUN_US + ERRLOG_REPEAT_US; t += S / 10)
        ck_assert_int_eq(failed_at(-ETIMEDOUT, t), ERRLOG_QUIET); /* ten calls a second */
    ck_assert_int_eq(failed_at(-ETIMEDOUT, ERRLOG_RUN_US + ERRLOG_REPEAT_US), ERRLOG_LASTS);
    ck_assert_int_eq(failed_at(-ETIMEDOUT, ERRLOG_RUN_US + ERRLOG_REPEAT_US + 1), ERRLOG_QUIET);
    ck_assert_int_eq(errlog_note(&l, 0, NULL, 70 * S), ERRLOG_ENDED);
    ck_assert_int_eq(errlog_note(&l, 0, NULL, 71 * S), ERRLOG_QUIET);
    ck_assert_int_eq(failed_at(-ETIMEDOUT, 72 * S), ERRLOG_QUIET); /* a new run starts afresh */
}
END_TEST

START_TEST(a_success_ends_a_run_before_it_is_told)
{
    ck_assert_int_eq(failed_at(-ECONNREFUSED, 0), ERRLOG_QUIET);
    ck_assert_int_eq(failed_at(-ECONNREFUSED, ERRLOG_RUN_US - 1), ERRLOG_QUIET);
    ck_assert_int_eq(errlog_note(&l, 0, NULL, ERRLOG_RUN_US), ERRLOG_QUIET); /* never told */
    ck_assert_int_eq(failed_at(-ECONNREFUSED, ERRLOG_RUN_US + 1), ERRLOG_QUIET);
    ck_assert_int_eq(failed_at(-ECONNREFUSED, 2 * ERRLOG_RUN_US + 1), ERRLOG_STARTED);
}
END_TEST

START_TEST(successes_between_failures_make_no_run)
{
    for (int64_t t = 0; t < 10 * ERRLOG_REPEAT_US; t += ERRLOG_RUN_US) {
        ck_assert_int_eq(failed_at(-ETIMEDOUT, t), ERRLOG_QUIET);
        ck_assert_int_eq(errlog_note(&l, 0, NULL, t + 1), ERRLOG_QUIET);
    }
}
END_TEST

START_TEST(each_errno_runs_on_its_own)
{
    ck_assert_int_eq(failed_at(-ETIMEDOUT, 0), ERRLOG_QUIET);
    ck_assert_int_eq(failed_at(-ECONNRESET, S), ERRLOG_QUIET);
    ck_assert_int_eq(failed_at(-ETIMEDOUT, ERRLOG_RUN_US), ERRLOG_STARTED);
    ck_assert_int_eq(failed_at(-ECONNRESET, ERRLOG_RUN_US), ERRLOG_QUIET); /* its own clock */
    ck_assert_int_eq(failed_at(-ECONNRESET, S + ERRLOG_RUN_US), ERRLOG_STARTED);
    ck_assert_int_eq(failed_at(-ECONNRESET, S + ERRLOG_RUN_US + 1), ERRLOG_QUIET);
}
END_TEST

START_TEST(what_others_tell_is_left_to_them)
{
    static const int others[] = {-ECANCELED, -ENOSPC, -EACCES, -EPROTO, -EKEYREJECTED};
    for (unsigned i = 0; i < sizeof(others) / sizeof(others[0]); i++)
        for (int64_t t = 0; t < 5 * ERRLOG_RUN_US; t += S / 10)
            ck_assert_int_eq(failed_at(others[i], t), ERRLOG_QUIET);
    ck_assert(!atomic_load(&l.open));
}
END_TEST

/* Counts the lines of text that hold needle. */
static int lines_with(const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

/* A hundred failed calls over five seconds: one error line, with what to
 * do; the end: one info line. */
START_TEST(a_run_is_one_line_not_one_per_call)
{
    char dir[] = "/tmp/test_errlog_XXXXXX", path[64], out[4096];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/err", dir);
    int file = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600), saved = dup(2);
    ck_assert(file >= 0 && saved >= 0);
    ck_assert_int_eq(dup2(file, 2), 2);
    for (int i = 0; i < 100; i++)
        failed_at(-ETIMEDOUT, i * S / 20);
    errlog_note(&l, 0, NULL, 5 * S);
    ck_assert_int_eq(dup2(saved, 2), 2);
    close(saved);
    close(file);
    size_t n = scratch_read(path, out, sizeof(out) - 1);
    out[n] = '\0';
    scratch_remove(dir);
    ck_assert_int_eq(lines_with(out, "error: cluster: etcd calls fail"), 1);
    ck_assert_int_eq(lines_with(out, "'etcdctl endpoint status'"), 1);
    ck_assert_int_eq(lines_with(out, "info: cluster: etcd answers again, after 100 calls failed"),
                     1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("errlog");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, a_run_is_told_once_then_once_a_minute);
    tcase_add_test(tc, a_success_ends_a_run_before_it_is_told);
    tcase_add_test(tc, successes_between_failures_make_no_run);
    tcase_add_test(tc, each_errno_runs_on_its_own);
    tcase_add_test(tc, what_others_tell_is_left_to_them);
    tcase_add_test(tc, a_run_is_one_line_not_one_per_call);
    suite_add_tcase(s, tc);
    return check_run(s);
}
