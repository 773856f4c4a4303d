/* Unit tests for server/conn.c over a socketpair: one connection served by
 * its coroutine, with a conn_ctx built by hand over the shared server
 * fixture (a real resource with no delay, the counts, the draining flag)
 * and owner hooks that record what they are told, the test playing the
 * client on the other end.
 *
 * Covered: GET /access and keep-alive; each way a connection ends and the
 * reason the hooks get (client close, Connection: close, HTTP/1.0, a
 * malformed request, the header deadline, the keep-alive idle timeout, a
 * reply nobody reads, a client that leaves while queued for the lock);
 * pipelined requests answered in order and in few writes; a stop closing an
 * idle connection at once and letting a busy one finish; conn_refuse; the
 * counts.
 *
 * The loop runs with a 1 ms tick that reads what the server sent and stops
 * the loop once the awaited event has come (or a deadline has passed, which
 * fails the test): nothing sleeps and hopes. Timing is only checked from
 * below: a timeout never fires early. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include "check_run.h"
#include "conn.h"
#include "loop.h"
#include "resource.h"
#include "server_fixture.h"

static struct loop loop;
static struct fixture fx;
static struct conn_limits limits;
static struct conn_ctx ctx;

static int sv[2] = {-1, -1}; /* sv[0]: the client's end; sv[1]: the server's */

/* What the owner's hooks were told. */
static struct {
    int opened, closed;
    int lingering;          /* in a staged close now (the lingering hook) */
    int lingered;           /* staged closes begun */
    struct conn *c;         /* from opened */
    bool same;              /* closed was given the connection opened was */
    enum tally_end why;     /* from closed */
    bool fd_was_closed;     /* the descriptor was closed before closed ran */
    int64_t closed_at;      /* loop_now_us() in closed */
    struct list_node owned; /* the owner's list, as server.c keeps it */
} hooks;

/* The client's view: everything received, and whether the server closed. */
static char rx[256 * 1024];
static size_t rx_len;
static bool rx_eof;
static bool client_reads; /* false: the client leaves replies unread */

/* ---- counting the server's writes ---- */

/* send() of the code under test comes here: a definition in the program
 * wins over libc's, so each call on the server's end can be counted.
 * send(fd, b, n, f) is sendto(fd, b, n, f, NULL, 0) (POSIX). */
static int server_fd = -1;
static int server_sends;

ssize_t send(int fd, const void *buf, size_t len, int flags)
{
    if (fd == server_fd)
        server_sends++;
    return sendto(fd, buf, len, flags, NULL, 0);
}

/* ---- the owner's hooks ---- */

static void on_opened(void *owner, struct conn *c)
{
    (void)owner;
    hooks.opened++;
    hooks.c = c;
    list_push_back(&hooks.owned, conn_node(c));
}

static void on_lingering(void *owner, struct conn *c, bool on)
{
    (void)owner;
    ck_assert_ptr_eq(c, hooks.c);
    hooks.lingering += on ? 1 : -1;
    hooks.lingered += on;
}

static void on_closed(void *owner, struct conn *c, enum tally_end why)
{
    ck_assert_int_eq(hooks.lingering, 0); /* a staged close ends before the close */
    (void)owner;
    hooks.closed++;
    hooks.same = c == hooks.c && conn_of_node(conn_node(c)) == c;
    hooks.why = why;
    errno = 0;
    hooks.fd_was_closed = fcntl(server_fd, F_GETFD) == -1 && errno == EBADF;
    hooks.closed_at = loop_now_us();
    list_remove(conn_node(c));
}

/* ---- fixture ---- */

static struct loop_watch *tick;
static bool (*until)(void);
static int64_t until_deadline;
static int ticks;

static void read_client(void)
{
    while (client_reads && sv[0] >= 0 && rx_len < sizeof(rx) - 1) {
        ssize_t n = recv(sv[0], rx + rx_len, sizeof(rx) - 1 - rx_len, MSG_DONTWAIT);
        if (n > 0) {
            rx_len += (size_t)n;
            rx[rx_len] = '\0';
            continue;
        }
        if (n == 0 || (errno != EAGAIN && errno != EINTR))
            rx_eof = true;
        if (n == 0 || errno != EINTR)
            break;
    }
}

static void on_tick(void *arg)
{
    (void)arg;
    ticks++;
    read_client();
    if (until() || loop_now_us() >= until_deadline)
        loop_break(&loop);
}

/* Runs the loop until cond() holds, at most timeout_ms; fails the test if
 * it never does. */
static void run_until(bool (*cond)(void), int64_t timeout_ms, const char *what)
{
    until = cond;
    until_deadline = loop_now_us() + timeout_ms * 1000;
    ck_assert_int_eq(loop_watch_start(tick, 1000), 0);
    ck_assert_int_eq(loop_run(&loop), 0);
    loop_watch_stop(tick);
    read_client();
    ck_assert_msg(cond(), "timed out waiting for %s", what);
}

static void setup(void)
{
    ck_assert_int_eq(loop_init(&loop, 0, 8), 0);
    fixture_init(&fx, &(struct resource_settings){.use_lock = true});
    limits = (struct conn_limits){.http = HTTP_LIMITS_DEFAULT,
                                  .header_timeout_ms = 10000,
                                  .keepalive_timeout_ms = 15000,
                                  .send_timeout_ms = 10000};
    ctx = (struct conn_ctx){.loop = &loop,
                            .limits = &limits,
                            .handlers = &fx.hctx,
                            .tally = &fx.requests,
                            .draining = &fx.draining,
                            .opened = on_opened,
                            .closed = on_closed,
                            .lingering = on_lingering,
                            .owner = &hooks};
    memset(&hooks, 0, sizeof(hooks));
    list_init(&hooks.owned);
    rx_len = 0;
    rx[0] = '\0';
    rx_eof = false;
    client_reads = true;
    server_sends = 0;
    ticks = 0;
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
    server_fd = sv[1];
    tick = loop_watch_timer(&loop, true, LOOP_PRIO_LATE, on_tick, NULL);
    ck_assert_ptr_nonnull(tick);
}

static void teardown(void)
{
    if (sv[0] >= 0)
        close(sv[0]);
    if (hooks.opened == 0 && sv[1] >= 0)
        close(sv[1]); /* never handed over */
    sv[0] = sv[1] = server_fd = -1;
    loop_watch_free(tick);
    fixture_fini(&fx);
    loop_fini(&loop);
}

/* Hands the server's end to a new connection. */
static void accept_conn(void)
{
    ck_assert_int_eq(conn_accept(&ctx, sv[1]), 0);
    ck_assert_int_eq(hooks.opened, 1); /* before it first waited */
    ck_assert_int_eq(hooks.closed, 0);
    ck_assert_ptr_eq(conn_of_node(list_first(&hooks.owned)), hooks.c);
}

static void client_send(const char *s)
{
    size_t len = strlen(s);
    ck_assert_int_eq(send(sv[0], s, len, MSG_NOSIGNAL), (ssize_t)len);
}

/* ---- reading the replies ---- */

struct resp {
    int status;
    const char *head; /* status line and headers, up to the blank line */
    size_t head_len;
    const char *body;
    size_t body_len;
};

static struct resp resps[64];

/* Splits rx into whole responses (by Content-Length); returns how many. */
static int parse_responses(void)
{
    const char *p = rx, *end = rx + rx_len;
    int n = 0;
    while (n < 64 && p < end) {
        const char *blank = memmem(p, (size_t)(end - p), "\r\n\r\n", 4);
        int status;
        if (!blank || sscanf(p, "HTTP/1.1 %3d ", &status) != 1)
            break;
        const char *cl = memmem(p, (size_t)(blank - p), "\r\nContent-Length: ", 18);
        size_t body_len = cl ? strtoul(cl + 18, NULL, 10) : 0;
        const char *body = blank + 4;
        if (body + body_len > end)
            break;
        resps[n++] = (struct resp){.status = status,
                                   .head = p,
                                   .head_len = (size_t)(blank + 2 - p),
                                   .body = body,
                                   .body_len = body_len};
        p = body + body_len;
    }
    return n;
}

static bool has_header(const struct resp *r, const char *line)
{
    return memmem(r->head, r->head_len, line, strlen(line)) != NULL;
}

static void assert_body(const struct resp *r, const char *body)
{
    ck_assert_msg(r->body_len == strlen(body) && memcmp(r->body, body, r->body_len) == 0,
                  "body \"%.*s\", not \"%s\"", (int)r->body_len, r->body, body);
}

static int want_responses;

static bool got_responses(void)
{
    return parse_responses() >= want_responses;
}

static void await_responses(int n)
{
    want_responses = n;
    run_until(got_responses, 10000, "the responses");
}

static bool conn_closed(void)
{
    return hooks.closed > 0;
}

static void await_close(enum tally_end why)
{
    run_until(conn_closed, 10000, "the connection to close");
    ck_assert_int_eq(hooks.closed, 1);
    ck_assert_int_eq(hooks.opened, 1);
    ck_assert(hooks.same);
    ck_assert_msg(hooks.why == why, "ended as %s, not %s", tally_end_names[hooks.why],
                  tally_end_names[why]);
    ck_assert_msg(hooks.fd_was_closed, "the descriptor was still open in the closed hook");
    ck_assert(list_empty(&hooks.owned));
    ck_assert_uint_eq(loop.pool.nlive, 0); /* its coroutine has finished */
}

/* After the server closed, the client reads end of stream. */
static bool client_saw_eof(void)
{
    return rx_eof;
}

static const char get_access[] = "GET /access HTTP/1.1\r\nHost: t\r\n\r\n";

/* ---- serving ---- */

/* A socket the loop cannot watch (out of memory in the server; here a
 * descriptor epoll refuses) is handed back unopened, for the caller to
 * refuse with a 503 as it does when no coroutine can be had, and not
 * closed without a word. */
START_TEST(a_socket_that_cannot_be_watched_is_handed_back)
{
    int fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_lt(conn_accept(&ctx, fd), 0);
    ck_assert_int_eq(hooks.opened, 0);
    ck_assert_int_eq(hooks.closed, 0);
    ck_assert_int_ne(fcntl(fd, F_GETFD), -1); /* still the caller's */
    close(fd);
}
END_TEST

/* A refusal of a client whose request has already arrived: the client
 * reads the 503 and then the end of the stream, not a reset (which some
 * stacks take as leave to drop the 503 unread: RFC 9112, 9.6). TCP, not
 * the fixture's socketpair: only TCP has resets. */
START_TEST(a_refusal_ends_with_a_fin_not_a_reset)
{
    static const char req[] = "GET /access HTTP/1.1\r\nHost: t\r\n\r\n";
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), client, server;
    ck_assert_int_eq(bind(l, (struct sockaddr *)&a, len), 0);
    ck_assert_int_eq(listen(l, 1), 0);
    ck_assert_int_eq(getsockname(l, (struct sockaddr *)&a, &len), 0);
    client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_eq(connect(client, (struct sockaddr *)&a, len), 0);
    server = accept4(l, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    ck_assert_int_ge(server, 0);
    close(l);
    ck_assert_int_eq(send(client, req, sizeof(req) - 1, 0), (ssize_t)sizeof(req) - 1);
    conn_refuse(server); /* on loopback the request is in its queue already */
    close(server);
    char buf[512];
    ssize_t n = recv(client, buf, sizeof(buf) - 1, 0);
    ck_assert_int_gt(n, 0);
    buf[n] = '\0';
    ck_assert_msg(strncmp(buf, "HTTP/1.1 503 ", 13) == 0, "%s", buf);
    n = recv(client, buf, sizeof(buf), 0);
    ck_assert_msg(n == 0, "after the 503: %zd (%s), not the end of the stream", n,
                  n < 0 ? strerror(errno) : "more bytes");
    close(client);
}
END_TEST

START_TEST(get_access_then_keep_alive_then_client_close)
{
    accept_conn();
    client_send(get_access);
    await_responses(1);
    ck_assert_int_eq(resps[0].status, 200);
    assert_body(&resps[0], "Resource accessed 1 times.");
    ck_assert(!has_header(&resps[0], "Connection: close"));
    ck_assert(has_header(&resps[0], "\r\nServer-Timing: lock;dur="));
    ck_assert_int_eq(hooks.closed, 0); /* kept alive */

    client_send(get_access);
    await_responses(2);
    assert_body(&resps[1], "Resource accessed 2 times.");

    shutdown(sv[0], SHUT_WR); /* the client is done */
    await_close(TALLY_END_CLIENT);
    ck_assert_uint_eq(fx.res.counter, 2);
    ck_assert_uint_eq(fx.requests.total, 2);
    ck_assert_uint_eq(fx.requests.access, 2);
    ck_assert_uint_eq(fx.requests.by_route[TALLY_ACCESS][TALLY_200], 2);
    ck_assert_uint_eq(fx.requests.gone, 0);
    ck_assert_uint_eq(fx.grants.total, 2);
}
END_TEST

START_TEST(connection_close_ends_after_the_reply)
{
    accept_conn();
    client_send("GET /access HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    await_close(TALLY_END_DONE);
    run_until(client_saw_eof, 10000, "end of stream");
    ck_assert_int_eq(parse_responses(), 1);
    ck_assert_int_eq(resps[0].status, 200);
    ck_assert(has_header(&resps[0], "\r\nConnection: close\r\n"));
    ck_assert_uint_eq(resps[0].body + resps[0].body_len - rx, rx_len); /* nothing after it */
    ck_assert_uint_eq(fx.requests.by_route[TALLY_ACCESS][TALLY_200], 1);
}
END_TEST

START_TEST(http10_without_keep_alive_ends_after_the_reply)
{
    accept_conn();
    client_send("GET /nope HTTP/1.0\r\n\r\n");
    await_close(TALLY_END_DONE);
    ck_assert_int_eq(parse_responses(), 1);
    ck_assert_int_eq(resps[0].status, 404);
    ck_assert_uint_eq(fx.requests.by_route[TALLY_UNKNOWN][TALLY_404], 1);
}
END_TEST

/* ---- the lock held by a coroutine of the test's ---- */

static struct fixture_holder holder;

static bool one_queued(void)
{
    return fx.res.lock.stats.waiters == 1;
}

/* ---- pipelining ---- */

/* Replies to requests that cannot block collect in the output buffer and
 * go out in one write. */
START_TEST(pipelined_requests_answered_in_order_in_one_write)
{
    accept_conn();
    client_send("GET /a HTTP/1.1\r\nHost: t\r\n\r\n"
                "POST /access HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc"
                "GET /b HTTP/1.1\r\nHost: t\r\n\r\n");
    await_responses(3);
    ck_assert_int_eq(resps[0].status, 404);
    ck_assert_int_eq(resps[1].status, 405);
    ck_assert(has_header(&resps[1], "\r\nAllow: GET, HEAD\r\n"));
    ck_assert_int_eq(resps[2].status, 404);
    ck_assert_int_eq(server_sends, 1);
    ck_assert_int_eq(hooks.closed, 0);
    ck_assert_uint_eq(fx.requests.total, 3);
    ck_assert_uint_eq(fx.requests.by_route[TALLY_UNKNOWN][TALLY_404], 2);
    ck_assert_uint_eq(fx.requests.by_route[TALLY_UNKNOWN][TALLY_405], 1);
    ck_assert_uint_eq(fx.res.counter, 0);
}
END_TEST

/* /access may wait for the lock, so replies before it are sent first:
 * at most one write per /access, and the order holds. */
START_TEST(pipelined_access_requests_answered_in_order)
{
    accept_conn();
    client_send("GET /access HTTP/1.1\r\nHost: t\r\n\r\n"
                "GET /nope HTTP/1.1\r\nHost: t\r\n\r\n"
                "GET /access HTTP/1.1\r\nHost: t\r\n\r\n"
                "GET /access HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    await_close(TALLY_END_DONE);
    ck_assert_int_eq(parse_responses(), 4);
    assert_body(&resps[0], "Resource accessed 1 times.");
    ck_assert_int_eq(resps[1].status, 404);
    assert_body(&resps[2], "Resource accessed 2 times.");
    assert_body(&resps[3], "Resource accessed 3 times.");
    ck_assert(has_header(&resps[3], "\r\nConnection: close\r\n"));
    ck_assert_msg(server_sends <= 3, "%d writes for 4 pipelined replies", server_sends);
    ck_assert_uint_eq(fx.requests.total, 4);
    ck_assert_uint_eq(fx.requests.access, 3);
}
END_TEST

/* A reply is never held back behind a request that waits for the lock. */
START_TEST(reply_before_a_queued_request_is_not_held_back)
{
    fixture_hold(&holder, &loop, &fx.res.lock);
    accept_conn();
    client_send("GET /nope HTTP/1.1\r\nHost: t\r\n\r\n"
                "GET /access HTTP/1.1\r\nHost: t\r\n\r\n");
    run_until(one_queued, 10000, "the request to queue");
    await_responses(1); /* while /access still waits */
    ck_assert_int_eq(resps[0].status, 404);
    ck_assert_uint_eq(fx.res.lock.stats.waiters, 1);
    fixture_release(&holder);
    await_responses(2);
    assert_body(&resps[1], "Resource accessed 1 times.");
}
END_TEST

/* ---- bad requests ---- */

START_TEST(malformed_request_is_400_and_closes)
{
    accept_conn();
    client_send("GET /access HTTP/1.1\r\nHost: t\r\n\r\n"
                "hello world\r\n\r\n");
    /* A staged close: the reply and our FIN come, but we read on until
     * the client is done too, so our close cannot reset the reply away. */
    run_until(client_saw_eof, 10000, "end of stream");
    ck_assert_int_eq(hooks.lingering, 1);
    ck_assert_int_eq(hooks.closed, 0);
    client_send("more input that the server drops\r\n");
    ck_assert_int_eq(shutdown(sv[0], SHUT_WR), 0);
    await_close(TALLY_END_BAD_REQUEST);
    ck_assert_int_eq(hooks.lingered, 1);
    ck_assert_int_eq(parse_responses(), 2);
    ck_assert_int_eq(resps[0].status, 200);
    ck_assert_int_eq(resps[1].status, 400);
    ck_assert(has_header(&resps[1], "\r\nConnection: close\r\n"));
    ck_assert_uint_eq(fx.res.counter, 1); /* only the good request touched it */
    ck_assert_uint_eq(fx.requests.total, 2);
    ck_assert_uint_eq(fx.requests.by_route[TALLY_NONE][TALLY_400], 1);
    ck_assert_uint_eq(fx.requests.by_route[TALLY_ACCESS][TALLY_200], 1);
}
END_TEST

/* ---- timeouts ---- */

START_TEST(header_deadline_is_408)
{
    limits.header_timeout_ms = 50;
    accept_conn();
    int64_t t0 = loop_now_us();
    client_send("GET /access HTTP/1.1\r\nHost: t\r\n"); /* never finished */
    await_close(TALLY_END_TIMEOUT);
    ck_assert_int_ge(hooks.closed_at - t0, 50000); /* never early */
    ck_assert_int_eq(parse_responses(), 1);
    ck_assert_int_eq(resps[0].status, 408);
    ck_assert(has_header(&resps[0], "\r\nConnection: close\r\n"));
    ck_assert_uint_eq(fx.requests.by_route[TALLY_NONE][TALLY_408], 1);
    ck_assert_uint_eq(fx.res.counter, 0);
}
END_TEST

/* A header that trickles in still meets its deadline: the clock starts at
 * the first byte and is not reset by each new one. */
static int trickled;
static bool trickle_done, trickle_stop;

static void trickle(void *arg)
{
    (void)arg;
    while (!trickle_stop && trickled < 2000) { /* 10 s at most */
        if (send(sv[0], "X", 1, MSG_NOSIGNAL) != 1)
            break;
        trickled++;
        loop_sleep_us(5000);
    }
    trickle_done = true;
}

static bool trickle_finished(void)
{
    return trickle_done;
}

START_TEST(header_deadline_holds_for_a_trickling_client)
{
    limits.header_timeout_ms = 100;
    trickled = 0;
    trickle_done = trickle_stop = false;
    accept_conn();
    int64_t t0 = loop_now_us();
    client_send("GET /access HTTP/1.1\r\nHost: t\r\nX-Slow: ");
    ck_assert_int_eq(loop_spawn(&loop, trickle, NULL, NULL), 0);
    run_until(client_saw_eof, 20000, "the 408 and the server's FIN");
    ck_assert_int_ge(loop_now_us() - t0, 100000);
    ck_assert_int_gt(trickled, 1);    /* bytes kept coming... */
    ck_assert_int_lt(trickled, 2000); /* ...and the deadline came while they did */
    ck_assert_int_eq(parse_responses(), 1);
    ck_assert_int_eq(resps[0].status, 408);
    /* The staged close reads on until the client stops too. */
    trickle_stop = true;
    run_until(trickle_finished, 10000, "the trickler to stop");
    ck_assert_int_eq(shutdown(sv[0], SHUT_WR), 0);
    await_close(TALLY_END_TIMEOUT);
}
END_TEST

START_TEST(keep_alive_idle_timeout)
{
    limits.keepalive_timeout_ms = 50;
    limits.header_timeout_ms = 60000; /* not this one */
    accept_conn();
    int64_t t0 = loop_now_us(); /* the idle wait starts after this */
    client_send(get_access);
    await_responses(1);
    await_close(TALLY_END_IDLE);
    ck_assert_int_ge(hooks.closed_at - t0, 50000);
    ck_assert_int_eq(parse_responses(), 1); /* nothing sent for an idle close */
    ck_assert_uint_eq(resps[0].body + resps[0].body_len - rx, rx_len);
}
END_TEST

/* A connection that never sends a byte is idle, not in a header. */
START_TEST(silent_connection_times_out_as_idle)
{
    limits.keepalive_timeout_ms = 50;
    limits.header_timeout_ms = 60000; /* not this one */
    int64_t t0 = loop_now_us();
    accept_conn();
    await_close(TALLY_END_IDLE);
    ck_assert_int_ge(hooks.closed_at - t0, 50000);
    ck_assert_uint_eq(rx_len, 0);
    ck_assert_uint_eq(fx.requests.total, 0);
}
END_TEST

/* A client that sends requests but never reads the replies is cut once a
 * reply has waited send_timeout_ms for room. */
START_TEST(unread_replies_hit_the_send_timeout)
{
    int small = 4096;
    ck_assert_int_eq(setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
    ck_assert_int_eq(setsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)), 0);
    limits.send_timeout_ms = 50;
    client_reads = false;
    accept_conn();
    /* Each /stats reply is about a kilobyte: far more than fits. */
    static char burst[40 * 32 + 1];
    burst[0] = '\0';
    for (int i = 0; i < 40; i++)
        strcat(burst, "GET /stats HTTP/1.1\r\nHost: t\r\n\r\n");
    client_send(burst);
    await_close(TALLY_END_TIMEOUT);
}
END_TEST

/* ---- leaving while queued ---- */

START_TEST(client_that_leaves_while_queued_is_gone)
{
    fixture_hold(&holder, &loop, &fx.res.lock);
    accept_conn();
    client_send(get_access);
    run_until(one_queued, 10000, "the request to queue");
    close(sv[0]);
    sv[0] = -1;
    run_until(conn_closed, 10000, "the connection to close");
    ck_assert_int_eq(hooks.why, TALLY_END_GONE);
    ck_assert_uint_eq(fx.res.lock.stats.waiters, 0); /* it left the queue at once */
    ck_assert_uint_eq(fx.res.lock.stats.cancellations, 1);
    ck_assert_uint_eq(fx.requests.gone, 1);
    ck_assert_uint_eq(fx.requests.total, 1);
    fixture_release(&holder);
    ck_assert_uint_eq(fx.res.counter, 0);
    ck_assert_uint_eq(loop.pool.nlive, 0);
}
END_TEST

/* ---- stopping ---- */

START_TEST(drain_closes_an_idle_connection_at_once)
{
    accept_conn();
    client_send(get_access);
    await_responses(1);
    fx.draining = true;
    conn_drain(hooks.c);
    /* At once: long before the 15 s keep-alive timeout. */
    await_close(TALLY_END_DONE);
    run_until(client_saw_eof, 10000, "end of stream");
    ck_assert_int_eq(parse_responses(), 1);
}
END_TEST

/* A stop cuts a staged close short. */
START_TEST(drain_ends_a_staged_close)
{
    accept_conn();
    client_send("BAD\r\n\r\n");
    run_until(client_saw_eof, 10000, "end of stream");
    ck_assert_int_eq(hooks.lingering, 1);
    fx.draining = true;
    conn_drain(hooks.c);
    await_close(TALLY_END_BAD_REQUEST);
}
END_TEST

START_TEST(drain_closes_a_connection_that_sent_nothing)
{
    accept_conn();
    fx.draining = true;
    conn_drain(hooks.c);
    await_close(TALLY_END_DONE);
    ck_assert_uint_eq(rx_len, 0);
}
END_TEST

static bool a_few_ticks(void)
{
    return ticks >= 5;
}

/* A request queued for the lock when the stop comes runs to the end and is
 * answered, with Connection: close. */
START_TEST(drain_lets_a_busy_connection_finish)
{
    fixture_hold(&holder, &loop, &fx.res.lock);
    accept_conn();
    client_send(get_access);
    run_until(one_queued, 10000, "the request to queue");
    fx.draining = true;
    conn_drain(hooks.c);
    ticks = 0;
    run_until(a_few_ticks, 10000, "a few loop turns"); /* room for a wrong cancel to land */
    ck_assert_int_eq(hooks.closed, 0);
    ck_assert_uint_eq(fx.res.lock.stats.waiters, 1);
    fixture_release(&holder);
    await_close(TALLY_END_DONE);
    ck_assert_int_eq(parse_responses(), 1);
    ck_assert_int_eq(resps[0].status, 200);
    assert_body(&resps[0], "Resource accessed 1 times.");
    ck_assert(has_header(&resps[0], "\r\nConnection: close\r\n"));
    ck_assert_uint_eq(fx.res.lock.stats.cancellations, 0);
}
END_TEST

/* ---- refusing ---- */

START_TEST(refuse_writes_503_with_retry_after)
{
    conn_refuse(sv[1]);
    close(sv[1]);
    server_fd = sv[1] = -1;
    read_client();
    ck_assert(rx_eof);
    ck_assert_int_eq(parse_responses(), 1);
    ck_assert_int_eq(resps[0].status, 503);
    ck_assert(has_header(&resps[0], "\r\nRetry-After: 1\r\n"));
    ck_assert(has_header(&resps[0], "\r\nConnection: close\r\n"));
    assert_body(&resps[0], "Server overloaded.\n");
    ck_assert_uint_eq(resps[0].body + resps[0].body_len - rx, rx_len);
}
END_TEST

/* ---- the counts ---- */

START_TEST(counts_match_what_was_sent)
{
    accept_conn();
    client_send("GET /access HTTP/1.1\r\nHost: t\r\n\r\n"
                "GET /stats HTTP/1.1\r\nHost: t\r\n\r\n"
                "GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n"
                "DELETE /stats HTTP/1.1\r\nHost: t\r\n\r\n"
                "GET /nope HTTP/1.1\r\nHost: t\r\n\r\n"
                "GET /access HTTP/1.1\r\nHost: t\r\n\r\n");
    await_responses(6);
    static const int want[] = {200, 200, 200, 405, 404, 200};
    for (int i = 0; i < 6; i++)
        ck_assert_int_eq(resps[i].status, want[i]);
    shutdown(sv[0], SHUT_WR);
    await_close(TALLY_END_CLIENT);
    ck_assert_uint_eq(fx.requests.total, 6);
    ck_assert_uint_eq(fx.requests.access, 2);
    ck_assert_uint_eq(fx.requests.by_route[TALLY_ACCESS][TALLY_200], 2);
    ck_assert_uint_eq(fx.requests.by_route[TALLY_STATS][TALLY_200], 1);
    ck_assert_uint_eq(fx.requests.by_route[TALLY_METRICS][TALLY_200], 1);
    ck_assert_uint_eq(fx.requests.by_route[TALLY_UNKNOWN][TALLY_405], 1);
    ck_assert_uint_eq(fx.requests.by_route[TALLY_UNKNOWN][TALLY_404], 1);
    uint64_t sum = 0;
    for (unsigned r = 0; r < TALLY_ROUTES; r++)
        for (unsigned s = 0; s < TALLY_STATUSES; s++)
            sum += fx.requests.by_route[r][s];
    ck_assert_uint_eq(sum, 6);
}
END_TEST

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    Suite *s = suite_create("conn");
    TCase *tc = tcase_create("conn");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, a_socket_that_cannot_be_watched_is_handed_back);
    tcase_add_test(tc, a_refusal_ends_with_a_fin_not_a_reset);
    tcase_add_test(tc, get_access_then_keep_alive_then_client_close);
    tcase_add_test(tc, connection_close_ends_after_the_reply);
    tcase_add_test(tc, http10_without_keep_alive_ends_after_the_reply);
    tcase_add_test(tc, pipelined_requests_answered_in_order_in_one_write);
    tcase_add_test(tc, pipelined_access_requests_answered_in_order);
    tcase_add_test(tc, reply_before_a_queued_request_is_not_held_back);
    tcase_add_test(tc, malformed_request_is_400_and_closes);
    tcase_add_test(tc, header_deadline_is_408);
    tcase_add_test(tc, header_deadline_holds_for_a_trickling_client);
    tcase_add_test(tc, keep_alive_idle_timeout);
    tcase_add_test(tc, silent_connection_times_out_as_idle);
    tcase_add_test(tc, unread_replies_hit_the_send_timeout);
    tcase_add_test(tc, client_that_leaves_while_queued_is_gone);
    tcase_add_test(tc, drain_closes_an_idle_connection_at_once);
    tcase_add_test(tc, drain_closes_a_connection_that_sent_nothing);
    tcase_add_test(tc, drain_ends_a_staged_close);
    tcase_add_test(tc, drain_lets_a_busy_connection_finish);
    tcase_add_test(tc, refuse_writes_503_with_retry_after);
    tcase_add_test(tc, counts_match_what_was_sent);
    suite_add_tcase(s, tc);
    return check_run(s);
}
