/* commit: the fenced write that ends a critical section and releases the
 * lock, in one txn: if my key still has my create revision and the counter
 * still has the mod revision I read, put counter + 1 ("N KEY", counter.h),
 * put `released`, delete my key; else read the counter and my key.
 *
 * My key gone: my lease expired (I was paused, stalled or cut off) and
 * someone may hold the lock now: the write is refused (fenced). Counter
 * moved but my key there: my copy was stale; retry on the value just read
 * (still holding the lock). After a try whose outcome is unknown (timeout,
 * reset, cancel) the same txn is sent again: its compares make it apply at
 * most once, and if the retry finds my key gone the counter's history
 * settles it (proof.h). Tries go on while that can still be settled: the
 * lease's TTL and two call deadlines (a leader election can outlast one
 * call); past that the outcome is unknown and the answer is a refusal,
 * never a number. */
#ifndef TURNSTILE_CLUSTER_COMMIT_H
#define TURNSTILE_CLUSTER_COMMIT_H

#include <stdint.h>

#include "instance.h"
#include "ticket.h"

/* From the coroutine of t's request, holding the lock (t granted). Writes
 * and releases; returns 0 with *n the value written, or -EAGAIN (fenced
 * off, or the outcome could not be learnt): then no reply may claim a
 * number. Always releases: t is the request's no more. */
int commit_write(struct cluster_loop *cl, struct ticket *t, uint64_t *n);

#endif
