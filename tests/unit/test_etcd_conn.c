/* Unit tests for server/cluster/etcd_conn.c: one connection to etcd
 * against a scripted fake gateway on a loopback socket of ours
 * (fake_gateway.h), so the layer TLS will sit in is tested without etcd:
 * the request's bytes, replies whole, chunked, cut at every byte,
 * truncated, malformed, oversized, never sent, or followed by bytes nobody
 * asked for; keep-alive and its limits; connecting and moving on
 * through the endpoints. Waits are deadlines, never sleeps. */
#include <check.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_run.h"
#include "cluster/etcd_conn.h"
#include "dead_port.h"
#include "fake_gateway.h"
#include "loop.h"
#include "ms.h"
#include "run_task.h"

static int port; /* the fake gateway's */

#define SCRIPT(s, piece, close_after) fake_gateway_script(s, sizeof(s) - 1, piece, close_after)

/* ---- a scenario on a loop, with a connection to the fake ---- */

static struct loop loop;
static struct etcd_endpoints eps;
static struct etcd_conn conn;

static void (*scenario)(void); /* what run() runs */

static void scenario_then_close(void)
{
    scenario();
    etcd_conn_close(&conn); /* its watch belongs to this coroutine */
}

/* Runs fn in a coroutine on a fresh loop; eps is the fake (after a dead
 * endpoint, with dead_first). */
static void run(void (*fn)(void), bool dead_first)
{
    char list[96];
    port = fake_gateway_start();
    ck_assert_int_gt(port, 0);
    snprintf(list, sizeof(list), "http://127.0.0.1:%d,http://127.0.0.1:%d",
             dead_first ? dead_port() : port, port);
    ck_assert_int_eq(etcd_endpoints_parse(&eps, list), 0);
    etcd_conn_init(&conn);
    ck_assert_int_eq(loop_init(&loop, 0, 16), 0);
    scenario = fn;
    run_task_until_done(&loop, scenario_then_close);
    etcd_conn_free(&conn);
    ck_assert_uint_eq(loop.pool.nlive, 0);
    loop_fini(&loop);
    fake_gateway_stop();
}

/* An exchange on the connection, opened first if it is not fit. */
static int exchange(const char *body)
{
    if (!etcd_conn_fit(&conn)) {
        int rc = etcd_conn_open(&conn, &eps, ms_from_now(2000));
        if (rc < 0)
            return rc;
    }
    int rc = etcd_conn_exchange(&conn, "/v3/kv/range", body, strlen(body), ms_from_now(2000));
    etcd_conn_settle(&conn, &eps, rc);
    return rc;
}

static void assert_body(const char *want)
{
    ck_assert_uint_eq(conn.body_len, strlen(want));
    ck_assert_mem_eq(conn.body, want, conn.body_len);
}

/* ---- the tests ---- */

static const char ok_reply[] = "HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\n{\"a\":12}";

static void request_scenario(void)
{
    SCRIPT(ok_reply, 0, false);
    ck_assert_int_eq(exchange("{\"key\":\"Zm9v\"}"), 0);
    ck_assert_int_eq(conn.status, 200);
    ck_assert(conn.complete);
    assert_body("{\"a\":12}");
    struct fake_gateway_seen seen;
    fake_gateway_seen(&seen);
    ck_assert_ptr_nonnull(strstr(seen.request, "POST /v3/kv/range HTTP/1.1\r\n"));
    ck_assert_ptr_nonnull(strstr(seen.request, "\r\nContent-Type: application/json\r\n"));
    ck_assert_ptr_nonnull(strstr(seen.request, "\r\nContent-Length: 14\r\n\r\n{\"key\":\"Zm9v\"}"));
    char host[64];
    snprintf(host, sizeof(host), "\r\nHost: 127.0.0.1:%d\r\n", port);
    ck_assert_ptr_nonnull(strstr(seen.request, host));
    /* Kept alive: the next exchange goes on the same connection. */
    ck_assert(etcd_conn_fit(&conn));
    ck_assert_int_eq(exchange("{}"), 0);
    ck_assert_uint_eq(eps.connects, 1);
}

START_TEST(request_bytes_and_keep_alive)
{
    struct fake_gateway_seen seen;
    run(request_scenario, false);
    fake_gateway_seen(&seen);
    ck_assert_int_eq(seen.accepted, 1);
    ck_assert_int_eq(seen.requests, 2);
}
END_TEST

/* The same replies whole and cut at every byte: the parser takes any cut. */
static void chunked_scenario(void)
{
    static const char chunked[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                  "5\r\n{\"hea\r\n"
                                  "16\r\nder\":{\"revision\":\"7\"},\r\n"
                                  "c\r\n\"count\":\"3\"}\r\n0\r\n\r\n";
    for (size_t piece = 1; piece <= sizeof(chunked); piece += sizeof(chunked) - 1) {
        SCRIPT(chunked, piece, false);
        ck_assert_int_eq(exchange("{}"), 0);
        assert_body("{\"header\":{\"revision\":\"7\"},\"count\":\"3\"}");
        SCRIPT(ok_reply, piece, false);
        ck_assert_int_eq(exchange("{}"), 0);
        assert_body("{\"a\":12}");
    }
    ck_assert_uint_eq(eps.connects, 1); /* each ended where its framing said */
}

START_TEST(chunked_and_cut_at_every_byte)
{
    run(chunked_scenario, false);
}
END_TEST

/* A body without a length runs to the end of the connection: whole at
 * EOF, and the connection is not kept. */
static void until_eof_scenario(void)
{
    static const char reply[] = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{\"b\":1}";
    SCRIPT(reply, 3, true);
    ck_assert_int_eq(exchange("{}"), 0);
    assert_body("{\"b\":1}");
    ck_assert(!etcd_conn_fit(&conn));
    ck_assert_int_eq(conn.fd, -1); /* settled: closed */
}

START_TEST(a_body_to_the_end_of_the_connection)
{
    run(until_eof_scenario, false);
}
END_TEST

static void truncated_scenario(void)
{
    static const char cut[] = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"header\":";
    static const char cut_chunk[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                    "10\r\n{\"hea";
    static const char cut_head[] = "HTTP/1.1 200 OK\r\nContent-Len";
    SCRIPT(cut, 0, true);
    ck_assert_int_eq(exchange("{}"), -ECONNRESET);
    ck_assert_int_eq(conn.fd, -1);
    SCRIPT(cut_chunk, 1, true);
    ck_assert_int_eq(exchange("{}"), -ECONNRESET);
    SCRIPT(cut_head, 0, true);
    ck_assert_int_eq(exchange("{}"), -ECONNRESET);
    ck_assert_uint_eq(eps.connects, 3);
}

START_TEST(truncated_replies_are_econnreset)
{
    run(truncated_scenario, false);
}
END_TEST

static void malformed_scenario(void)
{
    static const char garbage[] = "garbage\r\n\r\n";
    static const char bad_chunk[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                    "zz\r\n{}\r\n0\r\n\r\n";
    static const char huge[] = "HTTP/1.1 200 OK\r\nContent-Length: 999999999999\r\n\r\n{";
    SCRIPT(garbage, 0, true);
    ck_assert_int_eq(exchange("{}"), -EIO);
    SCRIPT(bad_chunk, 0, true);
    ck_assert_int_eq(exchange("{}"), -EIO);
    /* Past ETCD_MAX_REPLY: refused from its head, before any of it is read. */
    SCRIPT(huge, 0, true);
    ck_assert_int_eq(exchange("{}"), -EMSGSIZE);
    ck_assert_int_eq(conn.fd, -1);
    ck_assert_uint_eq(conn.body_len, 0);
}

START_TEST(malformed_and_oversized_replies)
{
    run(malformed_scenario, false);
}
END_TEST

/* Bytes after a reply were never asked for: the connection is not reused,
 * or they would be taken for the next reply. */
static void stray_scenario(void)
{
    static const char two[] = "HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\n{\"a\":12}"
                              "HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\n{\"a\":13}";
    SCRIPT(two, 0, false);
    ck_assert_int_eq(exchange("{}"), 0);
    assert_body("{\"a\":12}");
    ck_assert(conn.stale);
    ck_assert_int_eq(conn.fd, -1);
    ck_assert_int_eq(exchange("{}"), 0);
    assert_body("{\"a\":12}");
    ck_assert_uint_eq(eps.connects, 2);
}

START_TEST(stray_bytes_end_keep_alive)
{
    run(stray_scenario, false);
}
END_TEST

/* etcd closed the kept-alive connection while it was idle: it is unfit
 * before anything is sent on it. */
static void idle_close_scenario(void)
{
    SCRIPT(ok_reply, 0, true);
    ck_assert_int_eq(exchange("{}"), 0);
    ck_assert_int_ge(conn.fd, 0); /* the reply said nothing of a close */
    int64_t end = ms_from_now(2000);
    while (etcd_conn_fit(&conn) && loop_now_us() < end)
        loop_sleep_us(1000);
    ck_assert(!etcd_conn_fit(&conn));
    ck_assert_int_eq(exchange("{}"), 0);
    ck_assert_uint_eq(eps.connects, 2);
}

START_TEST(an_idle_close_is_seen_before_use)
{
    run(idle_close_scenario, false);
}
END_TEST

/* Silence: the deadline ends the wait, on time; the member that timed out
 * gives way to the next, and the connection is dropped (its late answer
 * would be taken for the next request's). */
static void silent_scenario(void)
{
    fake_gateway_silence();
    ck_assert_int_eq(etcd_conn_open(&conn, &eps, ms_from_now(2000)), 0);
    int64_t t0 = loop_now_us();
    int rc = etcd_conn_exchange(&conn, "/v3/kv/range", "{}", 2, ms_from_now(200));
    ck_assert_int_eq(rc, -ETIMEDOUT);
    ck_assert_int_ge(loop_now_us() - t0, 200000);
    etcd_conn_settle(&conn, &eps, rc);
    ck_assert_int_eq(conn.fd, -1);
    ck_assert_uint_eq(eps.current, 1);
    ck_assert_uint_eq(eps.rotations, 1);
}

START_TEST(silence_times_out_and_moves_on)
{
    run(silent_scenario, false);
}
END_TEST

/* A stream read piece by piece: messages are consumed as they come. */
static void stream_scenario(void)
{
    static const char stream[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                 "6\r\none\ntw\r\n"
                                 "4\r\no\n3\n\r\n";
    SCRIPT(stream, 0, false);
    ck_assert_int_eq(etcd_conn_open(&conn, &eps, ms_from_now(2000)), 0);
    ck_assert_int_eq(etcd_conn_send(&conn, "/v3/watch", "{}", 2, ms_from_now(2000)), 0);
    while (conn.body_len < 10)
        ck_assert_int_eq(etcd_conn_read(&conn, ms_from_now(2000)), 0);
    ck_assert(!conn.complete); /* the stream goes on */
    etcd_conn_consume(&conn, 4);
    assert_body("two\n3\n");
    etcd_conn_consume(&conn, 4);
    assert_body("3\n");
    /* Nothing more comes: a quiet deadline, the stream still open. */
    ck_assert_int_eq(etcd_conn_read(&conn, ms_from_now(50)), -ETIMEDOUT);
    ck_assert_int_ge(conn.fd, 0);
}

START_TEST(a_stream_read_piece_by_piece)
{
    run(stream_scenario, false);
}
END_TEST

/* Nothing sent yet: a dead endpoint gives way to the next at once. */
static void rotate_scenario(void)
{
    SCRIPT(ok_reply, 0, false);
    ck_assert_int_eq(exchange("{}"), 0);
    ck_assert_uint_eq(eps.connect_failures, 1);
    ck_assert_uint_eq(eps.rotations, 1);
    ck_assert_uint_eq(eps.connects, 1);
    ck_assert_uint_eq(eps.current, 1);
    ck_assert_uint_eq(conn.endpoint, 1);
}

START_TEST(a_dead_endpoint_gives_way)
{
    run(rotate_scenario, true);
}
END_TEST

static void all_dead_scenario(void)
{
    char list[64];
    snprintf(list, sizeof(list), "http://127.0.0.1:%d, http://127.0.0.1:%d/", dead_port(),
             dead_port());
    ck_assert_int_eq(etcd_endpoints_parse(&eps, list), 0);
    ck_assert_int_eq(etcd_conn_open(&conn, &eps, ms_from_now(5000)), -ECONNREFUSED);
    ck_assert_uint_eq(eps.connect_failures, 2); /* each tried once */
    ck_assert_int_eq(conn.fd, -1);
}

START_TEST(every_endpoint_dead_is_a_connect_errno)
{
    run(all_dead_scenario, false);
}
END_TEST

/* A stream's bytes and a reset that come together (one edge, which the
 * loop has already taken when the bytes are read): the read after the
 * bytes finds the reset at once. A short read is no proof that the socket
 * is drained, or a watch would wait for ever on a dead connection. */
static void reset_behind_bytes_scenario(void)
{
    static const char stream[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                 "4\r\n{}\n\n\r\n";
    fake_gateway_script_reset(stream, sizeof(stream) - 1);
    ck_assert_int_eq(etcd_conn_open(&conn, &eps, ms_from_now(2000)), 0);
    ck_assert_int_eq(etcd_conn_send(&conn, "/v3/watch", "{}", 2, ms_from_now(2000)), 0);
    /* Blocks the loop until the reset is in: bytes and reset, one edge. */
    struct pollfd p = {.fd = conn.fd, .events = POLLIN | POLLRDHUP};
    while (!(p.revents & (POLLERR | POLLHUP)))
        ck_assert_int_eq(poll(&p, 1, 2000), 1);
    loop_io_clear(&conn.io, LOOP_READ); /* the edge is the loop's to report */
    int rc = 0;
    while (rc == 0 && conn.body_len < 4)
        rc = etcd_conn_read(&conn, ms_from_now(2000));
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(etcd_conn_read(&conn, ms_from_now(2000)), -ECONNRESET);
}

START_TEST(a_reset_behind_the_last_bytes_is_read)
{
    run(reset_behind_bytes_scenario, false);
}
END_TEST

START_TEST(endpoint_lists)
{
    struct etcd_endpoints e;
    ck_assert_int_eq(etcd_endpoints_parse(&e, "http://127.0.0.1:2379"), 0);
    ck_assert_str_eq(e.at[0].host, "127.0.0.1:2379");
    ck_assert_int_eq(etcd_endpoints_parse(&e, "http://[::1]:2379/,http://127.0.0.1:1"), 0);
    ck_assert_uint_eq(e.n, 2);
    ck_assert_str_eq(e.at[0].url, "http://[::1]:2379");
    ck_assert_int_eq(e.at[0].addr.sa.sa_family, AF_INET6);
    /* Moving on wraps, and only from the endpoint that failed. */
    etcd_endpoints_move_on(&e, 0);
    etcd_endpoints_move_on(&e, 0); /* someone already moved past it */
    ck_assert_uint_eq(e.current, 1);
    etcd_endpoints_move_on(&e, 1);
    ck_assert_uint_eq(e.current, 0);
    ck_assert_uint_eq(e.rotations, 2);
    ck_assert(!e.https);
    /* https: all of them, and what the certificate must name. */
    ck_assert_int_eq(etcd_endpoints_parse(&e, "https://127.0.0.1:2379,https://[::1]:2380"), 0);
    ck_assert(e.https);
    ck_assert_str_eq(e.at[0].ip, "127.0.0.1");
    ck_assert_str_eq(e.at[1].ip, "::1");
    ck_assert_str_eq(e.at[1].host, "[::1]:2380");
    const char *bad[] = {"",
                         ",",
                         "127.0.0.1:2379",
                         "https://",
                         "ftp://127.0.0.1:2379",
                         "http://127.0.0.1:2379,https://127.0.0.1:2380",
                         "https://127.0.0.1:2379,http://127.0.0.1:2380",
                         "http://localhost:2379",
                         "http://127.0.0.1",
                         "http://127.0.0.1:0",
                         "http://127.0.0.1:65536",
                         "http://127.0.0.1:2379/v3",
                         "http://1.1.1.1:1,http://1.1.1.1:2,http://1.1.1.1:3,http://1.1.1.1:4,"
                         "http://1.1.1.1:5,http://1.1.1.1:6,http://1.1.1.1:7,http://1.1.1.1:8,"
                         "http://1.1.1.1:9"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(etcd_endpoints_parse(&e, bad[i]) == -EINVAL, "accepted \"%s\"", bad[i]);
}
END_TEST

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    Suite *s = suite_create("etcd_conn");
    TCase *tc = tcase_create("etcd_conn");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, request_bytes_and_keep_alive);
    tcase_add_test(tc, chunked_and_cut_at_every_byte);
    tcase_add_test(tc, a_body_to_the_end_of_the_connection);
    tcase_add_test(tc, truncated_replies_are_econnreset);
    tcase_add_test(tc, malformed_and_oversized_replies);
    tcase_add_test(tc, stray_bytes_end_keep_alive);
    tcase_add_test(tc, an_idle_close_is_seen_before_use);
    tcase_add_test(tc, silence_times_out_and_moves_on);
    tcase_add_test(tc, a_stream_read_piece_by_piece);
    tcase_add_test(tc, a_dead_endpoint_gives_way);
    tcase_add_test(tc, every_endpoint_dead_is_a_connect_errno);
    tcase_add_test(tc, endpoint_lists);
    tcase_add_test(tc, a_reset_behind_the_last_bytes_is_read);
    suite_add_tcase(s, tc);
    return check_run(s);
}
