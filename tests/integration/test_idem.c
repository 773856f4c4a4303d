/* Integration tests for Idempotency-Key on GET /access (single-node): a key
 * is applied once and every repeat gets the first N, whether it comes after
 * the first (sequential) or while the first still runs (concurrent); a bad
 * key is a 400 that leaves the counter alone; a key past the retention
 * window, or pushed out by the cap, is a new request. */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_run.h"
#include "harness.h"
#include "scratch.h"

static struct srv srv;

static void teardown(void)
{
    if (srv.pid > 0)
        srv_stop(&srv, SIGKILL);
}

/* Sends GET /access with the Idempotency-Key field line `field` (NULL:
 * none) on rd's connection, without reading the reply. */
static void send_keyed(struct reader *rd, const char *field)
{
    char req[512];
    int len = snprintf(req, sizeof(req), "GET /access HTTP/1.1\r\nHost: t\r\n%s%s\r\n",
                       field ? field : "", field ? "\r\n" : "");
    send_all(rd->fd, req, (size_t)len);
}

/* One keyed GET /access on a fresh connection; its N (200), or -status. */
static long long keyed(const char *field)
{
    struct reader rd;
    struct resp r;
    reader_connect(&rd, srv.port);
    send_keyed(&rd, field);
    ck_assert_int_eq(read_response(&rd, &r, 30000), 0);
    close(rd.fd);
    return r.status == 200 ? access_n(&r) : -r.status;
}

START_TEST(sequential_repeat_gets_the_first_n)
{
    srv_start(&srv, "--delay-ms", "0", NULL);
    ck_assert_int_eq(keyed(NULL), 1);
    ck_assert_int_eq(keyed("Idempotency-Key: \"8e03978e-40d5-43e8-bc93-6894a57f9324\""), 2);
    ck_assert_int_eq(keyed("Idempotency-Key: \"8e03978e-40d5-43e8-bc93-6894a57f9324\""), 2);
    /* The key is what lies between the quotes: bare, it is the same key. */
    ck_assert_int_eq(keyed("idempotency-key: 8e03978e-40d5-43e8-bc93-6894a57f9324  "), 2);
    ck_assert_int_eq(keyed("Idempotency-Key: \"other\""), 3);
    ck_assert_int_eq(keyed(NULL), 4);
    ck_assert_int_eq(stat_value(srv.port, "counter"), 4);
    ck_assert_int_eq(stat_value(srv.port, "idempotency.keys"), 2);
    ck_assert_int_eq(stat_value(srv.port, "idempotency.repeats"), 2);
    ck_assert_int_eq(srv_stop(&srv, SIGTERM), 0);
}
END_TEST

/* The first holds the lock for 300 ms: the repeat arrives while it runs,
 * waits for its outcome, and is not applied. */
START_TEST(concurrent_repeat_waits_for_the_first)
{
    enum { REPEATS = 4 };
    struct reader rd[REPEATS];
    struct resp r;
    long long n[REPEATS];
    srv_start(&srv, "--delay-ms", "300", NULL);
    reader_connect(&rd[0], srv.port);
    send_keyed(&rd[0], "Idempotency-Key: same");
    ck_assert(wait_stat(srv.port, "requests.in_section", 1, 10000));
    for (int i = 1; i < REPEATS; i++) {
        reader_connect(&rd[i], srv.port);
        send_keyed(&rd[i], "Idempotency-Key: \"same\"");
    }
    for (int i = 0; i < REPEATS; i++) {
        ck_assert_int_eq(read_response(&rd[i], &r, 30000), 0);
        ck_assert_int_eq(r.status, 200);
        n[i] = access_n(&r);
        close(rd[i].fd);
    }
    for (int i = 0; i < REPEATS; i++)
        ck_assert_int_eq(n[i], 1);
    ck_assert_int_eq(stat_value(srv.port, "counter"), 1);
    ck_assert_int_eq(stat_value(srv.port, "lock.acquisitions"), REPEATS);
    ck_assert_int_eq(srv_stop(&srv, SIGTERM), 0);
}
END_TEST

START_TEST(bad_key_is_400_and_counts_nothing)
{
    static const char *const bad[] = {
        "Idempotency-Key: \"\"",
        "Idempotency-Key:",
        "Idempotency-Key: \"a b\"",
        "Idempotency-Key: \"a\\\"b\"",
        "Idempotency-Key: a/b",
        "Idempotency-Key: \"abc",
        "Idempotency-Key: abc def",
        "Idempotency-Key: "
        "\"12345678901234567890123456789012345678901234567890123456789012345\"",
        "Idempotency-Key: a\r\nIdempotency-Key: a",
    };
    struct resp r;
    srv_start(&srv, "--delay-ms", "0", NULL);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(keyed(bad[i]) == -400, "%s", bad[i]);
    /* 64 bytes is the longest key; other routes ignore the field. */
    ck_assert_int_eq(
        keyed("Idempotency-Key: 1234567890123456789012345678901234567890123456789012345678901234"),
        1);
    ck_assert_int_eq(http_get(srv.port, "/stats", &r), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq(stat_value(srv.port, "counter"), 1);
    ck_assert_int_eq(stat_value(srv.port, "requests.by_route./access.400"), 9);
    ck_assert_int_eq(srv_stop(&srv, SIGTERM), 0);
}
END_TEST

/* Polls until the key's repeat is applied anew; returns when it was seen. */
static long long new_after_window(const char *field, long long first_n, int timeout_ms)
{
    long long end = now_ms() + timeout_ms;
    while (now_ms() < end) {
        long long n = keyed(field);
        if (n != first_n)
            return now_ms();
        usleep(50 * 1000); /* a poll interval, not a wait for the outcome */
    }
    return -1;
}

START_TEST(key_past_retention_is_new)
{
    srv_start(&srv, "--delay-ms", "0", "--idempotency-retention-ms", "1000", NULL);
    long long sent = now_ms();
    ck_assert_int_eq(keyed("Idempotency-Key: k"), 1);
    long long seen = new_after_window("Idempotency-Key: k", 1, 20000);
    ck_assert_int_ge(seen - sent, 1000); /* not before the window ended */
    ck_assert_int_ge(stat_value(srv.port, "idempotency.expired"), 1);
    ck_assert_int_eq(stat_value(srv.port, "idempotency.keys"), 1);
    ck_assert_int_eq(srv_stop(&srv, SIGTERM), 0);
}
END_TEST

START_TEST(cap_forgets_the_oldest_first)
{
    srv_start(&srv, "--delay-ms", "0", "--idempotency-max-keys", "2", NULL);
    ck_assert_int_eq(keyed("Idempotency-Key: a"), 1);
    ck_assert_int_eq(keyed("Idempotency-Key: b"), 2);
    ck_assert_int_eq(keyed("Idempotency-Key: c"), 3); /* a goes */
    ck_assert_int_eq(keyed("Idempotency-Key: c"), 3);
    ck_assert_int_eq(keyed("Idempotency-Key: b"), 2);
    ck_assert_int_eq(keyed("Idempotency-Key: a"), 4); /* b goes */
    ck_assert_int_eq(stat_value(srv.port, "idempotency.evicted"), 2);
    ck_assert_int_eq(stat_value(srv.port, "idempotency.keys"), 2);
    ck_assert_int_eq(srv_stop(&srv, SIGTERM), 0);
}
END_TEST

/* --state-file: the key is on disk with the counter, so a server killed
 * after the write (whether or not its reply went out) answers the retry
 * with the same N after a restart. */
START_TEST(key_survives_sigkill_with_the_state_file)
{
    char dir[] = "/tmp/test_idem_XXXXXX", path[64];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/counter", dir);
    srv_start(&srv, "--delay-ms", "0", "--state-file", path, NULL);
    ck_assert_int_eq(keyed(NULL), 1);
    ck_assert_int_eq(keyed("Idempotency-Key: \"retry-me\""), 2);
    ck_assert_int_eq(srv_stop(&srv, SIGKILL), 128 + SIGKILL);
    srv_start(&srv, "--delay-ms", "0", "--state-file", path, NULL);
    ck_assert_int_eq(keyed("Idempotency-Key: \"retry-me\""), 2);
    ck_assert_int_eq(keyed(NULL), 3);
    ck_assert_int_eq(srv_stop(&srv, SIGTERM), 0);
    scratch_remove(dir);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("idem");
    TCase *tc = tcase_create("idem");
    tcase_set_timeout(tc, 240);
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_add_test(tc, sequential_repeat_gets_the_first_n);
    tcase_add_test(tc, concurrent_repeat_waits_for_the_first);
    tcase_add_test(tc, bad_key_is_400_and_counts_nothing);
    tcase_add_test(tc, key_past_retention_is_new);
    tcase_add_test(tc, cap_forgets_the_oldest_first);
    tcase_add_test(tc, key_survives_sigkill_with_the_state_file);
    suite_add_tcase(s, tc);
    return check_run(s);
}
