/* Unit tests for server/reply.c: whole responses (keep-alive, close, extra
 * headers, HEAD, 1xx and 204 without a body, a buffer too small), the
 * reason phrases and the per-thread date cache. */
#include <check.h>
#include <string.h>

#include "check_run.h"
#include "reply.h"

/* Replaces the 29-byte Date value with X's after checking its shape. */
static void mask_date(char *s)
{
    char *d = strstr(s, "\r\nDate: ");

    ck_assert_ptr_nonnull(d);
    d += 8;
    ck_assert_msg(d[3] == ',' && d[4] == ' ' && d[7] == ' ' && d[11] == ' ' && d[16] == ' ' &&
                      d[19] == ':' && d[22] == ':' && memcmp(d + 25, " GMT\r\n", 6) == 0,
                  "bad date %.29s", d);
    memset(d, 'X', REPLY_DATE_LEN);
}

START_TEST(reply_keep_alive)
{
    char buf[512];
    struct reply r = {
        .status = 200, .body = "Resource accessed 42 times.", .body_len = 27, .keep_alive = true};
    size_t n = reply_format(buf, sizeof(buf), &r);
    const char *want = "HTTP/1.1 200 OK\r\n"
                       "Date: XXXXXXXXXXXXXXXXXXXXXXXXXXXXX\r\n"
                       "Server: turnstile\r\n"
                       "Content-Type: text/plain; charset=utf-8\r\n"
                       "Content-Length: 27\r\n"
                       "\r\n"
                       "Resource accessed 42 times.";

    ck_assert_uint_eq(n, strlen(want));
    buf[n] = '\0';
    mask_date(buf);
    ck_assert_str_eq(buf, want);
}
END_TEST

/* Replies at a fixed date, whole, against what the wire must carry. */
#define DATE "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
#define NOW  784111777

static const struct formatted {
    struct reply r;
    const char *want;
} formatted[] = {
    /* Closing, with a type of its own and extra headers after the fixed ones. */
    {{.status = 405,
      .content_type = "application/json",
      .body = "{}",
      .body_len = 2,
      .extra_headers = "Allow: GET\r\n",
      .now = NOW},
     "HTTP/1.1 405 Method Not Allowed\r\n" DATE "Server: turnstile\r\n"
     "Content-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n"
     "Allow: GET\r\n\r\n{}"},
    /* No body: no Content-Type, Content-Length 0; HTTP/1.0 is told keep-alive. */
    {{.status = 503,
      .extra_headers = "Retry-After: 1\r\n",
      .keep_alive = true,
      .http10 = true,
      .now = NOW},
     "HTTP/1.1 503 Service Unavailable\r\n" DATE "Server: turnstile\r\n"
     "Content-Length: 0\r\nConnection: keep-alive\r\nRetry-After: 1\r\n\r\n"},
    /* 204: neither Content-Length nor body, whatever the caller passed. */
    {{.status = 204, .body = "x", .body_len = 1, .keep_alive = true, .now = NOW},
     "HTTP/1.1 204 No Content\r\n" DATE "Server: turnstile\r\n"
     "Content-Type: text/plain; charset=utf-8\r\n\r\n"},
    /* HEAD: the GET's headers, Content-Length included, and no body. */
    {{.status = 200,
      .body = "Resource accessed 1 times.",
      .body_len = 26,
      .keep_alive = true,
      .head = true,
      .now = NOW},
     "HTTP/1.1 200 OK\r\n" DATE "Server: turnstile\r\n"
     "Content-Type: text/plain; charset=utf-8\r\nContent-Length: 26\r\n\r\n"},
};

START_TEST(replies_formatted)
{
    char buf[512];
    size_t n = reply_format(buf, sizeof(buf), &formatted[_i].r);

    buf[n] = '\0';
    ck_assert_str_eq(buf, formatted[_i].want);
}
END_TEST

START_TEST(reply_content_length)
{
    static char body[100000], buf[100512];
    struct reply r = {.status = 200, .body = body, .body_len = sizeof(body), .keep_alive = true};

    memset(body, 'b', sizeof(body));
    size_t n = reply_format(buf, sizeof(buf), &r);
    ck_assert_uint_gt(n, sizeof(body));
    buf[n] = '\0';
    ck_assert_ptr_nonnull(strstr(buf, "\r\nContent-Length: 100000\r\n"));
    char *end = strstr(buf, "\r\n\r\n");
    ck_assert_ptr_nonnull(end);
    ck_assert_uint_eq(n - (size_t)(end + 4 - buf), sizeof(body));
    ck_assert_ptr_null(strstr(buf, "Connection:"));
    /* HEAD: same headers, no body. */
    r.head = true;
    size_t h = reply_format(buf, sizeof(buf), &r);
    ck_assert_uint_eq(h, n - sizeof(body));
}
END_TEST

START_TEST(reply_continue)
{
    char buf[256];
    struct reply r = {.status = 100, .body = "x", .body_len = 1, .keep_alive = false};
    size_t n = reply_format(buf, sizeof(buf), &r);

    /* Only the status line: no Date, Content-Length, Connection or body. */
    ck_assert_uint_eq(n, REPLY_CONTINUE_LEN);
    ck_assert(memcmp(buf, REPLY_CONTINUE, n) == 0);
    ck_assert_uint_eq(REPLY_CONTINUE_LEN, strlen("HTTP/1.1 100 Continue\r\n\r\n"));
    r.extra_headers = "X: y\r\n";
    n = reply_format(buf, sizeof(buf), &r);
    buf[n] = '\0';
    ck_assert_str_eq(buf, "HTTP/1.1 100 Continue\r\nX: y\r\n\r\n");
}
END_TEST

START_TEST(reply_cap_too_small)
{
    char buf[256];
    struct reply r = {.status = 404, .body = "Not Found\n", .body_len = 10};
    size_t n = reply_format(buf, sizeof(buf), &r);

    ck_assert_uint_gt(n, 0);
    for (size_t cap = 0; cap < n; cap++)
        ck_assert_uint_eq(reply_format(buf, cap, &r), 0);
    ck_assert_uint_eq(reply_format(buf, n, &r), n);
    r.status = 42;
    ck_assert_uint_eq(reply_format(buf, sizeof(buf), &r), 0);
}
END_TEST

START_TEST(reasons)
{
    ck_assert_str_eq(reply_reason(200), "OK");
    ck_assert_str_eq(reply_reason(408), "Request Timeout");
    ck_assert_str_eq(reply_reason(413), "Content Too Large");
    ck_assert_str_eq(reply_reason(414), "URI Too Long");
    ck_assert_str_eq(reply_reason(431), "Request Header Fields Too Large");
    ck_assert_str_eq(reply_reason(505), "HTTP Version Not Supported");
    ck_assert_str_eq(reply_reason(100), "Continue");
    ck_assert_str_eq(reply_reason(417), "Expectation Failed");
    ck_assert_str_eq(reply_reason(501), "Not Implemented");
    ck_assert_str_eq(reply_reason(299), "");
}
END_TEST

START_TEST(date_cache)
{
    const char *a = reply_date(784111777);
    ck_assert_str_eq(a, "Sun, 06 Nov 1994 08:49:37 GMT");
    ck_assert_uint_eq(strlen(a), REPLY_DATE_LEN);
    ck_assert_ptr_eq(reply_date(784111777), a);
    ck_assert_str_eq(reply_date(784111777), "Sun, 06 Nov 1994 08:49:37 GMT");
    /* A new second rewrites the same buffer. */
    ck_assert_ptr_eq(reply_date(784111778), a);
    ck_assert_str_eq(a, "Sun, 06 Nov 1994 08:49:38 GMT");
    /* Within a second the text is not even rewritten (white-box: scribble
     * on the cache and see it survive). */
    ((char *)a)[0] = '#';
    ck_assert_str_eq(reply_date(784111778), "#un, 06 Nov 1994 08:49:38 GMT");
    ck_assert_str_eq(reply_date(784111779), "Sun, 06 Nov 1994 08:49:39 GMT");
    ck_assert_str_eq(reply_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
    ck_assert_str_eq(reply_date(951782400), "Tue, 29 Feb 2000 00:00:00 GMT");
    ck_assert_str_eq(reply_date(4102444799), "Thu, 31 Dec 2099 23:59:59 GMT");
}
END_TEST

static Suite *reply_suite(void)
{
    Suite *s = suite_create("reply");
    TCase *r = tcase_create("reply");

    tcase_add_test(r, reply_keep_alive);
    tcase_add_loop_test(r, replies_formatted, 0, (int)(sizeof(formatted) / sizeof(formatted[0])));
    tcase_add_test(r, reply_content_length);
    tcase_add_test(r, reply_continue);
    tcase_add_test(r, reply_cap_too_small);
    tcase_add_test(r, reasons);
    tcase_add_test(r, date_cache);
    suite_add_tcase(s, r);
    return s;
}

int main(void)
{
    return check_run(reply_suite());
}
