/* etcd_conn: one connection to etcd, and where it goes. See etcd_conn.h. */
#include "etcd_conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BODY_KEEP (256 << 10) /* a reply buffer larger than this is freed after use */

/* ---- endpoints ---- */

/* The length of url's scheme, "http://" or "https://" (*https says
 * which), or 0 for neither. */
static size_t scheme_len(const char *url, size_t len, bool *https)
{
    static const char plain[] = "http://", secure[] = "https://";
    *https = len >= strlen(secure) && strncmp(url, secure, strlen(secure)) == 0;
    if (*https)
        return strlen(secure);
    return len >= strlen(plain) && strncmp(url, plain, strlen(plain)) == 0 ? strlen(plain) : 0;
}

static int endpoint_parse(struct etcd_endpoint *ep, const char *url, size_t len, bool *https)
{
    char host[sizeof(ep->host)];
    while (len > 0 && url[len - 1] == '/')
        len--;
    size_t skip = scheme_len(url, len, https);
    if (len >= sizeof(ep->url) || skip == 0 || len == skip)
        return -EINVAL;
    *ep = (struct etcd_endpoint){0};
    memcpy(ep->url, url, len);
    memcpy(ep->host, url + skip, len - skip);
    memcpy(host, ep->host, sizeof(host));
    bool v6 = host[0] == '[';
    char *colon = v6 ? strstr(host, "]:") : strrchr(host, ':');
    if (!colon)
        return -EINVAL;
    char *port_text = colon + (v6 ? 2 : 1), *end;
    *colon = '\0';
    long port = strtol(port_text, &end, 10);
    if (*end || end == port_text || port < 1 || port > 65535)
        return -EINVAL;
    if (v6 && inet_pton(AF_INET6, host + 1, &ep->addr.v6.sin6_addr) == 1) {
        ep->addr.v6.sin6_family = AF_INET6;
        ep->addr.v6.sin6_port = htons((uint16_t)port);
        ep->addr_len = sizeof(ep->addr.v6);
    } else if (!v6 && inet_pton(AF_INET, host, &ep->addr.v4.sin_addr) == 1) {
        ep->addr.v4.sin_family = AF_INET;
        ep->addr.v4.sin_port = htons((uint16_t)port);
        ep->addr_len = sizeof(ep->addr.v4);
    } else {
        return -EINVAL;
    }
    snprintf(ep->ip, sizeof(ep->ip), "%s", host + v6); /* inet_pton checked its length */
    return 0;
}

int etcd_endpoints_parse(struct etcd_endpoints *e, const char *list)
{
    *e = (struct etcd_endpoints){0};
    for (const char *s = list; *s;) {
        s += strspn(s, ", ");
        size_t len = strcspn(s, ", ");
        if (len == 0)
            break;
        bool https;
        if (e->n == ETCD_MAX_ENDPOINTS || endpoint_parse(&e->at[e->n], s, len, &https) < 0)
            return -EINVAL;
        if (e->n > 0 && https != e->https)
            return -EINVAL; /* a mix: TLS to some members only protects nothing */
        e->https = https;
        e->n++;
        s += len;
    }
    return e->n ? 0 : -EINVAL;
}

void etcd_endpoints_fini(struct etcd_endpoints *e)
{
    tls_session_drop(&e->session);
}

void etcd_endpoints_move_on(struct etcd_endpoints *e, unsigned failed)
{
    if (e->current != failed || e->n < 2)
        return;
    e->current = (e->current + 1) % e->n;
    e->rotations++;
}

/* Endpoint `failed` let this client down with rc: it moves on, and the
 * process learns it too. */
static void endpoint_failed(struct etcd_endpoints *e, unsigned failed, int rc)
{
    if (e->health)
        endpoints_abandon(e->health, failed, rc);
    etcd_endpoints_move_on(e, failed);
}

/* The endpoint to try next: this client's, unless the process abandoned
 * it and has a healthy one. */
static unsigned endpoint_pick(struct etcd_endpoints *e)
{
    unsigned ep = e->health ? endpoints_choose(e->health, e->current) : e->current;
    if (ep != e->current)
        e->rotations++;
    e->current = ep;
    return ep;
}

/* ---- one connection ---- */

static int grow(char **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap : 1024;
    while (n < need)
        n *= 2;
    char *p = realloc(*buf, n);
    if (!p)
        return -ENOMEM;
    *buf = p;
    *cap = n;
    return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
    struct etcd_conn *conn = p->data;
    if (len > ETCD_MAX_REPLY - conn->body_len)
        conn->error = -EMSGSIZE;
    else if (grow(&conn->body, &conn->body_cap, conn->body_len + len) < 0)
        conn->error = -ENOMEM;
    if (conn->error)
        return -1;
    memcpy(conn->body + conn->body_len, at, len);
    conn->body_len += len;
    return 0;
}

/* A declared length past the limit fails before any of it is read. */
static int on_headers_complete(llhttp_t *p)
{
    struct etcd_conn *conn = p->data;
    conn->status = p->status_code;
    if (p->content_length <= ETCD_MAX_REPLY)
        return 0;
    conn->error = -EMSGSIZE;
    return -1;
}

/* Pauses: whatever follows the reply is not ours to parse. */
static int on_message_complete(llhttp_t *p)
{
    struct etcd_conn *conn = p->data;
    conn->complete = true;
    if (!llhttp_should_keep_alive(p))
        conn->stale = true;
    return HPE_PAUSED;
}

static const llhttp_settings_t reply_settings = {
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* Readies conn for the reply to a request about to be sent. */
static void conn_expect_reply(struct etcd_conn *conn)
{
    llhttp_init(&conn->parser, HTTP_RESPONSE, &reply_settings);
    conn->parser.data = conn;
    conn->complete = false;
    conn->error = 0;
    conn->status = 0;
    conn->why[0] = '\0';
    conn->body_len = 0;
    if (conn->body_cap > BODY_KEEP) {
        free(conn->body);
        conn->body = NULL;
        conn->body_cap = 0;
    }
}

void etcd_conn_init(struct etcd_conn *conn)
{
    *conn = (struct etcd_conn){.fd = -1};
}

void etcd_conn_close(struct etcd_conn *conn)
{
    if (conn->fd < 0)
        return;
    tls_conn_close(&conn->tls);
    loop_io_close(&conn->io);
    close(conn->fd);
    conn->fd = -1;
}

static int sock_error(int fd)
{
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        return -errno;
    return -err;
}

/* TLS over the connected socket, for https:// endpoints: a session to
 * resume is kept in e, so the next connection costs no full handshake. */
static int conn_secure(struct etcd_conn *conn, struct etcd_endpoints *e,
                       const struct etcd_endpoint *ep, int64_t deadline_us)
{
    if (!e->https)
        return 0;
    if (!e->secure || !e->secure->tls) {
        snprintf(conn->why, sizeof(conn->why), "https:// endpoints without TLS settings");
        return -EPROTO;
    }
    int rc = tls_conn_open(&conn->tls, e->secure->tls, &conn->io, ep->ip, &e->session, deadline_us);
    if (rc < 0)
        memcpy(conn->why, conn->tls.why, sizeof(conn->why));
    return rc;
}

static int conn_dial(struct etcd_conn *conn, const struct etcd_endpoint *ep, int64_t deadline_us)
{
    int fd = socket(ep->addr.sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    /* A request is one write; waiting for an ACK before sending would cost
     * a delayed-ACK timeout each time. */
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    int rc = 0;
    if (connect(fd, &ep->addr.sa, ep->addr_len) < 0 && errno != EINPROGRESS)
        rc = -errno;
    if (rc == 0)
        rc = loop_io_open(&conn->io, fd, NULL, NULL);
    if (rc < 0) {
        close(fd);
        return rc;
    }
    conn->fd = fd;
    conn->stale = false;
    loop_io_clear(&conn->io, LOOP_WRITE); /* opened as writable: wait for the connect's edge */
    rc = loop_io_wait(&conn->io, LOOP_WRITE, deadline_us);
    if (rc == 0)
        rc = sock_error(fd);
    if (rc < 0)
        etcd_conn_close(conn);
    return rc;
}

int etcd_conn_open(struct etcd_conn *conn, struct etcd_endpoints *e, int64_t deadline_us)
{
    int rc = -ECONNREFUSED;
    etcd_conn_close(conn);
    conn->secure = e->secure;
    conn->why[0] = '\0';
    for (unsigned i = 0; i < e->n; i++) {
        unsigned ep = endpoint_pick(e);
        rc = conn_dial(conn, &e->at[ep], deadline_us);
        if (rc == 0)
            rc = conn_secure(conn, e, &e->at[ep], deadline_us);
        if (rc < 0)
            etcd_conn_close(conn);
        if (rc == 0) {
            conn->endpoint = ep;
            conn->host = e->at[ep].host;
            e->connects++;
            return 0;
        }
        if (rc == -ECANCELED)
            return rc;
        e->connect_failures++;
        endpoint_failed(e, ep, rc);
        if (rc == -ETIMEDOUT)
            return rc;
    }
    return rc;
}

/* tls.h's error, its cause kept for the caller. */
static int tls_failed(struct etcd_conn *conn, int rc)
{
    if (rc < 0)
        memcpy(conn->why, conn->tls.why, sizeof(conn->why));
    return rc;
}

static int send_all(struct etcd_conn *conn, const char *data, size_t len, int64_t deadline_us)
{
    if (conn->tls.ssl)
        return tls_failed(conn, tls_write(&conn->tls, data, len, deadline_us));
    while (len > 0) {
        ssize_t n = send(conn->fd, data, len, MSG_NOSIGNAL);
        if (n >= 0) {
            data += n;
            len -= (size_t)n;
        } else if (errno == EAGAIN) {
            loop_io_clear(&conn->io, LOOP_WRITE);
            int rc = loop_io_wait(&conn->io, LOOP_WRITE, deadline_us);
            if (rc < 0)
                return rc;
        } else if (errno != EINTR) {
            return -ECONNRESET;
        }
    }
    return 0;
}

static int conn_feed(struct etcd_conn *conn, const char *data, size_t len)
{
    llhttp_errno_t e = llhttp_execute(&conn->parser, data, len);
    if (e == HPE_PAUSED) {
        /* Bytes after the reply are none we asked for. */
        if (llhttp_get_error_pos(&conn->parser) != data + len)
            conn->stale = true;
        return 0;
    }
    if (e == HPE_OK)
        return 0;
    return conn->error ? conn->error : -EIO;
}

/* The peer closed: a body that runs to the end of the connection ends
 * here; any other reply was cut short. */
static int conn_eof(struct etcd_conn *conn)
{
    conn->stale = true;
    if (!conn->complete)
        llhttp_finish(&conn->parser);
    return conn->complete ? 0 : -ECONNRESET;
}

/* A plain read: it asks the kernel only while an edge is unread (one came
 * since the last EAGAIN, or since etcd_conn_fit() found the socket empty).
 * A short read is not taken for a drained socket: a reset that came with
 * the last bytes has no edge of its own left to wake a wait (libevent
 * reports EPOLLHUP|EPOLLERR as plain readiness), and a watch's stream
 * would wait for ever. */
static ssize_t plain_read(struct etcd_conn *conn, char *buf, size_t cap, int64_t deadline_us)
{
    for (;;) {
        int rc = loop_io_wait(&conn->io, LOOP_READ, deadline_us);
        if (rc < 0)
            return rc;
        ssize_t n = recv(conn->fd, buf, cap, 0);
        if (n >= 0)
            return n;
        if (errno == EAGAIN)
            loop_io_clear(&conn->io, LOOP_READ);
        else if (errno != EINTR)
            return -ECONNRESET;
    }
}

int etcd_conn_read(struct etcd_conn *conn, int64_t deadline_us)
{
    char buf[4096];
    ssize_t n = conn->tls.ssl ? tls_read(&conn->tls, buf, sizeof(buf), deadline_us)
                              : plain_read(conn, buf, sizeof(buf), deadline_us);
    if (n < 0)
        return conn->tls.ssl ? tls_failed(conn, (int)n) : (int)n;
    return n > 0 ? conn_feed(conn, buf, (size_t)n) : conn_eof(conn);
}

/* "POST path" with body, into conn->out; its length in *len. */
static int request_format(struct etcd_conn *conn, const char *path, const char *body,
                          size_t body_len, size_t *len)
{
    static const char fmt[] = "POST %s HTTP/1.1\r\nHost: %s\r\n%s%s%s"
                              "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n";
    static const char auth[] = "Authorization: ";
    bool token = conn->token[0] != '\0';
    size_t head =
        sizeof(fmt) + strlen(path) + strlen(conn->host) + sizeof(auth) + strlen(conn->token) + 20;
    if (grow(&conn->out, &conn->out_cap, head + body_len) < 0)
        return -ENOMEM;
    int n = snprintf(conn->out, conn->out_cap, fmt, path, conn->host, token ? auth : "",
                     conn->token, token ? "\r\n" : "", body_len);
    memcpy(conn->out + n, body, body_len);
    *len = (size_t)n + body_len;
    return 0;
}

void etcd_conn_set_token(struct etcd_conn *conn, const char *token, uint64_t generation)
{
    snprintf(conn->token, sizeof(conn->token), "%s", token);
    conn->token_generation = generation;
}

int etcd_conn_send(struct etcd_conn *conn, const char *path, const char *body, size_t body_len,
                   int64_t deadline_us)
{
    size_t len;
    int rc = request_format(conn, path, body, body_len, &len);
    conn_expect_reply(conn);
    conn->sent_us = loop_now_us();
    return rc < 0 ? rc : send_all(conn, conn->out, len, deadline_us);
}

int etcd_conn_exchange(struct etcd_conn *conn, const char *path, const char *body, size_t body_len,
                       int64_t deadline_us)
{
    int rc = etcd_conn_send(conn, path, body, body_len, deadline_us);
    while (rc == 0 && !conn->complete)
        rc = etcd_conn_read(conn, deadline_us);
    return rc;
}

void etcd_conn_consume(struct etcd_conn *conn, size_t n)
{
    if (n == 0)
        return; /* body may be NULL yet: no pointer arithmetic on it */
    memmove(conn->body, conn->body + n, conn->body_len - n);
    conn->body_len -= n;
}

void etcd_conn_settle(struct etcd_conn *conn, struct etcd_endpoints *e, int rc)
{
    bool move = rc == -ETIMEDOUT || rc == -ECONNRESET || rc == -EAGAIN;
    bool blame = rc != -ETIMEDOUT || loop_now_us() - conn->sent_us >= e->blame_us;
    if (move && blame)
        endpoint_failed(e, conn->endpoint, rc);
    else if (move)
        etcd_endpoints_move_on(e, conn->endpoint);
    if (move || !conn->complete || conn->stale)
        etcd_conn_close(conn);
}

bool etcd_conn_abandoned(const struct etcd_conn *conn, const struct etcd_endpoints *e)
{
    return conn->fd >= 0 && e->health && endpoints_better(e->health, conn->endpoint);
}

void etcd_conn_forget_request(struct etcd_conn *conn)
{
    if (conn->out)
        explicit_bzero(conn->out, conn->out_cap);
}

void etcd_conn_free(struct etcd_conn *conn)
{
    tls_conn_close(&conn->tls);
    if (conn->fd >= 0)
        close(conn->fd);
    free(conn->body);
    free(conn->out);
    etcd_conn_init(conn);
}

/* A kept-alive connection is fit for the next call only if nothing came
 * since the last reply: an end (etcd restarted or died), an error, or bytes
 * nobody asked for (TLS's own included: a record read but not returned). The peek sees what the
 * kernel knows even when the loop has not yet told us (a member killed a moment ago); it costs far
 * less than a call failing on a connection that was already closed. */
bool etcd_conn_fit(struct etcd_conn *conn)
{
    char byte;
    bool fit = conn->fd >= 0 && !conn->stale && !tls_conn_pending(&conn->tls) &&
               recv(conn->fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT) < 0 && errno == EAGAIN;
    /* Empty and unbroken as of now: the reply's first read waits for its
     * edge instead of spending a recv on the EAGAIN it would get. */
    if (fit)
        loop_io_clear(&conn->io, LOOP_READ);
    return fit;
}
