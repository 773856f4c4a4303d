/* tally: the counts the server keeps of its own work: responses by route
 * and status, requests, connections and why each ended. Plain structs of
 * counters with their names; what to show and how is stats.h's table.
 *
 * Two owners: a connection bumps its struct tally_requests (through its
 * narrow context, conn.h), the server keeps struct tally_conns (it alone
 * opens and closes connections). */
#ifndef TURNSTILE_TALLY_H
#define TURNSTILE_TALLY_H

#include <stdint.h>

/* Which route answered. */
enum tally_route {
    TALLY_ACCESS,
    TALLY_STATS,
    TALLY_METRICS,
    TALLY_DASHBOARD, /* GET / */
    TALLY_EVENTS,    /* GET /events */
    TALLY_UNKNOWN,   /* 404, 405 on a path without that method, OPTIONS * */
    TALLY_NONE,      /* malformed requests and refused connections */
    TALLY_ROUTES
};

/* The statuses the server sends, each with a slot; the rest share one. */
enum tally_status {
    TALLY_200,
    TALLY_400,
    TALLY_404,
    TALLY_405,
    TALLY_408,
    TALLY_413,
    TALLY_414,
    TALLY_417,
    TALLY_431,
    TALLY_500,
    TALLY_501,
    TALLY_503,
    TALLY_505,
    TALLY_OTHER, /* any status without a slot of its own */
    TALLY_STATUSES
};

/* Why a connection ended. */
enum tally_end {
    TALLY_END_CLIENT,      /* the client closed or reset it */
    TALLY_END_DONE,        /* Connection: close, HTTP/1.0, or the server stopping */
    TALLY_END_BAD_REQUEST, /* answered 4xx/5xx for a malformed request */
    TALLY_END_TIMEOUT,     /* header deadline (408) or send timeout */
    TALLY_END_IDLE,        /* keep-alive idle timeout */
    TALLY_END_GONE,        /* the client left while its request was in flight */
    TALLY_ENDS
};

/* Names, as /stats keys and /metrics label values. */
extern const char *const tally_route_names[TALLY_ROUTES];
extern const char *const tally_status_names[TALLY_STATUSES];
extern const char *const tally_end_names[TALLY_ENDS];

struct tally_requests {
    uint64_t total;  /* requests answered or dropped, malformed ones included */
    uint64_t access; /* GET /access requests */
    uint64_t gone;   /* clients that left before their reply (nginx's 499) */
    uint64_t by_route[TALLY_ROUTES][TALLY_STATUSES]; /* responses sent */
};

struct tally_conns {
    uint64_t accepted;
    uint64_t active;    /* open now */
    uint64_t refused;   /* answered 503 at once: no coroutine to be had */
    uint64_t lingering; /* in a staged close now (counted in active too) */
    uint64_t ended[TALLY_ENDS];
};

/* Every count has one writer, the loop that owns its struct, and may be
 * read from any thread (/stats sums the loops). The add is a relaxed
 * load and store, no locked instruction: atomic only so that a reader
 * always sees a whole value. */
static inline void tally_add(uint64_t *count, int64_t n)
{
    __atomic_store_n(count, __atomic_load_n(count, __ATOMIC_RELAXED) + (uint64_t)n,
                     __ATOMIC_RELAXED);
}

/* Counts one response. */
void tally_response(struct tally_requests *t, enum tally_route route, int status);

/* Adds the counts of src to dst, reading src as another thread writes it. */
void tally_sum_requests(struct tally_requests *dst, const struct tally_requests *src);
void tally_sum_conns(struct tally_conns *dst, const struct tally_conns *src);

/* The slot of a status (TALLY_OTHER for one without its own), and the
 * status of a slot (0 for TALLY_OTHER). */
enum tally_status tally_status_of(int status);
int tally_status_code(enum tally_status slot);

#endif
