/* Pipelined sections and grouped writes in cluster mode, on a single-node
 * etcd (shared by the cases) and turnstile instances of cluster_fixture:
 * the next waiter of a loop is granted as the previous section ends, its
 * section runs while the earlier writes wait or are in flight, and the
 * writes that waited go in one txn. Grants stay FIFO and every N comes
 * once (etcd's own history says who wrote each); a group whose reply is
 * lost is settled whole from the history; a pipelined section whose
 * instance is paused past its lease, or whose write waits on a lost reply,
 * is fenced off; an Idempotency-Key's repeat in a pipeline writes nothing.
 * Waits are for events (a reply, a trapped write) or polls of /stats with
 * deadlines. */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_run.h"
#include "cluster_fixture.h"
#include "harness.h"
#include "proxy.h"

/* The reply on fd is `status`, and for a 200, N is n. */
static void expect_reply(int fd, int status, long long n, int timeout_ms)
{
    struct resp r;
    cf_read_reply(fd, &r, timeout_ms);
    ck_assert_msg(r.status == status, "%d %s, not %d", r.status, r.body, status);
    if (status == 200)
        ck_assert_int_eq(access_n(&r), n);
}

/* ---- pipelined sections: FIFO, every N once ---- */

#define PIPELINED 40 /* requests per instance */

/* How many times the counter was written: its version. */
static int counter_writes(void)
{
    char key[96];
    snprintf(key, sizeof(key), "/turnstile/%s/counter", cf_cluster_name);
    const char *version =
        strstr(cf_range(cf_single.m[0].client_port, key, false), "\"version\":\"");
    ck_assert_ptr_nonnull(version);
    return atoi(version + strlen("\"version\":\""));
}

/* Who wrote each N, 1 to n: the create revision of the writer's key, from
 * the receipts in the counter's values ("N KEY1 REV1 ... KEYK REVK",
 * counter.h: a txn of K writes, the i-th of which got N - K + i), into
 * revs[N - 1]. */
static void counter_receipts(int n, long long *revs)
{
    char key[96], b64[8192], value[6144];
    snprintf(key, sizeof(key), "/turnstile/%s/counter", cf_cluster_name);
    for (const char *p = cf_history(cf_single.m[0].client_port, key, false, counter_writes());
         (p = strstr(p, "\"value\":\"")); p += 9) {
        long long v, rev, pairs[64];
        int used, k = 0;
        ck_assert_int_eq(sscanf(p + 9, "%8191[^\"]", b64), 1);
        cf_unbase64(b64, value);
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
 * section before it ends (ticket.h), its section running while the earlier
 * writes wait or are in flight. With no delay, sections end faster than a
 * write commits, and the writes that wait go in one txn (commit.h,
 * counted in `stat`). Every request gets 200, the Ns are 1..n once each,
 * and etcd's own history names each N's writer, in the order of the
 * writers' places in the queue: N + 1's key was created no earlier than
 * N's. */
static void pipelined(int instances, const char *delay_ms, const char *stat)
{
    static long long revs[NSRV * PIPELINED];
    int total = instances * PIPELINED;
    memset(revs, 0, sizeof(revs));
    cf_start_all(cf_single.endpoints, delay_ms);
    cf_all_served_once(total, instances, 60000);
    counter_receipts(total, revs);
    for (int k = 0; k < total; k++)
        ck_assert_msg(revs[k] > 0, "no receipt names the writer of %d", k + 1);
    for (int k = 1; k < total; k++)
        ck_assert_msg(revs[k] >= revs[k - 1], "%d was written by a key created at %lld, %d at %lld",
                      k + 1, revs[k], k, revs[k - 1]);
    for (int i = 0; i < instances; i++)
        ck_assert_int_gt(stat_value(cf_srv[i].port, stat), 0);
    cf_stop_all();
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

/* ---- a group's reply lost ---- */

/* The queue key created last, in base64 as a request to etcd names it. */
static void newest_queue_key(char *b64, size_t cap)
{
    char prefix[96];
    long long newest = 0;
    snprintf(prefix, sizeof(prefix), "/turnstile/%s/queue/", cf_cluster_name);
    const char *kvs = cf_range(cf_single.m[0].client_port, prefix, true);
    for (const char *p = kvs; (p = strstr(p, "{\"key\":\"")); p += 8) {
        const char *rev = strstr(p, "\"create_revision\":\"");
        long long r = rev ? atoll(rev + strlen("\"create_revision\":\"")) : 0;
        if (r > newest) {
            newest = r;
            snprintf(b64, cap, "%.*s", (int)strcspn(p + 8, "\""), p + 8);
        }
    }
    ck_assert_int_gt(newest, 0);
}

/* One loop each. Instance 1's holder (1.5 s) has three requests of
 * instance 0 behind it, each joined alone. Released, instance 0's first is
 * granted; the second and third are granted as the sections before them
 * end (none has a delay), and the first's txn gathers their writes
 * (commit.h): a group of three, whose reply is lost (the trap is on the
 * third's key's delete, which only that txn holds). When the path heals,
 * the leader's receipt in etcd's history settles the group: all three
 * 200, with 2, 3 and 4, and one log line says so. */
START_TEST(a_groups_lost_reply_is_settled_for_all)
{
    char b64[256], needle[320];
    static const char *flags[] = {"--threads", "1", NULL};
    memcpy(cf_extra, flags, sizeof(flags));
    struct proxy *p = cf_start_behind_proxy("1500");
    int holder = cf_send_access(cf_srv[1].port), fds[3];
    ck_assert(wait_stat(cf_srv[1].port, "requests.in_section", 1, 10000));
    for (int k = 0; k < 3; k++) {
        fds[k] = cf_send_access(cf_srv[0].port);
        ck_assert(wait_stat(cf_srv[0].port, "cluster.queue_length", k + 2, 10000));
    }
    newest_queue_key(b64, sizeof(b64));
    snprintf(needle, sizeof(needle), "\"request_delete_range\":{\"key\":\"%s\"", b64);
    proxy_trap(p, needle);
    expect_reply(holder, 200, 1, 10000);
    ck_assert_msg(proxy_wait_trap(p, 10000) == 0, "the group's write never came");
    ck_assert_int_eq(stat_value(cf_srv[0].port, "cluster.grouped"), 2);
    ck_assert_msg(poll_readable(fds, 3, 0) == 0, "answered with the reply lost");
    proxy_set(p, PROXY_PASS);
    for (int k = 0; k < 3; k++)
        expect_reply(fds[k], 200, 2 + k, 30000);
    ck_assert(srv_log_wait(&cf_srv[0], "whose reply was lost was applied: 200", 5000));
    ck_assert_int_eq(stat_value(cf_srv[0].port, "cluster.unknown"), 0);
    cf_assert_counter(4);
    cf_stop_all();
    proxy_stop(p);
}
END_TEST

/* ---- Idempotency-Key in a pipeline ---- */

/* On one loop, a key's repeat granted as its first's write is sent
 * (pipelined): its own txn finds the key and writes nothing, its place is
 * let go with its key still in the queue, and the request pipelined behind
 * it writes on the first's value. */
START_TEST(idempotency_repeat_in_a_pipeline)
{
    int fds[4];
    static const char *flags[] = {"--threads", "1", NULL};
    memcpy(cf_extra, flags, sizeof(flags));
    cf_start_all(cf_single.endpoints, "300");
    fds[0] = cf_send_keyed(cf_srv[0].port, "k-1");
    ck_assert(wait_stat(cf_srv[0].port, "requests.in_section", 1, 10000));
    fds[1] = cf_send_keyed(cf_srv[0].port, "k-1");
    ck_assert(wait_stat(cf_srv[0].port, "cluster.queue_length", 2, 10000));
    fds[2] = cf_send_keyed(cf_srv[0].port, "k-2");
    ck_assert(wait_stat(cf_srv[0].port, "cluster.queue_length", 3, 10000));
    fds[3] = cf_send_access(cf_srv[0].port);
    ck_assert(wait_stat(cf_srv[0].port, "cluster.queue_length", 4, 10000));
    ck_assert_int_eq(cf_keyed_n(fds[0]), 1);
    ck_assert_int_eq(cf_keyed_n(fds[1]), 1);
    ck_assert_int_eq(cf_keyed_n(fds[2]), 2);
    ck_assert_int_eq(cf_keyed_n(fds[3]), 3);
    cf_assert_counter(3);
    ck_assert_int_eq(stat_value(cf_srv[0].port, "idempotency.repeats"), 1);
    ck_assert_int_ge(stat_value(cf_srv[0].port, "cluster.pipelined"), 2);
    cf_stop_all();
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
    memcpy(cf_extra, flags, sizeof(flags));
    cf_lease_ms = LEASE_SHORT_MS;
    cf_start_all(cf_single.endpoints, "3000");
    int holder = cf_send_access(cf_srv[0].port);
    ck_assert(wait_stat(cf_srv[0].port, "requests.in_section", 1, 10000));
    int piped = cf_send_access(cf_srv[0].port);
    ck_assert(wait_stat(cf_srv[0].port, "cluster.queue_length", 2, 10000));
    int other = cf_send_access(cf_srv[1].port);
    ck_assert(wait_stat(cf_srv[1].port, "cluster.queue_length", 3, 10000));
    ck_assert(wait_stat(cf_srv[0].port, "cluster.pipelined", 1, 10000));
    expect_reply(holder, 200, 1, 10000);
    ck_assert_int_eq(stat_value(cf_srv[0].port, "requests.in_section"), 1);
    kill(cf_srv[0].pid, SIGSTOP);
    expect_reply(other, 200, 2, 20000);
    kill(cf_srv[0].pid, SIGCONT);
    expect_reply(piped, 503, 0, 20000);
    ck_assert_int_eq(stat_value(cf_srv[0].port, "cluster.fenced"), 1);
    cf_assert_counter(2);
    cf_stop_all();
}
END_TEST

/* ---- paused while a pipelined write waits ---- */

/* One loop each. Instance 1's holder (2 s) has instance 0's two requests
 * and then one of its own behind it. Instance 0's first is granted, writes
 * 2, and loses the reply (the path is cut from then on); its second was
 * granted as the first's section ended, ran its (empty) section and waits
 * for that outcome (it has an Idempotency-Key, so it writes alone rather
 * than in the first's txn: commit.h). Instance 0 is paused then: its lease goes, and instance 1's
 * second writes 3. Healed and resumed, the first's write is proven from
 * etcd's history (200, 2); the pipelined one, whose key went with the
 * lease, is fenced off: 503. */
START_TEST(paused_while_a_pipelined_write_waits)
{
    static const char *flags[] = {"--threads", "1", NULL};
    memcpy(cf_extra, flags, sizeof(flags));
    struct proxy *p = cf_start_behind_proxy("2000");
    int holder = cf_send_access(cf_srv[1].port);
    ck_assert(wait_stat(cf_srv[1].port, "requests.in_section", 1, 10000));
    cf_trap_counter_put(p);
    int fds[3];
    for (int k = 0; k < 3; k++) { /* 0, 1: instance 0's; 2: instance 1's */
        fds[k] = k == 1 ? cf_send_keyed(cf_srv[0].port, "k-1") : cf_send_access(cf_srv[k / 2].port);
        ck_assert(wait_stat(cf_srv[k / 2].port, "cluster.queue_length", k + 2, 10000));
    }
    ck_assert_msg(proxy_wait_trap(p, 10000) == 0, "the fenced write never came");
    ck_assert(wait_stat(cf_srv[0].port, "cluster.pipelined", 1, 10000));
    kill(cf_srv[0].pid, SIGSTOP);
    expect_reply(holder, 200, 1, 10000);
    expect_reply(fds[2], 200, 3, 20000);
    proxy_set(p, PROXY_PASS);
    kill(cf_srv[0].pid, SIGCONT);
    expect_reply(fds[0], 200, 2, 30000);
    expect_reply(fds[1], 503, 0, 30000);
    ck_assert_int_eq(stat_value(cf_srv[0].port, "cluster.fenced"), 1);
    ck_assert_int_eq(stat_value(cf_srv[0].port, "cluster.unknown"), 0);
    cf_assert_counter(3);
    cf_stop_all();
    proxy_stop(p);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("pipeline");
    TCase *one = tcase_create("single_node");
    tcase_set_timeout(one, 120);
    tcase_add_unchecked_fixture(one, cf_single_start, cf_single_stop);
    tcase_add_checked_fixture(one, NULL, cf_stop_all); /* a failed test's too */
    tcase_add_test(one, pipelined_on_one_instance);
    tcase_add_test(one, pipelined_across_two_interleaved);
    tcase_add_test(one, grouped_writes_across_two);
    tcase_add_test(one, a_groups_lost_reply_is_settled_for_all);
    tcase_add_test(one, idempotency_repeat_in_a_pipeline);
    tcase_add_test(one, paused_in_a_pipelined_section_is_fenced_off);
    tcase_add_test(one, paused_while_a_pipelined_write_waits);
    suite_add_tcase(s, one);
    return check_run(s);
}
