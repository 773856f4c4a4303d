/* W6: N connections, each with one GET /access queued at once, spread in
 * turn over the given ports (the instances of a cluster); reports whether
 * every one was answered with a distinct N, the servers' peak resident
 * memory per queued request (the sum of VmHWM after, minus the sum of VmRSS
 * before), and the time from the first connect to the last reply.
 * Usage: bench_queue PORT[,PORT...] SERVER_PID[,PID...] [CONNECTIONS] */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static long status_kib(int pid, const char *field)
{
    char path[64], line[256];
    long kib = -1;
    snprintf(path, sizeof(path), "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    while (f && fgets(line, sizeof(line), f))
        if (strncmp(line, field, strlen(field)) == 0)
            kib = atol(line + strlen(field));
    if (f)
        fclose(f);
    return kib;
}

/* The comma-separated numbers of list; returns how many (at most max). */
static int parse_list(const char *list, int *out, int max)
{
    int n = 0;
    for (const char *p = list; *p && n < max;) {
        char *end;
        out[n++] = (int)strtol(p, &end, 10);
        p = end + strspn(end, ",");
    }
    return n;
}

static long sum_kib(const int *pids, int npids, const char *field)
{
    long sum = 0;
    for (int i = 0; i < npids; i++)
        sum += status_kib(pids[i], field);
    return sum;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int open_queued(int port)
{
    static const char req[] = "GET /access HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n";
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        send(fd, req, sizeof(req) - 1, 0) != (ssize_t)(sizeof(req) - 1)) {
        perror("bench_queue: connect/send");
        exit(1);
    }
    fcntl(fd, F_SETFL, O_NONBLOCK);
    return fd;
}

/* Reads replies until every connection closed; returns how many carried a
 * 200 with an N not seen before (N may start above 1: earlier requests). */
static int collect(int ep, int n, char *seen)
{
    struct epoll_event evs[256];
    char buf[1024];
    int open = n, good = 0;
    while (open > 0) {
        int k = epoll_wait(ep, evs, 256, 60000);
        if (k <= 0)
            break;
        for (int i = 0; i < k; i++) {
            int fd = evs[i].data.fd;
            ssize_t len = recv(fd, buf, sizeof(buf) - 1, 0);
            if (len < 0 && errno == EAGAIN)
                continue;
            if (len > 0) {
                buf[len] = 0;
                char *body = strstr(buf, "Resource accessed ");
                long v = body ? atol(body + 18) : 0;
                if (strncmp(buf, "HTTP/1.1 200", 12) == 0 && v >= 1 && v <= 2L * n && !seen[v]++)
                    good++;
                continue; /* the close comes next */
            }
            close(fd);
            open--;
        }
    }
    return good;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: bench_queue PORT[,PORT...] SERVER_PID[,PID...] [CONNECTIONS]\n");
        return 2;
    }
    int ports[64], pids[64];
    int nports = parse_list(argv[1], ports, 64), npids = parse_list(argv[2], pids, 64);
    int n = argc > 3 ? atoi(argv[3]) : 10000;
    if (nports == 0 || npids == 0 || n < 1) {
        fprintf(stderr, "bench_queue: no port, no pid, or no connections\n");
        return 2;
    }
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);

    long before = sum_kib(pids, npids, "VmRSS:");
    double start = now_s();
    int ep = epoll_create1(0);
    for (int i = 0; i < n; i++) {
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = open_queued(ports[i % nports])};
        epoll_ctl(ep, EPOLL_CTL_ADD, ev.data.fd, &ev);
    }
    char *seen = calloc(2 * (size_t)n + 1, 1);
    int good = collect(ep, n, seen);
    double drain = now_s() - start;
    long peak = sum_kib(pids, npids, "VmHWM:");
    printf(
        "answered %d/%d  rss_before_kib %ld  peak_kib %ld  bytes_per_request %.0f  drain_s %.2f\n",
        good, n, before, peak, (double)(peak - before) * 1024.0 / n, drain);
    return good == n ? 0 : 1;
}
