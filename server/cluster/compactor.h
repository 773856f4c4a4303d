/* compactor: keeps etcd's history bounded by time, not by traffic.
 *
 * Every request adds two revisions (its join, its fenced write) that etcd
 * keeps until its history is compacted: never compacted, the backend
 * reaches its quota and etcd refuses every write (the NOSPACE alarm).
 * Every --compact-interval-ms, as Kubernetes' API server does, each
 * instance's compactor sends one txn: if the `compact` key's version is
 * the one it saw last, put it (version + 1); else read it. The header's
 * revision is remembered; only the instance whose compare held (one per
 * interval, however many there are) compacts, to the revision it
 * remembered from its previous round: at least one interval old. So the
 * history of the last interval is always kept, and a write whose reply
 * was lost can be settled (proof.h) if its instance asks within one
 * interval. etcd's "already compacted" answer is no error: compaction is
 * idempotent. Under the NOSPACE alarm the txn is refused; the compactor
 * compacts anyway, since that is what the operator needs before a defrag.
 * The compaction is not physical: the space is reused, the file keeps its
 * size until an operator's `etcdctl defrag`. */
#ifndef TURNSTILE_CLUSTER_COMPACTOR_H
#define TURNSTILE_CLUSTER_COMPACTOR_H

/* The compactor's coroutine (arg: the first loop's cluster_loop): until
 * the instance stops. Never started with an interval of 0. */
void compactor_main(void *arg);

#endif
