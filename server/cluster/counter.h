/* counter: the shared counter's value in etcd, "N KEY REV": the number,
 * then the queue key of the request that wrote it and that key's create
 * revision. The two are the write's receipt: a writer that cannot tell
 * whether its write was applied finds out from it (proof.h). A key name
 * alone is not unique over time (names are reused, ticket.h); with its
 * create revision it is. A bare "N" (the counter set by hand, `etcdctl
 * put`) is N, written by no request.
 *
 * One txn may write for a group of K requests (commit.h): "N KEY1 REV1
 * ... KEYK REVK", where the i-th pair's request got N - K + i. The first
 * pair, the group's leader, is the receipt of the whole txn.
 *
 * Each loop keeps the copy with the highest mod revision it saw; the
 * instance keeps the highest value any loop saw (what /stats shows). */
#ifndef TURNSTILE_CLUSTER_COUNTER_H
#define TURNSTILE_CLUSTER_COUNTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "instance.h"

/* The N of value (len bytes, NUL-terminated as etcd_kv's values are).
 * Returns 0 or -EIO: not 1 to 19 digits, then a space or the end. */
int counter_parse(const char *value, size_t len, uint64_t *n);

/* True if the value was written by the txn whose leader (the first pair)
 * is the request whose key is key, created at create_revision. */
bool counter_written_by(const char *value, size_t len, const char *key, size_t key_len,
                        int64_t create_revision);

/* A request that wrote a value: its key and that key's create revision. */
struct counter_writer {
    const char *key;
    size_t key_len;
    int64_t create_revision;
};

/* "N KEY1 REV1 ... KEYK REVK" for the k writers of one txn, the last of
 * which got n, into buf (at least COUNTER_VALUE_MAX(k) bytes). */
#define COUNTER_VALUE_MAX(k) (24 + (k) * (CLUSTER_KEY_MAX + 24))
void counter_format(char *buf, size_t cap, uint64_t n, const struct counter_writer *w, size_t k);

/* The counter at mod_revision is value: cl's copy moves on if that is newer,
 * and the instance's highest. */
void counter_see(struct cluster_loop *cl, uint64_t value, int64_t mod_revision);

/* Sees the counter in a range result (none: 0 at revision 0). Returns 0,
 * or -EIO (a value that is not a counter's, logged). */
int counter_read(struct cluster_loop *cl, const struct etcd_op_result *r);

#endif
