/* server: listener, connection limit, signals and graceful stop. See
 * server.h.
 *
 * Stopping (SIGINT/SIGTERM): the listening socket closes at once,
 * connections idle between requests close, and requests already read or
 * queued for the lock run to the end with "Connection: close" on their
 * reply. The process exits when the last connection is gone, when the drain
 * deadline passes, or at a second signal. */
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "limits.h"
#include "log.h"

#ifdef HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

#define ACCEPT_RETRY_MS 100 /* pause after EMFILE/ENFILE before accepting again */
#define ACCEPT_BATCH    64  /* connections taken per readiness of the listener */

/* Tells systemd (Type=notify) where we are; nothing without NOTIFY_SOCKET
 * or without libsystemd at build time. */
static void notify(const char *state)
{
#ifdef HAVE_SYSTEMD
    sd_notify(0, state);
#else
    (void)state;
#endif
}

static int64_t ms_to_us(uint64_t ms)
{
    return (int64_t)ms * 1000;
}

/* ---- connections ---- */

static void pause_accepting(struct server *srv)
{
    if (srv->listener && !srv->accept_paused)
        loop_watch_stop(srv->listener);
    srv->accept_paused = true;
}

static void resume_accepting(struct server *srv)
{
    if (srv->listener && srv->accept_paused)
        loop_watch_start(srv->listener, 0);
    srv->accept_paused = false;
}

static void conn_opened(void *owner, struct conn *c)
{
    struct server *srv = owner;
    list_push_back(&srv->conns, conn_node(c));
}

static void conn_lingering(void *owner, struct conn *c, bool on)
{
    struct server *srv = owner;
    (void)c;
    if (on)
        srv->conns_tally.lingering++;
    else
        srv->conns_tally.lingering--;
}

/* Every connection ends here, served or not: the one place that counts
 * it out. */
static void conn_closed(void *owner, struct conn *c, enum tally_end why)
{
    struct server *srv = owner;
    if (c)
        list_remove(conn_node(c));
    srv->conns_tally.ended[why]++;
    srv->conns_tally.active--;
    if (srv->draining && srv->conns_tally.active == 0)
        loop_break(&srv->loop);
    else if (srv->accept_paused && !loop_watch_active(srv->accept_retry))
        resume_accepting(srv); /* back under the limit */
}

void server_adopt(struct server *srv, int fd)
{
    srv->conns_tally.accepted++;
    srv->conns_tally.active++;
    if (conn_accept(&srv->conn_ctx, fd) < 0) {
        conn_refuse(fd);
        close(fd);
        srv->conns_tally.refused++;
        tally_response(&srv->requests, TALLY_NONE, 503);
        conn_closed(srv, NULL, TALLY_END_DONE);
    }
}

/* Out of descriptors (EMFILE/ENFILE) or another accept failure: retrying at
 * once would spin, so pause and try again shortly. */
static void accept_failed(struct server *srv, int err)
{
    if (!srv->accept_paused) /* once per episode, not every retry */
        log_msg(LOG_LEVEL_WARN, "accept failed: %s; pausing %d ms (connections open: %llu)",
                strerror(err), ACCEPT_RETRY_MS, (unsigned long long)srv->conns_tally.active);
    pause_accepting(srv);
    loop_watch_start(srv->accept_retry, ms_to_us(ACCEPT_RETRY_MS));
}

static void on_accept(void *arg)
{
    struct server *srv = arg;
    int one = 1;
    for (int i = 0; i < ACCEPT_BATCH && !srv->accept_paused; i++) {
        int fd = accept4(srv->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno != EAGAIN)
                accept_failed(srv, errno);
            return;
        }
        /* Replies are whole and sent at once: do not let Nagle hold them. */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        server_adopt(srv, fd);
        if (srv->conns_tally.active >= srv->cfg.max_connections)
            pause_accepting(srv); /* resumed by conn_closed() */
    }
}

static void on_accept_retry(void *arg)
{
    struct server *srv = arg;
    if (srv->conns_tally.active < srv->cfg.max_connections)
        resume_accepting(srv);
}

/* ---- stopping ---- */

static void close_listener(struct server *srv)
{
    loop_watch_free(srv->listener);
    srv->listener = NULL;
    if (srv->listen_fd >= 0)
        close(srv->listen_fd);
    srv->listen_fd = -1;
}

static void start_drain(struct server *srv)
{
    notify("STOPPING=1");
    srv->draining = true;
    close_listener(srv);
    list_for_each(n, &srv->conns) conn_drain(conn_of_node(n));
    if (srv->conns_tally.active == 0)
        loop_break(&srv->loop);
    else
        loop_watch_start(srv->drain_timer, ms_to_us(srv->cfg.drain_timeout_ms));
}

static void on_signal(struct server *srv, const char *name)
{
    if (srv->draining) {
        log_msg(LOG_LEVEL_WARN, "%s again: stopping now, %llu connections still open", name,
                (unsigned long long)srv->conns_tally.active);
        loop_break(&srv->loop); /* a second signal: stop now */
        return;
    }
    log_msg(LOG_LEVEL_INFO, "%s: stopping; %llu connections open, %llu queued for the lock", name,
            (unsigned long long)srv->conns_tally.active,
            (unsigned long long)srv->resource.lock.stats.waiters);
    start_drain(srv);
}

static void on_sigint(void *arg)
{
    on_signal(arg, "SIGINT");
}

static void on_sigterm(void *arg)
{
    on_signal(arg, "SIGTERM");
}

static void on_drain_timeout(void *arg)
{
    struct server *srv = arg;
    log_msg(LOG_LEVEL_WARN, "drain deadline (%llu ms) passed with %llu connections open",
            (unsigned long long)srv->cfg.drain_timeout_ms,
            (unsigned long long)srv->conns_tally.active);
    loop_break(&srv->loop);
}

/* ---- reload (SIGHUP) and log reopening (SIGUSR1) ---- */

static struct resource_settings resource_settings(const struct cfg *cfg)
{
    return (struct resource_settings){.delay_ms = cfg->delay_ms,
                                      .jitter_ms = cfg->jitter_ms,
                                      .lock_timeout_ms = cfg->lock_timeout_ms,
                                      .max_waiters = cfg->max_waiters,
                                      .use_lock = !cfg->no_lock};
}

static struct conn_limits conn_limits(const struct cfg *cfg)
{
    return (struct conn_limits){
        .http = {.max_header_bytes = cfg->max_header_bytes,
                 .max_url = cfg->max_header_bytes,
                 .max_headers = (unsigned)cfg->max_headers,
                 .max_body = cfg->max_body},
        .header_timeout_ms = cfg->header_timeout_ms,
        .keepalive_timeout_ms = cfg->keepalive_timeout_ms,
        .send_timeout_ms = cfg->send_timeout_ms,
    };
}

static void keep_for_restart(const char *key, void *arg)
{
    (void)arg;
    log_msg(LOG_LEVEL_WARN,
            "reload: %s changed, but only a restart applies it: keeping the "
            "running value",
            key);
}

/* The access log moves to next's path, or stays where it is if that
 * cannot be opened (then next keeps the old path). */
static void move_access_log(struct server *srv, struct cfg *next)
{
    if (strcmp(next->access_log, srv->cfg.access_log) == 0)
        return;
    int rc = next->access_log[0] ? log_access_open(next->access_log) : 0;
    if (rc < 0) {
        log_msg(LOG_LEVEL_WARN, "reload: cannot open access log %s: %s; keeping %s",
                next->access_log, strerror(-rc),
                srv->cfg.access_log[0] ? srv->cfg.access_log : "none");
        memcpy(next->access_log, srv->cfg.access_log, sizeof(next->access_log));
        return;
    }
    if (!next->access_log[0])
        log_access_close();
    if (next->access_log[0])
        loop_watch_start(srv->log_flush, 1000000);
    else
        loop_watch_stop(srv->log_flush);
}

void server_reload(struct server *srv, struct cfg *next)
{
    unsigned kept = cfg_keep_restart_settings(&srv->cfg, next, keep_for_restart, NULL);
    move_access_log(srv, next);
    log_set_level((enum log_level)next->log_level);
    struct resource_settings rs = resource_settings(next);
    resource_configure(&srv->resource, &rs);
    srv->limits = conn_limits(next); /* new reads and new connections see them */
    srv->cfg = *next;
    if (srv->accept_paused && srv->conns_tally.active < next->max_connections &&
        !loop_watch_active(srv->accept_retry))
        resume_accepting(srv);
    log_msg(LOG_LEVEL_INFO,
            "reload: applied %s; delay %g ms, lock timeout %g ms, max waiters %llu%s",
            next->config_path[0] ? next->config_path : "the flags", next->delay_ms,
            next->lock_timeout_ms, (unsigned long long)next->max_waiters,
            kept ? " (some settings need a restart, see above)" : "");
}

static void on_sighup(void *arg)
{
    struct server *srv = arg;
    struct cfg next;
    if (!srv->reread) {
        log_msg(LOG_LEVEL_WARN, "SIGHUP: nothing to reload from; ignored");
        return;
    }
    if (srv->reread(&next, srv->reread_arg) < 0) {
        log_msg(LOG_LEVEL_ERROR, "reload: %s; nothing changed", cfg_error());
        return;
    }
    server_reload(srv, &next);
}

static void on_sigusr1(void *arg)
{
    (void)arg;
    int rc = log_access_reopen();
    if (rc < 0)
        log_msg(LOG_LEVEL_ERROR,
                "SIGUSR1: cannot reopen access log %s: %s; still writing to the "
                "old file",
                log_access_path(), strerror(-rc));
    else
        log_msg(LOG_LEVEL_INFO, "SIGUSR1: access log reopened");
}

void server_on_reload(struct server *srv, int (*reread)(struct cfg *next, void *arg), void *arg)
{
    srv->reread = reread;
    srv->reread_arg = arg;
}

/* The access log is buffered: written out once a second. */
static void on_log_flush(void *arg)
{
    (void)arg;
    log_access_flush();
}

/* ---- listening ---- */

static int resolve(const struct cfg *cfg, struct sockaddr_storage *ss, socklen_t *len)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res;
    char port[8];
    snprintf(port, sizeof(port), "%u", cfg->port);
    int rc = getaddrinfo(cfg->bind, port, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "turnstile: cannot resolve --bind '%s': %s\n", cfg->bind, gai_strerror(rc));
        return -EINVAL;
    }
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

/* "HOST:PORT" of a bound address, IPv6 in brackets. */
static void format_addr(const struct sockaddr_storage *ss, char *out, size_t cap)
{
    char host[INET6_ADDRSTRLEN];
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const void *)ss;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
        snprintf(out, cap, "[%s]:%u", host, ntohs(a->sin6_port));
    } else {
        const struct sockaddr_in *a = (const void *)ss;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
        snprintf(out, cap, "%s:%u", host, ntohs(a->sin_port));
    }
}

static int open_listener(const struct sockaddr_storage *ss, socklen_t len)
{
    int one = 1;
    int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (const struct sockaddr *)ss, len) != 0 || listen(fd, LIMIT_BACKLOG) != 0) {
        int err = errno;
        close(fd);
        return -err;
    }
    return fd;
}

static int listen_on(struct server *srv)
{
    struct sockaddr_storage ss;
    socklen_t len;
    char addr[INET6_ADDRSTRLEN + 16];
    int rc = resolve(&srv->cfg, &ss, &len);
    if (rc < 0)
        return rc;
    int fd = open_listener(&ss, len);
    if (fd < 0) {
        format_addr(&ss, addr, sizeof(addr));
        fprintf(stderr, "turnstile: cannot listen on %s: %s\n", addr, strerror(-fd));
        return fd;
    }
    len = sizeof(ss);
    getsockname(fd, (struct sockaddr *)&ss, &len); /* the port --port 0 got */
    format_addr(&ss, addr, sizeof(addr));
    snprintf(srv->url, sizeof(srv->url), "http://%s", addr);
    srv->listen_fd = fd;
    /* Accepting waits for the rest of the turn (LOOP_PRIO_LATE): a loop
     * first serves what its open connections have ready, so a flood of
     * new clients cannot starve the ones it already took. */
    srv->listener = loop_watch_fd(&srv->loop, fd, LOOP_PRIO_LATE, on_accept, srv);
    if (!srv->listener || loop_watch_start(srv->listener, 0) != 0)
        return -ENOMEM; /* server_fini() closes fd */
    return 0;
}

/* The daemon's own events. A stop (SIGINT, SIGTERM) is urgent:
 * LOOP_PRIO_IO. A reload, a log reopening and the timers are housekeeping:
 * they run after the turn's work. */
static int make_events(struct server *srv)
{
    struct loop *loop = &srv->loop;
    srv->signals[0] = loop_watch_signal(loop, SIGINT, LOOP_PRIO_IO, on_sigint, srv);
    srv->signals[1] = loop_watch_signal(loop, SIGTERM, LOOP_PRIO_IO, on_sigterm, srv);
    srv->signals[2] = loop_watch_signal(loop, SIGHUP, LOOP_PRIO_LATE, on_sighup, srv);
    srv->signals[3] = loop_watch_signal(loop, SIGUSR1, LOOP_PRIO_LATE, on_sigusr1, srv);
    srv->drain_timer = loop_watch_timer(loop, false, LOOP_PRIO_LATE, on_drain_timeout, srv);
    srv->accept_retry = loop_watch_timer(loop, false, LOOP_PRIO_LATE, on_accept_retry, srv);
    srv->log_flush = loop_watch_timer(loop, true, LOOP_PRIO_LATE, on_log_flush, srv);
    for (int i = 0; i < 4; i++)
        if (!srv->signals[i] || loop_watch_start(srv->signals[i], 0) != 0)
            return -ENOMEM;
    if (!srv->drain_timer || !srv->accept_retry || !srv->log_flush)
        return -ENOMEM;
    if (log_access_enabled())
        loop_watch_start(srv->log_flush, 1000000);
    return 0;
}

/* --state-file: recover the counter, then save every update (state.h). */
static int open_state(struct server *srv)
{
    int rc = state_open(&srv->state, srv->cfg.state_file, &srv->resource.counter);
    if (rc < 0)
        return rc;
    rc = state_start(&srv->state, &srv->loop);
    if (rc < 0) {
        state_close(&srv->state);
        return rc;
    }
    srv->resource.state = &srv->state;
    return 0;
}

/* --etcd: the counter and the lock live in etcd (cluster.h). Refused with
 * --state-file (etcd keeps the counter) and --no-lock (a demonstration of
 * one process). */
static int open_cluster(struct server *srv)
{
    const struct cfg *cfg = &srv->cfg;
    if (cfg->state_file[0] || cfg->no_lock) {
        fprintf(stderr, "turnstile: --etcd does not go with --%s: etcd keeps the counter\n",
                cfg->state_file[0] ? "state-file" : "no-lock");
        return -EINVAL;
    }
    struct cluster_settings cs = {.endpoints = cfg->etcd,
                                  .name = cfg->cluster,
                                  .lease_ttl_ms = (int64_t)cfg->lease_ttl_ms,
                                  .call_ms = LIMIT_ETCD_CALL_MS};
    int rc = cluster_open(&srv->cluster, &cs);
    if (rc == -EINVAL) {
        fprintf(stderr,
                "turnstile: --etcd '%s' / --cluster '%s': expected http://IP:PORT[,...] (at most "
                "%d) and a name of letters, digits, '-', '_', '.'\n",
                cfg->etcd, cfg->cluster, ETCD_MAX_ENDPOINTS);
        return rc;
    }
    if (rc == 0)
        rc = cluster_attach(srv->cluster, &srv->loop);
    if (rc < 0)
        return rc;
    srv->resource.cluster = srv->cluster;
    log_msg(LOG_LEVEL_INFO, "cluster mode: etcd %s, keys /turnstile/%s/", cfg->etcd, cfg->cluster);
    return 0;
}

/* What connections and handlers see of the server: set up once. */
static void lend_contexts(struct server *srv)
{
    const struct cfg *cfg = &srv->cfg;
    srv->limits = (struct conn_limits){
        .http = {.max_header_bytes = cfg->max_header_bytes,
                 .max_url = cfg->max_header_bytes,
                 .max_headers = (unsigned)cfg->max_headers,
                 .max_body = cfg->max_body},
        .header_timeout_ms = cfg->header_timeout_ms,
        .keepalive_timeout_ms = cfg->keepalive_timeout_ms,
        .send_timeout_ms = cfg->send_timeout_ms,
    };
    srv->stats = (struct stats_source){.resource = &srv->resource,
                                       .requests = &srv->requests,
                                       .conns = &srv->conns_tally,
                                       .grants = &srv->grants,
                                       .draining = &srv->draining,
                                       .started_us = loop_now_us()};
    srv->handlers = (struct handler_ctx){.resource = &srv->resource,
                                         .tally = &srv->requests,
                                         .grants = &srv->grants,
                                         .stats = &srv->stats};
    srv->conn_ctx = (struct conn_ctx){.loop = &srv->loop,
                                      .limits = &srv->limits,
                                      .handlers = &srv->handlers,
                                      .tally = &srv->requests,
                                      .draining = &srv->draining,
                                      .opened = conn_opened,
                                      .closed = conn_closed,
                                      .lingering = conn_lingering,
                                      .owner = srv};
}

int server_init(struct server *srv, const struct cfg *cfg)
{
    *srv = (struct server){.cfg = *cfg, .listen_fd = -1};
    list_init(&srv->conns);
    lend_contexts(srv);
    /* Keep idle stacks for every connection the limit allows: reuse, no mmap. */
    int rc = loop_init(&srv->loop, 0, (unsigned)cfg->max_connections);
    if (rc < 0) {
        fprintf(stderr, "turnstile: cannot start the event loop: %s\n", strerror(-rc));
        return rc;
    }
    struct resource_settings rs = {.delay_ms = cfg->delay_ms,
                                   .jitter_ms = cfg->jitter_ms,
                                   .lock_timeout_ms = cfg->lock_timeout_ms,
                                   .max_waiters = cfg->max_waiters,
                                   .use_lock = !cfg->no_lock};
    resource_init(&srv->resource, &rs);
    if (cfg->state_file[0]) {
        rc = open_state(srv);
        if (rc < 0)
            return rc;
    }
    if (cfg->etcd[0]) {
        rc = open_cluster(srv);
        if (rc < 0)
            return rc;
    }
    return make_events(srv);
}

/* Each connection is a descriptor: lift the soft limit (often 1024) toward
 * the hard one so --max-connections is reachable. Past what the system
 * allows, accept fails with EMFILE and the listener pauses. */
static void raise_fd_limit(uint64_t max_connections)
{
    struct rlimit rl;
    rlim_t want = (rlim_t)max_connections + 64; /* listener, epoll, timerfd, stdio... */
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= want)
        return;
    rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ? want : rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
}

int server_start(struct server *srv, const struct cfg *cfg)
{
    raise_fd_limit(cfg->max_connections);
    int rc = server_init(srv, cfg);
    if (rc == 0)
        rc = listen_on(srv);
    if (rc < 0)
        return rc;
    printf("turnstile listening on %s\n", srv->url);
    fflush(stdout);
    notify("READY=1");
    return 0;
}

int server_run(struct server *srv)
{
    return loop_run(&srv->loop);
}

int server_fini(struct server *srv)
{
    /* First, while the loop still exists: the writer saves the last
     * update, and its watch goes. */
    int rc = srv->resource.state ? state_close(srv->resource.state) : 0;
    if (srv->cluster) { /* its keys go with its lease, revoked here */
        cluster_detach(srv->cluster, &srv->loop);
        cluster_close(srv->cluster);
        srv->resource.cluster = srv->cluster = NULL;
    }
    close_listener(srv);
    for (int i = 0; i < 4; i++)
        loop_watch_free(srv->signals[i]);
    loop_watch_free(srv->drain_timer);
    loop_watch_free(srv->accept_retry);
    loop_watch_free(srv->log_flush);
    /* Connections still open (a forced stop) keep their coroutines: the
     * process is about to exit, and their stacks go with it. */
    if (srv->conns_tally.active == 0)
        loop_fini(&srv->loop);
    return rc;
}
