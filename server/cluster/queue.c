/* queue: joining and waiting; the reaper. See queue.h. */
#include "queue.h"

#include <errno.h>
#include <string.h>

#include "counter.h"
#include "counts.h"
#include "session.h"

/* The join: my key, the counter and the queue's length, at one revision. */
static int join(struct cluster_loop *cl, struct ticket *t, int64_t deadline, bool *alone)
{
    struct cluster *c = cl->c;
    struct etcd_op ops[3] = {
        {.type = ETCD_OP_PUT,
         .put = {.key = t->entry->key,
                 .key_len = t->entry->key_len,
                 .value = c->self,
                 .value_len = strlen(c->self),
                 .lease = t->lease}},
        instance_range_op(c->counter_key, false, false),
        instance_range_op(c->queue_prefix, true, true),
    };
    struct etcd_txn txn = {.success = ops, .nsuccess = 3};
    struct etcd_reply r;
    int rc = etcd_txn(&cl->queue, &txn, &r, instance_call_deadline(c, deadline));
    if (rc < 0)
        return rc;
    t->revision = r.revision;
    rc = counter_read(cl, &r.ops[1]);
    *alone = r.ops[2].count == 1;
    etcd_reply_free(&r);
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
    t->state = T_QUEUED;
    ticket_grant_head(cl);
    if (t->state == T_GRANTED)
        return 0;
    *waited = true;
    counts_waiting(cl, 1);
    int rc = loop_park(deadline);
    counts_waiting(cl, -1);
    return rc;
}

/* Joins, and waits unless alone. A ticket that did not get the lock
 * leaves (its key must go) unless its key is gone already. */
static int take_place(struct cluster_loop *cl, struct ticket *t, int64_t deadline, bool *waited)
{
    bool alone = false;
    int rc = join(cl, t, deadline, &alone);
    if (rc == -ENOENT) /* the lease: etcd no longer has it */
        session_lost(cl, t->lease);
    if (rc < 0) {
        ticket_leave(t);
        return rc;
    }
    if (alone) {
        t->state = T_GRANTED;
        return 0;
    }
    rc = wait_turn(cl, t, deadline, waited);
    if (rc < 0 && t->state != T_DONE)
        ticket_leave(t); /* timed out or cancelled: my key must go */
    return rc;
}

static bool queue_full(const struct cluster_loop *cl, uint64_t max_waiters)
{
    return max_waiters && cl->synced && cl->mirror.queued > max_waiters;
}

int queue_acquire(struct cluster_loop *cl, int64_t deadline_us, uint64_t max_waiters,
                  struct ticket **out)
{
    struct ticket *t;
    int64_t asked = loop_now_us();
    bool waited = false;
    if (!cl)
        return -EAGAIN;
    int64_t lease = atomic_load(&cl->c->lease);
    if (!lease || atomic_load(&cl->c->stopping))
        return refusal(cl, -EAGAIN, deadline_us);
    if (queue_full(cl, max_waiters)) {
        counts_refused(cl, -EBUSY);
        return -EBUSY;
    }
    if (ticket_new(cl, lease, &t) < 0)
        return refusal(cl, -ENOMEM, deadline_us);
    int rc = take_place(cl, t, deadline_us, &waited);
    counts_publish(cl);
    if (rc < 0) {
        ticket_release(t);
        return refusal(cl, rc, deadline_us);
    }
    counts_acquired(cl, loop_now_us() - asked, waited);
    *out = t;
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
        struct ticket *t = list_entry(cl->leaving.next, struct ticket, link);
        struct etcd_delete_req del = {.key = t->entry->key, .key_len = t->entry->key_len};
        struct etcd_reply r;
        int rc = etcd_delete(&cl->queue, &del, &r, instance_call_deadline(c, LOOP_FOREVER));
        if (rc == 0)
            ticket_done(t, r.revision);
        counts_publish(cl);
        if (rc < 0)
            loop_sleep_us(CLUSTER_RETRY_US);
        etcd_reply_free(&r);
    }
    cl->running--;
}
