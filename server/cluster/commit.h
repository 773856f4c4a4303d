/* commit: the fenced write that ends a critical section and releases the
 * lock, in one txn: if my key still has my create revision and the counter
 * still has the mod revision I read, put counter + 1 ("N KEY REV", counter.h),
 * put `released`, delete my key; else read the counter and my key.
 *
 * My key gone: my lease expired (I was paused, stalled or cut off) and
 * someone may hold the lock now: the write is refused (fenced). Counter
 * moved but my key there: my copy was stale; retry on the value just read
 * (still holding the lock). After a try whose outcome is unknown (timeout,
 * reset, cancel) the same txn is sent again: its compares make it apply at
 * most once, and if the retry finds my key gone the counter's history
 * settles it (proof.h), however long this instance was stalled. Tries go
 * on while etcd's silence lasts less than the patience (proof.h: the
 * lease's TTL and two call deadlines of failed calls); past that, or with
 * the history compacted, the outcome is unknown: neither a number nor a
 * refusal that invites a retry.
 *
 * With an Idempotency-Key the txn also compares that the key's entry
 * (remember.h) does not exist and puts it; the failure branch reads it.
 * Found: the key was applied once already (by any instance, or by an
 * earlier try of this very write whose reply was lost), and its N is the
 * answer: nothing is written, and my place is released.
 *
 * Pipelining (issue 21): a loop's writes go one at a time, in the order of
 * their grants. As one is sent, the next waiter of the same loop may be
 * granted (ticket.h says why that keeps FIFO), and its section runs while
 * the write is in flight; its own write waits for that outcome, then
 * starts from the counter as this loop knows it after it:
 *   - written: the counter's value and the txn's revision from its reply,
 *     on which my compare holds;
 *   - fenced off: the previous key was gone, taken by its lease; mine, on
 *     the same lease, went too, and my compare on it fails: refused (on a
 *     newer lease, my key is the queue's first now, and my write is any
 *     holder's);
 *   - refused with its key held, found a repeat (nothing written), or
 *     unknown (it may or may not have applied): my compare is on the
 *     copy, and if the counter moved the failure branch reads it and the
 *     next try writes on that. Each 200 claims only the N its own txn
 *     wrote, read.value + 1 at the mod revision it compared, never a number
 *     inferred from the previous write.
 * So every N stays distinct: each write compares the counter's mod
 * revision it is based on, and exactly one write can follow a version. A
 * stalled or paused instance stays fenced: each write compares its own
 * key, which its lease takes away. */
#ifndef TURNSTILE_CLUSTER_COMMIT_H
#define TURNSTILE_CLUSTER_COMMIT_H

#include <stdint.h>

#include "instance.h"
#include "remember.h"
#include "ticket.h"

/* From the coroutine of t's request, holding the lock (t granted). Waits
 * for the loop's write in flight, if any, then writes and releases;
 * returns 0 with *n the value written (or, idem->repeat set, the key's
 * first N), -EAGAIN (certainly not written: fenced off, refused, or no
 * lease for the key) or -ENOTRECOVERABLE (it may or may not have been
 * written, and cannot be proven: counted, logged at warn). Always
 * releases: t is the request's no more. idem: NULL for none. */
int commit_write(struct cluster_loop *cl, struct ticket *t, struct cluster_idem *idem, uint64_t *n);

#endif
