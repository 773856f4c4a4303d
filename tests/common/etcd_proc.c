/* etcd_proc: see etcd_proc.h. */
#include "etcd_proc.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define START_TRIES 3 /* a free port can be taken by someone else before etcd binds it */

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- ports and paths ---- */

/* Ports the kernel hands out for port 0, all held open until each is
 * picked, so they differ from each other. */
static int pick_ports(int *ports, unsigned n)
{
    int fds[2 * ETCD_PROC_MAX];
    int rc = 0;
    unsigned i;
    for (i = 0; i < n && rc == 0; i++) {
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof(a);
        fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fds[i] < 0 || bind(fds[i], (struct sockaddr *)&a, len) < 0 ||
            getsockname(fds[i], (struct sockaddr *)&a, &len) < 0)
            rc = -errno;
        ports[i] = ntohs(a.sin_port);
    }
    while (i-- > 0)
        if (fds[i] >= 0)
            close(fds[i]);
    return rc;
}

static void member_path(const struct etcd_proc *p, unsigned i, const char *what, char *buf,
                        size_t cap)
{
    snprintf(buf, cap, "%s/%s.%s", p->dir, p->m[i].name, what);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    remove(path);
    return 0;
}

/* ---- one member ---- */

/* The whole cluster's peer URLs: "m0=http://127.0.0.1:P0,m1=...". */
static void initial_cluster(const struct etcd_proc *p, char *buf, size_t cap)
{
    size_t len = 0;
    buf[0] = '\0';
    for (unsigned i = 0; i < p->n; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%s=http://127.0.0.1:%d", i ? "," : "",
                                p->m[i].name, p->m[i].peer_port);
}

static void exec_member(const struct etcd_proc *p, unsigned i)
{
    const struct etcd_proc_member *m = &p->m[i];
    char data[128], log[128], peer[48], cluster[ETCD_PROC_MAX * 48];
    member_path(p, i, "data", data, sizeof(data));
    member_path(p, i, "log", log, sizeof(log));
    snprintf(peer, sizeof(peer), "http://127.0.0.1:%d", m->peer_port);
    initial_cluster(p, cluster, sizeof(cluster));
    const char *bin = getenv("ETCD_BIN") ? getenv("ETCD_BIN") : "etcd";
    /* Die with the test, even one that crashes. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0 || dup2(fd, STDOUT_FILENO) < 0 || dup2(fd, STDERR_FILENO) < 0)
        _exit(127);
    /* Heartbeats and elections slower than etcd's defaults (100 ms and
     * 1 s): a loaded test machine that stalls a member for a second must
     * not make the others elect a new leader the test did not ask for.
     * etcd's shortest lease is 1.5 election timeouts: 3 s here. */
    execlp(bin, bin, "--name", m->name, "--data-dir", data, "--listen-client-urls", m->url,
           "--advertise-client-urls", m->url, "--listen-peer-urls", peer,
           "--initial-advertise-peer-urls", peer, "--initial-cluster", cluster,
           "--initial-cluster-token", p->dir, "--initial-cluster-state", "new",
           "--heartbeat-interval", "200", "--election-timeout", "2000", "--logger", "zap",
           "--log-level", "warn", (char *)NULL);
    _exit(127);
}

static int spawn_member(struct etcd_proc *p, unsigned i)
{
    pid_t pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0)
        exec_member(p, i);
    p->m[i].pid = pid;
    return 0;
}

/* Reaps member i if it exited; true if it is gone. */
static bool member_exited(struct etcd_proc *p, unsigned i)
{
    if (p->m[i].pid > 0 && waitpid(p->m[i].pid, NULL, WNOHANG) == p->m[i].pid)
        p->m[i].pid = 0;
    return p->m[i].pid == 0;
}

/* One request (req, whole) on a connection of its own; the reply, as much
 * as fits, NUL-terminated in buf. Each step waits at most a second. */
static void exchange(int port, const char *req, char *buf, size_t cap)
{
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct timeval tv = {.tv_sec = 1};
    size_t len = 0;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0) {
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    }
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        send(fd, req, strlen(req), MSG_NOSIGNAL) == (ssize_t)strlen(req)) {
        ssize_t n;
        while (len < cap - 1 && (n = recv(fd, buf + len, cap - 1 - len, 0)) > 0)
            len += (size_t)n;
    }
    if (fd >= 0)
        close(fd);
    buf[len] = '\0';
}

/* One GET /health; true if the answer says "true". */
static bool health_once(int port)
{
    char buf[2048];
    exchange(port, "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", buf,
             sizeof(buf));
    return strstr(buf, "\"health\":\"true\"") != NULL;
}

/* The number after "name":" in text, or 0. */
static unsigned long long json_id(const char *text, const char *name)
{
    const char *at = strstr(text, name);
    return at ? strtoull(at + strlen(name), NULL, 10) : 0;
}

int etcd_proc_leader(const struct etcd_proc *p, int skip, int timeout_ms)
{
    static const char req[] = "POST /v3/maintenance/status HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                              "Content-Length: 2\r\nConnection: close\r\n\r\n{}";
    long long end = now_ms() + timeout_ms;
    for (;;) {
        for (unsigned i = 0; i < p->n; i++) {
            char buf[2048];
            if (p->m[i].pid <= 0 || (int)i == skip)
                continue;
            exchange(p->m[i].client_port, req, buf, sizeof(buf));
            unsigned long long id = json_id(buf, "\"member_id\":\"");
            if (id && id == json_id(buf, "\"leader\":\""))
                return (int)i;
        }
        if (now_ms() >= end)
            return -ETIMEDOUT;
        poll(NULL, 0, 20);
    }
}

bool etcd_proc_healthy(const struct etcd_proc *p, unsigned i, int timeout_ms)
{
    long long end = now_ms() + timeout_ms;
    for (;;) {
        if (health_once(p->m[i].client_port))
            return true;
        if (now_ms() >= end || p->m[i].pid == 0)
            return false;
        poll(NULL, 0, 20);
    }
}

/* Waits for every member to be healthy; -ECHILD if one exited (its port
 * was taken, say), -ETIMEDOUT at the deadline. */
static int wait_healthy(struct etcd_proc *p, long long end)
{
    for (unsigned i = 0; i < p->n; i++) {
        while (!health_once(p->m[i].client_port)) {
            if (member_exited(p, i))
                return -ECHILD;
            if (now_ms() >= end)
                return -ETIMEDOUT;
            poll(NULL, 0, 20);
        }
    }
    return 0;
}

/* The last lines of each member's log, to say why a start failed. */
static void print_logs(const struct etcd_proc *p)
{
    for (unsigned i = 0; i < p->n; i++) {
        char path[128], buf[2048];
        member_path(p, i, "log", path, sizeof(path));
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        fseek(f, 0, SEEK_END);
        long size = ftell(f);
        fseek(f, size > (long)sizeof(buf) - 1 ? size - (long)sizeof(buf) + 1 : 0, SEEK_SET);
        size_t n = fread(buf, 1, sizeof(buf) - 1, f);
        buf[n] = '\0';
        fclose(f);
        fprintf(stderr, "etcd_proc: %s log ends:\n%s\n", p->m[i].name, buf);
    }
}

/* ---- the cluster ---- */

static void kill_all(struct etcd_proc *p)
{
    for (unsigned i = 0; i < p->n; i++)
        etcd_proc_kill(p, i);
}

/* One attempt on fresh ports and a fresh directory. */
static int start_once(struct etcd_proc *p, unsigned n, long long end)
{
    int ports[2 * ETCD_PROC_MAX];
    *p = (struct etcd_proc){.n = n};
    snprintf(p->dir, sizeof(p->dir), "/tmp/etcd_proc_XXXXXX");
    if (!mkdtemp(p->dir))
        return -errno;
    int rc = pick_ports(ports, 2 * n);
    size_t len = 0;
    for (unsigned i = 0; i < n && rc == 0; i++) {
        struct etcd_proc_member *m = &p->m[i];
        m->client_port = ports[2 * i];
        m->peer_port = ports[2 * i + 1];
        snprintf(m->name, sizeof(m->name), "m%u", i);
        snprintf(m->url, sizeof(m->url), "http://127.0.0.1:%d", m->client_port);
        len += (size_t)snprintf(p->endpoints + len, sizeof(p->endpoints) - len, "%s%s",
                                i ? "," : "", m->url);
    }
    for (unsigned i = 0; i < n && rc == 0; i++)
        rc = spawn_member(p, i);
    if (rc == 0)
        rc = wait_healthy(p, end);
    return rc;
}

int etcd_proc_start(struct etcd_proc *p, unsigned n, int timeout_ms)
{
    if (n < 1 || n > ETCD_PROC_MAX)
        return -EINVAL;
    long long end = now_ms() + timeout_ms;
    int rc = -ECHILD;
    for (int tries = 0; tries < START_TRIES && rc == -ECHILD; tries++) {
        rc = start_once(p, n, end);
        if (rc < 0) {
            kill_all(p);
            print_logs(p);
            etcd_proc_stop(p);
        }
    }
    return rc;
}

void etcd_proc_stop(struct etcd_proc *p)
{
    kill_all(p);
    if (p->dir[0])
        nftw(p->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    p->dir[0] = '\0';
}

/* Whether every thread of pid is stopped (state T in /proc). */
static bool all_stopped(pid_t pid)
{
    char path[300], stat[512];
    snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    bool stopped = d != NULL;
    for (struct dirent *e; stopped && (e = readdir(d));) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "/proc/%d/task/%s/stat", (int)pid, e->d_name);
        FILE *f = fopen(path, "r");
        size_t n = f ? fread(stat, 1, sizeof(stat) - 1, f) : 0;
        if (f)
            fclose(f);
        stat[n] = '\0';
        const char *state = strrchr(stat, ')'); /* "pid (comm) S ..." */
        stopped = state && state[1] == ' ' && (state[2] == 'T' || state[2] == 't');
    }
    if (d)
        closedir(d);
    return stopped;
}

/* kill() returns before the signal has taken effect: a stop is complete
 * only when every thread is stopped, and a request sent before that may
 * still be served. */
int etcd_proc_signal(struct etcd_proc *p, unsigned i, int sig)
{
    if (i >= p->n || p->m[i].pid <= 0)
        return -ESRCH;
    if (kill(p->m[i].pid, sig) < 0)
        return -errno;
    long long end = now_ms() + 10000;
    while ((sig == SIGSTOP || sig == SIGCONT) && all_stopped(p->m[i].pid) != (sig == SIGSTOP)) {
        if (now_ms() >= end)
            return -ETIMEDOUT;
        poll(NULL, 0, 1);
    }
    return 0;
}

int etcd_proc_kill(struct etcd_proc *p, unsigned i)
{
    int rc = etcd_proc_signal(p, i, SIGKILL);
    if (rc == 0)
        waitpid(p->m[i].pid, NULL, 0);
    if (i < p->n)
        p->m[i].pid = 0;
    return rc;
}

int etcd_proc_restart(struct etcd_proc *p, unsigned i, int timeout_ms)
{
    if (i >= p->n || p->m[i].pid != 0)
        return -EINVAL;
    int rc = spawn_member(p, i);
    if (rc == 0 && !etcd_proc_healthy(p, i, timeout_ms))
        rc = member_exited(p, i) ? -ECHILD : -ETIMEDOUT;
    return rc;
}
