/* Unit tests for the etcd client (server/cluster/etcd_client.c, with
 * etcd.c's calls and etcd_watch.c) against a scripted fake gateway
 * (fake_gateway.h), no etcd: replies that are not what etcd sends end
 * each call with its errno, counted by kind, and leave the client usable;
 * stray bytes end keep-alive; a txn's results must match its ops; a watch
 * fed nonsense ends; arguments that make no sense are no call at all. */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_run.h"
#include "cluster/etcd.h"
#include "cluster/etcd_watch.h"
#include "etcd_run.h"
#include "fake_gateway.h"
#include "ms.h"

static struct loop loop;
static struct etcd_client client;

/* What the fake sends from now on: raw bytes, or nothing at all. */
static void fake_raw(const char *data, size_t len, bool close_after, bool silent)
{
    if (silent)
        fake_gateway_silence();
    else
        fake_gateway_script(data, len, 0, close_after);
}

static void fake_json(int status, const char *body)
{
    fake_gateway_reply(status, body, strlen(body));
}

#define HEADER "\"header\":{\"revision\":\"7\"}"

static int fake_range(void)
{
    struct etcd_reply r;
    int rc = etcd_range(&client, &(struct etcd_range_req){.key = "k", .key_len = 1}, &r,
                        ms_from_now(1000));
    if (rc < 0)
        ck_assert_ptr_null(r.mem); /* nothing left to free */
    etcd_reply_free(&r);
    return rc;
}

static void bad_reply_scenario(void)
{
    /* A well-formed reply first, in chunks that cut through the JSON. */
    static const char chunked[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                  "5\r\n{\"hea\r\n"
                                  "16\r\nder\":{\"revision\":\"7\"},\r\n"
                                  "c\r\n\"count\":\"3\"}\r\n0\r\n\r\n";
    fake_raw(chunked, sizeof(chunked) - 1, false, false);
    struct etcd_reply r;
    ck_assert_int_eq(etcd_range(&client, &(struct etcd_range_req){.key = "k", .key_len = 1}, &r,
                                ms_from_now(1000)),
                     0);
    ck_assert_int_eq(r.revision, 7);
    ck_assert_int_eq(r.ops[0].count, 3);
    etcd_reply_free(&r);

    fake_raw("garbage\r\n\r\n", 11, true, false);
    ck_assert_int_eq(fake_range(), -EIO);
    fake_json(200, "not json");
    ck_assert_int_eq(fake_range(), -EIO);
    fake_json(200, "[1]");
    ck_assert_int_eq(fake_range(), -EIO);
    fake_json(200, "{}"); /* no header */
    ck_assert_int_eq(fake_range(), -EIO);
    fake_json(200, "{\"header\":{\"revision\":true}}");
    ck_assert_int_eq(fake_range(), -EIO);
    fake_json(200, "{\"header\":{\"revision\":\"7x\"}}");
    ck_assert_int_eq(fake_range(), -EIO);
    fake_json(200, "{" HEADER ",\"kvs\":{}}");
    ck_assert_int_eq(fake_range(), -EIO);
    fake_json(200, "{" HEADER ",\"kvs\":[{\"key\":\"Zm9v=\"}]}"); /* bad base64 */
    ck_assert_int_eq(fake_range(), -EIO);
    fake_json(200, "{" HEADER ",\"kvs\":[{\"key\":\"Zm=v\"}]}");
    ck_assert_int_eq(fake_range(), -EIO);
    fake_json(200, "{" HEADER ",\"kvs\":[{\"key\":\"Zm9v\",\"version\":[]}]}");
    ck_assert_int_eq(fake_range(), -EIO);
    fake_json(200, "{" HEADER ",\"more\":\"yes\"}");
    ck_assert_int_eq(fake_range(), -EIO);

    /* Nested deeper than a coroutine's stack would take: refused, no crash. */
    enum { DEEP = 100000 };
    char *deep = malloc(2 * DEEP);
    memset(deep, '[', DEEP);
    memset(deep + DEEP, ']', DEEP);
    fake_gateway_reply(200, deep, 2 * DEEP);
    free(deep);
    ck_assert_int_eq(fake_range(), -EIO);

    /* Errors: etcd's own shape maps to an errno; anything else is -EIO. */
    fake_json(400, "{\"error\":\"bad\",\"message\":\"etcdserver: bad thing\",\"code\":3}");
    ck_assert_int_eq(fake_range(), -EINVAL);
    ck_assert_str_eq(etcd_last_error(&client), "etcd: etcdserver: bad thing");
    fake_json(503, "{\"error\":\"x\",\"message\":\"etcdserver: no leader\",\"code\":14}");
    ck_assert_int_eq(fake_range(), -EAGAIN);
    fake_json(500, "{\"error\":\"x\",\"message\":\"?\",\"code\":99}");
    ck_assert_int_eq(fake_range(), -EREMOTEIO);
    fake_json(404, "Not Found\n");
    ck_assert_int_eq(fake_range(), -EIO);
    ck_assert_ptr_nonnull(strstr(etcd_last_error(&client), "404"));
    fake_json(200, "{\"error\":{\"grpc_code\":5,\"message\":\"gone\"}}");
    ck_assert_int_eq(fake_range(), -ENOENT);

    /* Cut short, too long, or never answered. */
    static const char cut[] = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"header\":";
    fake_raw(cut, sizeof(cut) - 1, true, false);
    ck_assert_int_eq(fake_range(), -ECONNRESET);
    static const char huge[] = "HTTP/1.1 200 OK\r\nContent-Length: 999999999999\r\n\r\n{";
    fake_raw(huge, sizeof(huge) - 1, true, false);
    ck_assert_int_eq(fake_range(), -EMSGSIZE);
    fake_raw("", 0, false, true);
    int64_t t0 = loop_now_us();
    ck_assert_int_eq(fake_range(), -ETIMEDOUT);
    ck_assert_int_lt(ms_since(t0), 4000);

    ck_assert_uint_eq(client.stats.ok, 1);
    ck_assert_uint_eq(client.stats.errors[ETCD_ERR_BAD_REPLY], 14);
    ck_assert_uint_eq(client.stats.errors[ETCD_ERR_ETCD], 4);
    ck_assert_uint_eq(client.stats.errors[ETCD_ERR_BROKEN], 1);
    ck_assert_uint_eq(client.stats.errors[ETCD_ERR_TIMEOUT], 1);
}

/* A txn's results must match its ops, in number and kind. */
static void bad_txn_scenario(void)
{
    struct etcd_op op = etcd_run_put_op("k", "v", 0);
    struct etcd_txn t = {.success = &op, .nsuccess = 1};
    struct etcd_reply r;
    fake_json(200, "{" HEADER ",\"succeeded\":true,\"responses\":[]}");
    ck_assert_int_eq(etcd_txn(&client, &t, &r, ms_from_now(1000)), -EIO);
    fake_json(200, "{" HEADER ",\"succeeded\":true,\"responses\":[{\"response_range\":{}}]}");
    ck_assert_int_eq(etcd_txn(&client, &t, &r, ms_from_now(1000)), -EIO);
    fake_json(200, "{" HEADER ",\"succeeded\":true,\"responses\":[{\"response_put\":{}}]}");
    ck_assert_int_eq(etcd_txn(&client, &t, &r, ms_from_now(1000)), 0);
    ck_assert(r.succeeded);
    etcd_reply_free(&r);
    /* No "succeeded": the compares failed, and the failure branch is empty. */
    fake_json(200, "{" HEADER "}");
    ck_assert_int_eq(etcd_txn(&client, &t, &r, ms_from_now(1000)), 0);
    ck_assert(!r.succeeded);
    ck_assert_uint_eq(r.nops, 0);
    etcd_reply_free(&r);

    /* Leases: a grant needs an ID and a TTL; a keepalive with none is a
     * lease that is gone. */
    int64_t id;
    fake_json(200, "{" HEADER ",\"TTL\":\"5\"}");
    ck_assert_int_eq(etcd_lease_grant(&client, 5, &id, NULL, ms_from_now(1000)), -EIO);
    fake_json(200, "{\"result\":{" HEADER ",\"ID\":\"9\"}}\n");
    ck_assert_int_eq(etcd_lease_keepalive(&client, 9, NULL, ms_from_now(1000)), -ENOENT);
    fake_json(200, "{" HEADER ",\"ID\":\"9\",\"TTL\":\"5\"}"); /* not wrapped in "result" */
    ck_assert_int_eq(etcd_lease_keepalive(&client, 9, NULL, ms_from_now(1000)), -EIO);
}

/* Bytes after a reply were never asked for: the connection is not reused. */
static void stray_bytes_scenario(void)
{
    static const char two[] = "HTTP/1.1 200 OK\r\nContent-Length: 27\r\n\r\n{" HEADER "}"
                              "HTTP/1.1 200 OK\r\nContent-Length: 27\r\n\r\n{" HEADER "}";
    fake_raw(two, sizeof(two) - 1, false, false);
    ck_assert_int_eq(fake_range(), 0);
    ck_assert_int_eq(fake_range(), 0);
    ck_assert_uint_eq(client.endpoints.connects, 2);
    /* One reply each: the kept-alive connection serves every call. */
    fake_raw(two, sizeof(two) / 2, false, false);
    ck_assert_int_eq(fake_range(), 0);
    ck_assert_int_eq(fake_range(), 0);
    ck_assert_int_eq(fake_range(), 0);
    ck_assert_uint_eq(client.endpoints.connects, 3);
}

static void bad_watch_scenario(void)
{
    static const char head[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    char buf[512];
    struct etcd_watch w;
    struct etcd_event ev;
    /* Created, then a line that is not JSON, in a stream left open. */
    const char *lines = "{\"result\":{" HEADER ",\"created\":true}}\nnonsense\n";
    int n = snprintf(buf, sizeof(buf), "%s%zx\r\n%s\r\n", head, strlen(lines), lines);
    fake_raw(buf, (size_t)n, false, false);
    ck_assert_int_eq(etcd_watch_open(&client, &w, "k", 1, false, ms_from_now(1000)), 0);
    ck_assert_int_eq(w.revision, 7);
    ck_assert_int_eq(etcd_watch_next(&w, &ev, ms_from_now(1000)), -EIO);
    ck_assert_int_eq(etcd_watch_next(&w, &ev, ms_from_now(1000)), -EIO); /* it stays ended */
    etcd_watch_close(&w);

    /* An unknown event type; then the stream ends. */
    lines = "{\"result\":{" HEADER ",\"created\":true}}\n"
            "{\"result\":{" HEADER ",\"events\":[{\"type\":\"MOVE\",\"kv\":{}}]}}\n";
    n = snprintf(buf, sizeof(buf), "%s%zx\r\n%s\r\n0\r\n\r\n", head, strlen(lines), lines);
    fake_raw(buf, (size_t)n, true, false);
    ck_assert_int_eq(etcd_watch_open(&client, &w, "k", 1, false, ms_from_now(1000)), 0);
    ck_assert_int_eq(etcd_watch_next(&w, &ev, ms_from_now(1000)), -EIO);
    etcd_watch_close(&w);
    lines = "{\"result\":{" HEADER ",\"created\":true}}\n";
    n = snprintf(buf, sizeof(buf), "%s%zx\r\n%s\r\n0\r\n\r\n", head, strlen(lines), lines);
    fake_raw(buf, (size_t)n, true, false);
    ck_assert_int_eq(etcd_watch_open(&client, &w, "k", 1, false, ms_from_now(1000)), 0);
    ck_assert_int_eq(etcd_watch_next(&w, &ev, ms_from_now(1000)), -EPIPE);
    etcd_watch_close(&w);

    /* Not created, cancelled for compaction, or refused: no watch. */
    lines = "{\"result\":{" HEADER "}}\n";
    n = snprintf(buf, sizeof(buf), "%s%zx\r\n%s\r\n", head, strlen(lines), lines);
    fake_raw(buf, (size_t)n, false, false);
    ck_assert_int_eq(etcd_watch_open(&client, &w, "k", 1, false, ms_from_now(1000)), -EIO);
    lines = "{\"result\":{" HEADER ",\"canceled\":true,\"compact_revision\":\"3\"}}\n";
    n = snprintf(buf, sizeof(buf), "%s%zx\r\n%s\r\n", head, strlen(lines), lines);
    fake_raw(buf, (size_t)n, false, false);
    ck_assert_int_eq(etcd_watch_open(&client, &w, "k", 1, false, ms_from_now(1000)), -ERANGE);
    fake_json(400, "{\"error\":\"x\",\"message\":\"bad\",\"code\":3}");
    ck_assert_int_eq(etcd_watch_open(&client, &w, "k", 1, false, ms_from_now(1000)), -EINVAL);
    ck_assert_uint_eq(client.stats.watch_errors, 3);
}

START_TEST(malformed_replies_are_errors)
{
    char endpoint[64];
    int port = fake_gateway_start();
    ck_assert_int_gt(port, 0);
    snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%d", port);
    etcd_run(&loop, &client, bad_reply_scenario, endpoint);
    etcd_run(&loop, &client, bad_txn_scenario, endpoint);
    etcd_run(&loop, &client, stray_bytes_scenario, endpoint);
    etcd_run(&loop, &client, bad_watch_scenario, endpoint);
    fake_gateway_stop();
}
END_TEST

static void bad_args_scenario(void)
{
    struct etcd_reply r;
    ck_assert_int_eq(etcd_range(&client, &(struct etcd_range_req){.key = "", .key_len = 0}, &r,
                                ms_from_now(1000)),
                     -EINVAL);
    ck_assert_int_eq(etcd_range(&client,
                                &(struct etcd_range_req){.key = "k", .key_len = 1, .sort_order = 7},
                                &r, ms_from_now(1000)),
                     -EINVAL);
    struct etcd_op op = {.type = 9};
    ck_assert_int_eq(
        etcd_txn(&client, &(struct etcd_txn){.success = &op, .nsuccess = 1}, &r, ms_from_now(1000)),
        -EINVAL);
    ck_assert_int_eq(etcd_lease_grant(&client, 0, &(int64_t){0}, NULL, ms_from_now(1000)), -EINVAL);
    ck_assert_int_eq(etcd_lease_keepalive(&client, 0, NULL, ms_from_now(1000)), -EINVAL);
    ck_assert_uint_eq(client.stats.calls, 0); /* none of them was a call */
    /* A deadline already past fails at once. */
    ck_assert_int_eq(etcd_range(&client, &(struct etcd_range_req){.key = "k", .key_len = 1}, &r,
                                loop_now_us() - 1),
                     -ETIMEDOUT);
}

START_TEST(bad_arguments)
{
    etcd_run(&loop, &client, bad_args_scenario, "http://127.0.0.1:1");
}
END_TEST

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    Suite *s = suite_create("etcd_client");
    TCase *tc = tcase_create("etcd_client");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, malformed_replies_are_errors);
    tcase_add_test(tc, bad_arguments);
    suite_add_tcase(s, tc);
    return check_run(s);
}
