/* etcd_client: one keep-alive connection to etcd, and the line of calls
 * waiting to use it.
 *
 * The connection is owned by a coroutine of the client's own, its courier,
 * which serves the calls in a FIFO: a caller queues its call and parks
 * until the reply or its deadline. So the calls of one client reach etcd
 * one at a time, in the order they were made, and etcd applies them in
 * that order: a later call never overtakes an earlier one. Calls that
 * should run side by side need a client each. A client belongs to one
 * loop: the one of its first call.
 *
 * A call abandoned before it was sent is never sent; one abandoned after
 * (deadline, cancel) keeps the connection, and the calls queued behind it,
 * until its reply is read and dropped or its deadline passes. Decoding
 * into the caller's result happens in the courier while the caller is
 * still parked, so a call's outcome (result, statistics) is settled in one
 * place.
 *
 * Endpoints: a call that finds no live connection tries the endpoints in
 * turn from the current one (nothing was sent, so any call may move on).
 * After a timeout, a broken connection or an "unavailable" answer the
 * client drops the connection and moves to the next endpoint for the next
 * call. A kept-alive connection that etcd closed while idle, or whose
 * endpoint the process abandoned (etcd_conn.h's health), is replaced
 * before use; an exchange under way on an abandoned endpoint is ended by
 * etcd_client_move().
 *
 * A secured etcd (etcd_client_secure): TLS is the connection's business;
 * with etcd's auth the courier authenticates on its first call (one token
 * serves every client of the process, etcd_auth.h) and, when etcd finds
 * the token expired, renews it and sends the call again, once. */
#ifndef TURNSTILE_ETCD_CLIENT_H
#define TURNSTILE_ETCD_CLIENT_H

#include <stdbool.h>
#include <stdint.h>

#include "coro.h"
#include "etcd_conn.h"
#include "etcd_decode.h"
#include "list.h"

/* Failed calls by kind, for /stats and /metrics (in this order: the names
 * are stats.c's). */
enum etcd_err_kind {
    ETCD_ERR_TIMEOUT,   /* -ETIMEDOUT */
    ETCD_ERR_CANCELED,  /* -ECANCELED */
    ETCD_ERR_CONNECT,   /* no endpoint took a connection */
    ETCD_ERR_BROKEN,    /* -ECONNRESET: the connection broke mid-call; -EPIPE */
    ETCD_ERR_BAD_REPLY, /* -EIO, -EMSGSIZE */
    ETCD_ERR_ETCD,      /* etcd refused (its gRPC code as an errno) */
    ETCD_ERR_LOCAL,     /* -ENOMEM, -EMFILE, -ENFILE */
    ETCD_ERR_COUNT
};

struct etcd_stats {
    uint64_t calls; /* calls and watch opens made, with valid arguments */
    uint64_t ok;    /* of them, those that returned 0 */
    uint64_t errors[ETCD_ERR_COUNT];
    uint64_t watch_errors; /* streams of open watches that broke (not counted above) */
};

/* Fields are private but `stats` and `endpoints` (for /stats). */
struct etcd_client {
    struct etcd_endpoints endpoints; /* and how connecting went */
    coro_t *courier;                 /* owns the connection; NULL until the first call */
    bool finished;                   /* etcd_client_fini() ran: calls end with -ECANCELED */
    bool courier_idle;               /* parked with nothing to do */
    struct list_node calls;          /* waiting for the courier, oldest first */
    struct etcd_call *inflight;      /* the call the courier serves, NULL if abandoned */
    const struct etcd_conn *conn;    /* the courier's, NULL until it runs */
    bool moving;                     /* etcd_client_move() cancelled the courier */
    int last_result;                 /* 0 or the errno of the last call */
    char last_error[ETCD_WHY_CAP];   /* what went wrong last, "" if nothing yet */
    struct etcd_stats stats;
};

/* Fills a call's result from the reply's document (etcd_decode_doc's);
 * runs in the courier while the caller waits. Returns 0 or a negative
 * errno; may point *why at a static description of what went wrong. */
typedef int etcd_decode_fn(struct etcd_jv doc, void *out, const char **why);

/* One call, on its caller's stack while it waits. */
struct etcd_call {
    struct list_node link; /* in the client's calls */
    coro_t *co;            /* the caller, parked */
    const char *path;      /* "/v3/kv/range" */
    const char *body;      /* the request's JSON, the caller's until it returns */
    int64_t deadline_us;
    bool stream; /* a streaming endpoint: the reply is {"result": ...} */
    etcd_decode_fn *decode;
    void *out; /* decode's */
    bool done; /* rc is final */
    int rc;
};

/* endpoints: as etcd_endpoints_parse() takes them. Returns 0 or -EINVAL.
 * Needs no loop; the courier starts with the first call. */
int etcd_client_init(struct etcd_client *c, const char *endpoints);

/* Connects with TLS and authenticates as secure says (NULL: neither), and
 * reports refusals there. Before the first call; secure outlives c. */
void etcd_client_secure(struct etcd_client *c, struct etcd_secure *secure);

/* Whether a token etcd calls expired can be renewed: etcd's auth is in
 * use. Without it such an answer is a refusal (-EACCES), not sent again. */
bool etcd_client_renews(const struct etcd_endpoints *e);

/* With etcd's auth in use on conn (open, from e): gives it the token to
 * send, authenticating over it first when there is none yet, or when
 * `expired` (etcd refused the one conn sent) and no other connection
 * renewed it meanwhile. Returns 0, what etcd_conn_exchange() does, -EIO,
 * or -EACCES (etcd refused to authenticate: conn->why names the user and
 * the password file). On failure conn may be closed. For the courier and
 * watches. */
int etcd_client_login(struct etcd_conn *conn, struct etcd_endpoints *e, bool expired,
                      int64_t deadline_us);

/* Ends the courier and its connection: from another coroutine or outside
 * the loop, before loop_fini(). Calls still pending end with -ECANCELED
 * (they no longer touch c), and so do calls made later. Watches must be
 * closed before. */
void etcd_client_fini(struct etcd_client *c);

/* From a coroutine: queues call (path, body, deadline_us, stream, decode and
 * out set) and parks until the courier settles it, its deadline passes or
 * it is cancelled. Returns decode's result, or what etcd.h lists: a
 * transport error (etcd_conn.h), etcd's refusal, -ETIMEDOUT, -ECANCELED. */
int etcd_client_call(struct etcd_client *c, struct etcd_call *call);

/* From a coroutine of c's loop: if the courier is waiting on a connection
 * to an endpoint the process abandoned while another is healthy, that
 * exchange ends now as if the
 * connection broke (its caller gets -ECONNRESET: a txn may or may not have
 * been applied), and the next call goes to a healthy endpoint. */
void etcd_client_move(struct etcd_client *c);

/* Counts one call's outcome, rc, made elsewhere (a watch open, a request
 * that could not be encoded); why (may be NULL) says what went wrong. */
void etcd_client_account(struct etcd_client *c, int rc, const char *why);

/* The URL of the endpoint in use (or to be tried next). */
const char *etcd_endpoint(const struct etcd_client *c);
/* True if the last call (or watch open) returned 0; false before any. */
bool etcd_last_ok(const struct etcd_client *c);
/* What went wrong last: etcd's message, or a description; "" if nothing. */
const char *etcd_last_error(const struct etcd_client *c);

#endif
