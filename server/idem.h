/* idem: what GET /access answered to each Idempotency-Key, remembered for a
 * retention window and up to a number of keys, oldest first out (single-node
 * mode; in cluster mode the keys live in etcd, server/cluster/commit.c).
 *
 * Only a 200 is remembered: a request that failed (503, 500) was not
 * applied, so a repeat of it is applied anew. A repeat that arrives while
 * the first is still running needs no list of its own here: resource.c
 * looks the key up again inside the critical section, so the repeat waits
 * in the lock's FIFO behind the first and finds its outcome there (bounded
 * by the lock's usual deadline, as any request).
 *
 * From any thread: one mutex, held for a hash lookup or an insert, never
 * across a park or a syscall. */
#ifndef TURNSTILE_IDEM_H
#define TURNSTILE_IDEM_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "list.h"

/* A key as the request carried it; len 0: no key. */
struct idem_key {
    const char *s;
    size_t len;
};

/* What a key was answered. */
struct idem_outcome {
    uint64_t n;   /* the N of the 200 */
    uint64_t seq; /* with --state-file: the commit that saved it (state_wait) */
};

struct idem_stats {
    uint64_t keys;         /* remembered now */
    uint64_t max_keys;     /* the cap */
    uint64_t retention_ms; /* the window */
    uint64_t repeats;      /* requests answered from a remembered key */
    uint64_t expired;      /* keys forgotten: past the window */
    uint64_t evicted;      /* keys forgotten: the cap, oldest first */
};

struct idem {
    pthread_mutex_t mu;
    struct list_node order;     /* entries, oldest first */
    struct idem_entry **bucket; /* by hash; allocated at the first key */
    size_t nbuckets;            /* a power of two */
    struct idem_stats st;       /* keys, repeats, expired, evicted; the rest set here */
    int64_t retention_us;
};

void idem_init(struct idem *m, uint64_t retention_ms, uint64_t max_keys);

/* A reload: a shorter window or a smaller cap applies at the next insert. */
void idem_configure(struct idem *m, uint64_t retention_ms, uint64_t max_keys);

/* Frees every entry. */
void idem_destroy(struct idem *m);

/* Looks key up at now_us (a monotonic clock, microseconds). Returns true
 * and fills *out when the key was answered within the window (a repeat,
 * counted); false when it is new. */
bool idem_find(struct idem *m, const struct idem_key *key, int64_t now_us,
               struct idem_outcome *out);

/* Remembers key -> *o as of now_us, forgetting what the window and the cap
 * require first. Returns 0, or -ENOMEM (the key is then not remembered: a
 * repeat will be applied anew; the caller's 200 stands). */
int idem_put(struct idem *m, const struct idem_key *key, int64_t now_us,
             const struct idem_outcome *o);

/* Counts a repeat answered elsewhere (cluster mode: from etcd). */
void idem_count_repeat(struct idem *m);

/* The numbers for /stats; from any thread. */
void idem_read_stats(struct idem *m, struct idem_stats *out);

#endif
