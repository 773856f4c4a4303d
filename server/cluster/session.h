/* session: the instance's lease, as etcd's concurrency.Session keeps one.
 *
 * One lease per instance, granted and kept alive every TTL/3 by the keeper,
 * a coroutine of the first loop with an etcd client of its own (so
 * keepalives never queue behind a slow txn); its ID is an atomic every loop
 * reads. A lease not renewed for a whole TTL (etcd unreachable) is taken as
 * lost here, and revoked once etcd answers (its keys would block the
 * queue until it expired); one etcd says is gone (-ENOENT) is lost at once.
 * Lost, the waiting requests of every loop lose their place (-EAGAIN:
 * 503), and the keeper asks for a new lease at once. */
#ifndef TURNSTILE_CLUSTER_SESSION_H
#define TURNSTILE_CLUSTER_SESSION_H

#include <stdint.h>

#include "instance.h"

/* The keeper's coroutine (arg: the first loop's cluster_loop): until the
 * instance stops. */
void session_keeper_main(void *arg);

/* On cl's loop: lease is gone, with every key on it. Once per lease,
 * whichever loop finds it first. */
void session_lost(struct cluster_loop *cl, int64_t lease);

/* For loop_post: another loop lost the lease (arg: this loop's). */
void session_on_lost(void *arg);

#endif
