/* stats_cluster: the numbers /stats and /metrics show of cluster mode
 * (--etcd), as one struct: the cluster module fills it
 * (server/cluster/counts.h), stats.h shows it. Apart from stats.h so that
 * the cluster module need not include stats.h (which reads the resource,
 * which wires the cluster module in). */
#ifndef TURNSTILE_STATS_CLUSTER_H
#define TURNSTILE_STATS_CLUSTER_H

#include <stdint.h>

#include "hist.h"

/* Summed over the instance's loops; zeros without --etcd. */
#define STATS_ETCD_ERRORS 7 /* kinds of failed etcd call, named in stats.c */
struct stats_cluster {
    uint64_t healthy;       /* 1 while every loop's watch follows etcd and a lease is held */
    uint64_t waiters;       /* this instance's requests waiting in the cluster-wide queue */
    uint64_t queue_length;  /* keys in the cluster-wide queue (holder included), as seen here */
    uint64_t revision;      /* the latest etcd revision seen */
    uint64_t lease_ttl_ms;  /* as granted */
    uint64_t lease_grants;  /* leases granted to this instance */
    uint64_t lease_losses;  /* leases that expired or could not be kept alive */
    uint64_t fenced;        /* writes refused: the writer's place was gone */
    uint64_t unavailable;   /* requests answered "etcd unreachable" (fenced ones excluded) */
    uint64_t unknown;       /* writes whose outcome could not be proven (answered 500) */
    uint64_t resyncs;       /* times a watch was (re)opened and the queue read anew */
    uint64_t compactions;   /* compactions of etcd's history this instance made */
    uint64_t alarm_nospace; /* 1 while etcd's NOSPACE alarm is raised */
    uint64_t alarm_corrupt; /* 1 while etcd's CORRUPT alarm is raised */
    uint64_t errors[STATS_ETCD_ERRORS]; /* failed etcd calls by kind, every client */
    struct hist handoff_us;             /* release on another instance -> grant here */
    uint64_t endpoints_abandoned;       /* times an etcd endpoint was given up (endpoints.h) */
    uint64_t local_handoffs;            /* grants on this loop's own release reply, no watch */
    uint64_t pipelined;                 /* grants as this loop's previous section ended */
    uint64_t grouped;                   /* writes carried by another request's txn (commit.h) */
    char endpoint[72];                  /* the etcd endpoint in use */
    char endpoints[8 * 80];             /* each endpoint's health: "URL up, URL down" */
    char lease[20];                     /* the lease ID in hex, "" while none */
    char error[256]; /* why etcd and this instance refuse each other, "" if they do not */
};

#endif
