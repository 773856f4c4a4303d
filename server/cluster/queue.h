/* queue: taking a place in the cluster-wide queue and waiting for the
 * lock, as etcd's concurrency.Mutex does but without a watch or a range
 * per waiter; and the reaper, which deletes the keys of requests that
 * left.
 *
 * A request joins with one txn: put its key (on the lease), read the
 * counter, count the queue, all at one revision. Alone in the queue it
 * holds the lock at once. Otherwise it waits until its key is the oldest,
 * as the loop's mirror shows (watcher.h). Within a loop, joins go through
 * one etcd client, so etcd applies them in arrival order. */
#ifndef TURNSTILE_CLUSTER_QUEUE_H
#define TURNSTILE_CLUSTER_QUEUE_H

#include <stdint.h>

#include "instance.h"
#include "ticket.h"

/* From a request's coroutine on cl's loop (cl may be NULL: the loop could
 * not attach). Returns 0 with *out the caller's granted ticket, or
 * -ETIMEDOUT (deadline_us passed), -ECANCELED, -EBUSY (the queue, as seen
 * here, is more than max_waiters long; 0: no cap) or -EAGAIN (etcd
 * unreachable, no lease, stopping, or the place was lost). */
int queue_acquire(struct cluster_loop *cl, int64_t deadline_us, uint64_t max_waiters,
                  struct ticket **out);

/* The reaper's coroutine (arg: its loop's cluster_loop): deletes the keys
 * of leaving tickets, retrying until etcd answers, until the instance
 * stops. */
void queue_reaper_main(void *arg);

#endif
