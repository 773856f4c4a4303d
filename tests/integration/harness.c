/* harness: see harness.h. Failures abort the current Check test with a
 * message; every wait has a deadline. */
#include "harness.h"

#include <arpa/inet.h>
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_ARGS 64

unsigned long srv_as_limit_mib;
unsigned long srv_nofile_limit;

long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *binary(void)
{
    const char *bin = getenv("TURNSTILE_BIN");
    ck_assert_msg(bin != NULL, "TURNSTILE_BIN is not set");
    return bin;
}

/* Reads from fd until "\n" or EOF or the deadline; returns length. */
static size_t read_line(int fd, char *buf, size_t cap, int timeout_ms)
{
    size_t len = 0;
    long long end = now_ms() + timeout_ms;
    while (len + 1 < cap && now_ms() < end) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, (int)(end - now_ms())) <= 0)
            continue;
        ssize_t n = read(fd, buf + len, 1);
        if (n <= 0)
            break;
        if (buf[len++] == '\n')
            break;
    }
    buf[len] = 0;
    return len;
}

static void collect_args(const char **argv, int start, const char *first, va_list ap)
{
    int i = start;
    for (const char *a = first; a && i < MAX_ARGS - 1; a = va_arg(ap, const char *))
        argv[i++] = a;
    argv[i] = NULL;
}

/* ---- the servers' stderr ---- */

#define LOG_TAIL_BYTES 4096 /* about the last 40 lines */
#define MAX_KNOWN      32

static char log_dir[32]; /* made at the first start */

/* Servers started and not yet reaped. A copy, not the test's struct srv:
 * that may be gone (a failed test's local) when an assertion fails. */
struct known {
    pid_t pid; /* 0: a free slot */
    int port;
    bool reported; /* its end was printed: the file stays */
    char log_path[sizeof(((struct srv *)0)->log_path)];
};
static struct known known[MAX_KNOWN];

/* The entry with this pid (0: a free one), or NULL. */
static struct known *find_known(pid_t pid)
{
    for (int i = 0; i < MAX_KNOWN; i++)
        if (known[i].pid == pid)
            return &known[i];
    return NULL;
}

static struct known *known_of(pid_t pid)
{
    return pid > 0 ? find_known(pid) : NULL;
}

static void remove_log_dir(void)
{
    rmdir(log_dir); /* only when empty: a printed log stays */
}

/* A new file for s's stderr; returns the descriptor the server writes to,
 * and sets s->err_fd to one that reads it. */
static int open_log(struct srv *s)
{
    static unsigned started;
    if (!log_dir[0]) {
        strcpy(log_dir, "/tmp/turnstile-srv-XXXXXX");
        ck_assert_msg(mkdtemp(log_dir) != NULL, "mkdtemp: %s", strerror(errno));
        atexit(remove_log_dir);
    }
    snprintf(s->log_path, sizeof(s->log_path), "%s/%u.err", log_dir, ++started);
    int fd = open(s->log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    s->err_fd = open(s->log_path, O_RDONLY | O_CLOEXEC);
    ck_assert_msg(fd >= 0 && s->err_fd >= 0, "%s: %s", s->log_path, strerror(errno));
    return fd;
}

/* Prints the last lines k's server wrote on stderr, and keeps the file. */
__attribute__((format(printf, 2, 3))) static void report(struct known *k, const char *why, ...)
{
    char text[LOG_TAIL_BYTES + 1], reason[256];
    va_list ap;
    va_start(ap, why);
    vsnprintf(reason, sizeof(reason), why, ap);
    va_end(ap);
    int fd = open(k->log_path, O_RDONLY | O_CLOEXEC);
    off_t size = fd >= 0 ? lseek(fd, 0, SEEK_END) : 0;
    off_t from = size > LOG_TAIL_BYTES ? size - LOG_TAIL_BYTES : 0;
    ssize_t n = fd >= 0 ? pread(fd, text, (size_t)(size - from), from) : 0;
    if (fd >= 0)
        close(fd);
    text[n > 0 ? n : 0] = 0;
    const char *line = from > 0 && strchr(text, '\n') ? strchr(text, '\n') + 1 : text;
    fprintf(stderr, "harness: turnstile pid %d (port %d) %s; the end of its stderr (%s):\n",
            (int)k->pid, k->port, reason, k->log_path);
    for (size_t len; *line; line += len + (line[len] == '\n')) {
        len = strcspn(line, "\n");
        fprintf(stderr, "  | %.*s\n", (int)len, line);
    }
    if (n <= 0)
        fprintf(stderr, "  | (nothing)\n");
    k->reported = true;
}

/* The test's assertions (and the harness's) fail through here first: the
 * link wraps Check's _ck_assert_failed (meson.build). A server still
 * running is about to be killed by the test's teardown; what it said is
 * printed now, then Check reports the failure (its message formatted
 * here, as Check would). */
__attribute__((noreturn)) void __real__ck_assert_failed(const char *file, int line,
                                                        const char *expr, const char *msg, ...);
__attribute__((noreturn)) void __wrap__ck_assert_failed(const char *file, int line,
                                                        const char *expr, const char *msg, ...);
void __wrap__ck_assert_failed(const char *file, int line, const char *expr, const char *msg, ...)
{
    char text[8192] = "";
    if (msg) {
        va_list ap;
        va_start(ap, msg);
        vsnprintf(text, sizeof(text), msg, ap);
        va_end(ap);
    }
    for (int i = 0; i < MAX_KNOWN; i++)
        if (known[i].pid > 0 && !known[i].reported)
            report(&known[i], "was running when %s:%d failed", file, line);
    __real__ck_assert_failed(file, line, expr, msg ? "%s" : NULL, text);
}

/* ---- the server process ---- */

/* The child: argv with stdout on out, stderr on err, and the limits the
 * test asked for. */
static pid_t spawn(const char **argv, int out, int err)
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid > 0)
        return pid;
    struct rlimit rl = {.rlim_cur = srv_as_limit_mib << 20, .rlim_max = srv_as_limit_mib << 20};
    struct rlimit nofile = {.rlim_cur = srv_nofile_limit, .rlim_max = srv_nofile_limit};
    if (srv_as_limit_mib)
        setrlimit(RLIMIT_AS, &rl);
    if (srv_nofile_limit)
        setrlimit(RLIMIT_NOFILE, &nofile);
    dup2(out, 1);
    dup2(err, 2);
    /* Nothing inherited past stderr (pipes, the test's own files): the
     * server's descriptors are its own, and its fd limit all its own. */
    close_range(3, ~0u, 0);
    execv(argv[0], (char **)argv);
    _exit(127);
}

void srv_start(struct srv *s, const char *arg, ...)
{
    const char *argv[MAX_ARGS] = {binary(), "--port", "0"};
    int first = 3;
    /* The same tests with N event loops: meson test --setup threads4. */
    const char *threads = getenv("TURNSTILE_THREADS");
    if (threads && *threads) {
        argv[first++] = "--threads";
        argv[first++] = threads;
    }
    va_list ap;
    va_start(ap, arg);
    collect_args(argv, first, arg, ap);
    va_end(ap);
    int out[2];
    ck_assert(pipe(out) == 0);
    int err = open_log(s);
    s->pid = spawn(argv, out[1], err);
    close(out[1]);
    close(err);
    struct known *k = find_known(0); /* none free: no report */
    if (k) {
        *k = (struct known){.pid = s->pid};
        memcpy(k->log_path, s->log_path, sizeof(k->log_path));
    }
    char line[256], admin[256] = "";
    read_line(out[0], line, sizeof(line), 20000);
    bool want_admin = false; /* its line comes second */
    for (int i = first; argv[i]; i++)
        want_admin |= strncmp(argv[i], "--admin-listen", 14) == 0;
    if (want_admin)
        read_line(out[0], admin, sizeof(admin), 5000);
    close(out[0]); /* the server prints nothing else on stdout */
    ck_assert_msg(sscanf(line, "turnstile listening on http://127.0.0.1:%d", &s->port) == 1,
                  "no listening line, got '%s'", line);
    s->admin_port = 0;
    ck_assert_msg(!want_admin ||
                      sscanf(admin, "admin listening on http://127.0.0.1:%d", &s->admin_port) == 1,
                  "no admin listening line, got '%s'", admin);
    if (k)
        k->port = s->port;
}

/* The process is gone: its log goes too, unless it was printed. */
static void forget(struct srv *s)
{
    struct known *k = known_of(s->pid);
    if (k && !k->reported)
        unlink(k->log_path);
    if (k)
        k->pid = 0;
    if (s->err_fd >= 0)
        close(s->err_fd);
    s->err_fd = -1;
    s->pid = 0;
}

/* srv_wait(), with `expected` (besides 0) the status that is no news. */
static int wait_exit(struct srv *s, int timeout_ms, int expected)
{
    long long end = now_ms() + timeout_ms;
    int status;
    while (now_ms() < end) {
        pid_t r = waitpid(s->pid, &status, WNOHANG);
        if (r == s->pid) {
            int rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
            struct known *k = known_of(s->pid);
            if (k && rc != 0 && rc != expected)
                report(k, "exited with status %d", rc);
            forget(s);
            return rc;
        }
        struct timespec ts = {0, 5 * 1000000};
        nanosleep(&ts, NULL); /* polling a child's exit: no event to wait on */
    }
    struct known *k = known_of(s->pid);
    if (k)
        report(k, "did not exit within %d ms", timeout_ms);
    return -1;
}

int srv_wait(struct srv *s, int timeout_ms)
{
    return wait_exit(s, timeout_ms, 0);
}

int srv_stop(struct srv *s, int sig)
{
    kill(s->pid, sig);
    int rc = wait_exit(s, 30000, 128 + sig);
    if (rc < 0) {
        kill(s->pid, SIGKILL);
        wait_exit(s, 5000, 128 + SIGKILL);
    }
    return rc;
}

int tcp_connect(int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    ck_assert_msg(connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0, "connect: %s",
                  strerror(errno));
    return fd;
}

void send_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        ck_assert_msg(n > 0, "send: %s", strerror(errno));
        buf += n;
        len -= (size_t)n;
    }
}

void reader_connect(struct reader *rd, int port)
{
    rd->fd = tcp_connect(port);
    rd->len = 0;
}

void send_get_access(int fd)
{
    static const char req[] = "GET /access HTTP/1.1\r\nHost: t\r\n\r\n";
    send_all(fd, req, sizeof(req) - 1);
}

void reader_send_access(struct reader *rd, int port)
{
    reader_connect(rd, port);
    send_get_access(rd->fd);
}

/* Waits until rd holds at least `want` bytes; false on EOF (errno
 * ENODATA), timeout (ETIMEDOUT) or error, so that a failing test can say
 * which. */
static bool fill_to(struct reader *rd, size_t want, long long end)
{
    while (rd->len < want) {
        struct pollfd p = {.fd = rd->fd, .events = POLLIN};
        long long left = end - now_ms();
        int ready = poll(&p, 1, left > 0 ? (int)left : 0); /* past the deadline: one last look */
        if (ready == 0)
            errno = ETIMEDOUT;
        if (ready <= 0)
            return false;
        ssize_t n = recv(rd->fd, rd->buf + rd->len, sizeof(rd->buf) - rd->len, 0);
        if (n == 0)
            errno = ENODATA;
        if (n <= 0)
            return false;
        rd->len += (size_t)n;
    }
    return true;
}

static char *find_head_end(struct reader *rd, long long end)
{
    for (;;) {
        rd->buf[rd->len < sizeof(rd->buf) ? rd->len : sizeof(rd->buf) - 1] = 0;
        char *e = strstr(rd->buf, "\r\n\r\n");
        if (e)
            return e;
        if (!fill_to(rd, rd->len + 1, end))
            return NULL;
    }
}

int read_response(struct reader *rd, struct resp *r, int timeout_ms)
{
    long long end = now_ms() + timeout_ms;
    char *e = find_head_end(rd, end);
    if (!e || sscanf(rd->buf, "HTTP/1.%*d %d", &r->status) != 1)
        return -1;
    size_t head = (size_t)(e - rd->buf) + 4;
    snprintf(r->headers, sizeof(r->headers), "%.*s", (int)head, rd->buf);
    const char *cl = strcasestr(r->headers, "\r\nContent-Length: ");
    size_t body = cl ? strtoul(cl + 18, NULL, 10) : 0;
    if (body >= sizeof(r->body) || !fill_to(rd, head + body, end))
        return -1;
    memcpy(r->body, rd->buf + head, body);
    r->body[body] = 0;
    r->body_len = body;
    memmove(rd->buf, rd->buf + head + body, rd->len - head - body);
    rd->len -= head + body;
    return 0;
}

bool wait_closed(int fd, int timeout_ms)
{
    long long end = now_ms() + timeout_ms;
    char buf[256];
    while (now_ms() < end) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, (int)(end - now_ms())) <= 0)
            continue;
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        if (n == 0 || (n < 0 && errno == ECONNRESET))
            return true;
        if (n < 0)
            return false;
    }
    return false;
}

int http_get(int port, const char *path, struct resp *r)
{
    static struct reader rd;
    char req[512];
    int len =
        snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", path);
    rd.fd = tcp_connect(port);
    rd.len = 0;
    send_all(rd.fd, req, (size_t)len);
    int rc = read_response(&rd, r, 30000);
    close(rd.fd);
    return rc;
}

bool has_header(const struct resp *r, const char *line)
{
    return strcasestr(r->headers, line) != NULL;
}

long long access_n(const struct resp *r)
{
    long long n;
    if (r->status != 200 || sscanf(r->body, "Resource accessed %lld times.", &n) != 1)
        return -1;
    return n;
}

/* Follows "a.b.c" through nested JSON objects, textually: /stats has
 * unique keys per object and no strings containing braces. */
static long long json_path(const char *json, const char *path)
{
    char key[64];
    const char *at = json;
    while (*path) {
        size_t n = strcspn(path, ".");
        snprintf(key, sizeof(key), "\"%.*s\":", (int)n, path);
        at = strstr(at, key);
        if (!at)
            return -1;
        at += strlen(key);
        path += n + (path[n] == '.');
    }
    while (*at == ' ')
        at++;
    if (strncmp(at, "true", 4) == 0)
        return 1;
    if (strncmp(at, "false", 5) == 0)
        return 0;
    return strtoll(at, NULL, 10);
}

bool stat_try(int port, const char *key, long long *value)
{
    struct resp r;
    if (http_get(port, "/stats", &r) != 0 || r.status != 200)
        return false;
    *value = json_path(r.body, key);
    return true;
}

long long stat_value(int port, const char *key)
{
    struct resp r;
    ck_assert_int_eq(http_get(port, "/stats", &r), 0);
    ck_assert_int_eq(r.status, 200);
    return json_path(r.body, key);
}

/* Calls done(arg) every 2 ms until it is true (true) or the deadline
 * passes (false): for states that no event announces. */
static bool poll_until(bool (*done)(const void *arg), const void *arg, int timeout_ms)
{
    long long end = now_ms() + timeout_ms;
    while (now_ms() < end) {
        if (done(arg))
            return true;
        struct timespec ts = {0, 2 * 1000000};
        nanosleep(&ts, NULL);
    }
    return false;
}

struct stat_want {
    int port;
    const char *key;
    long long want;
};

static bool stat_is(const void *arg)
{
    const struct stat_want *w = arg;
    return stat_value(w->port, w->key) == w->want;
}

static bool stat_reached(const void *arg)
{
    const struct stat_want *w = arg;
    return stat_value(w->port, w->key) >= w->want;
}

bool wait_stat(int port, const char *key, long long want, int timeout_ms)
{
    struct stat_want w = {port, key, want};
    return poll_until(stat_is, &w, timeout_ms);
}

bool wait_stat_at_least(int port, const char *key, long long least, int timeout_ms)
{
    struct stat_want w = {port, key, least};
    return poll_until(stat_reached, &w, timeout_ms);
}

/* ---- more client sockets ---- */

int tcp_connect_nb(int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    ck_assert_msg(fd >= 0, "socket: %s", strerror(errno));
    int rc = connect(fd, (struct sockaddr *)&a, sizeof(a));
    ck_assert_msg(rc == 0 || errno == EINPROGRESS, "connect: %s", strerror(errno));
    return fd;
}

int sock_error(int fd)
{
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
        return errno;
    return err;
}

void close_rst(int fd)
{
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    ck_assert(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) == 0);
    close(fd);
}

size_t send_nb(int fd, const char *buf, size_t len)
{
    size_t off = 0;
    while (off < len) {
        ssize_t n = send(fd, buf + off, len - off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    return off;
}

int poll_readable(const int *fds, int n, int timeout_ms)
{
    struct pollfd *p = calloc((size_t)n, sizeof(*p));
    ck_assert(p != NULL);
    for (int i = 0; i < n; i++)
        p[i] = (struct pollfd){.fd = fds[i], .events = POLLIN};
    long long end = now_ms() + timeout_ms;
    int ready;
    do /* until something is readable or the deadline passes */
        ready = poll(p, (nfds_t)n, (int)(end - now_ms() > 0 ? end - now_ms() : 0));
    while (ready < 0 && errno == EINTR);
    free(p);
    return ready > 0 ? ready : 0;
}

long long raise_own_nofile(void)
{
    struct rlimit rl;
    ck_assert(getrlimit(RLIMIT_NOFILE, &rl) == 0);
    rl.rlim_cur = rl.rlim_max;
    ck_assert(setrlimit(RLIMIT_NOFILE, &rl) == 0);
    return (long long)rl.rlim_cur;
}

/* ---- the server process, seen through /proc ---- */

long long proc_cpu_ms(pid_t pid)
{
    char path[64], buf[1024];
    unsigned long long utime, stime;
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = 0;
    /* Fields 14 and 15, counted after the ")" that ends the command name. */
    const char *p = strrchr(buf, ')');
    ck_assert(p != NULL);
    ck_assert_int_eq(
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime), 2);
    return (long long)(utime + stime) * 1000 / sysconf(_SC_CLK_TCK);
}

int proc_fd_count(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
    DIR *d = opendir(path);
    ck_assert_msg(d != NULL, "%s: %s", path, strerror(errno));
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

struct fd_range {
    pid_t pid;
    int lo, hi;
};

static bool fd_count_in(const void *arg)
{
    const struct fd_range *r = arg;
    int n = proc_fd_count(r->pid);
    return n >= r->lo && n <= r->hi;
}

bool wait_fd_count(pid_t pid, int lo, int hi, int timeout_ms)
{
    struct fd_range r = {pid, lo, hi};
    return poll_until(fd_count_in, &r, timeout_ms);
}

long long proc_status_kib(pid_t pid, const char *name)
{
    char path[64], line[256];
    long long kib = -1;
    size_t len = strlen(name);
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, name, len) == 0 && line[len] == ':')
            kib = strtoll(line + len + 1, NULL, 10);
    fclose(f);
    return kib;
}

/* ---- a binary expected to exit by itself ---- */

int run_binary(int timeout_ms, char *out, size_t out_cap, char *err, size_t err_cap,
               const char *arg, ...)
{
    const char *argv[MAX_ARGS] = {binary()};
    va_list ap;
    va_start(ap, arg);
    collect_args(argv, 1, arg, ap);
    va_end(ap);
    char tmpl_out[] = "/tmp/turnstile-out-XXXXXX", tmpl_err[] = "/tmp/turnstile-err-XXXXXX";
    int fo = mkstemp(tmpl_out), fe = mkstemp(tmpl_err);
    ck_assert(fo >= 0 && fe >= 0);
    struct srv s = {.pid = fork(), .err_fd = -1}; /* nothing for srv_wait to close */
    ck_assert_int_ge(s.pid, 0);
    if (s.pid == 0) {
        dup2(fo, 1);
        dup2(fe, 2);
        execv(argv[0], (char **)argv);
        _exit(127);
    }
    int status = srv_wait(&s, timeout_ms);
    if (status < 0)
        status = srv_stop(&s, SIGKILL); /* it did not exit: serving, or stuck */
    ssize_t n = pread(fo, out, out_cap - 1, 0);
    out[n > 0 ? n : 0] = 0;
    n = pread(fe, err, err_cap - 1, 0);
    err[n > 0 ? n : 0] = 0;
    close(fo);
    close(fe);
    unlink(tmpl_out);
    unlink(tmpl_err);
    return status;
}

/* True once the process has exited; it is left for srv_wait() to reap. */
static bool exited(pid_t pid)
{
    siginfo_t si = {0};
    return waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == pid;
}

/* One line of s's stderr: at the end of the file, waits for the server to
 * write more, until the deadline or its exit. Returns the length read. */
static size_t read_log_line(struct srv *s, char *buf, size_t cap, long long end)
{
    size_t len = 0;
    while (len + 1 < cap) {
        ssize_t n = read(s->err_fd, buf + len, 1);
        if (n == 1 && buf[len++] == '\n')
            break;
        if (n == 1)
            continue;
        if (now_ms() >= end || exited(s->pid))
            break;
        struct timespec ts = {0, 2 * 1000000};
        nanosleep(&ts, NULL); /* a file's growth: no event to wait on */
    }
    buf[len] = 0;
    return len;
}

bool srv_log_wait(struct srv *s, const char *needle, int timeout_ms)
{
    char line[1024];
    long long end = now_ms() + timeout_ms;
    while (now_ms() < end) {
        size_t n = read_log_line(s, line, sizeof(line), end);
        if (n == 0)
            return false; /* the deadline passed, or the server is gone */
        if (strstr(line, needle))
            return true;
    }
    return false;
}
