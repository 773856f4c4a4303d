/* Cluster mode end to end: real etcd (a single node and a 3-member
 * cluster, tests/common/etcd_proc) and three turnstile instances sharing
 * one counter and one FIFO lock. The counter stays exact under clients
 * spread over the instances; grants follow arrival order across them; a
 * killed holder's place goes with its lease; a paused holder's write is
 * fenced off; an etcd member dies and comes back under load; and all of
 * etcd goes away and comes back without restarting turnstile; and on an
 * etcd with TLS, client certificates and auth, the same exactness, each
 * refusal's 503 and log line, tokens expiring and a certificate rotated.
 * Waits are for events (a reply, a log line) or polls of /stats with
 * deadlines. */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "certs.h"
#include "check_run.h"
#include "etcd_proc.h"
#include "harness.h"
#include "load.h"
#include "proxy.h"
#include "scratch.h"

#define START_MS 30000 /* etcd, or a cluster, to become healthy */
#define NSRV     3
/* A lease that a stalled test machine cannot lose by accident, and the
 * short one of the tests that are about leases expiring: the shortest
 * etcd grants with the test's election timeout (etcd_proc.c). */
#define LEASE_LONG_MS  "6000"
#define LEASE_SHORT_MS "3000"

static struct etcd_proc single, trio, solo; /* solo: a node to take down */
static struct etcd_proc hardened;           /* TLS, client certificates, auth */
static struct srv srv[NSRV + 1];            /* one more started while etcd is down */
static int nsrv;
static char cluster_name[32];

/* ---- instances ---- */

static void new_cluster_name(void)
{
    static int n;
    snprintf(cluster_name, sizeof(cluster_name), "t%d-%d", (int)getpid(), ++n);
}

/* Flags every instance of a test gets beyond the common ones: up to two
 * pairs, NULL-terminated early. */
static const char *extra[5];
static const char *lease_ms = LEASE_LONG_MS;

/* Starts instance i of the current cluster, two loops each: each loop has
 * its own part of the cluster (clients, watch, queue copy). */
static void start_one(int i, const char *endpoints, const char *delay_ms)
{
    srv_start(&srv[i], "--etcd", endpoints, "--cluster", cluster_name, "--lease-ttl-ms", lease_ms,
              "--delay-ms", delay_ms, "--threads", "2", extra[0], extra[1], extra[2], extra[3],
              NULL);
}

static void start_all(const char *endpoints, const char *delay_ms)
{
    new_cluster_name();
    for (nsrv = 0; nsrv < NSRV; nsrv++)
        start_one(nsrv, endpoints, delay_ms);
    memset(extra, 0, sizeof(extra));
    for (int i = 0; i < NSRV; i++)
        ck_assert_msg(wait_stat(srv[i].port, "cluster.healthy", 1, 20000), "instance %d unhealthy",
                      i);
}

static void stop_all(void)
{
    for (int i = 0; i < nsrv; i++) {
        kill(srv[i].pid, SIGCONT);
        srv_stop(&srv[i], SIGKILL);
    }
    nsrv = 0;
    lease_ms = LEASE_LONG_MS;
}

/* ---- requests ---- */

static const char get_access[] = "GET /access HTTP/1.1\r\nHost: t\r\n\r\n";

/* A request sent on a connection of its own, its reply read later. */
static int send_access(int port)
{
    int fd = tcp_connect(port);
    send_all(fd, get_access, sizeof(get_access) - 1);
    return fd;
}

static void read_reply(int fd, struct resp *r, int timeout_ms)
{
    struct reader rd = {.fd = fd};
    ck_assert_msg(read_response(&rd, r, timeout_ms) == 0, "no reply within %d ms", timeout_ms);
    close(fd);
}

/* The reply on fd is `status`, and for a 200, N is n. */
static void expect_reply(int fd, int status, long long n, int timeout_ms)
{
    struct resp r;
    read_reply(fd, &r, timeout_ms);
    ck_assert_msg(r.status == status, "%d %s, not %d", r.status, r.body, status);
    if (status == 200)
        ck_assert_int_eq(access_n(&r), n);
}

/* The instances' ports, for load_start(). */
static const int *ports(void)
{
    static int p[NSRV + 1];
    for (int i = 0; i < nsrv; i++)
        p[i] = srv[i].port;
    return p;
}

/* At a quiet moment every instance agrees that the counter is `want`. */
static void assert_counter(long long want)
{
    for (int i = 0; i < nsrv; i++)
        ck_assert_msg(wait_stat(srv[i].port, "counter", want, 10000),
                      "instance %d: counter %lld, %lld 200s were sent", i,
                      stat_value(srv[i].port, "counter"), want);
}

/* ---- the counter is exact ---- */

static void counter_exact(const char *endpoints)
{
    int unavailable, after;
    start_all(endpoints, "0");
    load_start(ports(), nsrv, 12, 40, 60000);
    int ok = load_finish(&unavailable, &after, 0);
    ck_assert_int_eq(unavailable, 0);
    ck_assert_int_eq(ok, 12 * 40);
    assert_counter(ok);
    for (int i = 0; i < nsrv; i++) { /* each served its share, through the cluster's lock */
        ck_assert_int_eq(stat_value(srv[i].port, "lock.acquisitions"), 4 * 40);
        ck_assert_int_eq(stat_value(srv[i].port, "cluster.fenced"), 0);
    }
    stop_all();
}

START_TEST(counter_exact_single_node)
{
    counter_exact(single.endpoints);
}
END_TEST

START_TEST(counter_exact_three_members)
{
    counter_exact(trio.endpoints);
}
END_TEST

/* ---- Idempotency-Key ---- */

/* One keyed request on a connection of its own, its reply read later. */
static int send_keyed(int port, const char *key)
{
    char req[256];
    int fd = tcp_connect(port);
    int len = snprintf(req, sizeof(req),
                       "GET /access HTTP/1.1\r\nHost: t\r\nIdempotency-Key: \"%s\"\r\n\r\n", key);
    send_all(fd, req, (size_t)len);
    return fd;
}

static long long keyed_n(int fd)
{
    struct resp r;
    read_reply(fd, &r, 30000);
    ck_assert_int_eq(r.status, 200);
    return access_n(&r);
}

/* The same key on every instance: the first holds the lock while the
 * others queue behind it; one count, one N for all, also for a later
 * repeat; the txn that found the key wrote nothing. */
START_TEST(idempotency_key_applies_once_across_instances)
{
    int fds[NSRV];
    start_all(single.endpoints, "300");
    fds[0] = send_keyed(srv[0].port, "k-1");
    ck_assert(wait_stat(srv[0].port, "requests.in_section", 1, 10000));
    for (int i = 1; i < NSRV; i++) {
        fds[i] = send_keyed(srv[i].port, "k-1");
        ck_assert(wait_stat(srv[i].port, "cluster.waiters", 1, 10000));
    }
    for (int i = 0; i < NSRV; i++)
        ck_assert_int_eq(keyed_n(fds[i]), 1);
    ck_assert_int_eq(keyed_n(send_keyed(srv[2].port, "k-1")), 1);
    ck_assert_int_eq(keyed_n(send_keyed(srv[1].port, "k-2")), 2);
    assert_counter(2);
    long long repeats = 0;
    for (int i = 0; i < NSRV; i++)
        repeats += stat_value(srv[i].port, "idempotency.repeats");
    ck_assert_int_eq(repeats, NSRV);
    stop_all();
}
END_TEST

/* On one loop, a key's repeat granted as its first's write is sent
 * (pipelined): its own txn finds the key and writes nothing, its place is
 * let go with its key still in the queue, and the request pipelined behind
 * it writes on the first's value. */
START_TEST(idempotency_repeat_in_a_pipeline)
{
    int fds[4];
    static const char *flags[] = {"--threads", "1", NULL};
    memcpy(extra, flags, sizeof(flags));
    start_all(single.endpoints, "300");
    fds[0] = send_keyed(srv[0].port, "k-1");
    ck_assert(wait_stat(srv[0].port, "requests.in_section", 1, 10000));
    fds[1] = send_keyed(srv[0].port, "k-1");
    ck_assert(wait_stat(srv[0].port, "cluster.queue_length", 2, 10000));
    fds[2] = send_keyed(srv[0].port, "k-2");
    ck_assert(wait_stat(srv[0].port, "cluster.queue_length", 3, 10000));
    fds[3] = send_access(srv[0].port);
    ck_assert(wait_stat(srv[0].port, "cluster.queue_length", 4, 10000));
    ck_assert_int_eq(keyed_n(fds[0]), 1);
    ck_assert_int_eq(keyed_n(fds[1]), 1);
    ck_assert_int_eq(keyed_n(fds[2]), 2);
    ck_assert_int_eq(keyed_n(fds[3]), 3);
    assert_counter(3);
    ck_assert_int_eq(stat_value(srv[0].port, "idempotency.repeats"), 1);
    ck_assert_int_ge(stat_value(srv[0].port, "cluster.pipelined"), 2);
    stop_all();
}
END_TEST

/* ---- FIFO across instances ---- */

/* One request at a time, each sent once the previous one is in the
 * cluster's queue (seen by the instance that took it): their Ns must come
 * in that order, whichever instance took them. Runs of requests on one
 * instance between the others': a release there may grant the next one on
 * its own reply, before its watch shows the release (ticket.h), and that
 * must keep the order too. */
START_TEST(fifo_across_instances)
{
    enum { N = 9 };
    static const int on[N] = {0, 0, 1, 1, 0, 2, 2, 1, 0};
    int fds[N];
    /* Every request joins while the first still holds: N sections. */
    start_all(single.endpoints, "1000");
    for (int k = 0; k < N; k++) {
        int port = srv[on[k]].port;
        fds[k] = send_access(port);
        ck_assert_msg(wait_stat(port, "cluster.queue_length", k + 1, 10000),
                      "request %d did not join the queue", k);
    }
    for (int k = 0; k < N; k++) {
        struct resp r;
        read_reply(fds[k], &r, 20000);
        ck_assert_int_eq(r.status, 200);
        ck_assert_int_eq(access_n(&r), k + 1);
    }
    stop_all();
}
END_TEST

/* ---- the queue's key names are a bounded set ---- */

static const char b64_abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void base64(const char *in, size_t len, char *out)
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

static void unbase64(const char *in, char *out)
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

/* The first `events` events of key (prefix: of every key under it) since
 * revision 1: a watch from there replays the whole history (nothing is
 * compacted in the tests), whatever was deleted since. Returns etcd's JSON
 * stream (HTTP/1.0: it comes unchunked), in a buffer of its own. */
static const char *history(int etcd_port, const char *key, bool prefix, int events)
{
    static char buf[4 << 20];
    char k64[192], end[192], e64[192], range[224] = "", req[768], body[640];
    size_t len = strlen(key), got = 0;
    int seen = 0;
    if (prefix) {
        snprintf(end, sizeof(end), "%s", key);
        end[len - 1]++; /* the prefix's range end: its last byte + 1 */
        base64(end, len, e64);
        snprintf(range, sizeof(range), ",\"range_end\":\"%s\"", e64);
    }
    base64(key, len, k64);
    snprintf(body, sizeof(body), "{\"create_request\":{\"key\":\"%s\"%s,\"start_revision\":1}}",
             k64, range);
    snprintf(req, sizeof(req), "POST /v3/watch HTTP/1.0\r\nContent-Length: %zu\r\n\r\n%s",
             strlen(body), body);
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

/* Distinct names among the first `events` events under prefix. */
static int names_ever_created(int etcd_port, const char *prefix, int events)
{
    static char names[4096][96];
    int nnames = 0;
    for (const char *p = history(etcd_port, prefix, true, events); (p = strstr(p, "\"key\":\""));
         p += 7) {
        int k = 0;
        sscanf(p + 7, "%95[^\"]", names[nnames]);
        while (k < nnames && strcmp(names[k], names[nnames]) != 0)
            k++;
        nnames += k == nnames && nnames < 4095;
    }
    return nnames;
}

/* Every request creates a key under the queue prefix; etcd keeps an index
 * entry for each name until a compaction and every range of the prefix
 * (each join counts it) walks them all. Names come from a bounded set of
 * slots: three clients in a row make at most a few, however many requests
 * they send. Counted from etcd's own history, not timed. */
START_TEST(queue_key_names_stay_bounded)
{
    enum { PER = 100 };
    char prefix[96];
    int unavailable, after;
    start_all(single.endpoints, "0");
    load_start(ports(), nsrv, NSRV, PER, 60000);
    int ok = load_finish(&unavailable, &after, 0);
    ck_assert_int_eq(ok, NSRV * PER);
    snprintf(prefix, sizeof(prefix), "/turnstile/%s/queue/", cluster_name);
    int names = names_ever_created(single.m[0].client_port, prefix, 2 * ok);
    /* One connection per instance: one waiter per loop at most, one name
     * each; room for a slot retired after an unknown outcome. */
    ck_assert_msg(names <= NSRV * 2 + 2, "%d names for %d requests", names, ok);
    assert_counter(ok);
    stop_all();
}
END_TEST

/* ---- a burst: thousands queued at once, every one served ---- */

#define BURST 2000

/* n requests at once (n <= BURST), each on a connection of its own, taken
 * by the first `instances` in turn: every one gets 200, their Ns are 1..n
 * once each, and the counter is n. */
static void all_served_once(int n, int instances, int timeout_ms)
{
    static int fds[BURST];
    static long long ns[BURST];
    for (int k = 0; k < n; k++)
        fds[k] = send_access(srv[k % instances].port);
    for (int k = 0; k < n; k++) {
        struct resp r;
        read_reply(fds[k], &r, timeout_ms);
        ck_assert_msg(r.status == 200, "request %d: %d %s", k, r.status, r.body);
        ns[k] = access_n(&r);
    }
    qsort(ns, (size_t)n, sizeof(ns[0]), load_cmp_ll);
    for (int k = 0; k < n; k++)
        ck_assert_int_eq(ns[k], k + 1);
    assert_counter(n);
}

/* BURST requests sent at once over `instances` instances, 1 ms sections
 * and no lock timeout: every one gets 200 (joins are batched, and a join's
 * etcd deadline runs from when it is sent, not while it waits in line), N
 * distinct, the counter exact. */
static void burst(int instances)
{
    ck_assert_int_ge(raise_own_nofile(), BURST + 64);
    start_all(single.endpoints, "1");
    all_served_once(BURST, instances, 120000);
    for (int i = 0; i < instances; i++)
        ck_assert_int_eq(stat_value(srv[i].port, "cluster.unavailable"), 0);
    /* One instance: every next waiter is its own, most on the same loop
     * (a batch's keys are consecutive), and is granted as the previous
     * write is sent (pipelined), before that write's reply or its watch
     * event could grant it. */
    if (instances == 1)
        ck_assert_int_gt(stat_value(srv[0].port, "cluster.pipelined"), 0);
    stop_all();
}

START_TEST(burst_on_one_instance)
{
    burst(1);
}
END_TEST

START_TEST(burst_across_three)
{
    burst(NSRV);
}
END_TEST

/* ---- pipelined sections: FIFO, every N once ---- */

#define PIPELINED 40 /* requests per instance */

/* Runs `etcdctl ARGS` against e (a command line of ours, no user input)
 * into out; returns its exit status. etcdctl's own timeouts end it. */
static int etcdctl(const struct etcd_proc *e, const char *args, char *out, size_t cap)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "ETCDCTL_API=3 etcdctl --endpoints %s %s 2>&1", e->endpoints, args);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = '\0';
    return pclose(p);
}

/* Who wrote each N, 1 to n: the create revision of the writer's key, from
 * the receipts in the counter's values ("N KEY1 REV1 ... KEYK REVK",
 * counter.h: a txn of K requests, the i-th of which got N - K + i), into
 * revs[N - 1]. */
static void counter_receipts(const struct etcd_proc *e, int n, long long *revs)
{
    char key[96], args[160], out[4096], b64[8192], value[6144];
    const char *version;
    snprintf(key, sizeof(key), "/turnstile/%s/counter", cluster_name);
    snprintf(args, sizeof(args), "get %s -w json", key);
    ck_assert_int_eq(etcdctl(e, args, out, sizeof(out)), 0);
    ck_assert_ptr_nonnull(version = strstr(out, "\"version\":")); /* its writes so far */
    int writes = atoi(version + 10);
    for (const char *p = history(e->m[0].client_port, key, false, writes);
         (p = strstr(p, "\"value\":\"")); p += 9) {
        long long v, rev, pairs[64];
        int used, k = 0;
        ck_assert_int_eq(sscanf(p + 9, "%8191[^\"]", b64), 1);
        unbase64(b64, value);
        ck_assert_msg(sscanf(value, "%lld%n", &v, &used) == 1, "counter '%s'", value);
        for (const char *q = value + used; k < 64 && sscanf(q, " %*s %lld%n", &rev, &used) == 1;
             q += used)
            pairs[k++] = rev;
        ck_assert_msg(k >= 1 && v - k >= 0 && v <= n, "counter '%s'", value);
        for (int i = 0; i < k; i++)
            revs[v - k + i] = pairs[i];
    }
}

/* PIPELINED requests at once on each of `instances` instances, taken in
 * turn, sections of delay_ms: runs of one loop's keys (a join batch's)
 * follow one another in the queue, and each next one is granted as the
 * previous section ends (ticket.h), its section running while the earlier
 * writes wait or are in flight; with no delay, sections end faster than a
 * write commits, and the writes waiting go in one txn (commit.h, grouped).
 * Every request gets 200, the Ns are 1..n once each, and etcd's own
 * history shows each N's writer and them written in the order of the
 * writers' places in the queue: N + 1's key was created no earlier than
 * N's. */
static void pipelined(int instances, const char *delay_ms, const char *stat)
{
    static long long revs[NSRV * PIPELINED];
    int total = instances * PIPELINED;
    memset(revs, 0, sizeof(revs));
    start_all(single.endpoints, delay_ms);
    all_served_once(total, instances, 60000);
    counter_receipts(&single, total, revs);
    for (int k = 0; k < total; k++)
        ck_assert_msg(revs[k] > 0, "no receipt names the writer of %d", k + 1);
    for (int k = 1; k < total; k++)
        ck_assert_msg(revs[k] >= revs[k - 1], "%d was written by a key created at %lld, %d at %lld",
                      k + 1, revs[k], k, revs[k - 1]);
    for (int i = 0; i < instances; i++)
        ck_assert_int_gt(stat_value(srv[i].port, stat), 0);
    stop_all();
}

START_TEST(pipelined_on_one_instance)
{
    pipelined(1, "20", "cluster.pipelined");
}
END_TEST

START_TEST(pipelined_across_two_interleaved)
{
    pipelined(2, "20", "cluster.pipelined");
}
END_TEST

START_TEST(grouped_writes_across_two)
{
    pipelined(2, "0", "cluster.grouped");
}
END_TEST

/* ---- lock timeouts, the queue cap and leaving clients, cluster-wide ---- */

START_TEST(timeouts_caps_and_leavers)
{
    struct resp r;
    /* The timeout leaves seconds of room for the cap to be checked
     * before the first waiter times out and frees a place in the queue,
     * even on a loaded machine under ASan; the section outlasts it. */
    static const char *flags[] = {"--lock-timeout-ms", "5000", "--max-waiters", "2", NULL};
    memcpy(extra, flags, sizeof(flags));
    start_all(single.endpoints, "10000");
    int held = send_access(srv[0].port);
    ck_assert(wait_stat(srv[0].port, "requests.in_section", 1, 10000));
    /* A waiter whose client leaves: its key goes at once, as another
     * instance sees. */
    int leaver = send_access(srv[1].port);
    ck_assert(wait_stat(srv[2].port, "cluster.queue_length", 2, 10000));
    close(leaver);
    ck_assert(wait_stat(srv[2].port, "cluster.queue_length", 1, 3000));
    ck_assert(wait_stat(srv[1].port, "lock.cancellations", 1, 3000));
    /* --max-waiters counts the cluster's queue: the holder and two
     * waiters on two other instances, and a third is refused at once. */
    long long t0 = now_ms();
    int w1 = send_access(srv[1].port), w2 = send_access(srv[2].port);
    ck_assert(wait_stat(srv[0].port, "cluster.queue_length", 3, 3000));
    ck_assert_int_eq(http_get(srv[0].port, "/access", &r), 0);
    ck_assert_int_eq(r.status, 503);
    ck_assert_msg(strstr(r.body, "Too many"), "%s", r.body);
    ck_assert_int_eq(stat_value(srv[0].port, "lock.shed"), 1);
    /* --lock-timeout-ms: both waiters get 503, and their keys go. */
    read_reply(w1, &r, 10000);
    ck_assert_int_eq(r.status, 503);
    ck_assert(has_header(&r, "Retry-After: 1"));
    read_reply(w2, &r, 10000);
    ck_assert_int_eq(r.status, 503);
    ck_assert_int_ge(now_ms() - t0, 4900);
    ck_assert_int_eq(stat_value(srv[1].port, "lock.timeouts"), 1);
    ck_assert_int_eq(stat_value(srv[2].port, "lock.timeouts"), 1);
    ck_assert(wait_stat(srv[0].port, "cluster.queue_length", 1, 3000));
    read_reply(held, &r, 15000);
    ck_assert_int_eq(access_n(&r), 1);
    assert_counter(1);
    stop_all();
}
END_TEST

/* ---- an instance killed while it holds the lock ---- */

START_TEST(killed_holder_lease_frees_the_queue)
{
    struct resp r;
    lease_ms = LEASE_SHORT_MS;
    start_all(single.endpoints, "8000");
    int held = send_access(srv[0].port);
    ck_assert(wait_stat(srv[0].port, "requests.in_section", 1, 10000));
    int queued = send_access(srv[1].port);
    ck_assert(wait_stat(srv[1].port, "cluster.waiters", 1, 10000));
    long long t0 = now_ms();
    srv_stop(&srv[0], SIGKILL);
    close(held);
    /* Granted once the dead instance's lease expires (3 s), well before
     * the 8 s section it had started would have ended. */
    read_reply(queued, &r, 20000);
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq(access_n(&r), 1); /* the dead holder never wrote */
    ck_assert_int_lt(now_ms() - t0, 3000 + 8000 + 5000);
    srv[0] = srv[--nsrv]; /* gone: the others carry on */
    int fd = send_access(srv[0].port);
    read_reply(fd, &r, 20000);
    ck_assert_int_eq(access_n(&r), 2);
    stop_all();
}
END_TEST

/* ---- a holder paused past its lease: its write is fenced off ---- */

START_TEST(paused_holder_is_fenced_off)
{
    struct resp r;
    /* Sections long enough that the SIGSTOP lands while one is still
     * open, however late the poll sees it start. */
    lease_ms = LEASE_SHORT_MS;
    start_all(single.endpoints, "3000");
    int paused = send_access(srv[0].port);
    ck_assert(wait_stat(srv[0].port, "requests.in_section", 1, 10000));
    ck_assert(wait_stat(srv[1].port, "cluster.queue_length", 1, 10000));
    kill(srv[0].pid, SIGSTOP);
    /* Its lease expires (3 s) and its key with it; nobody else writes, so
     * only the key's absence can stop the write it is about to make. */
    ck_assert(wait_stat(srv[1].port, "cluster.queue_length", 0, 20000));
    kill(srv[0].pid, SIGCONT);
    read_reply(paused, &r, 20000);
    ck_assert_int_eq(r.status, 503); /* never a 200 it cannot prove */
    ck_assert(has_header(&r, "Retry-After: 1"));
    ck_assert_int_eq(stat_value(srv[0].port, "cluster.fenced"), 1);
    assert_counter(0);
    /* Paused again while it holds, and this time another takes over: its
     * N is the first, and the paused one's write is refused again. */
    ck_assert(wait_stat(srv[0].port, "cluster.healthy", 1, 20000));
    paused = send_access(srv[0].port);
    ck_assert(wait_stat(srv[0].port, "requests.in_section", 1, 10000));
    kill(srv[0].pid, SIGSTOP);
    int next = send_access(srv[1].port);
    read_reply(next, &r, 20000);
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq(access_n(&r), 1);
    kill(srv[0].pid, SIGCONT);
    read_reply(paused, &r, 20000);
    ck_assert_int_eq(r.status, 503);
    ck_assert_int_eq(stat_value(srv[0].port, "cluster.fenced"), 2);
    assert_counter(1);
    /* It takes a new lease and serves again. */
    ck_assert(wait_stat(srv[0].port, "cluster.healthy", 1, 20000));
    int again = send_access(srv[0].port);
    read_reply(again, &r, 20000);
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq(access_n(&r), 2);
    stop_all();
}
END_TEST

/* ---- paused while a pipelined section runs ---- */

/* One loop each, so that instance 0's second request is the next key of the
 * holder's loop: granted as the holder's write is sent, its section runs
 * while that write is in flight, and the instance is paused in it, past
 * its lease. The holder's write was sent before the pause: 200, 1. The
 * pipelined request's key went with the lease, and the waiter of another
 * instance behind it takes the lock and writes 2; resumed, the pipelined
 * write is fenced off: 503, never a 200 for a write etcd did not commit. */
START_TEST(paused_in_a_pipelined_section_is_fenced_off)
{
    static const char *flags[] = {"--threads", "1", NULL};
    memcpy(extra, flags, sizeof(flags));
    lease_ms = LEASE_SHORT_MS;
    start_all(single.endpoints, "3000");
    int holder = send_access(srv[0].port);
    ck_assert(wait_stat(srv[0].port, "requests.in_section", 1, 10000));
    int piped = send_access(srv[0].port);
    ck_assert(wait_stat(srv[0].port, "cluster.queue_length", 2, 10000));
    int other = send_access(srv[1].port);
    ck_assert(wait_stat(srv[1].port, "cluster.queue_length", 3, 10000));
    ck_assert(wait_stat(srv[0].port, "cluster.pipelined", 1, 10000));
    expect_reply(holder, 200, 1, 10000);
    ck_assert_int_eq(stat_value(srv[0].port, "requests.in_section"), 1);
    kill(srv[0].pid, SIGSTOP);
    expect_reply(other, 200, 2, 20000);
    kill(srv[0].pid, SIGCONT);
    expect_reply(piped, 503, 0, 20000);
    ck_assert_int_eq(stat_value(srv[0].port, "cluster.fenced"), 1);
    assert_counter(2);
    stop_all();
}
END_TEST

/* ---- one etcd member of three killed and restarted under load ---- */

START_TEST(member_killed_under_load)
{
    int unavailable, after;
    start_all(trio.endpoints, "0");
    long long t0 = now_ms();
    load_start(ports(), nsrv, 6, LOAD_MAX_REPLIES, 15000);
    ck_assert(wait_stat_at_least(srv[0].port, "lock.acquisitions", 50, 10000));
    ck_assert_int_eq(etcd_proc_kill(&trio, 0), 0); /* every instance started on it */
    long long killed = now_ms();
    ck_assert(wait_stat(srv[1].port, "cluster.healthy", 1, 10000));
    ck_assert_int_eq(etcd_proc_restart(&trio, 0, START_MS), 0);
    int ok = load_finish(&unavailable, &after, killed + 1000);
    ck_assert_msg(after > 100, "only %d 200s after the member died", after);
    assert_counter(ok);            /* nothing acknowledged lost, nothing counted twice */
    for (int i = 0; i < nsrv; i++) /* every write whose reply was lost was settled */
        ck_assert_int_eq(stat_value(srv[i].port, "cluster.unknown"), 0);
    ck_assert_int_lt(now_ms() - t0, 90000);
    stop_all();
}
END_TEST

/* ---- one etcd member of three stalled under load ---- */

/* A stalled member keeps its connections open and answers nothing: the
 * watches on it go silent without breaking. Instances notice (a silent
 * watch is checked against a fresh read once a second while requests
 * wait) and move to the other members, which elect a leader if it was
 * theirs; requests go on being served while it is stopped. */
START_TEST(member_stalled_under_load)
{
    int unavailable, after;
    start_all(trio.endpoints, "0");
    load_start(ports(), nsrv, 6, LOAD_MAX_REPLIES, 15000);
    ck_assert(wait_stat_at_least(srv[0].port, "lock.acquisitions", 50, 10000));
    ck_assert_int_eq(etcd_proc_signal(&trio, 0, SIGSTOP), 0); /* every instance started on it */
    long long stopped = now_ms();
    int ok = load_finish(&unavailable, &after, stopped + 1000);
    ck_assert_int_eq(etcd_proc_signal(&trio, 0, SIGCONT), 0);
    ck_assert_msg(after > 100, "only %d 200s while the member was stopped", after);
    assert_counter(ok);
    for (int i = 0; i < nsrv; i++)
        ck_assert_int_eq(stat_value(srv[i].port, "cluster.unknown"), 0);
    stop_all();
}
END_TEST

/* ---- all of etcd down, and back ---- */

/* How many times needle is in s's log so far. */
static int log_count(const struct srv *s, const char *needle)
{
    static char text[1 << 16];
    size_t n = scratch_read(s->log_path, text, sizeof(text) - 1);
    int count = 0;
    text[n] = '\0';
    for (const char *p = text; (p = strstr(p, needle)); p += strlen(needle))
        count++;
    return count;
}

START_TEST(etcd_down_then_back)
{
    struct resp r;
    ck_assert_int_eq(etcd_proc_start(&solo, 1, START_MS), 0);
    lease_ms = LEASE_SHORT_MS;
    start_all(solo.endpoints, "0");
    for (int i = 0; i < NSRV; i++) {
        ck_assert_int_eq(http_get(srv[i].port, "/access", &r), 0);
        ck_assert_int_eq(r.status, 200);
    }
    ck_assert_int_eq(etcd_proc_kill(&solo, 0), 0);
    long long t0 = now_ms();
    ck_assert_int_eq(http_get(srv[1].port, "/access", &r), 0);
    ck_assert_int_eq(r.status, 503);
    ck_assert(has_header(&r, "Retry-After: 1"));
    ck_assert_int_lt(now_ms() - t0, 3000); /* quickly, with --lock-timeout-ms 0 */
    for (int i = 0; i < 20; i++)           /* a run of failed calls: told once, not per request */
        ck_assert_int_eq(http_get(srv[1].port, "/access", &r), 0);
    ck_assert(srv_log_wait(&srv[1], "no etcd endpoint takes a connection", 10000));
    /* /stats works and says so; an instance started now starts anyway. */
    ck_assert(wait_stat(srv[1].port, "cluster.healthy", 0, 10000));
    start_one(nsrv++, solo.endpoints, "0");
    ck_assert(srv_log_wait(&srv[3], "does not answer", 10000));
    ck_assert_int_eq(http_get(srv[3].port, "/access", &r), 0);
    ck_assert_int_eq(r.status, 503);
    ck_assert_int_eq(etcd_proc_restart(&solo, 0, START_MS), 0);
    for (int i = 0; i < nsrv; i++)
        ck_assert_msg(wait_stat(srv[i].port, "cluster.healthy", 1, 20000), "%d did not recover", i);
    ck_assert(srv_log_wait(&srv[1], "etcd answers again", 10000));
    ck_assert_int_eq(log_count(&srv[1], "no etcd endpoint takes a connection"), 1);
    for (int i = 0; i < nsrv; i++) {
        ck_assert_int_eq(http_get(srv[i].port, "/access", &r), 0);
        ck_assert_int_eq(r.status, 200);
        ck_assert_int_eq(access_n(&r), NSRV + 1 + i); /* nothing acknowledged was lost */
    }
    stop_all();
    etcd_proc_stop(&solo);
}
END_TEST

/* ---- start-up ---- */

/* Requests sent the instant each new instance prints its listening line
 * (srv_start returns then) wait for its lease: every one gets 200. */
START_TEST(a_young_instance_refuses_no_one)
{
    enum { FRESH = 3, EACH = 8 };
    struct resp r;
    int fds[EACH];
    new_cluster_name();
    for (nsrv = 0; nsrv < FRESH; nsrv++) {
        start_one(nsrv, single.endpoints, "0");
        for (int k = 0; k < EACH; k++)
            fds[k] = send_access(srv[nsrv].port);
        for (int k = 0; k < EACH; k++) {
            read_reply(fds[k], &r, 20000);
            ck_assert_msg(r.status == 200, "instance %d, request %d: %d", nsrv, k, r.status);
        }
    }
    assert_counter(FRESH * EACH);
    stop_all();
}
END_TEST

/* ---- flags and the stop line ---- */

/* --no-lock with --etcd: refused before anything starts, in one line. */
START_TEST(no_lock_with_etcd_is_refused)
{
    char out[256], err[512];
    int status = run_binary(10000, out, sizeof(out), err, sizeof(err), "--etcd", single.endpoints,
                            "--no-lock", "--port", "0", NULL);
    ck_assert_int_eq(status, 2);
    ck_assert_str_eq(out, "");
    ck_assert_msg(strstr(err, "--no-lock") && strchr(err, '\n') == err + strlen(err) - 1,
                  "not one line: %s", err);
}
END_TEST

/* An instance that served nothing stops saying the cluster's counter. */
START_TEST(stop_line_says_the_clusters_counter)
{
    struct resp r;
    start_all(single.endpoints, "0");
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(http_get(srv[0].port, "/access", &r), 0);
        ck_assert_int_eq(r.status, 200);
    }
    ck_assert(wait_stat(srv[2].port, "counter", 3, 10000));
    kill(srv[2].pid, SIGTERM);
    ck_assert(srv_log_wait(&srv[2], "stopped: counter 3", 10000));
    stop_all();
}
END_TEST

/* ---- etcd's size ---- */

#define QUOTA_BYTES (1ull << 20) /* ~2000 requests fill it uncompacted (~520 B each) */

static struct etcd_proc small; /* a node with a backend quota of QUOTA_BYTES */

/* Three times the requests that fill the quota uncompacted, with a
 * compaction every second: every one 200, the counter exact, no alarm. */
START_TEST(compaction_keeps_etcd_under_its_quota)
{
    int unavailable, after;
    char out[512];
    ck_assert_int_eq(etcd_proc_start_quota(&small, 1, QUOTA_BYTES, START_MS), 0);
    extra[0] = "--compact-interval-ms";
    extra[1] = "1000";
    start_all(small.endpoints, "0");
    load_start(ports(), nsrv, 12, 600, 100000);
    int ok = load_finish(&unavailable, &after, 0);
    ck_assert_int_eq(unavailable, 0);
    ck_assert_int_ge(ok, 3 * (int)(QUOTA_BYTES / 520));
    assert_counter(ok);
    long long compactions = 0;
    for (int i = 0; i < nsrv; i++)
        compactions += stat_value(srv[i].port, "cluster.compactions");
    ck_assert_int_gt(compactions, 0);
    ck_assert_int_eq(etcdctl(&small, "alarm list", out, sizeof(out)), 0);
    ck_assert_msg(strstr(out, "NOSPACE") == NULL, "etcd raised an alarm: %s", out);
    stop_all();
    etcd_proc_stop(&small);
}
END_TEST

/* Whether /stats' etcd row shows the NOSPACE alarm (the page's rows take
 * it from the alarm sentry), polled until it is `want` or timeout_ms. */
static bool wait_row_alarm(int port, bool want, int timeout_ms)
{
    long long until = now_ms() + timeout_ms;
    struct resp r;
    for (;;) {
        bool shown = http_get(port, "/stats", &r) == 0 && r.status == 200 &&
                     strstr(r.body, "\"alarms\": [\"NOSPACE\"]") != NULL;
        if (shown == want || now_ms() >= until)
            return shown == want;
        usleep(100000);
    }
}

/* The operator's NOSPACE: a tiny quota filled by hand. turnstile says so
 * (/stats, its log) and answers 503; after compact, defrag and disarm it
 * serves again by itself. */
START_TEST(an_alarm_is_loud_and_service_resumes_after_disarm)
{
    struct resp r;
    char out[4096], cmd[64];
    ck_assert_int_eq(etcd_proc_start_quota(&small, 1, 300000, START_MS), 0);
    start_all(small.endpoints, "0");
    out[0] = '\0';
    for (int i = 0; i < 30 && !strstr(out, "database space exceeded"); i++)
        etcdctl(&small, "put filler \"$(head -c 65536 /dev/zero | tr '\\0' x)\"", out, sizeof(out));
    ck_assert_msg(strstr(out, "database space exceeded"), "etcd took it all: %s", out);
    ck_assert_int_eq(http_get(srv[1].port, "/access", &r), 0);
    ck_assert_int_eq(r.status, 503);
    ck_assert(has_header(&r, "Retry-After: 1"));
    ck_assert(wait_stat(srv[0].port, "cluster.alarm_nospace", 1, 15000));
    ck_assert(srv_log_wait(&srv[0], "etcd raised NOSPACE", 15000));
    ck_assert_msg(wait_row_alarm(srv[0].port, true, 15000), "the etcd row shows no NOSPACE");
    /* The operator: compact to now, defragment, disarm. */
    ck_assert_int_eq(etcdctl(&small, "get filler --keys-only -w json", out, sizeof(out)), 0);
    char *rev = strstr(out, "\"revision\":");
    ck_assert_ptr_nonnull(rev);
    snprintf(cmd, sizeof(cmd), "compact %lld", atoll(rev + strlen("\"revision\":")));
    etcdctl(&small, cmd, out, sizeof(out)); /* "already compacted" is as good */
    ck_assert_int_eq(etcdctl(&small, "defrag", out, sizeof(out)), 0);
    ck_assert_int_eq(etcdctl(&small, "alarm disarm", out, sizeof(out)), 0);
    ck_assert(wait_stat(srv[0].port, "cluster.alarm_nospace", 0, 15000));
    ck_assert(srv_log_wait(&srv[0], "alarms are disarmed", 15000));
    ck_assert_msg(wait_row_alarm(srv[0].port, false, 15000), "the etcd row keeps NOSPACE");
    ck_assert_int_eq(http_get(srv[1].port, "/access", &r), 0);
    ck_assert_int_eq(r.status, 200);
    stop_all();
    etcd_proc_stop(&small);
}
END_TEST

/* ---- a fenced write's reply lost, the path cut past the deadlines ---- */

/* The lease's TTL and two call deadlines (proof.h), and a second more:
 * the time after which the old rule gave up on etcd's silence. */
#define PAST_DEADLINES_US ((atoi(LEASE_SHORT_MS) + 2 * 1000 + 1000) * 1000)

/* Instance 0 talks to etcd through a proxy, instance 1 directly, with
 * sections of delay1_ms (instance 0's: none). */
static struct proxy *start_behind_proxy(const char *delay1_ms)
{
    static char via[64];
    struct proxy *p;
    int port;
    ck_assert_int_eq(proxy_start(&p, single.m[0].client_port, &port), 0);
    snprintf(via, sizeof(via), "http://127.0.0.1:%d", port);
    lease_ms = LEASE_SHORT_MS;
    new_cluster_name();
    start_one(0, via, "0");
    start_one(1, single.endpoints, delay1_ms);
    nsrv = 2;
    memset(extra, 0, sizeof(extra));
    for (int i = 0; i < nsrv; i++)
        ck_assert_msg(wait_stat(srv[i].port, "cluster.healthy", 1, 20000), "instance %d", i);
    return p;
}

/* Sends /access to instance 0, whose fenced write (the txn that puts the
 * counter; a join only reads it) reaches etcd and applies, and whose reply
 * is lost: the path is cut from then on. Returns the request's socket. */
static int lose_the_reply(struct proxy *p)
{
    char key[160], b64[224], needle[256];
    int len = snprintf(key, sizeof(key), "/turnstile/%s/counter", cluster_name);
    base64(key, (size_t)len, b64);
    snprintf(needle, sizeof(needle), "\"request_put\":{\"key\":\"%s\"", b64);
    proxy_trap(p, needle);
    int fd = send_access(srv[0].port);
    ck_assert_msg(proxy_wait_trap(p, 10000) == 0, "the fenced write never came");
    return fd;
}

/* The path stays cut past the deadlines; the request is still unanswered
 * then (no early 500), and is answered once the path heals. */
static void heal_past_the_deadlines(struct proxy *p, int fd, struct resp *r)
{
    usleep(PAST_DEADLINES_US); /* a duration to exceed, not a race to win */
    ck_assert_msg(poll_readable(&fd, 1, 0) == 0, "answered while etcd was out of reach");
    proxy_set(p, PROXY_PASS);
    read_reply(fd, r, 30000);
}

/* Applied, reply lost, the instance cut off from etcd past its lease and
 * two call deadlines: once etcd answers, the history proves the write, 200
 * with its N. */
START_TEST(a_lost_reply_is_settled_from_history_past_the_deadlines)
{
    struct resp r;
    struct proxy *p = start_behind_proxy("0");
    int fd = lose_the_reply(p);
    heal_past_the_deadlines(p, fd, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq(access_n(&r), 1);
    assert_counter(1); /* instance 1 sees the same N, from etcd */
    ck_assert(srv_log_wait(&srv[0], "whose reply was lost was applied: 200", 5000));
    ck_assert_int_eq(stat_value(srv[0].port, "cluster.unknown"), 0);
    stop_all();
    proxy_stop(p);
}
END_TEST

/* The same, but another instance writes meanwhile and the history is
 * compacted past both writes: nothing can prove it either way, so the
 * answer is "outcome unknown" (500), counted. */
START_TEST(a_lost_reply_with_its_history_compacted_is_unknown)
{
    struct resp r;
    char out[4096], cmd[64];
    struct proxy *p = start_behind_proxy("0");
    int fd = lose_the_reply(p);
    read_reply(send_access(srv[1].port), &r, 20000);
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq(access_n(&r), 2); /* after the lost one, which applied */
    ck_assert_int_eq(
        etcdctl(&single, "get /turnstile --prefix --keys-only -w json", out, sizeof(out)), 0);
    char *rev = strstr(out, "\"revision\":");
    ck_assert_ptr_nonnull(rev);
    snprintf(cmd, sizeof(cmd), "compact %lld", atoll(rev + strlen("\"revision\":")));
    ck_assert_int_eq(etcdctl(&single, cmd, out, sizeof(out)), 0);
    heal_past_the_deadlines(p, fd, &r);
    ck_assert_int_eq(r.status, 500);
    ck_assert_ptr_nonnull(strstr(r.body, "Outcome unknown"));
    ck_assert(!has_header(&r, "Retry-After: 1"));
    ck_assert_int_eq(stat_value(srv[0].port, "cluster.unknown"), 1);
    ck_assert(srv_log_wait(&srv[0], "etcd compacted that history", 5000));
    assert_counter(2);
    stop_all();
    proxy_stop(p);
}
END_TEST

/* ---- paused while a pipelined write waits ---- */

/* One loop each. Instance 1's holder (2 s) has instance 0's two requests
 * and then one of its own behind it. Instance 0's first is granted, writes
 * 2, and loses the reply (the path is cut from then on); its second was
 * granted as that write was sent, ran its (empty) section and waits for
 * that outcome. Instance 0 is paused then: its lease goes, and instance 1's
 * second writes 3. Healed and resumed, the first's write is proven from
 * etcd's history (200, 2); the pipelined one, whose key went with the
 * lease, is fenced off: 503. */
START_TEST(paused_while_a_pipelined_write_waits)
{
    char key[160], b64[224], needle[256];
    static const char *flags[] = {"--threads", "1", NULL};
    memcpy(extra, flags, sizeof(flags));
    struct proxy *p = start_behind_proxy("2000");
    int holder = send_access(srv[1].port);
    ck_assert(wait_stat(srv[1].port, "requests.in_section", 1, 10000));
    int len = snprintf(key, sizeof(key), "/turnstile/%s/counter", cluster_name);
    base64(key, (size_t)len, b64);
    snprintf(needle, sizeof(needle), "\"request_put\":{\"key\":\"%s\"", b64);
    proxy_trap(p, needle);
    int fds[3];
    for (int k = 0; k < 3; k++) { /* 0, 1: instance 0's; 2: instance 1's */
        fds[k] = send_access(srv[k / 2].port);
        ck_assert(wait_stat(srv[k / 2].port, "cluster.queue_length", k + 2, 10000));
    }
    ck_assert_msg(proxy_wait_trap(p, 10000) == 0, "the fenced write never came");
    ck_assert(wait_stat(srv[0].port, "cluster.pipelined", 1, 10000));
    kill(srv[0].pid, SIGSTOP);
    expect_reply(holder, 200, 1, 10000);
    expect_reply(fds[2], 200, 3, 20000);
    proxy_set(p, PROXY_PASS);
    kill(srv[0].pid, SIGCONT);
    expect_reply(fds[0], 200, 2, 30000);
    expect_reply(fds[1], 503, 0, 30000);
    ck_assert_int_eq(stat_value(srv[0].port, "cluster.fenced"), 1);
    ck_assert_int_eq(stat_value(srv[0].port, "cluster.unknown"), 0);
    assert_counter(3);
    stop_all();
    proxy_stop(p);
}
END_TEST

/* ---- a secured etcd: TLS with client certificates, and etcd's auth ---- */

/* The certificates (tests/common/certs.sh), a config file naming them, and
 * a client pair that a test rotates. */
static char certs[64], conf[128], rot_cert[128], rot_key[128];

static const char *cert_file(const char *name)
{
    return certs_path(certs, name);
}

static void copy_file(const char *from, const char *to)
{
    char data[16384];
    FILE *in = fopen(from, "r"), *out = fopen(to, "w");
    ck_assert(in && out);
    size_t n = fread(data, 1, sizeof(data), in);
    ck_assert_uint_eq(fwrite(data, 1, n, out), n);
    fclose(in);
    ck_assert_int_eq(fclose(out), 0);
}

/* The client pair NAME.pem and NAME.key of certs.sh becomes the rotated one. */
static void rotate_to(const char *name)
{
    char from[64];
    snprintf(from, sizeof(from), "%s.pem", name);
    copy_file(cert_file(from), rot_cert);
    snprintf(from, sizeof(from), "%s.key", name);
    copy_file(cert_file(from), rot_key);
}

/* Every instance of the test gets --config conf: the CA, the client pair
 * (`client` of certs.sh, installed as the rotated pair), the user and its
 * password file. */
static void secure_conf(const char *cacert, const char *client, const char *user,
                        const char *password)
{
    char pw[128];
    snprintf(pw, sizeof(pw), "%s/%s.password", certs, user);
    FILE *f = fopen(pw, "w");
    ck_assert(f);
    fprintf(f, "%s\n", password);
    ck_assert_int_eq(fclose(f), 0);
    rotate_to(client);
    f = fopen(conf, "w");
    ck_assert(f);
    fprintf(f,
            "etcd-cacert = %s\netcd-cert = %s\netcd-key = %s\netcd-user = %s\n"
            "etcd-password-file = %s\n",
            cert_file(cacert), rot_cert, rot_key, user, pw);
    ck_assert_int_eq(fclose(f), 0);
    extra[0] = "--config";
    extra[1] = conf;
}

/* One instance, not waited for: etcd may refuse it. */
static void start_refused(const char *endpoints)
{
    new_cluster_name();
    nsrv = 1;
    start_one(0, endpoints, "0");
    memset(extra, 0, sizeof(extra));
}

/* /access answers 503, and /stats' cluster.error says why. */
static void assert_refused(int port, const char *cause)
{
    struct resp r;
    ck_assert_int_eq(http_get(port, "/access", &r), 0);
    ck_assert_int_eq(r.status, 503);
    ck_assert_int_eq(http_get(port, "/stats", &r), 0);
    char *error = strstr(r.body, "\"error\": \"");
    ck_assert_msg(error && strstr(error, cause), "cluster.error lacks '%s': %s", cause, r.body);
}

START_TEST(secured_counter_exact)
{
    secure_conf("ca.pem", "client", "turnstile", "right-password");
    counter_exact(hardened.endpoints);
}
END_TEST

/* Each refusal: one error line naming the cause (and the file), 503s,
 * cluster.error; never a 200. */
static const struct {
    const char *cacert, *client, *user, *password;
    const char *log, *cause;
} refusals[] = {
    {"other-ca.pem", "client", "turnstile", "right-password", "other-ca.pem", "did not verify"},
    {"ca.pem", "client-expired", "turnstile", "right-password", "it expired on",
     "refused the client certificate"},
    {"ca.pem", "client-cn", "turnstile", "right-password", "CommonName", "CommonName"},
    {"ca.pem", "client", "turnstile", "wrong-password", "turnstile.password",
     "authentication failed"},
    {"ca.pem", "client", "stranger", "stranger-password", "permission denied", "permission denied"},
};

START_TEST(secured_refusals)
{
    secure_conf(refusals[_i].cacert, refusals[_i].client, refusals[_i].user, refusals[_i].password);
    start_refused(hardened.endpoints);
    bool logged = srv_log_wait(&srv[0], refusals[_i].log, 20000);
    assert_refused(srv[0].port, refusals[_i].cause);
    ck_assert_msg(logged, "no log line with '%s'", refusals[_i].log);
    ck_assert_int_eq(stat_value(srv[0].port, "cluster.healthy"), 0);
    stop_all();
}
END_TEST

/* etcd's simple token lives 1 s from its last use (the fixture's
 * --auth-token-ttl): each request after an idle second finds it expired
 * on some client, which renews it and sends again. No request fails. */
START_TEST(token_expiry_costs_no_request)
{
    struct resp r;
    secure_conf("ca.pem", "client", "turnstile", "right-password");
    start_all(hardened.endpoints, "0");
    for (int k = 0; k < 6; k++) {
        /* Idle past the token's TTL: the wait is what is tested. */
        usleep(1500 * 1000);
        ck_assert_int_eq(http_get(srv[k % NSRV].port, "/access", &r), 0);
        ck_assert_msg(r.status == 200, "request %d: %d %s", k, r.status, r.body);
        ck_assert_int_eq(access_n(&r), k + 1);
    }
    assert_counter(6);
    stop_all();
}
END_TEST

/* An expired client certificate is refused; the new one, installed and
 * SIGHUPed, is used by the next connection without a restart. */
START_TEST(rotated_certificate_after_sighup)
{
    struct resp r;
    secure_conf("ca.pem", "client-expired", "turnstile", "right-password");
    start_refused(hardened.endpoints);
    ck_assert(srv_log_wait(&srv[0], "it expired on", 20000));
    assert_refused(srv[0].port, "refused the client certificate");
    rotate_to("client");
    kill(srv[0].pid, SIGHUP);
    ck_assert(srv_log_wait(&srv[0], "read again", 10000));
    ck_assert_msg(wait_stat(srv[0].port, "cluster.healthy", 1, 20000), "still refused");
    ck_assert_int_eq(http_get(srv[0].port, "/access", &r), 0);
    ck_assert_int_eq(r.status, 200);
    assert_counter(1);
    stop_all();
}
END_TEST

/* A file that cannot be used at start is a configuration error: one line
 * naming it, exit status 2, nothing served. */
START_TEST(unusable_files_refused_at_start)
{
    static const struct {
        const char *flag, *value, *endpoints, *says;
    } bad[] = {
        {"--etcd-cacert", "/nonexistent/ca.pem", "https://127.0.0.1:1", "/nonexistent/ca.pem"},
        {"--etcd-cert", "rotated.pem", "https://127.0.0.1:1", "needs its key"},
        {"--etcd-cacert", "ca.pem", "http://127.0.0.1:1", "https://"},
        {"--etcd-user", "turnstile", "https://127.0.0.1:1", "--etcd-password-file"},
        {"--etcd-password-file", "/nonexistent/pw", "https://127.0.0.1:1", "--etcd-user"},
        {"--etcd-cacert", "ca.pem", "https://127.0.0.1:1,http://127.0.0.1:2", "not a mix"},
    };
    char out[512], err[1024];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *value = bad[i].value[0] == '/' ? bad[i].value : cert_file(bad[i].value);
        int status = run_binary(10000, out, sizeof(out), err, sizeof(err), "--port", "0", "--etcd",
                                bad[i].endpoints, bad[i].flag, value, NULL);
        ck_assert_msg(status == 2, "%s %s: exit %d", bad[i].flag, value, status);
        ck_assert_msg(strstr(err, bad[i].says), "%s: '%s'", bad[i].flag, err);
        ck_assert_msg(strchr(err, '\n') == err + strlen(err) - 1, "not one line: '%s'", err);
    }
}
END_TEST

/* ---- fixtures ---- */

/* After every test, passed or failed: what it started goes. */
static void test_teardown(void)
{
    stop_all();
    etcd_proc_stop(&solo);
    etcd_proc_stop(&small);
}

static void single_start(void)
{
    ck_assert_int_eq(etcd_proc_start(&single, 1, START_MS), 0);
}

static void single_stop(void)
{
    stop_all();
    etcd_proc_stop(&single);
}

static void trio_start(void)
{
    ck_assert_int_eq(etcd_proc_start(&trio, 3, START_MS), 0);
}

static void trio_stop(void)
{
    stop_all();
    etcd_proc_stop(&trio);
}

static void hardened_start(void)
{
    ck_assert_int_eq(certs_make(certs, sizeof(certs)), 0);
    snprintf(conf, sizeof(conf), "%s/turnstile.conf", certs);
    snprintf(rot_cert, sizeof(rot_cert), "%s/rotated.pem", certs);
    snprintf(rot_key, sizeof(rot_key), "%s/rotated.key", certs);
    struct etcd_proc_opts o = {.certs = certs, .auth_token_ttl_s = 1};
    ck_assert_int_eq(etcd_proc_start_opts(&hardened, 1, &o, START_MS), 0);
    ck_assert_int_eq(etcd_proc_auth_enable(&hardened), 0);
    ck_assert_int_eq(etcd_proc_add_user(&hardened, "turnstile", "right-password", "/turnstile/"),
                     0);
    ck_assert_int_eq(etcd_proc_add_user(&hardened, "stranger", "stranger-password", "/elsewhere/"),
                     0);
}

static void hardened_stop(void)
{
    stop_all();
    etcd_proc_stop(&hardened);
    certs_remove(certs);
}

int main(void)
{
    Suite *s = suite_create("cluster");
    TCase *one = tcase_create("single_node");
    tcase_set_timeout(one, 120);
    tcase_add_unchecked_fixture(one, single_start, single_stop);
    tcase_add_checked_fixture(one, NULL, test_teardown); /* a failed test's too */
    tcase_add_test(one, counter_exact_single_node);
    tcase_add_test(one, fifo_across_instances);
    tcase_add_test(one, queue_key_names_stay_bounded);
    tcase_add_test(one, burst_on_one_instance);
    tcase_add_test(one, burst_across_three);
    tcase_add_test(one, pipelined_on_one_instance);
    tcase_add_test(one, pipelined_across_two_interleaved);
    tcase_add_test(one, grouped_writes_across_two);
    tcase_add_test(one, idempotency_key_applies_once_across_instances);
    tcase_add_test(one, idempotency_repeat_in_a_pipeline);
    tcase_add_test(one, timeouts_caps_and_leavers);
    tcase_add_test(one, killed_holder_lease_frees_the_queue);
    tcase_add_test(one, paused_holder_is_fenced_off);
    tcase_add_test(one, paused_in_a_pipelined_section_is_fenced_off);
    tcase_add_test(one, etcd_down_then_back);
    tcase_add_test(one, no_lock_with_etcd_is_refused);
    tcase_add_test(one, a_young_instance_refuses_no_one);
    tcase_add_test(one, stop_line_says_the_clusters_counter);
    tcase_add_test(one, a_lost_reply_is_settled_from_history_past_the_deadlines);
    tcase_add_test(one, a_lost_reply_with_its_history_compacted_is_unknown);
    tcase_add_test(one, paused_while_a_pipelined_write_waits);
    suite_add_tcase(s, one);
    TCase *size = tcase_create("etcd_size"); /* etcds of their own */
    tcase_set_timeout(size, 180);
    tcase_add_checked_fixture(size, NULL, test_teardown);
    tcase_add_test(size, compaction_keeps_etcd_under_its_quota);
    tcase_add_test(size, an_alarm_is_loud_and_service_resumes_after_disarm);
    suite_add_tcase(s, size);
    TCase *three = tcase_create("three_members");
    tcase_set_timeout(three, 180);
    tcase_add_unchecked_fixture(three, trio_start, trio_stop);
    tcase_add_checked_fixture(three, NULL, test_teardown);
    tcase_add_test(three, counter_exact_three_members);
    tcase_add_test(three, member_killed_under_load);
    tcase_add_test(three, member_stalled_under_load);
    suite_add_tcase(s, three);
    TCase *secured = tcase_create("secured");
    tcase_set_timeout(secured, 180);
    tcase_add_unchecked_fixture(secured, hardened_start, hardened_stop);
    tcase_add_checked_fixture(secured, NULL, test_teardown);
    tcase_add_test(secured, secured_counter_exact);
    tcase_add_loop_test(secured, secured_refusals, 0, sizeof(refusals) / sizeof(refusals[0]));
    tcase_add_test(secured, token_expiry_costs_no_request);
    tcase_add_test(secured, rotated_certificate_after_sighup);
    tcase_add_test(secured, unusable_files_refused_at_start);
    suite_add_tcase(s, secured);
    return check_run(s);
}
