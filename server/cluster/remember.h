/* remember: where cluster mode keeps an Idempotency-Key (issue 29):
 * `/turnstile/NAME/idem/KEY` -> "N", put by the fenced write (commit.h) in
 * the same txn as the counter, so "applied" and "remembered" never
 * disagree, whichever instance a retry reaches.
 *
 * Retention is a lease, not a sweep: each loop attaches its keys to a lease
 * of TTL retention + bucket, and takes a new one every bucket (retention /
 * 24, at least a second), so a key lives between retention and retention +
 * bucket, and etcd deletes it with no call of ours. The leases are never
 * kept alive: a key outlives the instance that wrote it. The cap on keys
 * is not enforced in etcd (it would take a count per write); at most one
 * key per 200 lives a window, so the cluster's request rate bounds them. */
#ifndef TURNSTILE_CLUSTER_REMEMBER_H
#define TURNSTILE_CLUSTER_REMEMBER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cluster;      /* instance.h */
struct cluster_loop; /* instance.h */

/* A key's name: the prefix (/turnstile/NAME/, at most 80 bytes), "idem/",
 * then at most REMEMBER_KEY_MAX bytes. */
#define REMEMBER_KEY_MAX  64
#define REMEMBER_NAME_MAX (80 + 5 + REMEMBER_KEY_MAX + 1)

/* An Idempotency-Key for cluster_commit(). */
struct cluster_idem {
    const char *key; /* 1..REMEMBER_KEY_MAX bytes */
    size_t len;
    uint64_t retention_ms;
    bool repeat; /* set: the key was applied before; *n is its N, nothing was written */
};

/* The etcd key for key (len <= REMEMBER_KEY_MAX) into buf
 * (REMEMBER_NAME_MAX bytes); returns its length. */
size_t remember_name(const struct cluster *c, const char *key, size_t len, char *buf);

/* From a coroutine of cl's loop: the lease to put a key on now, for a
 * window of retention_ms. Returns 0 with *lease, or the grant's negative
 * errno (etcd.h). */
int remember_lease(struct cluster_loop *cl, uint64_t retention_ms, int64_t *lease);

#endif
