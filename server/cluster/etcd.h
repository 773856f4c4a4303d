/* etcd: the etcd v3 calls cluster mode makes, for coroutines on a loop,
 * over etcd's JSON gateway (HTTP/1.1 POSTs of JSON to /v3/...).
 *
 * The layers below, each with its own contract: etcd_encode.h (the
 * requests), etcd_decode.h (the results), etcd_conn.h (the connection and
 * the endpoints), etcd_client.h (the client: one connection, its calls in
 * FIFO order), etcd_watch.h (watches).
 *
 * Every call is made from a coroutine of the client's loop, takes a
 * deadline on loop_now_us()'s clock and returns 0 or a negative errno, by
 * the deadline:
 *   -EINVAL        (before anything is sent) an argument that makes no sense
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
 * may or may not have been applied: re-read before acting on it.
 *
 * Don't use /v3/lock/lock (buggy in 3.4): build locks from txns, leases
 * and watches. */
#ifndef TURNSTILE_ETCD_H
#define TURNSTILE_ETCD_H

#include <stdint.h>

#include "etcd_client.h"
#include "etcd_decode.h"
#include "etcd_encode.h"

/* /v3/kv/range. On success *out has one RANGE result (ops[0]); on failure
 * nothing to free. */
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

/* /v3/kv/compaction: drops the history before revision (kept: the latest
 * version of each key, and everything from revision on). Not physical:
 * the space is reused, the file does not shrink (that is defrag's).
 * -ERANGE if revision is compacted already, -EINVAL if it is in the future. */
int etcd_compact(struct etcd_client *c, int64_t revision, int64_t deadline_us);

/* /v3/maintenance/alarm (GET): the active alarms, the cluster's and each
 * member's (etcd_decode.h), in *alarms; none if the call fails. */
int etcd_alarms(struct etcd_client *c, struct etcd_alarms *alarms, int64_t deadline_us);

#endif
