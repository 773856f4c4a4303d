/* proxy: see proxy.h. One thread polls the stop fd (an eventfd), the
 * listener and every pair of sockets, with a short timeout so that a mode
 * the test sets applies within TICK_MS. What the test sets (the mode, the
 * trap) is guarded by a mutex; the thread decides each chunk's fate under
 * it, and signals the trap's waiter on a condition. */
#include "proxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PAIRS   64 /* connections open at once */
#define TICK_MS 5  /* how soon a new mode applies */
#define CLIENT  0  /* the sides of a pair */
#define SERVER  1

/* The trap: armed, set (its request seen on pair `trapped`), sprung. */
enum trap { TRAP_OFF, TRAP_ARMED, TRAP_SET, TRAP_SPRUNG };

/* What becomes of a chunk read from a pair. */
enum fate { FORWARD, SWALLOW, DROP };

struct pair {
    int fd[2]; /* the client's, the server's; -1 when unused */
};

struct proxy {
    int listen_fd, stop_fd, port, target_port; /* listen_fd < 0: in PROXY_RESET */
    _Atomic uint64_t swallowed;
    pthread_mutex_t mu; /* guards mode, trap, trapped and needle */
    pthread_cond_t sprung;
    enum proxy_mode mode;
    enum trap trap;
    int trapped;
    char needle[256];
    struct pair pairs[PAIRS];
    pthread_t thread;
};

static void close_rst(int fd)
{
    struct linger l = {.l_onoff = 1, .l_linger = 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
    close(fd);
}

static void pair_close(struct pair *pr, bool reset)
{
    for (int k = 0; k < 2; k++) {
        if (pr->fd[k] >= 0 && reset)
            close_rst(pr->fd[k]);
        else if (pr->fd[k] >= 0)
            close(pr->fd[k]);
        pr->fd[k] = -1;
    }
}

static int dial(int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

/* Listens on *port (0: a free one, then set; else the same port again,
 * which SO_REUSEADDR allows past the connections it reset). Returns the
 * fd or a negative errno. */
static int proxy_listen(int *port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)*port)};
    socklen_t len = sizeof(a);
    int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0)
        return -errno;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&a, len) < 0 || listen(fd, 64) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) < 0) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    *port = ntohs(a.sin_port);
    return fd;
}

/* Brings the sockets in line with the mode: in PROXY_RESET every pair
 * reset and no listener; in the others a listener (a failed one is tried
 * again next round; poll skips a negative fd). */
static void apply_mode(struct proxy *p, enum proxy_mode mode)
{
    if (mode != PROXY_RESET) {
        if (p->listen_fd < 0)
            p->listen_fd = proxy_listen(&p->port); /* the client knows no other */
        return;
    }
    for (int i = 0; i < PAIRS; i++)
        pair_close(&p->pairs[i], true);
    if (p->listen_fd >= 0)
        close(p->listen_fd);
    p->listen_fd = -1;
}

/* A new client: paired with a connection to the server, or reset. */
static void on_accept(struct proxy *p)
{
    int fd = accept4(p->listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0)
        return;
    int up = dial(p->target_port);
    for (int i = 0; up >= 0 && i < PAIRS; i++)
        if (p->pairs[i].fd[CLIENT] < 0) {
            p->pairs[i] = (struct pair){{fd, up}};
            return;
        }
    close_rst(fd);
    if (up >= 0)
        close(up);
}

/* A chunk from side k of pair i: swallowed in PROXY_BLACKHOLE, dropped if
 * it answers the trap's request, else forwarded (the trap's request too). */
static enum fate chunk_fate(struct proxy *p, int i, int k, const char *buf, size_t n)
{
    enum fate f = FORWARD;
    pthread_mutex_lock(&p->mu);
    if (p->mode == PROXY_BLACKHOLE) {
        f = SWALLOW;
    } else if (k == CLIENT && p->trap == TRAP_ARMED &&
               memmem(buf, n, p->needle, strlen(p->needle))) {
        p->trap = TRAP_SET;
        p->trapped = i;
    } else if (k == SERVER && p->trap == TRAP_SET && p->trapped == i) {
        f = DROP;
    }
    pthread_mutex_unlock(&p->mu);
    return f;
}

/* The trap's reply was dropped: the path is reset before the waiter
 * learns it, so that nothing passes after the lost reply. */
static void spring(struct proxy *p)
{
    apply_mode(p, PROXY_RESET);
    pthread_mutex_lock(&p->mu);
    p->mode = PROXY_RESET;
    p->trap = TRAP_SPRUNG;
    pthread_cond_broadcast(&p->sprung);
    pthread_mutex_unlock(&p->mu);
}

static void forward(struct pair *pr, int k, const char *buf, ssize_t n)
{
    for (ssize_t sent = 0; sent < n;) { /* blocking: loopback, a test's volumes */
        ssize_t m = send(pr->fd[1 - k], buf + sent, (size_t)(n - sent), MSG_NOSIGNAL);
        if (m <= 0) {
            pair_close(pr, false);
            return;
        }
        sent += m;
    }
}

/* Data on side k of pair i: forwarded, swallowed, dropped, or the pair ends. */
static void on_data(struct proxy *p, int i, int k)
{
    char buf[16384];
    struct pair *pr = &p->pairs[i];
    ssize_t n = recv(pr->fd[k], buf, sizeof(buf), MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        pair_close(pr, false);
        return;
    }
    switch (chunk_fate(p, i, k, buf, (size_t)n)) {
    case SWALLOW:
        atomic_fetch_add(&p->swallowed, (uint64_t)n);
        break;
    case DROP:
        spring(p);
        break;
    case FORWARD:
        forward(pr, k, buf, n);
        break;
    }
}

/* One poll round over the stop fd, the listener and the pairs. */
static bool proxy_round(struct proxy *p)
{
    struct pollfd fds[2 + 2 * PAIRS];
    pthread_mutex_lock(&p->mu);
    enum proxy_mode mode = p->mode;
    pthread_mutex_unlock(&p->mu);
    apply_mode(p, mode);
    fds[0] = (struct pollfd){.fd = p->stop_fd, .events = POLLIN};
    fds[1] = (struct pollfd){.fd = p->listen_fd, .events = POLLIN};
    for (int i = 0; i < PAIRS; i++)
        for (int k = 0; k < 2; k++)
            fds[2 + 2 * i + k] = (struct pollfd){.fd = p->pairs[i].fd[k], .events = POLLIN};
    if (poll(fds, 2 + 2 * PAIRS, TICK_MS) < 0 && errno != EINTR)
        return false;
    if (fds[0].revents)
        return false;
    if (fds[1].revents)
        on_accept(p);
    for (int i = 0; i < PAIRS; i++)
        for (int k = 0; k < 2; k++)
            if (p->pairs[i].fd[k] >= 0 && fds[2 + 2 * i + k].revents)
                on_data(p, i, k);
    return true;
}

static void *proxy_main(void *arg)
{
    struct proxy *p = arg;
    while (proxy_round(p)) {
    }
    return NULL;
}

/* Closes everything but the thread, which is gone or never started. */
static void proxy_free(struct proxy *p)
{
    for (int i = 0; i < PAIRS; i++)
        pair_close(&p->pairs[i], false);
    if (p->listen_fd >= 0)
        close(p->listen_fd);
    if (p->stop_fd >= 0)
        close(p->stop_fd);
    pthread_cond_destroy(&p->sprung);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

/* The trap's waiter uses the monotonic clock: a deadline, not a date. */
static void proxy_sync_init(struct proxy *p)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->sprung, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&p->mu, NULL);
}

int proxy_start(struct proxy **out, int target_port, int *port)
{
    struct proxy *p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    p->target_port = target_port;
    for (int i = 0; i < PAIRS; i++)
        p->pairs[i] = (struct pair){{-1, -1}};
    proxy_sync_init(p);
    p->stop_fd = eventfd(0, EFD_CLOEXEC);
    int rc = p->stop_fd < 0 ? -errno : 0;
    p->listen_fd = proxy_listen(&p->port);
    if (rc == 0 && p->listen_fd < 0)
        rc = p->listen_fd;
    if (rc == 0)
        rc = -pthread_create(&p->thread, NULL, proxy_main, p);
    if (rc < 0) {
        proxy_free(p);
        return rc;
    }
    *port = p->port;
    *out = p;
    return 0;
}

void proxy_set(struct proxy *p, enum proxy_mode mode)
{
    pthread_mutex_lock(&p->mu);
    p->mode = mode;
    pthread_mutex_unlock(&p->mu);
}

uint64_t proxy_swallowed(const struct proxy *p)
{
    return atomic_load(&p->swallowed);
}

void proxy_trap(struct proxy *p, const char *needle)
{
    pthread_mutex_lock(&p->mu);
    snprintf(p->needle, sizeof(p->needle), "%s", needle);
    p->trap = TRAP_ARMED;
    pthread_mutex_unlock(&p->mu);
}

int proxy_wait_trap(struct proxy *p, int timeout_ms)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    long long ns = until.tv_nsec + (timeout_ms % 1000) * 1000000LL;
    until.tv_sec += timeout_ms / 1000 + (time_t)(ns / 1000000000);
    until.tv_nsec = (long)(ns % 1000000000);
    int rc = 0;
    pthread_mutex_lock(&p->mu);
    while (p->trap != TRAP_SPRUNG && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&p->sprung, &p->mu, &until);
    rc = p->trap == TRAP_SPRUNG ? 0 : -ETIMEDOUT;
    pthread_mutex_unlock(&p->mu);
    return rc;
}

void proxy_stop(struct proxy *p)
{
    if (!p)
        return;
    uint64_t one = 1;
    if (write(p->stop_fd, &one, sizeof(one)) == sizeof(one))
        pthread_join(p->thread, NULL);
    proxy_free(p);
}
