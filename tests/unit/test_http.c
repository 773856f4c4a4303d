/* Unit tests for server/http.c: parsing (one request, pipelining, splits at
 * every byte, each error class and limit, an input that ends at a guard
 * page). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "rng.h"
#include "check_run.h"
#include "http.h"

static struct http_parser P;

/* Feeds s to a fresh parser in one call; returns the bytes consumed. */
static size_t parse_new(const char *s, size_t len)
{
    http_parser_init(&P, NULL);
    return http_parse(&P, s, len);
}

static size_t parse_str(const char *s)
{
    return parse_new(s, strlen(s));
}

/* Feeds s one byte per call, as a slow client would; stops at the first
 * call that ends the request or fails. Returns the bytes consumed. */
static size_t parse_bytewise(struct http_parser *p, const char *s, size_t len)
{
    size_t off = 0;

    while (off < len && !p->complete && !p->error_status) {
        size_t n = http_parse(p, s + off, 1);
        ck_assert_uint_le(n, 1);
        off += n;
        if (n == 0)
            break;
    }
    return off;
}

/* A heap string: prefix, then n copies of c, then suffix. */
static char *build(const char *prefix, char c, size_t n, const char *suffix, size_t *len)
{
    size_t a = strlen(prefix), b = strlen(suffix);
    char *s = malloc(a + n + b + 1);

    ck_assert_ptr_nonnull(s);
    memcpy(s, prefix, a);
    memset(s + a, c, n);
    memcpy(s + a + n, suffix, b + 1);
    *len = a + n + b;
    return s;
}

START_TEST(valid_get)
{
    const char *req = "GET /access HTTP/1.1\r\nHost: localhost\r\nUser-Agent: t\r\n\r\n";

    ck_assert(http_parser_idle((http_parser_init(&P, NULL), &P)));
    ck_assert_uint_eq(http_parse(&P, req, strlen(req)), strlen(req));
    ck_assert(P.complete);
    ck_assert_int_eq(P.error_status, 0);
    ck_assert_int_eq(P.req.method, HTTP_GET);
    ck_assert_str_eq(P.req.path, "/access");
    ck_assert_uint_eq(P.req.path_len, 7);
    ck_assert(!P.req.path_truncated);
    ck_assert_uint_eq(P.req.major, 1);
    ck_assert_uint_eq(P.req.minor, 1);
    ck_assert(P.req.keep_alive);
    ck_assert_uint_eq(P.req.body_bytes, 0);
    /* Complete: nothing more is consumed until http_parser_next(). */
    ck_assert_uint_eq(http_parse(&P, req, strlen(req)), 0);
}
END_TEST

START_TEST(path_without_query)
{
    parse_str("GET /stats?pretty=1&x=/y HTTP/1.1\r\nHost: a\r\n\r\n");
    ck_assert(P.complete);
    ck_assert_str_eq(P.req.path, "/stats");
    parse_str("GET /a#frag HTTP/1.1\r\nHost: a\r\n\r\n");
    ck_assert_str_eq(P.req.path, "/a");
    /* Absolute form (RFC 9112 3.2.2): only the path reaches the routes. */
    parse_str("GET http://example.com:8080/access?q HTTP/1.1\r\nHost: a\r\n\r\n");
    ck_assert(P.complete);
    ck_assert_str_eq(P.req.path, "/access");
    parse_str("GET HTTP://example.com HTTP/1.1\r\nHost: a\r\n\r\n");
    ck_assert_str_eq(P.req.path, "/");
}
END_TEST

START_TEST(http10_keep_alive)
{
    parse_str("GET / HTTP/1.0\r\n\r\n");
    ck_assert(P.complete);
    ck_assert_uint_eq(P.req.minor, 0);
    ck_assert(!P.req.keep_alive);
    parse_str("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    ck_assert(P.complete);
    ck_assert(P.req.keep_alive);
}
END_TEST

START_TEST(connection_close)
{
    parse_str("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    ck_assert(P.complete);
    ck_assert(!P.req.keep_alive);
    /* We do not switch protocols, so an Upgrade request ends the connection. */
    parse_str("GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n");
    ck_assert(P.complete);
    ck_assert(!P.req.keep_alive);
}
END_TEST

START_TEST(pipelined_three)
{
    const char *r[] = {"GET /a HTTP/1.1\r\nHost: x\r\n\r\n",
                       "POST /bb HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nxyz",
                       "GET /ccc HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"};
    const char *paths[] = {"/a", "/bb", "/ccc"};
    char buf[256] = "";
    size_t off = 0, total;

    for (int i = 0; i < 3; i++)
        strcat(buf, r[i]);
    total = strlen(buf);
    http_parser_init(&P, NULL);
    for (int i = 0; i < 3; i++) {
        size_t n = http_parse(&P, buf + off, total - off);
        ck_assert_uint_eq(n, strlen(r[i]));
        ck_assert(P.complete);
        ck_assert_str_eq(P.req.path, paths[i]);
        ck_assert(P.req.keep_alive == (i < 2));
        off += n;
        http_parser_next(&P);
        ck_assert(http_parser_idle(&P));
    }
    ck_assert_uint_eq(off, total);
}
END_TEST

START_TEST(split_every_byte)
{
    const char *req = "POST /access?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\n"
                      "bodyGET /";
    size_t len = strlen(req) - 5; /* the request without the next one's start */

    http_parser_init(&P, NULL);
    ck_assert(http_parser_idle(&P));
    ck_assert_uint_eq(http_parse(&P, req, 1), 1);
    ck_assert(!http_parser_idle(&P));
    ck_assert_uint_eq(parse_bytewise(&P, req + 1, strlen(req) - 1), len - 1);
    ck_assert(P.complete);
    ck_assert_str_eq(P.req.path, "/access");
    ck_assert_uint_eq(P.req.body_bytes, 4);
    ck_assert(P.req.keep_alive);
}
END_TEST

START_TEST(split_at_each_point)
{
    /* Two calls, cut at every offset: same result as one call. */
    const char *req = "GET /stats?a HTTP/1.1\r\nHost: a\r\nX-Long: some value here\r\n\r\n";
    size_t len = strlen(req);

    for (size_t cut = 0; cut <= len; cut++) {
        http_parser_init(&P, NULL);
        size_t a = http_parse(&P, req, cut);
        ck_assert_uint_eq(a, cut);
        ck_assert_uint_eq(http_parse(&P, req + a, len - a), len - a);
        ck_assert_msg(P.complete, "cut at %zu", cut);
        ck_assert_str_eq(P.req.path, "/stats");
    }
}
END_TEST

START_TEST(random_splits)
{
    /* Three pipelined requests cut into random pieces: each comes out whole,
     * in order, with the same consumed counts as when read at once. */
    const char *buf = "GET /a?x HTTP/1.1\r\nHost: a\r\n\r\n"
                      "POST /b HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n0123456789"
                      "POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "3\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nT: 1\r\n\r\n";
    const char *paths[] = {"/a", "/b", "/c"};
    const uint64_t bodies[] = {0, 10, 19};
    size_t len = strlen(buf);

    for (int iter = 0; iter < 2000; iter++) {
        size_t off = 0;
        int done = 0;
        http_parser_init(&P, NULL);
        while (off < len) {
            size_t chunk = 1 + (size_t)(rng() % 13);
            chunk = chunk < len - off ? chunk : len - off;
            size_t n = http_parse(&P, buf + off, chunk);
            ck_assert_int_eq(P.error_status, 0);
            ck_assert(n == chunk || P.complete);
            off += n;
            if (P.complete) {
                ck_assert_int_lt(done, 3);
                ck_assert_str_eq(P.req.path, paths[done]);
                ck_assert_uint_eq(P.req.body_bytes, bodies[done]);
                done++;
                http_parser_next(&P);
            }
        }
        ck_assert_int_eq(done, 3);
    }
}
END_TEST

START_TEST(content_length_body)
{
    const char *req =
        "POST /access HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhello worldGET";
    size_t n = parse_str(req);

    ck_assert_uint_eq(n, strlen(req) - 3);
    ck_assert(P.complete);
    ck_assert_int_eq(P.req.method, HTTP_POST);
    ck_assert_uint_eq(P.req.body_bytes, 11);
}
END_TEST

START_TEST(chunked_body)
{
    /* A Host among the trailers is discarded with them: no second Host. */
    const char *req = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nHost: b\r\n\r\nGET";
    size_t n = parse_str(req);

    ck_assert_uint_eq(n, strlen(req) - 3);
    ck_assert(P.complete);
    ck_assert_int_eq(P.error_status, 0);
    ck_assert_uint_eq(P.req.body_bytes, 11);
    ck_assert(P.req.keep_alive);
}
END_TEST

/* Parses req (a whole request) once in one call and once a byte at a time;
 * both must complete with the same request. Leaves P as the bytewise run
 * left it. */
static void parse_both_ways(const char *req)
{
    struct http_request one;

    parse_str(req);
    ck_assert_msg(P.complete, "not complete (status %d): %s", P.error_status, req);
    one = P.req;
    http_parser_init(&P, NULL);
    ck_assert_uint_eq(parse_bytewise(&P, req, strlen(req)), strlen(req));
    ck_assert_msg(P.complete, "not complete bytewise (status %d): %s", P.error_status, req);
    ck_assert_str_eq(P.req.path, one.path);
    ck_assert_int_eq(P.req.method, one.method);
    ck_assert_uint_eq(P.req.minor, one.minor);
    ck_assert(P.req.keep_alive == one.keep_alive);
    ck_assert(P.req.expect_continue == one.expect_continue);
    ck_assert_uint_eq(P.req.body_bytes, one.body_bytes);
}

START_TEST(head_method)
{
    /* HEAD parses like GET (RFC 9110 9.1): a request, not a response, so
     * llhttp has no body to skip. */
    parse_both_ways("HEAD /access HTTP/1.1\r\nHost: a\r\n\r\n");
    ck_assert_int_eq(P.req.method, HTTP_HEAD);
    ck_assert_str_eq(P.req.path, "/access");
    ck_assert(P.req.keep_alive);
    /* Pipelined behind a GET, in order. */
    const char *two = "HEAD /a HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\n\r\n";
    size_t n = parse_str(two);
    ck_assert_int_eq(P.req.method, HTTP_HEAD);
    http_parser_next(&P);
    ck_assert_uint_eq(http_parse(&P, two + n, strlen(two) - n), strlen(two) - n);
    ck_assert_int_eq(P.req.method, HTTP_GET);
    ck_assert_str_eq(P.req.path, "/b");
}
END_TEST

START_TEST(higher_minor_version)
{
    /* RFC 9110 2.5: HTTP/1.2 and up are served as HTTP/1.1. */
    parse_both_ways("GET /access HTTP/1.2\r\nHost: a\r\n\r\n");
    ck_assert_uint_eq(P.req.major, 1);
    ck_assert_uint_eq(P.req.minor, 1);
    ck_assert(P.req.keep_alive);
    parse_both_ways("GET / HTTP/1.9\r\nHost: a\r\nConnection: close\r\n\r\n");
    ck_assert_uint_eq(P.req.minor, 1);
    ck_assert(!P.req.keep_alive);
    /* ...and like HTTP/1.1 they need a Host. */
    parse_str("GET / HTTP/1.2\r\n\r\n");
    ck_assert_int_eq(P.error_status, 400);
}
END_TEST

START_TEST(http10_host_optional)
{
    parse_both_ways("GET /access HTTP/1.0\r\n\r\n");
    ck_assert_uint_eq(P.req.minor, 0);
    parse_both_ways("GET /access HTTP/1.0\r\nHost: example.com:80\r\n\r\n");
    ck_assert_uint_eq(P.req.minor, 0);
}
END_TEST

START_TEST(valid_hosts)
{
    static const char *const hosts[] = {
        "a",
        "localhost:8080",
        "a:",
        "1.2.3.4",
        "1.2.3.4:80",
        "[::1]",
        "[::1]:8080",
        "[::ffff:192.0.2.1]",
        "[2001:db8::a:b:c:d]",
        "xn--bcher-kva.example",
        "a-b_c~d.e",
        "a%41",
        "!$&'()*+,;=",
        "A",
        "a  ",
        "a\t",
        "[::1] ",
        "a:80 ",
        "999.999.999.999", /* a valid reg-name, like nginx */
    };
    char req[128];

    for (size_t i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++) {
        snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", hosts[i]);
        parse_both_ways(req);
    }
    /* The name is case-insensitive; no other field is mistaken for it. */
    parse_both_ways("GET / HTTP/1.1\r\nHOST: a\r\nHosts: a b\r\nX-Host: a/b\r\nHos: x y\r\n\r\n");
}
END_TEST

START_TEST(expect_continue)
{
    const char *req = "POST /access HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n"
                      "Content-Length: 3\r\n\r\n";
    size_t head = strlen(req);

    /* After the head alone the client waits for 100 Continue. */
    for (int bytewise = 0; bytewise < 2; bytewise++) {
        http_parser_init(&P, NULL);
        ck_assert(!http_parser_continue_due(&P));
        if (bytewise)
            ck_assert_uint_eq(parse_bytewise(&P, req, head), head);
        else
            ck_assert_uint_eq(http_parse(&P, req, head), head);
        ck_assert(P.head_done);
        ck_assert(!P.complete);
        ck_assert(P.req.expect_continue);
        ck_assert_str_eq(P.req.path, "/access");
        ck_assert_int_eq(P.req.method, HTTP_POST);
        ck_assert(http_parser_continue_due(&P));
        http_parser_continue_sent(&P);
        ck_assert(!http_parser_continue_due(&P));
        ck_assert_uint_eq(http_parse(&P, "abc", 3), 3);
        ck_assert(P.complete);
        ck_assert_uint_eq(P.req.body_bytes, 3);
        ck_assert(P.req.expect_continue);
        http_parser_next(&P); /* the next request starts afresh */
        ck_assert(!P.req.expect_continue);
        ck_assert(!http_parser_continue_due(&P));
    }
    /* The token is case-insensitive, empty list members mean nothing. */
    parse_both_ways("POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\n"
                    "Transfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n");
    ck_assert(P.req.expect_continue);
    parse_both_ways("POST / HTTP/1.1\r\nHost: a\r\nExpect: , 100-CONTINUE ,\r\n"
                    "Content-Length: 1\r\n\r\nx");
    ck_assert(P.req.expect_continue);
    /* No body, nothing to wait for. */
    parse_both_ways("GET / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n");
    ck_assert(!P.req.expect_continue);
    parse_both_ways("POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n"
                    "Content-Length: 0\r\n\r\n");
    ck_assert(!P.req.expect_continue);
    /* An HTTP/1.0 client's 100-continue is ignored (RFC 9110 10.1.1). */
    parse_both_ways("POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx");
    ck_assert(!P.req.expect_continue);
    /* An empty Expect expects nothing. */
    parse_both_ways("GET / HTTP/1.1\r\nHost: a\r\nExpect:\r\n\r\n");
    ck_assert(!P.req.expect_continue);
}
END_TEST

START_TEST(expect_refused_before_body)
{
    /* A body the client would send after 100 Continue is refused by its
     * Content-Length alone, so the client never sends it. */
    parse_str("POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n"
              "Content-Length: 2097152\r\n\r\n");
    ck_assert_int_eq(P.error_status, 413);
    ck_assert(!http_parser_continue_due(&P));
}
END_TEST

START_TEST(chunked_spellings)
{
    parse_both_ways("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n0\r\n\r\n");
    parse_both_ways("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:  CHUNKED \r\n\r\n0\r\n\r\n");
    parse_both_ways("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ,chunked\r\n\r\n"
                    "1\r\nx\r\n0\r\n\r\n");
    ck_assert_uint_eq(P.req.body_bytes, 1);
}
END_TEST

/* Origin-form targets and the path the routes see. */
static const struct {
    const char *target, *path;
} paths[] = {
    {"/access", "/access"},
    {"/%61ccess", "/access"},
    {"/%61%63%63%65%73%73", "/access"},
    {"/./access", "/access"},
    {"/x/../access", "/access"},
    {"/a/b/../../access", "/access"},
    {"/a/./b/../../access?x=/../..", "/access"},
    {"/%2e/access", "/access"},
    {"/a/%2E%2e/access", "/access"},
    {"/access/.", "/access/"},
    {"/access/..", "/"},
    {"/a/b/..", "/a/"},
    {"/a/..?q", "/"},
    {"/.", "/"},
    {"//../access", "/access"},
    {"/a//b", "/a//b"}, /* empty segments are kept (nginx merges them) */
    {"/...", "/..."},
    {"/.a/..b/a.", "/.a/..b/a."},
    {"/a%2Fb", "/a%2Fb"}, /* an encoded '/' stays encoded: no route has one */
    {"/a%2fb", "/a%2Fb"}, /* with upper-case hex (RFC 3986 6.2.2.1) */
    {"/%2e%2faccess", "/.%2Faccess"},
    {"/%7Euser/%41-%5a_%30", "/~user/A-Z_0"},
    {"/a%20b%3f", "/a%20b%3F"},
    {"/%25%32%46", "/%252F"}, /* decoded once, never twice */
    {"/a#b/../..", "/a"},
    {"http://h/./access", "/access"},
    {"HTTPS://h:1/x/../access?q", "/access"},
    {"http://h", "/"},
    {"http://h?q", "/"},
    {"http://h/%61", "/a"},
    {"*", "*"},
    {"ftp://h/./a", "ftp://h/./a"}, /* not a form we serve: kept, 404 */
};

START_TEST(path_normalised)
{
    char req[256];

    snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: a\r\n\r\n", paths[_i].target);
    parse_both_ways(req);
    ck_assert_str_eq(P.req.path, paths[_i].path);
    ck_assert_uint_eq(P.req.path_len, strlen(paths[_i].path));
    ck_assert(!P.req.path_truncated);
}
END_TEST

START_TEST(path_normalised_long)
{
    /* 300 bytes of "/." normalise to "/access": the limit is on the
     * normalised path, not the bytes sent. */
    char req[1024] = "GET ", *s;
    size_t len;

    for (int i = 0; i < 150; i++)
        strcat(req, "/.");
    strcat(req, "/access HTTP/1.1\r\nHost: a\r\n\r\n");
    parse_both_ways(req);
    ck_assert_str_eq(P.req.path, "/access");
    ck_assert(!P.req.path_truncated);
    /* Past HTTP_MAX_PATH before the dot segments: truncated, no route. */
    s = build("GET /", 'p', 300, "/../access HTTP/1.1\r\nHost: a\r\n\r\n", &len);
    parse_both_ways(s);
    ck_assert(P.req.path_truncated);
    free(s);
}
END_TEST

START_TEST(split_new_fields)
{
    /* Every new check at once, cut at every offset into two calls. */
    const char *req = "POST /a/./b/../%61ccess?q HTTP/1.2\r\nhost: [::1]:8080 \r\n"
                      "expect: 100-Continue\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "3\r\nabc\r\n0\r\n\r\n";
    size_t len = strlen(req);

    for (size_t cut = 0; cut <= len; cut++) {
        http_parser_init(&P, NULL);
        size_t a = http_parse(&P, req, cut);
        ck_assert_uint_eq(a, cut);
        ck_assert_uint_eq(http_parse(&P, req + a, len - a), len - a);
        ck_assert_msg(P.complete, "cut at %zu: status %d", cut, P.error_status);
        ck_assert_str_eq(P.req.path, "/a/access");
        ck_assert_uint_eq(P.req.minor, 1);
        ck_assert(P.req.expect_continue);
        ck_assert_uint_eq(P.req.body_bytes, 3);
    }
}
END_TEST

START_TEST(verdict_at_line_end)
{
    /* HTTP/0.9 and unknown methods are answered when the request line
     * ends, not at the header deadline: nothing more is needed. */
    const char *line[] = {"GET /access\r", "FROB /access HTTP/1.1\r\n"};
    const int status[] = {400, 501};

    for (int i = 0; i < 2; i++) {
        size_t len = strlen(line[i]);
        http_parser_init(&P, NULL);
        ck_assert_uint_eq(parse_bytewise(&P, line[i], len - 1), len - 1);
        ck_assert_int_eq(P.error_status, 0);
        ck_assert_uint_eq(http_parse(&P, line[i] + len - 1, 1), 1);
        ck_assert_int_eq(P.error_status, status[i]);
    }
}
END_TEST

START_TEST(unknown_method_limits)
{
    /* The line read past an unknown method is held to the same limits. */
    size_t len;
    char *s = build("FROB /", 'a', 9000, " HTTP/1.1\r\n", &len);

    for (int bytewise = 0; bytewise < 2; bytewise++) {
        http_parser_init(&P, NULL);
        if (bytewise)
            parse_bytewise(&P, s, len);
        else
            http_parse(&P, s, len);
        ck_assert_int_eq(P.error_status, 414);
    }
    free(s);
    s = build("FROB /", 'a', 8190, " HTTP/1.1\r\n", &len);
    parse_new(s, len);
    ck_assert_int_eq(P.error_status, 431);
    free(s);
    s = build("FROB /", 'a', 8000, " HTTP/1.1\r\n", &len);
    parse_new(s, len);
    ck_assert_int_eq(P.error_status, 501);
    free(s);
}
END_TEST

/* sizeof, not strlen: some requests hold a NUL byte. */
#define R(s, status)                                                                               \
    {                                                                                              \
        s, sizeof(s) - 1, status                                                                   \
    }
static const struct {
    const char *req;
    size_t len;
    int status;
} bad[] = {
    R("hello world\r\n\r\n", 400),
    R("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 400), /* a TLS hello */
    R("GET / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    R("GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nA", 400),
    R("GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400),
    R("GET / HTTP/1.1\nHost: a\r\n\r\n", 400), /* bare LF: request line */
    R("GET / HTTP/1.1\r\nHost: a\n\r\n", 400), /* bare LF: header value */
    R("GET / HTTP/1.1\r\nHost: a\r\n\n", 400), /* bare LF: empty line */
    R("GET / HTTP/1.1\n\n", 400),              /* bare LF only */
    R("\nGET / HTTP/1.1\r\n\r\n", 400),        /* bare LF before the request */
    /* The bare LF comes first, so it wins over the 413 found later in the
     * same read. */
    R("POST / HTTP/1.1\nContent-Length: 2097152\r\n\r\n", 400),
    R("GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n", 400), /* bare CR */
    R("GET / HTTP/1.1\r\nX: a\0b\r\n\r\n", 400),    /* NUL in a value */
    R("GET / HTTP/1.1\r\nX\0: ab\r\n\r\n", 400),    /* NUL in a name */
    R("GET /\0 HTTP/1.1\r\n\r\n", 400),             /* NUL in the target */
    R("GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n", 400), /* obs-fold */
    R("GET / HTTP/1.1\r\nX:\r\n\tb\r\n\r\n", 400),  /* obs-fold, empty first line */
    R("GET / HTTP/1.1\r\n Host: a\r\n\r\n", 400),   /* space after start line */
    R("GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400),   /* space before colon */
    R("GET / HTTP/1.1\r\nHo st: a\r\n\r\n", 400),   /* space in a name */
    R("GET / HTTP/1.1\r\n: a\r\n\r\n", 400),        /* empty name */
    R("GET / HTTP/1.1 \r\n\r\n", 400),
    R("GET / HTTP/1.1\r\nX-Caf\xc3\xa9: a\r\n\r\n", 400),
    /* The request line: one SP between its parts, "HTTP/" and a version. */
    R("GET /\r\n\r\n", 400),     /* HTTP/0.9 simple request */
    R("GET /access\r", 400),     /* HTTP/0.9: refused at the line's end */
    R("GET / foo\r\n", 400),     /* no version */
    R("GET  / HTTP/1.1\r", 400), /* two spaces */
    R("GET /  HTTP/1.1\r", 400),
    R("GET / RTSP/1.0\r\n\r\n", 400),
    R("SOURCE / ICE/1.0\r\n\r\n", 400),
    R("GET / HTTP/a.1\r\n\r\n", 400),
    R("GET / HTTP/11.1\r\n\r\n", 400),
    R("GET / HTTP/1.1x\r\n\r\n", 400),
    R("GET / HTTP/1.10\r\n\r\n", 400),
    R("GET / HTTP/2.0\r\n\r\n", 505),
    R("GET / HTTP/0.9\r\n\r\n", 505),
    R("GET / HTTP/3.0\r\n\r\n", 505),
    R("GET / HTTP/0.0\r\n\r\n", 505),
    R("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505), /* the HTTP/2 preface */
    /* Methods llhttp does not know: 501 once the line is known to be well
     * formed, without waiting for the headers (RFC 9110 9.1). */
    R("FOO / HTTP/1.1\r\n", 501),
    R("FROB /access HTTP/1.1\r\nHost: a\r\n\r\n", 501),
    R("get /access HTTP/1.1\r\n", 501),  /* methods are case-sensitive */
    R("GETX /access HTTP/1.1\r\n", 501), /* llhttp stops after GET */
    R("DESCRIBE / HTTP/1.1\r\n", 501),   /* llhttp knows it for RTSP only */
    R("M-SEARCH2 * HTTP/1.1\r\n", 501),
    R("FROB / HTTP/2.0\r\n", 505),
    R("FROB /\r\n", 400),
    R("FROB  / HTTP/1.1\r\n", 400),
    R("FROB / HTTP/1.1\n", 400),
    R("FR\x01OB / HTTP/1.1\r\n", 400),
    R("FROB /a\x7f HTTP/1.1\r\n", 400),
    R("FROB / RTSP/1.0\r\n", 400),
    R("DESCRIBE / RTSP/1.x\r\n", 400),
    /* Host (RFC 9112 3.2): exactly one, and a valid one, on HTTP/1.1. */
    R("GET / HTTP/1.1\r\n\r\n", 400),
    R("GET / HTTP/1.1\r\nX: a\r\n\r\n", 400),
    R("GET http://a/ HTTP/1.1\r\n\r\n", 400),
    R("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n", 400),
    R("GET / HTTP/1.1\r\nHost: a\r\nhOST: b\r\n", 400),
    R("GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n", 400),
    R("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400),
    R("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400),
    R("GET / HTTP/1.0\r\nHost: a/b\r\n\r\n", 400),
    R("GET / HTTP/1.1\r\nHost:\r\n\r\n", 400),
    R("GET / HTTP/1.1\r\nHost:  \t \r\n\r\n", 400),
    R("GET / HTTP/1.1\r\nHost: :80\r\n\r\n", 400),
    R("GET / HTTP/1.1\r\nHost: a:8x\r\n\r\n", 400),
    R("GET / HTTP/1.1\r\nHost: a:80:80\r\n\r\n", 400),
    R("GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", 400),
    R("GET / HTTP/1.1\r\nHost: a%zz\r\n\r\n", 400),
    R("GET / HTTP/1.1\r\nHost: a%4\r\n\r\n", 400),
    R("GET / HTTP/1.1\r\nHost: a\\b\r\n\r\n", 400),
    R("GET / HTTP/1.1\r\nHost: a\"b\r\n\r\n", 400),
    R("GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", 400),
    R("GET / HTTP/1.1\r\nHost: [::zz]\r\n\r\n", 400),
    R("GET / HTTP/1.1\r\nHost: [1.2.3.4]\r\n\r\n", 400),
    R("GET / HTTP/1.1\r\nHost: [v1.a]\r\n\r\n", 400), /* IPvFuture */
    R("GET / HTTP/1.1\r\nHost: [::1]x\r\n\r\n", 400),
    R("GET / HTTP/1.1\r\nHost: [::1]]\r\n\r\n", 400),
    R("GET / HTTP/1.1\r\nHost: a[::1]\r\n\r\n", 400),
    R("GET / HTTP/1.1\r\nHost: [1:2:3:4:5:6:7:8:9]\r\n\r\n", 400),
    R("GET / HTTP/1.1\r\nHost: [0000:0000:0000:0000:0000:0000:0000:0000:0000:0000]\r\n\r\n",
      400), /* longer than any IPv6 literal */
    /* Transfer-Encoding: chunked last and once, on HTTP/1.1 only. */
    R("GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 400),
    R("GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400),
    R("GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", 400),
    R("GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n\r\n", 400),
    R("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    R("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
    R("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: x\r\nTransfer-Encoding: Chunked\r\n\r\n",
      501),
    R("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked;q=1, chunked\r\n\r\n", 501),
    /* Expect (RFC 9110 10.1.1): only 100-continue. */
    R("POST / HTTP/1.1\r\nHost: a\r\nExpect: foo\r\nContent-Length: 1\r\n\r\n", 417),
    R("GET / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue, foo\r\n\r\n", 417),
    R("GET / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue x\r\n\r\n", 417),
    R("GET / HTTP/1.1\r\nHost: a\r\nExpect: 100-continuex\r\n\r\n", 417),
    R("GET / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue=1\r\n\r\n", 417),
    R("GET / HTTP/1.1\r\nHost: a\r\nExpect: 100-contin\r\n\r\n", 417),
    R("GET / HTTP/1.1\r\nHost: a\r\nExpect: 100- continue\r\n\r\n", 417),
    R("GET / HTTP/1.0\r\nExpect: foo\r\n\r\n", 417),
    /* The path: %XX well formed, no NUL, no ".." above the root. */
    R("GET /a%zz HTTP/1.1\r\n", 400),
    R("GET /a%4 HTTP/1.1\r\n", 400),
    R("GET /a%4?x HTTP/1.1\r\n", 400),
    R("GET /a%%41 HTTP/1.1\r\n", 400),
    R("GET /a%00b HTTP/1.1\r\n", 400),
    R("GET /.. HTTP/1.1\r\n", 400),
    R("GET /../access HTTP/1.1\r\n", 400),
    R("GET /a/../../access HTTP/1.1\r\n", 400),
    R("GET /%2e%2E/access HTTP/1.1\r\n", 400),
    R("GET /a/./../.. HTTP/1.1\r\n", 400),
    R("GET http://a/../x HTTP/1.1\r\n", 400),
    R("GET /..?x HTTP/1.1\r\n", 400),
    R("GET http:/x HTTP/1.1\r\n", 400), /* llhttp's own URL checks */
    R("GET h:80 HTTP/1.1\r\n", 400),
    /* Chunked framing. */
    R("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
    R("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n0\r\n\r\n", 400),
};

START_TEST(bad_requests)
{
    const char *req = bad[_i].req;
    size_t len = bad[_i].len;

    parse_new(req, len);
    ck_assert_msg(!P.complete, "request %d completed", _i);
    ck_assert_msg(P.error_status == bad[_i].status, "request %d: status %d, want %d", _i,
                  P.error_status, bad[_i].status);
    /* The same verdict when the bytes arrive one at a time. */
    http_parser_init(&P, NULL);
    parse_bytewise(&P, req, len);
    ck_assert_msg(!P.complete && P.error_status == bad[_i].status,
                  "request %d bytewise: status %d, want %d", _i, P.error_status, bad[_i].status);
    /* A failed parser stays failed. */
    ck_assert_uint_eq(http_parse(&P, "GET / HTTP/1.1\r\n\r\n", 18), 0);
}
END_TEST

/* What a parse ended with, to compare runs fed differently. */
struct verdict {
    bool complete;
    int status;
    struct http_request req;
};

/* Feeds s in pieces: 0 means one call, otherwise random sizes up to
 * max_piece. Stops at the first verdict. */
static struct verdict feed(const char *s, size_t len, size_t max_piece)
{
    struct verdict v;
    size_t off = 0;

    http_parser_init(&P, NULL);
    while (off < len && !P.complete && !P.error_status) {
        size_t n = max_piece ? 1 + (size_t)(rng() % max_piece) : len;
        n = n < len - off ? n : len - off;
        size_t used = http_parse(&P, s + off, n);
        ck_assert_uint_le(used, n);
        ck_assert(used == n || P.complete || P.error_status);
        off += used;
    }
    v.complete = P.complete;
    v.status = P.error_status;
    v.req = P.req;
    return v;
}

static void expect_same(const struct verdict *a, const struct verdict *b, const char *s, size_t len)
{
    ck_assert_msg(a->complete == b->complete && a->status == b->status,
                  "complete %d/%d, status %d/%d for %.*s", a->complete, b->complete, a->status,
                  b->status, (int)len, s);
    if (!a->complete)
        return;
    ck_assert_msg(strcmp(a->req.path, b->req.path) == 0, "path %s/%s for %.*s", a->req.path,
                  b->req.path, (int)len, s);
    ck_assert_int_eq(a->req.method, b->req.method);
    ck_assert_uint_eq(a->req.minor, b->req.minor);
    ck_assert(a->req.keep_alive == b->req.keep_alive);
    ck_assert(a->req.expect_continue == b->req.expect_continue);
    ck_assert_uint_eq(a->req.body_bytes, b->req.body_bytes);
}

/* Replaces, inserts or deletes a few bytes, mostly ones the parser cares
 * about. */
static size_t mutate(char *s, size_t len, size_t cap)
{
    static const char alphabet[] = " \t\r\n%./:[],;=?#@\\\"aZ09HTP1-~";
    int edits = 1 + (int)(rng() % 3);

    for (int e = 0; e < edits && len > 0; e++) {
        size_t at = (size_t)(rng() % len);
        char c = alphabet[rng() % (sizeof(alphabet) - 1)];
        switch (rng() % 3) {
        case 0:
            s[at] = c;
            break;
        case 1:
            if (len < cap) {
                memmove(s + at + 1, s + at, len - at);
                s[at] = c;
                len++;
            }
            break;
        default:
            memmove(s + at, s + at + 1, len - at - 1);
            len--;
        }
    }
    return len;
}

START_TEST(split_independent_random)
{
    /* Every verdict is tied to the byte that decides it: mutated requests
     * get the same verdict in one call, a byte at a time and in random
     * pieces. */
    const char *seeds[] = {
        "POST /a/./b/../%61ccess?q HTTP/1.2\r\nHost: [::1]:8080\r\nExpect: 100-continue\r\n"
        "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nHost: x\r\n\r\n",
        "GET http://h/x/%2e%2E/access HTTP/1.1\r\nHost: a%41.b:80\r\nContent-Length: 2\r\n\r\nab",
        "FROB /x HTTP/1.1\r\nHost: a\r\n\r\n",
        "HEAD /%7e/./. HTTP/1.0\r\nExpect: 100-continue, x\r\nTransfer-Encoding: gzip, "
        "chunked\r\n\r\n",
    };
    char buf[512];

    for (int iter = 0; iter < 20000; iter++) {
        const char *seed = seeds[iter % 4];
        size_t len = strlen(seed);
        memcpy(buf, seed, len);
        len = mutate(buf, len, sizeof(buf));
        struct verdict whole = feed(buf, len, 0);
        struct verdict bytes = feed(buf, len, 1);
        struct verdict pieces = feed(buf, len, 7);
        expect_same(&whole, &bytes, buf, len);
        expect_same(&whole, &pieces, buf, len);
    }
}
END_TEST

START_TEST(url_limit_above_head_limit)
{
    /* With max_url above max_header_bytes, a target between the two is read
     * to its end and the head is still refused (431), even when the whole
     * head arrived; a target past max_url is 414. */
    struct http_limits l = {
        .max_header_bytes = 1024, .max_url = 4096, .max_headers = 100, .max_body = 0};
    size_t len;
    char *s = build("GET /", 'a', 2000, " HTTP/1.1\r\nHost: a\r\n\r\n", &len);

    for (int bytewise = 0; bytewise < 2; bytewise++) {
        http_parser_init(&P, &l);
        if (bytewise)
            parse_bytewise(&P, s, len);
        else
            http_parse(&P, s, len);
        ck_assert(!P.complete);
        ck_assert_int_eq(P.error_status, 431);
    }
    free(s);
    s = build("GET /", 'a', 4096, " HTTP/1.1\r\n\r\n", &len);
    http_parser_init(&P, &l);
    ck_assert_uint_le(http_parse(&P, s, len), 4 + 4097);
    ck_assert_int_eq(P.error_status, 414);
    free(s);
}
END_TEST

/* Heads of prefix, then n copies of fill, then suffix, against the default
 * limits (8 KiB of head, 8 KiB of target): the status each gets, read at
 * once and byte by byte (0: it parses whole), and the bytes consumed where
 * that is part of the promise (0: not checked). */
#define BOUNDARY_PRE  "GET / HTTP/1.1\r\nHost: a\r\nX: "
#define BOUNDARY_FILL (8192 - (sizeof(BOUNDARY_PRE) - 1) - 4)

static const struct oversized {
    const char *prefix;
    char fill;
    size_t n;
    const char *suffix;
    int status;
    size_t consumed;
} oversized[] = {
    {"GET /", 'a', 9000, " HTTP/1.1\r\n\r\n", 414, 0},
    /* An 8193-byte target: one over max_url. */
    {"GET /", 'a', 8192, " HTTP/1.1\r\n\r\n", 414, 0},
    /* The target alone fits in max_url, the head does not: 431, not 414. */
    {"GET /", 'a', 8191, " HTTP/1.1\r\n\r\n", 431, 0},
    /* Same with the head ending inside the extra bytes read for the URL. */
    {"GET /", 'a', 8189, " HTTP/1.1\r\n\r\n", 431, 0},
    /* A head of exactly max_header_bytes is fine, one more byte is not. */
    {BOUNDARY_PRE, 'v', BOUNDARY_FILL, "\r\n\r\n", 0, 8192},
    {BOUNDARY_PRE, 'v', BOUNDARY_FILL + 1, "\r\n\r\n", 431, 0},
    /* Reading stops at the limit. */
    {"GET / HTTP/1.1\r\nX-Big: ", 'b', 9000, "\r\n\r\n", 431, 8192},
};

START_TEST(oversized_heads)
{
    const struct oversized *c = &oversized[_i];
    size_t len, used;
    char *s = build(c->prefix, c->fill, c->n, c->suffix, &len);

    for (int bytewise = 0; bytewise < 2; bytewise++) {
        http_parser_init(&P, NULL);
        used = bytewise ? parse_bytewise(&P, s, len) : http_parse(&P, s, len);
        ck_assert_msg(P.error_status == c->status, "case %d%s: status %d, want %d", _i,
                      bytewise ? " bytewise" : "", P.error_status, c->status);
        ck_assert(P.complete == (c->status == 0));
        if (c->consumed)
            ck_assert_uint_eq(used, c->consumed);
    }
    free(s);
}
END_TEST

static char *many_headers(unsigned n, size_t *len)
{
    char *s = malloc(32 + n * 16), *q = s;

    ck_assert_ptr_nonnull(s);
    q += sprintf(q, "GET / HTTP/1.1\r\nHost: a\r\n");
    for (unsigned i = 1; i < n; i++) /* Host is the first */
        q += sprintf(q, "X-%u: v\r\n", i);
    q += sprintf(q, "\r\n");
    *len = (size_t)(q - s);
    return s;
}

START_TEST(too_many_headers)
{
    size_t len;
    char *s = many_headers(100, &len);

    parse_new(s, len);
    ck_assert(P.complete);
    free(s);
    s = many_headers(101, &len);
    parse_new(s, len);
    ck_assert_int_eq(P.error_status, 431);
    free(s);
}
END_TEST

START_TEST(content_length_too_big)
{
    const char *req = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2097152\r\n\r\nabc";

    parse_str(req);
    ck_assert_int_eq(P.error_status, 413);
    ck_assert_uint_eq(P.req.body_bytes, 0); /* refused before reading */
    parse_str("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1048577\r\n\r\n");
    ck_assert_int_eq(P.error_status, 413);
    /* Exactly max_body is allowed. */
    parse_str("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1048576\r\n\r\n");
    ck_assert_int_eq(P.error_status, 0);
    ck_assert(!P.complete);
}
END_TEST

START_TEST(chunked_too_big)
{
    /* One chunk over the limit is refused at its size line. */
    parse_str("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n100001\r\nab");
    ck_assert_int_eq(P.error_status, 413);
    ck_assert_uint_eq(P.req.body_bytes, 0);
    /* Many chunks under the limit that add up to more than it. */
    static char chunk[0x10000 + 16];
    size_t n = (size_t)sprintf(chunk, "10000\r\n");
    memset(chunk + n, 'z', 0x10000);
    memcpy(chunk + n + 0x10000, "\r\n", 2);
    n += 0x10000 + 2;
    parse_str("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n");
    for (int i = 0; i < 16; i++)
        ck_assert_uint_eq(http_parse(&P, chunk, n), n);
    ck_assert_int_eq(P.error_status, 0);
    ck_assert_uint_eq(P.req.body_bytes, 1 << 20);
    http_parse(&P, chunk, n);
    ck_assert_int_eq(P.error_status, 413);
    ck_assert_uint_eq(P.req.body_bytes, 1 << 20);
}
END_TEST

START_TEST(chunk_framing_bounded)
{
    /* Endless leading zeros in a chunk size are framing, not body: still
     * bounded. */
    struct http_limits l = HTTP_LIMITS_DEFAULT;
    static char zeros[4096];

    l.max_body = 100;
    l.max_header_bytes = 1024;
    memset(zeros, '0', sizeof(zeros));
    http_parser_init(&P, &l);
    const char *head = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
    ck_assert_uint_eq(http_parse(&P, head, strlen(head)), strlen(head));
    ck_assert_uint_eq(http_parse(&P, zeros, sizeof(zeros)), 1124);
    ck_assert_int_eq(P.error_status, 413);
}
END_TEST

START_TEST(long_path_truncated)
{
    size_t len;
    char *s = build("GET /", 'p', 3000, "?q=1 HTTP/1.1\r\nHost: a\r\n\r\n", &len);

    parse_new(s, len);
    ck_assert(P.complete);
    ck_assert(P.req.path_truncated);
    ck_assert_uint_eq(P.req.path_len, HTTP_MAX_PATH);
    ck_assert_uint_eq(strlen(P.req.path), HTTP_MAX_PATH);
    /* Exactly HTTP_MAX_PATH is kept whole. */
    free(s);
    s = build("GET /", 'p', HTTP_MAX_PATH - 1, " HTTP/1.1\r\nHost: a\r\n\r\n", &len);
    parse_new(s, len);
    ck_assert(P.complete);
    ck_assert(!P.req.path_truncated);
    ck_assert_uint_eq(P.req.path_len, HTTP_MAX_PATH);
    free(s);
}
END_TEST

/* picohttpparser's trick: the input ends exactly where an inaccessible page
 * begins, so reading one byte too far crashes the test. */
static void parse_at_guard(const char *req, size_t len, bool bytewise)
{
    long page = sysconf(_SC_PAGESIZE);
    char *map =
        mmap(NULL, 2 * (size_t)page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    ck_assert_ptr_ne(map, MAP_FAILED);
    ck_assert_int_eq(mprotect(map + page, (size_t)page, PROT_NONE), 0);
    char *s = map + page - len;
    memcpy(s, req, len);
    http_parser_init(&P, NULL);
    if (bytewise)
        parse_bytewise(&P, s, len);
    else
        http_parse(&P, s, len);
    munmap(map, 2 * (size_t)page);
}

START_TEST(guard_page)
{
    const char *ok = "GET /access HTTP/1.1\r\nHost: a\r\n\r\n";
    const char *cut[] = {"G",
                         "GET /acc",
                         "GET / HTTP/1.",
                         "GET / HTTP/1.1\r",
                         "GET / HTTP/1.1\r\nHo",
                         "GET / HTTP/1.1\r\nHost: a\r\n",
                         "GET / HTTP/1.1\r\nHost: a\r\n\r",
                         "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9\r\n\r\nabc",
                         "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1",
                         "FROB / HTTP/1.1\r",
                         "GET /a%4",
                         "GET / HTTP/1.1\r\nHost: [::1",
                         "GET / HTTP/1.1\r\nExpect: 100-cont"};

    for (int bytewise = 0; bytewise < 2; bytewise++) {
        parse_at_guard(ok, strlen(ok), bytewise);
        ck_assert(P.complete);
        ck_assert_str_eq(P.req.path, "/access");
        for (size_t i = 0; i < sizeof(cut) / sizeof(cut[0]); i++) {
            parse_at_guard(cut[i], strlen(cut[i]), bytewise);
            ck_assert_msg(!P.complete && !P.error_status, "cut %zu", i);
        }
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            parse_at_guard(bad[i].req, bad[i].len, bytewise);
            ck_assert_int_eq(P.error_status, bad[i].status);
        }
    }
}
END_TEST

static Suite *http_suite(void)
{
    Suite *s = suite_create("http");
    TCase *p = tcase_create("parse");
    TCase *l = tcase_create("limits");

    tcase_add_test(p, valid_get);
    tcase_add_test(p, path_without_query);
    tcase_add_test(p, http10_keep_alive);
    tcase_add_test(p, connection_close);
    tcase_add_test(p, pipelined_three);
    tcase_add_test(p, split_every_byte);
    tcase_add_test(p, split_at_each_point);
    tcase_add_test(p, random_splits);
    tcase_add_test(p, content_length_body);
    tcase_add_test(p, chunked_body);
    tcase_add_loop_test(p, bad_requests, 0, (int)(sizeof(bad) / sizeof(bad[0])));
    tcase_add_test(p, head_method);
    tcase_add_test(p, higher_minor_version);
    tcase_add_test(p, http10_host_optional);
    tcase_add_test(p, valid_hosts);
    tcase_add_test(p, expect_continue);
    tcase_add_test(p, expect_refused_before_body);
    tcase_add_test(p, chunked_spellings);
    tcase_add_loop_test(p, path_normalised, 0, (int)(sizeof(paths) / sizeof(paths[0])));
    tcase_add_test(p, path_normalised_long);
    tcase_add_test(p, split_new_fields);
    tcase_add_test(p, verdict_at_line_end);
    tcase_add_test(p, split_independent_random);
    tcase_add_test(l, unknown_method_limits);
    tcase_add_test(p, guard_page);
    tcase_add_loop_test(l, oversized_heads, 0, (int)(sizeof(oversized) / sizeof(oversized[0])));
    tcase_add_test(l, url_limit_above_head_limit);
    tcase_add_test(l, too_many_headers);
    tcase_add_test(l, content_length_too_big);
    tcase_add_test(l, chunked_too_big);
    tcase_add_test(l, chunk_framing_bounded);
    tcase_add_test(l, long_path_truncated);
    suite_add_tcase(s, p);
    suite_add_tcase(s, l);
    return s;
}

int main(void)
{
    return check_run(http_suite());
}
