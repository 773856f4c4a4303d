/* tls: see tls.h.
 *
 * Why OpenSSL: it is already linked (libcrypto's base64), it is what every
 * machine that builds us has (libcurl's -dev package pulls in libssl-dev),
 * and its non-blocking mode fits the loop: an operation that cannot go on
 * says whether it waits for the socket to be readable or writable, and the
 * coroutine parks on exactly that.
 *
 * The context (SSL_CTX) is reference counted by OpenSSL: a connection holds
 * the one it was opened with, so a reload swaps the current one under a
 * mutex and drops only the context's own reference. */
#include "tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

struct tls_ctx {
    pthread_mutex_t mu; /* guards ssl_ctx and generation: a reload comes from another thread */
    SSL_CTX *ssl_ctx;
    uint64_t generation;
    char *ca, *cert, *key; /* the files, NULL for none */
};

/* Every context ever built gets a new number, so a session is only ever
 * offered with the context (the certificate) it was learnt with. */
static uint64_t generations;

/* ---- the context ---- */

/* Never asks for a passphrase: there is no one to ask. An encrypted key
 * fails to load and says so. */
static int no_passphrase(char *buf, int size, int rwflag, void *userdata)
{
    (void)buf, (void)size, (void)rwflag, (void)userdata;
    return -1;
}

static int on_new_session(SSL *ssl, SSL_SESSION *sess);

/* OpenSSL's reason for the oldest error queued, or `fallback`. */
static const char *ssl_reason(const char *fallback)
{
    const char *r = ERR_reason_error_string(ERR_peek_error());
    return r ? r : fallback;
}

/* Fails with what fopen(3) says if path cannot be read, naming it. */
static int file_check(const char *path, const char *what, char *why, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (f) {
        fclose(f);
        return 0;
    }
    int rc = -errno;
    snprintf(why, cap, "cannot read %s %s: %s", what, path, strerror(errno));
    return rc;
}

static int load_ca(SSL_CTX *s, const char *ca, char *why, size_t cap)
{
    if (!ca)
        return SSL_CTX_set_default_verify_paths(s) == 1 ? 0 : -ENOMEM;
    int rc = file_check(ca, "CA file", why, cap);
    if (rc == 0 && SSL_CTX_load_verify_file(s, ca) != 1) {
        snprintf(why, cap, "CA file %s holds no PEM certificate: %s", ca, ssl_reason("unreadable"));
        rc = -EINVAL;
    }
    return rc;
}

static int load_pair(SSL_CTX *s, const char *cert, const char *key, char *why, size_t cap)
{
    if (!cert && !key)
        return 0;
    if (!cert || !key) {
        snprintf(why, cap, "a client %s needs its %s", cert ? "certificate" : "key",
                 cert ? "key" : "certificate");
        return -EINVAL;
    }
    int rc = file_check(cert, "certificate file", why, cap);
    if (rc == 0)
        rc = file_check(key, "key file", why, cap);
    if (rc < 0)
        return rc;
    if (SSL_CTX_use_certificate_chain_file(s, cert) != 1)
        snprintf(why, cap, "certificate file %s holds no PEM certificate: %s", cert,
                 ssl_reason("unreadable"));
    else if (SSL_CTX_use_PrivateKey_file(s, key, SSL_FILETYPE_PEM) == 1)
        return 0;
    else if (ERR_GET_REASON(ERR_peek_error()) == X509_R_KEY_VALUES_MISMATCH ||
             ERR_GET_REASON(ERR_peek_error()) == X509_R_KEY_TYPE_MISMATCH)
        snprintf(why, cap, "key file %s is not the key of certificate %s", key, cert);
    else
        snprintf(why, cap, "key file %s holds no usable PEM key: %s", key,
                 ssl_reason("unreadable"));
    return -EINVAL;
}

/* TLS 1.2 at least (etcd's own floor), etcd's certificate always checked,
 * sessions handed to on_new_session() rather than kept in OpenSSL's cache
 * (each connection knows where its own go). */
static int ctx_build(const struct tls_ctx *c, SSL_CTX **out, char *why, size_t cap)
{
    ERR_clear_error();
    SSL_CTX *s = SSL_CTX_new(TLS_client_method());
    if (!s) {
        snprintf(why, cap, "out of memory for TLS");
        return -ENOMEM;
    }
    SSL_CTX_set_min_proto_version(s, TLS1_2_VERSION);
    SSL_CTX_set_verify(s, SSL_VERIFY_PEER, NULL);
    /* A reply's end is in its HTTP framing: a socket closed without
     * close_notify is an end of stream, as for plain HTTP. */
    SSL_CTX_set_options(s, SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_session_cache_mode(s, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(s, on_new_session);
    SSL_CTX_set_default_passwd_cb(s, no_passphrase);
    int rc = load_ca(s, c->ca, why, cap);
    if (rc == 0)
        rc = load_pair(s, c->cert, c->key, why, cap);
    ERR_clear_error();
    if (rc < 0) {
        SSL_CTX_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

static char *dup_path(const char *path, bool *failed)
{
    if (!path || !path[0])
        return NULL;
    char *p = strdup(path);
    *failed |= p == NULL;
    return p;
}

int tls_ctx_new(struct tls_ctx **out, const struct tls_files *files, char *why, size_t cap)
{
    struct tls_ctx *c = calloc(1, sizeof(*c));
    bool failed = c == NULL;
    if (c) {
        c->ca = dup_path(files->ca, &failed);
        c->cert = dup_path(files->cert, &failed);
        c->key = dup_path(files->key, &failed);
    }
    int rc = failed ? -ENOMEM : ctx_build(c, &c->ssl_ctx, why, cap);
    if (failed)
        snprintf(why, cap, "out of memory for TLS");
    if (rc < 0) {
        tls_ctx_free(c);
        return rc;
    }
    pthread_mutex_init(&c->mu, NULL);
    c->generation = __atomic_add_fetch(&generations, 1, __ATOMIC_RELAXED);
    *out = c;
    return 0;
}

int tls_ctx_reload(struct tls_ctx *c, char *why, size_t cap)
{
    SSL_CTX *fresh;
    int rc = ctx_build(c, &fresh, why, cap);
    if (rc < 0)
        return rc;
    pthread_mutex_lock(&c->mu);
    SSL_CTX *old = c->ssl_ctx;
    c->ssl_ctx = fresh;
    c->generation = __atomic_add_fetch(&generations, 1, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&c->mu);
    SSL_CTX_free(old); /* connections opened with it hold their own reference */
    return 0;
}

void tls_ctx_free(struct tls_ctx *c)
{
    if (!c)
        return;
    if (c->ssl_ctx) {
        SSL_CTX_free(c->ssl_ctx);
        pthread_mutex_destroy(&c->mu);
    }
    free(c->ca);
    free(c->cert);
    free(c->key);
    free(c);
}

/* ---- sessions ---- */

void tls_session_drop(struct tls_session *s)
{
    SSL_SESSION_free(s->ssl);
    s->ssl = NULL;
}

/* OpenSSL hands over a session etcd issued (with TLS 1.3, after the
 * handshake, while a reply is read): it becomes the one to offer next.
 * Returning 1 keeps the reference OpenSSL gave. */
static int on_new_session(SSL *ssl, SSL_SESSION *sess)
{
    struct tls_conn *t = SSL_get_app_data(ssl);
    if (!t || !t->session || !SSL_SESSION_is_resumable(sess))
        return 0;
    tls_session_drop(t->session);
    t->session->ssl = sess;
    t->session->generation = t->generation;
    memcpy(t->session->host, t->host, sizeof(t->host));
    return 1;
}

/* Offers the stored session if it was learnt with this context and host;
 * one that cannot be is dropped. */
static void session_offer(struct tls_conn *t)
{
    struct tls_session *s = t->session;
    if (!s || !s->ssl)
        return;
    if (s->generation != t->generation || strcmp(s->host, t->host) != 0 ||
        SSL_set_session(t->ssl, s->ssl) != 1)
        tls_session_drop(s);
}

/* ---- causes ---- */

/* Alerts by which a server says no to the client's certificate (or to
 * its lack of one). */
static bool refusal_alert(int alert)
{
    switch (alert) {
    case SSL_AD_BAD_CERTIFICATE:
    case SSL_AD_UNSUPPORTED_CERTIFICATE:
    case SSL_AD_CERTIFICATE_REVOKED:
    case SSL_AD_CERTIFICATE_EXPIRED:
    case SSL_AD_CERTIFICATE_UNKNOWN:
    case SSL_AD_UNKNOWN_CA:
    case SSL_AD_ACCESS_DENIED:
    case SSL_AD_CERTIFICATE_REQUIRED:
        return true;
    default:
        return false;
    }
}

/* " (it expired on 2024-01-31)" if the certificate we showed has expired
 * (a server's alert rarely says why), else "". */
static void own_expiry(const struct tls_conn *t, char *buf, size_t cap)
{
    X509 *x = SSL_get_certificate(t->ssl);
    const ASN1_TIME *end = x ? X509_get0_notAfter(x) : NULL;
    struct tm tm;
    buf[0] = '\0';
    if (end && X509_cmp_current_time(end) < 0 && ASN1_TIME_to_tm(end, &tm) == 1)
        strftime(buf, cap, " (it expired on %Y-%m-%d)", &tm);
}

static int refused(struct tls_conn *t, const char *reason)
{
    const struct tls_ctx *c = t->ctx;
    char expiry[40];
    own_expiry(t, expiry, sizeof(expiry));
    if (c->cert)
        snprintf(t->why, sizeof(t->why), "etcd at %s refused the client certificate %s%s: %s",
                 t->host, c->cert, expiry, reason);
    else
        snprintf(t->why, sizeof(t->why),
                 "etcd at %s refused a connection without a client certificate: %s", t->host,
                 reason);
    return -EACCES;
}

static int unverified(struct tls_conn *t, long v)
{
    const struct tls_ctx *c = t->ctx;
    char trust[TLS_WHY_CAP / 2];
    if (v == X509_V_ERR_HOSTNAME_MISMATCH || v == X509_V_ERR_IP_ADDRESS_MISMATCH)
        snprintf(trust, sizeof(trust), "it does not name %s", t->host);
    else if (c->ca)
        snprintf(trust, sizeof(trust), "CA file %s", c->ca);
    else
        snprintf(trust, sizeof(trust), "the system's trust store");
    snprintf(t->why, sizeof(t->why), "etcd's certificate at %s did not verify: %s (%s)", t->host,
             X509_verify_cert_error_string(v), trust);
    return -EKEYREJECTED;
}

/* The alert of a server that refused our certificate, if the oldest
 * error queued is one. */
static bool refusal_queued(void)
{
    int reason = ERR_GET_REASON(ERR_peek_error());
    return reason >= SSL_AD_REASON_OFFSET && refusal_alert(reason - SSL_AD_REASON_OFFSET);
}

/* What a failed SSL_ERROR_SSL means: our check of etcd's certificate, etcd
 * refusing ours, or anything else. A session learnt on a connection that
 * failed so is not offered again (as OpenSSL's own cache would not). */
static int protocol_error(struct tls_conn *t)
{
    if (t->session)
        tls_session_drop(t->session);
    unsigned long e = ERR_peek_error();
    int reason = ERR_GET_REASON(e);
    long v = SSL_get_verify_result(t->ssl);
    int rc;
    if (reason == SSL_R_CERTIFICATE_VERIFY_FAILED && v != X509_V_OK)
        rc = unverified(t, v);
    else if (refusal_queued())
        rc = refused(t, ssl_reason("refused"));
    else {
        snprintf(t->why, sizeof(t->why), "TLS with etcd at %s failed: %s", t->host,
                 ssl_reason("protocol error"));
        rc = -EPROTO;
    }
    return rc;
}

/* ---- one connection ---- */

/* What to do after an operation returned ret <= 0: wait for LOOP_READ or
 * LOOP_WRITE, 0 for the end of the stream, or an error. sys_errno: errno
 * right after the call. */
static int settle(struct tls_conn *t, int ret, int sys_errno, const char *doing)
{
    int rc;
    switch (SSL_get_error(t->ssl, ret)) {
    case SSL_ERROR_WANT_READ:
        return LOOP_READ;
    case SSL_ERROR_WANT_WRITE:
        return LOOP_WRITE;
    case SSL_ERROR_ZERO_RETURN:
        return 0;
    case SSL_ERROR_SSL:
        rc = protocol_error(t);
        break;
    case SSL_ERROR_SYSCALL:
        snprintf(t->why, sizeof(t->why), "etcd at %s closed the connection %s%s%s", t->host, doing,
                 sys_errno ? ": " : "", sys_errno ? strerror(sys_errno) : "");
        rc = -ECONNRESET;
        break;
    default:
        snprintf(t->why, sizeof(t->why), "out of memory for TLS");
        rc = -ENOMEM;
    }
    ERR_clear_error();
    return rc;
}

/* Parks until the socket is ready for `what`. */
static int await(struct tls_conn *t, short what, int64_t deadline_us, const char *doing)
{
    loop_io_clear(t->io, what);
    int rc = loop_io_wait(t->io, what, deadline_us);
    if (rc == -ETIMEDOUT)
        snprintf(t->why, sizeof(t->why), "etcd at %s timed out %s", t->host, doing);
    else if (rc == -ECANCELED)
        snprintf(t->why, sizeof(t->why), "cancelled %s", doing);
    return rc;
}

/* Runs op until it succeeds (> 0, or 1 for a handshake), parking as
 * OpenSSL asks. Returns op's result, 0 at the end of the stream, or an
 * error. */
static int drive(struct tls_conn *t, int (*op)(SSL *ssl, void *buf, int len), void *buf, int len,
                 int64_t deadline_us, const char *doing)
{
    for (;;) {
        ERR_clear_error();
        errno = 0;
        int ret = op(t->ssl, buf, len);
        if (ret > 0)
            return ret;
        int rc = settle(t, ret, errno, doing);
        if (rc <= 0)
            return rc;
        rc = await(t, (short)rc, deadline_us, doing);
        if (rc < 0)
            return rc;
    }
}

static int op_connect(SSL *ssl, void *buf, int len)
{
    (void)buf, (void)len;
    return SSL_connect(ssl);
}

static int op_read(SSL *ssl, void *buf, int len)
{
    return SSL_read(ssl, buf, len);
}

static int op_write(SSL *ssl, void *buf, int len)
{
    return SSL_write(ssl, buf, len);
}

/* The certificate must name host: an IP address as an IP SAN, a DNS name
 * as a DNS SAN (and the name goes in SNI; RFC 6066 keeps addresses out). */
static int name_check(struct tls_conn *t)
{
    unsigned char addr[sizeof(struct in6_addr)];
    bool ip = inet_pton(AF_INET, t->host, addr) == 1 || inet_pton(AF_INET6, t->host, addr) == 1;
    if (ip)
        return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), t->host) == 1 ? 0 : -ENOMEM;
    if (SSL_set1_host(t->ssl, t->host) != 1 || SSL_set_tlsext_host_name(t->ssl, t->host) != 1)
        return -ENOMEM;
    return 0;
}

/* A new SSL on the current context. */
static int conn_new(struct tls_conn *t)
{
    struct tls_ctx *c = t->ctx;
    pthread_mutex_lock(&c->mu);
    t->ssl = SSL_new(c->ssl_ctx);
    t->generation = c->generation;
    pthread_mutex_unlock(&c->mu);
    if (!t->ssl || SSL_set_fd(t->ssl, t->io->fd) != 1 || name_check(t) < 0) {
        snprintf(t->why, sizeof(t->why), "out of memory for TLS");
        return -ENOMEM;
    }
    SSL_set_app_data(t->ssl, t);
    session_offer(t);
    return 0;
}

int tls_conn_open(struct tls_conn *t, struct tls_ctx *c, struct loop_io *io, const char *host,
                  struct tls_session *session, int64_t deadline_us)
{
    *t = (struct tls_conn){.ctx = c, .io = io, .session = session};
    if (strlen(host) >= sizeof(t->host)) {
        snprintf(t->why, sizeof(t->why), "host name too long for TLS: %s", host);
        return -EINVAL;
    }
    strcpy(t->host, host);
    int rc = conn_new(t);
    if (rc == 0)
        rc = drive(t, op_connect, NULL, 0, deadline_us, "during the TLS handshake");
    if (rc == 0) { /* the end of the stream before the handshake ended */
        snprintf(t->why, sizeof(t->why), "etcd at %s closed the connection during the handshake",
                 host);
        rc = -ECONNRESET;
    }
    if (rc < 0) {
        tls_conn_close(t);
        return rc;
    }
    return 0;
}

bool tls_conn_resumed(const struct tls_conn *t)
{
    return t->ssl && SSL_session_reused(t->ssl);
}

bool tls_conn_pending(const struct tls_conn *t)
{
    return t->ssl && SSL_has_pending(t->ssl);
}

ssize_t tls_read(struct tls_conn *t, void *buf, size_t cap, int64_t deadline_us)
{
    return drive(t, op_read, buf, cap > INT_MAX ? INT_MAX : (int)cap, deadline_us,
                 "while a reply was read");
}

/* With TLS 1.3 a server refuses our certificate after our handshake is
 * done: it sends an alert and closes, and a request written meanwhile
 * meets a reset. The alert came first and is still queued: a read finds
 * it, and with it the true cause of the reset. */
static int refusal_behind(struct tls_conn *t, int rc)
{
    char byte;
    ERR_clear_error();
    int ret = SSL_read(t->ssl, &byte, 1);
    if (ret <= 0 && SSL_get_error(t->ssl, ret) == SSL_ERROR_SSL && refusal_queued())
        rc = refused(t, ssl_reason("refused"));
    ERR_clear_error();
    return rc;
}

int tls_write(struct tls_conn *t, const void *buf, size_t len, int64_t deadline_us)
{
    const char *p = buf;
    while (len > 0) {
        int chunk = len > INT_MAX ? INT_MAX : (int)len;
        int rc = drive(t, op_write, (void *)p, chunk, deadline_us, "while a request was sent");
        if (rc == 0) {
            snprintf(t->why, sizeof(t->why), "etcd at %s ended the stream", t->host);
            rc = -ECONNRESET;
        }
        if (rc == -ECONNRESET)
            rc = refusal_behind(t, rc);
        if (rc < 0)
            return rc;
        p += rc;
        len -= (size_t)rc;
    }
    return 0;
}

/* Marked as shut down (nothing is sent), or SSL_free() would take the
 * session for a bad one and never let it be resumed; a connection that
 * failed in TLS itself dropped its session already (protocol_error). */
void tls_conn_close(struct tls_conn *t)
{
    if (!t->ssl)
        return;
    SSL_set_shutdown(t->ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    SSL_set_app_data(t->ssl, NULL);
    SSL_free(t->ssl);
    t->ssl = NULL;
}
