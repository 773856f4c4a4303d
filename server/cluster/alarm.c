/* alarm: etcd's alarms, read and told. See alarm.h. */
#include "alarm.h"

#include <errno.h>

#include "counts.h"
#include "log.h"

#define ALARM_POLL_US   10000000 /* modest: one small read every 10 s an instance */
#define ALARM_ACTIVE_US 1000000  /* while an alarm lasts: its end is seen within a second */
#define ALARM_REPEAT_US 60000000 /* a lasting alarm is said again this often */

static void wake_sentry(struct cluster_loop *first)
{
    if (first->sentry && loop_parked(first->sentry))
        loop_wake(first->sentry, 0);
}

void alarm_on_suspect(void *arg)
{
    struct cluster_loop *first = arg;
    atomic_store(&first->c->alarm_posted, false);
    wake_sentry(first);
}

void alarm_suspect(struct cluster_loop *cl)
{
    struct cluster *c = cl->c;
    struct cluster_loop *first = atomic_load(&c->loops[0]);
    if (cl == first)
        wake_sentry(cl);
    else if (first && !atomic_exchange(&c->alarm_posted, true))
        loop_post(first->loop, &c->alarm_post);
}

/* What each alarm means and what to do, in one line. */
static void say(unsigned alarms)
{
    if (alarms & ETCD_ALARM_NOSPACE)
        log_msg(LOG_LEVEL_ERROR,
                "cluster: etcd raised NOSPACE: its backend reached --quota-backend-bytes and it "
                "refuses every write; /access answers 503. Compact (turnstile does every "
                "--compact-interval-ms), then 'etcdctl defrag' each member and 'etcdctl alarm "
                "disarm'; raise the quota if traffic needs it");
    if (alarms & ETCD_ALARM_CORRUPT)
        log_msg(LOG_LEVEL_ERROR,
                "cluster: etcd raised CORRUPT: a member's data differs from the others'; restore "
                "that member from a healthy one's snapshot, then 'etcdctl alarm disarm'");
}

/* One reading: logs what changed (and a lasting alarm, rate-limited);
 * returns how long until the next. */
static int64_t check(struct cluster_loop *cl, int64_t *said_at)
{
    struct cluster *c = cl->c;
    struct etcd_alarms read;
    unsigned before = atomic_load(&c->alarms);
    if (etcd_alarms(&c->maint, &read, instance_call_deadline(c, LOOP_FOREVER)) < 0)
        return before ? ALARM_ACTIVE_US : ALARM_POLL_US; /* etcd's silence is told elsewhere */
    unsigned now = read.all;
    c->alarm_members = read;
    atomic_store(&c->alarms, now);
    if (now && (now != before || loop_now_us() - *said_at >= ALARM_REPEAT_US)) {
        say(now);
        *said_at = loop_now_us();
    }
    if (!now && before)
        log_msg(LOG_LEVEL_INFO, "cluster: etcd's alarms are disarmed; writes resume");
    return now ? ALARM_ACTIVE_US : ALARM_POLL_US;
}

void alarm_read(const struct cluster *c, struct etcd_alarms *out)
{
    *out = c->alarm_members;
}

void alarm_sentry_main(void *arg)
{
    struct cluster_loop *cl = arg;
    struct cluster *c = cl->c;
    int64_t said_at = 0;
    while (!atomic_load(&c->stopping)) {
        int64_t next = check(cl, &said_at);
        counts_publish(cl);
        loop_park(loop_now_us() + next); /* or alarm_suspect wakes it */
    }
    cl->running--;
}
