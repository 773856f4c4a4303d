/* Cluster mode end to end: real etcd (a single node and a 3-member
 * cluster, tests/common/etcd_proc) and three turnstile instances sharing
 * one counter and one FIFO lock. The counter stays exact under clients
 * spread over the instances; grants follow arrival order across them; a
 * killed holder's place goes with its lease; a paused holder's write is
 * fenced off; an etcd member dies and comes back under load; and all of
 * etcd goes away and comes back without restarting turnstile. Waits are
 * for events (a reply, a log line) or polls of /stats with deadlines. */
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

#include "check_run.h"
#include "etcd_proc.h"
#include "harness.h"
#include "load.h"

#define START_MS 30000 /* etcd, or a cluster, to become healthy */
#define NSRV     3
/* A lease that a stalled test machine cannot lose by accident, and the
 * short one of the tests that are about leases expiring: the shortest
 * etcd grants with the test's election timeout (etcd_proc.c). */
#define LEASE_LONG_MS  "6000"
#define LEASE_SHORT_MS "3000"

static struct etcd_proc single, trio, solo; /* solo: a node to take down */
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

/* ---- FIFO across instances ---- */

/* One request at a time, each sent once the previous one is in the
 * cluster's queue (seen by the instance that took it): their Ns must come
 * in that order, whichever instance took them. */
START_TEST(fifo_across_instances)
{
    enum { N = 7 };
    int fds[N];
    /* Every request joins while the first still holds: N sections. */
    start_all(single.endpoints, "1500");
    for (int k = 0; k < N; k++) {
        int port = srv[k % NSRV].port;
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

/* ---- one etcd member of three killed and restarted under load ---- */

START_TEST(member_killed_under_load)
{
    int unavailable, after;
    start_all(trio.endpoints, "0");
    long long t0 = now_ms();
    load_start(ports(), nsrv, 6, LOAD_MAX_REPLIES, 15000);
    ck_assert(wait_stat(srv[0].port, "lock.acquisitions", 50, 10000));
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
    ck_assert(wait_stat(srv[0].port, "lock.acquisitions", 50, 10000));
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
    /* /stats works and says so; an instance started now starts anyway. */
    ck_assert(wait_stat(srv[1].port, "cluster.healthy", 0, 10000));
    start_one(nsrv++, solo.endpoints, "0");
    ck_assert(srv_log_wait(&srv[3], "does not answer", 10000));
    ck_assert_int_eq(http_get(srv[3].port, "/access", &r), 0);
    ck_assert_int_eq(r.status, 503);
    ck_assert_int_eq(etcd_proc_restart(&solo, 0, START_MS), 0);
    for (int i = 0; i < nsrv; i++)
        ck_assert_msg(wait_stat(srv[i].port, "cluster.healthy", 1, 20000), "%d did not recover", i);
    for (int i = 0; i < nsrv; i++) {
        ck_assert_int_eq(http_get(srv[i].port, "/access", &r), 0);
        ck_assert_int_eq(r.status, 200);
        ck_assert_int_eq(access_n(&r), NSRV + 1 + i); /* nothing acknowledged was lost */
    }
    stop_all();
    etcd_proc_stop(&solo);
}
END_TEST

/* ---- fixtures ---- */

/* After every test, passed or failed: what it started goes. */
static void test_teardown(void)
{
    stop_all();
    etcd_proc_stop(&solo);
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

int main(void)
{
    Suite *s = suite_create("cluster");
    TCase *one = tcase_create("single_node");
    tcase_set_timeout(one, 120);
    tcase_add_unchecked_fixture(one, single_start, single_stop);
    tcase_add_checked_fixture(one, NULL, test_teardown); /* a failed test's too */
    tcase_add_test(one, counter_exact_single_node);
    tcase_add_test(one, fifo_across_instances);
    tcase_add_test(one, timeouts_caps_and_leavers);
    tcase_add_test(one, killed_holder_lease_frees_the_queue);
    tcase_add_test(one, paused_holder_is_fenced_off);
    tcase_add_test(one, etcd_down_then_back);
    suite_add_tcase(s, one);
    TCase *three = tcase_create("three_members");
    tcase_set_timeout(three, 180);
    tcase_add_unchecked_fixture(three, trio_start, trio_stop);
    tcase_add_checked_fixture(three, NULL, test_teardown);
    tcase_add_test(three, counter_exact_three_members);
    tcase_add_test(three, member_killed_under_load);
    tcase_add_test(three, member_stalled_under_load);
    suite_add_tcase(s, three);
    return check_run(s);
}
