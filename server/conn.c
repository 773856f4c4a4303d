/* conn: a connection's life in one coroutine. See conn.h.
 *
 * struct conn lives on the coroutine's own (pooled) stack, so a connection
 * costs no allocation, and only the pages its buffers actually touch cost
 * memory. Replies to pipelined requests collect in the output buffer and go
 * out in one send when the parser needs more input, or before a request
 * that may wait (so an earlier reply is never held back behind the lock).
 * Every path out ends in conn_close(). */
#include "conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "limits.h"
#include "log.h"
#include "loop.h"
#include "reply.h"
#include "route.h"

#define CONN_IN_CAP  1024 /* unparsed input; the parser keeps what it needs */
#define CONN_OUT_CAP 2048 /* replies waiting to be sent */

struct conn {
    const struct conn_ctx *ctx;
    struct list_node node; /* the owner's: in its list of connections */
    coro_t *co;
    int fd;
    bool idle;           /* parked between requests: a stop may close it */
    bool gone;           /* the client hung up while its request ran */
    bool streaming;      /* a stream route has the connection */
    bool linger;         /* close in stages: the client may still be sending */
    bool lingering;      /* in the staged close: a stop may cut it short */
    int64_t deadline_us; /* for the request being read */
    struct loop_io io;
    char peer[48]; /* the client's address, for the access log */
    size_t in_off, in_len, out_len;
    struct http_parser parser;
    /* Only the first bytes of each buffer are touched by a small request:
     * the smaller one first keeps both beginnings near the parser. */
    char in[CONN_IN_CAP];
    char out[CONN_OUT_CAP];
};

struct accept_args {
    const struct conn_ctx *ctx;
    int fd;
    int rc; /* set by the coroutine before it first waits */
};

/* ---- output ---- */

/* Sends len bytes, parking while the socket is full. Returns 0, or a
 * negative errno when the client is gone or does not read within the send
 * timeout (one deadline for the whole of it: a trickling reader is cut). */
static int send_within(struct conn *c, const char *buf, size_t len, uint64_t timeout_ms)
{
    int64_t deadline = loop_clock_us() + loop_ms_to_us(timeout_ms);
    size_t off = 0;
    while (off < len) {
        ssize_t n = send(c->fd, buf + off, len - off, MSG_NOSIGNAL);
        if (n > 0) {
            off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno != EAGAIN)
            return -errno;
        loop_io_clear(&c->io, LOOP_WRITE);
        int rc = loop_io_wait(&c->io, LOOP_WRITE, deadline);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int send_all(struct conn *c, const char *buf, size_t len)
{
    return send_within(c, buf, len, c->ctx->limits->send_timeout_ms);
}

static int flush(struct conn *c)
{
    int rc = send_all(c, c->out, c->out_len);
    if (rc == 0)
        c->out_len = 0;
    return rc;
}

/* Formats a reply after those already waiting, flushing first if full. A
 * body larger than the buffer (/metrics) follows its head straight from
 * the route's buffer. */
static int append_reply(struct conn *c, const struct reply *r, enum tally_route route)
{
    tally_response(c->ctx->tally, route, r->status);
    size_t n = reply_format(c->out + c->out_len, sizeof(c->out) - c->out_len, r);
    if (n == 0 && c->out_len > 0) {
        int rc = flush(c);
        if (rc < 0)
            return rc;
        n = reply_format(c->out, sizeof(c->out), r);
    }
    if (n > 0) {
        c->out_len += n;
        return 0;
    }
    struct reply head = *r;
    head.head = true;
    c->out_len = reply_format(c->out, sizeof(c->out), &head);
    int rc = c->out_len ? flush(c) : -EMSGSIZE;
    return rc < 0 || r->head ? rc : send_all(c, r->body, r->body_len);
}

/* The reply to a request that ends the connection unserved. The client
 * may still be sending it: the close is staged (see linger()). */
static void answer_error(struct conn *c, int status)
{
    const char *reason = reply_reason(status);
    char body[64];
    int len = snprintf(body, sizeof(body), "%s\n", reason);
    struct reply r = {.status = status,
                      .body = body,
                      .body_len = (size_t)len,
                      .keep_alive = false,
                      .head = c->parser.head_done && c->parser.req.method == HTTP_HEAD};
    tally_add(&c->ctx->tally->total, 1);
    if (log_access_enabled())
        log_access(c->peer, "-", "-", 1, status, r.body_len, 0);
    int rc = append_reply(c, &r, TALLY_NONE);
    c->linger = rc == 0 && flush(c) == 0;
}

/* ---- input ---- */

/* Reads into the (fully consumed) input buffer, parking while nothing
 * comes. Returns bytes read, 0 at end of stream, or a negative errno:
 * -ETIMEDOUT at the deadline, -ECANCELED when a stop closes an idle
 * connection. A read shorter than the buffer drained the socket, so the
 * next call waits for an edge instead of spending a recv on EAGAIN. */
static ssize_t fill(struct conn *c)
{
    c->in_off = c->in_len = 0;
    for (;;) {
        if (c->io.ready & LOOP_READ) {
            ssize_t n = recv(c->fd, c->in, sizeof(c->in), 0);
            if (n >= 0 && (size_t)n < sizeof(c->in))
                loop_io_clear(&c->io, LOOP_READ);
            if (n >= 0)
                return n;
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN)
                return -errno;
            loop_io_clear(&c->io, LOOP_READ);
        }
        c->idle = http_parser_idle(&c->parser);
        if (c->idle && *c->ctx->draining)
            return -ECANCELED;
        int64_t deadline =
            c->idle ? loop_clock_us() + loop_ms_to_us(c->ctx->limits->keepalive_timeout_ms)
                    : c->deadline_us;
        int rc = loop_io_wait(&c->io, LOOP_READ, deadline);
        c->idle = false;
        if (rc < 0)
            return rc;
    }
}

/* The client closed or reset while its request waited for the lock or ran
 * its section: leave the lock queue (a running section completes). */
static void on_hangup(void *arg)
{
    struct conn *c = arg;
    char byte;
    /* EPOLLRDHUP also comes for a half-close after pipelined data: a client
     * with bytes still unread is still talking to us. */
    ssize_t n = recv(c->fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    /* A stream has no next request to read: the FIN ends it, whatever
     * bytes came before. */
    bool left = c->streaming && c->io.peer_closed;
    if (!left && (n > 0 || (n < 0 && (errno == EAGAIN || errno == EINTR))))
        return;
    c->gone = true;
    loop_cancel(c->co);
}

/* ---- streams (handler.h) ---- */

static int stream_write(void *conn, const char *buf, size_t len, uint64_t timeout_ms)
{
    struct conn *c = conn;
    return c->gone ? -EPIPE : send_within(c, buf, len, timeout_ms);
}

static bool stream_pause(void *conn, int64_t us)
{
    struct conn *c = conn;
    /* A hang-up cancels the sleep (see on_hangup); a stop ends it too. */
    return !c->io.peer_closed && loop_sleep_us(us) == 0 && !c->gone && !*c->ctx->draining;
}

/* ---- requests ---- */

/* Runs one complete request and queues its reply. Returns 1 to keep the
 * connection for another request, 0 to close it after the replies, or a
 * negative errno when the reply could not be sent. */
static int handle(struct conn *c)
{
    const struct http_request *req = &c->parser.req;
    char body[ROUTE_BODY_CAP];
    struct handler_reply rr;

    tally_add(&c->ctx->tally->total, 1);
    if (c->out_len > 0 && route_may_block(req)) {
        int rc = flush(c);
        if (rc < 0)
            return rc;
    }
    route_dispatch(c->ctx->handlers, req, &rr, body, sizeof(body));
    if (c->gone || rr.status == 0) {
        route_release(rr.owned);
        c->gone = true;
        tally_add(&c->ctx->tally->gone, 1);
        return -EPIPE;
    }
    /* A request answered before its body was read (a refused
     * expectation) cannot leave the connection in a known state. */
    bool keep =
        req->keep_alive && !rr.close && !*c->ctx->draining && !rr.stream && c->parser.complete;
    struct reply r = {
        .status = rr.status,
        .content_type = rr.content_type,
        .body = rr.body,
        .body_len = rr.body_len,
        .extra_headers = rr.extra_headers,
        .keep_alive = keep,
        .http10 = req->minor == 0,
        .head = req->method == HTTP_HEAD,
        .stream = rr.stream != NULL,
    };
    int rc = append_reply(c, &r, rr.route);
    route_release(rr.owned); /* copied or sent by now */
    if (rc < 0)
        return rc;
    if (log_access_enabled())
        log_access(c->peer, llhttp_method_name(req->method), req->path, req->minor, rr.status,
                   rr.body_len, rr.wait_us);
    if (rr.stream && !r.head && flush(c) == 0) {
        /* The kernel would grow the send buffer to megabytes and hide a
         * subscriber that does not read; keep it small so the stream's
         * write timeout drops that subscriber promptly. */
        int sndbuf = 64 * 1024;
        setsockopt(c->fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
        c->streaming = true;
        struct handler_stream s = {.write = stream_write, .pause = stream_pause, .conn = c};
        rr.stream(c->ctx->handlers, &s);
    }
    return keep;
}

/* Expect: 100-continue (RFC 9110 10.1.1): the client waits for a word
 * before it sends the body. A request that will be refused anyway (no
 * such path, or a method the path does not take) gets its final status at
 * once and the connection ends; any other is told to go on. (A body over
 * the limit was refused by its Content-Length already: 413.) Returns 1 to
 * go on reading, 0 when answered, or a negative errno. */
static int answer_expectation(struct conn *c)
{
    http_parser_continue_sent(&c->parser);
    if (route_refusal(&c->parser.req)) {
        int rc = handle(c); /* the refusal, with Connection: close */
        return rc < 0 ? rc : flush(c) < 0 ? -EPIPE : 0;
    }
    if (c->out_len + REPLY_CONTINUE_LEN > sizeof(c->out)) {
        int rc = flush(c);
        if (rc < 0)
            return rc;
    }
    memcpy(c->out + c->out_len, REPLY_CONTINUE, REPLY_CONTINUE_LEN);
    c->out_len += REPLY_CONTINUE_LEN;
    int rc = flush(c);
    return rc < 0 ? rc : 1;
}

/* True if the client sent more than we read: pipelined requests after
 * one that closes the connection, or a body we did not wait for. */
static bool unread_input(const struct conn *c)
{
    char byte;
    return c->in_off < c->in_len || recv(c->fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT) > 0;
}

/* Why a connection ends when sending failed with err. */
static enum tally_end send_failure(const struct conn *c, int err)
{
    if (c->gone)
        return TALLY_END_GONE;
    return err == -ETIMEDOUT ? TALLY_END_TIMEOUT : TALLY_END_CLIENT;
}

/* Parses what is buffered, serving each complete request in order, and
 * reads more until the connection should end. Returns why it ended. */
static enum tally_end serve(struct conn *c)
{
    for (;;) {
        if (c->in_off < c->in_len) {
            if (http_parser_idle(&c->parser)) /* a new request: its deadline starts */
                c->deadline_us = loop_clock_us() + loop_ms_to_us(c->ctx->limits->header_timeout_ms);
            c->in_off += http_parse(&c->parser, c->in + c->in_off, c->in_len - c->in_off);
        }
        if (c->parser.error_status) {
            answer_error(c, c->parser.error_status);
            return TALLY_END_BAD_REQUEST;
        }
        if (http_parser_continue_due(&c->parser)) {
            int rc = answer_expectation(c);
            if (rc < 0)
                return send_failure(c, rc);
            if (rc == 0) {
                c->linger = true; /* the body may come all the same */
                return TALLY_END_DONE;
            }
        }
        if (c->parser.complete) {
            int rc = handle(c);
            if (rc == 0)
                rc = flush(c);
            if (rc < 0)
                return send_failure(c, rc);
            if (rc == 0) {
                c->linger = unread_input(c);
                return TALLY_END_DONE;
            }
            http_parser_next(&c->parser);
            continue;
        }
        if (c->out_len > 0) {
            int rc = flush(c);
            if (rc < 0)
                return send_failure(c, rc);
        }
        bool idle = http_parser_idle(&c->parser);
        ssize_t n = fill(c);
        if (n > 0) {
            c->in_len = (size_t)n;
            continue;
        }
        if (n == -ETIMEDOUT && !idle) {
            answer_error(c, 408);
            return TALLY_END_TIMEOUT;
        }
        if (n == -ETIMEDOUT)
            return TALLY_END_IDLE;
        return n == -ECANCELED ? TALLY_END_DONE : TALLY_END_CLIENT;
    }
}

/* Staged close (RFC 9112 9.6). Closing a socket with unread input makes
 * the kernel answer with a reset, which can destroy the reply before the
 * client has read it: a client that sends a 16 MiB body and then reads
 * would see ECONNRESET instead of its 413. So close only our sending
 * side, read and drop what still comes until the client closes too, and
 * only then close; bounded in time and bytes (limits.h), and cut short by
 * a stop. */
static void linger(struct conn *c)
{
    static _Thread_local char sink[64 * 1024]; /* never read: shared */
    if (shutdown(c->fd, SHUT_WR) != 0)
        return;
    c->lingering = true;
    c->ctx->lingering(c->ctx->owner, c, true);
    int64_t end = loop_clock_us() + loop_ms_to_us(LIMIT_LINGER_MS);
    uint64_t left = LIMIT_LINGER_BYTES;
    while (left > 0) {
        ssize_t n = recv(c->fd, sink, sizeof(sink), 0);
        if (n > 0) {
            left -= (uint64_t)n < left ? (uint64_t)n : left;
            continue;
        }
        if (n == 0 || (errno != EAGAIN && errno != EINTR))
            break; /* the client closed too, or reset */
        loop_io_clear(&c->io, LOOP_READ);
        int64_t quiet = loop_clock_us() + loop_ms_to_us(LIMIT_LINGER_QUIET_MS);
        if (loop_io_wait(&c->io, LOOP_READ, quiet < end ? quiet : end) < 0)
            break; /* silent too long, out of time, or the server stops */
    }
    c->lingering = false;
    c->ctx->lingering(c->ctx->owner, c, false);
}

/* The one way out of a connection, whatever ended it. */
static void conn_close(struct conn *c, enum tally_end why)
{
    loop_io_close(&c->io);
    close(c->fd);
    c->ctx->closed(c->ctx->owner, c, why);
}

/* The numeric address of the client, looked up once per connection and
 * only when there is an access log to write it to. */
static void describe_peer(int fd, char *out, size_t cap)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    snprintf(out, cap, "-");
    if (getpeername(fd, (struct sockaddr *)&ss, &len) != 0)
        return;
    if (ss.ss_family == AF_INET)
        inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, out, (socklen_t)cap);
    else if (ss.ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, out, (socklen_t)cap);
}

static void conn_main(void *arg)
{
    struct accept_args *a = arg;
    struct conn c; /* not zeroed whole: untouched buffer pages stay free */

    c.ctx = a->ctx;
    c.fd = a->fd;
    c.co = coro_current();
    c.idle = c.gone = c.streaming = c.linger = c.lingering = false;
    c.in_off = c.in_len = c.out_len = 0;
    c.node = (struct list_node){0};
    /* The watch allocates: out of memory, the socket goes back to the
     * caller, which refuses it as it does when there is no coroutine. */
    a->rc = loop_io_open(&c.io, c.fd, on_hangup, &c);
    if (a->rc < 0)
        return;
    c.ctx->opened(c.ctx->owner, &c);
    http_parser_init(&c.parser, &c.ctx->limits->http);
    if (log_access_enabled())
        describe_peer(c.fd, c.peer, sizeof(c.peer));
    enum tally_end why = serve(&c);
    if (c.linger)
        linger(&c);
    conn_close(&c, why);
}

/* No stack to be had (memory or vm.max_map_count): say so and go on. The
 * reply fits any fresh socket buffer, so one non-blocking send does. The
 * request has often arrived already: closing with it unread would make
 * the kernel answer with a reset, which some clients' stacks take as
 * leave to drop the 503 unread (RFC 9112, 9.6). Reading what is there
 * (a few KiB at most: no staged close without a coroutine) sends a FIN
 * instead in the common case. */
void conn_refuse(int fd)
{
    char buf[512];
    struct reply r = {.status = 503,
                      .body = "Server overloaded.\n",
                      .body_len = 19,
                      .extra_headers = "Retry-After: 1\r\n",
                      .keep_alive = false};
    size_t n = reply_format(buf, sizeof(buf), &r);
    (void)!send(fd, buf, n, MSG_NOSIGNAL | MSG_DONTWAIT);
    shutdown(fd, SHUT_WR);
    for (int i = 0; i < 8 && recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0; i++)
        continue;
}

int conn_accept(const struct conn_ctx *ctx, int fd)
{
    struct accept_args a = {.ctx = ctx, .fd = fd};
    int rc = loop_spawn(ctx->loop, conn_main, &a, NULL);
    return rc < 0 ? rc : a.rc;
}

void conn_drain(struct conn *c)
{
    if (c->idle || c->lingering)
        loop_cancel(c->co);
}

struct list_node *conn_node(struct conn *c)
{
    return &c->node;
}

struct conn *conn_of_node(struct list_node *node)
{
    return list_entry(node, struct conn, node);
}
