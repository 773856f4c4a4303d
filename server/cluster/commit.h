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
 * Pipelining and groups (issue 21): a loop's writes go in the order of
 * their grants, one txn at a time. As a section ends, the next waiter of
 * the same loop may be granted (ticket.h says why that keeps FIFO), and
 * its section runs while the earlier writes wait or are in flight. When
 * the txn in flight returns, the writes that have waited for it go in one
 * txn (a group led by the first: writeline.h): its compares are the
 * counter's mod revision and every key's create revision, it puts the
 * counter + K with every writer's receipt in order (counter.h), and it
 * deletes every key; the i-th writer's N is the base + i. All or nothing:
 * one outcome for the group, settled from the leader's receipt if a reply
 * is lost. A write with an Idempotency-Key goes alone. Each txn starts
 * from the counter as this loop knows it after the previous outcome:
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
 *     wrote, never a number inferred from the previous write.
 * So every N stays distinct: each txn compares the counter's mod revision
 * it is based on, and exactly one txn can follow a version. A stalled or
 * paused instance stays fenced: each txn compares every writer's own key,
 * which its lease takes away; one key gone and the whole group is refused
 * (503: nothing of it was written). */
#ifndef TURNSTILE_CLUSTER_COMMIT_H
#define TURNSTILE_CLUSTER_COMMIT_H

#include <stdint.h>

#include "instance.h"
#include "remember.h"
#include "ticket.h"

/* From the coroutine of t's request, holding the lock (t granted), its
 * section over. Waits for the loop's write in flight, if any, then writes
 * (alone, leading a group, or carried by an earlier one's txn) and releases;
 * returns 0 with *n the value written (or, idem->repeat set, the key's
 * first N), -EAGAIN (certainly not written: fenced off, refused, or no
 * lease for the key) or -ENOTRECOVERABLE (it may or may not have been
 * written, and cannot be proven: counted, logged at warn). Always
 * releases: t is the request's no more. idem: NULL for none. */
int commit_write(struct cluster_loop *cl, struct ticket *t, struct cluster_idem *idem, uint64_t *n);

#endif
