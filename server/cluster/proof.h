/* proof: whether a fenced write whose reply was lost was applied.
 *
 * Every write compares the counter's mod revision with the one it read,
 * so exactly one write follows the version N read at mod revision R, and
 * it wrote N + 1: the first revision after R at which the counter exceeds
 * N. etcd keeps the history (until compacted): a binary search over
 * revisions (range with `revision`) finds that version, and the receipt
 * in its value (counter.h: key and create revision) says whose write it
 * was. */
#ifndef TURNSTILE_CLUSTER_PROOF_H
#define TURNSTILE_CLUSTER_PROOF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "instance.h"
#include "ticket.h"

/* How long a write waits for etcd to answer before its outcome is given
 * up as unknown: the lease's TTL and two call deadlines (a leader election
 * can outlast one call) of etcd not answering, counted as the time failed
 * calls took, each at most one call's deadline and the pause after it. A
 * stall of this instance (SIGSTOP, a VM paused) is then one failed call,
 * not etcd's silence: however long it was, the history is asked after it. */
struct proof_patience {
    int64_t left_us;    /* of etcd's silence still to bear */
    int64_t cap_us;     /* the most one failed call counts for */
    int64_t started_us; /* of the call being made */
};

void proof_patience_init(struct proof_patience *p, const struct cluster *c);
/* Before a call whose failure would count. */
void proof_patience_call(struct proof_patience *p);
/* After it failed: false once patience is spent. */
bool proof_patience_failed(struct proof_patience *p);

/* From a coroutine on cl's loop, after the write of read->value + 1 by
 * ticket t (its key and create revision) may have been applied unseen and
 * its key is gone. Asks again while etcd does not answer and p lasts.
 * Returns 0 (it was applied), -EAGAIN (it certainly was not) or
 * -ENOTRECOVERABLE (it cannot be proven: etcd unreachable past p, or the
 * history compacted; counted as unknown). Either way it is logged. */
int proof_settle(struct cluster_loop *cl, const struct counter_copy *read, const struct ticket *t,
                 struct proof_patience *p);

#endif
