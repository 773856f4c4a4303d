/* grants: the most recent successful GET /access requests (the N each one
 * wrote, how long it took, when), for the dashboard. A fixed ring inside
 * struct server_stats: recording is O(1) and never allocates. */
#ifndef TURNSTILE_GRANTS_H
#define TURNSTILE_GRANTS_H

#include <pthread.h>
#include <stdint.h>

#define GRANTS_CAP 32

/* What each grant's time measures, as named in the JSON; the page labels
 * it from this key: the time the request queued for the lock. */
#define GRANTS_TIME_KEY "wait_us"

struct textbuf;

struct grant {
    uint64_t n;    /* the counter value the request wrote */
    uint64_t us;   /* see GRANTS_TIME_KEY */
    int64_t at_us; /* loop clock when the request's section ended */
};

struct grants {
    pthread_mutex_t mu; /* sections end on any loop's thread */
    struct grant ring[GRANTS_CAP];
    uint64_t total; /* ever recorded; the next goes to ring[total % GRANTS_CAP] */
};

void grants_init(struct grants *g);
void grants_fini(struct grants *g);
void grants_record(struct grants *g, uint64_t n, uint64_t us, int64_t at_us);

/* Appends the /stats "grants" object: the recent grants oldest first,
 * their times in seconds since since_us (the server's start). */
void grants_json(struct grants *g, struct textbuf *o, int64_t since_us);

#endif
