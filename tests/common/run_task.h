/* run_task: the loop driver every suite of coroutine code starts its tests
 * with. */
#ifndef TURNSTILE_TEST_RUN_TASK_H
#define TURNSTILE_TEST_RUN_TASK_H

#include "loop.h"

/* Spawns fn(arg) on loop and runs the loop until nothing is left to wait
 * for. Fails the test unless the spawn and the run returned 0 and every
 * coroutine has finished (none is left parked or leaked). */
void run_task(struct loop *loop, coro_fn fn, void *arg);

/* Spawns fn() on loop and runs the loop until fn has returned, then stops
 * it though other coroutines may still wait there (a client's courier):
 * their owner ends them, and the caller checks the pool after that. Fails
 * the test unless the spawn and the run returned 0 and fn did return. */
void run_task_until_done(struct loop *loop, void (*fn)(void));

#endif
