/* worker: one event loop and everything that is its own: its listening
 * socket and the accepting (paused at the connection limit or out of
 * descriptors, and looked at again shortly), its open connections and
 * their counts, its part of the graceful stop, and the limits a reload
 * posts to it. Only its own thread touches a worker, but for the counts,
 * which /stats reads from anywhere.
 *
 * What the workers of one server share is a struct worker_shared, owned by
 * the server (server.h), which starts, stops and reloads them through the
 * loop_posts below (from worker 0's thread; see to_worker() in server.c). */
#ifndef TURNSTILE_WORKER_H
#define TURNSTILE_WORKER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "conn.h"
#include "handler.h"
#include "list.h"
#include "loop.h"
#include "tally.h"

struct worker_shared {
    unsigned nworkers;
    uint64_t open;     /* connections open in all workers: atomic, the limit is the server's */
    struct loop *home; /* worker 0's loop, where drained workers report */
    /* Runs on home's thread each time a worker has no connection left. */
    void (*drained)(void *arg);
    void *drained_arg;
    /* The limits every worker applies: at its start, and after each reload
     * (worker->reload_post), under reload_mu. */
    pthread_mutex_t reload_mu;
    struct conn_limits next_limits;
    uint64_t next_max_connections;
};

struct worker {
    struct worker_shared *shared;
    unsigned id;
    struct loop loop;
    pthread_t thread; /* workers 1..N-1: the server's to start and join */
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
    /* Posted by worker 0 to stop accepting and finish (drain), to end the
     * loop now (stop), to take shared->next_limits (reload); and by this
     * worker to worker 0 when drained. */
    struct loop_post drain_post, stop_post, reload_post, drained_post;
};

/* Sets up worker id of shared->nworkers: its loop (keeping idle stacks for
 * its share of the connection limit), the limits of shared, and the
 * handlers' context (handlers, with this worker's request counts). Not
 * listening yet. Returns 0, or a negative errno after one line on stderr. */
int worker_init(struct worker *w, unsigned id, struct worker_shared *shared,
                const struct handler_ctx *handlers);

/* Accepts the connections of a bound, listening, non-blocking socket,
 * which the worker now owns (worker_fini() closes it, whatever this
 * returns). Returns 0 or -ENOMEM. */
int worker_listen(struct worker *w, int fd);

/* Takes over an accepted, non-blocking socket: what the listener does with
 * each connection (and the fuzz target with its socketpairs). From w's
 * own thread. */
void worker_adopt(struct worker *w, int fd);

/* Connections open in all the workers of shared, from any thread. */
uint64_t worker_open(const struct worker_shared *shared);

/* Closes the listener; the loop itself only if no connection is left (a
 * forced stop leaves their coroutines to the process's exit). */
void worker_fini(struct worker *w);

#endif
