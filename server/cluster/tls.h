/* tls: TLS for the etcd client's connections, on the loop (OpenSSL).
 *
 * A tls_ctx is what the files say: the CA that must have signed etcd's
 * certificate (or the system's trust store), and the client certificate
 * and key to show it (as etcdctl's --cacert, --cert, --key). It is read
 * when made and again on tls_ctx_reload() (SIGHUP), and is shared by every
 * connection of every loop: a connection takes what is current when it
 * opens and keeps it to its end, so a reload changes the next connection,
 * never one in flight.
 *
 * A tls_conn is one connection's TLS over a connected non-blocking socket
 * that the calling coroutine watches with a loop_io. Each call tries
 * OpenSSL first and, when OpenSSL wants the socket readable or writable,
 * parks on the loop_io until it is, or the deadline passes. Only the
 * coroutine that owns the loop_io may call these.
 *
 * Errors are negative errnos, and those of tls_ctx_new(), tls_ctx_reload()
 * and tls_conn_open() come with a cause for a person, naming the file:
 *   -ENOENT, -EACCES, ...  a file cannot be read (what fopen(3) says);
 *   -EINVAL        a file holds no PEM certificate or key, or the key is
 *                  not the certificate's, or a certificate without a key;
 *   -EKEYREJECTED  etcd's certificate did not verify: not signed by the
 *                  CA, expired or not yet valid, or naming another host;
 *   -EACCES        (from a connection) etcd refused ours: none given, not
 *                  signed by a CA it trusts, expired. With TLS 1.3 a
 *                  server checks the client's certificate after the
 *                  client's handshake is done, so this can come from the
 *                  first tls_read() rather than tls_conn_open();
 *   -EPROTO        any other TLS failure (e.g. the peer does not speak TLS);
 *   -ECONNRESET    the connection closed or broke mid-handshake or mid-write;
 *   -ETIMEDOUT, -ECANCELED  the deadline passed, or loop_cancel();
 *   -ENOMEM.
 *
 * The process must ignore SIGPIPE (main.c does): OpenSSL writes to the
 * socket with write(2). */
#ifndef TURNSTILE_TLS_H
#define TURNSTILE_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "loop.h"

#define TLS_WHY_CAP 256 /* room for a cause with a file name in it */

/* Paths; NULL or "" for none. A key needs its certificate and the reverse. */
struct tls_files {
    const char *ca;   /* PEM CA certificate(s); none: the system's trust store */
    const char *cert; /* PEM client certificate (then its chain, if any) */
    const char *key;  /* PEM private key of cert */
};

struct tls_ctx;

/* Reads the files into a new context (*out). Returns 0 or an error above,
 * with its cause in why (cap bytes). */
int tls_ctx_new(struct tls_ctx **out, const struct tls_files *files, char *why, size_t cap);

/* Reads the same files again: on success the next connection uses them;
 * on failure (the cause in why) nothing changes. From any thread. */
int tls_ctx_reload(struct tls_ctx *c, char *why, size_t cap);

/* After every connection made from c is closed. NULL is fine. */
void tls_ctx_free(struct tls_ctx *c);

/* A session to resume: the next connection to the same host offers it, so
 * a reconnect costs no full handshake (no certificate is sent, checked or
 * signed). A session learnt before a reload is never offered after it:
 * etcd would take it for the old certificate. Owned by one loop; zero it
 * to start, tls_session_drop() to end. */
struct tls_session {
    struct ssl_session_st *ssl; /* OpenSSL's SSL_SESSION, NULL if none yet */
    uint64_t generation;        /* of the context it was learnt with */
    char host[64];
};
void tls_session_drop(struct tls_session *s);

struct tls_conn {
    struct ssl_st *ssl; /* NULL when closed */
    struct tls_ctx *ctx;
    struct loop_io *io;
    struct tls_session *session; /* where a session learnt here goes; may be NULL */
    uint64_t generation;         /* of the context it was opened with */
    char host[64];
    char why[TLS_WHY_CAP]; /* the cause of the last error */
};

/* Handshakes over io's socket (connected, non-blocking), checking that
 * etcd's certificate names host (an IPv4 or IPv6 address without
 * brackets, or a DNS name, which is also sent as SNI). Offers *session if
 * it is for host and current, and stores the one etcd hands out there
 * (session may be NULL: never resume). Returns 0 or an error above, its
 * cause in t->why; on failure t holds nothing to close. */
int tls_conn_open(struct tls_conn *t, struct tls_ctx *c, struct loop_io *io, const char *host,
                  struct tls_session *session, int64_t deadline_us);

/* Whether the handshake resumed a session. */
bool tls_conn_resumed(const struct tls_conn *t);

/* Bytes read whole records hold that tls_read() has not returned yet: a
 * kept-alive connection with any is not idle. */
bool tls_conn_pending(const struct tls_conn *t);

/* Up to cap bytes, parking until some come. Returns how many (> 0), 0 at
 * the end of the stream (etcd's close_notify, or the socket closed), or
 * an error above with its cause in t->why. */
ssize_t tls_read(struct tls_conn *t, void *buf, size_t cap, int64_t deadline_us);

/* All len bytes. Returns 0 or an error above with its cause in t->why. */
int tls_write(struct tls_conn *t, const void *buf, size_t len, int64_t deadline_us);

/* Frees the TLS state; the socket is the caller's to close. Sends no
 * close_notify (the socket closes next, and etcd takes that as the end),
 * and does no I/O: safe from a coroutine's cleanup. The session stays
 * resumable unless the connection failed in TLS itself. */
void tls_conn_close(struct tls_conn *t);

#endif
