/* fake_gateway: see fake_gateway.h. */
#include "fake_gateway.h"

#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

static struct {
    int listen_fd;
    pthread_t thread;
    pthread_mutex_t mu; /* guards everything below */
    char *script;
    size_t script_len;
    size_t piece;
    bool close_after;
    bool reset; /* close_after with SO_LINGER 0 */
    bool silent;
    bool stop;
    struct fake_gateway_seen seen;
} fake = {.mu = PTHREAD_MUTEX_INITIALIZER};

static bool stopping(void)
{
    pthread_mutex_lock(&fake.mu);
    bool stop = fake.stop;
    pthread_mutex_unlock(&fake.mu);
    return stop;
}

/* Waits up to 50 ms for fd to be readable; false while it is not. */
static bool readable(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, 50) > 0;
}

/* Reads one request (head, then Content-Length bytes); false at EOF or
 * when stopping. */
static bool read_request(int fd)
{
    char buf[FAKE_GATEWAY_REQUEST_MAX];
    size_t len = 0;
    char *end = NULL;
    long body = 0;
    while (!end || len < (size_t)(end + 4 - buf) + (size_t)body) {
        if (stopping() || len == sizeof(buf) - 1)
            return false;
        if (!readable(fd))
            continue;
        ssize_t n = recv(fd, buf + len, sizeof(buf) - 1 - len, 0);
        if (n <= 0)
            return false;
        len += (size_t)n;
        buf[len] = '\0';
        if (!end && (end = strstr(buf, "\r\n\r\n"))) {
            const char *cl = strstr(buf, "Content-Length: ");
            body = cl ? strtol(cl + 16, NULL, 10) : 0;
        }
    }
    pthread_mutex_lock(&fake.mu);
    memcpy(fake.seen.request, buf, len + 1);
    fake.seen.requests++;
    pthread_mutex_unlock(&fake.mu);
    return true;
}

/* Sends the script; false when the connection is to end. */
static bool answer(int fd)
{
    pthread_mutex_lock(&fake.mu);
    bool keep = !fake.close_after, ok = true;
    size_t left = fake.silent ? 0 : fake.script_len, piece = fake.piece ? fake.piece : left;
    for (const char *p = fake.script; left > 0 && ok;) {
        size_t n = left < piece ? left : piece;
        ok = send(fd, p, n, MSG_NOSIGNAL) == (ssize_t)n;
        p += n;
        left -= n;
    }
    pthread_mutex_unlock(&fake.mu);
    return ok && keep;
}

static void *serve(void *arg)
{
    int one = 1;
    (void)arg;
    while (!stopping()) {
        if (!readable(fake.listen_fd))
            continue;
        int fd = accept(fake.listen_fd, NULL, NULL);
        if (fd < 0)
            continue;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        pthread_mutex_lock(&fake.mu);
        fake.seen.accepted++;
        pthread_mutex_unlock(&fake.mu);
        while (read_request(fd) && answer(fd))
            ;
        pthread_mutex_lock(&fake.mu);
        struct linger hard = {.l_onoff = fake.reset, .l_linger = 0};
        pthread_mutex_unlock(&fake.mu);
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &hard, sizeof(hard));
        close(fd);
    }
    return NULL;
}

int fake_gateway_start(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    fake.listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fake.listen_fd < 0 || bind(fake.listen_fd, (struct sockaddr *)&a, len) < 0 ||
        listen(fake.listen_fd, 16) < 0 ||
        getsockname(fake.listen_fd, (struct sockaddr *)&a, &len) < 0)
        return -1;
    fake.stop = false;
    fake.seen = (struct fake_gateway_seen){0};
    fake_gateway_script("", 0, 0, false);
    return pthread_create(&fake.thread, NULL, serve, NULL) == 0 ? ntohs(a.sin_port) : -1;
}

void fake_gateway_stop(void)
{
    pthread_mutex_lock(&fake.mu);
    fake.stop = true;
    pthread_mutex_unlock(&fake.mu);
    pthread_join(fake.thread, NULL);
    close(fake.listen_fd);
    free(fake.script);
    fake.script = NULL;
}

static void set(const char *bytes, size_t len, size_t piece, bool close_after, bool silent)
{
    char *copy = malloc(len + 1);
    memcpy(copy, bytes, len);
    pthread_mutex_lock(&fake.mu);
    free(fake.script);
    fake.script = copy;
    fake.script_len = len;
    fake.piece = piece;
    fake.close_after = close_after;
    fake.reset = false;
    fake.silent = silent;
    pthread_mutex_unlock(&fake.mu);
}

void fake_gateway_script(const char *bytes, size_t len, size_t piece, bool close_after)
{
    set(bytes, len, piece, close_after, false);
}

void fake_gateway_script_reset(const char *bytes, size_t len)
{
    set(bytes, len, 0, true, false);
    pthread_mutex_lock(&fake.mu);
    fake.reset = true;
    pthread_mutex_unlock(&fake.mu);
}

void fake_gateway_reply(int status, const char *body, size_t len)
{
    char *buf = malloc(len + 128);
    int n = snprintf(buf, 128, "HTTP/1.1 %d X\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
                     status, len);
    memcpy(buf + n, body, len);
    fake_gateway_script(buf, (size_t)n + len, 0, true);
    free(buf);
}

void fake_gateway_silence(void)
{
    set("", 0, 0, false, true);
}

void fake_gateway_seen(struct fake_gateway_seen *out)
{
    pthread_mutex_lock(&fake.mu);
    *out = fake.seen;
    pthread_mutex_unlock(&fake.mu);
}
