/* The cluster at a glance end to end (issue 23): a real etcd node and
 * three turnstile instances. Every instance lists the same live members
 * and names itself; the holder of the cluster-wide lock and the waiters
 * behind it are shown, with their members, on an instance that holds
 * none of them; a killed instance leaves every list once its lease
 * expires; etcd's row says reachable, leader and its size. Waits are polls
 * of /stats with deadlines. */
#include <check.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check_run.h"
#include "etcd_proc.h"
#include "harness.h"

#define START_MS 30000
#define NSRV     3
/* Short, so a killed instance's member goes soon: the shortest lease etcd
 * grants with the test's election timeout (etcd_proc.c). */
#define LEASE_MS "3000"
#define DELAY_MS "3000" /* a section long enough to be seen held */

static struct etcd_proc node;
static struct srv srv[NSRV];
static char self[NSRV][17];

static void setup(void)
{
    ck_assert_int_eq(etcd_proc_start(&node, 1, START_MS), 0);
}

static void teardown(void)
{
    for (int i = 0; i < NSRV; i++)
        if (srv[i].pid)
            srv_stop(&srv[i], SIGKILL);
    memset(srv, 0, sizeof(srv));
    etcd_proc_stop(&node);
}

/* The /stats document, parsed; NULL if the instance does not answer. */
static json_t *stats_doc(int port)
{
    static struct resp r; /* 32 KiB: off the stack */
    if (http_get(port, "/stats", &r) != 0 || r.status != 200)
        return NULL;
    return json_loads(r.body, 0, NULL);
}

/* A string member of o, "" if it has none. */
static const char *str_of(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

static json_t *cluster_of(json_t *doc)
{
    return json_object_get(doc, "cluster");
}

typedef bool (*doc_test)(json_t *cluster, const void *arg);

/* Polls port's /stats until test holds (true) or timeout_ms passes. */
static bool wait_doc(int port, doc_test test, const void *arg, int timeout_ms)
{
    long long end = now_ms() + timeout_ms;
    do {
        json_t *doc = stats_doc(port);
        bool ok = doc && test(cluster_of(doc), arg);
        json_decref(doc);
        if (ok)
            return true;
        nanosleep(&(struct timespec){0, 50 * 1000000}, NULL);
    } while (now_ms() < end);
    return false;
}

static bool lists_member(json_t *cluster, const char *id)
{
    json_t *list = json_object_get(json_object_get(cluster, "members"), "list"), *m;
    size_t i;
    json_array_foreach(list, i, m)
    {
        if (strcmp(str_of(m, "id"), id) == 0)
            return true;
    }
    return false;
}

/* arg: the instances that must be listed, the others not (a bool each). */
static bool members_are(json_t *cluster, const void *arg)
{
    const bool *live = arg;
    json_t *members = json_object_get(cluster, "members");
    long long want = 0;
    for (int i = 0; i < NSRV; i++) {
        want += live[i];
        if (lists_member(cluster, self[i]) != live[i])
            return false;
    }
    return json_integer_value(json_object_get(members, "count")) == want;
}

static void start_all(const char *name)
{
    for (int i = 0; i < NSRV; i++) {
        srv_start(&srv[i], "--etcd", node.endpoints, "--cluster", name, "--lease-ttl-ms", LEASE_MS,
                  "--delay-ms", DELAY_MS, "--threads", "2", NULL);
        ck_assert_msg(wait_stat(srv[i].port, "cluster.healthy", 1, 20000), "instance %d", i);
        json_t *doc = stats_doc(srv[i].port);
        ck_assert_ptr_nonnull(doc);
        snprintf(self[i], sizeof(self[i]), "%s", str_of(cluster_of(doc), "self"));
        ck_assert_uint_eq(strlen(self[i]), 16);
        json_decref(doc);
    }
}

/* Every instance lists all three, itself as self, with its own address. */
static void check_members_everywhere(void)
{
    const bool all[NSRV] = {true, true, true};
    for (int i = 0; i < NSRV; i++) {
        ck_assert_msg(wait_doc(srv[i].port, members_are, all, 15000), "instance %d's members", i);
        json_t *doc = stats_doc(srv[i].port), *m;
        size_t k;
        int selves = 0;
        json_array_foreach(json_object_get(json_object_get(cluster_of(doc), "members"), "list"), k,
                           m)
        {
            bool is_self = json_is_true(json_object_get(m, "self"));
            const char *id = json_string_value(json_object_get(m, "id"));
            selves += is_self;
            ck_assert(is_self == (strcmp(id, self[i]) == 0));
            char addr[64];
            for (int j = 0; j < NSRV; j++) {
                snprintf(addr, sizeof(addr), "http://127.0.0.1:%d", srv[j].port);
                if (strcmp(id, self[j]) == 0)
                    ck_assert_str_eq(json_string_value(json_object_get(m, "addr")), addr);
            }
        }
        ck_assert_int_eq(selves, 1);
        json_decref(doc);
    }
}

START_TEST(members_listed_on_every_instance_and_gone_with_the_lease)
{
    start_all("view-members");
    check_members_everywhere();
    kill(srv[2].pid, SIGKILL); /* no revoke: the member goes when the lease expires */
    srv_stop(&srv[2], SIGKILL);
    srv[2].pid = 0;
    const bool two[NSRV] = {true, true, false};
    for (int i = 0; i < 2; i++)
        ck_assert_msg(wait_doc(srv[i].port, members_are, two, 20000),
                      "instance %d still lists the killed one", i);
}
END_TEST

/* arg: {holder's index, first waiter's index}. */
static bool queue_is(json_t *cluster, const void *arg)
{
    const int *who = arg;
    json_t *q = json_object_get(cluster, "queue");
    json_t *holder = json_object_get(q, "holder");
    json_t *first = json_array_get(json_object_get(q, "waiters"), 0);
    const char *h = json_string_value(json_object_get(holder, "member"));
    const char *w = json_string_value(json_object_get(first, "member"));
    json_t *by = json_object_get(q, "by_member");
    return h && w && strcmp(h, self[who[0]]) == 0 && strcmp(w, self[who[1]]) == 0 &&
           json_integer_value(json_object_get(q, "length")) == 2 &&
           json_integer_value(json_object_get(by, self[who[0]])) == 1 &&
           json_integer_value(json_object_get(by, self[who[1]])) == 1;
}

static bool holder_marked(json_t *cluster, const void *arg)
{
    const char *id = arg;
    json_t *list = json_object_get(json_object_get(cluster, "members"), "list"), *m;
    size_t i;
    json_array_foreach(list, i, m)
    {
        const char *mid = json_string_value(json_object_get(m, "id"));
        if (json_is_true(json_object_get(m, "holder")) != (strcmp(mid, id) == 0))
            return false;
    }
    return json_array_size(list) == NSRV;
}

START_TEST(holder_and_waiter_shown_on_a_third_instance)
{
    start_all("view-queue");
    check_members_everywhere();
    int first = tcp_connect(srv[0].port);
    send_get_access(first);
    ck_assert(wait_stat(srv[0].port, "requests.in_section", 1, 10000));
    int second = tcp_connect(srv[1].port);
    send_get_access(second);
    const int who[2] = {0, 1};
    ck_assert_msg(wait_doc(srv[2].port, queue_is, who, 10000), "instance 2 does not show 0 then 1");
    ck_assert(wait_doc(srv[2].port, holder_marked, self[0], 5000));
    struct reader rd = {.fd = first};
    struct resp r;
    ck_assert_int_eq(read_response(&rd, &r, 20000), 0);
    ck_assert_int_eq(r.status, 200);
    rd = (struct reader){.fd = second};
    ck_assert_int_eq(read_response(&rd, &r, 20000), 0);
    close(first);
    close(second);
}
END_TEST

static bool etcd_row_up(json_t *cluster, const void *arg)
{
    (void)arg;
    json_t *row = json_array_get(json_object_get(cluster, "etcd"), 0);
    return json_array_size(json_object_get(cluster, "etcd")) == 1 &&
           json_is_true(json_object_get(row, "reachable")) &&
           json_is_true(json_object_get(row, "leader")) &&
           json_integer_value(json_object_get(row, "db_size")) > 0 &&
           json_integer_value(json_object_get(row, "quota")) == 2147483648LL &&
           json_array_size(json_object_get(row, "alarms")) == 0;
}

START_TEST(etcd_member_reachable_and_leader)
{
    start_all("view-etcd");
    for (int i = 0; i < NSRV; i++)
        ck_assert_msg(wait_doc(srv[i].port, etcd_row_up, NULL, 10000), "instance %d", i);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cluster_view");
    TCase *tc = tcase_create("view");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 180);
    tcase_add_test(tc, members_listed_on_every_instance_and_gone_with_the_lease);
    tcase_add_test(tc, holder_and_waiter_shown_on_a_third_instance);
    tcase_add_test(tc, etcd_member_reachable_and_leader);
    suite_add_tcase(s, tc);
    return check_run(s);
}
