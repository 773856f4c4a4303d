/* tcp_proxy: see tcp_proxy.h. One poll(2) loop over the listener and each
 * pair of sockets (the client's, the upstream's); short timeouts so that
 * the test's arm, heal and stop are seen within POLL_MS. */
#include "tcp_proxy.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#define PAIRS   64
#define POLL_MS 20
#define CHUNK   65536

enum state { RELAY, ARMED, DRAINING, CUT };

struct pair {
    int client, upstream; /* -1: free */
};

struct tcp_proxy {
    int listener, port, upstream_port;
    pthread_t thread;
    atomic_bool stop;
    pthread_mutex_t mu; /* guards state and needle */
    enum state state;
    char needle[256];
    struct pair pairs[PAIRS];
    int trapped; /* the pair whose reply is dropped, while DRAINING */
};

/* Listens on *port (0: any free one, then set). */
static int listen_on(int *port)
{
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)*port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 64) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) < 0) {
        close(fd);
        return -1;
    }
    *port = ntohs(a.sin_port);
    return fd;
}

static int connect_to(int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

/* Closes fd with a reset: its peer sees ECONNRESET, not an orderly end. */
static void reset(int fd)
{
    struct linger l = {.l_onoff = 1, .l_linger = 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
    close(fd);
}

static void pair_close(struct pair *pr, bool rst)
{
    if (rst)
        reset(pr->client);
    else
        close(pr->client);
    close(pr->upstream);
    *pr = (struct pair){-1, -1};
}

static bool send_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n <= 0)
            return false;
        buf += n;
        len -= (size_t)n;
    }
    return true;
}

static void accept_one(struct tcp_proxy *p)
{
    int client = accept4(p->listener, NULL, NULL, SOCK_CLOEXEC);
    if (client < 0)
        return;
    int upstream = connect_to(p->upstream_port);
    struct pair *free_pair = NULL;
    for (int i = 0; i < PAIRS && !free_pair; i++)
        free_pair = p->pairs[i].client < 0 ? &p->pairs[i] : NULL;
    if (upstream < 0 || !free_pair) {
        reset(client);
        if (upstream >= 0)
            close(upstream);
        return;
    }
    *free_pair = (struct pair){client, upstream};
}

/* The path is cut: every connection reset, and the listener closed, so
 * that a new connection is refused by the kernel at once (a sender's
 * failed tries then take no time the proxy's thread could add). */
static void cut(struct tcp_proxy *p)
{
    for (int i = 0; i < PAIRS; i++)
        if (p->pairs[i].client >= 0)
            pair_close(&p->pairs[i], true);
    close(p->listener);
    p->listener = -1;
    pthread_mutex_lock(&p->mu);
    p->state = CUT;
    pthread_mutex_unlock(&p->mu);
}

/* A chunk from the client: relayed; the one with the needle springs the trap. */
static bool from_client(struct tcp_proxy *p, int i, const char *buf, size_t n)
{
    pthread_mutex_lock(&p->mu);
    if (p->state == ARMED && memmem(buf, n, p->needle, strlen(p->needle))) {
        p->state = DRAINING;
        p->trapped = i;
    }
    pthread_mutex_unlock(&p->mu);
    return send_all(p->pairs[i].upstream, buf, n);
}

/* A chunk from upstream: relayed, unless it answers the trapped request. */
static bool from_upstream(struct tcp_proxy *p, int i, const char *buf, size_t n)
{
    pthread_mutex_lock(&p->mu);
    bool drop = p->state == DRAINING && p->trapped == i;
    pthread_mutex_unlock(&p->mu);
    if (drop) {
        cut(p);
        return true;
    }
    return send_all(p->pairs[i].client, buf, n);
}

/* One readable end of pair i: false if the pair is done. */
static bool relay(struct tcp_proxy *p, int i, bool client_side)
{
    static char buf[CHUNK];
    int fd = client_side ? p->pairs[i].client : p->pairs[i].upstream;
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n <= 0)
        return false;
    return client_side ? from_client(p, i, buf, (size_t)n) : from_upstream(p, i, buf, (size_t)n);
}

static void one_round(struct tcp_proxy *p)
{
    struct pollfd fds[1 + 2 * PAIRS];
    pthread_mutex_lock(&p->mu);
    bool healed = p->state != CUT && p->listener < 0;
    pthread_mutex_unlock(&p->mu);
    if (healed)
        p->listener = listen_on(&p->port); /* the same port: the sender knows no other */
    fds[0] = (struct pollfd){.fd = p->listener, .events = POLLIN};
    for (int i = 0; i < PAIRS; i++) {
        fds[1 + 2 * i] = (struct pollfd){.fd = p->pairs[i].client, .events = POLLIN};
        fds[2 + 2 * i] = (struct pollfd){.fd = p->pairs[i].upstream, .events = POLLIN};
    }
    if (poll(fds, 1 + 2 * PAIRS, POLL_MS) <= 0)
        return;
    if (fds[0].revents)
        accept_one(p);
    for (int i = 0; i < PAIRS; i++)
        for (int side = 0; side < 2; side++)
            if (fds[1 + 2 * i + side].revents && p->pairs[i].client >= 0 && !relay(p, i, side == 0))
                pair_close(&p->pairs[i], false);
}

static void *proxy_main(void *arg)
{
    struct tcp_proxy *p = arg;
    while (!atomic_load(&p->stop))
        one_round(p);
    return NULL;
}

struct tcp_proxy *tcp_proxy_start(int upstream_port)
{
    struct tcp_proxy *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->upstream_port = upstream_port;
    pthread_mutex_init(&p->mu, NULL);
    for (int i = 0; i < PAIRS; i++)
        p->pairs[i] = (struct pair){-1, -1};
    p->listener = listen_on(&p->port);
    if (p->listener < 0 || (errno = pthread_create(&p->thread, NULL, proxy_main, p)) != 0) {
        if (p->listener >= 0)
            close(p->listener);
        free(p);
        return NULL;
    }
    return p;
}

int tcp_proxy_port(const struct tcp_proxy *p)
{
    return p->port;
}

void tcp_proxy_trap(struct tcp_proxy *p, const char *needle)
{
    pthread_mutex_lock(&p->mu);
    strncpy(p->needle, needle, sizeof(p->needle) - 1);
    p->state = ARMED;
    pthread_mutex_unlock(&p->mu);
}

bool tcp_proxy_wait_cut(struct tcp_proxy *p, int timeout_ms)
{
    for (int waited = 0;; waited += POLL_MS) {
        pthread_mutex_lock(&p->mu);
        bool cut_now = p->state == CUT;
        pthread_mutex_unlock(&p->mu);
        if (cut_now || waited >= timeout_ms)
            return cut_now;
        nanosleep(&(struct timespec){0, POLL_MS * 1000000L}, NULL);
    }
}

void tcp_proxy_heal(struct tcp_proxy *p)
{
    pthread_mutex_lock(&p->mu);
    p->state = RELAY;
    pthread_mutex_unlock(&p->mu);
}

void tcp_proxy_stop(struct tcp_proxy *p)
{
    if (!p)
        return;
    atomic_store(&p->stop, true);
    pthread_join(p->thread, NULL);
    for (int i = 0; i < PAIRS; i++)
        if (p->pairs[i].client >= 0)
            pair_close(&p->pairs[i], false);
    if (p->listener >= 0)
        close(p->listener);
    pthread_mutex_destroy(&p->mu);
    free(p);
}
