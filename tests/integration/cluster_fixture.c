/* The cluster tests' shared fixture (cluster_fixture.h). Waits are for
 * events (a reply, a trapped write) or polls of /stats with deadlines. */
#include "cluster_fixture.h"

#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "load.h"

struct etcd_proc cf_single, cf_trio;
struct srv cf_srv[NSRV + 1];
int cf_nsrv;
char cf_cluster_name[32];
const char *cf_extra[5];
const char *cf_lease_ms = LEASE_LONG_MS;

/* ---- etcd ---- */

void cf_single_start(void)
{
    ck_assert_int_eq(etcd_proc_start(&cf_single, 1, START_MS), 0);
}

void cf_single_stop(void)
{
    cf_stop_all();
    etcd_proc_stop(&cf_single);
}

void cf_trio_start(void)
{
    ck_assert_int_eq(etcd_proc_start(&cf_trio, 3, START_MS), 0);
}

void cf_trio_stop(void)
{
    cf_stop_all();
    etcd_proc_stop(&cf_trio);
}

/* ---- instances ---- */

void cf_new_cluster_name(void)
{
    static int n;
    snprintf(cf_cluster_name, sizeof(cf_cluster_name), "t%d-%d", (int)getpid(), ++n);
}

void cf_start_one(int i, const char *endpoints, const char *delay_ms)
{
    srv_start(&cf_srv[i], "--etcd", endpoints, "--cluster", cf_cluster_name, "--lease-ttl-ms",
              cf_lease_ms, "--delay-ms", delay_ms, "--threads", "2", cf_extra[0], cf_extra[1],
              cf_extra[2], cf_extra[3], NULL);
}

void cf_start_all(const char *endpoints, const char *delay_ms)
{
    cf_new_cluster_name();
    for (cf_nsrv = 0; cf_nsrv < NSRV; cf_nsrv++)
        cf_start_one(cf_nsrv, endpoints, delay_ms);
    memset(cf_extra, 0, sizeof(cf_extra));
    for (int i = 0; i < NSRV; i++)
        ck_assert_msg(wait_stat(cf_srv[i].port, "cluster.healthy", 1, 20000),
                      "instance %d unhealthy", i);
}

void cf_stop_all(void)
{
    for (int i = 0; i < cf_nsrv; i++) {
        kill(cf_srv[i].pid, SIGCONT);
        srv_stop(&cf_srv[i], SIGKILL);
    }
    cf_nsrv = 0;
    cf_lease_ms = LEASE_LONG_MS;
}

const int *cf_ports(void)
{
    static int p[NSRV + 1];
    for (int i = 0; i < cf_nsrv; i++)
        p[i] = cf_srv[i].port;
    return p;
}

struct proxy *cf_start_behind_proxy(const char *delay1_ms)
{
    static char via[64];
    struct proxy *p;
    int port;
    ck_assert_int_eq(proxy_start(&p, cf_single.m[0].client_port, &port), 0);
    snprintf(via, sizeof(via), "http://127.0.0.1:%d", port);
    cf_lease_ms = LEASE_SHORT_MS;
    cf_new_cluster_name();
    cf_start_one(0, via, "0");
    cf_start_one(1, cf_single.endpoints, delay1_ms);
    cf_nsrv = 2;
    memset(cf_extra, 0, sizeof(cf_extra));
    for (int i = 0; i < cf_nsrv; i++)
        ck_assert_msg(wait_stat(cf_srv[i].port, "cluster.healthy", 1, 20000), "instance %d", i);
    return p;
}

void cf_trap_counter_put(struct proxy *p)
{
    char key[160], b64[224], needle[256];
    int len = snprintf(key, sizeof(key), "/turnstile/%s/counter", cf_cluster_name);
    cf_base64(key, (size_t)len, b64);
    snprintf(needle, sizeof(needle), "\"request_put\":{\"key\":\"%s\"", b64);
    proxy_trap(p, needle);
}

/* ---- requests ---- */

static const char get_access[] = "GET /access HTTP/1.1\r\nHost: t\r\n\r\n";

int cf_send_access(int port)
{
    int fd = tcp_connect(port);
    send_all(fd, get_access, sizeof(get_access) - 1);
    return fd;
}

int cf_send_keyed(int port, const char *key)
{
    char req[256];
    int fd = tcp_connect(port);
    int len = snprintf(req, sizeof(req),
                       "GET /access HTTP/1.1\r\nHost: t\r\nIdempotency-Key: \"%s\"\r\n\r\n", key);
    send_all(fd, req, (size_t)len);
    return fd;
}

void cf_read_reply(int fd, struct resp *r, int timeout_ms)
{
    struct reader rd = {.fd = fd};
    ck_assert_msg(read_response(&rd, r, timeout_ms) == 0, "no reply within %d ms", timeout_ms);
    close(fd);
}

long long cf_keyed_n(int fd)
{
    struct resp r;
    cf_read_reply(fd, &r, 30000);
    ck_assert_int_eq(r.status, 200);
    return access_n(&r);
}

/* ---- the counter ---- */

void cf_assert_counter(long long want)
{
    for (int i = 0; i < cf_nsrv; i++)
        ck_assert_msg(wait_stat(cf_srv[i].port, "counter", want, 10000),
                      "instance %d: counter %lld, %lld 200s were sent", i,
                      stat_value(cf_srv[i].port, "counter"), want);
}

void cf_counter_exact(const char *endpoints)
{
    int unavailable, after;
    cf_start_all(endpoints, "0");
    load_start(cf_ports(), cf_nsrv, 12, 40, 60000);
    int ok = load_finish(&unavailable, &after, 0);
    ck_assert_int_eq(unavailable, 0);
    ck_assert_int_eq(ok, 12 * 40);
    cf_assert_counter(ok);
    for (int i = 0; i < cf_nsrv; i++) { /* each served its share, through the cluster's lock */
        ck_assert_int_eq(stat_value(cf_srv[i].port, "lock.acquisitions"), 4 * 40);
        ck_assert_int_eq(stat_value(cf_srv[i].port, "cluster.fenced"), 0);
    }
    cf_stop_all();
}

void cf_all_served_once(int n, int instances, int timeout_ms)
{
    static int fds[CF_ALL_SERVED_MAX];
    static long long ns[CF_ALL_SERVED_MAX];
    for (int k = 0; k < n; k++)
        fds[k] = cf_send_access(cf_srv[k % instances].port);
    for (int k = 0; k < n; k++) {
        struct resp r;
        cf_read_reply(fds[k], &r, timeout_ms);
        ck_assert_msg(r.status == 200, "request %d: %d %s", k, r.status, r.body);
        ns[k] = access_n(&r);
    }
    qsort(ns, (size_t)n, sizeof(ns[0]), load_cmp_ll);
    for (int k = 0; k < n; k++)
        ck_assert_int_eq(ns[k], k + 1);
    cf_assert_counter(n);
}

/* ---- etcd's history ---- */

static const char b64_abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void cf_base64(const char *in, size_t len, char *out)
{
    for (size_t i = 0; i < len; i += 3, out += 4) {
        unsigned v = (unsigned char)in[i] << 16;
        v |= i + 1 < len ? (unsigned char)in[i + 1] << 8 : 0;
        v |= i + 2 < len ? (unsigned char)in[i + 2] : 0;
        out[0] = b64_abc[v >> 18];
        out[1] = b64_abc[(v >> 12) & 63];
        out[2] = i + 1 < len ? b64_abc[(v >> 6) & 63] : '=';
        out[3] = i + 2 < len ? b64_abc[v & 63] : '=';
    }
    *out = '\0';
}

void cf_unbase64(const char *in, char *out)
{
    unsigned v = 0, bits = 0;
    for (const char *c; *in && (c = strchr(b64_abc, *in)); in++) {
        v = v << 6 | (unsigned)(c - b64_abc);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            *out++ = (char)(v >> bits & 0xff);
        }
    }
    *out = '\0';
}

/* etcd's JSON fields that name key (prefix: every key under it) into out. */
static void key_fields(const char *key, bool prefix, char *out, size_t cap)
{
    char k64[192], end[192], e64[192], range[224] = "";
    size_t len = strlen(key);
    if (prefix) {
        snprintf(end, sizeof(end), "%s", key);
        end[len - 1]++; /* the prefix's range end: its last byte + 1 */
        cf_base64(end, len, e64);
        snprintf(range, sizeof(range), ",\"range_end\":\"%s\"", e64);
    }
    cf_base64(key, len, k64);
    snprintf(out, cap, "\"key\":\"%s\"%s", k64, range);
}

/* The HTTP/1.0 request that posts body to the gateway's path, into req. */
static void post_request(const char *path, const char *body, char *req, size_t cap)
{
    snprintf(req, cap, "POST %s HTTP/1.0\r\nContent-Length: %zu\r\n\r\n%s", path, strlen(body),
             body);
}

/* etcd's watch request for key (or its prefix) from revision 1, as the
 * HTTP/1.0 request that asks for it, into req. */
static void watch_request(const char *key, bool prefix, char *req, size_t cap)
{
    char fields[448], body[640];
    key_fields(key, prefix, fields, sizeof(fields));
    snprintf(body, sizeof(body), "{\"create_request\":{%s,\"start_revision\":1}}", fields);
    post_request("/v3/watch", body, req, cap);
}

const char *cf_range(int etcd_port, const char *key, bool prefix)
{
    static char buf[1 << 20];
    char fields[448], body[512], req[768];
    size_t got = 0;
    ssize_t n = 1;
    key_fields(key, prefix, fields, sizeof(fields));
    snprintf(body, sizeof(body), "{%s}", fields);
    post_request("/v3/kv/range", body, req, sizeof(req));
    int fd = tcp_connect(etcd_port);
    send_all(fd, req, strlen(req));
    long long until = now_ms() + 20000;
    while (n > 0 && got < sizeof(buf) - 1 && now_ms() < until && poll_readable(&fd, 1, 1000) > 0)
        if ((n = read(fd, buf + got, sizeof(buf) - 1 - got)) > 0)
            got += (size_t)n;
    close(fd);
    buf[got] = '\0';
    ck_assert_msg(n == 0 && strstr(buf, " 200 "), "etcd's range: '%.200s'", buf);
    return buf;
}

const char *cf_history(int etcd_port, const char *key, bool prefix, int events)
{
    static char buf[4 << 20];
    char req[768];
    size_t got = 0;
    int seen = 0;
    watch_request(key, prefix, req, sizeof(req));
    int fd = tcp_connect(etcd_port);
    send_all(fd, req, strlen(req));
    long long until = now_ms() + 20000;
    while (seen < events && now_ms() < until && poll_readable(&fd, 1, 1000) > 0) {
        ssize_t n = read(fd, buf + got, sizeof(buf) - 1 - got);
        ck_assert_int_gt(n, 0);
        got += (size_t)n;
        buf[got] = '\0';
        seen = 0;
        for (const char *p = buf; (p = strstr(p, "\"key\":\"")); p += 7)
            seen++;
    }
    close(fd);
    ck_assert_int_ge(seen, events);
    return buf;
}
