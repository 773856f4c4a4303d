/* ticket: one request's place in the cluster-wide queue, on this loop.
 *
 * A ticket is the request's queue key (an entry of the loop's mirror,
 * tagged with the ticket) and where it stands. It lives on the heap: it
 * outlives its request while its key is deleted, and until the watch has
 * seen the key go, so a late event of its key is never taken for a
 * stranger's. The loop keeps its tickets in three lists by state: live
 * (joining, queued, granted), leaving (the reaper deletes their keys),
 * done (gone from etcd, freed once the watch has seen that and their
 * request let go). Everything here runs on the ticket's loop.
 *
 * Key names are a bounded set: a ticket takes a slot S of its loop's (its
 * key is queue/I.L-S) and gives it back when it is freed, the earliest a
 * name may be used again: its request let go, and the watch has seen its
 * key go (or it was never sent). etcd keeps an index entry for every name
 * ever created under the prefix until a compaction, and every range of the
 * prefix walks them; reused names keep that walk as short as the loop's
 * most waiters at once, however long the instance runs. A slot whose key
 * might still appear (a PUT whose outcome is unknown and that no delete
 * found) is never reused: it is retired and a new one made. Since a name
 * is reused, every delete of one of our keys is fenced on its create
 * revision, and the counter's receipt carries it (counter.h). */
#ifndef TURNSTILE_CLUSTER_TICKET_H
#define TURNSTILE_CLUSTER_TICKET_H

#include <stdbool.h>
#include <stdint.h>

#include "coro.h"
#include "instance.h"
#include "list.h"
#include "mirror.h"

enum ticket_state {
    T_JOINING, /* its PUT is on its way */
    T_QUEUED,  /* in the queue at `revision`, waiting */
    T_GRANTED, /* holds the lock */
    T_WRITING, /* holds it, its section over, its fenced write owed (commit.h) */
    T_LEAVING, /* its key must be deleted (the reaper does it) */
    T_DONE,    /* its key is gone from etcd as of done_rev */
};

struct ticket {
    struct list_node link;      /* in the loop's live, leaving or done list */
    struct list_node join_link; /* in the loop's join line, until its batch is sent */
    struct cluster_loop *cl;
    struct mirror_entry *entry; /* its key, tag pointing back here */
    coro_t *co;                 /* the waiting request */
    enum ticket_state state;
    bool owned; /* its request still uses it: not freed before it lets go */
    int64_t lease;
    uint64_t seq;     /* arrival on its loop: orders keys of one revision */
    int join_rc;      /* how its join went: 1 until its batch returned */
    uint32_t slot;    /* the S of its key */
    bool has_slot;    /* a ghost holds none */
    bool retire_slot; /* its key might still appear: the slot is not reused */
    int64_t revision; /* create revision of its key, 0 until known */
    int64_t done_rev;
    int64_t queued_wall_us; /* when it joined (wall clock), for the hand-off */
    /* Its write's outcome, when an earlier request's txn carried it in a
     * group (writeline.h): grouped once a txn under way carries it, then
     * written, with 0 and write_n, -EAGAIN or -ENOTRECOVERABLE. */
    bool grouped;
    bool written;
    int write_rc;
    uint64_t write_n;
};

/* A new ticket for the calling request, on lease, with the loop's next
 * key: live, joining. Returns 0 or -ENOMEM. */
int ticket_new(struct cluster_loop *cl, int64_t lease, struct ticket **out);

/* A ticket for a key of ours that no request owns (a PUT applied after
 * its request gave up; e is queued, its create revision known): it leaves
 * at once. NULL: out of memory. */
struct ticket *ticket_ghost(struct cluster_loop *cl, struct mirror_entry *e, int64_t lease);

/* True if e is one of this loop's keys. */
bool ticket_key_is_ours(const struct cluster_loop *cl, const struct mirror_entry *e);

/* Its key is gone from etcd (at rev, or 0 if unknown): done. */
void ticket_done(struct ticket *t, int64_t rev);

/* Its key may exist and must go: the reaper deletes it. */
void ticket_leave(struct ticket *t);

/* A waiting ticket whose key vanished (its lease expired): done, and its
 * request wakes with -EAGAIN. */
void ticket_lost(struct ticket *t, int64_t rev);

/* The request is done with t: the loop frees it when etcd's view allows. */
void ticket_release(struct ticket *t);

/* Grants the head of the mirror's queue if it is a waiting ticket of ours
 * that the mirror has seen (everything older is then known gone): its
 * request wakes with 0. Keys of this loop's done tickets do not count as
 * the head: their deletion is known from etcd's reply to this loop before
 * the watch shows it, so a release here grants the next local waiter at
 * once (a local hand-off, counted). Nor do the keys of this loop's writes
 * owed (T_WRITING): the next local waiter is granted as a section ends,
 * and its section runs while the earlier writes wait or are on their way
 * (pipelined, counted); its own write follows theirs (commit.h). */
void ticket_grant_head(struct cluster_loop *cl);

/* Every waiting ticket on lease is lost (the lease is gone). */
void ticket_drop_lease(struct cluster_loop *cl, int64_t lease);

/* Every waiting ticket whose key a read at rev should have shown and did
 * not (not in the mirror) is lost: its key went while the watch was down.
 * ticket_drop_if_missing: the same for t alone (its key went before its
 * join's reply was read). */
void ticket_drop_missing(struct cluster_loop *cl, int64_t rev);
void ticket_drop_if_missing(struct ticket *t, int64_t rev);

/* Frees the done tickets that the mirror has seen go and whose request
 * let go. */
void ticket_collect(struct cluster_loop *cl);

/* Frees every ticket of list (at detach: nothing runs any more). */
void ticket_free_all(struct list_node *list);

#endif
