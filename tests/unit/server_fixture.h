/* server_fixture: the server that the suites of server/'s modules build by
 * hand around the code under test (route, conn, stats, the dashboard): a
 * resource, one loop's counts, the grants, the draining flag, and the
 * stats source and handler context over them, wired as server.c wires a
 * server with one loop, but with no socket, thread or configuration. The
 * loop itself stays with each suite: not every suite needs one, and each
 * sizes its own.
 *
 * Also a coroutine that holds a lock until the test lets it go, so that
 * "the lock is busy" never depends on how fast the machine is. */
#ifndef TURNSTILE_SERVER_FIXTURE_H
#define TURNSTILE_SERVER_FIXTURE_H

#include <stdbool.h>

#include "grants.h"
#include "handler.h"
#include "loop.h"
#include "resource.h"
#include "stats.h"
#include "tally.h"

struct fixture {
    struct resource res;
    struct tally_requests requests;
    struct tally_conns conns;
    /* The source sums a list of counts, one per loop: here a list of one. */
    const struct tally_requests *requests_of[1];
    const struct tally_conns *conns_of[1];
    struct grants grants;
    bool draining;
    struct stats_source src;
    struct handler_ctx hctx;
};

/* A server as it starts: the resource as s says, every count zero, no
 * grants, not draining, started now. The source and the context point
 * into f: it must stay where it is until fixture_fini(). */
void fixture_init(struct fixture *f, const struct resource_settings *s);
void fixture_fini(struct fixture *f);

/* The longest /stats and /metrics a server can come to, for the tests that
 * its buffers hold them: every count and gauge at its largest (or as large
 * as it goes without a sum of them wrapping), the matrix counted in every
 * cell, a full ring of grants, a long uptime. The flags and the number of
 * loops are left as they are. */
void fixture_fill_max(struct fixture *f);

struct fixture_holder {
    struct lock *lock;
    coro_t *co; /* NULL once it has let go */
};

/* Starts a coroutine on loop (from inside a coroutine or not) that takes
 * lock and keeps it; returns once it holds it. */
void fixture_hold(struct fixture_holder *h, struct loop *loop, struct lock *lock);
/* Wakes it: it lets go of the lock on a coming turn of its loop. */
void fixture_release(struct fixture_holder *h);

#endif
