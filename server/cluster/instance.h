/* instance: the state cluster mode keeps, shared by its modules (private
 * to server/cluster/). The instance (struct cluster) holds what is one per
 * process: the settings, the keys' names, the lease, the highest counter
 * seen. Each loop that serves requests has a struct cluster_loop of its
 * own: its etcd clients, its watch's copy of the queue, its tickets and
 * its statistics; only the fields marked so are touched by other threads.
 *
 * Keys, under /turnstile/NAME/ (docs/design.md, "Cluster mode"):
 *   counter        "N KEY REV": the counter, then the queue key of the
 *                  request that wrote it and that key's create revision
 *                  (its receipt, see proof.h); no lease
 *   queue/I.L-S    one request's place: I the instance, L its loop, S a
 *                  slot of that loop's (ticket.h: names are reused, so
 *                  the prefix holds no more names than the loop's most
 *                  waiters); on the instance's lease. Its create revision
 *                  is its place in the queue; the name alone is not
 *                  unique over time, name and create revision are.
 *   released       "T I": wall-clock microseconds at which instance I sent
 *                  the last release, for the hand-off latency
 *   compact        the revision its last compactor compacted to; its
 *                  version elects the next one (compactor.h) */
#ifndef TURNSTILE_CLUSTER_INSTANCE_H
#define TURNSTILE_CLUSTER_INSTANCE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "endpoints.h"
#include "etcd.h"
#include "etcd_watch.h"
#include "list.h"
#include "lock.h"
#include "loop.h"
#include "mirror.h"
#include "stats_cluster.h"
#include "waitq.h"

#define CLUSTER_NAME_MAX 64 /* --cluster: letters, digits, '-', '_', '.' */
#define CLUSTER_KEY_MAX  (CLUSTER_NAME_MAX + 64)
#define CLUSTER_LOOPS    64     /* most loops one instance serves */
#define CLUSTER_RETRY_US 100000 /* before another try at a lease grant, a watch, a delete */

/* The counter as a loop last saw it. */
struct counter_copy {
    uint64_t value;
    int64_t mod_revision; /* 0: the counter does not exist (value 0) */
};

/* Cluster mode on one loop. */
struct cluster_loop {
    struct cluster *c;
    struct loop *loop;
    bool first;                 /* keeps the lease */
    struct etcd_client queue;   /* joins (batched) and deletes, in arrival order */
    struct etcd_client section; /* fenced writes and their proofs */
    struct etcd_client watchc;  /* the watch and its reads */
    struct mirror mirror;
    bool synced;      /* the watch is open and the mirror follows it */
    int64_t revision; /* what the mirror reflects */
    int64_t read_rev; /* of the last resync's range: older events are in it */
    struct counter_copy counter;
    struct list_node live, leaving, done; /* tickets (ticket.h) by state */
    char key_prefix[CLUSTER_KEY_MAX];     /* this loop's keys: queue/I.L- */
    struct slots {                        /* the S of this loop's keys (ticket.h) */
        uint32_t *free;                   /* slots no ticket holds, to reuse */
        size_t nfree, cap;
        uint32_t made; /* slots 0 .. made - 1 exist */
    } slots;
    /* Fenced writes go one txn at a time (writeline.h): `writing` while
     * one is under way; the writes whose sections are over wait in
     * write_line, for their turn or for a txn that carries them. */
    bool writing;
    struct waitq write_line;
    struct list_node joining; /* tickets waiting for a join txn, by arrival (queue.h) */
    uint64_t njoining;        /* of them */
    uint64_t arrivals;        /* the last join's arrival sequence */
    struct etcd_watch *watch; /* the watcher's, while it follows one; else NULL */
    coro_t *watcher, *joiner, *reaper, *keeper, *compactor,
        *sentry; /* the last three: first loop's */
    bool joiner_idle, reaper_idle;
    int running; /* coroutines of ours not yet ended; -1 once stopped */
    int64_t released_wall_us;
    bool released_elsewhere;
    /* Idempotency-Keys' lease of this time bucket (remember.h). */
    int64_t idem_lease, idem_lease_until;
    uint64_t idem_retention_ms;
    /* Another loop lost the lease: tell this one on its own thread. */
    struct loop_post lost_post;
    _Atomic int64_t lost_lease;
    _Atomic bool lost_posted;
    /* Requests that came while the instance had no lease yet (session.h),
     * and the keeper's news for them (a lease, or etcd does not answer). */
    struct waitq lease_waiters;
    struct loop_post news_post;
    _Atomic bool news_posted;
    /* An endpoint was abandoned or restored: move this loop's calls
     * (failover.h). */
    struct loop_post moved_post;
    _Atomic bool moved_posted;
    /* What other threads read (counts.h), under mu. */
    pthread_mutex_t mu;
    struct lock_stats lock;     /* this loop's requests for the cluster-wide lock */
    struct stats_cluster shown; /* the rest of what /stats shows */
};

/* The check that brings one abandoned endpoint back (failover.h), on the
 * first loop. */
struct failover_probe {
    struct cluster_loop *cl;
    unsigned endpoint;
    struct etcd_client client; /* that endpoint alone, learning for itself */
    coro_t *co;
};

/* The instance. */
struct cluster {
    char endpoints[ETCD_MAX_ENDPOINTS * 80];
    char name[CLUSTER_NAME_MAX];
    int64_t call_ms;                              /* how long one etcd call may take */
    int64_t ttl_s;                                /* the lease's, as asked */
    int64_t compact_ms;                           /* between compactions; 0: none */
    void (*notify)(void *arg, const char *state); /* cluster_settings' */
    void *notify_arg;
    char prefix[CLUSTER_NAME_MAX + 16]; /* /turnstile/NAME/ */
    char counter_key[CLUSTER_KEY_MAX], queue_prefix[CLUSTER_KEY_MAX];
    char released_key[CLUSTER_KEY_MAX], compact_key[CLUSTER_KEY_MAX];
    char self[17];           /* this process's id, in its keys and in `released` */
    struct endpoints health; /* every client's endpoints, as the process knows them */
    struct failover_probe probes[ENDPOINTS_MAX];
    struct etcd_client lease_client;
    struct etcd_client maint;         /* the first loop's compactions and alarm checks */
    struct etcd_secure *secure;       /* given to every etcd client; may be NULL */
    _Atomic int64_t lease;            /* 0 while none */
    _Atomic bool etcd_down;           /* the keeper's last grant failed: no use waiting */
    _Atomic unsigned alarms;          /* etcd's, ETCD_ALARM_ bits, as the sentry last read them */
    struct etcd_alarms alarm_members; /* and by member: the first loop's (alarm_read) */
    struct loop_post alarm_post;      /* another loop's alarm_suspect */
    _Atomic bool alarm_posted;
    _Atomic int64_t lease_ttl_ms; /* as granted */
    _Atomic uint64_t counter;     /* the highest value seen */
    _Atomic bool stopping;
    int64_t stale_lease; /* lost here but maybe not in etcd: revoke when it answers */
    _Atomic(struct cluster_loop *) loops[CLUSTER_LOOPS]; /* set once each, read by any thread */
    _Atomic unsigned nloops;
    struct glance *glance; /* the cluster at a glance (glance.h); made by the first loop */
};

/* This thread's loop's, or NULL (the loop could not attach). */
struct cluster_loop *instance_here(void);
void instance_set_here(struct cluster_loop *cl);

/* The deadline of one etcd call made now, no later than limit. */
int64_t instance_call_deadline(const struct cluster *c, int64_t limit);

/* Wall-clock microseconds (hand-off latency spans instances). */
int64_t instance_wall_us(void);

/* A range of one key (or of a prefix), for a txn. */
struct etcd_op instance_range_op(const char *key, bool prefix, bool count_only);

#endif
