/* proxy: see proxy.h. One thread polls the listener and every pair of
 * sockets; an eventfd stops it. */
#include "proxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define PAIRS   64 /* connections open at once */
#define TICK_MS 5  /* how soon a new mode applies */

struct pair {
    int fd[2]; /* the client's, the server's; -1 when unused */
};

struct proxy {
    int listen_fd, stop_fd, target_port;
    _Atomic int mode;
    _Atomic uint64_t swallowed;
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

/* A new client: paired with a connection to the server, or reset. */
static void on_accept(struct proxy *p)
{
    int fd = accept4(p->listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0)
        return;
    int up = atomic_load(&p->mode) == PROXY_RESET ? -1 : dial(p->target_port);
    for (int i = 0; up >= 0 && i < PAIRS; i++)
        if (p->pairs[i].fd[0] < 0) {
            p->pairs[i] = (struct pair){{fd, up}};
            return;
        }
    close_rst(fd);
    if (up >= 0)
        close(up);
}

/* Data on side k of a pair: forwarded, swallowed, or the pair ends. */
static void on_data(struct proxy *p, struct pair *pr, int k)
{
    char buf[16384];
    ssize_t n = recv(pr->fd[k], buf, sizeof(buf), MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        pair_close(pr, false);
        return;
    }
    if (atomic_load(&p->mode) == PROXY_BLACKHOLE) {
        atomic_fetch_add(&p->swallowed, (uint64_t)n);
        return;
    }
    for (ssize_t sent = 0; sent < n;) { /* blocking: loopback, a test's volumes */
        ssize_t m = send(pr->fd[1 - k], buf + sent, (size_t)(n - sent), MSG_NOSIGNAL);
        if (m <= 0) {
            pair_close(pr, false);
            return;
        }
        sent += m;
    }
}

/* One poll round over the stop fd, the listener and the pairs. */
static bool proxy_round(struct proxy *p)
{
    struct pollfd fds[2 + 2 * PAIRS] = {{.fd = p->stop_fd, .events = POLLIN},
                                        {.fd = p->listen_fd, .events = POLLIN}};
    bool reset = atomic_load(&p->mode) == PROXY_RESET;
    for (int i = 0; i < PAIRS; i++) {
        if (reset && p->pairs[i].fd[0] >= 0)
            pair_close(&p->pairs[i], true);
        for (int k = 0; k < 2; k++)
            fds[2 + 2 * i + k] = (struct pollfd){.fd = p->pairs[i].fd[k], .events = POLLIN};
    }
    if (poll(fds, 2 + 2 * PAIRS, TICK_MS) < 0 && errno != EINTR)
        return false;
    if (fds[0].revents)
        return false;
    if (fds[1].revents)
        on_accept(p);
    for (int i = 0; i < PAIRS; i++)
        for (int k = 0; k < 2; k++)
            if (p->pairs[i].fd[k] >= 0 && fds[2 + 2 * i + k].revents)
                on_data(p, &p->pairs[i], k);
    return true;
}

static void *proxy_main(void *arg)
{
    struct proxy *p = arg;
    while (proxy_round(p)) {
    }
    return NULL;
}

static int proxy_listen(struct proxy *p, int *port)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t len = sizeof(a);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    p->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (p->listen_fd < 0 || bind(p->listen_fd, (struct sockaddr *)&a, len) < 0 ||
        listen(p->listen_fd, 64) < 0 || getsockname(p->listen_fd, (struct sockaddr *)&a, &len) < 0)
        return -errno;
    *port = ntohs(a.sin_port);
    return 0;
}

int proxy_start(struct proxy **out, int target_port, int *port)
{
    struct proxy *p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    p->target_port = target_port;
    p->listen_fd = -1;
    for (int i = 0; i < PAIRS; i++)
        p->pairs[i] = (struct pair){{-1, -1}};
    p->stop_fd = eventfd(0, EFD_CLOEXEC);
    int rc = p->stop_fd < 0 ? -errno : proxy_listen(p, port);
    if (rc == 0)
        rc = -pthread_create(&p->thread, NULL, proxy_main, p);
    if (rc < 0) {
        if (p->listen_fd >= 0)
            close(p->listen_fd);
        if (p->stop_fd >= 0)
            close(p->stop_fd);
        free(p);
        return rc;
    }
    *out = p;
    return 0;
}

void proxy_set(struct proxy *p, enum proxy_mode mode)
{
    atomic_store(&p->mode, mode);
}

uint64_t proxy_swallowed(const struct proxy *p)
{
    return atomic_load(&p->swallowed);
}

void proxy_stop(struct proxy *p)
{
    if (!p)
        return;
    uint64_t one = 1;
    if (write(p->stop_fd, &one, sizeof(one)) == sizeof(one))
        pthread_join(p->thread, NULL);
    for (int i = 0; i < PAIRS; i++)
        pair_close(&p->pairs[i], false);
    close(p->listen_fd);
    close(p->stop_fd);
    free(p);
}
