/* server: the daemon. It owns the listening sockets, the signals, the
 * loops and their threads, the lists of open connections and every
 * connection count, the resource, and the graceful stop; connections see
 * only the narrow context it lends them (conn.h), handlers only theirs
 * (handler.h).
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

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "cfg.h"
#include "cluster/cluster.h" /* server.c wires cluster mode in */
#include "conn.h"
#include "grants.h"
#include "handler.h"
#include "list.h"
#include "loop.h"
#include "resource.h"
#include "state.h"
#include "stats.h"
#include "tally.h"

struct server;

/* One event loop and everything that is its own. Only its own thread
 * touches it, but for the counts, which /stats reads from anywhere. */
struct worker {
    struct server *srv;
    unsigned id;
    struct loop loop;
    pthread_t thread; /* workers 1..N-1 */
    bool thread_started;
    struct list_node conns;         /* every open connection of this loop */
    struct tally_requests requests; /* bumped by its connections and handlers */
    struct tally_conns tally;       /* this file's alone */
    struct conn_limits limits;      /* its copy: a reload posts new ones */
    uint64_t max_connections;       /* the whole server's, its copy */
    struct handler_ctx handlers;
    struct conn_ctx conn_ctx;
    int listen_fd;
    struct loop_watch *listener;
    struct loop_watch *accept_retry; /* re-enables accepting after EMFILE or the limit */
    bool accept_paused;
    bool draining; /* this loop is stopping: no new requests */
    bool drained;  /* and has no connection left */
    /* Messages from worker 0 (to_worker()), and back (drained_post). */
    struct loop_post drain_post, stop_post, reload_post, drained_post;
};

struct server {
    struct cfg cfg;
    struct resource resource;
    struct state state;      /* --state-file; in use when resource.state points here */
    struct cluster *cluster; /* --etcd; NULL without */
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
    uint64_t open; /* connections open in all workers: atomic, the limit is the server's */
    /* A reload's settings for the workers, under reload_mu. */
    pthread_mutex_t reload_mu;
    struct conn_limits next_limits;
    uint64_t next_max_connections;
    char url[300]; /* http://HOST:PORT, as announced */
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
 * listening line. Returns 0, or a negative errno after printing one line on
 * stderr (-EINVAL: the configuration is at fault). */
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

/* Takes over an accepted, non-blocking socket on worker w's loop: what the
 * listener does with each connection (and the fuzz target with its
 * socketpairs). From w's own thread. */
void server_adopt(struct worker *w, int fd);

#endif
