/* cluster_view: the cluster at a glance (issue 23), as one plain struct,
 * and how /stats and /metrics show it: the live members (which one is
 * this instance), the cluster-wide queue (its holder and since when, the
 * first waiters with their member, the keys per member) and etcd's health
 * per endpoint. The cluster module fills it (server/cluster/glance.h);
 * this file only renders it, and includes nothing of cluster mode.
 *
 * Every list is capped, so a 10 000-deep queue or a large cluster costs
 * the document no more than a small one: the counts say how many there
 * were. Strings are the view's own copies; the renderers escape them. */
#ifndef TURNSTILE_CLUSTER_VIEW_H
#define TURNSTILE_CLUSTER_VIEW_H

#include <stdbool.h>
#include <stdint.h>

#include "textbuf.h"

/* The caps keep the whole view, every list full, under CLUSTER_VIEW_BUDGET
 * bytes of JSON: /stats must still fit the page's event (dashboard.c's
 * DASHBOARD_EVENT_CAP, 16 KiB) with everything else it holds. */
#define CLUSTER_VIEW_BUDGET  10240
#define CLUSTER_VIEW_MEMBERS 12 /* members listed; nmembers counts them all */
#define CLUSTER_VIEW_WAITERS 10 /* first waiters listed, after the holder */
#define CLUSTER_VIEW_ETCD    8  /* etcd endpoints (--etcd takes at most 8) */
#define CLUSTER_VIEW_ID      17 /* a member's id: 16 hex digits */

/* One instance, as it registered itself in etcd under its lease. */
struct cluster_view_member {
    char id[CLUSTER_VIEW_ID];
    char addr[72];  /* its main URL, "http://127.0.0.1:8080" */
    char admin[72]; /* --admin-listen's URL, "" without */
    char version[24];
    int64_t started_us; /* wall clock */
    uint64_t loops;     /* --threads */
};

/* A member's keys in the queue, the holder's included. */
struct cluster_view_share {
    char id[CLUSTER_VIEW_ID];
    uint64_t keys;
};

struct cluster_view_queue {
    uint64_t length;              /* keys in the queue, the holder's included */
    char holder[CLUSTER_VIEW_ID]; /* its member; "" while the queue is empty */
    int64_t holder_since_us;      /* wall clock: when it got the lock, as seen here */
    int64_t holder_revision;      /* its key's create revision */
    unsigned nwaiters;            /* listed below, at most CLUSTER_VIEW_WAITERS */
    struct {
        char member[CLUSTER_VIEW_ID];
        int64_t revision; /* its place */
    } waiters[CLUSTER_VIEW_WAITERS];
    unsigned nshares;
    struct cluster_view_share shares[CLUSTER_VIEW_MEMBERS];
    uint64_t other_keys; /* of members past the shares listed */
};

/* One etcd endpoint's /v3/maintenance/status (and the cluster's alarms
 * that name its member). */
struct cluster_view_etcd {
    char endpoint[72];
    bool reachable;
    char error[80];     /* why not reachable, "" if it is */
    char member_id[24]; /* decimal, as etcd writes it */
    char version[16];
    bool leader;
    uint64_t raft_term, db_size, db_size_in_use;
    char alarms[24]; /* "NOSPACE CORRUPT": the alarms raised on this member (etcd 3.4 has
                        those two) */
};

struct cluster_view {
    char self[CLUSTER_VIEW_ID]; /* this instance's id */
    int64_t now_us;             /* wall clock when read, for the holder's time */
    uint64_t nmembers;          /* live members in etcd, even past those listed */
    bool members_stale;         /* the last read of them failed: the list is older */
    unsigned nlisted;
    struct cluster_view_member members[CLUSTER_VIEW_MEMBERS];
    struct cluster_view_queue queue;
    unsigned netcd;
    struct cluster_view_etcd etcd[CLUSTER_VIEW_ETCD];
    uint64_t quota_bytes; /* etcd's backend quota (--etcd-quota-bytes); 0: unknown */
};

/* One member of the /stats "cluster" object: its key path ("cluster.queue")
 * and its writer. */
struct cluster_view_part {
    const char *path;
    void (*put)(struct textbuf *o, const struct cluster_view *v);
};

/* "self", "members", "queue", "etcd", in that order. */
extern const struct cluster_view_part cluster_view_parts[];
extern const unsigned cluster_view_nparts;

/* The /metrics families of the view: members, and per etcd endpoint its
 * reachability, leadership, db size, in-use size, quota and alarms. */
void cluster_view_metrics(struct textbuf *o, const struct cluster_view *v);

/* The keys member id has in the queue (0 if none listed). */
uint64_t cluster_view_keys_of(const struct cluster_view *v, const char *id);

#endif
