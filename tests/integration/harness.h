/* harness: what integration tests need to drive the real turnstile binary:
 * start it on --port 0 and read its listening line, stop it and get its
 * exit status, raw HTTP over sockets (pipelining included), and /stats
 * values polled with a deadline instead of sleeps. Only 127.0.0.1. */
#ifndef TURNSTILE_HARNESS_H
#define TURNSTILE_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* A server's stderr goes to a file of its own (log_path, in a directory
 * the harness makes under /tmp), not a pipe: nothing the server writes can
 * block it, and what it wrote can still be read after it is gone. The end
 * of that file is printed (with the path, and the file kept) when the
 * server does not stop in time or stops otherwise than asked, when it
 * gives no listening line, and when an assertion fails while it runs. The
 * files of servers that ended as asked are removed, and the directory at
 * exit if empty. */
struct srv {
    pid_t pid;
    int port;
    int err_fd;        /* reads log_path, for srv_log_wait() */
    char log_path[64]; /* the server's stderr */
    /* With --admin-listen: its port, from the second line; else 0. */
    int admin_port;
};

/* When nonzero, srv_start() caps the server's address space (RLIMIT_AS)
 * at this many MiB, so it runs out of coroutine stacks early. */
extern unsigned long srv_as_limit_mib;
/* When nonzero, srv_start() caps the server's descriptors (RLIMIT_NOFILE,
 * soft and hard: the server lifts its soft limit toward the hard one). */
extern unsigned long srv_nofile_limit;

/* Starts $TURNSTILE_BIN --port 0 ARGS... (NULL-terminated) and waits for
 * its listening line (and the admin port's after it, when an argument is
 * --admin-listen). */
void srv_start(struct srv *s, const char *arg, ...);
/* Sends sig and returns the exit status (128+N if killed by signal N), or
 * -1 if the process did not exit within 30 s (it is then killed). Any
 * status but 0 and 128+sig prints the end of the server's stderr. */
int srv_stop(struct srv *s, int sig);
/* Waits for the process to exit by itself; -1 if it did not in time. Any
 * status but 0, and a timeout, print the end of the server's stderr. */
int srv_wait(struct srv *s, int timeout_ms);

int tcp_connect(int port);
void send_all(int fd, const char *buf, size_t len);

struct resp {
    int status;
    char headers[2048]; /* raw header block, lower-cased names kept as sent */
    char body[32768];   /* route.h's ROUTE_DOC_CAP: /stats in cluster mode, with its lists */
    size_t body_len;
};

/* Buffers a connection's input so pipelined responses read one at a time. */
struct reader {
    int fd;
    size_t len;
    char buf[65536];
};

/* Connects rd to 127.0.0.1:port with an empty buffer. */
void reader_connect(struct reader *rd, int port);
/* Sends a keep-alive GET /access on fd, without reading the reply. */
void send_get_access(int fd);
/* reader_connect(), then send_get_access() on the new connection. */
void reader_send_access(struct reader *rd, int port);
/* Reads the next response; 0, or -1 on EOF/timeout/garbage. */
int read_response(struct reader *rd, struct resp *r, int timeout_ms);
/* True if the peer closes the connection within timeout_ms. */
bool wait_closed(int fd, int timeout_ms);
/* One request on a fresh connection. */
int http_get(int port, const char *path, struct resp *r);
bool has_header(const struct resp *r, const char *line);
/* The N of "Resource accessed N times.", or -1. */
long long access_n(const struct resp *r);

/* A number from /stats: key is a path of object keys, "lock.waiters". */
long long stat_value(int port, const char *key);
/* Like stat_value, but false instead of a failed test when the server
 * answers /stats with anything but 200 (a 503 under memory pressure). */
bool stat_try(int port, const char *key, long long *value);
/* Polls /stats until key == want; false if the deadline passes. For a
 * value that settles (a gauge, a counter nothing else moves). */
bool wait_stat(int port, const char *key, long long want, int timeout_ms);
/* Polls /stats until key >= least: for a counter that keeps moving (under
 * load it may pass any one value between two polls). */
bool wait_stat_at_least(int port, const char *key, long long least, int timeout_ms);

long long now_ms(void);

/* ---- more client sockets ---- */

/* A non-blocking socket whose connect to 127.0.0.1:port is under way (or
 * done): watch it for writability, then check sock_error(). */
int tcp_connect_nb(int port);
/* The pending error of a socket (SO_ERROR), 0 if none. */
int sock_error(int fd);
/* Closes with SO_LINGER {1, 0}: the peer gets a RST, not a FIN. */
void close_rst(int fd);
/* Sends as much of buf as the socket takes without blocking (MSG_DONTWAIT)
 * and returns how much that was; stops at EAGAIN or when the peer is gone. */
size_t send_nb(int fd, const char *buf, size_t len);
/* How many of fds[0..n) have something to read (data, EOF or an error)
 * within timeout_ms; waits for the first, then counts. */
int poll_readable(const int *fds, int n, int timeout_ms);
/* Lifts this process's RLIMIT_NOFILE soft limit to the hard one; returns it. */
long long raise_own_nofile(void);

/* ---- the server process, seen through /proc ---- */

/* CPU time (user + system) the process used so far, in ms. */
long long proc_cpu_ms(pid_t pid);
/* Descriptors the process has open. */
int proc_fd_count(pid_t pid);
/* Polls until the process has between lo and hi descriptors open; false at
 * the deadline. */
bool wait_fd_count(pid_t pid, int lo, int hi, int timeout_ms);
/* A "Name:   N kB" line of /proc/PID/status in KiB ("VmRSS", "VmHWM"), or -1. */
long long proc_status_kib(pid_t pid, const char *name);

/* ---- a binary expected to exit by itself ---- */

/* Runs $TURNSTILE_BIN with ARGS (NULL-terminated, no --port added) and
 * returns its exit status and what it printed (stdout and stderr, each
 * NUL-terminated). A process still running after timeout_ms (serving when
 * it should have refused to start) is killed: the status is then
 * 128 + SIGKILL. */
int run_binary(int timeout_ms, char *out, size_t out_cap, char *err, size_t err_cap,
               const char *arg, ...);

/* ---- the server's log ---- */

/* Reads the server's stderr until a line containing needle comes (true)
 * or the deadline passes or the server has exited (false). Lines before
 * it are consumed. */
bool srv_log_wait(struct srv *s, const char *needle, int timeout_ms);

#endif
