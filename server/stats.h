/* stats: one description of every number the server shows, and the /stats
 * document drawn from it.
 *
 * stats_rows[] lists each counter, gauge, flag and histogram once: where it
 * sits in the /stats JSON, its /metrics family name and help, and where its
 * value is in a struct stats_snapshot. /stats (stats_json), /metrics
 * (metrics.c) and the dashboard (which renders what /stats holds) all walk
 * it, so adding a number is one row here and one field in the snapshot.
 * The /stats field names are a contract (docs/design.md): add, never
 * rename. */
#ifndef TURNSTILE_STATS_H
#define TURNSTILE_STATS_H

#include <stddef.h>
#include <stdint.h>

#include "cluster_view.h"
#include "idem.h"
#include "lock.h"
#include "stats_cluster.h"
#include "tally.h"

struct resource;
struct grants;

/* Where the numbers come from; set up once by the server. */
struct stats_source {
    struct resource *resource;
    /* One of each per loop, summed when read. */
    const struct tally_requests *const *requests;
    const struct tally_conns *const *conns;
    unsigned nloops;
    struct grants *grants;
    const bool *draining; /* read atomically: another thread sets it */
    int64_t started_us;   /* loop_now_us() at start */
};

/* Every value at one moment. */
struct stats_snapshot {
    uint64_t counter, uptime_us, draining, threads;
    struct tally_requests requests;
    uint64_t in_section;
    uint64_t responses[4]; /* by class: 2xx, 3xx, 4xx, 5xx */
    struct tally_conns conns;
    uint64_t lock_enabled, lock_locked;
    struct lock_stats lock; /* the local lock's, or this instance's for the cluster's */
    uint64_t cluster_enabled;
    struct stats_cluster cluster; /* zeros without --etcd */
    struct cluster_view view;     /* only with --etcd: in neither document without */
    struct idem_stats idem;       /* Idempotency-Keys */
};

/* The kinds held in one uint64_t come first (put_value() in stats.c relies
 * on it). */
enum stats_kind {
    STATS_COUNTER, /* uint64_t, only goes up */
    STATS_GAUGE,   /* uint64_t, now */
    STATS_FLAG,    /* uint64_t 0 or 1: true/false in JSON */
    STATS_SECONDS, /* uint64_t microseconds, shown as seconds */
    STATS_HIST,    /* struct hist of microseconds */
    STATS_VECTOR,  /* uint64_t[dims[0]->n]: a counter per label value */
    STATS_MATRIX,  /* uint64_t[dims[0]->n][dims[1]->n], zeros left out */
    STATS_TEXT,    /* char[], NUL-terminated, no '"' or '\\': a string in JSON, an
                      info gauge with a value label in /metrics */
};

/* A label of a vector or matrix: its name in /metrics and its values. */
struct stats_dim {
    const char *label;
    const char *const *names;
    unsigned n;
};

struct stats_row {
    const char *path;   /* in /stats: object keys joined by '.' */
    const char *metric; /* turnstile_<metric> in /metrics; NULL: /stats only */
    enum stats_kind kind;
    const char *help;
    size_t off; /* of the value in struct stats_snapshot */
    const struct stats_dim *dims[2];
};

extern const struct stats_row stats_rows[];
extern const size_t stats_nrows;

/* Reads every value now. The snapshot is the calling thread's own, valid
 * until its next call. */
const struct stats_snapshot *stats_take(const struct stats_source *src);

/* Writes the /stats document (one line, ending in "\n"); returns its
 * length, or 0 if cap is too small. */
size_t stats_json(const struct stats_source *src, char *buf, size_t cap);

#endif
