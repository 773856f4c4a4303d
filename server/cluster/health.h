/* health: the instance's side of the endpoints' health (endpoints.h): its
 * clients share one table; when any of them abandons an endpoint (or a
 * probe restores one), every loop moves at once what is under way on an
 * abandoned endpoint while another is healthy (the calls its couriers
 * wait on, its watch), instead of each learning through a timeout of its
 * own;
 * and a probe per abandoned endpoint brings it back once it serves a
 * linearizable read (which needs a leader and a quorum behind the member:
 * a paused leader or a member cut off from the others answers none,
 * though it may accept connections). */
#ifndef TURNSTILE_CLUSTER_HEALTH_H
#define TURNSTILE_CLUSTER_HEALTH_H

#include "instance.h"

/* At cluster_open, once c->lease_client holds the endpoints: fills the
 * table. Returns 0 or -EINVAL. */
int health_init(struct cluster *c);

/* Makes ec, an etcd client of c, report to and follow the table. */
void health_share(struct cluster *c, struct etcd_client *ec);

/* On the first loop: starts a probe per endpoint. Returns 0 or a negative
 * errno. */
int health_start(struct cluster_loop *cl);

/* At detach, on the first loop: wakes the probes so that they end. */
void health_cancel(struct cluster *c);

/* After the probes ended: frees their clients. */
void health_fini(struct cluster *c);

/* A loop_post's function: moves cl's calls and watch off abandoned
 * endpoints (etcd_client_move, and the watch reopened elsewhere). */
void health_on_moved(void *arg);

#endif
