/* Cluster mode under faults, on real etcd (tests/common/etcd_proc) with the
 * turnstile instances of cluster_fixture: a killed holder's place goes with
 * its lease; a paused holder's write is fenced off; an etcd member killed or
 * stalled under load costs no acknowledged write; all of etcd goes away and
 * comes back without restarting turnstile; a fenced write's reply lost on a
 * cut path (proxy.h) is settled from etcd's history, or said unknown when
 * that history is compacted; compaction keeps etcd under its quota, and
 * its NOSPACE alarm is loud and survived. Waits are for events (a reply, a
 * log line) or polls of /stats with deadlines. */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_run.h"
#include "cluster_fixture.h"
#include "etcd_proc.h"
#include "harness.h"
#include "load.h"
#include "proxy.h"
#include "scratch.h"

static struct etcd_proc solo; /* a node to take down */

/* ---- an instance killed while it holds the lock ---- */

START_TEST(killed_holder_lease_frees_the_queue)
{
    struct resp r;
    cf_lease_ms = LEASE_SHORT_MS;
    cf_start_all(cf_single.endpoints, "8000");
    int held = cf_send_access(cf_srv[0].port);
    ck_assert(wait_stat(cf_srv[0].port, "requests.in_section", 1, 10000));
    int queued = cf_send_access(cf_srv[1].port);
    ck_assert(wait_stat(cf_srv[1].port, "cluster.waiters", 1, 10000));
    long long t0 = now_ms();
    srv_stop(&cf_srv[0], SIGKILL);
    close(held);
    /* Granted once the dead instance's lease expires (3 s), well before
     * the 8 s section it had started would have ended. */
    cf_read_reply(queued, &r, 20000);
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq(access_n(&r), 1); /* the dead holder never wrote */
    ck_assert_int_lt(now_ms() - t0, 3000 + 8000 + 5000);
    cf_srv[0] = cf_srv[--cf_nsrv]; /* gone: the others carry on */
    int fd = cf_send_access(cf_srv[0].port);
    cf_read_reply(fd, &r, 20000);
    ck_assert_int_eq(access_n(&r), 2);
    cf_stop_all();
}
END_TEST

/* ---- a holder paused past its lease: its write is fenced off ---- */

START_TEST(paused_holder_is_fenced_off)
{
    struct resp r;
    /* Sections long enough that the SIGSTOP lands while one is still
     * open, however late the poll sees it start. */
    cf_lease_ms = LEASE_SHORT_MS;
    cf_start_all(cf_single.endpoints, "3000");
    int paused = cf_send_access(cf_srv[0].port);
    ck_assert(wait_stat(cf_srv[0].port, "requests.in_section", 1, 10000));
    ck_assert(wait_stat(cf_srv[1].port, "cluster.queue_length", 1, 10000));
    kill(cf_srv[0].pid, SIGSTOP);
    /* Its lease expires (3 s) and its key with it; nobody else writes, so
     * only the key's absence can stop the write it is about to make. */
    ck_assert(wait_stat(cf_srv[1].port, "cluster.queue_length", 0, 20000));
    kill(cf_srv[0].pid, SIGCONT);
    cf_read_reply(paused, &r, 20000);
    ck_assert_int_eq(r.status, 503); /* never a 200 it cannot prove */
    ck_assert(has_header(&r, "Retry-After: 1"));
    ck_assert_int_eq(stat_value(cf_srv[0].port, "cluster.fenced"), 1);
    cf_assert_counter(0);
    /* Paused again while it holds, and this time another takes over: its
     * N is the first, and the paused one's write is refused again. */
    ck_assert(wait_stat(cf_srv[0].port, "cluster.healthy", 1, 20000));
    paused = cf_send_access(cf_srv[0].port);
    ck_assert(wait_stat(cf_srv[0].port, "requests.in_section", 1, 10000));
    kill(cf_srv[0].pid, SIGSTOP);
    int next = cf_send_access(cf_srv[1].port);
    cf_read_reply(next, &r, 20000);
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq(access_n(&r), 1);
    kill(cf_srv[0].pid, SIGCONT);
    cf_read_reply(paused, &r, 20000);
    ck_assert_int_eq(r.status, 503);
    ck_assert_int_eq(stat_value(cf_srv[0].port, "cluster.fenced"), 2);
    cf_assert_counter(1);
    /* It takes a new lease and serves again. */
    ck_assert(wait_stat(cf_srv[0].port, "cluster.healthy", 1, 20000));
    int again = cf_send_access(cf_srv[0].port);
    cf_read_reply(again, &r, 20000);
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq(access_n(&r), 2);
    cf_stop_all();
}
END_TEST

/* ---- one etcd member of three killed and restarted under load ---- */

START_TEST(member_killed_under_load)
{
    int unavailable, after;
    cf_start_all(cf_trio.endpoints, "0");
    long long t0 = now_ms();
    load_start(cf_ports(), cf_nsrv, 6, LOAD_MAX_REPLIES, 15000);
    ck_assert(wait_stat_at_least(cf_srv[0].port, "lock.acquisitions", 50, 10000));
    ck_assert_int_eq(etcd_proc_kill(&cf_trio, 0), 0); /* every instance started on it */
    long long killed = now_ms();
    ck_assert(wait_stat(cf_srv[1].port, "cluster.healthy", 1, 10000));
    ck_assert_int_eq(etcd_proc_restart(&cf_trio, 0, START_MS), 0);
    int ok = load_finish(&unavailable, &after, killed + 1000);
    ck_assert_msg(after > 100, "only %d 200s after the member died", after);
    cf_assert_counter(ok);            /* nothing acknowledged lost, nothing counted twice */
    for (int i = 0; i < cf_nsrv; i++) /* every write whose reply was lost was settled */
        ck_assert_int_eq(stat_value(cf_srv[i].port, "cluster.unknown"), 0);
    ck_assert_int_lt(now_ms() - t0, 90000);
    cf_stop_all();
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
    cf_start_all(cf_trio.endpoints, "0");
    load_start(cf_ports(), cf_nsrv, 6, LOAD_MAX_REPLIES, 15000);
    ck_assert(wait_stat_at_least(cf_srv[0].port, "lock.acquisitions", 50, 10000));
    ck_assert_int_eq(etcd_proc_signal(&cf_trio, 0, SIGSTOP), 0); /* every instance started on it */
    long long stopped = now_ms();
    int ok = load_finish(&unavailable, &after, stopped + 1000);
    ck_assert_int_eq(etcd_proc_signal(&cf_trio, 0, SIGCONT), 0);
    ck_assert_msg(after > 100, "only %d 200s while the member was stopped", after);
    cf_assert_counter(ok);
    for (int i = 0; i < cf_nsrv; i++)
        ck_assert_int_eq(stat_value(cf_srv[i].port, "cluster.unknown"), 0);
    cf_stop_all();
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
    cf_lease_ms = LEASE_SHORT_MS;
    cf_start_all(solo.endpoints, "0");
    for (int i = 0; i < NSRV; i++) {
        ck_assert_int_eq(http_get(cf_srv[i].port, "/access", &r), 0);
        ck_assert_int_eq(r.status, 200);
    }
    ck_assert_int_eq(etcd_proc_kill(&solo, 0), 0);
    long long t0 = now_ms();
    ck_assert_int_eq(http_get(cf_srv[1].port, "/access", &r), 0);
    ck_assert_int_eq(r.status, 503);
    ck_assert(has_header(&r, "Retry-After: 1"));
    ck_assert_int_lt(now_ms() - t0, 3000); /* quickly, with --lock-timeout-ms 0 */
    for (int i = 0; i < 20; i++)           /* a run of failed calls: told once, not per request */
        ck_assert_int_eq(http_get(cf_srv[1].port, "/access", &r), 0);
    ck_assert(srv_log_wait(&cf_srv[1], "no etcd endpoint takes a connection", 10000));
    /* /stats works and says so; an instance started now starts anyway. */
    ck_assert(wait_stat(cf_srv[1].port, "cluster.healthy", 0, 10000));
    cf_start_one(cf_nsrv++, solo.endpoints, "0");
    ck_assert(srv_log_wait(&cf_srv[3], "does not answer", 10000));
    ck_assert_int_eq(http_get(cf_srv[3].port, "/access", &r), 0);
    ck_assert_int_eq(r.status, 503);
    ck_assert_int_eq(etcd_proc_restart(&solo, 0, START_MS), 0);
    for (int i = 0; i < cf_nsrv; i++)
        ck_assert_msg(wait_stat(cf_srv[i].port, "cluster.healthy", 1, 20000), "%d did not recover",
                      i);
    ck_assert(srv_log_wait(&cf_srv[1], "etcd answers again", 10000));
    ck_assert_int_eq(log_count(&cf_srv[1], "no etcd endpoint takes a connection"), 1);
    for (int i = 0; i < cf_nsrv; i++) {
        ck_assert_int_eq(http_get(cf_srv[i].port, "/access", &r), 0);
        ck_assert_int_eq(r.status, 200);
        ck_assert_int_eq(access_n(&r), NSRV + 1 + i); /* nothing acknowledged was lost */
    }
    cf_stop_all();
    etcd_proc_stop(&solo);
}
END_TEST

/* ---- etcd's size ---- */

#define QUOTA_BYTES (1ull << 20) /* ~2000 requests fill it uncompacted (~520 B each) */

static struct etcd_proc small; /* a node with a backend quota of QUOTA_BYTES */

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

/* Three times the requests that fill the quota uncompacted, with a
 * compaction every second: every one 200, the counter exact, no alarm. */
START_TEST(compaction_keeps_etcd_under_its_quota)
{
    int unavailable, after;
    char out[512];
    ck_assert_int_eq(etcd_proc_start_quota(&small, 1, QUOTA_BYTES, START_MS), 0);
    cf_extra[0] = "--compact-interval-ms";
    cf_extra[1] = "1000";
    cf_start_all(small.endpoints, "0");
    load_start(cf_ports(), cf_nsrv, 12, 600, 100000);
    int ok = load_finish(&unavailable, &after, 0);
    ck_assert_int_eq(unavailable, 0);
    ck_assert_int_ge(ok, 3 * (int)(QUOTA_BYTES / 520));
    cf_assert_counter(ok);
    long long compactions = 0;
    for (int i = 0; i < cf_nsrv; i++)
        compactions += stat_value(cf_srv[i].port, "cluster.compactions");
    ck_assert_int_gt(compactions, 0);
    ck_assert_int_eq(etcdctl(&small, "alarm list", out, sizeof(out)), 0);
    ck_assert_msg(strstr(out, "NOSPACE") == NULL, "etcd raised an alarm: %s", out);
    cf_stop_all();
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
    cf_start_all(small.endpoints, "0");
    out[0] = '\0';
    for (int i = 0; i < 30 && !strstr(out, "database space exceeded"); i++)
        etcdctl(&small, "put filler \"$(head -c 65536 /dev/zero | tr '\\0' x)\"", out, sizeof(out));
    ck_assert_msg(strstr(out, "database space exceeded"), "etcd took it all: %s", out);
    ck_assert_int_eq(http_get(cf_srv[1].port, "/access", &r), 0);
    ck_assert_int_eq(r.status, 503);
    ck_assert(has_header(&r, "Retry-After: 1"));
    ck_assert(wait_stat(cf_srv[0].port, "cluster.alarm_nospace", 1, 15000));
    ck_assert(srv_log_wait(&cf_srv[0], "etcd raised NOSPACE", 15000));
    ck_assert_msg(wait_row_alarm(cf_srv[0].port, true, 15000), "the etcd row shows no NOSPACE");
    /* The operator: compact to now, defragment, disarm. */
    ck_assert_int_eq(etcdctl(&small, "get filler --keys-only -w json", out, sizeof(out)), 0);
    char *rev = strstr(out, "\"revision\":");
    ck_assert_ptr_nonnull(rev);
    snprintf(cmd, sizeof(cmd), "compact %lld", atoll(rev + strlen("\"revision\":")));
    etcdctl(&small, cmd, out, sizeof(out)); /* "already compacted" is as good */
    ck_assert_int_eq(etcdctl(&small, "defrag", out, sizeof(out)), 0);
    ck_assert_int_eq(etcdctl(&small, "alarm disarm", out, sizeof(out)), 0);
    ck_assert(wait_stat(cf_srv[0].port, "cluster.alarm_nospace", 0, 15000));
    ck_assert(srv_log_wait(&cf_srv[0], "alarms are disarmed", 15000));
    ck_assert_msg(wait_row_alarm(cf_srv[0].port, false, 15000), "the etcd row keeps NOSPACE");
    ck_assert_int_eq(http_get(cf_srv[1].port, "/access", &r), 0);
    ck_assert_int_eq(r.status, 200);
    cf_stop_all();
    etcd_proc_stop(&small);
}
END_TEST

/* ---- a fenced write's reply lost, the path cut past the deadlines ---- */

/* The lease's TTL and two call deadlines (proof.h), and a second more:
 * the time after which the old rule gave up on etcd's silence. */
#define PAST_DEADLINES_US ((atoi(LEASE_SHORT_MS) + 2 * 1000 + 1000) * 1000)

/* Sends /access to instance 0, whose fenced write reaches etcd and applies,
 * and whose reply is lost: the path is cut from then on. Returns the
 * request's socket. */
static int lose_the_reply(struct proxy *p)
{
    cf_trap_counter_put(p);
    int fd = cf_send_access(cf_srv[0].port);
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
    cf_read_reply(fd, r, 30000);
}

/* Applied, reply lost, the instance cut off from etcd past its lease and
 * two call deadlines: once etcd answers, the history proves the write, 200
 * with its N. */
START_TEST(a_lost_reply_is_settled_from_history_past_the_deadlines)
{
    struct resp r;
    struct proxy *p = cf_start_behind_proxy("0");
    int fd = lose_the_reply(p);
    heal_past_the_deadlines(p, fd, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq(access_n(&r), 1);
    cf_assert_counter(1); /* instance 1 sees the same N, from etcd */
    ck_assert(srv_log_wait(&cf_srv[0], "whose reply was lost was applied: 200", 5000));
    ck_assert_int_eq(stat_value(cf_srv[0].port, "cluster.unknown"), 0);
    cf_stop_all();
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
    struct proxy *p = cf_start_behind_proxy("0");
    int fd = lose_the_reply(p);
    cf_read_reply(cf_send_access(cf_srv[1].port), &r, 20000);
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq(access_n(&r), 2); /* after the lost one, which applied */
    ck_assert_int_eq(
        etcdctl(&cf_single, "get /turnstile --prefix --keys-only -w json", out, sizeof(out)), 0);
    char *rev = strstr(out, "\"revision\":");
    ck_assert_ptr_nonnull(rev);
    snprintf(cmd, sizeof(cmd), "compact %lld", atoll(rev + strlen("\"revision\":")));
    ck_assert_int_eq(etcdctl(&cf_single, cmd, out, sizeof(out)), 0);
    heal_past_the_deadlines(p, fd, &r);
    ck_assert_int_eq(r.status, 500);
    ck_assert_ptr_nonnull(strstr(r.body, "Outcome unknown"));
    ck_assert(!has_header(&r, "Retry-After: 1"));
    ck_assert_int_eq(stat_value(cf_srv[0].port, "cluster.unknown"), 1);
    ck_assert(srv_log_wait(&cf_srv[0], "etcd compacted that history", 5000));
    cf_assert_counter(2);
    cf_stop_all();
    proxy_stop(p);
}
END_TEST

/* ---- fixtures ---- */

/* After every test, passed or failed: what it started goes. */
static void test_teardown(void)
{
    cf_stop_all();
    etcd_proc_stop(&solo);
    etcd_proc_stop(&small);
}

int main(void)
{
    Suite *s = suite_create("cluster_faults");
    TCase *one = tcase_create("single_node");
    tcase_set_timeout(one, 120);
    tcase_add_unchecked_fixture(one, cf_single_start, cf_single_stop);
    tcase_add_checked_fixture(one, NULL, test_teardown); /* a failed test's too */
    tcase_add_test(one, killed_holder_lease_frees_the_queue);
    tcase_add_test(one, paused_holder_is_fenced_off);
    tcase_add_test(one, etcd_down_then_back);
    tcase_add_test(one, a_lost_reply_is_settled_from_history_past_the_deadlines);
    tcase_add_test(one, a_lost_reply_with_its_history_compacted_is_unknown);
    suite_add_tcase(s, one);
    TCase *size = tcase_create("etcd_size"); /* etcds of their own */
    tcase_set_timeout(size, 180);
    tcase_add_checked_fixture(size, NULL, test_teardown);
    tcase_add_test(size, compaction_keeps_etcd_under_its_quota);
    tcase_add_test(size, an_alarm_is_loud_and_service_resumes_after_disarm);
    suite_add_tcase(s, size);
    TCase *three = tcase_create("three_members");
    tcase_set_timeout(three, 180);
    tcase_add_unchecked_fixture(three, cf_trio_start, cf_trio_stop);
    tcase_add_checked_fixture(three, NULL, test_teardown);
    tcase_add_test(three, member_killed_under_load);
    tcase_add_test(three, member_stalled_under_load);
    suite_add_tcase(s, three);
    return check_run(s);
}
