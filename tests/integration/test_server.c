/* Integration tests: the real binary on --port 0, driven by many
 * concurrent clients (libcurl multi and raw sockets). */
#include <check.h>
#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check_run.h"
#include "harness.h"

static struct srv srv;

/* ---- 200 keep-alive clients x 10 requests, through libcurl multi ---- */

enum { CLIENTS = 200, PER_CLIENT = 10, TOTAL = CLIENTS * PER_CLIENT };

struct client {
    CURL *easy;
    int done;
    char body[128];
    size_t len;
};

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    struct client *c = arg;
    size_t n = size * nmemb;
    if (c->len + n < sizeof(c->body)) {
        memcpy(c->body + c->len, data, n);
        c->len += n;
        c->body[c->len] = 0;
    }
    return n;
}

/* Runs the load; counts[n] tells how often N was seen. Returns the number
 * of requests that broke the per-connection order. */
static int run_clients(int port, int *counts)
{
    static struct client cl[CLIENTS];
    static long long last_n[65536]; /* by local port: N must grow along a connection */
    memset(last_n, 0, sizeof(last_n));
    char url[64];
    int disorder = 0, finished = 0;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/access", port);
    CURLM *multi = curl_multi_init();
    for (int i = 0; i < CLIENTS; i++) {
        cl[i] = (struct client){.easy = curl_easy_init()};
        curl_easy_setopt(cl[i].easy, CURLOPT_URL, url);
        curl_easy_setopt(cl[i].easy, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(cl[i].easy, CURLOPT_WRITEDATA, &cl[i]);
        curl_easy_setopt(cl[i].easy, CURLOPT_PRIVATE, &cl[i]);
        curl_easy_setopt(cl[i].easy, CURLOPT_TIMEOUT, 60L);
        curl_multi_add_handle(multi, cl[i].easy);
    }
    long long end = now_ms() + 120000;
    while (finished < TOTAL && now_ms() < end) {
        int running, left;
        curl_multi_perform(multi, &running);
        curl_multi_poll(multi, NULL, 0, 100, NULL);
        CURLMsg *m;
        while ((m = curl_multi_info_read(multi, &left))) {
            struct client *c;
            long status = 0, lport = 0;
            curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&c);
            curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &status);
            curl_easy_getinfo(m->easy_handle, CURLINFO_LOCAL_PORT, &lport);
            ck_assert_msg(m->data.result == CURLE_OK && status == 200, "curl %d, status %ld",
                          m->data.result, status);
            long long n;
            ck_assert_int_eq(sscanf(c->body, "Resource accessed %lld times.", &n), 1);
            if (n >= 1 && n <= TOTAL)
                counts[n]++;
            if (n <= last_n[lport & 0xffff])
                disorder++;
            last_n[lport & 0xffff] = n;
            c->len = 0;
            finished++;
            curl_multi_remove_handle(multi, c->easy);
            if (++c->done < PER_CLIENT)
                curl_multi_add_handle(multi, c->easy);
        }
    }
    for (int i = 0; i < CLIENTS; i++)
        curl_easy_cleanup(cl[i].easy);
    curl_multi_cleanup(multi);
    ck_assert_int_eq(finished, TOTAL);
    return disorder;
}

START_TEST(every_n_exactly_once_under_load)
{
    static int counts[TOTAL + 1];
    memset(counts, 0, sizeof(counts));
    srv_start(&srv, "--delay-ms", "1", NULL);
    ck_assert_int_eq(run_clients(srv.port, counts), 0);
    for (int n = 1; n <= TOTAL; n++)
        ck_assert_msg(counts[n] == 1, "N=%d seen %d times", n, counts[n]);
    ck_assert_int_eq(stat_value(srv.port, "counter"), TOTAL);
    ck_assert_int_eq(stat_value(srv.port, "lock.acquisitions"), TOTAL);
    /* Keep-alive: one connection per client, not one per request. */
    ck_assert_int_le(stat_value(srv.port, "connections.accepted"), CLIENTS + 10);
    ck_assert_int_eq(srv_stop(&srv, SIGTERM), 0);
}
END_TEST

/* The negative control: without the lock, concurrent updates are lost, so
 * the exactness test above can fail. */
START_TEST(no_lock_loses_updates)
{
    static int counts[TOTAL + 1];
    memset(counts, 0, sizeof(counts));
    srv_start(&srv, "--delay-ms", "1", "--no-lock", NULL);
    run_clients(srv.port, counts);
    long long counter = stat_value(srv.port, "counter");
    ck_assert_int_lt(counter, TOTAL / 2);
    ck_assert_int_eq(srv_stop(&srv, SIGTERM), 0);
}
END_TEST

/* ---- order of arrival ---- */

START_TEST(grants_follow_arrival_order)
{
    enum { N = 40 };
    static struct reader rd[N + 1];
    srv_start(&srv, "--delay-ms", "10", NULL);
    for (int i = 0; i <= N; i++) {
        rd[i].fd = tcp_connect(srv.port);
        rd[i].len = 0;
    }
    for (int i = 0; i <= N; i++) {
        send_get_access(rd[i].fd);
        /* Arrival order is what the server saw: wait until it has it. */
        ck_assert(wait_stat(srv.port, "requests.access", i + 1, 10000));
        usleep(5000); /* pacing: requests 5 ms apart, as clients would */
    }
    for (int i = 0; i <= N; i++) {
        struct resp r;
        ck_assert_int_eq(read_response(&rd[i], &r, 30000), 0);
        ck_assert_int_eq(access_n(&r), i + 1);
        close(rd[i].fd);
    }
    ck_assert_int_eq(srv_stop(&srv, SIGTERM), 0);
}
END_TEST

/* ---- clients that hang up while queued ---- */

START_TEST(hangups_leave_the_queue)
{
    enum { Q = 10 };
    struct reader *rd = calloc(Q + 1, sizeof(*rd));
    /* The whole queue forms and half of it leaves inside the first
     * section, however loaded the machine. */
    srv_start(&srv, "--delay-ms", "2500", NULL);
    for (int i = 0; i <= Q; i++) { /* 0 holds the lock, 1..10 queue */
        rd[i].fd = tcp_connect(srv.port);
        send_get_access(rd[i].fd);
        ck_assert(wait_stat(srv.port, "requests.access", i + 1, 10000));
    }
    ck_assert_int_eq(stat_value(srv.port, "lock.waiters"), Q);
    for (int i = 2; i <= Q; i += 2) /* 2, 4, 6, 8, 10 leave */
        close(rd[i].fd);
    ck_assert(wait_stat(srv.port, "lock.cancellations", 5, 5000));
    ck_assert_int_eq(stat_value(srv.port, "lock.waiters"), 5);
    ck_assert_int_eq(stat_value(srv.port, "counter"), 0); /* the holder is still at work */
    long long want = 1;
    for (int i = 0; i <= Q; i += (i == 0 ? 1 : 2)) { /* 0, then survivors 1, 3, 5, 7, 9 */
        struct resp r;
        ck_assert_int_eq(read_response(&rd[i], &r, 30000), 0);
        ck_assert_int_eq(access_n(&r), want++);
        close(rd[i].fd);
    }
    struct resp r;
    ck_assert_int_eq(http_get(srv.port, "/access", &r), 0);
    ck_assert_int_eq(access_n(&r), 7);
    ck_assert_int_eq(stat_value(srv.port, "lock.locked"), 0);
    ck_assert_int_eq(stat_value(srv.port, "lock.cancellations"), 5);
    ck_assert_int_eq(srv_stop(&srv, SIGTERM), 0);
    free(rd);
}
END_TEST

/* ---- timeouts and shedding ---- */

START_TEST(lock_timeout_answers_503)
{
    srv_start(&srv, "--delay-ms", "5000", "--lock-timeout-ms", "200", NULL);
    struct reader holder = {.fd = tcp_connect(srv.port)};
    send_get_access(holder.fd);
    ck_assert(wait_stat(srv.port, "lock.locked", 1, 5000));
    long long t0 = now_ms();
    struct resp r;
    ck_assert_int_eq(http_get(srv.port, "/access", &r), 0);
    long long took = now_ms() - t0;
    ck_assert_int_eq(r.status, 503);
    ck_assert(has_header(&r, "\r\nRetry-After: "));
    ck_assert_int_ge(took, 200);
    ck_assert_int_lt(took, 4000); /* near its deadline, not after the holder */
    ck_assert_int_eq(stat_value(srv.port, "lock.timeouts"), 1);
    ck_assert_int_eq(read_response(&holder, &r, 10000), 0);
    ck_assert_int_eq(access_n(&r), 1); /* the timed-out request changed nothing */
    ck_assert_int_eq(stat_value(srv.port, "counter"), 1);
    close(holder.fd);
    ck_assert_int_eq(srv_stop(&srv, SIGTERM), 0);
}
END_TEST

START_TEST(full_queue_answers_503_at_once)
{
    srv_start(&srv, "--delay-ms", "6000", "--max-waiters", "1", NULL);
    struct reader a = {.fd = tcp_connect(srv.port)}, b = {.fd = tcp_connect(srv.port)};
    send_get_access(a.fd);
    ck_assert(wait_stat(srv.port, "lock.locked", 1, 5000));
    send_get_access(b.fd);
    ck_assert(wait_stat(srv.port, "lock.waiters", 1, 5000));
    long long t0 = now_ms();
    struct resp r;
    ck_assert_int_eq(http_get(srv.port, "/access", &r), 0);
    ck_assert_int_eq(r.status, 503);
    ck_assert(has_header(&r, "\r\nRetry-After: "));
    ck_assert_int_lt(now_ms() - t0, 4000); /* at once, not after a hold */
    ck_assert_int_eq(stat_value(srv.port, "lock.shed"), 1);
    close(a.fd);
    close(b.fd);
    ck_assert_int_eq(srv_stop(&srv, SIGINT), 0);
}
END_TEST

/* ---- pipelining, HTTP/1.0 and Connection: close ---- */

START_TEST(pipelined_replies_in_order)
{
    enum { P = 50 };
    /* All P in one write: the server reads them together. */
    static const char get_access[] = "GET /access HTTP/1.1\r\nHost: t\r\n\r\n";
    static struct reader rd;
    static char reqs[P * sizeof(get_access)];
    srv_start(&srv, "--delay-ms", "0", NULL);
    size_t len = 0;
    for (int i = 0; i < P; i++) {
        memcpy(reqs + len, get_access, sizeof(get_access) - 1);
        len += sizeof(get_access) - 1;
    }
    rd.fd = tcp_connect(srv.port);
    rd.len = 0;
    send_all(rd.fd, reqs, len);
    for (int i = 1; i <= P; i++) {
        struct resp r;
        ck_assert_int_eq(read_response(&rd, &r, 10000), 0);
        ck_assert_int_eq(access_n(&r), i);
        ck_assert(!has_header(&r, "Connection: close"));
    }
    close(rd.fd);
    ck_assert_int_eq(stat_value(srv.port, "connections.accepted"), 2); /* one for /stats */
    ck_assert_int_eq(srv_stop(&srv, SIGTERM), 0);
}
END_TEST

static void expect_close_after(const char *request, bool keep_alive_expected)
{
    static struct reader rd;
    struct resp r;
    rd.fd = tcp_connect(srv.port);
    rd.len = 0;
    send_all(rd.fd, request, strlen(request));
    ck_assert_int_eq(read_response(&rd, &r, 10000), 0);
    ck_assert_int_eq(r.status, 200);
    if (keep_alive_expected) {
        send_get_access(rd.fd); /* still open */
        ck_assert_int_eq(read_response(&rd, &r, 10000), 0);
        ck_assert_int_eq(r.status, 200);
    } else {
        ck_assert(has_header(&r, "\r\nConnection: close"));
        ck_assert(wait_closed(rd.fd, 10000));
    }
    close(rd.fd);
}

START_TEST(http10_and_connection_close)
{
    srv_start(&srv, "--delay-ms", "0", NULL);
    expect_close_after("GET /access HTTP/1.0\r\n\r\n", false);
    expect_close_after("GET /access HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", false);
    expect_close_after("GET /access HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", true);
    ck_assert_int_eq(srv_stop(&srv, SIGTERM), 0);
}
END_TEST

/* ---- routes ---- */

START_TEST(unknown_path_and_wrong_method)
{
    static struct reader rd;
    struct resp r;
    srv_start(&srv, "--delay-ms", "0", NULL);
    ck_assert_int_eq(http_get(srv.port, "/nope", &r), 0);
    ck_assert_int_eq(r.status, 404);
    rd.fd = tcp_connect(srv.port);
    rd.len = 0;
    const char post[] = "POST /access HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello";
    send_all(rd.fd, post, sizeof(post) - 1);
    ck_assert_int_eq(read_response(&rd, &r, 10000), 0);
    ck_assert_int_eq(r.status, 405);
    ck_assert(has_header(&r, "\r\nAllow: GET, HEAD\r\n"));
    close(rd.fd);
    ck_assert_int_eq(http_get(srv.port, "/stats", &r), 0);
    ck_assert(has_header(&r, "\r\nContent-Type: application/json"));
    ck_assert(has_header(&r, "\r\nDate: "));
    ck_assert(has_header(&r, "\r\nServer: turnstile"));
    ck_assert_int_eq(stat_value(srv.port, "counter"), 0); /* neither touched it */
    ck_assert_int_eq(srv_stop(&srv, SIGTERM), 0);
}
END_TEST

/* ---- graceful stop ---- */

START_TEST(sigterm_finishes_queued_requests)
{
    enum { Q = 10 };
    static struct reader rd[Q];
    /* The first section outlasts the queueing and the SIGTERM, so the
     * first reply too is made while draining. */
    srv_start(&srv, "--delay-ms", "1000", NULL);
    for (int i = 0; i < Q; i++) {
        rd[i].fd = tcp_connect(srv.port);
        rd[i].len = 0;
        send_get_access(rd[i].fd);
    }
    ck_assert(wait_stat(srv.port, "requests.access", Q, 10000));
    int idle = tcp_connect(srv.port); /* an idle keep-alive client */
    kill(srv.pid, SIGTERM);
    for (int i = 0; i < Q; i++) {
        struct resp r;
        ck_assert_int_eq(read_response(&rd[i], &r, 30000), 0);
        ck_assert_int_eq(r.status, 200);
        ck_assert(has_header(&r, "\r\nConnection: close"));
        close(rd[i].fd);
    }
    ck_assert(wait_closed(idle, 10000));
    close(idle);
    ck_assert_int_eq(srv_wait(&srv, 30000), 0);
}
END_TEST

/* ---- out of coroutine stacks ---- */

/* With its address space capped, the server cannot map a stack for every
 * connection: the ones it cannot serve get 503 at once, and it goes on.
 * (Not under ASan, whose shadow memory needs the address space.) */
/* A request that may meet a 503 first: with several loops, the one that
 * takes it may have no stack (or no memory to watch the socket) while the
 * others hold the address space. It goes on: a retry lands elsewhere.
 * Every refusal is a 503, never a close without a word. */
static void access_until_served(struct resp *r)
{
    long long end = now_ms() + 20000;
    do
        ck_assert_int_eq(http_get(srv.port, "/access", r), 0);
    while (r->status == 503 && now_ms() < end);
    ck_assert_int_eq(r->status, 200);
}

START_TEST(no_stack_answers_503_and_goes_on)
{
#if defined(__SANITIZE_ADDRESS__)
    return;
#endif
    enum { N = 2000 };
    static int fds[N];
    srv_as_limit_mib = 100;
    srv_start(&srv, "--delay-ms", "0", NULL);
    srv_as_limit_mib = 0;
    for (int i = 0; i < N; i++)
        fds[i] = tcp_connect(srv.port);
    /* Far past the capacity some are refused at once: a 503 and a close.
     * The others wait for their request, so nothing arrives on them. */
    ck_assert_int_gt(poll_readable(fds, N, 20000), 0);
    int refused = 0;
    for (int i = 0; i < N; i++) {
        static struct reader rd;
        struct resp r;
        rd.fd = fds[i];
        rd.len = 0;
        if (read_response(&rd, &r, 0) == 0) {
            ck_assert_int_eq(r.status, 503);
            refused++;
        }
        close(fds[i]);
    }
    ck_assert_int_lt(refused, N);
    long long active = -1, counted = -1, end = now_ms() + 10000;
    while (!(stat_try(srv.port, "connections.active", &active) && active == 1) && now_ms() < end)
        nanosleep(&(struct timespec){0, 2 * 1000000}, NULL); /* no event to wait on */
    ck_assert_int_eq(active, 1);                             /* only the /stats one */
    /* Refusals may still have been on their way when we looked. */
    while (!stat_try(srv.port, "connections.refused", &counted) && now_ms() < end)
        nanosleep(&(struct timespec){0, 2 * 1000000}, NULL);
    ck_assert_int_ge(counted, refused);
    ck_assert_int_lt(counted, N);
    struct resp r;
    access_until_served(&r);
    ck_assert_int_eq(access_n(&r), 1);
    ck_assert_int_eq(srv_stop(&srv, SIGTERM), 0);
}
END_TEST

/* ---- the command line ---- */

START_TEST(help_lists_every_flag)
{
    static char out[16384], err[4096];
    ck_assert_int_eq(run_binary(10000, out, sizeof(out), err, sizeof(err), "--help", NULL), 0);
    const char *flags[] = {"--bind",
                           "--port",
                           "--delay-ms",
                           "--jitter-ms",
                           "--lock-timeout-ms",
                           "--max-waiters",
                           "--header-timeout-ms",
                           "--keepalive-timeout-ms",
                           "--max-connections",
                           "--config",
                           "--help",
                           "--version",
                           "--no-lock"};
    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
        ck_assert_msg(strstr(out, flags[i]), "--help does not mention %s", flags[i]);
    ck_assert_int_eq(run_binary(10000, out, sizeof(out), err, sizeof(err), "--version", NULL), 0);
    ck_assert(strncmp(out, "turnstile ", 10) == 0);
}
END_TEST

START_TEST(bad_flags_exit_2)
{
    static char out[4096], err[4096];
    const char *bad[][2] = {{"--bogus", NULL},
                            {"--port", "x"},
                            {"--delay-ms", "-1"},
                            {"--port", "70000"},
                            {"extra", NULL}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_int_eq(
            run_binary(10000, out, sizeof(out), err, sizeof(err), bad[i][0], bad[i][1], NULL), 2);
        ck_assert_msg(strncmp(err, "turnstile: ", 11) == 0, "stderr: %s", err);
        ck_assert_msg(strchr(err, '\n') == err + strlen(err) - 1, "not one line: %s", err);
    }
}
END_TEST

START_TEST(port_in_use_exits_1)
{
    static char out[4096], err[4096];
    char port[16];
    srv_start(&srv, NULL);
    snprintf(port, sizeof(port), "%d", srv.port);
    ck_assert_int_eq(run_binary(10000, out, sizeof(out), err, sizeof(err), "--port", port, NULL),
                     1);
    char want[128];
    snprintf(want, sizeof(want),
             "turnstile: cannot listen on 127.0.0.1:%s: Address already in use\n", port);
    ck_assert_str_eq(err, want);
    ck_assert_int_eq(srv_stop(&srv, SIGTERM), 0);
}
END_TEST

/* A failed test must not leave its server running. */
static void teardown(void)
{
    if (srv.pid > 0)
        srv_stop(&srv, SIGKILL);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    Suite *s = suite_create("server");
    TCase *tc = tcase_create("server");
    tcase_set_timeout(tc, 240);
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_add_test(tc, every_n_exactly_once_under_load);
    tcase_add_test(tc, no_lock_loses_updates);
    tcase_add_test(tc, grants_follow_arrival_order);
    tcase_add_test(tc, hangups_leave_the_queue);
    tcase_add_test(tc, lock_timeout_answers_503);
    tcase_add_test(tc, full_queue_answers_503_at_once);
    tcase_add_test(tc, pipelined_replies_in_order);
    tcase_add_test(tc, http10_and_connection_close);
    tcase_add_test(tc, unknown_path_and_wrong_method);
    tcase_add_test(tc, sigterm_finishes_queued_requests);
    tcase_add_test(tc, no_stack_answers_503_and_goes_on);
    tcase_add_test(tc, help_lists_every_flag);
    tcase_add_test(tc, bad_flags_exit_2);
    tcase_add_test(tc, port_in_use_exits_1);
    suite_add_tcase(s, tc);
    int status = check_run(s);
    curl_global_cleanup();
    return status;
}
