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

#include <event2/event.h>
#include <event2/listener.h>

#include "conn.h"
#include "limits.h"
#include "log.h"

#ifdef HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

#define ACCEPT_RETRY_MS 100 /* pause after EMFILE/ENFILE before accepting again */

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

static struct timeval ms_tv(uint64_t ms)
{
    return (struct timeval){.tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000};
}

/* ---- accepting ---- */

static void pause_accepting(struct server *srv)
{
    if (srv->listener && !srv->accept_paused)
        evconnlistener_disable(srv->listener);
    srv->accept_paused = true;
}

static void resume_accepting(struct server *srv)
{
    if (srv->listener && srv->accept_paused)
        evconnlistener_enable(srv->listener);
    srv->accept_paused = false;
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len,
                      void *arg)
{
    struct server *srv = arg;
    int one = 1;
    (void)l, (void)sa, (void)len;
    /* Replies are whole and sent at once: do not let Nagle hold them. */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    conn_accept(srv, fd);
    if (srv->stats.active >= srv->cfg.max_connections)
        pause_accepting(srv); /* resumed by server_conn_closed() */
}

/* Out of descriptors (EMFILE/ENFILE) or another accept failure: retrying at
 * once would spin, so pause and try again shortly. */
static void on_accept_error(struct evconnlistener *l, void *arg)
{
    struct server *srv = arg;
    struct timeval tv = ms_tv(ACCEPT_RETRY_MS);
    (void)l;
    if (!srv->accept_paused) /* once per episode, not every retry */
        log_msg(LOG_WARN, "accept failed: %s; pausing %d ms (connections open: %llu)",
                strerror(errno), ACCEPT_RETRY_MS, (unsigned long long)srv->stats.active);
    pause_accepting(srv);
    event_add(srv->accept_retry, &tv);
}

static void on_accept_retry(evutil_socket_t fd, short what, void *arg)
{
    struct server *srv = arg;
    (void)fd, (void)what;
    if (srv->stats.active < srv->cfg.max_connections)
        resume_accepting(srv);
}

void server_conn_closed(struct server *srv)
{
    srv->stats.active--;
    if (srv->draining && srv->stats.active == 0)
        loop_break(&srv->loop);
    else if (srv->accept_paused && !evtimer_pending(srv->accept_retry, NULL))
        resume_accepting(srv); /* back under the limit */
}

/* ---- stopping ---- */

static void start_drain(struct server *srv)
{
    struct timeval tv = ms_tv(srv->cfg.drain_timeout_ms);
    notify("STOPPING=1");
    srv->draining = true;
    if (srv->listener) /* none when connections are fed in directly (fuzzing) */
        evconnlistener_free(srv->listener); /* closes the listening socket */
    srv->listener = NULL;
    conn_drain_all(srv);
    if (srv->stats.active == 0)
        loop_break(&srv->loop);
    else
        event_add(srv->drain_timer, &tv);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct server *srv = arg;
    (void)what;
    if (srv->draining) {
        log_msg(LOG_WARN, "SIG%s again: stopping now, %llu connections still open",
                sigabbrev_np((int)sig), (unsigned long long)srv->stats.active);
        loop_break(&srv->loop); /* a second signal: stop now */
        return;
    }
    log_msg(LOG_INFO, "SIG%s: stopping; %llu connections open, %llu queued for the lock",
            sigabbrev_np((int)sig), (unsigned long long)srv->stats.active,
            (unsigned long long)srv->resource.lock.stats.waiters);
    start_drain(srv);
}

static void on_drain_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct server *srv = arg;
    (void)fd, (void)what;
    log_msg(LOG_WARN, "drain deadline (%llu ms) passed with %llu connections open",
            (unsigned long long)srv->cfg.drain_timeout_ms, (unsigned long long)srv->stats.active);
    loop_break(&srv->loop);
}

/* The access log is buffered: written out once a second. */
static void on_log_flush(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what, (void)arg;
    log_access_flush();
}

/* ---- listening ---- */

static int resolve(const struct cfg *cfg, struct sockaddr_storage *ss, socklen_t *len)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
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
    srv->listener = evconnlistener_new(srv->loop.base, on_accept, srv, LEV_OPT_CLOSE_ON_FREE, -1, fd);
    if (!srv->listener) {
        close(fd);
        return -ENOMEM;
    }
    evconnlistener_set_error_cb(srv->listener, on_accept_error);
    return 0;
}

static int make_events(struct server *srv)
{
    struct event_base *base = srv->loop.base;
    srv->signals[0] = evsignal_new(base, SIGINT, on_signal, srv);
    srv->signals[1] = evsignal_new(base, SIGTERM, on_signal, srv);
    srv->drain_timer = evtimer_new(base, on_drain_timeout, srv);
    srv->accept_retry = evtimer_new(base, on_accept_retry, srv);
    srv->log_flush = event_new(base, -1, EV_PERSIST, on_log_flush, srv);
    if (!srv->signals[0] || !srv->signals[1] || !srv->drain_timer || !srv->accept_retry ||
        !srv->log_flush)
        return -ENOMEM;
    evsignal_add(srv->signals[0], NULL);
    evsignal_add(srv->signals[1], NULL);
    if (log_access_enabled()) {
        struct timeval second = {.tv_sec = 1};
        event_add(srv->log_flush, &second);
    }
    return 0;
}

/* --state-file: recover the counter, then save every update (state.h). */
static int open_state(struct server *srv)
{
    int rc = state_open(&srv->state, srv->cfg.state_file, &srv->resource.counter);
    if (rc < 0)
        return rc;
    rc = state_start(&srv->state, srv->loop.base);
    if (rc < 0) {
        state_close(&srv->state);
        return rc;
    }
    srv->resource.state = &srv->state;
    return 0;
}

int server_init(struct server *srv, const struct cfg *cfg)
{
    *srv = (struct server){.cfg = *cfg};
    srv->http_limits = (struct http_limits){
        .max_header_bytes = cfg->max_header_bytes, .max_url = cfg->max_header_bytes,
        .max_headers = (unsigned)cfg->max_headers, .max_body = cfg->max_body};
    /* Keep idle stacks for every connection the limit allows: reuse, no mmap. */
    int rc = loop_init(&srv->loop, 0, (unsigned)cfg->max_connections);
    if (rc < 0) {
        fprintf(stderr, "turnstile: cannot start the event loop: %s\n", strerror(-rc));
        return rc;
    }
    resource_init(&srv->resource, cfg->delay_ms, cfg->jitter_ms, cfg->max_waiters, !cfg->no_lock);
    if (cfg->state_file[0]) {
        rc = open_state(srv);
        if (rc < 0)
            return rc;
    }
    srv->stats.started_us = loop_now_us();
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
    /* First, while the loop's base still exists: the writer saves the
     * last update, and its event goes. */
    int rc = srv->resource.state ? state_close(srv->resource.state) : 0;
    if (srv->listener)
        evconnlistener_free(srv->listener);
    for (int i = 0; i < 2; i++)
        if (srv->signals[i])
            event_free(srv->signals[i]);
    if (srv->drain_timer)
        event_free(srv->drain_timer);
    if (srv->accept_retry)
        event_free(srv->accept_retry);
    if (srv->log_flush)
        event_free(srv->log_flush);
    /* Connections still open (a forced stop) keep their coroutines: the
     * process is about to exit, and their stacks go with it. */
    if (srv->stats.active == 0)
        loop_fini(&srv->loop);
    return rc;
}
