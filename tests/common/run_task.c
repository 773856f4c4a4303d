/* run_task: see run_task.h. */
#include "run_task.h"

#include <check.h>
#include <stdbool.h>

void run_task(struct loop *loop, coro_fn fn, void *arg)
{
    ck_assert_int_eq(loop_spawn(loop, fn, arg, NULL), 0);
    ck_assert_int_eq(loop_run(loop), 0);
    ck_assert_uint_eq(loop->pool.nlive, 0); /* everyone finished */
}

struct until_done {
    void (*fn)(void);
    bool done;
};

static void until_done_main(void *arg)
{
    struct until_done *u = arg;
    u->fn();
    u->done = true;
    loop_break(loop_current()); /* others would keep the loop busy */
}

void run_task_until_done(struct loop *loop, void (*fn)(void))
{
    struct until_done u = {.fn = fn};
    ck_assert_int_eq(loop_spawn(loop, until_done_main, &u, NULL), 0);
    if (!u.done) /* the spawn may have run it to the end already */
        ck_assert_int_eq(loop_run(loop), 0);
    ck_assert(u.done); /* not parked for good with nothing to wake it */
}
