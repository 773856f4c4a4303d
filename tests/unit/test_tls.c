/* Unit tests for server/cluster/tls.c: the TLS client on a real loop
 * against an in-process OpenSSL server (tests/common/tls_server) on
 * 127.0.0.1, with certificates made at test time by the openssl command
 * (tests/common/certs.sh): a good chain; a wrong CA, another name, an
 * expired certificate; a client certificate required, missing, from
 * another CA or expired; session resumption and what a reload does to it;
 * files that cannot be used; a peer that is not TLS, hangs up, or never
 * answers. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>

#include "certs.h"
#include "check_run.h"
#include "loop.h"
#include "cluster/tls.h"
#include "tls_server.h"

#define DEADLINE_MS 10000 /* for what should succeed: a loaded machine is slow */

static char certs[64];
static struct loop loop;
static struct tls_server *server;
static struct tls_ctx *ctx;

static const char *file(const char *name)
{
    return certs_path(certs, name);
}

static void setup(void)
{
    ck_assert_int_eq(loop_init(&loop, 0, 16), 0);
}

static void teardown(void)
{
    if (server)
        tls_server_stop(server);
    server = NULL;
    tls_ctx_free(ctx);
    ctx = NULL;
    loop_fini(&loop);
}

/* NAME.key beside NAME.pem. */
static void key_of(const char *cert, char *key, size_t cap)
{
    const char *pem = file(cert);
    snprintf(key, cap, "%.*s.key", (int)(strlen(pem) - 4), pem);
}

static void serve(enum tls_server_mode mode, const char *cert, const char *client_ca)
{
    char key[128];
    key_of(cert, key, sizeof(key));
    struct tls_server_opts o = {.mode = mode,
                                .cert = file(cert),
                                .key = key,
                                .client_ca = client_ca ? file(client_ca) : NULL};
    ck_assert_int_eq(tls_server_start(&server, &o), 0);
}

/* A context of the given files (names in the certificates' directory). */
static void trust(const char *ca, const char *cert)
{
    char key[128], why[TLS_WHY_CAP] = "";
    if (cert)
        key_of(cert, key, sizeof(key));
    struct tls_files f = {
        .ca = ca ? file(ca) : NULL, .cert = cert ? file(cert) : NULL, .key = cert ? key : NULL};
    int rc = tls_ctx_new(&ctx, &f, why, sizeof(why));
    ck_assert_msg(rc == 0, "tls_ctx_new: %d %s", rc, why);
}

/* ---- one connection, from a coroutine ---- */

struct attempt {
    int port;
    const char *host;            /* what the certificate must name; NULL: 127.0.0.1 */
    struct tls_session *session; /* NULL: no resumption */
    size_t line;                 /* bytes of the line echoed, 0 for a short one */
    int64_t timeout_ms;          /* 0: DEADLINE_MS */
    int rc;                      /* the first error, 0 if the echo came back whole */
    bool resumed;
    char why[TLS_WHY_CAP];
};

static int dial(struct loop_io *io, int port, int64_t deadline)
{
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
        ck_assert_int_eq(errno, EINPROGRESS);
    ck_assert_int_eq(loop_io_open(io, fd, NULL, NULL), 0);
    loop_io_clear(io, LOOP_WRITE);
    ck_assert_int_eq(loop_io_wait(io, LOOP_WRITE, deadline), 0);
    return fd;
}

/* Sends a line of n bytes and reads it back. */
static int echo(struct tls_conn *t, size_t n, int64_t deadline)
{
    char *out = malloc(n + 1), *in = malloc(n + 1);
    for (size_t i = 0; i < n; i++)
        out[i] = (char)('a' + i % 26);
    out[n] = '\n';
    int rc = tls_write(t, out, n + 1, deadline);
    size_t got = 0;
    while (rc == 0 && got < n + 1) {
        ssize_t r = tls_read(t, in + got, n + 1 - got < 4096 ? n + 1 - got : 4096, deadline);
        rc = r > 0 ? 0 : r == 0 ? -ECONNRESET : (int)r;
        got += r > 0 ? (size_t)r : 0;
    }
    if (rc == 0)
        ck_assert_int_eq(memcmp(in, out, n + 1), 0);
    free(out);
    free(in);
    return rc;
}

static void attempt_main(void *arg)
{
    struct attempt *a = arg;
    int64_t deadline = loop_now_us() + (a->timeout_ms ? a->timeout_ms : DEADLINE_MS) * 1000;
    struct loop_io io;
    struct tls_conn t;
    int fd = dial(&io, a->port, deadline);
    a->rc = tls_conn_open(&t, ctx, &io, a->host ? a->host : "127.0.0.1", a->session, deadline);
    if (a->rc == 0) {
        a->resumed = tls_conn_resumed(&t);
        a->rc = echo(&t, a->line ? a->line : 5, deadline);
        tls_conn_close(&t);
    }
    memcpy(a->why, t.why, sizeof(a->why));
    loop_io_close(&io);
    close(fd);
}

static void run(struct attempt *a)
{
    if (!a->port)
        a->port = tls_server_port(server);
    ck_assert_int_eq(loop_spawn(&loop, attempt_main, a, NULL), 0);
    ck_assert_int_eq(loop_run(&loop), 0);
    ck_assert_uint_eq(loop.pool.nlive, 0);
}

static void expect_ok(struct attempt *a)
{
    run(a);
    ck_assert_msg(a->rc == 0, "rc %d: %s", a->rc, a->why);
}

/* Fails with rc and a cause that holds each of the NULL-ended strings. */
static void expect_fail(struct attempt *a, int rc, ...)
{
    run(a);
    ck_assert_msg(a->rc == rc, "rc %d, not %d: %s", a->rc, rc, a->why);
    va_list ap;
    va_start(ap, rc);
    for (const char *s; (s = va_arg(ap, const char *));)
        ck_assert_msg(strstr(a->why, s), "\"%s\" not in \"%s\"", s, a->why);
    va_end(ap);
}

/* ---- etcd's certificate ---- */

START_TEST(good_chain_echoes)
{
    serve(TLS_SERVER_ECHO, "server.pem", NULL);
    trust("ca.pem", NULL);
    struct attempt a = {0};
    expect_ok(&a);
    ck_assert(!a.resumed);
    ck_assert_uint_eq(tls_server_handshakes(server), 1);
}
END_TEST

/* A line far larger than the socket buffers: the write parks on
 * WANT_WRITE until the server reads, the reads take many records. */
START_TEST(large_line_parks_both_ways)
{
    serve(TLS_SERVER_ECHO, "server.pem", NULL);
    trust("ca.pem", NULL);
    struct attempt a = {.line = 3u << 20};
    expect_ok(&a);
}
END_TEST

START_TEST(dns_name_checked)
{
    serve(TLS_SERVER_ECHO, "server.pem", NULL);
    trust("ca.pem", NULL);
    struct attempt a = {.host = "localhost"};
    expect_ok(&a);
    struct attempt b = {.host = "elsewhere.invalid"};
    expect_fail(&b, -EKEYREJECTED, "does not name elsewhere.invalid", NULL);
}
END_TEST

/* ---- ours ---- */

START_TEST(client_cert_accepted)
{
    serve(TLS_SERVER_ECHO, "server.pem", "ca.pem");
    trust("ca.pem", "client.pem");
    struct attempt a = {0};
    expect_ok(&a);
}
END_TEST

/* ---- refusals: one row each ---- */

/* With TLS 1.3 a server checks a client's certificate after the client's
 * handshake is done: its refusal comes from the first read, or from the
 * write when the server's reset beats it (tls.c reads the alert then). */
static const struct refusal {
    const char *name;
    enum tls_server_mode mode;
    const char *server_cert, *client_ca; /* the server's */
    const char *ca, *cert;               /* the client's */
    int rc;
    const char *why[2]; /* in the cause; NULL-ended, a leading '/' is a file of certs */
} refusals[] = {
    {"wrong CA",
     TLS_SERVER_ECHO,
     "server.pem",
     NULL,
     "other-ca.pem",
     NULL,
     -EKEYREJECTED,
     {"unable to get local issuer certificate", "/other-ca.pem"}},
    {"system store",
     TLS_SERVER_ECHO,
     "server.pem",
     NULL,
     NULL,
     NULL,
     -EKEYREJECTED,
     {"did not verify", "the system's trust store"}},
    {"another name",
     TLS_SERVER_ECHO,
     "server-othername.pem",
     NULL,
     "ca.pem",
     NULL,
     -EKEYREJECTED,
     {"IP address mismatch", "does not name 127.0.0.1"}},
    {"expired",
     TLS_SERVER_ECHO,
     "server-expired.pem",
     NULL,
     "ca.pem",
     NULL,
     -EKEYREJECTED,
     {"certificate has expired"}},
    {"no client certificate",
     TLS_SERVER_ECHO,
     "server.pem",
     "ca.pem",
     "ca.pem",
     NULL,
     -EACCES,
     {"refused a connection without a client certificate"}},
    {"client certificate of another CA",
     TLS_SERVER_ECHO,
     "server.pem",
     "ca.pem",
     "ca.pem",
     "client-otherca.pem",
     -EACCES,
     {"refused the client certificate", "/client-otherca.pem"}},
    {"client certificate expired",
     TLS_SERVER_ECHO,
     "server.pem",
     "ca.pem",
     "ca.pem",
     "client-expired.pem",
     -EACCES,
     {"/client-expired.pem", "(it expired on 2020-01-31)"}},
    {"not TLS",
     TLS_SERVER_PLAIN,
     "server.pem",
     NULL,
     "ca.pem",
     NULL,
     -EPROTO,
     {"TLS with etcd at 127.0.0.1 failed"}},
    {"hung up",
     TLS_SERVER_HANGUP,
     "server.pem",
     NULL,
     "ca.pem",
     NULL,
     -ECONNRESET,
     {"closed the connection"}},
};

START_TEST(refused)
{
    const struct refusal *r = &refusals[_i];
    serve(r->mode, r->server_cert, r->client_ca);
    trust(r->ca, r->cert);
    struct attempt a = {0};
    run(&a);
    ck_assert_msg(a.rc == r->rc, "%s: rc %d, not %d: %s", r->name, a.rc, r->rc, a.why);
    for (unsigned i = 0; i < 2 && r->why[i]; i++) {
        const char *want = r->why[i][0] == '/' ? file(r->why[i] + 1) : r->why[i];
        ck_assert_msg(strstr(a.why, want), "%s: \"%s\" not in \"%s\"", r->name, want, a.why);
    }
    ck_assert_uint_eq(tls_server_handshakes(server), 0);
}
END_TEST

/* ---- sessions ---- */

START_TEST(session_resumed)
{
    serve(TLS_SERVER_ECHO, "server.pem", "ca.pem");
    trust("ca.pem", "client.pem");
    struct tls_session s = {0};
    struct attempt first = {.session = &s};
    expect_ok(&first);
    ck_assert(!first.resumed);
    ck_assert_ptr_nonnull(s.ssl);
    struct attempt second = {.session = &s};
    expect_ok(&second);
    ck_assert(second.resumed);
    ck_assert_uint_eq(tls_server_resumed(server), 1);
    /* To another name: not offered. */
    struct attempt other = {.session = &s, .host = "localhost"};
    expect_ok(&other);
    ck_assert(!other.resumed);
    tls_session_drop(&s);
}
END_TEST

/* A session learnt before a reload is not offered after it: it would
 * stand for the certificate that was replaced. */
START_TEST(reload_ends_resumption)
{
    serve(TLS_SERVER_ECHO, "server.pem", "ca.pem");
    trust("ca.pem", "client.pem");
    struct tls_session s = {0};
    struct attempt first = {.session = &s};
    expect_ok(&first);
    char why[TLS_WHY_CAP];
    ck_assert_int_eq(tls_ctx_reload(ctx, why, sizeof(why)), 0);
    struct attempt second = {.session = &s};
    expect_ok(&second);
    ck_assert(!second.resumed);
    struct attempt third = {.session = &s};
    expect_ok(&third);
    ck_assert(third.resumed);
    tls_session_drop(&s);
}
END_TEST

/* ---- files ---- */

static void copy(const char *from, const char *to)
{
    char buf[16384];
    int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ck_assert(in >= 0 && out >= 0);
    ssize_t n = read(in, buf, sizeof(buf));
    ck_assert(n > 0 && write(out, buf, (size_t)n) == n);
    close(in);
    close(out);
}

/* Rotation: the files are read again on reload and the next connection
 * uses them; a reload that cannot read them changes nothing. */
START_TEST(reload_reads_files_again)
{
    serve(TLS_SERVER_ECHO, "server.pem", "ca.pem");
    copy(file("client-expired.pem"), file("rotated.pem"));
    copy(file("client-expired.key"), file("rotated.key"));
    trust("ca.pem", "rotated.pem");
    struct attempt before = {0};
    expect_fail(&before, -EACCES, "(it expired on", NULL);
    copy(file("client.pem"), file("rotated.pem"));
    copy(file("client.key"), file("rotated.key"));
    char why[TLS_WHY_CAP];
    ck_assert_int_eq(tls_ctx_reload(ctx, why, sizeof(why)), 0);
    struct attempt after = {0};
    expect_ok(&after);
    copy(file("ca.pem"), file("rotated.key")); /* not the key */
    ck_assert_int_eq(tls_ctx_reload(ctx, why, sizeof(why)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(why, file("rotated.key")));
    struct attempt still = {0};
    expect_ok(&still);
    unlink(file("rotated.pem"));
    unlink(file("rotated.key"));
}
END_TEST

static int ctx_error(const struct tls_files *f, char *why)
{
    struct tls_ctx *c = NULL;
    int rc = tls_ctx_new(&c, f, why, TLS_WHY_CAP);
    ck_assert_ptr_null(c);
    return rc;
}

START_TEST(unusable_files_refused)
{
    char why[TLS_WHY_CAP];
    struct tls_files missing = {.ca = file("nothing.pem")};
    ck_assert_int_eq(ctx_error(&missing, why), -ENOENT);
    ck_assert_ptr_nonnull(strstr(why, "cannot read CA file"));
    ck_assert_ptr_nonnull(strstr(why, file("nothing.pem")));
    struct tls_files not_pem = {.ca = file("ca.key")};
    ck_assert_int_eq(ctx_error(&not_pem, why), -EINVAL);
    ck_assert_ptr_nonnull(strstr(why, "holds no PEM certificate"));
    struct tls_files alone = {.cert = file("client.pem")};
    ck_assert_int_eq(ctx_error(&alone, why), -EINVAL);
    ck_assert_str_eq(why, "a client certificate needs its key");
    struct tls_files other = {.cert = file("client.pem"), .key = file("server.key")};
    ck_assert_int_eq(ctx_error(&other, why), -EINVAL);
    ck_assert_ptr_nonnull(strstr(why, "is not the key of certificate"));
    struct tls_files no_key = {.cert = file("client.pem"), .key = file("nothing.key")};
    ck_assert_int_eq(ctx_error(&no_key, why), -ENOENT);
    ck_assert_ptr_nonnull(strstr(why, "cannot read key file"));
}
END_TEST

/* ---- peers that are not etcd over TLS ---- */

/* A peer that takes the connection and never answers: the handshake ends
 * at its deadline. */
START_TEST(handshake_deadline)
{
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    ck_assert_int_eq(bind(lfd, (struct sockaddr *)&sa, len), 0);
    ck_assert_int_eq(listen(lfd, 4), 0);
    ck_assert_int_eq(getsockname(lfd, (struct sockaddr *)&sa, &len), 0);
    trust("ca.pem", NULL);
    struct attempt a = {.port = ntohs(sa.sin_port), .timeout_ms = 200};
    int64_t t0 = loop_now_us();
    expect_fail(&a, -ETIMEDOUT, "timed out during the TLS handshake", NULL);
    ck_assert_int_ge(loop_now_us() - t0, 200 * 1000);
    close(lfd);
}
END_TEST

static Suite *tls_suite(void)
{
    Suite *s = suite_create("tls");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, good_chain_echoes);
    tcase_add_test(tc, large_line_parks_both_ways);
    tcase_add_test(tc, dns_name_checked);
    tcase_add_test(tc, client_cert_accepted);
    tcase_add_loop_test(tc, refused, 0, sizeof(refusals) / sizeof(refusals[0]));
    tcase_add_test(tc, session_resumed);
    tcase_add_test(tc, reload_ends_resumption);
    tcase_add_test(tc, reload_reads_files_again);
    tcase_add_test(tc, unusable_files_refused);
    tcase_add_test(tc, handshake_deadline);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* tls.h: OpenSSL writes with write(2) */
    if (certs_make(certs, sizeof(certs)) < 0)
        return EXIT_FAILURE;
    int rc = check_run(tls_suite());
    certs_remove(certs);
    return rc;
}
