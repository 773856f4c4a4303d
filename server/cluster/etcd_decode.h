/* etcd_decode: what etcd answers, read from the gateway's JSON.
 *
 * The result types of the etcd client (etcd.h), and the decoders that
 * fill them from a reply's JSON as etcd 3.4's gateway writes it: int64s as
 * strings (numbers taken too), absent fields zero or false (no "succeeded"
 * means the compares failed; a PUT event has no "type"), bytes in base64,
 * lease fields spelled "ID" and "TTL". The JSON is read in place by
 * etcd_json's scanner (no tree is built). A field of the wrong type or
 * named twice, bad base64, or input that etcd_json refuses is -EIO; never
 * a crash. No I/O, no loop: usable anywhere.
 *
 * Every decoder returns 0, -EIO (not what the gateway sends), -ENOMEM, or
 * where said etcd's refusal as an errno (gRPC code: -EINVAL 3, -ENOENT 5,
 * -EEXIST 6, -EACCES 7 and 16, -ENOSPC 8, -ERANGE 11, -EAGAIN 14,
 * -EREMOTEIO any other), but for refusals of etcd's auth token
 * (etcd_auth_errno): -EKEYEXPIRED (renew it and send again), -EACCES
 * (none sent). etcd 3.4's gateway refusing a client certificate with a
 * CommonName (HTTP 400, plain text) is -EACCES too. */
#ifndef TURNSTILE_ETCD_DECODE_H
#define TURNSTILE_ETCD_DECODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "etcd_encode.h"
#include "etcd_json.h"

#define ETCD_WHY_CAP 256 /* what went wrong, for etcd_last_error(): TLS causes name files */

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

struct etcd_mem; /* the memory of one reply (or one event) */

/* Frees *mem and everything in it; *mem is NULL after. */
void etcd_mem_free(struct etcd_mem **mem);

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

enum etcd_event_type { ETCD_EVENT_PUT, ETCD_EVENT_DELETE };

/* kv.mod_revision is the revision of the change. A DELETE's kv has only
 * key and mod_revision. */
struct etcd_event {
    enum etcd_event_type type;
    struct etcd_kv kv;
};

/* ---- documents ---- */

/* A whole reply's document, parsed into json (the caller's, reused from
 * reply to reply; the document lives until json is parsed again or
 * freed, and body must not change meanwhile): 0 with *doc for a 200
 * whose body is a JSON object; with stream, the reply of a streaming
 * endpoint, one message {"result": ...}, and *doc is the result. Else
 * etcd's refusal, -EIO or -ENOMEM; why says which. */
int etcd_decode_doc(const char *body, size_t len, int status, bool stream, struct etcd_json *json,
                    struct etcd_jv *doc, char why[ETCD_WHY_CAP]);

/* One message of a stream (a line without its '\n'), parsed into json as
 * above: {"result": ...} gives *msg the result, {"error": ...} etcd's
 * refusal (why says it); else -EIO or -ENOMEM. */
int etcd_decode_message(const char *line, size_t len, struct etcd_json *json, struct etcd_jv *msg,
                        char why[ETCD_WHY_CAP]);

/* ---- results: on failure *out may hold memory, freed by etcd_reply_free ---- */

/* /v3/kv/range and /v3/kv/deleterange: one result, ops[0]. */
int etcd_decode_range(struct etcd_jv doc, struct etcd_reply *out);
int etcd_decode_delete(struct etcd_jv doc, struct etcd_reply *out);

/* /v3/kv/txn: one result per op of the branch that ran, each of its op's
 * type (t is the txn that was sent). */
int etcd_decode_txn(struct etcd_jv doc, const struct etcd_txn *t, struct etcd_reply *out);

/* /v3/lease/grant: a lease has an ID and a TTL, else -EIO. */
int etcd_decode_grant(struct etcd_jv doc, int64_t *id, int64_t *ttl_s);

/* /v3/lease/keepalive: the TTL renewed; none (etcd's answer for a lease
 * that is gone) is -ENOENT, and *why says so. */
int etcd_decode_keepalive(struct etcd_jv doc, int64_t *ttl_s, const char **why);

/* /v3/lease/revoke, or any reply whose header is all that matters. */
int etcd_decode_header(struct etcd_jv doc, int64_t *revision);

/* /v3/maintenance/alarm: the active alarms, as a mask of ETCD_ALARM_ bits
 * (0: none) for the cluster and for each member that raised one (the
 * first ETCD_ALARM_MEMBERS of them); an alarm this build does not know is
 * left out. Returns 0, or -EIO for a reply of the wrong shape. */
#define ETCD_ALARM_NOSPACE (1u << 1) /* a member's backend reached its quota */
#define ETCD_ALARM_CORRUPT (1u << 2) /* a member's data differs from the others' */
#define ETCD_ALARM_MEMBERS 8
struct etcd_alarms {
    unsigned all; /* every member's */
    unsigned n;   /* members listed */
    struct {
        char member[24]; /* its id, decimal as etcd writes it */
        unsigned bits;
    } at[ETCD_ALARM_MEMBERS];
};
int etcd_decode_alarms(struct etcd_jv doc, struct etcd_alarms *out);

/* The names of mask's alarms, "NOSPACE CORRUPT", into buf (cap bytes). */
void etcd_alarm_names(unsigned mask, char *buf, size_t cap);

/* ---- watch messages ---- */

/* Whether the watch goes on after msg: 0, or it ended: -ERANGE (cancelled:
 * compacted), -EACCES (cancelled: permission denied), -EPIPE (cancelled
 * otherwise), -EIO. */
int etcd_decode_watch_status(struct etcd_jv msg);

/* The first message: 0 with the revision at which the watch was created,
 * -EIO if it does not say "created". */
int etcd_decode_watch_created(struct etcd_jv msg, int64_t *revision);

/* msg's first event: etcd_json_type() says ETCD_JSON_NONE if there is none. */
struct etcd_jv etcd_decode_events(struct etcd_jv msg);

/* The event *it into *ev (its bytes in *mem); *it moves to the next one,
 * even when this one is not an event (-EIO). */
int etcd_decode_event(struct etcd_jv *it, struct etcd_mem **mem, struct etcd_event *ev);

#endif
