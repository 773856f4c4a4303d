/* waitq: see waitq.h. */
#include "waitq.h"

#include <errno.h>

#include "loop.h"

void waitq_init(struct waitq *q)
{
    list_init(&q->head);
    q->len = 0;
    q->mu = NULL;
}

static struct waitq_entry *entry(struct list_node *n)
{
    return n ? list_entry(n, struct waitq_entry, link) : NULL;
}

struct waitq_entry *waitq_head(const struct waitq *q)
{
    return entry(list_first(&q->head));
}

struct waitq_entry *waitq_tail(const struct waitq *q)
{
    return entry(list_last(&q->head));
}

struct waitq_entry *waitq_prev(const struct waitq_entry *e)
{
    return e->link.prev == &e->q->head ? NULL : entry(e->link.prev);
}

struct waitq_entry *waitq_next(const struct waitq_entry *e)
{
    return e->link.next == &e->q->head ? NULL : entry(e->link.next);
}

void waitq_join(struct waitq *q, struct waitq_entry *e, struct waitq_entry *pos)
{
    e->q = q;
    e->woken = false;
    e->result = 0;
    e->ticket = loop_park_ticket(); /* the park of waitq_park(), next */
    list_insert_before(pos ? &pos->link : &q->head, &e->link);
    q->len++;
}

static void leave(struct waitq_entry *e)
{
    list_remove(&e->link);
    e->q->len--;
}

/* The coroutine is destroyed while parked: nothing may keep pointing at
 * its stack. */
static void on_destroy(void *arg)
{
    struct waitq_entry *e = arg;
    pthread_mutex_t *mu = e->q->mu;
    if (mu)
        pthread_mutex_lock(mu);
    if (!e->woken)
        leave(e);
    else
        loop_unwake(e->co); /* a wake from another thread may be on its way */
    if (e->abandoned)
        e->abandoned(e);
    if (mu)
        pthread_mutex_unlock(mu);
}

int waitq_park(struct waitq_entry *e, int64_t deadline_us)
{
    int rc = coro_defer(e->co, on_destroy, e);
    if (rc < 0) {
        leave(e);
        return rc;
    }
    pthread_mutex_t *mu = e->q->mu;
    if (mu)
        pthread_mutex_unlock(mu);
    rc = loop_park(deadline_us);
    if (mu)
        pthread_mutex_lock(mu);
    coro_undefer(e->co, on_destroy, e);
    if (e->woken) {
        /* Woken under mu, which we hold now: the wake itself may still be
         * in flight if the park ended some other way first. */
        loop_unwake(e->co);
        return e->result;
    }
    leave(e);
    /* A loop_wake() that did not come through waitq_wake() is a stray:
     * the waiter got nothing, so it is treated as cancelled. */
    return rc == -ETIMEDOUT ? -ETIMEDOUT : -ECANCELED;
}

void waitq_wake(struct waitq_entry *e, int result)
{
    leave(e);
    e->woken = true;
    e->result = result;
    loop_wake_park(e->co, e->ticket, result);
}
