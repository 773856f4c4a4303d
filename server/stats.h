/* stats: the server's own counters, and the /stats JSON document that
 * shows them beside the lock's statistics. */
#ifndef TURNSTILE_STATS_H
#define TURNSTILE_STATS_H

#include <stddef.h>
#include <stdint.h>

#include "conn.h"
#include "grants.h"

struct server;

/* Which route answered, for requests counted by route and status. */
enum stats_route {
    STATS_ROUTE_ACCESS,
    STATS_ROUTE_STATS,
    STATS_ROUTE_METRICS,
    STATS_ROUTE_DASHBOARD, /* GET / */
    STATS_ROUTE_EVENTS,    /* GET /events */
    STATS_ROUTE_UNKNOWN, /* 404, or 405 on a path with no such method */
    STATS_ROUTE_NONE,    /* malformed requests and refused connections */
    STATS_ROUTE_COUNT
};

/* The statuses the server sends, in the order of stats_statuses[]. */
#define STATS_NSTATUS 12
extern const int stats_statuses[STATS_NSTATUS];
extern const char *const stats_route_names[STATS_ROUTE_COUNT];

struct server_stats {
    int64_t started_us;
    uint64_t requests;       /* requests answered or dropped, bad ones included */
    uint64_t access;         /* GET /access requests */
    uint64_t responses[6];   /* by class: [2] = 2xx ... [5] = 5xx */
    uint64_t accepted;       /* connections accepted */
    uint64_t active;         /* connections open now */
    uint64_t gone;           /* clients that left before their reply (nginx's 499) */
    uint64_t spawn_failures; /* connections refused: no coroutine to be had */
    uint64_t ended[CONN_END_COUNT]; /* closed connections, by why */
    uint64_t by_route[STATS_ROUTE_COUNT][STATS_NSTATUS]; /* responses */
    struct grants grants; /* the latest successful GET /access, for the dashboard */
};

/* Counts one response. */
void stats_count(struct server_stats *s, enum stats_route route, int status);

/* Writes the /stats document; returns its length, or 0 if cap is too small. */
size_t stats_json(const struct server *srv, char *buf, size_t cap);

#endif
