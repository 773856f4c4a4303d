/* failover: the instance's side of the endpoints' health (endpoints.h):
 * its clients that may go to any member share one table; when any of them abandons an endpoint (or
 * a probe restores one), every loop moves at once what is under way on an abandoned endpoint while
 * another is healthy (the calls its couriers wait on, its watch), instead of each learning through
 * a timeout of its own; and a probe per abandoned endpoint brings it back once it serves a
 * linearizable read (which needs a leader and a quorum behind the member:
 * a paused leader or a member cut off from the others answers none,
 * though it may accept connections). The probes are secured as every
 * client (TLS, auth) but know one endpoint each, as glance.h's status
 * clients do; not to be confused with health.h, which reads etcd's status
 * per member for the page. */
#ifndef TURNSTILE_CLUSTER_FAILOVER_H
#define TURNSTILE_CLUSTER_FAILOVER_H

#include "instance.h"

/* At cluster_open, once c->lease_client holds the endpoints: fills the
 * table (no client follows it yet: failover_share). Returns 0 or -EINVAL. */
int failover_init(struct cluster *c);

/* Makes ec, an etcd client of c given all of c's endpoints (never one
 * that names a single member), report to and follow the table. */
void failover_share(struct cluster *c, struct etcd_client *ec);

/* On the first loop: starts a probe per endpoint. Returns 0 or a negative
 * errno. */
int failover_start(struct cluster_loop *cl);

/* At detach, on the first loop: wakes the probes so that they end. */
void failover_cancel(struct cluster *c);

/* After the probes ended: frees their clients. */
void failover_fini(struct cluster *c);

/* A loop_post's function: moves cl's calls and watch off abandoned
 * endpoints (etcd_client_move, and the watch reopened elsewhere). */
void failover_on_moved(void *arg);

#endif
