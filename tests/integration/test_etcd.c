/* Integration tests for server/cluster/etcd.c and what it stands on: the
 * client on a real loop against real etcd processes
 * (tests/common/etcd_proc): kv reads and writes, txn compares, leases that
 * expire, watches, a stalled member, dead endpoints and a cluster
 * failover. Replies that are not what etcd sends are tests/unit's
 * (test_etcd_client.c, test_etcd_conn.c). Waits are for events or polls
 * with deadlines, never sleeps. */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_run.h"
#include "cluster/etcd.h"
#include "cluster/etcd_watch.h"
#include "dead_port.h"
#include "etcd_proc.h"
#include "etcd_run.h"
#include "ms.h"

#define START_MS 30000 /* an etcd, or a cluster, to become healthy */

static struct etcd_proc single; /* one node shared by most tests */
static struct loop loop;
static struct etcd_client client;

/* Polls *flag from a coroutine until it is set; false at the deadline. */
static bool wait_flag(const int *flag, int want, int timeout_ms)
{
    int64_t end = ms_from_now(timeout_ms);
    while (*flag != want && loop_now_us() < end)
        loop_sleep_us(1000);
    return *flag == want;
}

static void single_start(void)
{
    ck_assert_int_eq(etcd_proc_start(&single, 1, START_MS), 0);
}

static void single_stop(void)
{
    etcd_proc_stop(&single);
}

/* ---- helpers ---- */

/* An unconditional put; returns its revision. */
static int64_t put(const char *key, const char *value, int64_t lease)
{
    struct etcd_op op = etcd_run_put_op(key, value, lease);
    struct etcd_txn t = {.success = &op, .nsuccess = 1};
    struct etcd_reply r;
    ck_assert_int_eq(etcd_txn(&client, &t, &r, ms_from_now(5000)), 0);
    ck_assert(r.succeeded);
    ck_assert_uint_eq(r.nops, 1);
    ck_assert_int_eq(r.ops[0].type, ETCD_OP_PUT);
    int64_t rev = r.revision;
    etcd_reply_free(&r);
    return rev;
}

static int range(const struct etcd_range_req *req, struct etcd_reply *r)
{
    return etcd_range(&client, req, r, ms_from_now(5000));
}

/* How many keys key has (0 or 1). */
static int64_t key_count(const char *key)
{
    struct etcd_reply r;
    ck_assert_int_eq(range(&(struct etcd_range_req){.key = key, .key_len = strlen(key)}, &r), 0);
    int64_t n = r.ops[0].count;
    etcd_reply_free(&r);
    return n;
}

static void assert_kv(const struct etcd_kv *kv, const char *key, const char *value)
{
    ck_assert_uint_eq(kv->key_len, strlen(key));
    ck_assert_mem_eq(kv->key, key, kv->key_len);
    ck_assert_uint_eq(kv->value_len, strlen(value));
    ck_assert_mem_eq(kv->value, value, kv->value_len);
}

/* ---- kv ---- */

static void kv_scenario(void)
{
    int64_t rev = put("kv/a", "one", 0);
    struct etcd_reply r;
    ck_assert_int_eq(range(&(struct etcd_range_req){.key = "kv/a", .key_len = 4}, &r), 0);
    ck_assert_int_ge(r.revision, rev);
    ck_assert_uint_eq(r.nops, 1);
    ck_assert_int_eq(r.ops[0].count, 1);
    ck_assert_uint_eq(r.ops[0].nkvs, 1);
    assert_kv(&r.ops[0].kvs[0], "kv/a", "one");
    ck_assert_int_eq(r.ops[0].kvs[0].create_revision, rev);
    ck_assert_int_eq(r.ops[0].kvs[0].mod_revision, rev);
    ck_assert_int_eq(r.ops[0].kvs[0].version, 1);
    etcd_reply_free(&r);

    /* A put that returns what it replaced. */
    struct etcd_op op = etcd_run_put_op("kv/a", "two", 0);
    op.put.prev_kv = true;
    ck_assert_int_eq(
        etcd_txn(&client, &(struct etcd_txn){.success = &op, .nsuccess = 1}, &r, ms_from_now(5000)),
        0);
    ck_assert_uint_eq(r.ops[0].nkvs, 1);
    assert_kv(&r.ops[0].kvs[0], "kv/a", "one");
    etcd_reply_free(&r);

    /* History: as of the first put's revision, the key still says "one"
     * (cluster mode reads the counter's past to settle a lost reply). */
    ck_assert_int_eq(
        range(&(struct etcd_range_req){.key = "kv/a", .key_len = 4, .revision = rev}, &r), 0);
    ck_assert_uint_eq(r.ops[0].nkvs, 1);
    assert_kv(&r.ops[0].kvs[0], "kv/a", "one");
    etcd_reply_free(&r);
    ck_assert_int_eq(
        range(&(struct etcd_range_req){.key = "kv/a", .key_len = 4, .revision = rev - 1}, &r), 0);
    ck_assert_uint_eq(r.ops[0].nkvs, 0); /* before it was put */
    etcd_reply_free(&r);

    /* Bytes of every value survive base64 both ways, NULs included. */
    char key[] = {'k', 'v', '/', 0, (char)0xff, 'z'}, value[256];
    for (int i = 0; i < 256; i++)
        value[i] = (char)i;
    op = (struct etcd_op){
        .type = ETCD_OP_PUT,
        .put = {.key = key, .key_len = sizeof(key), .value = value, .value_len = sizeof(value)}};
    etcd_reply_free(&r);
    ck_assert_int_eq(
        etcd_txn(&client, &(struct etcd_txn){.success = &op, .nsuccess = 1}, &r, ms_from_now(5000)),
        0);
    etcd_reply_free(&r);
    ck_assert_int_eq(range(&(struct etcd_range_req){.key = key, .key_len = sizeof(key)}, &r), 0);
    ck_assert_uint_eq(r.ops[0].kvs[0].key_len, sizeof(key));
    ck_assert_mem_eq(r.ops[0].kvs[0].key, key, sizeof(key));
    ck_assert_uint_eq(r.ops[0].kvs[0].value_len, sizeof(value));
    ck_assert_mem_eq(r.ops[0].kvs[0].value, value, sizeof(value));
    etcd_reply_free(&r);

    /* Deleting the prefix takes both keys and says which. */
    ck_assert_int_eq(etcd_delete(&client,
                                 &(struct etcd_delete_req){
                                     .key = "kv/", .key_len = 3, .prefix = true, .prev_kv = true},
                                 &r, ms_from_now(5000)),
                     0);
    ck_assert_int_eq(r.ops[0].type, ETCD_OP_DELETE);
    ck_assert_int_eq(r.ops[0].count, 2);
    ck_assert_uint_eq(r.ops[0].nkvs, 2);
    etcd_reply_free(&r);
    ck_assert_int_eq(key_count("kv/a"), 0);
    ck_assert_int_eq(etcd_delete(&client, &(struct etcd_delete_req){.key = "kv/a", .key_len = 4},
                                 &r, ms_from_now(5000)),
                     0);
    ck_assert_int_eq(r.ops[0].count, 0); /* "deleted" absent: zero */
    etcd_reply_free(&r);
    ck_assert(etcd_last_ok(&client));
    ck_assert_uint_eq(client.stats.ok, client.stats.calls);
}

START_TEST(put_range_delete)
{
    etcd_run(&loop, &client, kv_scenario, single.endpoints);
}
END_TEST

/* A queue's keys: created in an order unlike their names' order. */
static void range_options_scenario(void)
{
    const char *names[] = {"q/c", "q/a", "q/b"};
    int64_t revs[3];
    for (int i = 0; i < 3; i++)
        revs[i] = put(names[i], names[i], 0);
    put("q0", "neighbour", 0); /* right after the prefix: not in it */

    struct etcd_range_req req = {.key = "q/",
                                 .key_len = 2,
                                 .prefix = true,
                                 .limit = 1,
                                 .sort_order = ETCD_SORT_ASCEND,
                                 .sort_target = ETCD_SORT_CREATE};
    struct etcd_reply r;
    ck_assert_int_eq(range(&req, &r), 0);
    ck_assert_int_eq(r.ops[0].count, 3); /* all of them, though one is returned */
    ck_assert(r.ops[0].more);
    ck_assert_uint_eq(r.ops[0].nkvs, 1);
    assert_kv(&r.ops[0].kvs[0], "q/c", "q/c"); /* the first created */
    etcd_reply_free(&r);

    /* Who is just ahead of q/b: the last created before it. */
    req.sort_order = ETCD_SORT_DESCEND;
    req.max_create_revision = revs[2] - 1;
    ck_assert_int_eq(range(&req, &r), 0);
    ck_assert_int_eq(r.ops[0].count, 3); /* etcd counts the range before filtering */
    ck_assert(r.ops[0].more);            /* but `more` is about what passed */
    ck_assert_uint_eq(r.ops[0].nkvs, 1);
    assert_kv(&r.ops[0].kvs[0], "q/a", "q/a");
    etcd_reply_free(&r);

    /* By name (no sort asked: etcd's own key order), and count only. */
    ck_assert_int_eq(range(&(struct etcd_range_req){.key = "q/", .key_len = 2, .prefix = true}, &r),
                     0);
    ck_assert_uint_eq(r.ops[0].nkvs, 3);
    assert_kv(&r.ops[0].kvs[0], "q/a", "q/a");
    assert_kv(&r.ops[0].kvs[2], "q/c", "q/c");
    ck_assert(!r.ops[0].more);
    etcd_reply_free(&r);
    ck_assert_int_eq(
        range(
            &(struct etcd_range_req){.key = "q/", .key_len = 2, .prefix = true, .count_only = true},
            &r),
        0);
    ck_assert_int_eq(r.ops[0].count, 3);
    ck_assert_uint_eq(r.ops[0].nkvs, 0);
    etcd_reply_free(&r);

    /* A prefix ending in 0xff bytes, and the empty prefix (every key). */
    char ff[] = {'q', (char)0xff, (char)0xff};
    put("q\xff\xff/x", "x", 0);
    ck_assert_int_eq(range(&(struct etcd_range_req){.key = ff, .key_len = 3, .prefix = true}, &r),
                     0);
    ck_assert_int_eq(r.ops[0].count, 1);
    etcd_reply_free(&r);
    ck_assert_int_eq(range(&(struct etcd_range_req){.prefix = true, .count_only = true}, &r), 0);
    ck_assert_int_ge(r.ops[0].count, 5);
    etcd_reply_free(&r);
}

START_TEST(range_options)
{
    etcd_run(&loop, &client, range_options_scenario, single.endpoints);
}
END_TEST

/* ---- txn ---- */

/* A txn of one compare, a put on success and a range on failure. */
static int cmp_txn(struct etcd_cmp cmp, const char *value, struct etcd_reply *r)
{
    struct etcd_op put = etcd_run_put_op(cmp.key, value, 0);
    struct etcd_op get = {.type = ETCD_OP_RANGE,
                          .range = {.key = cmp.key, .key_len = strlen(cmp.key)}};
    struct etcd_txn t = {
        .cmps = &cmp, .ncmps = 1, .success = &put, .nsuccess = 1, .failure = &get, .nfailure = 1};
    return etcd_txn(&client, &t, r, ms_from_now(5000));
}

static bool cmp_holds(struct etcd_cmp cmp)
{
    struct etcd_reply r;
    ck_assert_int_eq(cmp_txn(cmp, "set", &r), 0);
    bool held = r.succeeded;
    ck_assert_int_eq(r.ops[0].type, held ? ETCD_OP_PUT : ETCD_OP_RANGE);
    etcd_reply_free(&r);
    return held;
}

static void txn_scenario(void)
{
    const char *k = "txn/k";
    struct etcd_cmp absent = {.key = k, .key_len = 5, .target = ETCD_CMP_CREATE, .number = 0};
    struct etcd_reply r;
    ck_assert_int_eq(cmp_txn(absent, "first", &r), 0);
    ck_assert(r.succeeded);
    int64_t created = r.revision;
    etcd_reply_free(&r);

    /* Now it exists: the failure branch runs and shows the key. */
    ck_assert_int_eq(cmp_txn(absent, "second", &r), 0);
    ck_assert(!r.succeeded);
    ck_assert_int_eq(r.revision, created);
    ck_assert_uint_eq(r.ops[0].nkvs, 1);
    assert_kv(&r.ops[0].kvs[0], k, "first");
    etcd_reply_free(&r);

    struct etcd_cmp c = {.key = k, .key_len = 5};
    c.target = ETCD_CMP_MOD, c.number = created; /* fenced: nobody wrote since */
    ck_assert(cmp_holds(c));
    ck_assert(!cmp_holds(c)); /* that write moved mod_revision */
    c.target = ETCD_CMP_VERSION, c.result = ETCD_CMP_GREATER, c.number = 1;
    ck_assert(cmp_holds(c));
    c.target = ETCD_CMP_CREATE, c.result = ETCD_CMP_LESS, c.number = created;
    ck_assert(!cmp_holds(c));
    c.target = ETCD_CMP_VALUE, c.result = ETCD_CMP_EQUAL, c.value = "set", c.value_len = 3;
    ck_assert(cmp_holds(c));
    c.result = ETCD_CMP_NOT_EQUAL;
    ck_assert(!cmp_holds(c));
    c.target = ETCD_CMP_LEASE, c.result = ETCD_CMP_EQUAL, c.number = 0;
    ck_assert(cmp_holds(c));

    /* Several ops, each with its own result, in order. */
    struct etcd_op ops[] = {
        etcd_run_put_op("txn/other", "o", 0),
        {.type = ETCD_OP_RANGE, .range = {.key = "txn/", .key_len = 4, .prefix = true}},
        {.type = ETCD_OP_DELETE, .del = {.key = k, .key_len = 5, .prev_kv = true}},
    };
    ck_assert_int_eq(
        etcd_txn(&client, &(struct etcd_txn){.success = ops, .nsuccess = 3}, &r, ms_from_now(5000)),
        0);
    ck_assert(r.succeeded); /* no compares: they all hold */
    ck_assert_uint_eq(r.nops, 3);
    ck_assert_int_eq(r.ops[0].type, ETCD_OP_PUT);
    ck_assert_int_eq(r.ops[1].type, ETCD_OP_RANGE);
    ck_assert_int_eq(r.ops[1].count, 2); /* the put is seen by the range after it */
    ck_assert_int_eq(r.ops[2].type, ETCD_OP_DELETE);
    ck_assert_int_eq(r.ops[2].count, 1);
    assert_kv(&r.ops[2].kvs[0], k, "set");
    etcd_reply_free(&r);

    /* etcd refuses two writes to one key, and says why. */
    struct etcd_op twice[] = {etcd_run_put_op("txn/d", "1", 0), etcd_run_put_op("txn/d", "2", 0)};
    ck_assert_int_eq(etcd_txn(&client, &(struct etcd_txn){.success = twice, .nsuccess = 2}, &r,
                              ms_from_now(5000)),
                     -EINVAL);
    ck_assert_ptr_nonnull(strstr(etcd_last_error(&client), "duplicate key"));
    ck_assert(!etcd_last_ok(&client));
    ck_assert_uint_eq(client.stats.errors[ETCD_ERR_ETCD], 1);
    ck_assert_int_eq(key_count("txn/d"), 0);
    ck_assert(etcd_last_ok(&client));
}

START_TEST(txn_compares)
{
    etcd_run(&loop, &client, txn_scenario, single.endpoints);
}
END_TEST

/* ---- calls made together run in order ---- */

enum { FIFO_N = 8 };
static int64_t fifo_revs[FIFO_N];
static int fifo_done;

static void fifo_caller(void *arg)
{
    intptr_t i = (intptr_t)arg;
    char key[16];
    snprintf(key, sizeof(key), "fifo/%d", (int)i);
    fifo_revs[i] = put(key, "x", 0);
    fifo_done++;
}

static void fifo_scenario(void)
{
    fifo_done = 0;
    for (intptr_t i = 0; i < FIFO_N; i++)
        ck_assert_int_eq(loop_spawn(loop_current(), fifo_caller, (void *)i, NULL), 0);
    ck_assert(wait_flag(&fifo_done, FIFO_N, 10000));
    for (int i = 1; i < FIFO_N; i++)
        ck_assert_int_eq(fifo_revs[i], fifo_revs[i - 1] + 1);
}

START_TEST(calls_apply_in_call_order)
{
    etcd_run(&loop, &client, fifo_scenario, single.endpoints);
}
END_TEST

/* ---- leases ---- */

static int64_t grant(int64_t ttl_s)
{
    int64_t id, granted;
    ck_assert_int_eq(etcd_lease_grant(&client, ttl_s, &id, &granted, ms_from_now(5000)), 0);
    ck_assert_int_ne(id, 0);
    ck_assert_int_ge(granted, ttl_s);
    return id;
}

/* Waits on w for a DELETE of key; returns its revision. */
static int64_t wait_delete(struct etcd_watch *w, const char *key, int timeout_ms)
{
    struct etcd_event ev;
    int64_t end = ms_from_now(timeout_ms);
    for (;;) {
        ck_assert_int_eq(etcd_watch_next(w, &ev, end), 0);
        if (ev.type == ETCD_EVENT_DELETE) {
            ck_assert_uint_eq(ev.kv.key_len, strlen(key));
            ck_assert_mem_eq(ev.kv.key, key, ev.kv.key_len);
            return ev.kv.mod_revision;
        }
    }
}

static void lease_scenario(void)
{
    enum { TTL = 3 }; /* seconds: a stalled test machine must not lose it */
    int64_t id = grant(TTL);
    put("lease/k", "held", id);
    struct etcd_reply r;
    ck_assert_int_eq(range(&(struct etcd_range_req){.key = "lease/k", .key_len = 7}, &r), 0);
    ck_assert_int_eq(r.ops[0].kvs[0].lease, id);
    etcd_reply_free(&r);

    /* Kept alive for twice its TTL, the key stays. */
    int64_t t0 = loop_now_us();
    while (ms_since(t0) < 2 * TTL * 1000) {
        int64_t ttl;
        ck_assert_int_eq(etcd_lease_keepalive(&client, id, &ttl, ms_from_now(5000)), 0);
        ck_assert_int_eq(ttl, TTL);
        ck_assert_int_eq(loop_sleep_us(250000), 0);
    }
    ck_assert_int_eq(key_count("lease/k"), 1);

    /* Left alone, it expires and takes the key with it. */
    struct etcd_watch w;
    ck_assert_int_eq(etcd_watch_open(&client, &w, "lease/k", 7, false, ms_from_now(5000)), 0);
    t0 = loop_now_us();
    wait_delete(&w, "lease/k", (TTL + 5) * 1000);
    ck_assert_int_ge(ms_since(t0), 500); /* not before a good part of the TTL */
    etcd_watch_close(&w);
    ck_assert_int_eq(key_count("lease/k"), 0);
    ck_assert_int_eq(etcd_lease_keepalive(&client, id, NULL, ms_from_now(5000)), -ENOENT);
    ck_assert_int_eq(etcd_lease_revoke(&client, id, ms_from_now(5000)), -ENOENT);

    /* A revoked lease's keys go at once. */
    id = grant(60);
    put("lease/r", "held", id);
    ck_assert_int_eq(etcd_lease_revoke(&client, id, ms_from_now(5000)), 0);
    ck_assert_int_eq(key_count("lease/r"), 0);
}

START_TEST(lease_keepalive_and_expiry)
{
    etcd_run(&loop, &client, lease_scenario, single.endpoints);
}
END_TEST

/* ---- watches ---- */

static void next_event(struct etcd_watch *w, struct etcd_event *ev)
{
    int64_t t0 = loop_now_us();
    ck_assert_int_eq(etcd_watch_next(w, ev, ms_from_now(5000)), 0);
    ck_assert_int_lt(ms_since(t0), 3000); /* prompt, not held back for seconds */
}

static void watch_scenario(void)
{
    struct etcd_watch w;
    struct etcd_event ev;
    ck_assert_int_eq(etcd_watch_open(&client, &w, "watch/k", 7, false, ms_from_now(5000)), 0);
    ck_assert_int_gt(w.revision, 0);
    /* Nothing yet: a deadline ends the wait and the watch goes on. */
    ck_assert_int_eq(etcd_watch_next(&w, &ev, ms_from_now(50)), -ETIMEDOUT);

    int64_t rev = put("watch/k", "v1", 0);
    put("watch/other", "not watched", 0);
    next_event(&w, &ev);
    ck_assert_int_eq(ev.type, ETCD_EVENT_PUT);
    assert_kv(&ev.kv, "watch/k", "v1");
    ck_assert_int_eq(ev.kv.mod_revision, rev);
    ck_assert_int_eq(ev.kv.version, 1);

    struct etcd_reply r;
    ck_assert_int_eq(etcd_delete(&client, &(struct etcd_delete_req){.key = "watch/k", .key_len = 7},
                                 &r, ms_from_now(5000)),
                     0);
    next_event(&w, &ev);
    ck_assert_int_eq(ev.type, ETCD_EVENT_DELETE);
    ck_assert_int_eq(ev.kv.mod_revision, r.revision);
    etcd_reply_free(&r);
    etcd_watch_close(&w);

    /* A prefix watch gets one txn's two changes as two events. */
    ck_assert_int_eq(etcd_watch_open(&client, &w, "watch/p/", 8, true, ms_from_now(5000)), 0);
    struct etcd_op ops[] = {etcd_run_put_op("watch/p/1", "a", 0),
                            etcd_run_put_op("watch/p/2", "b", 0)};
    ck_assert_int_eq(
        etcd_txn(&client, &(struct etcd_txn){.success = ops, .nsuccess = 2}, &r, ms_from_now(5000)),
        0);
    next_event(&w, &ev);
    assert_kv(&ev.kv, "watch/p/1", "a");
    ck_assert_int_eq(ev.kv.mod_revision, r.revision);
    next_event(&w, &ev);
    assert_kv(&ev.kv, "watch/p/2", "b");
    etcd_reply_free(&r);
    etcd_watch_close(&w);
}

START_TEST(watch_created_then_events)
{
    etcd_run(&loop, &client, watch_scenario, single.endpoints);
}
END_TEST

/* ---- a stalled etcd ---- */

/* Polls until the courier has taken the queued call and sent it. */
static bool wait_in_flight(int timeout_ms)
{
    int64_t end = ms_from_now(timeout_ms);
    while ((!list_empty(&client.calls) || !client.inflight) && loop_now_us() < end)
        loop_sleep_us(1000);
    return client.inflight && list_empty(&client.calls);
}

static coro_t *queued_caller;
static int queued_rc, queued_done;

static void second_caller(void *arg)
{
    struct etcd_reply r;
    (void)arg;
    queued_rc = range(&(struct etcd_range_req){.key = "x", .key_len = 1}, &r);
    etcd_reply_free(&r);
    queued_done = 1;
}

/* How late past its deadline a call may end on a loaded machine; a call
 * that waited for the stalled member would end only at SIGCONT. */
#define SLACK_MS 2500

static void stalled_scenario(void)
{
    ck_assert_int_eq(key_count("stall"), 0); /* connected */
    ck_assert_int_eq(etcd_proc_signal(&single, 0, SIGSTOP), 0);

    /* In flight: the deadline ends it, on time. */
    struct etcd_reply r;
    int64_t t0 = loop_now_us();
    ck_assert_int_eq(etcd_range(&client, &(struct etcd_range_req){.key = "x", .key_len = 1}, &r,
                                ms_from_now(300)),
                     -ETIMEDOUT);
    ck_assert_int_ge(ms_since(t0), 300);
    ck_assert_int_lt(ms_since(t0), 300 + SLACK_MS); /* not at SIGCONT */
    ck_assert_uint_eq(client.stats.errors[ETCD_ERR_TIMEOUT], 1);
    ck_assert(!etcd_last_ok(&client));

    /* Cancelled while in flight (sent on a new connection): ends at once;
     * its reply, when it comes, is dropped and the connection kept. */
    queued_done = 0;
    ck_assert_int_eq(loop_spawn(loop_current(), second_caller, NULL, &queued_caller), 0);
    ck_assert(wait_in_flight(2000));
    t0 = loop_now_us();
    ck_assert_int_eq(loop_cancel(queued_caller), 0);
    ck_assert(wait_flag(&queued_done, 1, 1000));
    ck_assert_int_eq(queued_rc, -ECANCELED);
    ck_assert_int_lt(ms_since(t0), 1000);
    ck_assert_uint_eq(client.stats.errors[ETCD_ERR_CANCELED], 1);

    /* Queued behind that call (the courier still awaits its reply): its
     * own, earlier deadline ends it, and it leaves the queue. */
    t0 = loop_now_us();
    ck_assert_int_eq(etcd_range(&client, &(struct etcd_range_req){.key = "x", .key_len = 1}, &r,
                                ms_from_now(200)),
                     -ETIMEDOUT);
    ck_assert_int_ge(ms_since(t0), 200);
    ck_assert_int_lt(ms_since(t0), 200 + SLACK_MS);
    ck_assert(list_empty(&client.calls));
    ck_assert_ptr_null(client.inflight);

    /* A watch cannot be created either. */
    struct etcd_watch w;
    t0 = loop_now_us();
    ck_assert_int_eq(etcd_watch_open(&client, &w, "x", 1, false, ms_from_now(200)), -ETIMEDOUT);
    ck_assert_int_lt(ms_since(t0), 200 + SLACK_MS);

    ck_assert_int_eq(etcd_proc_signal(&single, 0, SIGCONT), 0);
    ck_assert_int_eq(key_count("stall"), 0);
    ck_assert(etcd_last_ok(&client));
    /* The first, the cancelled call's (reused after), the watch's. */
    ck_assert_uint_eq(client.endpoints.connects, 3);
}

START_TEST(stalled_etcd_times_out)
{
    etcd_run(&loop, &client, stalled_scenario, single.endpoints);
}
END_TEST

/* ---- endpoints ---- */

static void rotate_scenario(void)
{
    ck_assert_int_eq(key_count("rot"), 0);
    ck_assert_str_eq(etcd_endpoint(&client), single.m[0].url);
    ck_assert_uint_eq(client.endpoints.connect_failures, 1);
    ck_assert_uint_eq(client.endpoints.rotations, 1);
    ck_assert_uint_eq(client.endpoints.connects, 1);
    ck_assert_uint_eq(client.stats.ok, 1); /* moving on is not the call's failure */
}

static void all_dead_scenario(void)
{
    struct etcd_reply r;
    int64_t t0 = loop_now_us();
    ck_assert_int_eq(etcd_range(&client, &(struct etcd_range_req){.key = "x", .key_len = 1}, &r,
                                ms_from_now(5000)),
                     -ECONNREFUSED);
    ck_assert_int_lt(ms_since(t0), 3000); /* each tried once, not the 5 s deadline */
    ck_assert_uint_eq(client.endpoints.connect_failures, 2);
    ck_assert_uint_eq(client.stats.errors[ETCD_ERR_CONNECT], 1);
    struct etcd_watch w;
    ck_assert_int_eq(etcd_watch_open(&client, &w, "x", 1, false, ms_from_now(5000)), -ECONNREFUSED);
}

START_TEST(first_endpoint_dead_rotates)
{
    char endpoints[128];
    snprintf(endpoints, sizeof(endpoints), "http://127.0.0.1:%d,%s", dead_port(), single.m[0].url);
    etcd_run(&loop, &client, rotate_scenario, endpoints);
    snprintf(endpoints, sizeof(endpoints), "http://127.0.0.1:%d, http://127.0.0.1:%d/", dead_port(),
             dead_port());
    etcd_run(&loop, &client, all_dead_scenario, endpoints);
}
END_TEST

/* ---- a cluster: the member in use stalls, then dies ---- */

static struct etcd_proc cluster;

/* Puts key until a member takes it, as a caller riding out a failover
 * would: a follower holds a write while there is no leader, up to etcd's
 * own request timeout (seconds), and each failure moves to the next member. */
static void put_until_taken(const char *key, int timeout_ms)
{
    struct etcd_op op = etcd_run_put_op(key, "v", 0);
    struct etcd_txn t = {.success = &op, .nsuccess = 1};
    struct etcd_reply r;
    int64_t end = ms_from_now(timeout_ms);
    int rc;
    while ((rc = etcd_txn(&client, &t, &r, ms_from_now(2000))) != 0 && loop_now_us() < end)
        ck_assert_msg(rc == -ETIMEDOUT || rc == -EAGAIN || rc == -ECONNRESET, "%d", rc);
    ck_assert_int_eq(rc, 0);
    etcd_reply_free(&r);
}

static void failover_scenario(void)
{
    ck_assert_int_eq(key_count("fo"), 0);
    ck_assert_str_eq(etcd_endpoint(&client), cluster.m[0].url);

    /* The member in use stalls (the leader, perhaps): the call times out
     * and the client moves on; writes go through once m1 and m2 (a
     * quorum) have a leader. */
    ck_assert_int_eq(etcd_proc_signal(&cluster, 0, SIGSTOP), 0);
    struct etcd_reply r;
    ck_assert_int_eq(etcd_range(&client, &(struct etcd_range_req){.key = "fo", .key_len = 2}, &r,
                                ms_from_now(500)),
                     -ETIMEDOUT);
    put_until_taken("fo", 30000);
    ck_assert_uint_ge(client.endpoints.rotations, 1);
    ck_assert_str_ne(etcd_endpoint(&client), cluster.m[0].url);
    ck_assert_int_eq(etcd_proc_signal(&cluster, 0, SIGCONT), 0);

    /* The member in use dies while the connection is idle: the next call
     * sees the connection closed before sending (never -ECONNRESET), finds
     * that member refusing and moves on. If it was the leader, the others
     * answer "unavailable" or hold the read until they elect one. */
    put_until_taken("fo", 30000);
    unsigned used = strcmp(etcd_endpoint(&client), cluster.m[1].url) ? 2 : 1;
    uint64_t failures = client.endpoints.connect_failures;
    ck_assert_int_eq(etcd_proc_kill(&cluster, used), 0);
    int64_t end = ms_from_now(30000);
    int rc;
    while ((rc = etcd_range(&client, &(struct etcd_range_req){.key = "fo", .key_len = 2}, &r,
                            ms_from_now(2000))) != 0 &&
           loop_now_us() < end)
        ck_assert_msg(rc == -EAGAIN || rc == -ETIMEDOUT, "%d", rc);
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(r.ops[0].count, 1);
    etcd_reply_free(&r);
    ck_assert_uint_gt(client.endpoints.connect_failures, failures);
    ck_assert_str_ne(etcd_endpoint(&client), cluster.m[used].url);
}

START_TEST(cluster_failover)
{
    ck_assert_int_eq(etcd_proc_start(&cluster, 3, START_MS), 0);
    etcd_run(&loop, &client, failover_scenario, cluster.endpoints);
    /* A killed member comes back on its data. */
    unsigned dead = cluster.m[1].pid ? 2 : 1;
    ck_assert_int_eq(etcd_proc_restart(&cluster, dead, START_MS), 0);
    etcd_proc_stop(&cluster);
}
END_TEST

/* ---- finishing a client with calls pending ---- */

static int pending_rc, pending_done;

static void pending_caller(void *arg)
{
    struct etcd_reply r;
    (void)arg;
    pending_rc = range(&(struct etcd_range_req){.key = "x", .key_len = 1}, &r);
    etcd_reply_free(&r);
    pending_done++;
}

static void fini_scenario(void)
{
    ck_assert_int_eq(key_count("fini"), 0);
    ck_assert_int_eq(etcd_proc_signal(&single, 0, SIGSTOP), 0);
    pending_done = 0;
    ck_assert_int_eq(loop_spawn(loop_current(), pending_caller, NULL, NULL), 0);
    ck_assert(wait_in_flight(2000));
    ck_assert_int_eq(loop_spawn(loop_current(), pending_caller, NULL, NULL), 0);
    etcd_client_fini(&client); /* one in flight, one queued */
    ck_assert_int_eq(etcd_proc_signal(&single, 0, SIGCONT), 0);
    ck_assert(wait_flag(&pending_done, 2, 1000));
    ck_assert_int_eq(pending_rc, -ECANCELED);
    struct etcd_reply r;
    ck_assert_int_eq(range(&(struct etcd_range_req){.key = "x", .key_len = 1}, &r), -ECANCELED);
    /* The struct is free for a new client. */
    ck_assert_int_eq(etcd_client_init(&client, single.endpoints), 0);
    ck_assert_int_eq(key_count("fini"), 0);
}

START_TEST(fini_cancels_pending_calls)
{
    etcd_run(&loop, &client, fini_scenario, single.endpoints);
}
END_TEST

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    Suite *s = suite_create("etcd");
    TCase *tc = tcase_create("single");
    tcase_add_unchecked_fixture(tc, single_start, single_stop);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, put_range_delete);
    tcase_add_test(tc, range_options);
    tcase_add_test(tc, txn_compares);
    tcase_add_test(tc, calls_apply_in_call_order);
    tcase_add_test(tc, lease_keepalive_and_expiry);
    tcase_add_test(tc, watch_created_then_events);
    tcase_add_test(tc, stalled_etcd_times_out);
    tcase_add_test(tc, first_endpoint_dead_rotates);
    tcase_add_test(tc, fini_cancels_pending_calls);
    suite_add_tcase(s, tc);
    TCase *alone = tcase_create("alone");
    tcase_set_timeout(alone, 120);
    tcase_add_test(alone, cluster_failover);
    suite_add_tcase(s, alone);
    return check_run(s);
}
