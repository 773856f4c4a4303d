/* server: the daemon's state, its listener, signals and graceful stop. */
#ifndef TURNSTILE_SERVER_H
#define TURNSTILE_SERVER_H

#include <stdbool.h>
#include <stdint.h>

#include "cfg.h"
#include "http.h"
#include "loop.h"
#include "resource.h"
#include "state.h"
#include "stats.h"

struct conn;
struct event;
struct evconnlistener;

struct server {
    struct cfg cfg;
    struct loop loop;
    struct resource resource;
    struct state state; /* --state-file; in use when resource.state points here */
    struct http_limits http_limits;
    struct server_stats stats;
    struct evconnlistener *listener;
    struct event *signals[2];
    struct event *drain_timer;
    struct event *accept_retry; /* re-enables accepting after EMFILE */
    struct event *log_flush;    /* writes the buffered access log each second */
    struct conn *conns;         /* every open connection */
    bool draining;              /* stopping: no new requests */
    bool accept_paused;         /* at the connection limit, or after EMFILE */
    char url[300];              /* http://HOST:PORT, as announced */
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

/* Called by conn when a connection closes. */
void server_conn_closed(struct server *srv);

#endif
