/* session: the instance's lease, as etcd's concurrency.Session keeps one.
 *
 * One lease per instance, granted and kept alive every TTL/3 by the keeper,
 * a coroutine of the first loop with an etcd client of its own (so
 * keepalives never queue behind a slow txn); its ID is an atomic every loop
 * reads. A lease not renewed for a whole TTL (etcd unreachable) is taken as
 * lost here, and revoked once etcd answers (its keys would block the
 * queue until it expired); one etcd says is gone (-ENOENT) is lost at once.
 * Lost, the waiting requests of every loop lose their place (-EAGAIN:
 * 503), and the keeper asks for a new lease at once.
 *
 * A request that comes while there is no lease (the instance is young,
 * or a lost lease is being replaced) waits for the keeper's news rather
 * than being refused: a lease, or etcd did not answer the grant (then
 * -EAGAIN at once, as for every request while etcd is down). The keeper
 * also tells systemd (READY=1 with the first lease; STATUS= while etcd
 * does not answer) through the settings' notify. */
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

/* From a request's coroutine on cl's loop: *lease, the instance's lease,
 * waiting for one if there is none yet, until deadline_us. Returns 0,
 * -EAGAIN (etcd did not answer the keeper's last grant, or the instance
 * stops), -ETIMEDOUT or -ECANCELED. */
int session_wait(struct cluster_loop *cl, int64_t deadline_us, int64_t *lease);

/* For loop_post: the keeper's news (arg: this loop's): its waiting
 * requests look again. */
void session_on_news(void *arg);

#endif
