/* proof: whether a fenced write whose reply was lost was applied.
 *
 * Every write compares the counter's mod revision with the one it read,
 * so exactly one write follows the version N read at mod revision R, and
 * it wrote N + 1: the first revision after R at which the counter exceeds
 * N. etcd keeps the history (until compacted): a binary search over
 * revisions (range with `revision`) finds that version, and the key in
 * its value (counter.h) says whose write it was. */
#ifndef TURNSTILE_CLUSTER_PROOF_H
#define TURNSTILE_CLUSTER_PROOF_H

#include <stddef.h>
#include <stdint.h>

#include "instance.h"

/* From a coroutine on cl's loop, after the write of read->value + 1 by
 * the request with key `key` may have been applied unseen and its key is
 * gone. Asks again until etcd answers or give_up (loop clock) passes: etcd
 * may be electing a leader. Returns 0 (it was applied) or -EAGAIN (it was
 * not, or it cannot be proven: etcd unreachable until give_up, or the
 * history compacted; counted as unknown). Either way it is logged. */
int proof_settle(struct cluster_loop *cl, const struct counter_copy *read, const char *key,
                 size_t key_len, int64_t give_up);

#endif
