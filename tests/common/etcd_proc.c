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
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define START_TRIES 3     /* a free port can be taken by someone else before etcd binds it */
#define PORTS       3     /* a member's: client, peer, metrics (health without TLS) */
#define CTL_MS      30000 /* etcdctl's bound: an auth change is a raft write */
#define MAX_ARGS    48

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
    int fds[PORTS * ETCD_PROC_MAX];
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

/* Appends NULL-ended args to argv (of MAX_ARGS) at *n. */
static void push(const char **argv, unsigned *n, ...)
{
    va_list ap;
    va_start(ap, n);
    for (const char *a; (a = va_arg(ap, const char *)) && *n < MAX_ARGS - 1;)
        argv[(*n)++] = a;
    va_end(ap);
    argv[*n] = NULL;
}

/* TLS as a hardened etcd has it: certificates required of clients; /health
 * on a plain port of its own, so polling it needs no certificate. */
static void tls_args(const struct etcd_proc *p, unsigned i, const char **argv, unsigned *n)
{
    static char cert[96], key[96], ca[96], metrics[48], ttl[16];
    snprintf(cert, sizeof(cert), "%s/server.pem", p->certs);
    snprintf(key, sizeof(key), "%s/server.key", p->certs);
    snprintf(ca, sizeof(ca), "%s/ca.pem", p->certs);
    snprintf(metrics, sizeof(metrics), "http://127.0.0.1:%d", p->m[i].health_port);
    snprintf(ttl, sizeof(ttl), "%d", p->auth_token_ttl_s);
    if (p->certs[0])
        push(argv, n, "--cert-file", cert, "--key-file", key, "--client-cert-auth",
             "--trusted-ca-file", ca, "--listen-metrics-urls", metrics, (char *)NULL);
    if (p->auth_token_ttl_s)
        push(argv, n, "--auth-token-ttl", ttl, (char *)NULL);
}

static void exec_member(const struct etcd_proc *p, unsigned i)
{
    const struct etcd_proc_member *m = &p->m[i];
    char data[128], log[128], peer[48], cluster[ETCD_PROC_MAX * 48];
    const char *argv[MAX_ARGS];
    unsigned n = 0;
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
    push(argv, &n, bin, "--name", m->name, "--data-dir", data, "--listen-client-urls", m->url,
         "--advertise-client-urls", m->url, "--listen-peer-urls", peer,
         "--initial-advertise-peer-urls", peer, "--initial-cluster", cluster,
         "--initial-cluster-token", p->dir, "--initial-cluster-state", "new",
         "--heartbeat-interval", "200", "--election-timeout", "2000", "--logger", "zap",
         "--log-level", "warn", (char *)NULL);
    tls_args(p, i, argv, &n);
    char quota[32];
    snprintf(quota, sizeof(quota), "--quota-backend-bytes=%llu", p->quota_bytes);
    if (p->quota_bytes)
        push(argv, &n, quota, (char *)NULL);
    execvp(bin, (char *const *)argv);
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
        if (health_once(p->m[i].health_port))
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
        while (!health_once(p->m[i].health_port)) {
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

/* Member i's ports and URL; its URL appended to the endpoints at *len. */
static void member_init(struct etcd_proc *p, unsigned i, const int *ports, size_t *len)
{
    struct etcd_proc_member *m = &p->m[i];
    m->client_port = ports[PORTS * i];
    m->peer_port = ports[PORTS * i + 1];
    m->health_port = p->certs[0] ? ports[PORTS * i + 2] : m->client_port;
    snprintf(m->name, sizeof(m->name), "m%u", i);
    snprintf(m->url, sizeof(m->url), "%s://127.0.0.1:%d", p->certs[0] ? "https" : "http",
             m->client_port);
    *len += (size_t)snprintf(p->endpoints + *len, sizeof(p->endpoints) - *len, "%s%s", i ? "," : "",
                             m->url);
}

/* One attempt on fresh ports and a fresh directory. */
static int start_once(struct etcd_proc *p, unsigned n, const struct etcd_proc_opts *o,
                      long long end)
{
    int ports[PORTS * ETCD_PROC_MAX];
    *p = (struct etcd_proc){.n = n,
                            .auth_token_ttl_s = o ? o->auth_token_ttl_s : 0,
                            .quota_bytes = o ? o->quota_bytes : 0};
    if (o && o->certs)
        snprintf(p->certs, sizeof(p->certs), "%s", o->certs);
    snprintf(p->dir, sizeof(p->dir), "/tmp/etcd_proc_XXXXXX");
    if (!mkdtemp(p->dir))
        return -errno;
    int rc = pick_ports(ports, PORTS * n);
    size_t len = 0;
    for (unsigned i = 0; i < n && rc == 0; i++)
        member_init(p, i, ports, &len);
    for (unsigned i = 0; i < n && rc == 0; i++)
        rc = spawn_member(p, i);
    if (rc == 0)
        rc = wait_healthy(p, end);
    return rc;
}

int etcd_proc_start_quota(struct etcd_proc *p, unsigned n, unsigned long long quota_bytes,
                          int timeout_ms)
{
    struct etcd_proc_opts o = {.quota_bytes = quota_bytes};
    return etcd_proc_start_opts(p, n, &o, timeout_ms);
}

int etcd_proc_start_opts(struct etcd_proc *p, unsigned n, const struct etcd_proc_opts *opts,
                         int timeout_ms)
{
    if (n < 1 || n > ETCD_PROC_MAX)
        return -EINVAL;
    long long end = now_ms() + timeout_ms;
    int rc = -ECHILD;
    for (int tries = 0; tries < START_TRIES && rc == -ECHILD; tries++) {
        rc = start_once(p, n, opts, end);
        if (rc < 0) {
            kill_all(p);
            print_logs(p);
            etcd_proc_stop(p);
        }
    }
    return rc;
}

int etcd_proc_start(struct etcd_proc *p, unsigned n, int timeout_ms)
{
    return etcd_proc_start_opts(p, n, NULL, timeout_ms);
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

/* ---- etcdctl ---- */

/* Waits at most CTL_MS for pid; its exit status, or -ETIMEDOUT (killed). */
static int ctl_wait(pid_t pid)
{
    long long end = now_ms() + CTL_MS;
    int status;
    while (waitpid(pid, &status, WNOHANG) == 0) {
        if (now_ms() >= end) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            return -ETIMEDOUT;
        }
        poll(NULL, 0, 10);
    }
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EIO;
}

static void exec_ctl(const struct etcd_proc *p, const char *out, const char **args)
{
    static char ca[96], cert[96], key[96], root[64];
    const char *argv[MAX_ARGS];
    unsigned n = 0;
    const char *bin = getenv("ETCDCTL_BIN") ? getenv("ETCDCTL_BIN") : "etcdctl";
    int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || dup2(fd, STDOUT_FILENO) < 0 || dup2(fd, STDERR_FILENO) < 0)
        _exit(127);
    snprintf(ca, sizeof(ca), "%s/ca.pem", p->certs);
    snprintf(cert, sizeof(cert), "%s/client.pem", p->certs);
    snprintf(key, sizeof(key), "%s/client.key", p->certs);
    snprintf(root, sizeof(root), "root:%s", ETCD_PROC_ROOT_PASSWORD);
    push(argv, &n, bin, "--endpoints", p->endpoints, (char *)NULL);
    if (p->certs[0])
        push(argv, &n, "--cacert", ca, "--cert", cert, "--key", key, (char *)NULL);
    if (p->auth)
        push(argv, &n, "--user", root, (char *)NULL);
    while (*args && n < MAX_ARGS - 1)
        argv[n++] = *args++;
    argv[n] = NULL;
    execvp(bin, (char *const *)argv);
    _exit(127);
}

int etcd_proc_ctl(struct etcd_proc *p, ...)
{
    const char *args[MAX_ARGS / 2];
    unsigned n = 0;
    va_list ap;
    va_start(ap, p);
    for (const char *a; (a = va_arg(ap, const char *)) && n < MAX_ARGS / 2 - 1;)
        args[n++] = a;
    va_end(ap);
    args[n] = NULL;
    char out[128];
    snprintf(out, sizeof(out), "%s/etcdctl.out", p->dir);
    pid_t pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0)
        exec_ctl(p, out, args);
    int rc = ctl_wait(pid);
    if (rc < 0) {
        char buf[2048] = "";
        FILE *f = fopen(out, "r");
        size_t len = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
        if (f)
            fclose(f);
        buf[len] = '\0';
        fprintf(stderr, "etcd_proc: etcdctl %s failed: %s\n", args[0] ? args[0] : "", buf);
    }
    return rc;
}

int etcd_proc_auth_enable(struct etcd_proc *p)
{
    int rc = etcd_proc_ctl(p, "user", "add", "root", "--new-user-password=" ETCD_PROC_ROOT_PASSWORD,
                           (char *)NULL);
    if (rc == 0)
        rc = etcd_proc_ctl(p, "user", "grant-role", "root", "root", (char *)NULL);
    if (rc == 0)
        rc = etcd_proc_ctl(p, "auth", "enable", (char *)NULL);
    p->auth = rc == 0;
    return rc;
}

int etcd_proc_add_user(struct etcd_proc *p, const char *user, const char *password,
                       const char *prefix)
{
    char pw[128], role[64];
    snprintf(pw, sizeof(pw), "--new-user-password=%s", password);
    snprintf(role, sizeof(role), "%s-role", user);
    int rc = etcd_proc_ctl(p, "user", "add", user, pw, (char *)NULL);
    if (rc == 0 && prefix)
        rc = etcd_proc_ctl(p, "role", "add", role, (char *)NULL);
    if (rc == 0 && prefix)
        rc = etcd_proc_ctl(p, "role", "grant-permission", "--prefix", role, "readwrite", prefix,
                           (char *)NULL);
    if (rc == 0 && prefix)
        rc = etcd_proc_ctl(p, "user", "grant-role", user, role, (char *)NULL);
    return rc;
}
