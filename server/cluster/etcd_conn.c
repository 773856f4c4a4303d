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

static int endpoint_parse(struct etcd_endpoint *ep, const char *url, size_t len)
{
    static const char scheme[] = "http://";
    char host[sizeof(ep->host)];
    while (len > 0 && url[len - 1] == '/')
        len--;
    if (len >= sizeof(ep->url) || len <= strlen(scheme) || strncmp(url, scheme, strlen(scheme)))
        return -EINVAL;
    *ep = (struct etcd_endpoint){0};
    memcpy(ep->url, url, len);
    memcpy(ep->host, url + strlen(scheme), len - strlen(scheme));
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
        if (e->n == ETCD_MAX_ENDPOINTS || endpoint_parse(&e->at[e->n], s, len) < 0)
            return -EINVAL;
        e->n++;
        s += len;
    }
    return e->n ? 0 : -EINVAL;
}

void etcd_endpoints_move_on(struct etcd_endpoints *e, unsigned failed)
{
    if (e->current != failed || e->n < 2)
        return;
    e->current = (e->current + 1) % e->n;
    e->rotations++;
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
    struct etcd_conn *k = p->data;
    if (len > ETCD_MAX_REPLY - k->body_len)
        k->error = -EMSGSIZE;
    else if (grow(&k->body, &k->body_cap, k->body_len + len) < 0)
        k->error = -ENOMEM;
    if (k->error)
        return -1;
    memcpy(k->body + k->body_len, at, len);
    k->body_len += len;
    return 0;
}

/* A declared length past the limit fails before any of it is read. */
static int on_headers_complete(llhttp_t *p)
{
    struct etcd_conn *k = p->data;
    k->status = p->status_code;
    if (p->content_length <= ETCD_MAX_REPLY)
        return 0;
    k->error = -EMSGSIZE;
    return -1;
}

/* Pauses: whatever follows the reply is not ours to parse. */
static int on_message_complete(llhttp_t *p)
{
    struct etcd_conn *k = p->data;
    k->complete = true;
    if (!llhttp_should_keep_alive(p))
        k->stale = true;
    return HPE_PAUSED;
}

static const llhttp_settings_t reply_settings = {
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* Readies k for the reply to a request about to be sent. */
static void conn_expect_reply(struct etcd_conn *k)
{
    llhttp_init(&k->parser, HTTP_RESPONSE, &reply_settings);
    k->parser.data = k;
    k->complete = false;
    k->error = 0;
    k->status = 0;
    k->body_len = 0;
    if (k->body_cap > BODY_KEEP) {
        free(k->body);
        k->body = NULL;
        k->body_cap = 0;
    }
}

void etcd_conn_init(struct etcd_conn *k)
{
    *k = (struct etcd_conn){.fd = -1};
}

void etcd_conn_close(struct etcd_conn *k)
{
    if (k->fd < 0)
        return;
    loop_io_close(&k->io);
    close(k->fd);
    k->fd = -1;
}

static int sock_error(int fd)
{
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        return -errno;
    return -err;
}

static int conn_dial(struct etcd_conn *k, const struct etcd_endpoint *ep, int64_t deadline_us)
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
        rc = loop_io_open(&k->io, fd, NULL, NULL);
    if (rc < 0) {
        close(fd);
        return rc;
    }
    k->fd = fd;
    k->stale = false;
    loop_io_clear(&k->io, LOOP_WRITE); /* opened as writable: wait for the connect's edge */
    rc = loop_io_wait(&k->io, LOOP_WRITE, deadline_us);
    if (rc == 0)
        rc = sock_error(fd);
    if (rc < 0)
        etcd_conn_close(k);
    return rc;
}

int etcd_conn_open(struct etcd_conn *k, struct etcd_endpoints *e, int64_t deadline_us)
{
    int rc = -ECONNREFUSED;
    etcd_conn_close(k);
    for (unsigned i = 0; i < e->n; i++) {
        unsigned ep = e->current;
        rc = conn_dial(k, &e->at[ep], deadline_us);
        if (rc == 0) {
            k->endpoint = ep;
            k->host = e->at[ep].host;
            e->connects++;
            return 0;
        }
        if (rc == -ECANCELED)
            return rc;
        e->connect_failures++;
        etcd_endpoints_move_on(e, ep);
        if (rc == -ETIMEDOUT)
            return rc;
    }
    return rc;
}

static int send_all(struct etcd_conn *k, const char *data, size_t len, int64_t deadline_us)
{
    while (len > 0) {
        ssize_t n = send(k->fd, data, len, MSG_NOSIGNAL);
        if (n >= 0) {
            data += n;
            len -= (size_t)n;
        } else if (errno == EAGAIN) {
            loop_io_clear(&k->io, LOOP_WRITE);
            int rc = loop_io_wait(&k->io, LOOP_WRITE, deadline_us);
            if (rc < 0)
                return rc;
        } else if (errno != EINTR) {
            return -ECONNRESET;
        }
    }
    return 0;
}

static int conn_feed(struct etcd_conn *k, const char *data, size_t len)
{
    llhttp_errno_t e = llhttp_execute(&k->parser, data, len);
    if (e == HPE_PAUSED) {
        /* Bytes after the reply are none we asked for. */
        if (llhttp_get_error_pos(&k->parser) != data + len)
            k->stale = true;
        return 0;
    }
    if (e == HPE_OK)
        return 0;
    return k->error ? k->error : -EIO;
}

/* The peer closed: a body that runs to the end of the connection ends
 * here; any other reply was cut short. */
static int conn_eof(struct etcd_conn *k)
{
    k->stale = true;
    if (!k->complete)
        llhttp_finish(&k->parser);
    return k->complete ? 0 : -ECONNRESET;
}

int etcd_conn_read(struct etcd_conn *k, int64_t deadline_us)
{
    char buf[4096];
    for (;;) {
        ssize_t n = recv(k->fd, buf, sizeof(buf), 0);
        if (n > 0)
            return conn_feed(k, buf, (size_t)n);
        if (n == 0)
            return conn_eof(k);
        if (errno == EAGAIN) {
            loop_io_clear(&k->io, LOOP_READ);
            int rc = loop_io_wait(&k->io, LOOP_READ, deadline_us);
            if (rc < 0)
                return rc;
        } else if (errno != EINTR) {
            return -ECONNRESET;
        }
    }
}

/* "POST path" with body, into k->out; its length in *len. */
static int request_format(struct etcd_conn *k, const char *path, const char *body, size_t body_len,
                          size_t *len)
{
    static const char fmt[] = "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                              "Content-Length: %zu\r\n\r\n";
    size_t head = sizeof(fmt) + strlen(path) + strlen(k->host) + 20;
    if (grow(&k->out, &k->out_cap, head + body_len) < 0)
        return -ENOMEM;
    int n = snprintf(k->out, k->out_cap, fmt, path, k->host, body_len);
    memcpy(k->out + n, body, body_len);
    *len = (size_t)n + body_len;
    return 0;
}

int etcd_conn_send(struct etcd_conn *k, const char *path, const char *body, size_t body_len,
                   int64_t deadline_us)
{
    size_t len;
    int rc = request_format(k, path, body, body_len, &len);
    conn_expect_reply(k);
    return rc < 0 ? rc : send_all(k, k->out, len, deadline_us);
}

int etcd_conn_exchange(struct etcd_conn *k, const char *path, const char *body, size_t body_len,
                       int64_t deadline_us)
{
    int rc = etcd_conn_send(k, path, body, body_len, deadline_us);
    while (rc == 0 && !k->complete)
        rc = etcd_conn_read(k, deadline_us);
    return rc;
}

void etcd_conn_consume(struct etcd_conn *k, size_t n)
{
    memmove(k->body, k->body + n, k->body_len - n);
    k->body_len -= n;
}

void etcd_conn_settle(struct etcd_conn *k, struct etcd_endpoints *e, int rc)
{
    bool move = rc == -ETIMEDOUT || rc == -ECONNRESET || rc == -EAGAIN;
    if (move)
        etcd_endpoints_move_on(e, k->endpoint);
    if (move || !k->complete || k->stale)
        etcd_conn_close(k);
}

void etcd_conn_free(struct etcd_conn *k)
{
    if (k->fd >= 0)
        close(k->fd);
    free(k->body);
    free(k->out);
    etcd_conn_init(k);
}

/* A kept-alive connection is fit for the next call only if nothing came
 * since the last reply: an end (etcd restarted or died), an error, or bytes
 * nobody asked for. The peek sees what the kernel knows even when the loop
 * has not yet told us (a member killed a moment ago); it costs far less
 * than a call failing on a connection that was already closed. */
bool etcd_conn_fit(const struct etcd_conn *k)
{
    char byte;
    return k->fd >= 0 && !k->stale && recv(k->fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT) < 0 &&
           errno == EAGAIN;
}
