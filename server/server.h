/* server: the daemon. It owns the workers (worker.h: an event loop each,
 * with its listener, its open connections and their counts) and their
 * threads, the listening sockets until a worker takes them, the signals,
 * the resource, and the graceful stop; connections see only the narrow
 * context a worker lends them (conn.h), handlers only theirs (handler.h).
 *
 * --threads N runs N workers, each an event loop on its own thread with
 * its own listening socket (SO_REUSEPORT: the kernel spreads connections),
 * its own coroutines, connections and counts. They share the resource, so
 * /access is one fair lock across all of them (lock_share). Worker 0 runs
 * on the caller's thread and also carries the daemon's own events:
 * signals, the stop's deadline, the access log's flush, the durable
 * state's rounds. */
#ifndef TURNSTILE_SERVER_H
#define TURNSTILE_SERVER_H

#include <stdbool.h>
#include <stdint.h>

#include "cfg.h"
#include "grants.h"
#include "loop.h"
#include "resource.h"
#include "state.h"
#include "stats.h"
#include "tally.h"
#include "worker.h"

struct server {
    struct cfg cfg;
    struct resource resource;
    struct state state;              /* --state-file; in use when resource.state points here */
    struct cluster *cluster;         /* --etcd; NULL without */
    struct etcd_secure *etcd_secure; /* its TLS, auth and refusals; NULL without --etcd */
    struct grants grants;
    struct stats_source stats;
    unsigned nworkers;
    struct worker *workers;
    const struct tally_requests **requests; /* each worker's, for stats */
    const struct tally_conns **conns_tallies;
    /* Worker 0's loop carries these. */
    struct loop_watch *signals[4]; /* SIGINT, SIGTERM, SIGHUP, SIGUSR1 */
    struct loop_watch *drain_timer;
    struct loop_watch *log_flush; /* writes the buffered access log each second */
    bool draining;                /* stopping (read by /stats from any thread) */
    unsigned drained;             /* workers with nothing left (worker 0's count) */
    struct worker_shared shared;  /* the connection count and limit, a reload's limits */
    char url[300];                /* http://HOST:PORT, as announced */
    char admin_url[300];          /* --admin-listen's, as announced; "" without */
    /* How a reload reads the configuration anew (server_on_reload). */
    int (*reread)(struct cfg *next, void *arg);
    void *reread_arg;
};

/* Sets up the loops, the resource (recovering the counter from
 * --state-file) and the signal handlers, without listening (the fuzz target
 * feeds connections itself). Returns 0 or a negative errno (-EINVAL: the
 * configuration is at fault, after one line on stderr). */
int server_init(struct server *srv, const struct cfg *cfg);
/* server_init(), then binds and listens as cfg says and prints the
 * listening line (and after it the admin port's, with --admin-listen).
 * Returns 0, or a negative errno after printing one line on stderr
 * (-EINVAL: the configuration is at fault). */
int server_start(struct server *srv, const struct cfg *cfg);
/* Serves until stopped by a signal and drained: worker 0 on this thread,
 * the others on threads of their own. */
int server_run(struct server *srv);
/* Returns 0, or a negative errno if the counter could not be saved to
 * --state-file at the end (one line on stderr). */
int server_fini(struct server *srv);

/* SIGHUP reloads: reread() fills next from the same flags and config file
 * as at start (main passes cfg_reparse). What can change live is applied at
 * once; what needs a restart (cfg.h) is logged and kept; a configuration
 * that does not parse changes nothing. Connections and queued requests
 * are untouched. Without a reread, SIGHUP is logged and ignored. */
void server_on_reload(struct server *srv, int (*reread)(struct cfg *next, void *arg), void *arg);

/* Applies next as a reload does (server_on_reload), from worker 0. */
void server_reload(struct server *srv, struct cfg *next);

#endif
