/* coro: stackful coroutines with pooled, guard-paged stacks.
 *
 * A coroutine runs fn(arg) on its own stack. coro_resume() switches into it
 * and returns when it yields or finishes; a finished coroutine goes back to
 * its pool at once, so its stack serves the next coro_create() without a
 * syscall. Single-threaded: one "current" coroutine per thread. */
#ifndef TURNSTILE_CORO_H
#define TURNSTILE_CORO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* 64 KiB holds a request's frames with a wide margin; only touched pages
 * cost memory. Each stack is two mappings (stack + PROT_NONE guard), so with
 * Linux's default vm.max_map_count of 65 530 a process can hold about
 * 32 000 coroutines (less the ~100 mappings of the program and its
 * libraries); the server's default of 10 000 connections uses 20 000. Past
 * that, coro_create() fails with -ENOMEM and the caller answers 503. */
#define CORO_DEFAULT_STACK (64 * 1024)
#define CORO_MAX_DEFER     8 /* cleanups one coroutine can hold at once */

typedef struct coro coro_t;
typedef void (*coro_fn)(void *arg);

struct coro_pool {
    size_t stack_size; /* usable stack bytes per coroutine */
    size_t map_size;   /* whole mapping: guard + stack + struct coro */
    unsigned max_free; /* idle stacks kept for reuse; the rest are unmapped */
    unsigned nfree;    /* idle stacks now */
    unsigned nlive;    /* coroutines created and not yet finished */
    uint64_t nmaps;    /* stacks mapped since init (reuse does not count) */
    coro_t *free_list;
};

/* stack_size 0 means CORO_DEFAULT_STACK; it is rounded up to whole pages. */
void coro_pool_init(struct coro_pool *pool, size_t stack_size, unsigned max_free);
/* Unmaps idle stacks. Live coroutines must be finished or destroyed first. */
void coro_pool_fini(struct coro_pool *pool);
/* Unmaps the idle stacks kept for reuse (memory is short), live ones stay. */
void coro_pool_trim(struct coro_pool *pool);

/* Creates a suspended coroutine that will run fn(arg). Returns 0, or
 * -ENOMEM when no stack can be mapped (memory or vm.max_map_count). */
int coro_create(struct coro_pool *pool, coro_fn fn, void *arg, coro_t **out);

/* Runs co until it yields or returns. Returns true while co is suspended,
 * false once it has finished (co is then recycled and must not be used). */
bool coro_resume(coro_t *co);

/* Suspends the current coroutine and returns to whoever resumed it. */
void coro_yield(void);

/* The running coroutine, or NULL on the thread's own stack. */
coro_t *coro_current(void);

/* Runs fn(arg) when co finishes or is destroyed, last registered first.
 * Returns -ENOSPC when CORO_MAX_DEFER cleanups are already registered. */
int coro_defer(coro_t *co, void (*fn)(void *), void *arg);
/* Drops the most recent cleanup registered as fn(arg) without running it:
 * its resource was released normally. */
void coro_undefer(coro_t *co, void (*fn)(void *), void *arg);

/* Ends a suspended coroutine without resuming it: runs its cleanups on the
 * caller's stack, then recycles it. */
void coro_destroy(coro_t *co);

/* One pointer of the owner's choosing (the loop keeps its task here). */
void coro_set_data(coro_t *co, void *data);
void *coro_data(const coro_t *co);

/* The PROT_NONE page just below co's stack; a stack overflow faults here. */
const void *coro_guard_page(const coro_t *co);

#endif
