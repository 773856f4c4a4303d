/* tls_server: see tls_server.h. */
#include "tls_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#define LINE_MAX_BYTES (4u << 20) /* the longest line echoed */

struct tls_server {
    struct tls_server_opts o;
    SSL_CTX *ctx;
    int lfd, port;
    pthread_t thread;
    int stop;                     /* atomic: set by tls_server_stop() */
    unsigned handshakes, resumed; /* atomics */
};

static bool stopping(struct tls_server *s)
{
    return __atomic_load_n(&s->stop, __ATOMIC_ACQUIRE);
}

/* Echoes lines until the client closes, an error, or the stop. */
static void echo(struct tls_server *s, SSL *ssl)
{
    char *line = malloc(LINE_MAX_BYTES);
    size_t len = 0;
    int n;
    while (line && !stopping(s) &&
           (n = SSL_read(ssl, line + len, (int)(LINE_MAX_BYTES - len))) > 0) {
        len += (size_t)n;
        char *nl = memchr(line, '\n', len);
        if (nl && SSL_write(ssl, line, (int)(nl + 1 - line)) <= 0)
            break;
        if (nl) {
            len -= (size_t)(nl + 1 - line);
            memmove(line, nl + 1, len);
        }
    }
    free(line);
}

static void serve_tls(struct tls_server *s, int fd)
{
    SSL *ssl = SSL_new(s->ctx);
    if (ssl && SSL_set_fd(ssl, fd) == 1 && SSL_accept(ssl) == 1) {
        __atomic_add_fetch(&s->handshakes, 1, __ATOMIC_RELAXED);
        if (SSL_session_reused(ssl))
            __atomic_add_fetch(&s->resumed, 1, __ATOMIC_RELAXED);
        echo(s, ssl);
    }
    SSL_free(ssl);
    ERR_clear_error();
}

static void serve_plain(int fd)
{
    static const char reply[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
    char buf[512];
    if (recv(fd, buf, sizeof(buf), 0) > 0)
        send(fd, reply, sizeof(reply) - 1, MSG_NOSIGNAL);
}

/* Blocking I/O with a bound, so a test that goes wrong still ends. */
static void serve(struct tls_server *s, int fd)
{
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (s->o.mode == TLS_SERVER_ECHO)
        serve_tls(s, fd);
    else if (s->o.mode == TLS_SERVER_PLAIN)
        serve_plain(fd);
    close(fd);
}

static void *server_main(void *arg)
{
    struct tls_server *s = arg;
    while (!stopping(s)) {
        struct pollfd p = {.fd = s->lfd, .events = POLLIN};
        if (poll(&p, 1, 100) <= 0)
            continue;
        int fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd >= 0)
            serve(s, fd);
    }
    return NULL;
}

static int ctx_make(struct tls_server *s)
{
    const struct tls_server_opts *o = &s->o;
    s->ctx = SSL_CTX_new(TLS_server_method());
    if (!s->ctx || o->mode != TLS_SERVER_ECHO)
        return s->ctx ? 0 : -ENOMEM;
    if (SSL_CTX_use_certificate_chain_file(s->ctx, o->cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(s->ctx, o->key, SSL_FILETYPE_PEM) != 1)
        goto fail;
    if (o->client_ca) {
        if (SSL_CTX_load_verify_file(s->ctx, o->client_ca) != 1)
            goto fail;
        SSL_CTX_set_client_CA_list(s->ctx, SSL_load_client_CA_file(o->client_ca));
        SSL_CTX_set_verify(s->ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
        /* OpenSSL resumes no session of a verified client without one. */
        SSL_CTX_set_session_id_context(s->ctx, (const unsigned char *)"test", 4);
    }
    return 0;
fail:
    fprintf(stderr, "tls_server: %s\n", ERR_reason_error_string(ERR_get_error()));
    return -EINVAL;
}

static int listen_any(struct tls_server *s)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s->lfd < 0 || bind(s->lfd, (struct sockaddr *)&a, len) < 0 || listen(s->lfd, 16) < 0 ||
        getsockname(s->lfd, (struct sockaddr *)&a, &len) < 0)
        return -errno;
    s->port = ntohs(a.sin_port);
    return 0;
}

int tls_server_start(struct tls_server **out, const struct tls_server_opts *o)
{
    struct tls_server *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->o = *o;
    s->lfd = -1;
    int rc = ctx_make(s);
    if (rc == 0)
        rc = listen_any(s);
    if (rc == 0)
        rc = -pthread_create(&s->thread, NULL, server_main, s);
    if (rc < 0) {
        if (s->lfd >= 0)
            close(s->lfd);
        SSL_CTX_free(s->ctx);
        free(s);
        return rc;
    }
    *out = s;
    return 0;
}

int tls_server_port(const struct tls_server *s)
{
    return s->port;
}

unsigned tls_server_handshakes(const struct tls_server *s)
{
    return __atomic_load_n(&s->handshakes, __ATOMIC_RELAXED);
}

unsigned tls_server_resumed(const struct tls_server *s)
{
    return __atomic_load_n(&s->resumed, __ATOMIC_RELAXED);
}

void tls_server_stop(struct tls_server *s)
{
    __atomic_store_n(&s->stop, 1, __ATOMIC_RELEASE);
    pthread_join(s->thread, NULL);
    close(s->lfd);
    SSL_CTX_free(s->ctx);
    free(s);
}
