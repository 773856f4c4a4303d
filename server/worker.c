/* worker: one event loop's accepting, connections and stop. See worker.h.
 *
 * The connection limit is the whole server's: a worker reserves a place in
 * shared->open before it accepts, so that workers accepting at once cannot
 * together pass it, and gives the place back when the connection ends.
 * At the limit, or out of descriptors, the listener pauses and looks again
 * ACCEPT_RETRY_MS later (a connection of another worker may be the one
 * that closes). */
#include "worker.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"

#define ACCEPT_RETRY_MS 100 /* pause after EMFILE/ENFILE or at the limit, then look again */
#define ACCEPT_BATCH    64  /* connections taken per readiness of the listener */

uint64_t worker_open(const struct worker_shared *shared)
{
    return __atomic_load_n(&shared->open, __ATOMIC_RELAXED);
}

static bool reserve(struct worker *w)
{
    if (__atomic_add_fetch(&w->shared->open, 1, __ATOMIC_RELAXED) <= w->max_connections)
        return true;
    __atomic_sub_fetch(&w->shared->open, 1, __ATOMIC_RELAXED);
    return false;
}

static void unreserve(struct worker *w)
{
    __atomic_sub_fetch(&w->shared->open, 1, __ATOMIC_RELAXED);
}

/* ---- accepting ---- */

static void pause_accepting(struct worker *w)
{
    if (w->listener && !w->accept_paused)
        loop_watch_stop(w->listener);
    w->accept_paused = true;
}

static void resume_accepting(struct worker *w)
{
    if (w->listener && w->accept_paused)
        loop_watch_start(w->listener, 0);
    w->accept_paused = false;
}

/* At the connection limit: pause, and look again shortly (a connection of
 * another worker may be the one that closes). */
static void pause_at_limit(struct worker *w)
{
    pause_accepting(w);
    loop_watch_start(w->accept_retry, loop_ms_to_us(ACCEPT_RETRY_MS));
}

static void on_accept_retry(void *arg)
{
    struct worker *w = arg;
    if (w->draining)
        return;
    if (worker_open(w->shared) < w->max_connections)
        resume_accepting(w);
    else
        pause_at_limit(w);
}

/* ---- connections ---- */

static void conn_opened(void *owner, struct conn *c)
{
    struct worker *w = owner;
    list_push_back(&w->conns, conn_node(c));
}

static void conn_lingering(void *owner, struct conn *c, bool on)
{
    struct worker *w = owner;
    (void)c;
    tally_add(&w->tally.lingering, on ? 1 : -1);
}

static void check_drained(struct worker *w);

/* Every connection ends here, served or not: the one place that counts
 * it out. */
static void conn_closed(void *owner, struct conn *c, enum tally_end why)
{
    struct worker *w = owner;
    if (c)
        list_remove(conn_node(c));
    tally_add(&w->tally.ended[why], 1);
    tally_add(&w->tally.active, -1);
    unreserve(w);
    if (w->draining)
        check_drained(w);
    else if (w->accept_paused && !loop_watch_active(w->accept_retry))
        resume_accepting(w); /* back under the limit */
}

/* A connection whose place is reserved. */
static void adopt(struct worker *w, int fd)
{
    tally_add(&w->tally.accepted, 1);
    tally_add(&w->tally.active, 1);
    if (conn_accept(&w->conn_ctx, fd) < 0) {
        conn_refuse(fd);
        close(fd);
        tally_add(&w->tally.refused, 1);
        tally_response(&w->requests, TALLY_NONE, 503);
        conn_closed(w, NULL, TALLY_END_DONE);
    }
}

void worker_adopt(struct worker *w, int fd)
{
    __atomic_add_fetch(&w->shared->open, 1, __ATOMIC_RELAXED);
    adopt(w, fd);
}

/* Out of descriptors (EMFILE/ENFILE) or another accept failure: retrying at
 * once would spin, so pause and try again shortly. */
static void accept_failed(struct worker *w, int err)
{
    if (!w->accept_paused) /* once per episode, not every retry */
        log_msg(LOG_LEVEL_WARN, "accept failed: %s; pausing %d ms (connections open: %llu)",
                strerror(err), ACCEPT_RETRY_MS, (unsigned long long)worker_open(w->shared));
    pause_accepting(w);
    loop_watch_start(w->accept_retry, loop_ms_to_us(ACCEPT_RETRY_MS));
}

static void on_accept(void *arg)
{
    struct worker *w = arg;
    int one = 1;
    for (int i = 0; i < ACCEPT_BATCH && !w->accept_paused; i++) {
        if (!reserve(w)) {
            pause_at_limit(w);
            return;
        }
        int fd = accept4(w->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            int err = errno;
            unreserve(w);
            if (err == EINTR || err == ECONNABORTED)
                continue;
            if (err != EAGAIN)
                accept_failed(w, err);
            return;
        }
        /* Replies are whole and sent at once: do not let Nagle hold them. */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        adopt(w, fd);
    }
}

/* ---- stopping ---- */

static void close_listener(struct worker *w)
{
    loop_watch_free(w->listener);
    w->listener = NULL;
    if (w->listen_fd >= 0)
        close(w->listen_fd);
    w->listen_fd = -1;
}

/* A draining worker with no connection left is done: it tells worker 0,
 * and its own loop ends (worker 0's goes on until every worker is done,
 * to keep serving signals and the deadline). */
static void check_drained(struct worker *w)
{
    if (w->drained || __atomic_load_n(&w->tally.active, __ATOMIC_RELAXED) > 0)
        return;
    w->drained = true;
    if (w->id == 0) {
        w->shared->drained(w->shared->drained_arg);
        return;
    }
    loop_post(w->shared->home, &w->drained_post);
    loop_break(&w->loop);
}

static void drain_worker(void *arg)
{
    struct worker *w = arg;
    w->draining = true;
    close_listener(w);
    loop_watch_stop(w->accept_retry);
    list_for_each(n, &w->conns) conn_drain(conn_of_node(n));
    check_drained(w);
}

static void stop_worker(void *arg)
{
    struct worker *w = arg;
    loop_break(&w->loop);
}

/* ---- reload ---- */

/* On each worker: the new limits for its next reads and connections. */
static void apply_reload(void *arg)
{
    struct worker *w = arg;
    struct worker_shared *s = w->shared;
    pthread_mutex_lock(&s->reload_mu);
    w->limits = s->next_limits;
    w->max_connections = s->next_max_connections;
    pthread_mutex_unlock(&s->reload_mu);
    if (w->accept_paused && !w->draining && !loop_watch_active(w->accept_retry))
        on_accept_retry(w);
}

/* ---- the worker ---- */

/* Its loop keeps idle stacks for its share of the connection limit:
 * reuse, no mmap, and no loop hoarding what the others need. */
static int start_loop(struct worker *w)
{
    unsigned n = w->shared->nworkers;
    unsigned share = (unsigned)(w->max_connections / n);
    int rc = loop_init(&w->loop, 0, share ? share : 1);
    if (rc == 0 && n > 1)
        rc = loop_open_inbox(&w->loop);
    w->accept_retry = loop_watch_timer(&w->loop, false, LOOP_PRIO_LATE, on_accept_retry, w);
    if (rc == 0 && !w->accept_retry)
        rc = -ENOMEM;
    if (rc < 0)
        fprintf(stderr, "turnstile: cannot start an event loop: %s\n", strerror(-rc));
    return rc;
}

int worker_init(struct worker *w, unsigned id, struct worker_shared *shared,
                const struct handler_ctx *handlers)
{
    *w = (struct worker){.shared = shared,
                         .id = id,
                         .listen_fd = -1,
                         .limits = shared->next_limits,
                         .max_connections = shared->next_max_connections};
    list_init(&w->conns);
    w->drain_post = (struct loop_post){.fn = drain_worker, .arg = w};
    w->stop_post = (struct loop_post){.fn = stop_worker, .arg = w};
    w->reload_post = (struct loop_post){.fn = apply_reload, .arg = w};
    w->drained_post = (struct loop_post){.fn = shared->drained, .arg = shared->drained_arg};
    int rc = start_loop(w);
    if (rc < 0)
        return rc;
    w->handlers = *handlers;
    w->handlers.tally = &w->requests;
    w->conn_ctx = (struct conn_ctx){.loop = &w->loop,
                                    .limits = &w->limits,
                                    .handlers = &w->handlers,
                                    .tally = &w->requests,
                                    .draining = &w->draining,
                                    .opened = conn_opened,
                                    .closed = conn_closed,
                                    .lingering = conn_lingering,
                                    .owner = w};
    return 0;
}

/* Accepting waits for the rest of the turn (LOOP_PRIO_LATE): a loop first
 * serves what its open connections have ready, so a flood of new clients
 * cannot starve the ones it already took. */
int worker_listen(struct worker *w, int fd)
{
    w->listen_fd = fd;
    w->listener = loop_watch_fd(&w->loop, fd, LOOP_PRIO_LATE, on_accept, w);
    if (!w->listener || loop_watch_start(w->listener, 0) != 0)
        return -ENOMEM; /* worker_fini() closes fd */
    return 0;
}

void worker_fini(struct worker *w)
{
    close_listener(w);
    loop_watch_free(w->accept_retry);
    /* Connections still open (a forced stop) keep their coroutines: the
     * process is about to exit, and their stacks go with it. */
    if (w->tally.active == 0)
        loop_fini(&w->loop);
}
