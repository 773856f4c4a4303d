/* writeline: the order of a loop's fenced writes. See writeline.h. */
#include "writeline.h"

#include <errno.h>

#include "counts.h"

/* A request in the write line, waiting for its turn (on its stack). */
struct writer {
    struct waitq_entry e;
    struct ticket *t;
    bool keyed; /* has an Idempotency-Key: writes alone */
};

/* The outcome is known: the next in line leads. */
static void pass_turn(struct cluster_loop *cl)
{
    struct waitq_entry *next = waitq_head(&cl->write_line);
    if (next)
        waitq_wake(next, 0); /* `writing` stays set: handed over */
    else
        cl->writing = false;
}

/* A waiter was destroyed: if it had been handed the turn and not run, the
 * turn goes on, or no write of this loop would ever be sent again. */
static void turn_abandoned(struct waitq_entry *e)
{
    if (e->woken && e->result == 0)
        pass_turn(list_entry(e->q, struct cluster_loop, write_line));
}

int writeline_wait(struct cluster_loop *cl, struct ticket *t, bool keyed)
{
    while (cl->writing) { /* a cancel: join again */
        struct writer me = {
            .e = {.co = coro_current(), .abandoned = turn_abandoned}, .t = t, .keyed = keyed};
        waitq_join(&cl->write_line, &me.e, NULL);
        int rc = waitq_park(&me.e, LOOP_FOREVER);
        if (rc >= 0 || (rc == -ENOSPC && !t->grouped))
            return rc;
        if (rc == -ENOSPC) { /* a txn in flight carries it: its outcome is owed */
            while (!t->written)
                loop_yield();
            return WRITELINE_CARRIED;
        }
    }
    cl->writing = true;
    return 0;
}

/* Before a txn: the sections granted behind the leader's that end within
 * a loop round (no delay, or one that is over) join its group rather than
 * wait for its txn. Each round lets the next waiter granted run its
 * section and grant the one after it; rounds go on while each brings one
 * more writer into the line. A section that sleeps ends the gathering
 * after a round: a few microseconds against an etcd commit saved per
 * writer gathered. */
static void gather(struct cluster_loop *cl)
{
    uint64_t before;
    do {
        before = cl->write_line.len;
        loop_yield();
    } while (cl->write_line.len > before && cl->write_line.len < WRITELINE_GROUP_MAX - 1);
}

size_t writeline_group(struct cluster_loop *cl, struct ticket *leader, bool keyed,
                       struct ticket *group[WRITELINE_GROUP_MAX])
{
    size_t k = 0;
    group[k++] = leader;
    if (keyed)
        return k;
    gather(cl);
    for (struct waitq_entry *e = waitq_head(&cl->write_line); e && k < WRITELINE_GROUP_MAX;
         e = waitq_next(e)) {
        struct writer *o = list_entry(e, struct writer, e);
        if (o->keyed || o->t->lease != leader->lease)
            break; /* alone; or, on another lease, not refused with mine */
        o->t->grouped = true;
        group[k++] = o->t;
    }
    if (k > 1)
        counts_add(cl, &cl->shown.grouped, k - 1);
    return k;
}

/* A member whose client left waits again at the line's tail
 * (writeline_wait): the whole line is looked through, until every member
 * still there is found. */
void writeline_done(struct cluster_loop *cl, struct ticket *const *group, size_t k, int rc,
                    uint64_t base)
{
    for (size_t i = 1; i < k; i++) {
        group[i]->written = true;
        group[i]->write_rc = rc;
        group[i]->write_n = base + 1 + i;
    }
    size_t left = k > 1 ? k - 1 : 0;
    for (struct waitq_entry *e = waitq_head(&cl->write_line), *next; e && left; e = next) {
        next = waitq_next(e);
        if (list_entry(e, struct writer, e)->t->written) {
            waitq_wake(e, WRITELINE_CARRIED);
            left--;
        }
    }
    pass_turn(cl);
}
