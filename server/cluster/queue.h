/* queue: taking a place in the cluster-wide queue and waiting for the
 * lock, as etcd's concurrency.Mutex does but without a watch or a range
 * per waiter; the joiner, which sends the joins; and the reaper, which
 * deletes the keys of requests that left.
 *
 * Joins are batched: a request takes the next arrival sequence number of
 * its loop and waits in the loop's join line; the joiner sends every
 * request waiting there (up to QUEUE_BATCH) in one txn: their puts (on the
 * lease, each key's value its arrival sequence), the counter and the
 * queue's length, all at one revision. So a burst costs one etcd round
 * trip per QUEUE_BATCH requests, not one each. If the batch is the whole
 * queue, its first request holds the lock at once (alone: 2 round trips in
 * all, with the write). The others wait until their key is the oldest, as
 * the loop's mirror shows (watcher.h).
 *
 * FIFO: within a loop, requests enter the join line in arrival order and
 * take increasing sequence numbers; the joiner sends one batch at a time
 * through one etcd client and the next only after the previous returned,
 * so an earlier batch's keys have a lower create revision. The keys of one
 * batch share one create revision, and their sequence numbers order them;
 * the mirror sorts by (create revision, sequence) (mirror.h). Across
 * loops and instances, the order is the one in which etcd applied the
 * joins (no two loops' keys share a revision).
 *
 * Deadlines: the time waiting in the join line and in the queue is bounded
 * by the request's own deadline (--lock-timeout-ms; 0: for ever), as in
 * single-node mode; a batch's etcd call by the call deadline from when it
 * is sent. A request whose batch failed is refused as etcd's failure; one
 * whose own deadline passed, as a lock timeout. */
#ifndef TURNSTILE_CLUSTER_QUEUE_H
#define TURNSTILE_CLUSTER_QUEUE_H

#include <stdint.h>

#include "instance.h"
#include "ticket.h"

/* Joins in one txn at most: with the counter's read and the queue's count,
 * etcd's default --max-txn-ops (128). */
#define QUEUE_BATCH 126

/* From a request's coroutine on cl's loop (cl may be NULL: the loop could
 * not attach). Returns 0 with *out the caller's granted ticket, or
 * -ETIMEDOUT (deadline_us passed), -ECANCELED, -EBUSY (the queue, as seen
 * here with this loop's requests not yet sent, is more than max_waiters
 * long; 0: no cap) or -EAGAIN (etcd failed the join, no lease, stopping,
 * or the place was lost). */
int queue_acquire(struct cluster_loop *cl, int64_t deadline_us, uint64_t max_waiters,
                  struct ticket **out);

/* The joiner's coroutine (arg: its loop's cluster_loop): sends the joins
 * waiting in the loop's join line, a batch at a time, until the instance
 * stops; then refuses those still waiting (-EAGAIN). */
void queue_joiner_main(void *arg);

/* The reaper's coroutine (arg: its loop's cluster_loop): deletes the keys
 * of leaving tickets, retrying until etcd answers, until the instance
 * stops. */
void queue_reaper_main(void *arg);

#endif
