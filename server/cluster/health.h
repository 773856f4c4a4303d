/* health: etcd's health as an operator wants it during an incident, per
 * endpoint (each etcd member the instance was given): does it answer, is
 * it the leader, its raft term, its backend's size and the part in use
 * (etcd 3.4's /v3/maintenance/status; it does not report its quota), and
 * the alarms raised on it (NOSPACE, CORRUPT) as the alarm sentry read them.
 *
 * The status calls go through clients of their own, never the lock's: a
 * slow or dead member costs the lock nothing (glance.h polls them). */
#ifndef TURNSTILE_CLUSTER_HEALTH_H
#define TURNSTILE_CLUSTER_HEALTH_H

#include <stdint.h>

#include "cluster_view.h"
#include "etcd.h"

/* From a coroutine of ec's loop, ec knowing only row's endpoint: fills
 * row from its member's status (reachable, member id, leader, term,
 * sizes, version), or says why not (reachable false, error). The alarms
 * are left alone. Returns 0 or the call's errno (etcd.h). */
int health_status(struct etcd_client *ec, struct cluster_view_etcd *row, int64_t deadline_us);

/* Puts in each row the names of the alarms (etcd_alarms(), read by the
 * alarm sentry: alarm.h) raised on its member; "" for none. */
void health_alarms(const struct etcd_alarms *alarms, struct cluster_view_etcd *rows,
                   unsigned nrows);

#endif
