/* Unit tests for server/route.c: dispatch by path and method (404, 405 with
 * Allow), GET /access through a real resource (the counter, the body, the
 * Server-Timing header, the grants, and each refusal the resource can
 * give), /stats and /metrics documents and their release (the ASan build
 * checks that route_release frees them), the dashboard's two routes,
 * route_may_block, and truncated paths that match nothing.
 *
 * Requests are built by hand, as the parser would leave them. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_run.h"
#include "loop.h"
#include "metrics.h"
#include "resource.h"
#include "route.h"
#include "server_fixture.h"

static struct loop loop;
static struct fixture fx;

struct call {
    struct http_request req;
    struct handler_reply out;
    char buf[ROUTE_BODY_CAP];
    bool done;
    coro_t *co;
};

/* A fresh resource in place of the fixture's: the source and the context
 * still find it. */
static void init_resource(double delay_ms, double lock_timeout_ms, uint64_t max_waiters)
{
    struct resource_settings s = {.delay_ms = delay_ms,
                                  .lock_timeout_ms = lock_timeout_ms,
                                  .max_waiters = max_waiters,
                                  .use_lock = true};
    resource_init(&fx.res, &s);
}

static void setup(void)
{
    ck_assert_int_eq(loop_init(&loop, 0, 8), 0);
    fixture_init(&fx, &(struct resource_settings){.use_lock = true});
}

static void teardown(void)
{
    fixture_fini(&fx);
    loop_fini(&loop);
}

static void request(struct call *c, int method, const char *path)
{
    *c = (struct call){0};
    c->req = (struct http_request){.method = method, .major = 1, .minor = 1, .keep_alive = true};
    c->req.path_len = strlen(path);
    ck_assert_uint_le(c->req.path_len, HTTP_MAX_PATH);
    memcpy(c->req.path, path, c->req.path_len + 1);
}

static void dispatch_main(void *arg)
{
    struct call *c = arg;
    route_dispatch(&fx.hctx, &c->req, &c->out, c->buf, sizeof(c->buf));
    c->done = true;
    c->co = NULL;
}

/* Dispatches in a coroutine of its own (/access may park) and runs the
 * loop until it is answered. */
static void dispatch(struct call *c)
{
    ck_assert_int_eq(loop_spawn(&loop, dispatch_main, c, &c->co), 0);
    ck_assert_int_eq(loop_run(&loop), 0);
    ck_assert(c->done);
    ck_assert_uint_eq(loop.pool.nlive, 0);
}

static void assert_text(const struct handler_reply *r, int status, const char *body)
{
    ck_assert_int_eq(r->status, status);
    ck_assert_str_eq(r->content_type, "text/plain");
    ck_assert_uint_eq(r->body_len, strlen(body));
    ck_assert_mem_eq(r->body, body, r->body_len);
    ck_assert_ptr_null(r->owned);
    ck_assert_ptr_null(r->stream);
    ck_assert(!r->close);
}

/* ---- no route ---- */

START_TEST(unknown_paths_are_404)
{
    static const char *const paths[] = {
        "/nope",    "/access/", "/Access", "/accessx", "/acces",
        "/stats/x", "//",       "",        "/events/", "/metrics.txt",
    };
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        struct call c;
        request(&c, HTTP_GET, paths[i]);
        dispatch(&c);
        assert_text(&c.out, 404, "Not found.\n");
        ck_assert_msg(c.out.route == TALLY_UNKNOWN, "%s: route %d", paths[i], c.out.route);
        ck_assert_ptr_null(c.out.extra_headers);
    }
    ck_assert_uint_eq(fx.res.counter, 0);
    ck_assert_uint_eq(fx.requests.access, 0);
}
END_TEST

START_TEST(known_paths_with_another_method_are_405_with_allow)
{
    static const char *const paths[] = {"/access", "/stats", "/metrics", "/", "/events"};
    static const int methods[] = {HTTP_POST, HTTP_PUT, HTTP_DELETE, HTTP_OPTIONS, HTTP_PATCH};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
        for (size_t m = 0; m < sizeof(methods) / sizeof(methods[0]); m++) {
            struct call c;
            request(&c, methods[m], paths[i]);
            dispatch(&c);
            assert_text(&c.out, 405, "Method not allowed.\n");
            ck_assert_str_eq(c.out.extra_headers, "Allow: GET, HEAD\r\n");
            ck_assert_int_eq(c.out.route, TALLY_UNKNOWN);
        }
    ck_assert_uint_eq(fx.res.counter, 0);
    ck_assert_uint_eq(fx.requests.access, 0);
    ck_assert_uint_eq(fx.res.lock.stats.acquisitions, 0);
}
END_TEST

/* OPTIONS * asks about the server as a whole: 200, no body, and the
 * methods it takes. */
START_TEST(options_asterisk_lists_the_methods)
{
    struct call c;
    request(&c, HTTP_OPTIONS, "*");
    c.req.asterisk = true;
    ck_assert_int_eq(route_refusal(&fx.hctx, &c.req), 0);
    dispatch(&c);
    ck_assert_int_eq(c.out.status, 200);
    ck_assert_uint_eq(c.out.body_len, 0);
    ck_assert_str_eq(c.out.extra_headers, "Allow: GET, HEAD, OPTIONS\r\n");
    ck_assert_int_eq(c.out.route, TALLY_UNKNOWN);
    ck_assert_ptr_null(c.out.owned);
}
END_TEST

/* With --admin-listen the public port routes /access alone: the
 * internals are 404 there, whatever the method, and OPTIONS * still
 * answers. */
START_TEST(access_only_port_hides_the_internals)
{
    static const char *const paths[] = {"/stats", "/metrics", "/", "/events"};
    static const int methods[] = {HTTP_GET, HTTP_HEAD, HTTP_POST};
    fx.hctx.access_only = true;
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
        for (size_t m = 0; m < sizeof(methods) / sizeof(methods[0]); m++) {
            struct call c;
            request(&c, methods[m], paths[i]);
            ck_assert_int_eq(route_refusal(&fx.hctx, &c.req), 404);
            dispatch(&c);
            assert_text(&c.out, 404, "Not found.\n");
            ck_assert_int_eq(c.out.route, TALLY_UNKNOWN);
        }
    struct call c;
    request(&c, HTTP_GET, "/access");
    dispatch(&c);
    ck_assert_int_eq(c.out.status, 200);
    ck_assert_int_eq(c.out.route, TALLY_ACCESS);
    request(&c, HTTP_OPTIONS, "*");
    c.req.asterisk = true;
    dispatch(&c);
    ck_assert_int_eq(c.out.status, 200);
}
END_TEST

/* A path longer than HTTP_MAX_PATH is kept truncated and flagged: its
 * first bytes may spell a route, but it is not that route. */
START_TEST(truncated_path_matches_nothing)
{
    struct call c;
    request(&c, HTTP_GET, "/access");
    c.req.path_truncated = true;
    ck_assert(!route_may_block(&fx.hctx, &c.req));
    dispatch(&c);
    assert_text(&c.out, 404, "Not found.\n");
    ck_assert_int_eq(c.out.route, TALLY_UNKNOWN);
    ck_assert_uint_eq(fx.res.counter, 0);

    request(&c, HTTP_POST, "/stats");
    c.req.path_truncated = true;
    dispatch(&c);
    ck_assert_int_eq(c.out.status, 404); /* not 405: the path is not /stats */
}
END_TEST

/* ---- GET /access ---- */

/* "Server-Timing: lock;dur=W, work;dur=S\r\n" with W and S in ms and three
 * decimals; returns S in microseconds. */
static long server_timing_work_us(const char *h)
{
    unsigned long lw, lf, ww, wf;
    int end = 0;
    ck_assert_ptr_nonnull(h);
    ck_assert_int_eq(sscanf(h, "Server-Timing: lock;dur=%lu.%3lu, work;dur=%lu.%3lu\r\n%n", &lw,
                            &lf, &ww, &wf, &end),
                     4);
    ck_assert_msg(end == (int)strlen(h), "not one whole header line: \"%s\"", h);
    ck_assert_str_eq(h + end - 2, "\r\n");
    return (long)(ww * 1000 + wf);
}

START_TEST(access_moves_the_counter_through_the_resource)
{
    for (uint64_t i = 1; i <= 2; i++) {
        struct call c;
        char want[64];
        request(&c, HTTP_GET, "/access");
        ck_assert(route_may_block(&fx.hctx, &c.req));
        dispatch(&c);
        snprintf(want, sizeof(want), "Resource accessed %llu times.", (unsigned long long)i);
        assert_text(&c.out, 200, want);
        ck_assert_int_eq(c.out.route, TALLY_ACCESS);
        /* The body is built in the caller's buffer, the header after it. */
        ck_assert(c.out.body >= c.buf && c.out.body + c.out.body_len <= c.buf + sizeof(c.buf));
        ck_assert(c.out.extra_headers >= c.out.body + c.out.body_len &&
                  c.out.extra_headers < c.buf + sizeof(c.buf));
        server_timing_work_us(c.out.extra_headers);
        ck_assert_int_ge(c.out.wait_us, 0);
        ck_assert_uint_eq(fx.res.counter, i);
        ck_assert_uint_eq(fx.requests.access, i);
        ck_assert_uint_eq(fx.grants.total, i);
        ck_assert_uint_eq(fx.grants.ring[i - 1].n, i);
    }
    ck_assert_uint_eq(fx.res.lock.stats.acquisitions, 2);
}
END_TEST

START_TEST(access_reports_the_work_in_server_timing)
{
    struct call c;
    init_resource(3, 0, 0);
    request(&c, HTTP_GET, "/access");
    dispatch(&c);
    ck_assert_int_eq(c.out.status, 200);
    ck_assert_int_ge(server_timing_work_us(c.out.extra_headers), 3000);
}
END_TEST

/* The lock busy in a coroutine of its own until the director lets it go. */
static struct fixture_holder holder;

struct busy_case {
    struct call calls[2]; /* the second is the one looked at */
    bool first;           /* the first queues before it (else: no first) */
    bool cancel;          /* cancel the second while it waits */
};

static void with_lock_busy(void *arg)
{
    struct busy_case *b = arg;
    fixture_hold(&holder, &loop, &fx.res.lock);
    for (int i = b->first ? 0 : 1; i < 2; i++)
        ck_assert_int_eq(loop_spawn(&loop, dispatch_main, &b->calls[i], &b->calls[i].co), 0);
    if (b->cancel)
        ck_assert_int_eq(loop_cancel(b->calls[1].co), 0);
    int64_t limit = loop_now_us() + 10 * 1000000;
    while (!b->calls[1].done && loop_now_us() < limit)
        ck_assert_int_eq(loop_sleep_us(1000), 0);
    ck_assert(b->calls[1].done);
    ck_assert_uint_eq(fx.res.counter, 0);
    fixture_release(&holder);
}

static void busy(struct busy_case *b)
{
    request(&b->calls[0], HTTP_GET, "/access");
    request(&b->calls[1], HTTP_GET, "/access");
    ck_assert_int_eq(loop_spawn(&loop, with_lock_busy, b, NULL), 0);
    ck_assert_int_eq(loop_run(&loop), 0);
    ck_assert_uint_eq(loop.pool.nlive, 0);
    ck_assert_int_eq(b->calls[1].out.route, TALLY_ACCESS);
    ck_assert_uint_eq(fx.requests.access, b->first ? 2 : 1); /* refused ones are counted too */
    ck_assert_uint_eq(fx.grants.total, b->first ? 1 : 0);    /* but only a 200 is a grant */
    ck_assert_uint_eq(fx.res.counter, b->first ? 1 : 0);
    if (b->first)
        ck_assert_int_eq(b->calls[0].out.status, 200);
}

START_TEST(access_lock_timeout_is_503_with_retry_after)
{
    static struct busy_case b;
    init_resource(0, 2, 0);
    b = (struct busy_case){0};
    busy(&b);
    assert_text(&b.calls[1].out, 503, "Timed out waiting for the lock.\n");
    ck_assert_str_eq(b.calls[1].out.extra_headers, "Retry-After: 1\r\n");
}
END_TEST

START_TEST(access_queue_full_is_503_with_retry_after)
{
    static struct busy_case b;
    init_resource(0, 0, 1);
    b = (struct busy_case){.first = true};
    busy(&b);
    assert_text(&b.calls[1].out, 503, "Too many requests waiting for the lock.\n");
    ck_assert_str_eq(b.calls[1].out.extra_headers, "Retry-After: 1\r\n");
}
END_TEST

/* The client hung up while queued: no reply at all. */
START_TEST(access_cancelled_while_queued_has_no_reply)
{
    static struct busy_case b;
    b = (struct busy_case){.first = true, .cancel = true};
    busy(&b);
    ck_assert_int_eq(b.calls[1].out.status, 0);
    ck_assert_ptr_null(b.calls[1].out.owned);
}
END_TEST

/* ---- generated documents ---- */

START_TEST(stats_is_a_json_document_to_release)
{
    struct call c;
    fx.res.counter = 4242;
    request(&c, HTTP_GET, "/stats");
    ck_assert(!route_may_block(&fx.hctx, &c.req));
    dispatch(&c);
    ck_assert_int_eq(c.out.status, 200);
    ck_assert_int_eq(c.out.route, TALLY_STATS);
    ck_assert_str_eq(c.out.content_type, "application/json");
    ck_assert_str_eq(c.out.extra_headers, "Cache-Control: no-store\r\n");
    ck_assert_ptr_nonnull(c.out.owned);
    ck_assert_ptr_eq(c.out.body, c.out.owned);
    ck_assert_uint_ge(c.out.body_len, 2);
    ck_assert_uint_le(c.out.body_len, ROUTE_DOC_CAP);
    ck_assert_int_eq(c.out.body[0], '{');
    ck_assert_mem_eq(c.out.body + c.out.body_len - 2, "}\n", 2);
    /* The whole document is stats_json()'s: see test_stats.c for its shape. */
    ck_assert_ptr_nonnull(memmem(c.out.body, c.out.body_len, "\"counter\": 4242,", 16));
    route_release(c.out.owned);
    ck_assert_uint_eq(fx.res.counter, 4242);
}
END_TEST

START_TEST(metrics_is_a_prometheus_document_to_release)
{
    struct call c;
    request(&c, HTTP_GET, "/metrics");
    ck_assert(!route_may_block(&fx.hctx, &c.req));
    dispatch(&c);
    ck_assert_int_eq(c.out.status, 200);
    ck_assert_int_eq(c.out.route, TALLY_METRICS);
    ck_assert_str_eq(c.out.content_type, METRICS_CONTENT_TYPE);
    ck_assert_ptr_eq(c.out.body, c.out.owned);
    const char head[] = "# HELP turnstile_";
    ck_assert_mem_eq(c.out.body, head, sizeof(head) - 1);
    ck_assert_int_eq(c.out.body[c.out.body_len - 1], '\n');
    route_release(c.out.owned);
}
END_TEST

/* Several documents alive at once (pipelined requests whose replies wait
 * to be sent), released in any order: each is freed or kept for reuse,
 * none is lost (the ASan build fails on a leak at exit). */
START_TEST(documents_alive_at_once_are_all_released)
{
    enum { K = 5 };
    struct call c[K];
    for (int i = 0; i < K; i++) {
        request(&c[i], HTTP_GET, i % 2 ? "/metrics" : "/stats");
        dispatch(&c[i]);
        ck_assert_int_eq(c[i].out.status, 200);
        for (int j = 0; j < i; j++)
            ck_assert_ptr_ne(c[i].out.owned, c[j].out.owned); /* not shared while alive */
    }
    for (int i = K; i-- > 0;)
        route_release(c[i].out.owned);
    for (int i = 0; i < 3; i++) { /* and served again after release */
        request(&c[0], HTTP_GET, "/stats");
        dispatch(&c[0]);
        ck_assert_int_eq(c[0].out.status, 200);
        route_release(c[0].out.owned);
    }
    route_release(NULL); /* nothing to give back */
}
END_TEST

/* ---- the dashboard's routes ---- */

START_TEST(dashboard_page_and_event_stream)
{
    struct call c;
    request(&c, HTTP_GET, "/");
    dispatch(&c);
    ck_assert_int_eq(c.out.status, 200);
    ck_assert_int_eq(c.out.route, TALLY_DASHBOARD);
    ck_assert_str_eq(c.out.content_type, "text/html; charset=utf-8");
    ck_assert_uint_gt(c.out.body_len, 0);
    ck_assert_ptr_null(c.out.stream);
    ck_assert_ptr_null(c.out.owned);

    request(&c, HTTP_GET, "/events");
    ck_assert(!route_may_block(&fx.hctx, &c.req));
    dispatch(&c);
    ck_assert_int_eq(c.out.status, 200);
    ck_assert_int_eq(c.out.route, TALLY_EVENTS);
    ck_assert_str_eq(c.out.content_type, "text/event-stream");
    ck_assert_ptr_nonnull(c.out.stream);
    ck_assert_uint_eq(c.out.body_len, 0);
}
END_TEST

/* ---- route_may_block ---- */

START_TEST(only_get_access_may_block)
{
    static const struct {
        int method;
        const char *path;
        bool blocks;
    } cases[] = {
        {HTTP_GET, "/access", true},  {HTTP_POST, "/access", false}, {HTTP_HEAD, "/access", false},
        {HTTP_GET, "/stats", false},  {HTTP_GET, "/metrics", false}, {HTTP_GET, "/", false},
        {HTTP_GET, "/events", false}, {HTTP_GET, "/nope", false},    {HTTP_GET, "/access/", false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct call c;
        request(&c, cases[i].method, cases[i].path);
        ck_assert_msg(route_may_block(&fx.hctx, &c.req) == cases[i].blocks, "%s %s",
                      llhttp_method_name(cases[i].method), cases[i].path);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("route");
    TCase *tc = tcase_create("route");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, unknown_paths_are_404);
    tcase_add_test(tc, known_paths_with_another_method_are_405_with_allow);
    tcase_add_test(tc, options_asterisk_lists_the_methods);
    tcase_add_test(tc, access_only_port_hides_the_internals);
    tcase_add_test(tc, truncated_path_matches_nothing);
    tcase_add_test(tc, access_moves_the_counter_through_the_resource);
    tcase_add_test(tc, access_reports_the_work_in_server_timing);
    tcase_add_test(tc, access_lock_timeout_is_503_with_retry_after);
    tcase_add_test(tc, access_queue_full_is_503_with_retry_after);
    tcase_add_test(tc, access_cancelled_while_queued_has_no_reply);
    tcase_add_test(tc, stats_is_a_json_document_to_release);
    tcase_add_test(tc, metrics_is_a_prometheus_document_to_release);
    tcase_add_test(tc, documents_alive_at_once_are_all_released);
    tcase_add_test(tc, dashboard_page_and_event_stream);
    tcase_add_test(tc, only_get_access_may_block);
    suite_add_tcase(s, tc);
    return check_run(s);
}
