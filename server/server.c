/* server: the daemon around its workers: listening sockets, threads,
 * signals, reload and the graceful stop. See server.h (and worker.c for
 * what each worker does on its own loop).
 *
 * Stopping (SIGINT/SIGTERM): every worker closes its listening socket at
 * once, closes its connections idle between requests, and lets requests
 * already read or queued for the lock run to the end with "Connection:
 * close" on their reply. A worker with no connection left tells worker 0;
 * the process exits when every worker is done, when the drain deadline
 * passes, or at a second signal.
 *
 * Worker 0 (the caller's thread) runs the daemon's own events and talks to
 * the others only through their loops' inboxes (to_worker()), so every
 * worker's fields are touched by its own thread alone. */
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cluster/cluster.h" /* open_cluster wires cluster mode in */
#include "cluster/etcd_secure.h"
#include "limits.h"
#include "log.h"
#include "opt.h"
#include "route.h"

#ifdef HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

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

/* cluster_settings.notify: the cluster's readiness is the server's. */
static void notify_cluster(void *arg, const char *state)
{
    (void)arg;
    notify(state);
}

/* Runs post on worker w, from worker 0 (whose thread the daemon's events
 * run on): at once for worker 0 itself, else through w's inbox. */
static void to_worker(struct worker *w, struct loop_post *post)
{
    if (w->id == 0)
        post->fn(post->arg);
    else
        loop_post(&w->loop, post);
}

/* ---- stopping ---- */

/* On worker 0: one more worker has nothing left; the last one ends the
 * run. */
static void on_worker_drained(void *arg)
{
    struct server *srv = arg;
    log_msg(LOG_LEVEL_DEBUG, "stop: %u of %u workers drained", srv->drained + 1, srv->nworkers);
    if (++srv->drained == srv->nworkers)
        loop_break(&srv->workers[0].loop);
}

/* Now, drained or not: the deadline passed, or a second signal came. */
static void stop_all(struct server *srv)
{
    for (unsigned i = 0; i < srv->nworkers; i++)
        to_worker(&srv->workers[i], &srv->workers[i].stop_post);
}

static void start_drain(struct server *srv)
{
    notify("STOPPING=1");
    log_msg(LOG_LEVEL_DEBUG, "stop: draining %u workers, deadline in %llu ms", srv->nworkers,
            (unsigned long long)srv->cfg.drain_timeout_ms);
    __atomic_store_n(&srv->draining, true, __ATOMIC_RELAXED);
    loop_watch_start(srv->drain_timer, loop_ms_to_us(srv->cfg.drain_timeout_ms));
    for (unsigned i = 0; i < srv->nworkers; i++)
        to_worker(&srv->workers[i], &srv->workers[i].drain_post);
}

static void on_signal(struct server *srv, const char *name)
{
    if (srv->draining) {
        log_msg(LOG_LEVEL_WARN, "%s again: stopping now, %llu connections still open", name,
                (unsigned long long)worker_open(&srv->shared));
        stop_all(srv); /* a second signal: stop now */
        return;
    }
    struct lock_stats ls;
    bool locked;
    resource_lock_stats(&srv->resource, &ls, &locked); /* the cluster's queue in cluster mode */
    log_msg(LOG_LEVEL_INFO, "%s: stopping; %llu connections open, %llu queued for the lock", name,
            (unsigned long long)worker_open(&srv->shared), (unsigned long long)ls.waiters);
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
            (unsigned long long)worker_open(&srv->shared));
    stop_all(srv);
}

/* ---- reload (SIGHUP) and log reopening (SIGUSR1) ---- */

static struct resource_settings resource_settings(const struct cfg *cfg)
{
    return (struct resource_settings){.delay_ms = cfg->delay_ms,
                                      .jitter_ms = cfg->jitter_ms,
                                      .lock_timeout_ms = cfg->lock_timeout_ms,
                                      .max_waiters = cfg->max_waiters,
                                      .idem_retention_ms = cfg->idem_retention_ms,
                                      .idem_max_keys = cfg->idem_max_keys,
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
    pthread_mutex_lock(&srv->shared.reload_mu);
    srv->shared.next_limits = conn_limits(next);
    srv->shared.next_max_connections = next->max_connections;
    pthread_mutex_unlock(&srv->shared.reload_mu);
    for (unsigned i = 0; i < srv->nworkers; i++)
        to_worker(&srv->workers[i], &srv->workers[i].reload_post);
    srv->cfg = *next;
    log_msg(LOG_LEVEL_INFO,
            "reload: applied %s; delay %g ms, lock timeout %g ms, max waiters %llu%s",
            next->config_path[0] ? next->config_path : "the flags", next->delay_ms,
            next->lock_timeout_ms, (unsigned long long)next->max_waiters,
            kept ? " (some settings need a restart, see above)" : "");
}

/* The certificates, key and password file of a secured etcd, read again
 * whatever the configuration says: a rotated certificate needs no restart. */
static void reload_etcd_secure(struct server *srv)
{
    char why[ETCD_SECURE_WHY_CAP];
    if (!srv->etcd_secure)
        return;
    if (etcd_secure_reload(srv->etcd_secure, why, sizeof(why)) < 0)
        log_msg(LOG_LEVEL_ERROR, "reload: %s; the etcd connections keep the old files", why);
    else
        log_msg(LOG_LEVEL_INFO, "reload: etcd's certificates and password read again; the next "
                                "connection uses them");
}

static void on_sighup(void *arg)
{
    struct server *srv = arg;
    struct cfg next;
    reload_etcd_secure(srv);
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
                "SIGUSR1: cannot reopen access log %s: %s; still writing to the old file",
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

/* host and port_num as a socket address; flag names the setting they
 * came from, for the error line. */
static int resolve(const char *flag, const char *host, unsigned port_num,
                   struct sockaddr_storage *ss, socklen_t *len)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res;
    char port[8];
    snprintf(port, sizeof(port), "%u", port_num);
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "turnstile: cannot resolve --%s '%s': %s\n", flag, host, gai_strerror(rc));
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

/* reuseport: one socket per worker on the same address, the kernel
 * spreading connections over them (no thundering herd, no shared accept
 * queue to fight over). */
static int open_listener(const struct sockaddr_storage *ss, socklen_t len, bool reuseport)
{
    int one = 1;
    int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (reuseport)
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    if (bind(fd, (const struct sockaddr *)ss, len) != 0 || listen(fd, LIMIT_BACKLOG) != 0) {
        int err = errno;
        close(fd);
        return -err;
    }
    return fd;
}

static int listen_all(struct server *srv)
{
    struct sockaddr_storage ss;
    socklen_t len;
    char addr[INET6_ADDRSTRLEN + 16];
    int rc = resolve("bind", srv->cfg.bind, srv->cfg.port, &ss, &len);
    if (rc < 0)
        return rc;
    for (unsigned i = 0; i < srv->nworkers; i++) {
        int fd = open_listener(&ss, len, srv->nworkers > 1);
        if (fd < 0) {
            format_addr(&ss, addr, sizeof(addr));
            fprintf(stderr, "turnstile: cannot listen on %s: %s\n", addr, strerror(-fd));
            return fd;
        }
        len = sizeof(ss);
        getsockname(fd, (struct sockaddr *)&ss, &len); /* the others take the port the first got */
        rc = worker_listen(&srv->workers[i], WORKER_PUBLIC, fd);
        if (rc < 0)
            return rc;
    }
    format_addr(&ss, addr, sizeof(addr));
    snprintf(srv->url, sizeof(srv->url), "http://%s", addr);
    return 0;
}

/* --admin-listen: one socket, on worker 0 (the internals are light work:
 * no reason to spread them), whose connections see every route. */
static int listen_admin(struct server *srv)
{
    struct sockaddr_storage ss;
    socklen_t len;
    char host[OPT_STR_SIZE], addr[INET6_ADDRSTRLEN + 16];
    unsigned port;
    if (!srv->cfg.admin_listen[0])
        return 0;
    opt_split_addr(srv->cfg.admin_listen, host, sizeof(host), &port); /* checked by cfg */
    int rc = resolve("admin-listen", host, port, &ss, &len);
    if (rc < 0)
        return rc;
    int fd = open_listener(&ss, len, false);
    if (fd < 0) {
        format_addr(&ss, addr, sizeof(addr));
        fprintf(stderr, "turnstile: cannot listen on %s (--admin-listen): %s\n", addr,
                strerror(-fd));
        return fd;
    }
    len = sizeof(ss);
    getsockname(fd, (struct sockaddr *)&ss, &len); /* port 0: the one it got */
    format_addr(&ss, addr, sizeof(addr));
    snprintf(srv->admin_url, sizeof(srv->admin_url), "http://%s", addr);
    return worker_listen(&srv->workers[0], WORKER_ADMIN, fd);
}

/* The daemon's own events, on worker 0. A stop (SIGINT, SIGTERM) is
 * urgent: LOOP_PRIO_IO. A reload, a log reopening and the timers are
 * housekeeping: they run after the turn's work. */
static int make_events(struct server *srv)
{
    struct loop *loop = &srv->workers[0].loop;
    srv->signals[0] = loop_watch_signal(loop, SIGINT, LOOP_PRIO_IO, on_sigint, srv);
    srv->signals[1] = loop_watch_signal(loop, SIGTERM, LOOP_PRIO_IO, on_sigterm, srv);
    srv->signals[2] = loop_watch_signal(loop, SIGHUP, LOOP_PRIO_LATE, on_sighup, srv);
    srv->signals[3] = loop_watch_signal(loop, SIGUSR1, LOOP_PRIO_LATE, on_sigusr1, srv);
    srv->drain_timer = loop_watch_timer(loop, false, LOOP_PRIO_LATE, on_drain_timeout, srv);
    srv->log_flush = loop_watch_timer(loop, true, LOOP_PRIO_LATE, on_log_flush, srv);
    for (int i = 0; i < 4; i++)
        if (!srv->signals[i] || loop_watch_start(srv->signals[i], 0) != 0)
            return -ENOMEM;
    if (!srv->drain_timer || !srv->log_flush)
        return -ENOMEM;
    if (log_access_enabled())
        loop_watch_start(srv->log_flush, 1000000);
    return 0;
}

/* --state-file: recover the counter, then save every update (state.h). Its
 * rounds are watched on worker 0; its waiters may be on any worker. */
static int open_state(struct server *srv)
{
    uint64_t counter;
    int rc = state_open(&srv->state, srv->cfg.state_file, &counter);
    if (rc < 0)
        return rc;
    resource_set_counter(&srv->resource, counter);
    resource_recover_keys(&srv->resource, &srv->state);
    rc = state_start(&srv->state, &srv->workers[0].loop);
    if (rc < 0) {
        state_close(&srv->state);
        return rc;
    }
    srv->resource.state = &srv->state;
    return 0;
}

/* --etcd: the counter and the lock live in etcd (cluster.h). Refused with
 * --state-file (etcd keeps the counter) and --no-lock (a demonstration of
 * one process's race: every write in etcd is fenced by the cluster's
 * queue, so there is no unlocked write to show). Each worker attaches its loop on its own thread
 * (see worker_main); worker 0's, attached first, keeps the lease. */
/* The files of a secured etcd, read now: one that cannot be used is a
 * configuration error. The endpoints' scheme is checked by cluster_open(). */
static int open_etcd_secure(struct server *srv)
{
    const struct cfg *cfg = &srv->cfg;
    struct etcd_secure_files f = {.cacert = cfg->etcd_cacert,
                                  .cert = cfg->etcd_cert,
                                  .key = cfg->etcd_key,
                                  .user = cfg->etcd_user,
                                  .password_file = cfg->etcd_password_file};
    char why[ETCD_SECURE_WHY_CAP];
    bool https = strncmp(cfg->etcd, "https://", strlen("https://")) == 0;
    int rc = etcd_secure_new(&srv->etcd_secure, &f, https, why, sizeof(why));
    if (rc < 0)
        fprintf(stderr, "turnstile: %s\n", why);
    return rc == -ENOMEM ? rc : rc < 0 ? -EINVAL : 0;
}

static int open_cluster(struct server *srv)
{
    const struct cfg *cfg = &srv->cfg;
    if (cfg->state_file[0] || cfg->no_lock) {
        fprintf(stderr, "turnstile: --etcd does not go with --%s\n",
                cfg->state_file[0] ? "state-file: etcd keeps the counter"
                                   : "no-lock: every write in etcd is fenced by the cluster's "
                                     "queue; --no-lock shows one process's race");
        return -EINVAL;
    }
    int rc = open_etcd_secure(srv);
    if (rc < 0)
        return rc;
    struct cluster_settings cs = {.endpoints = cfg->etcd,
                                  .name = cfg->cluster,
                                  .lease_ttl_ms = (int64_t)cfg->lease_ttl_ms,
                                  .call_ms = LIMIT_ETCD_CALL_MS,
                                  .compact_ms = (int64_t)cfg->compact_interval_ms,
                                  .notify = notify_cluster,
                                  .secure = srv->etcd_secure};
    rc = cluster_open(&srv->cluster, &cs);
    if (rc == -EINVAL) {
        fprintf(stderr,
                "turnstile: --etcd '%s' / --cluster '%s': expected http://IP:PORT[,...] or "
                "https://IP:PORT[,...] (at most %d, not a mix) and a name of letters, digits, "
                "'-', '_', '.'\n",
                cfg->etcd, cfg->cluster, ETCD_MAX_ENDPOINTS);
        return rc;
    }
    if (rc == 0)
        rc = cluster_attach(srv->cluster, &srv->workers[0].loop);
    if (rc < 0)
        return rc;
    srv->resource.cluster = srv->cluster;
    log_msg(LOG_LEVEL_INFO, "cluster mode: etcd %s, keys /turnstile/%s/", cfg->etcd, cfg->cluster);
    return 0;
}

/* ---- workers ---- */

static unsigned worker_count(const struct cfg *cfg)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    return cfg->threads ? cfg->threads : cores > 0 ? (unsigned)cores : 1;
}

static int alloc_workers(struct server *srv)
{
    srv->nworkers = worker_count(&srv->cfg);
    srv->workers = calloc(srv->nworkers, sizeof(*srv->workers));
    srv->requests = calloc(srv->nworkers, sizeof(*srv->requests));
    srv->conns_tallies = calloc(srv->nworkers, sizeof(*srv->conns_tallies));
    if (srv->workers && srv->requests && srv->conns_tallies)
        return 0;
    fprintf(stderr, "turnstile: cannot start: %s\n", strerror(ENOMEM));
    return -ENOMEM;
}

/* What the workers share: the connection count and limit, worker 0 to
 * report to, a reload's limits. */
static void share(struct server *srv)
{
    srv->shared = (struct worker_shared){.nworkers = srv->nworkers,
                                         .admin_port = srv->cfg.admin_listen[0] != '\0',
                                         .home = &srv->workers[0].loop,
                                         .drained = on_worker_drained,
                                         .drained_arg = srv,
                                         .next_limits = conn_limits(&srv->cfg),
                                         .next_max_connections = srv->cfg.max_connections};
    pthread_mutex_init(&srv->shared.reload_mu, NULL);
}

/* Every worker, each with the handlers' context; /stats reads the counts
 * of each. */
static int init_workers(struct server *srv)
{
    const struct handler_ctx handlers = {
        .resource = &srv->resource, .grants = &srv->grants, .stats = &srv->stats};
    for (unsigned i = 0; i < srv->nworkers; i++) {
        struct worker *w = &srv->workers[i];
        int rc = worker_init(w, i, &srv->shared, &handlers);
        if (rc < 0)
            return rc;
        srv->requests[i] = &w->requests;
        srv->conns_tallies[i] = &w->tally;
    }
    return 0;
}

int server_init(struct server *srv, const struct cfg *cfg)
{
    *srv = (struct server){.cfg = *cfg};
    grants_init(&srv->grants);
    struct resource_settings rs = resource_settings(cfg);
    resource_init(&srv->resource, &rs);
    int rc = alloc_workers(srv);
    if (rc < 0)
        return rc;
    share(srv);
    if (srv->nworkers > 1)
        lock_share(&srv->resource.lock);
    srv->stats = (struct stats_source){.resource = &srv->resource,
                                       .requests = srv->requests,
                                       .conns = srv->conns_tallies,
                                       .nloops = srv->nworkers,
                                       .grants = &srv->grants,
                                       .draining = &srv->draining,
                                       .started_us = loop_now_us()};
    rc = init_workers(srv);
    if (rc == 0 && cfg->state_file[0])
        rc = open_state(srv);
    if (rc == 0 && cfg->etcd[0])
        rc = open_cluster(srv);
    return rc < 0 ? rc : make_events(srv);
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
        rc = listen_all(srv);
    if (rc == 0)
        rc = listen_admin(srv);
    if (rc < 0)
        return rc;
    if (srv->cluster) /* what it registers in etcd: where it serves */
        cluster_announce(srv->cluster, srv->url, srv->admin_url, srv->nworkers,
                         cfg->etcd_quota_bytes);
    /* The main line first: scripts and tests read the first line. */
    printf("turnstile listening on %s\n", srv->url);
    if (srv->admin_url[0])
        printf("admin listening on %s\n", srv->admin_url);
    fflush(stdout);
    if (!srv->cluster) /* else once the cluster is usable (notify_cluster) */
        notify("READY=1");
    return 0;
}

/* The server a worker belongs to: the part the workers share is the
 * server's. */
static struct server *server_of(struct worker *w)
{
    return (struct server *)(void *)((char *)w->shared - offsetof(struct server, shared));
}

/* A worker's loop, with its part of the cluster (cluster.h) around it:
 * a part belongs to the thread that runs its loop. */
static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct cluster *c = server_of(w)->cluster;
    if (c && cluster_attach(c, &w->loop) < 0)
        log_msg(LOG_LEVEL_ERROR, "worker %u: cannot join the cluster; its /access answers 503",
                w->id);
    loop_run(&w->loop);
    if (c)
        cluster_detach(c, &w->loop);
    route_forget_spare();
    return NULL;
}

/* Signals are worker 0's business (a stop, a reload): the other workers'
 * threads start with all of them blocked. */
static int start_threads(struct server *srv)
{
    sigset_t all, old;
    int rc = 0;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    for (unsigned i = 1; i < srv->nworkers && rc == 0; i++) {
        struct worker *w = &srv->workers[i];
        rc = -pthread_create(&w->thread, NULL, worker_main, w);
        w->thread_started = rc == 0;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc < 0)
        log_msg(LOG_LEVEL_ERROR, "cannot start a worker thread: %s", strerror(-rc));
    return rc;
}

int server_run(struct server *srv)
{
    int rc = start_threads(srv);
    if (rc == 0)
        rc = loop_run(&srv->workers[0].loop);
    route_forget_spare();
    for (unsigned i = 1; i < srv->nworkers; i++) {
        struct worker *w = &srv->workers[i];
        if (!w->thread_started)
            continue;
        loop_post(&w->loop, &w->stop_post); /* at once, if it is not done already */
        log_msg(LOG_LEVEL_DEBUG, "stop: waiting for worker %u's thread", i);
        pthread_join(w->thread, NULL);
        w->thread_started = false;
    }
    return rc;
}

int server_fini(struct server *srv)
{
    /* First, while worker 0's loop still exists: the writer saves the last
     * update, and its watch goes. */
    int rc = srv->resource.state ? state_close(srv->resource.state) : 0;
    if (srv->cluster) { /* the other workers detached on their threads */
        cluster_detach(srv->cluster, &srv->workers[0].loop);
        /* The stop line says the cluster's counter as last seen here. */
        resource_set_counter(&srv->resource, cluster_counter(srv->cluster));
        cluster_close(srv->cluster);
        srv->resource.cluster = srv->cluster = NULL;
    }
    etcd_secure_free(srv->etcd_secure); /* after every etcd client finished */
    srv->etcd_secure = NULL;
    for (int i = 0; i < 4; i++)
        loop_watch_free(srv->signals[i]);
    loop_watch_free(srv->drain_timer);
    loop_watch_free(srv->log_flush);
    bool kept = false;
    for (unsigned i = 0; srv->workers && i < srv->nworkers; i++)
        kept |= !worker_fini(&srv->workers[i]);
    /* A kept loop stays reachable through workers until the exit, which
     * frees it: LeakSanitizer would count it lost otherwise. */
    if (!kept) {
        free(srv->workers);
        srv->workers = NULL;
    }
    free(srv->requests);
    free(srv->conns_tallies);
    grants_fini(&srv->grants);
    resource_fini(&srv->resource);
    return rc;
}
