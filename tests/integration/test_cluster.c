/* Cluster mode end to end, the core: real etcd (a single node and a
 * 3-member cluster, tests/common/etcd_proc) and three turnstile instances
 * sharing one counter and one FIFO lock. The counter stays exact under
 * clients spread over the instances; grants follow arrival order across
 * them; the queue's key names stay a bounded set; bursts of thousands are
 * all served; timeouts, the queue cap and leaving clients hold
 * cluster-wide; a young instance refuses no one; an Idempotency-Key
 * applies once across instances. Pipelined sections are test_pipeline's,
 * faults test_cluster_faults', a secured etcd test_cluster_secured's.
 * Waits are for events (a reply, a log line) or polls of /stats with
 * deadlines. */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "check_run.h"
#include "cluster_fixture.h"
#include "harness.h"
#include "load.h"

/* ---- the counter is exact ---- */

START_TEST(counter_exact_single_node)
{
    cf_counter_exact(cf_single.endpoints);
}
END_TEST

START_TEST(counter_exact_three_members)
{
    cf_counter_exact(cf_trio.endpoints);
}
END_TEST
/* ---- Idempotency-Key ---- */

/* The same key on every instance: the first holds the lock while the
 * others queue behind it; one count, one N for all, also for a later
 * repeat; the txn that found the key wrote nothing. */
START_TEST(idempotency_key_applies_once_across_instances)
{
    int fds[NSRV];
    cf_start_all(cf_single.endpoints, "300");
    fds[0] = cf_send_keyed(cf_srv[0].port, "k-1");
    ck_assert(wait_stat(cf_srv[0].port, "requests.in_section", 1, 10000));
    for (int i = 1; i < NSRV; i++) {
        fds[i] = cf_send_keyed(cf_srv[i].port, "k-1");
        ck_assert(wait_stat(cf_srv[i].port, "cluster.waiters", 1, 10000));
    }
    for (int i = 0; i < NSRV; i++)
        ck_assert_int_eq(cf_keyed_n(fds[i]), 1);
    ck_assert_int_eq(cf_keyed_n(cf_send_keyed(cf_srv[2].port, "k-1")), 1);
    ck_assert_int_eq(cf_keyed_n(cf_send_keyed(cf_srv[1].port, "k-2")), 2);
    cf_assert_counter(2);
    long long repeats = 0;
    for (int i = 0; i < NSRV; i++)
        repeats += stat_value(cf_srv[i].port, "idempotency.repeats");
    ck_assert_int_eq(repeats, NSRV);
    cf_stop_all();
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
    cf_start_all(cf_single.endpoints, "1000");
    for (int k = 0; k < N; k++) {
        int port = cf_srv[on[k]].port;
        fds[k] = cf_send_access(port);
        ck_assert_msg(wait_stat(port, "cluster.queue_length", k + 1, 10000),
                      "request %d did not join the queue", k);
    }
    for (int k = 0; k < N; k++) {
        struct resp r;
        cf_read_reply(fds[k], &r, 20000);
        ck_assert_int_eq(r.status, 200);
        ck_assert_int_eq(access_n(&r), k + 1);
    }
    cf_stop_all();
}
END_TEST

/* ---- the queue's key names are a bounded set ---- */

/* Distinct names among the first `events` events under prefix. */
static int names_ever_created(int etcd_port, const char *prefix, int events)
{
    static char names[4096][96];
    int nnames = 0;
    for (const char *p = cf_history(etcd_port, prefix, true, events); (p = strstr(p, "\"key\":\""));
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
    cf_start_all(cf_single.endpoints, "0");
    load_start(cf_ports(), cf_nsrv, NSRV, PER, 60000);
    int ok = load_finish(&unavailable, &after, 0);
    ck_assert_int_eq(ok, NSRV * PER);
    snprintf(prefix, sizeof(prefix), "/turnstile/%s/queue/", cf_cluster_name);
    int names = names_ever_created(cf_single.m[0].client_port, prefix, 2 * ok);
    /* One connection per instance: one waiter per loop at most, one name
     * each; room for a slot retired after an unknown outcome. */
    ck_assert_msg(names <= NSRV * 2 + 2, "%d names for %d requests", names, ok);
    cf_assert_counter(ok);
    cf_stop_all();
}
END_TEST

/* ---- a burst: thousands queued at once, every one served ---- */

#define BURST CF_ALL_SERVED_MAX

/* BURST requests sent at once over `instances` instances, 1 ms sections
 * and no lock timeout: every one gets 200 (joins are batched, and a join's
 * etcd deadline runs from when it is sent, not while it waits in line), N
 * distinct, the counter exact. */
static void burst(int instances)
{
    ck_assert_int_ge(raise_own_nofile(), BURST + 64);
    cf_start_all(cf_single.endpoints, "1");
    cf_all_served_once(BURST, instances, 120000);
    for (int i = 0; i < instances; i++)
        ck_assert_int_eq(stat_value(cf_srv[i].port, "cluster.unavailable"), 0);
    /* One instance: every next waiter is its own, most on the same loop
     * (a batch's keys are consecutive), and is granted as the previous
     * write is sent (pipelined), before that write's reply or its watch
     * event could grant it. */
    if (instances == 1)
        ck_assert_int_gt(stat_value(cf_srv[0].port, "cluster.pipelined"), 0);
    cf_stop_all();
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

/* ---- lock timeouts, the queue cap and leaving clients, cluster-wide ---- */

START_TEST(timeouts_caps_and_leavers)
{
    struct resp r;
    /* The timeout leaves seconds of room for the cap to be checked
     * before the first waiter times out and frees a place in the queue,
     * even on a loaded machine under ASan; the section outlasts it. */
    static const char *flags[] = {"--lock-timeout-ms", "5000", "--max-waiters", "2", NULL};
    memcpy(cf_extra, flags, sizeof(flags));
    cf_start_all(cf_single.endpoints, "10000");
    int held = cf_send_access(cf_srv[0].port);
    ck_assert(wait_stat(cf_srv[0].port, "requests.in_section", 1, 10000));
    /* A waiter whose client leaves: its key goes at once, as another
     * instance sees. */
    int leaver = cf_send_access(cf_srv[1].port);
    ck_assert(wait_stat(cf_srv[2].port, "cluster.queue_length", 2, 10000));
    close(leaver);
    ck_assert(wait_stat(cf_srv[2].port, "cluster.queue_length", 1, 3000));
    ck_assert(wait_stat(cf_srv[1].port, "lock.cancellations", 1, 3000));
    /* --max-waiters counts the cluster's queue: the holder and two
     * waiters on two other instances, and a third is refused at once. */
    long long t0 = now_ms();
    int w1 = cf_send_access(cf_srv[1].port), w2 = cf_send_access(cf_srv[2].port);
    ck_assert(wait_stat(cf_srv[0].port, "cluster.queue_length", 3, 3000));
    ck_assert_int_eq(http_get(cf_srv[0].port, "/access", &r), 0);
    ck_assert_int_eq(r.status, 503);
    ck_assert_msg(strstr(r.body, "Too many"), "%s", r.body);
    ck_assert_int_eq(stat_value(cf_srv[0].port, "lock.shed"), 1);
    /* --lock-timeout-ms: both waiters get 503, and their keys go. */
    cf_read_reply(w1, &r, 10000);
    ck_assert_int_eq(r.status, 503);
    ck_assert(has_header(&r, "Retry-After: 1"));
    cf_read_reply(w2, &r, 10000);
    ck_assert_int_eq(r.status, 503);
    ck_assert_int_ge(now_ms() - t0, 4900);
    ck_assert_int_eq(stat_value(cf_srv[1].port, "lock.timeouts"), 1);
    ck_assert_int_eq(stat_value(cf_srv[2].port, "lock.timeouts"), 1);
    ck_assert(wait_stat(cf_srv[0].port, "cluster.queue_length", 1, 3000));
    cf_read_reply(held, &r, 15000);
    ck_assert_int_eq(access_n(&r), 1);
    cf_assert_counter(1);
    cf_stop_all();
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
    cf_new_cluster_name();
    for (cf_nsrv = 0; cf_nsrv < FRESH; cf_nsrv++) {
        cf_start_one(cf_nsrv, cf_single.endpoints, "0");
        for (int k = 0; k < EACH; k++)
            fds[k] = cf_send_access(cf_srv[cf_nsrv].port);
        for (int k = 0; k < EACH; k++) {
            cf_read_reply(fds[k], &r, 20000);
            ck_assert_msg(r.status == 200, "instance %d, request %d: %d", cf_nsrv, k, r.status);
        }
    }
    cf_assert_counter(FRESH * EACH);
    cf_stop_all();
}
END_TEST

/* ---- flags and the stop line ---- */

/* --no-lock with --etcd: refused before anything starts, in one line. */
START_TEST(no_lock_with_etcd_is_refused)
{
    char out[256], err[512];
    int status = run_binary(10000, out, sizeof(out), err, sizeof(err), "--etcd",
                            cf_single.endpoints, "--no-lock", "--port", "0", NULL);
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
    cf_start_all(cf_single.endpoints, "0");
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(http_get(cf_srv[0].port, "/access", &r), 0);
        ck_assert_int_eq(r.status, 200);
    }
    ck_assert(wait_stat(cf_srv[2].port, "counter", 3, 10000));
    kill(cf_srv[2].pid, SIGTERM);
    ck_assert(srv_log_wait(&cf_srv[2], "stopped: counter 3", 10000));
    cf_stop_all();
}
END_TEST

/* ---- fixtures ---- */

int main(void)
{
    Suite *s = suite_create("cluster");
    TCase *one = tcase_create("single_node");
    tcase_set_timeout(one, 120);
    tcase_add_unchecked_fixture(one, cf_single_start, cf_single_stop);
    tcase_add_checked_fixture(one, NULL, cf_stop_all); /* a failed test's too */
    tcase_add_test(one, counter_exact_single_node);
    tcase_add_test(one, fifo_across_instances);
    tcase_add_test(one, queue_key_names_stay_bounded);
    tcase_add_test(one, burst_on_one_instance);
    tcase_add_test(one, burst_across_three);
    tcase_add_test(one, idempotency_key_applies_once_across_instances);
    tcase_add_test(one, timeouts_caps_and_leavers);
    tcase_add_test(one, no_lock_with_etcd_is_refused);
    tcase_add_test(one, a_young_instance_refuses_no_one);
    tcase_add_test(one, stop_line_says_the_clusters_counter);
    suite_add_tcase(s, one);
    TCase *three = tcase_create("three_members");
    tcase_set_timeout(three, 180);
    tcase_add_unchecked_fixture(three, cf_trio_start, cf_trio_stop);
    tcase_add_checked_fixture(three, NULL, cf_stop_all);
    tcase_add_test(three, counter_exact_three_members);
    suite_add_tcase(s, three);
    return check_run(s);
}
