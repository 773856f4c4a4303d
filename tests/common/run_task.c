/* run_task: see run_task.h. */
#include "run_task.h"

#include <check.h>

void run_task(struct loop *loop, coro_fn fn, void *arg)
{
    ck_assert_int_eq(loop_spawn(loop, fn, arg, NULL), 0);
    ck_assert_int_eq(loop_run(loop), 0);
    ck_assert_uint_eq(loop->pool.nlive, 0); /* everyone finished */
}
