/* Availability under etcd faults (issue 20): three instances under load
 * on a 3-member etcd cluster (tests/common/etcd_proc), one fault at a
 * time, and the longest time without a single 200 across the cluster,
 * measured from the clients' side. Each test proves that its fault
 * happened (the proxy counted what it swallowed; the member's threads
 * were all in state T) and that safety held through it: every N
 * distinct, the counter equal to the 200s sent, no write of unknown
 * outcome. The members are shared by the tests: a fault ends before its
 * test does, and each test uses a cluster name of its own.
 *
 * Bounds: the goals are the issue's. A cut path: 1.5 s. A paused leader:
 * what etcd's own election costs + 1 s; etcd draws each member's election
 * timeout from [T, 2T) (T = 2 s with etcd_proc), so the test measures the
 * election (from the pause to a member that says it leads) and bounds the
 * gap by that + 1 s. On this loaded 2-core machine, under ASan, a CI
 * margin is added to each (FAULT_MARGIN_MS); the figures measured are in
 * scripts/bench/RESULTS.md. */
#include <check.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "check_run.h"
#include "etcd_proc.h"
#include "harness.h"
#include "load.h"
#include "proxy.h"

#define START_MS     30000
#define NSRV         3
#define CLIENTS      15     /* five per instance */
#define LEASE_MS     "3000" /* the shortest etcd grants with etcd_proc's 2 s election timeout */
#define ELECTION_MS  2000   /* etcd_proc's --election-timeout */
#define WARM_MS      1500   /* load before the fault */
#define BLACKHOLE_MS 4000
#define PAUSE_MS     7000 /* outlasts the slowest election: 2T, and a round */
#define AFTER_MS     2500 /* load after it */
/* Added to each goal here: a loaded machine (other builds, ASan) delays
 * timers and replies by hundreds of ms. */
#define FAULT_MARGIN_MS 1000

static struct etcd_proc trio;
static struct srv srv[NSRV];
static int nsrv;
static struct proxy *px[3]; /* instance 0's path to each member */
static int px_port[3];

static void start_instances(const char *first_endpoints)
{
    static int n;
    char name[32];
    snprintf(name, sizeof(name), "f%d-%d", (int)getpid(), ++n);
    for (nsrv = 0; nsrv < NSRV; nsrv++)
        srv_start(&srv[nsrv], "--etcd", nsrv == 0 ? first_endpoints : trio.endpoints, "--cluster",
                  name, "--lease-ttl-ms", LEASE_MS, "--delay-ms", "5", NULL);
    for (int i = 0; i < NSRV; i++)
        ck_assert_msg(wait_stat(srv[i].port, "cluster.healthy", 1, 20000), "instance %d unhealthy",
                      i);
}

static void stop_all(void)
{
    for (int i = 0; i < nsrv; i++)
        srv_stop(&srv[i], SIGKILL);
    nsrv = 0;
    for (int i = 0; i < 3; i++) {
        proxy_stop(px[i]);
        px[i] = NULL;
    }
}

/* Load through a fault: fault(true) starts it once the cluster grants
 * (and may wait for what it brings about), fault(false) ends it fault_ms
 * after it started. Returns the longest gap without a 200 from the fault's
 * start to the load's end, after checking safety. */
static long long gap_through(void (*fault)(bool on), int fault_ms)
{
    int ports[NSRV], unavailable, after;
    for (int i = 0; i < NSRV; i++)
        ports[i] = srv[i].port;
    load_start(ports, NSRV, CLIENTS, LOAD_MAX_REPLIES, WARM_MS + fault_ms + AFTER_MS);
    ck_assert(wait_stat_at_least(srv[0].port, "lock.acquisitions", 20, 10000));
    long long t0 = now_ms();
    fault(true);
    long long left = t0 + fault_ms - now_ms();
    poll(NULL, 0, left > 0 ? (int)left : 0); /* the fault's length, not a wait for an event */
    fault(false);
    int ok = load_finish(&unavailable, &after, t0);
    long long at = 0, gap = load_longest_gap(t0, now_ms(), &at);
    fprintf(stderr,
            "faults: %d 200s (%d after the fault began), %d 503s; longest gap %lld ms, "
            "from %lld ms after the fault began\n",
            ok, after, unavailable, gap, at - t0);
    ck_assert_msg(after > 0, "no 200 after the fault began");
    for (int i = 0; i < NSRV; i++) {
        ck_assert_msg(wait_stat(srv[i].port, "counter", ok, 10000),
                      "instance %d: counter %lld, %d 200s", i, stat_value(srv[i].port, "counter"),
                      ok);
        ck_assert_int_eq(stat_value(srv[i].port, "cluster.unknown"), 0);
    }
    return gap;
}

/* ---- one instance's path to one member blackholed ---- */

static void blackhole(bool on)
{
    proxy_set(px[0], on ? PROXY_BLACKHOLE : PROXY_PASS);
}

/* Instance 0 reaches every member through a proxy and starts on m0's:
 * that path swallows everything; the other instances and paths are fine. */
START_TEST(path_blackholed)
{
    char endpoints[3 * 32];
    size_t len = 0;
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(proxy_start(&px[i], trio.m[i].client_port, &px_port[i]), 0);
        len += (size_t)snprintf(endpoints + len, sizeof(endpoints) - len, "%shttp://127.0.0.1:%d",
                                i ? "," : "", px_port[i]);
    }
    start_instances(endpoints);
    long long gap = gap_through(blackhole, BLACKHOLE_MS);
    ck_assert_msg(proxy_swallowed(px[0]) > 0, "the blackhole swallowed nothing");
    ck_assert_msg(srv_log_wait(&srv[0], "abandoned", 5000), "no warning of the path");
    ck_assert_msg(srv_log_wait(&srv[0], "is back", 10000), "no word of its return");
    ck_assert_int_ge(stat_value(srv[0].port, "cluster.endpoints_abandoned"), 1);
    ck_assert_msg(gap <= 1500 + FAULT_MARGIN_MS, "no 200 for %lld ms (goal 1500)", gap);
    stop_all();
}
END_TEST

/* ---- the etcd leader paused ---- */

static int leader;
static long long elected_ms; /* from the pause to a new leader */

/* The state letter of pid's main thread in /proc ('T': stopped). */
static char proc_state(pid_t pid)
{
    char path[64], stat[512];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(stat, 1, sizeof(stat) - 1, f) : 0;
    if (f)
        fclose(f);
    stat[n] = '\0';
    const char *end = strrchr(stat, ')');
    return end && end[1] == ' ' ? end[2] : '?';
}

/* Paused, then the election that follows timed: a member of the two
 * others that says it leads. */
static void pause_leader(bool on)
{
    long long t0 = now_ms();
    ck_assert_int_eq(etcd_proc_signal(&trio, (unsigned)leader, on ? SIGSTOP : SIGCONT), 0);
    if (!on)
        return;
    ck_assert_int_eq(proc_state(trio.m[leader].pid), 'T');
    ck_assert_msg(etcd_proc_leader(&trio, leader, PAUSE_MS - 500) >= 0,
                  "no new leader while the leader was paused");
    elected_ms = now_ms() - t0;
}

START_TEST(leader_paused)
{
    leader = etcd_proc_leader(&trio, -1, 10000);
    ck_assert_int_ge(leader, 0);
    start_instances(trio.endpoints);
    long long gap = gap_through(pause_leader, PAUSE_MS);
    fprintf(stderr, "faults: the election took %lld ms\n", elected_ms);
    ck_assert_int_le(elected_ms, 2 * ELECTION_MS + 1000);
    ck_assert_msg(gap <= elected_ms + 1000 + FAULT_MARGIN_MS,
                  "no 200 for %lld ms (goal: the election's %lld ms + 1 s)", gap, elected_ms);
    stop_all();
}
END_TEST

/* ---- fixtures ---- */

static void test_teardown(void)
{
    stop_all();
    for (unsigned i = 0; i < trio.n; i++)
        if (trio.m[i].pid > 0)
            kill(trio.m[i].pid, SIGCONT);
}

static void trio_start(void)
{
    ck_assert_int_eq(etcd_proc_start(&trio, 3, START_MS), 0);
}

static void trio_stop(void)
{
    test_teardown();
    etcd_proc_stop(&trio);
}

int main(void)
{
    Suite *s = suite_create("faults");
    TCase *tc = tcase_create("three_members");
    tcase_set_timeout(tc, 180);
    tcase_add_unchecked_fixture(tc, trio_start, trio_stop);
    tcase_add_checked_fixture(tc, NULL, test_teardown);
    tcase_add_test(tc, path_blackholed);
    tcase_add_test(tc, leader_paused);
    suite_add_tcase(s, tc);
    return check_run(s);
}
