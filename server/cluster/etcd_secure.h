/* etcd_secure: what a secured etcd asks of every etcd client of the
 * process, made from the files the flags name (--etcd-cacert, --etcd-cert,
 * --etcd-key, --etcd-user, --etcd-password-file) and read again on SIGHUP:
 * the TLS context (tls.h) for https:// endpoints and etcd's auth
 * (etcd_auth.h). And the refusals the clients meet (a certificate, a name,
 * a password or a role that etcd or we do not accept): each is logged at
 * error level, once per cause a minute at most, and the last one is shown
 * (/stats' cluster.error) until the client it refused makes a call that
 * succeeds (another's success proves nothing: with a role lacking the
 * cluster's keys, lease calls still succeed).
 *
 * Every function is safe from any thread. */
#ifndef TURNSTILE_ETCD_SECURE_H
#define TURNSTILE_ETCD_SECURE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "etcd_auth.h"
#include "tls.h"

#define ETCD_SECURE_WHY_CAP 256

/* Paths and the user; NULL or "" for none. */
struct etcd_secure_files {
    const char *cacert, *cert, *key;
    const char *user, *password_file;
};

/* Fields are private but tls and auth, for the connection layer. */
struct etcd_secure {
    struct tls_ctx *tls;           /* NULL: the endpoints are http:// */
    struct etcd_auth *auth;        /* NULL: no etcd auth */
    pthread_mutex_t mu;            /* guards what follows */
    _Atomic(const void *) refused; /* the client whose refusal is shown, NULL if none */
    char refusal[ETCD_SECURE_WHY_CAP];
    char logged[ETCD_SECURE_WHY_CAP]; /* the last refusal logged, and when */
    int64_t logged_us;
};

/* Reads the files into *out: a TLS context when https (the endpoints are
 * https://), etcd's auth when a user is named. Returns 0, or -EINVAL (a
 * certificate without its key or the reverse, a user without a password
 * file or the reverse, TLS files with http:// endpoints, a file that holds
 * nothing usable) or what fopen(3) says of a file that cannot be read
 * (-ENOENT, -EACCES...), with one line in why (cap bytes) naming the file. */
int etcd_secure_new(struct etcd_secure **out, const struct etcd_secure_files *f, bool https,
                    char *why, size_t cap);

/* Reads the files again (SIGHUP): the next connection uses them. Returns
 * 0, or the first failure (as etcd_secure_new(), its cause in why): then
 * what could not be read keeps its old contents. */
int etcd_secure_reload(struct etcd_secure *s, char *why, size_t cap);

/* After every client that uses s finished. NULL is fine. */
void etcd_secure_free(struct etcd_secure *s);

/* True for the errors that mean "refused", not "unreachable": -EACCES (a
 * certificate, a token or a role refused by etcd), -EKEYREJECTED (etcd's
 * certificate refused here), -EPROTO (TLS failed otherwise). */
bool etcd_secure_is_refusal(int rc);

/* A call of client `who` ended with rc, why saying what went wrong (may
 * be NULL): a refusal is logged and shown; a success clears what is shown
 * if it was who's. s may be NULL (nothing happens). */
void etcd_secure_note(struct etcd_secure *s, const void *who, int rc, const char *why);

/* The refusal shown, "" if none since the last success: into buf (cap
 * bytes), with no '"', '\\' or control character (it goes into JSON as is). */
void etcd_secure_refusal(struct etcd_secure *s, char *buf, size_t cap);

#endif
