/* waitq: see waitq.h. */
#include "waitq.h"

#include <errno.h>

#include "loop.h"

void waitq_init(struct waitq *q)
{
    list_init(&q->head);
    q->len = 0;
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

void waitq_join(struct waitq *q, struct waitq_entry *e, struct waitq_entry *pos)
{
    e->q = q;
    e->woken = false;
    e->result = 0;
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
    if (!e->woken)
        leave(e);
    if (e->abandoned)
        e->abandoned(e);
}

int waitq_park(struct waitq_entry *e, int64_t deadline_us)
{
    int rc = coro_defer(e->co, on_destroy, e);
    if (rc < 0) {
        leave(e);
        return rc;
    }
    rc = loop_park(deadline_us);
    coro_undefer(e->co, on_destroy, e);
    if (e->woken)
        return e->result;
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
    loop_wake(e->co, result);
}
