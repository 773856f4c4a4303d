/* server: the daemon. It owns the listening socket, the signals, the list
 * of open connections and every connection count, the resource, and the
 * graceful stop; connections see only the narrow context it lends them
 * (conn.h), handlers only theirs (handler.h). */
#ifndef TURNSTILE_SERVER_H
#define TURNSTILE_SERVER_H

#include <stdbool.h>
#include <stdint.h>

#include "cfg.h"
#include "conn.h"
#include "grants.h"
#include "handler.h"
#include "list.h"
#include "loop.h"
#include "resource.h"
#include "state.h"
#include "stats.h"
#include "tally.h"

struct server {
    struct cfg cfg;
    struct loop loop;
    struct resource resource;
    struct state state;      /* --state-file; in use when resource.state points here */
    struct cluster *cluster; /* --etcd; NULL without */
    struct grants grants;
    struct tally_requests requests; /* bumped by connections and handlers */
    struct tally_conns conns_tally; /* this file's alone */
    struct list_node conns;         /* every open connection */
    /* What the parts below see. */
    struct conn_limits limits;
    struct handler_ctx handlers;
    struct conn_ctx conn_ctx;
    struct stats_source stats;
    /* The daemon's own events. */
    int listen_fd;
    struct loop_watch *listener;
    struct loop_watch *signals[4]; /* SIGINT, SIGTERM, SIGHUP, SIGUSR1 */
    struct loop_watch *drain_timer;
    struct loop_watch *accept_retry; /* re-enables accepting after EMFILE */
    struct loop_watch *log_flush;    /* writes the buffered access log each second */
    bool draining;                   /* stopping: no new requests */
    bool accept_paused;              /* at the connection limit, or after EMFILE */
    char url[300];                   /* http://HOST:PORT, as announced */
    /* How a reload reads the configuration anew (server_on_reload). */
    int (*reread)(struct cfg *next, void *arg);
    void *reread_arg;
};

/* Sets up the loop, the resource (recovering the counter from
 * --state-file) and the signal handlers, without listening (the fuzz target
 * feeds connections itself). Returns 0 or a negative errno (-EINVAL: the
 * configuration is at fault, after one line on stderr). */
int server_init(struct server *srv, const struct cfg *cfg);
/* server_init(), then binds and listens as cfg says and prints the
 * listening line. Returns 0, or a negative errno after printing one line on
 * stderr (-EINVAL: the configuration is at fault). */
int server_start(struct server *srv, const struct cfg *cfg);
/* Serves until stopped by a signal and drained. */
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

/* Applies next as a reload does (server_on_reload); for tests and SIGHUP. */
void server_reload(struct server *srv, struct cfg *next);

/* Takes over an accepted, non-blocking socket: what the listener does
 * with each connection (and the fuzz target with its socketpairs). */
void server_adopt(struct server *srv, int fd);

#endif
