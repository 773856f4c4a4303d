/* cluster_fixture: what the cluster tests (test_cluster, test_pipeline,
 * test_cluster_faults, test_cluster_secured) share: the etcd clusters they
 * start once per tcase, up to NSRV + 1 turnstile instances in a cluster of
 * their own, requests sent now and read later, the counter as every
 * instance sees it, and etcd's history of a key. Each test starts its
 * instances and stops them (cf_stop_all), and the checked teardown stops
 * them again after a failed one. */
#ifndef TURNSTILE_CLUSTER_FIXTURE_H
#define TURNSTILE_CLUSTER_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>

#include "etcd_proc.h"
#include "harness.h"
#include "proxy.h"

#define START_MS 30000 /* etcd, or a cluster, to become healthy */
#define NSRV     3
/* A lease that a stalled test machine cannot lose by accident, and the
 * short one of the tests that are about leases expiring: the shortest
 * etcd grants with the test's election timeout (etcd_proc.c). */
#define LEASE_LONG_MS  "6000"
#define LEASE_SHORT_MS "3000"

/* ---- etcd, shared by the cases of a tcase (unchecked fixtures) ---- */

extern struct etcd_proc cf_single; /* one node */
extern struct etcd_proc cf_trio;   /* a 3-member cluster */

/* Start it or fail the tcase; the stops first stop every instance. */
void cf_single_start(void);
void cf_single_stop(void);
void cf_trio_start(void);
void cf_trio_stop(void);

/* ---- instances ---- */

extern struct srv cf_srv[NSRV + 1]; /* one more started while etcd is down */
extern int cf_nsrv;                 /* how many of cf_srv run */
extern char cf_cluster_name[32];    /* their --cluster */
/* Flags the instances started next get beyond the common ones: up to two
 * pairs, NULL-terminated early. cf_start_all() clears them. */
extern const char *cf_extra[5];
/* Their --lease-ttl-ms: LEASE_LONG_MS until a test sets another, which
 * lasts until cf_stop_all(). */
extern const char *cf_lease_ms;

/* A --cluster name no earlier test used, into cf_cluster_name. */
void cf_new_cluster_name(void);
/* Starts cf_srv[i] in the current cluster on endpoints, with two loops
 * (each loop has its own part of the cluster: clients, watch, queue copy),
 * --delay-ms delay_ms and cf_extra. Does not count it in cf_nsrv. */
void cf_start_one(int i, const char *endpoints, const char *delay_ms);
/* NSRV instances in a new cluster, then cf_extra cleared; returns once
 * every one is healthy, or fails the test. */
void cf_start_all(const char *endpoints, const char *delay_ms);
/* SIGKILLs every instance (resumed first, if paused); cf_nsrv 0 and
 * cf_lease_ms LEASE_LONG_MS again. The checked teardown of every tcase. */
void cf_stop_all(void);
/* The instances' ports, for load_start(). */
const int *cf_ports(void);

/* Instance 0 talks to cf_single through a proxy (returned, for the test to
 * stop), instance 1 directly, with sections of delay1_ms (instance 0's:
 * none), short leases; returns once both are healthy. */
struct proxy *cf_start_behind_proxy(const char *delay1_ms);
/* Traps, on p, the fenced write of the current cluster's counter (the txn
 * that puts it; a join only reads it): proxy_wait_trap() then says it
 * reached etcd, and the path is cut from then on. */
void cf_trap_counter_put(struct proxy *p);

/* ---- requests ---- */

/* A GET /access sent on a connection of its own; returns the socket. */
int cf_send_access(int port);
/* The same with an Idempotency-Key of key. */
int cf_send_keyed(int port, const char *key);
/* Reads the reply on fd into r, or fails the test; closes fd. */
void cf_read_reply(int fd, struct resp *r, int timeout_ms);
/* The N of the reply on fd, which must be a 200 within 30 s. */
long long cf_keyed_n(int fd);

/* ---- the counter ---- */

/* At a quiet moment every instance agrees that the counter is want. */
void cf_assert_counter(long long want);
/* NSRV instances on endpoints under 12 clients of 40 requests: every one
 * 200, the counter exact, each instance's share through the lock, nothing
 * fenced. */
void cf_counter_exact(const char *endpoints);
/* n requests at once, each on a connection of its own, taken by the first
 * `instances` in turn: every one gets 200, their Ns are 1..n once each,
 * and the counter is n. n is at most CF_ALL_SERVED_MAX. */
#define CF_ALL_SERVED_MAX 2000
void cf_all_served_once(int n, int instances, int timeout_ms);

/* ---- etcd's history ---- */

/* base64 of in[0..len) into out (4 * ceil(len / 3) + 1 bytes), and back
 * (out: at least 3/4 of strlen(in) + 1 bytes). */
void cf_base64(const char *in, size_t len, char *out);
void cf_unbase64(const char *in, char *out);
/* The first `events` events of key (prefix: of every key under it) since
 * revision 1, or fails the test: a watch from there replays the whole
 * history (nothing is compacted in the tests), whatever was deleted since.
 * Returns etcd's JSON stream (HTTP/1.0: it comes unchunked), in a static
 * buffer that the next call reuses. */
const char *cf_history(int etcd_port, const char *key, bool prefix, int events);
/* etcd's range of key (prefix: every key under it) now, as the gateway's
 * JSON (keys and values in base64, numbers as strings), or fails the test.
 * In a static buffer that the next call reuses. */
const char *cf_range(int etcd_port, const char *key, bool prefix);

#endif
