/* etcd_conn: one HTTP/1.1 connection to an etcd member, and the list of
 * members it may go to. The transport of the etcd client: the place where
 * TLS goes.
 *
 * With https:// endpoints the connection is TLS (tls.h), with the
 * context of the endpoints' etcd_secure, and a session resumed from the
 * last connection to the same member; with etcd's auth, every request
 * carries the token the connection holds (etcd_conn_set_token) in its
 * Authorization header. Above this layer nothing differs.
 *
 * A connection lives in one coroutine of one loop (the one that opens it)
 * and carries one exchange at a time: a POST of JSON, then its reply,
 * whole (etcd_conn_exchange) or as a stream read piece by piece
 * (etcd_conn_send, then etcd_conn_read). The reply's body collects in
 * `body`; the parser is llhttp in response mode, chunked bodies included.
 * Every wait takes a deadline on loop_now_us()'s clock.
 *
 * Errors, as a negative errno: -ETIMEDOUT (the deadline), -ECANCELED
 * (loop_cancel), a connect(2) errno (no endpoint took a connection: each
 * was tried once), -ECONNRESET (the connection broke, or ended before the
 * whole reply), -EIO (not an HTTP reply), -EMSGSIZE (a body longer than
 * ETCD_MAX_REPLY), -ENOMEM, -EMFILE; with TLS, tls.h's too: -EKEYREJECTED
 * (etcd's certificate refused here), -EACCES (ours refused by etcd),
 * -EPROTO. When a cause is known (TLS's, naming the file), it is in the
 * connection's `why`. */
#ifndef TURNSTILE_ETCD_CONN_H
#define TURNSTILE_ETCD_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <llhttp.h>

#include "endpoints.h"
#include "etcd_auth.h"
#include "etcd_secure.h"
#include "loop.h"
#include "tls.h"

#define ETCD_MAX_ENDPOINTS ENDPOINTS_MAX
#define ETCD_MAX_REPLY     (64u << 20) /* a range over many keys; more is -EMSGSIZE */

struct etcd_endpoint {
    char url[72];  /* as given, without a trailing '/': "http://127.0.0.1:2379" */
    char host[72]; /* for the Host header: "127.0.0.1:2379" */
    char ip[48];   /* what etcd's certificate must name: "127.0.0.1", "::1" */
    union {
        struct sockaddr sa;
        struct sockaddr_in v4;
        struct sockaddr_in6 v6;
    } addr;
    socklen_t addr_len;
};

/* The members, the one in use, and how connecting to them went. With
 * `health` (the process's table, endpoints.h, in the same order), what
 * this client learns is reported there and an endpoint abandoned by anyone
 * is passed over when connecting; without it, the client learns alone. */
struct etcd_endpoints {
    struct etcd_endpoint at[ETCD_MAX_ENDPOINTS];
    unsigned n;
    unsigned current;         /* the endpoint in use (or tried next) */
    struct endpoints *health; /* NULL: none */
    /* A timeout is reported to health only after an exchange this long:
     * a caller's own short deadline is not the member's fault. */
    int64_t blame_us;
    uint64_t connects;          /* connections opened */
    uint64_t connect_failures;  /* failed attempts, even when another endpoint then took it */
    uint64_t rotations;         /* moves to the next endpoint */
    bool https;                 /* every endpoint is https:// (none is, else) */
    struct etcd_secure *secure; /* TLS and auth; NULL: neither (then https fails) */
    struct tls_session session; /* to resume on the next connection (one loop's) */
};

/* list: comma-separated URLs "http://IP:PORT" or "https://IP:PORT" (IPv4,
 * or IPv6 in brackets: names would need a blocking resolver), at most
 * ETCD_MAX_ENDPOINTS, all of one scheme. Returns 0 or -EINVAL. */
int etcd_endpoints_parse(struct etcd_endpoints *e, const char *list);

/* Drops the TLS session kept for the next connection. */
void etcd_endpoints_fini(struct etcd_endpoints *e);

/* The endpoint `failed` let us down: the next one is used from now on,
 * unless someone already moved past it. */
void etcd_endpoints_move_on(struct etcd_endpoints *e, unsigned failed);

/* One connection. Fields are private but body, body_len, status, complete
 * and why. */
struct etcd_conn {
    int fd; /* -1 while closed */
    unsigned endpoint;
    const char *host; /* the endpoint's, for the Host header */
    int64_t sent_us;  /* when the last request was sent */
    bool stale;       /* closed by the peer, or bytes we did not ask for: do not reuse */
    bool complete;    /* the whole reply has come */
    int error;        /* why a parser callback stopped, as a negative errno */
    int status;       /* the reply's HTTP status, 0 before its head */
    llhttp_t parser;
    char *body; /* the reply's body so far */
    size_t body_len, body_cap;
    char *out; /* the request being sent */
    size_t out_cap;
    struct loop_io io;
    struct tls_conn tls;             /* tls.ssl NULL: plain */
    struct etcd_secure *secure;      /* the endpoints', as of the open */
    char token[ETCD_AUTH_TOKEN_CAP]; /* sent with each request, "" for none */
    uint64_t token_generation;       /* etcd_auth_token()'s number for it */
    char why[TLS_WHY_CAP];           /* the cause of the last error, "" if none known */
};

/* A closed connection that holds nothing. */
void etcd_conn_init(struct etcd_conn *conn);

/* Connects to the endpoint in use (a healthy one, if it was abandoned),
 * else to the next ones in turn (nothing was sent, so moving on is safe
 * for any request); an endpoint that refuses is reported abandoned. A
 * connection that was open is closed first. Returns 0 or an error above; -ETIMEDOUT and
 * -ECANCELED stop the round. */
int etcd_conn_open(struct etcd_conn *conn, struct etcd_endpoints *e, int64_t deadline_us);

/* True if conn is open and fit for another exchange: nothing came since the
 * last reply (an end, an error, or bytes nobody asked for). Then the next
 * read waits for the reply's edge without asking the kernel first. */
bool etcd_conn_fit(struct etcd_conn *conn);

/* The token for the next requests ("" for none) and its number. */
void etcd_conn_set_token(struct etcd_conn *conn, const char *token, uint64_t generation);

/* Sends "POST path" with body and readies conn for the reply. */
int etcd_conn_send(struct etcd_conn *conn, const char *path, const char *body, size_t body_len,
                   int64_t deadline_us);

/* Reads what has arrived, parking until something does or the deadline,
 * and feeds it to the parser: body grows, and complete is set once the
 * reply ended. */
int etcd_conn_read(struct etcd_conn *conn, int64_t deadline_us);

/* etcd_conn_send, then etcd_conn_read until the reply is complete. */
int etcd_conn_exchange(struct etcd_conn *conn, const char *path, const char *body, size_t body_len,
                       int64_t deadline_us);

/* Drops the first n bytes of body (a stream's message, handled). */
void etcd_conn_consume(struct etcd_conn *conn, size_t n);

/* After an exchange that ended with rc: keeps the connection only after a
 * whole one (after a timeout etcd may still answer, and the answer would
 * be taken for the next request's), and moves e on from a member that
 * timed out, broke or is unavailable (-EAGAIN), reporting it abandoned. */
void etcd_conn_settle(struct etcd_conn *conn, struct etcd_endpoints *e, int rc);

/* True if conn is open on an endpoint that e's health abandoned while
 * another is healthy: its calls should move. */
bool etcd_conn_abandoned(const struct etcd_conn *conn, const struct etcd_endpoints *e);

/* Closes the socket (and its TLS); the buffers stay for the next connection. */
void etcd_conn_close(struct etcd_conn *conn);

/* Wipes the request last sent (it held a password). */
void etcd_conn_forget_request(struct etcd_conn *conn);

/* Frees everything: from a cleanup of its coroutine (coro_defer) as well,
 * when the loop already dropped the descriptor's watch. */
void etcd_conn_free(struct etcd_conn *conn);

#endif
