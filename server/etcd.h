/* etcd: an etcd v3 client for coroutines on a loop, over etcd's JSON
 * gateway (HTTP/1.1 POSTs of JSON to /v3/..., keys and values in base64).
 * The foundation of the cluster mode: a shared counter and a FIFO lock kept
 * in etcd.
 *
 * One client is one keep-alive connection, owned by a coroutine of the
 * client's own (the worker) that serves the calls in a FIFO. A caller
 * queues its call and parks until the reply or its deadline. So the calls
 * of one client reach etcd one at a time, in the order they were made, and
 * etcd applies them in that order: a later call never overtakes an earlier
 * one. Calls that should run side by side need a client each.
 *
 * Every call is made from a coroutine of one loop, takes a deadline on
 * loop_now_us()'s clock and returns 0 or a negative errno, by the deadline:
 *   -ETIMEDOUT     the deadline passed (queued, connecting or awaiting the
 *                  reply). LOOP_FOREVER never passes: against a stalled
 *                  etcd such a call waits for ever.
 *   -ECANCELED     the caller was loop_cancel()ed, or the client finished.
 *   -ECONNREFUSED  (or another connect(2) errno) no endpoint took a
 *                  connection: each was tried once.
 *   -ECONNRESET    the connection broke before the whole reply came.
 *   -EIO           a reply that is not what the gateway sends: not HTTP,
 *                  not JSON, or JSON of the wrong shape or types.
 *   -EMSGSIZE      a reply longer than ETCD_MAX_REPLY.
 *   -ENOMEM, -EMFILE  out of memory or descriptors here.
 *   etcd's refusals, by gRPC code: -EINVAL (3, invalid argument, e.g. two
 *   ops on one key in a txn), -ENOENT (5, not found: a lease), -EEXIST (6),
 *   -EACCES (7, 16), -ENOSPC (8, quota), -ERANGE (11, compacted revision),
 *   -EAGAIN (14, unavailable: no leader, request timed out), -EREMOTEIO
 *   (any other). etcd_last_error() has etcd's message.
 * A txn that failed after it was sent (-ETIMEDOUT, -ECONNRESET, -ECANCELED)
 * may or may not have been applied: re-read before acting on it. A call
 * abandoned before it was sent is never sent; one cancelled after keeps
 * the connection (and the calls queued behind it) until its reply is read
 * and dropped, or its deadline passes.
 *
 * Endpoints: a call that finds no live connection tries the endpoints in
 * turn from the current one (nothing was sent, so any call may move on).
 * After a timeout, a broken connection or an "unavailable" answer the
 * client drops the connection and moves to the next endpoint for the next
 * call. A kept-alive connection that etcd closed while idle is replaced
 * before use (checked with a peek before each call).
 *
 * What etcd 3.4's gateway does that shapes this module: int64 fields are
 * JSON strings; absent fields are zero or false (no "succeeded" means the
 * compares failed; a PUT event has no "type"); lease fields are spelled
 * "ID" and "TTL". Don't use /v3/lock/lock (buggy in 3.4): build locks from
 * txns, leases and watches. */
#ifndef TURNSTILE_ETCD_H
#define TURNSTILE_ETCD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <llhttp.h>

#include "loop.h"

#define ETCD_MAX_ENDPOINTS 8
#define ETCD_MAX_REPLY     (64u << 20) /* a range over many keys; more is -EMSGSIZE */

/* ---- results ---- */

/* A key-value pair as etcd stores it. key and value are NUL-terminated as
 * well (their bytes may contain NULs of their own). */
struct etcd_kv {
    const char *key;
    size_t key_len;
    const char *value;
    size_t value_len;
    int64_t create_revision; /* revision that created the key: its place in a queue */
    int64_t mod_revision;    /* revision of its last change */
    int64_t version;         /* changes since it was created, 1 for a new key */
    int64_t lease;           /* lease it is attached to, 0 if none */
};

enum etcd_op_type { ETCD_OP_RANGE, ETCD_OP_PUT, ETCD_OP_DELETE };

/* What one operation returned. */
struct etcd_op_result {
    enum etcd_op_type type;
    int64_t count; /* RANGE: keys in the range, even past the limit, and before
                      max_create_revision filters (etcd 3.4); DELETE: keys deleted */
    bool more;     /* RANGE: the limit left some out (of those that passed the filter) */
    size_t nkvs;
    struct etcd_kv *kvs; /* RANGE: the keys (none with count_only); PUT with prev_kv:
                            the pair it replaced (none for a new key); DELETE with
                            prev_kv: the pairs deleted */
};

struct etcd_mem; /* the memory of one reply */

/* A call's result. Everything it points to lives until etcd_reply_free(). */
struct etcd_reply {
    int64_t revision; /* header.revision: the store's revision when etcd answered */
    bool succeeded;   /* etcd_txn: the compares held and `success` ran */
    size_t nops;      /* etcd_txn: one per op of the branch that ran; range, delete: 1 */
    struct etcd_op_result *ops;
    struct etcd_mem *mem;
};

/* Frees r's memory (r itself is the caller's); safe on a zeroed or freed reply. */
void etcd_reply_free(struct etcd_reply *r);

/* ---- requests ---- */

enum etcd_sort_order { ETCD_SORT_NONE, ETCD_SORT_ASCEND, ETCD_SORT_DESCEND };
enum etcd_sort_target {
    ETCD_SORT_KEY,
    ETCD_SORT_VERSION,
    ETCD_SORT_CREATE, /* by create revision: queue order */
    ETCD_SORT_MOD,
    ETCD_SORT_VALUE
};

/* One key, or with prefix every key that starts with key (an empty key
 * with prefix: every key). */
struct etcd_range_req {
    const char *key;
    size_t key_len;
    bool prefix;
    int64_t limit; /* at most this many kvs, 0: all */
    enum etcd_sort_order sort_order;
    enum etcd_sort_target sort_target;
    bool count_only;             /* count, no kvs */
    int64_t max_create_revision; /* only keys created at or before it; 0: any */
    int64_t revision;            /* as of this revision (history); 0: the latest */
};

struct etcd_put_req {
    const char *key;
    size_t key_len;
    const char *value;
    size_t value_len;
    int64_t lease; /* attach to this lease (deleted when it expires); 0: none */
    bool prev_kv;  /* return the pair it replaces */
};

struct etcd_delete_req {
    const char *key;
    size_t key_len;
    bool prefix;  /* every key that starts with key */
    bool prev_kv; /* return the pairs deleted */
};

struct etcd_op {
    enum etcd_op_type type;
    union {
        struct etcd_range_req range;
        struct etcd_put_req put;
        struct etcd_delete_req del;
    };
};

enum etcd_cmp_target {
    ETCD_CMP_VERSION,
    ETCD_CMP_CREATE, /* create revision; 0 for a key that does not exist */
    ETCD_CMP_MOD,
    ETCD_CMP_VALUE,
    ETCD_CMP_LEASE
};
enum etcd_cmp_result { ETCD_CMP_EQUAL, ETCD_CMP_GREATER, ETCD_CMP_LESS, ETCD_CMP_NOT_EQUAL };

/* "key's target <result> operand", e.g. create revision EQUAL 0: the key
 * does not exist. */
struct etcd_cmp {
    const char *key;
    size_t key_len;
    enum etcd_cmp_target target;
    enum etcd_cmp_result result;
    int64_t number;    /* VERSION, CREATE, MOD, LEASE */
    const char *value; /* VALUE */
    size_t value_len;
};

/* If every compare holds, run `success`, else `failure`: atomically, at
 * one revision. etcd refuses (-EINVAL) two ops that write one key. */
struct etcd_txn {
    const struct etcd_cmp *cmps;
    size_t ncmps;
    const struct etcd_op *success;
    size_t nsuccess;
    const struct etcd_op *failure;
    size_t nfailure;
};

/* ---- the client ---- */

struct etcd_endpoint {
    char url[72];  /* as given, without a trailing '/': "http://127.0.0.1:2379" */
    char host[72]; /* for the Host header: "127.0.0.1:2379" */
    union {
        struct sockaddr sa;
        struct sockaddr_in v4;
        struct sockaddr_in6 v6;
    } addr;
    socklen_t addr_len;
};

/* Failed calls by kind, for /stats and /metrics. */
enum etcd_err_kind {
    ETCD_ERR_TIMEOUT,   /* -ETIMEDOUT */
    ETCD_ERR_CANCELED,  /* -ECANCELED */
    ETCD_ERR_CONNECT,   /* no endpoint took a connection */
    ETCD_ERR_BROKEN,    /* -ECONNRESET: the connection broke mid-call */
    ETCD_ERR_BAD_REPLY, /* -EIO, -EMSGSIZE */
    ETCD_ERR_ETCD,      /* etcd refused (its gRPC code as an errno) */
    ETCD_ERR_LOCAL,     /* -ENOMEM, -EMFILE, -ENFILE */
    ETCD_ERR_COUNT
};

/* "timeout", "canceled", "connect", "broken", "bad_reply", "etcd", "local" */
extern const char *const etcd_err_names[ETCD_ERR_COUNT];

struct etcd_stats {
    uint64_t calls; /* calls and watch opens made, with valid arguments */
    uint64_t ok;    /* of them, those that returned 0 */
    uint64_t errors[ETCD_ERR_COUNT];
    uint64_t watch_errors;     /* streams of open watches that broke (not counted above) */
    uint64_t connects;         /* connections opened (the worker's and watches') */
    uint64_t connect_failures; /* failed attempts, even when another endpoint then took it */
    uint64_t rotations;        /* moves to the next endpoint */
};

struct etcd_call;

/* Fields are private but `stats` and the endpoint list (for /stats). */
struct etcd_client {
    struct etcd_endpoint endpoints[ETCD_MAX_ENDPOINTS];
    unsigned nendpoints;
    unsigned current;              /* the endpoint in use (or tried next) */
    coro_t *worker;                /* owns the connection; NULL until the first call */
    bool finished;                 /* etcd_client_fini() ran: calls end with -ECANCELED */
    bool worker_idle;              /* parked with nothing to do */
    struct etcd_call *head, *tail; /* calls waiting for the worker */
    struct etcd_call *inflight;    /* the call the worker serves, NULL if abandoned */
    int last_result;               /* 0 or the errno of the last call */
    char last_error[160];          /* what went wrong last, "" if nothing yet */
    struct etcd_stats stats;
};

/* endpoints: comma-separated URLs "http://IP:PORT" (IPv4, or IPv6 in
 * brackets: names would need a blocking resolver). At most
 * ETCD_MAX_ENDPOINTS. Returns 0 or -EINVAL. Needs no loop; the worker
 * starts with the first call. */
int etcd_client_init(struct etcd_client *c, const char *endpoints);

/* Ends the worker and its connection: from another coroutine or outside
 * the loop, before loop_fini(). Calls still pending end with -ECANCELED
 * (they no longer touch c), and so do calls made later. Watches must be
 * closed before. */
void etcd_client_fini(struct etcd_client *c);

/* The URL of the endpoint in use (or to be tried next). */
const char *etcd_endpoint(const struct etcd_client *c);
/* True if the last call (or watch open) returned 0; false before any. */
bool etcd_last_ok(const struct etcd_client *c);
/* What went wrong last: etcd's message, or a description; "" if nothing. */
const char *etcd_last_error(const struct etcd_client *c);

/* ---- calls: from a coroutine; see the top for what they return ---- */

/* /v3/kv/range. On success *out has one RANGE result (ops[0]). */
int etcd_range(struct etcd_client *c, const struct etcd_range_req *req, struct etcd_reply *out,
               int64_t deadline_us);

/* /v3/kv/txn. On success out->succeeded says which branch ran, and ops has
 * its results in order. */
int etcd_txn(struct etcd_client *c, const struct etcd_txn *txn, struct etcd_reply *out,
             int64_t deadline_us);

/* /v3/kv/deleterange. On success *out has one DELETE result (ops[0]). */
int etcd_delete(struct etcd_client *c, const struct etcd_delete_req *req, struct etcd_reply *out,
                int64_t deadline_us);

/* /v3/lease/grant: a lease of ttl_s seconds (etcd may raise it to its
 * minimum). *id and *granted_ttl_s (may be NULL) on success. */
int etcd_lease_grant(struct etcd_client *c, int64_t ttl_s, int64_t *id, int64_t *granted_ttl_s,
                     int64_t deadline_us);

/* /v3/lease/keepalive, once: renews the lease to its full TTL, returned in
 * *ttl_s (may be NULL). -ENOENT if it expired or never existed. The
 * caller loops, e.g. every TTL/3. */
int etcd_lease_keepalive(struct etcd_client *c, int64_t id, int64_t *ttl_s, int64_t deadline_us);

/* /v3/lease/revoke: ends the lease and deletes its keys. -ENOENT if it
 * expired or never existed. */
int etcd_lease_revoke(struct etcd_client *c, int64_t id, int64_t deadline_us);

/* ---- watches ---- */

enum etcd_event_type { ETCD_EVENT_PUT, ETCD_EVENT_DELETE };

/* kv.mod_revision is the revision of the change. A DELETE's kv has only
 * key and mod_revision. */
struct etcd_event {
    enum etcd_event_type type;
    struct etcd_kv kv;
};

/* One connection and its reply's parser. Private: here because a watch
 * holds one. */
struct etcd_conn {
    int fd;
    unsigned endpoint;
    bool stale; /* closed by the peer, or bytes we did not ask for: do not reuse */
    bool complete;
    int error; /* why a parser callback stopped, as a negative errno */
    llhttp_t parser;
    char *body; /* the reply's body so far */
    size_t body_len, body_cap;
    struct loop_io io;
};

/* A watch has a connection of its own (it streams its reply for as long as
 * it lives), owned by the coroutine that opened it: only that coroutine
 * may call etcd_watch_next() and etcd_watch_close(). Fields are private
 * but `revision`. */
struct etcd_watch {
    int64_t revision; /* header revision when created: every later change is reported */
    struct etcd_client *client;
    struct etcd_conn conn;
    struct json_t *msg; /* the message whose events are being handed out */
    size_t next_event;
    struct etcd_mem *mem; /* the last event's bytes */
    int failed;           /* the error that ended the stream, 0 while it runs */
};

/* Watches key (with prefix: every key that starts with it) from now on,
 * through /v3/watch with no start revision: etcd then reports the watch
 * created at once (a start revision at or below the current one puts the
 * watch in etcd's "unsynced" group, flushed only every 100 ms). Returns 0
 * once etcd says it is created: w->revision is the revision then, and
 * every change after it will come. A caller that must not miss a change
 * reads the state after this (etcd_range) and applies events with a
 * mod_revision above what it read. On failure w holds nothing to close.
 * A watch takes two of its coroutine's CORO_MAX_DEFER cleanups: -ENOSPC
 * when they are not there. */
int etcd_watch_open(struct etcd_client *c, struct etcd_watch *w, const char *key, size_t key_len,
                    bool prefix, int64_t deadline_us);

/* The next event, in revision order. ev points into w until the next call
 * or etcd_watch_close(). Returns 0, -ETIMEDOUT (nothing came: the watch
 * stays usable), -ECANCELED (loop_cancel: stays usable), or, when the
 * watch ended (close it then): -ECONNRESET (connection lost), -EPIPE (etcd
 * ended the stream or cancelled the watch), -ERANGE (compacted), -EIO. */
int etcd_watch_next(struct etcd_watch *w, struct etcd_event *ev, int64_t deadline_us);

/* Ends the watch: etcd cancels it when its connection closes. */
void etcd_watch_close(struct etcd_watch *w);

#endif
