/* queue: joining and waiting; the reaper. See queue.h. */
#include "queue.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alarm.h"
#include "counter.h"
#include "counts.h"
#include "session.h"

/* How long the joiner lingers, woken by a request while the queue is not
 * empty, before it sends the batch. Clients answered together (a group's
 * replies, commit.h) send their next requests within tens of microseconds
 * of one another; sent at the first, a batch splits them into runs that
 * other instances' joins fall between, and each run costs a hand-off and
 * a txn of its own. With the queue not empty a join waits its turn anyway;
 * with it empty (an idle lock) nothing lingers. */
#define JOIN_LINGER_US 200

/* One join txn: the puts of up to QUEUE_BATCH waiting tickets, the
 * counter and the queue's length, at one revision. */
struct batch {
    struct ticket *t[QUEUE_BATCH];
    size_t n;
    struct etcd_op ops[QUEUE_BATCH + 2];
    char values[QUEUE_BATCH][24]; /* each key's arrival sequence */
};

/* The tickets waiting in the join line, oldest first, into b. */
static void batch_fill(struct cluster_loop *cl, struct batch *b)
{
    b->n = 0;
    while (b->n < QUEUE_BATCH && !list_empty(&cl->joining)) {
        struct ticket *t = list_entry(cl->joining.next, struct ticket, join_link);
        list_remove(&t->join_link);
        cl->njoining--;
        snprintf(b->values[b->n], sizeof(b->values[b->n]), "%" PRIu64, t->seq);
        b->ops[b->n] = (struct etcd_op){.type = ETCD_OP_PUT,
                                        .put = {.key = t->entry->key,
                                                .key_len = t->entry->key_len,
                                                .value = b->values[b->n],
                                                .value_len = strlen(b->values[b->n]),
                                                .lease = t->lease}};
        b->t[b->n++] = t;
    }
    b->ops[b->n] = instance_range_op(cl->c->counter_key, false, false);
    b->ops[b->n + 1] = instance_range_op(cl->c->queue_prefix, true, true);
}

/* Tells ticket t of a settled batch how its join went (rc), or, its
 * request gone, sends its key away (it may exist). */
static void settle(struct ticket *t, int rc, int64_t revision, bool head)
{
    t->revision = rc == 0 ? revision : 0;
    if (!t->owned) {
        ticket_leave(t);
        return;
    }
    t->join_rc = rc;
    t->state = rc < 0 ? T_JOINING : head ? T_GRANTED : T_QUEUED;
    loop_wake(t->co, 0);
}

/* Sends b and settles its tickets. The call's deadline starts now, when
 * it is sent: the wait in the join line is the request's own. */
static void batch_send(struct cluster_loop *cl, struct batch *b)
{
    struct cluster *c = cl->c;
    struct etcd_txn txn = {.success = b->ops, .nsuccess = b->n + 2};
    struct etcd_reply r;
    int rc = etcd_txn(&cl->queue, &txn, &r, instance_call_deadline(c, LOOP_FOREVER));
    bool alone = false, replied = rc == 0;
    if (replied) {
        rc = counter_read(cl, &r.ops[b->n]);
        alone = r.ops[b->n + 1].count == (int64_t)b->n; /* the batch is the whole queue */
    }
    if (rc == -ENOENT) /* the lease: etcd no longer has it */
        session_lost(cl, b->t[0]->lease);
    if (rc == -ENOSPC) /* etcd's quota: an alarm to tell */
        alarm_suspect(cl);
    /* The watch may have shown these keys come and go before this reply
     * was read (the instance stalled past its lease, which took them):
     * then they are not in the mirror, though it is past their revision,
     * and no event will come for them again. */
    for (size_t i = 0; i < b->n; i++) {
        settle(b->t[i], rc, rc == 0 ? r.revision : 0, alone && i == 0);
        if (cl->synced)
            ticket_drop_if_missing(b->t[i], cl->revision);
    }
    if (replied)
        etcd_reply_free(&r);
    ticket_grant_head(cl);
    counts_publish(cl);
}

void queue_joiner_main(void *arg)
{
    struct cluster_loop *cl = arg;
    struct batch *b = malloc(sizeof(*b));
    while (b && !atomic_load(&cl->c->stopping)) {
        if (list_empty(&cl->joining)) {
            cl->joiner_idle = true;
            loop_park(LOOP_FOREVER);
            cl->joiner_idle = false;
            if (mirror_head(&cl->mirror))
                loop_sleep_us(JOIN_LINGER_US);
            continue;
        }
        batch_fill(cl, b);
        batch_send(cl, b);
    }
    while (!list_empty(&cl->joining)) { /* stopping: no batch will take them */
        struct ticket *t = list_entry(cl->joining.next, struct ticket, join_link);
        list_remove(&t->join_link);
        cl->njoining--;
        t->join_rc = -EAGAIN;
        loop_wake(t->co, 0);
    }
    free(b);
    cl->running--;
}

/* Joins through the loop's join line. Returns 0 (joined: queued or, alone,
 * granted) or why not: the request's own deadline or cancel (its key,
 * unsent, is simply dropped), or the batch's error. */
static int join(struct cluster_loop *cl, struct ticket *t, int64_t deadline)
{
    t->seq = ++cl->arrivals;
    t->join_rc = 1; /* not settled */
    list_push_back(&cl->joining, &t->join_link);
    cl->njoining++;
    if (cl->joiner_idle)
        loop_wake(cl->joiner, 0);
    int rc = loop_park(deadline);
    if (t->join_rc <= 0)
        return t->join_rc;            /* settled: a wake from the joiner wins over the deadline */
    if (list_linked(&t->join_link)) { /* never sent: nothing to delete */
        list_remove(&t->join_link);
        cl->njoining--;
        ticket_done(t, 0);
    } /* else in flight: the joiner sends its key away once it is settled */
    return rc;
}

/* Why a request that did not get the lock gets what it gets: its own
 * deadline or cancel, else etcd (-EAGAIN). */
static int refusal(struct cluster_loop *cl, int rc, int64_t deadline)
{
    if (rc == -ECANCELED || (rc == -ETIMEDOUT && loop_now_us() >= deadline)) {
        counts_refused(cl, rc);
        return rc;
    }
    counts_bump(cl, &cl->shown.unavailable);
    return -EAGAIN;
}

/* Queued: parks until granted, lost, or the deadline or a cancel. */
static int wait_turn(struct cluster_loop *cl, struct ticket *t, int64_t deadline, bool *waited)
{
    ticket_grant_head(cl);
    if (t->state == T_GRANTED)
        return 0;
    if (t->state != T_QUEUED)
        return -EAGAIN; /* lost its place between the join and now */
    *waited = true;
    counts_waiting(cl, 1);
    int rc = loop_park(deadline);
    counts_waiting(cl, -1);
    return rc;
}

/* Joins, and waits unless alone. A ticket that did not get the lock
 * leaves (its key must go) unless its key is gone already or was never
 * sent. */
static int take_place(struct cluster_loop *cl, struct ticket *t, int64_t deadline, bool *waited)
{
    int rc = join(cl, t, deadline);
    if (rc < 0 && t->state == T_JOINING && t->join_rc < 0)
        ticket_leave(t); /* the batch failed: my key may exist */
    if (rc < 0)
        return rc;
    rc = wait_turn(cl, t, deadline, waited);
    if (rc < 0 && t->state != T_DONE)
        ticket_leave(t); /* timed out or cancelled: my key must go */
    return rc;
}

/* The cluster's queue as this loop sees it, and its own requests not yet
 * sent to etcd. */
static bool queue_full(const struct cluster_loop *cl, uint64_t max_waiters)
{
    return max_waiters && cl->synced && cl->mirror.queued + cl->njoining > max_waiters;
}

int queue_acquire(struct cluster_loop *cl, int64_t deadline_us, uint64_t max_waiters,
                  struct ticket **out)
{
    struct ticket *t;
    int64_t asked = loop_now_us();
    bool waited = false;
    if (!cl)
        return -EAGAIN;
    int64_t lease;
    int rc = session_wait(cl, deadline_us, &lease); /* a young instance refuses no one */
    if (rc < 0)
        return refusal(cl, rc, deadline_us);
    if (queue_full(cl, max_waiters)) {
        counts_refused(cl, -EBUSY);
        return -EBUSY;
    }
    if (ticket_new(cl, lease, &t) < 0)
        return refusal(cl, -ENOMEM, deadline_us);
    rc = take_place(cl, t, deadline_us, &waited);
    counts_publish(cl);
    if (rc < 0) {
        ticket_release(t);
        return refusal(cl, rc, deadline_us);
    }
    counts_acquired(cl, loop_now_us() - asked, waited);
    *out = t;
    return 0;
}

/* Deletes t's key: fenced on its create revision when that is known, so
 * it never removes a later key of the same name. Unknown (its join failed:
 * its PUT may or may not have been applied), the name is t's alone while
 * t holds its slot; if nothing was deleted, the PUT may still land later,
 * so the slot is retired (ticket.h). Returns 0 (the key is gone) or the
 * call's error. */
static int reap_one(struct cluster_loop *cl, struct ticket *t)
{
    struct etcd_cmp cmp = {.key = t->entry->key,
                           .key_len = t->entry->key_len,
                           .target = ETCD_CMP_CREATE,
                           .number = t->revision};
    struct etcd_op del = {.type = ETCD_OP_DELETE,
                          .del = {.key = t->entry->key, .key_len = t->entry->key_len}};
    struct etcd_txn txn = {
        .cmps = &cmp, .ncmps = t->revision ? 1 : 0, .success = &del, .nsuccess = 1};
    struct etcd_reply r;
    int rc = etcd_txn(&cl->queue, &txn, &r, instance_call_deadline(cl->c, LOOP_FOREVER));
    if (rc < 0)
        return rc;
    if (!t->revision && r.nops && r.ops[0].count == 0)
        t->retire_slot = true;
    ticket_done(t, r.revision);
    etcd_reply_free(&r);
    ticket_grant_head(cl); /* it may have been the last key before a waiter of ours */
    return 0;
}

void queue_reaper_main(void *arg)
{
    struct cluster_loop *cl = arg;
    struct cluster *c = cl->c;
    while (!atomic_load(&c->stopping)) {
        if (list_empty(&cl->leaving)) {
            cl->reaper_idle = true;
            loop_park(LOOP_FOREVER);
            cl->reaper_idle = false;
            continue;
        }
        int rc = reap_one(cl, list_entry(cl->leaving.next, struct ticket, link));
        counts_publish(cl);
        if (rc < 0)
            loop_sleep_us(CLUSTER_RETRY_US);
    }
    cl->running--;
}
