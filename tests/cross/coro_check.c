/* A dependency-free check of lib/coro.c for CPUs we cannot run natively:
 * scripts cross-compile it for aarch64 and run it under qemu-user, and build
 * it with the ucontext fallback on x86-64. Exits non-zero on any failure. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "coro.h"

static int failures;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);               \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

/* Integer and floating-point state live across switches, as callee-saved
 * registers must (x19-x28, d8-d15 on aarch64). */
static void mixer(void *arg)
{
    double *out = arg, a = 1.5, b = 2.25, c = 3.125;
    uint64_t x = 7, y = 11, z = 13;
    for (int i = 0; i < 50; i++) {
        a = a * 1.0001 + b;
        b = b * 0.999 + c;
        c = c + a * 0.001;
        x = x * 31 + y;
        y ^= z + (uint64_t)i;
        z += x;
        coro_yield();
    }
    *out = a + b + c + (double)(x % 1000 + y % 1000 + z % 1000);
}

static void check_state_survives(struct coro_pool *pool)
{
    double r[4], lone;
    coro_t *cos[4], *one;
    for (int i = 0; i < 4; i++)
        CHECK(coro_create(pool, mixer, &r[i], &cos[i]) == 0);
    for (int live = 4; live > 0;)
        for (int i = 0; i < 4; i++)
            if (cos[i] && !coro_resume(cos[i]))
                cos[i] = NULL, live--;
    CHECK(coro_create(pool, mixer, &lone, &one) == 0);
    while (coro_resume(one))
        ;
    for (int i = 0; i < 4; i++)
        CHECK(r[i] == lone);
}

static void inner(void *arg)
{
    strcat(arg, "i");
    coro_yield();
    strcat(arg, "I");
}

static void outer(void *arg)
{
    struct coro_pool *pool = *(struct coro_pool **)arg;
    char *log = (char *)arg + sizeof(pool);
    coro_t *in;
    CHECK(coro_create(pool, inner, log, &in) == 0);
    strcat(log, "o");
    CHECK(coro_resume(in));
    coro_yield();
    CHECK(!coro_resume(in));
    strcat(log, "O");
}

static void check_nesting(struct coro_pool *pool)
{
    char buf[sizeof(pool) + 16] = {0};
    memcpy(buf, &pool, sizeof(pool));
    coro_t *out;
    CHECK(coro_create(pool, outer, buf, &out) == 0);
    CHECK(coro_resume(out));
    CHECK(!coro_resume(out));
    CHECK(strcmp(buf + sizeof(pool), "oiIO") == 0);
}

static void noop(void *arg)
{
    (void)arg;
}

static void check_reuse(struct coro_pool *pool)
{
    uint64_t maps = pool->nmaps;
    for (int i = 0; i < 100; i++) {
        coro_t *co;
        CHECK(coro_create(pool, noop, NULL, &co) == 0);
        CHECK(!coro_resume(co));
    }
    CHECK(pool->nmaps - maps <= 1);
}

int main(void)
{
    struct coro_pool pool;
    coro_pool_init(&pool, 0, 8);
    check_state_survives(&pool);
    check_nesting(&pool);
    check_reuse(&pool);
    CHECK(pool.nlive == 0);
    coro_pool_fini(&pool);
    printf("%d passed, %d failed\n", failures ? 0 : 1, failures ? 1 : 0);
    return failures != 0;
}
