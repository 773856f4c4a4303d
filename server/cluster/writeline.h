/* writeline: the order of a loop's fenced writes (commit.h), and which of
 * them ride in one txn.
 *
 * A loop has one txn of fenced writes under way at a time (`writing`): a
 * request whose section is over and that finds one under way waits in the
 * loop's write line, in the order of the grants (sections follow one
 * another on a loop). When the txn's outcome is known, the waiters at the
 * head of the line that it did not carry are handed the turn, the first
 * leading: its txn carries its own write and those of the waiters behind
 * it (a group, up to WRITELINE_GROUP_MAX), each of which wakes with the
 * group's outcome. A write with an Idempotency-Key goes alone: its txn
 * carries its key's entry. Everything here runs on the loop's thread. */
#ifndef TURNSTILE_CLUSTER_WRITELINE_H
#define TURNSTILE_CLUSTER_WRITELINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "instance.h"
#include "ticket.h"

/* Writes in one txn: its compares and each branch's ops are this + 2 at
 * most, well under etcd's default --max-txn-ops (128). */
#define WRITELINE_GROUP_MAX 16

#define WRITELINE_CARRIED 1 /* writeline_wait(): an earlier txn carried my write */

/* From t's request, its section over: waits until no other txn of the
 * loop is under way. Returns 0 (my turn: I lead, and must end with
 * writeline_done()), WRITELINE_CARRIED (an earlier request's txn carried
 * my write: t->write_rc and t->write_n say how it went) or -ENOSPC (no
 * room for the wait's cleanup: the write is not sent). keyed: t's write
 * has an Idempotency-Key. A cancel (the client left) does not end the
 * wait: the section ran, and its write is still owed. */
int writeline_wait(struct cluster_loop *cl, struct ticket *t, bool keyed);

/* The leader's group into group[]: the leader first, then (unless keyed)
 * the waiters at the head of the line in their order, after letting the
 * sections that end within a loop round join. Returns its size. */
size_t writeline_group(struct cluster_loop *cl, struct ticket *leader, bool keyed,
                       struct ticket *group[WRITELINE_GROUP_MAX]);

/* The leader's txn is over with outcome rc (0, -EAGAIN or
 * -ENOTRECOVERABLE) for the group's k members (k 0: none was formed):
 * each other member wakes with it and its N, base + 1 + its place; then
 * the turn goes to the next in line. */
void writeline_done(struct cluster_loop *cl, struct ticket *const *group, size_t k, int rc,
                    uint64_t base);

#endif
