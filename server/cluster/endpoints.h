/* endpoints: what this process knows of each etcd endpoint's health, one
 * table shared by every etcd client of every loop (cluster mode keeps one
 * per instance). Whatever one client learns (a call timed out, a
 * connection broke or was refused, etcd said "unavailable") marks the
 * endpoint abandoned for all of them at once: they choose another before
 * their next call, and the table's owner is told (on_change) so that the
 * calls and the watches already under way on it move too. An abandoned
 * endpoint comes back only through endpoints_restore(), after a check that
 * it can serve (failover.h); a client never takes it back on its own. The
 * owner is told of that too: calls that went to an abandoned endpoint for
 * want of a healthy one can move to it.
 *
 * Any thread: the health is one atomic per endpoint; the rest is set
 * before the table is shared. */
#ifndef TURNSTILE_CLUSTER_ENDPOINTS_H
#define TURNSTILE_CLUSTER_ENDPOINTS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ENDPOINTS_MAX 8
#define ENDPOINTS_URL 72

struct endpoints {
    unsigned n;
    char url[ENDPOINTS_MAX][ENDPOINTS_URL];
    _Atomic bool bad[ENDPOINTS_MAX];
    _Atomic uint64_t abandoned; /* times an endpoint was abandoned */
    /* Called by whichever thread abandoned or restored an endpoint, once
     * per change. */
    void (*on_change)(void *arg);
    void *arg;
};

/* Adds an endpoint by its URL (logs name it). Returns 0 or -ENOSPC. */
int endpoints_add(struct endpoints *t, const char *url);

/* True while endpoint i is abandoned. */
bool endpoints_bad(const struct endpoints *t, unsigned i);

/* The endpoint to use for a client whose own choice is `from`: from
 * itself if healthy, else the first healthy one after it, else (all
 * abandoned) from: someone must still be tried. */
unsigned endpoints_choose(const struct endpoints *t, unsigned from);

/* A call on endpoint i failed with rc (a negative errno). The first to
 * report it logs a warning and calls on_change; later reports change
 * nothing until it is restored. */
void endpoints_abandon(struct endpoints *t, unsigned i, int rc);

/* True if endpoint i is abandoned and another is not: a call on i should
 * move there. */
bool endpoints_better(const struct endpoints *t, unsigned i);

/* Endpoint i proved it can serve: it is used again (logged so, and
 * on_change called). */
void endpoints_restore(struct endpoints *t, unsigned i);

/* "URL up, URL down, ..." into buf (cap bytes, NUL-terminated), for /stats. */
void endpoints_describe(const struct endpoints *t, char *buf, size_t cap);

#endif
