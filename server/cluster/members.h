/* members: the instances of a cluster, as etcd knows them. Each instance
 * puts one key, /turnstile/NAME/members/ID (ID: its per-process id, the I
 * of its queue keys), on its lease, with where it serves, its version,
 * its start time and its loops as a JSON value. So the set of live
 * members is etcd's own: a member appears with its lease and goes with
 * it (a clean stop revokes it; a killed instance's expires), and no
 * protocol of ours keeps it. */
#ifndef TURNSTILE_CLUSTER_MEMBERS_H
#define TURNSTILE_CLUSTER_MEMBERS_H

#include <stdint.h>

#include "cluster_view.h"
#include "instance.h"

/* What this instance says of itself. */
struct members_self {
    char addr[72], admin[72]; /* its URLs; admin "" without --admin-listen */
    int64_t started_us;       /* wall clock */
    unsigned loops;
};

/* From a coroutine of ec's loop: puts this instance's key on lease (again:
 * a new lease needs a new key). Returns 0, -ENOMEM, or an etcd call's
 * errno (etcd.h). */
int members_register(struct etcd_client *ec, const struct cluster *c, const struct members_self *me,
                     int64_t lease, int64_t deadline_us);

/* From a coroutine of ec's loop: the live members into v->members (by id,
 * at most CLUSTER_VIEW_MEMBERS), v->nlisted and v->nmembers (all of
 * them). A value that is not a member's JSON lists the member with what
 * could be read. Returns 0 or an etcd call's errno; v untouched then. */
int members_read(struct etcd_client *ec, const struct cluster *c, struct cluster_view *v,
                 int64_t deadline_us);

#endif
