/* Unit tests for server/dashboard.c: the page and its promises (one
 * self-contained document with its CSS and script inlined, no URL but its own routes,
 * a Content-Security-Policy), and the /events stream driven through a fake
 * struct handler_stream: an event at once, then one per pause, each the
 * /stats document of that moment; the stream ends when a write fails or a
 * pause says so; the largest /stats document still fits an event. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "check_run.h"
#include "dashboard.h"
#include "resource.h"
#include "server_fixture.h"

static struct fixture fx;

enum { MAX_EVENTS = 8, EVENT_MAX = 16384 };

/* What the stream did through the fake connection. */
static struct {
    char events[MAX_EVENTS][EVENT_MAX];
    size_t len[MAX_EVENTS];
    int writes, pauses;
    int pauses_allowed; /* pause() says go on this many times */
    int fail_write;     /* the write with this number (1-based) fails; 0: none */
    uint64_t timeout_ms[MAX_EVENTS];
    int64_t pause_us[MAX_EVENTS];
} fake;

static int fake_write(void *conn, const char *buf, size_t len, uint64_t timeout_ms)
{
    (void)conn;
    int i = fake.writes++;
    if (i < MAX_EVENTS && len < EVENT_MAX) {
        memcpy(fake.events[i], buf, len);
        fake.events[i][len] = '\0';
        fake.len[i] = len;
        fake.timeout_ms[i] = timeout_ms;
    }
    return fake.writes == fake.fail_write ? -EPIPE : 0;
}

static bool fake_pause(void *conn, int64_t us)
{
    (void)conn;
    int i = fake.pauses++;
    if (i < MAX_EVENTS)
        fake.pause_us[i] = us;
    fx.res.counter++; /* so each event shows a new value */
    return fake.pauses <= fake.pauses_allowed;
}

static void setup(void)
{
    fixture_init(&fx, &(struct resource_settings){.use_lock = true});
    memset(&fake, 0, sizeof(fake));
}

static void teardown(void)
{
    fixture_fini(&fx);
}

/* Runs the /events stream to its end against the fake connection. */
static void run_stream(void)
{
    struct handler_reply out;
    char buf[64];
    dashboard_events(&fx.hctx, NULL, &out, buf, sizeof(buf));
    ck_assert_ptr_nonnull(out.stream);
    struct handler_stream s = {.write = fake_write, .pause = fake_pause, .conn = &fake};
    out.stream(&fx.hctx, &s);
}

/* ---- the page ---- */

START_TEST(page_is_one_self_contained_document)
{
    struct handler_reply out;
    char buf[64];
    dashboard_page(&fx.hctx, NULL, &out, buf, sizeof(buf));
    ck_assert_int_eq(out.status, 200);
    ck_assert_str_eq(out.content_type, "text/html; charset=utf-8");
    ck_assert_ptr_null(out.stream);
    ck_assert_ptr_null(out.owned);
    ck_assert_uint_eq(strlen(out.body), out.body_len);
    const char head[] = "<!doctype html>\n", tail[] = "</html>\n";
    ck_assert_int_eq(strncmp(out.body, head, sizeof(head) - 1), 0);
    ck_assert_str_eq(out.body + out.body_len - (sizeof(tail) - 1), tail);
    /* Self-contained: the CSS and the script are inlined (embed_page.py). */
    ck_assert_ptr_null(strstr(out.body, "<script src"));
    ck_assert_ptr_null(strstr(out.body, "stylesheet"));
    ck_assert_ptr_nonnull(strstr(out.body, "<style>"));
    /* No URL but its own routes: nothing with a scheme or from another host. */
    ck_assert_ptr_null(strstr(out.body, "://"));
    ck_assert_ptr_null(strstr(out.body, "'//"));
    ck_assert_ptr_nonnull(strstr(out.body, "'/events'"));
    ck_assert_ptr_nonnull(strstr(out.body, "'/stats'"));
    ck_assert_ptr_nonnull(strstr(out.body, "'/access'"));
    /* The browser is told to refuse anything else. */
    ck_assert_ptr_nonnull(
        strstr(out.extra_headers, "\r\nContent-Security-Policy: default-src 'none';"));
    ck_assert_ptr_nonnull(strstr(out.extra_headers, "connect-src 'self'"));
    size_t n = strlen(out.extra_headers);
    ck_assert_str_eq(out.extra_headers + n - 2, "\r\n");
}
END_TEST

START_TEST(events_reply_is_a_stream)
{
    struct handler_reply out;
    char buf[64];
    dashboard_events(&fx.hctx, NULL, &out, buf, sizeof(buf));
    ck_assert_int_eq(out.status, 200);
    ck_assert_str_eq(out.content_type, "text/event-stream");
    ck_assert_str_eq(out.extra_headers, "Cache-Control: no-store\r\n");
    ck_assert_uint_eq(out.body_len, 0);
    ck_assert_ptr_nonnull(out.stream);
}
END_TEST

/* ---- the stream ---- */

/* One event: "data: " + the /stats document (one line) + a blank line. */
static void assert_event(int i, const char *prefix)
{
    const char *e = fake.events[i];
    size_t plen = strlen(prefix);
    ck_assert_msg(strncmp(e, prefix, plen) == 0, "event %d: %.40s", i, e);
    ck_assert_int_eq(e[plen], '{');
    ck_assert_str_eq(e + fake.len[i] - 3, "}\n\n");
    ck_assert_ptr_eq(strchr(e + plen, '\n'), e + fake.len[i] - 2); /* one data line */
    ck_assert_uint_gt(fake.timeout_ms[i], 0);
}

static unsigned long long counter_in(int i)
{
    const char *c = strstr(fake.events[i], "{\"counter\": ");
    ck_assert_ptr_nonnull(c);
    return strtoull(c + 12, NULL, 10);
}

START_TEST(an_event_at_once_then_one_per_pause)
{
    fake.pauses_allowed = 2;
    run_stream();
    ck_assert_int_eq(fake.writes, 3);
    ck_assert_int_eq(fake.pauses, 3);       /* the third said stop */
    assert_event(0, "retry: 1000\ndata: "); /* the reconnect delay, once */
    assert_event(1, "data: ");
    assert_event(2, "data: ");
    for (int i = 0; i < 3; i++)
        ck_assert_uint_eq(counter_in(i), (unsigned long long)i); /* live values */
    ck_assert_int_gt(fake.pause_us[0], 0);
    ck_assert_int_eq(fake.pause_us[1], fake.pause_us[0]);
}
END_TEST

START_TEST(a_failed_write_ends_the_stream)
{
    fake.pauses_allowed = 100;
    fake.fail_write = 2;
    run_stream();
    ck_assert_int_eq(fake.writes, 2);
    ck_assert_int_eq(fake.pauses, 1); /* no pause after the failed write */
}
END_TEST

START_TEST(a_pause_that_says_stop_ends_the_stream)
{
    run_stream();
    ck_assert_int_eq(fake.writes, 1);
    ck_assert_int_eq(fake.pauses, 1);
}
END_TEST

/* Every number at 20 digits, the whole matrix, a full ring of grants: the
 * event buffer still holds the document, or a long-running server's
 * dashboard would go blank. */
START_TEST(the_largest_document_fits_an_event)
{
    fixture_fill_max(&fx);
    run_stream();
    ck_assert_int_eq(fake.writes, 1);
    ck_assert_uint_gt(fake.len[0], 4000);
    assert_event(0, "retry: 1000\ndata: ");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("dashboard");
    TCase *tc = tcase_create("dashboard");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, page_is_one_self_contained_document);
    tcase_add_test(tc, events_reply_is_a_stream);
    tcase_add_test(tc, an_event_at_once_then_one_per_pause);
    tcase_add_test(tc, a_failed_write_ends_the_stream);
    tcase_add_test(tc, a_pause_that_says_stop_ends_the_stream);
    tcase_add_test(tc, the_largest_document_fits_an_event);
    suite_add_tcase(s, tc);
    return check_run(s);
}
