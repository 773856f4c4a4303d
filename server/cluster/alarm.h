/* alarm: etcd's alarms, loud. An etcd member whose backend reaches its
 * quota raises NOSPACE and refuses every write; one whose data differs
 * from the others' raises CORRUPT. Neither goes away by itself: the
 * operator must act, so the sentry says it, and says what to do.
 *
 * The sentry, a coroutine of the first loop (on the compactor's client),
 * reads /v3/maintenance/alarm every ALARM_POLL_US, every second while an
 * alarm is active (to see it disarmed), and at once when a write was
 * refused for the quota (alarm_suspect). A new alarm is logged at error
 * with what it means and what to do, again every ALARM_REPEAT_US while it
 * lasts, and its end at info. /stats and /metrics show each alarm (a flag,
 * a gauge), the page with them, and the page's etcd rows the alarms of
 * each member from the same reading (alarm_read): the sentry is the one
 * reader of etcd's alarms. Writes resume by themselves once the operator
 * disarms: nothing here blocks them. */
#ifndef TURNSTILE_CLUSTER_ALARM_H
#define TURNSTILE_CLUSTER_ALARM_H

#include "instance.h"

/* The sentry's coroutine (arg: the first loop's cluster_loop): until the
 * instance stops. */
void alarm_sentry_main(void *arg);

/* On cl's loop: a write was refused for the quota (-ENOSPC); the sentry
 * looks now rather than at its next round. */
void alarm_suspect(struct cluster_loop *cl);

/* For loop_post (arg: the first loop's cluster_loop): alarm_suspect from
 * another loop. */
void alarm_on_suspect(void *arg);

/* On the first loop: the alarms by member as the sentry last read them
 * (none before its first reading; a failed reading keeps the last). */
void alarm_read(const struct cluster *c, struct etcd_alarms *out);

#endif
