/* cluster_view: the JSON shape /stats gives the cluster at a glance
 * (members, queue, etcd) and its /metrics families, from a view filled by
 * hand: no etcd, no loop. Each document is parsed back with jansson. */
#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "check_run.h"
#include "cluster_view.h"

static char buf[65536];

/* The view's parts as one object, {"self": .., "members": .., ...},
 * parsed. */
static json_t *render(const struct cluster_view *v)
{
    struct textbuf o;
    textbuf_init(&o, buf, sizeof(buf));
    textbuf_printf(&o, "{");
    for (unsigned i = 0; i < cluster_view_nparts; i++) {
        const char *key = strchr(cluster_view_parts[i].path, '.') + 1;
        textbuf_printf(&o, "%s\"%s\": ", i ? ", " : "", key);
        cluster_view_parts[i].put(&o, v);
    }
    textbuf_printf(&o, "}");
    ck_assert_uint_gt(textbuf_len(&o), 0);
    json_error_t err;
    json_t *doc = json_loads(buf, 0, &err);
    ck_assert_msg(doc != NULL, "not JSON (%s) at %d: %.200s", err.text, err.position,
                  buf + (err.position > 100 ? err.position - 100 : 0));
    return doc;
}

static void add_member(struct cluster_view *v, const char *id, const char *addr)
{
    struct cluster_view_member *m = &v->members[v->nlisted++];
    snprintf(m->id, sizeof(m->id), "%s", id);
    snprintf(m->addr, sizeof(m->addr), "%s", addr);
    snprintf(m->version, sizeof(m->version), "0.1.0");
    m->started_us = 1700000000123456;
    m->loops = 2;
    v->nmembers++;
}

/* Three members; b holds the lock, two of a's requests and one of b's
 * wait; one etcd endpoint reachable and leader with NOSPACE, one not. */
static void fill(struct cluster_view *v)
{
    *v = (struct cluster_view){.now_us = 1700000010000000, .quota_bytes = 1000000};
    snprintf(v->self, sizeof(v->self), "aaaaaaaaaaaaaaaa");
    add_member(v, "aaaaaaaaaaaaaaaa", "http://127.0.0.1:1");
    add_member(v, "bbbbbbbbbbbbbbbb", "http://127.0.0.1:2");
    add_member(v, "cccccccccccccccc", "http://127.0.0.1:3");
    struct cluster_view_queue *q = &v->queue;
    q->length = 4;
    snprintf(q->holder, sizeof(q->holder), "bbbbbbbbbbbbbbbb");
    q->holder_since_us = 1700000009500000;
    q->holder_revision = 40;
    const char *waiting[3] = {"aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb", "aaaaaaaaaaaaaaaa"};
    for (int i = 0; i < 3; i++) {
        snprintf(q->waiters[i].member, CLUSTER_VIEW_ID, "%s", waiting[i]);
        q->waiters[i].revision = 41 + i;
    }
    q->nwaiters = 3;
    q->shares[0] = (struct cluster_view_share){"bbbbbbbbbbbbbbbb", 2};
    q->shares[1] = (struct cluster_view_share){"aaaaaaaaaaaaaaaa", 2};
    q->nshares = 2;
    v->netcd = 2;
    v->etcd[0] = (struct cluster_view_etcd){.endpoint = "http://127.0.0.1:2379",
                                            .reachable = true,
                                            .member_id = "10276657743932975437",
                                            .version = "3.4.23",
                                            .leader = true,
                                            .raft_term = 2,
                                            .db_size = 20480,
                                            .db_size_in_use = 16384,
                                            .alarms = "NOSPACE CORRUPT"};
    v->etcd[1] = (struct cluster_view_etcd){.endpoint = "http://127.0.0.1:2479",
                                            .error = "connect: Connection refused"};
}

static json_t *at(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    ck_assert_msg(v != NULL, "no \"%s\" in %s", key, buf);
    return v;
}

START_TEST(members_name_self_holder_and_share)
{
    struct cluster_view v;
    fill(&v);
    json_t *doc = render(&v);
    ck_assert_str_eq(json_string_value(at(doc, "self")), "aaaaaaaaaaaaaaaa");
    json_t *members = at(doc, "members");
    ck_assert_int_eq(json_integer_value(at(members, "count")), 3);
    ck_assert(json_is_false(at(members, "stale")));
    json_t *list = at(members, "list");
    ck_assert_uint_eq(json_array_size(list), 3);
    json_t *a = json_array_get(list, 0), *b = json_array_get(list, 1), *c = json_array_get(list, 2);
    ck_assert(json_is_true(at(a, "self")) && json_is_false(at(b, "self")));
    ck_assert(json_is_true(at(b, "holder")) && json_is_false(at(a, "holder")));
    ck_assert_int_eq(json_integer_value(at(a, "queued")), 2);
    ck_assert_int_eq(json_integer_value(at(c, "queued")), 0);
    ck_assert_str_eq(json_string_value(at(a, "addr")), "http://127.0.0.1:1");
    ck_assert_int_eq(json_integer_value(at(a, "loops")), 2);
    ck_assert_double_eq_tol(json_real_value(at(a, "started")), 1700000000.123, 0.0005);
    json_decref(doc);
}
END_TEST

START_TEST(queue_holder_waiters_in_order_and_counts)
{
    struct cluster_view v;
    fill(&v);
    json_t *doc = render(&v), *q = at(doc, "queue");
    ck_assert_int_eq(json_integer_value(at(q, "length")), 4);
    json_t *holder = at(q, "holder");
    ck_assert_str_eq(json_string_value(at(holder, "member")), "bbbbbbbbbbbbbbbb");
    ck_assert_int_eq(json_integer_value(at(holder, "held_ms")), 500);
    ck_assert_int_eq(json_integer_value(at(holder, "revision")), 40);
    json_t *w = at(q, "waiters");
    ck_assert_uint_eq(json_array_size(w), 3);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(json_integer_value(at(json_array_get(w, i), "revision")), 41 + i);
    ck_assert_str_eq(json_string_value(at(json_array_get(w, 1), "member")), "bbbbbbbbbbbbbbbb");
    json_t *by = at(q, "by_member");
    ck_assert_int_eq(json_integer_value(at(by, "aaaaaaaaaaaaaaaa")), 2);
    ck_assert_int_eq(json_integer_value(at(by, "bbbbbbbbbbbbbbbb")), 2);
    json_decref(doc);
}
END_TEST

START_TEST(empty_queue_has_no_holder)
{
    struct cluster_view v = {0};
    json_t *doc = render(&v), *q = at(doc, "queue");
    ck_assert(json_is_null(at(q, "holder")));
    ck_assert_uint_eq(json_array_size(at(q, "waiters")), 0);
    ck_assert_uint_eq(json_object_size(at(q, "by_member")), 0);
    ck_assert_uint_eq(json_array_size(at(at(doc, "members"), "list")), 0);
    ck_assert_uint_eq(json_array_size(at(doc, "etcd")), 0);
    json_decref(doc);
}
END_TEST

START_TEST(etcd_rows_with_leader_sizes_and_alarms)
{
    struct cluster_view v;
    fill(&v);
    json_t *doc = render(&v), *rows = at(doc, "etcd");
    ck_assert_uint_eq(json_array_size(rows), 2);
    json_t *up = json_array_get(rows, 0), *down = json_array_get(rows, 1);
    ck_assert(json_is_true(at(up, "reachable")) && json_is_true(at(up, "leader")));
    ck_assert_str_eq(json_string_value(at(up, "member_id")), "10276657743932975437");
    ck_assert_int_eq(json_integer_value(at(up, "db_size")), 20480);
    ck_assert_int_eq(json_integer_value(at(up, "db_size_in_use")), 16384);
    ck_assert_int_eq(json_integer_value(at(up, "quota")), 1000000);
    json_t *alarms = at(up, "alarms");
    ck_assert_uint_eq(json_array_size(alarms), 2);
    ck_assert_str_eq(json_string_value(json_array_get(alarms, 1)), "CORRUPT");
    ck_assert(json_is_false(at(down, "reachable")) && json_is_false(at(down, "leader")));
    ck_assert_str_eq(json_string_value(at(down, "error")), "connect: Connection refused");
    ck_assert_uint_eq(json_array_size(at(down, "alarms")), 0);
    json_decref(doc);
}
END_TEST

/* A member's value comes from another process: whatever it holds, the
 * document stays JSON and says it as it was. */
START_TEST(strings_from_others_are_escaped)
{
    struct cluster_view v;
    fill(&v);
    snprintf(v.members[1].addr, sizeof(v.members[1].addr), "a\"b\\c\n\x01");
    json_t *doc = render(&v);
    json_t *b = json_array_get(at(at(doc, "members"), "list"), 1);
    ck_assert_str_eq(json_string_value(at(b, "addr")), "a\"b\\c\n\x01");
    json_decref(doc);
}
END_TEST

START_TEST(metrics_per_endpoint)
{
    struct cluster_view v;
    fill(&v);
    struct textbuf o;
    textbuf_init(&o, buf, sizeof(buf));
    cluster_view_metrics(&o, &v);
    ck_assert_uint_gt(textbuf_len(&o), 0);
    const char *want[] = {
        "turnstile_cluster_members 3\n",
        "turnstile_cluster_etcd_up{endpoint=\"http://127.0.0.1:2379\"} 1\n",
        "turnstile_cluster_etcd_up{endpoint=\"http://127.0.0.1:2479\"} 0\n",
        "turnstile_cluster_etcd_leader{endpoint=\"http://127.0.0.1:2379\"} 1\n",
        "turnstile_cluster_etcd_db_size_bytes{endpoint=\"http://127.0.0.1:2379\"} 20480\n",
        "turnstile_cluster_etcd_db_size_in_use_bytes{endpoint=\"http://127.0.0.1:2379\"} 16384\n",
        "turnstile_cluster_etcd_quota_bytes{endpoint=\"http://127.0.0.1:2379\"} 1000000\n",
        "turnstile_cluster_etcd_alarms{endpoint=\"http://127.0.0.1:2379\"} 2\n",
        "# TYPE turnstile_cluster_etcd_db_size_bytes gauge\n",
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        ck_assert_msg(strstr(buf, want[i]), "no %s in:\n%s", want[i], buf);
    v.quota_bytes = 0; /* unknown: no family rather than a 0 quota */
    textbuf_init(&o, buf, sizeof(buf));
    cluster_view_metrics(&o, &v);
    ck_assert_ptr_null(strstr(buf, "quota"));
}
END_TEST

static void fill_str(char *s, size_t cap)
{
    memset(s, 'x', cap - 1);
    s[cap - 1] = '\0';
}

static void fill_etcd_rows(struct cluster_view *v)
{
    v->netcd = CLUSTER_VIEW_ETCD;
    for (unsigned i = 0; i < CLUSTER_VIEW_ETCD; i++) {
        struct cluster_view_etcd *e = &v->etcd[i];
        fill_str(e->endpoint, sizeof(e->endpoint));
        fill_str(e->error, sizeof(e->error));
        fill_str(e->member_id, sizeof(e->member_id));
        fill_str(e->version, sizeof(e->version));
        e->raft_term = e->db_size = e->db_size_in_use = INT64_MAX;
        snprintf(e->alarms, sizeof(e->alarms), "NOSPACE CORRUPT");
    }
}

/* Every list full, every string at its longest, numbers of 19 digits
 * (jansson reads no more): the view still fits its budget, so /stats
 * still fits the page's event. */
START_TEST(a_full_view_fits_its_budget)
{
    static struct cluster_view v;
    fill(&v);
    v.nlisted = CLUSTER_VIEW_MEMBERS;
    for (unsigned i = 0; i < CLUSTER_VIEW_MEMBERS; i++) {
        struct cluster_view_member *m = &v.members[i];
        fill_str(m->id, sizeof(m->id));
        fill_str(m->addr, sizeof(m->addr));
        fill_str(m->admin, sizeof(m->admin));
        fill_str(m->version, sizeof(m->version));
        m->started_us = INT64_MAX;
        m->loops = INT64_MAX;
        fill_str(v.queue.shares[i].id, CLUSTER_VIEW_ID);
        v.queue.shares[i].keys = INT64_MAX;
    }
    v.queue.nshares = CLUSTER_VIEW_MEMBERS;
    v.queue.nwaiters = CLUSTER_VIEW_WAITERS;
    for (unsigned i = 0; i < CLUSTER_VIEW_WAITERS; i++) {
        fill_str(v.queue.waiters[i].member, CLUSTER_VIEW_ID);
        v.queue.waiters[i].revision = INT64_MAX;
    }
    fill_etcd_rows(&v);
    json_decref(render(&v));
    ck_assert_uint_le(strlen(buf), CLUSTER_VIEW_BUDGET);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cluster_view");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, members_name_self_holder_and_share);
    tcase_add_test(tc, queue_holder_waiters_in_order_and_counts);
    tcase_add_test(tc, empty_queue_has_no_holder);
    tcase_add_test(tc, etcd_rows_with_leader_sizes_and_alarms);
    tcase_add_test(tc, strings_from_others_are_escaped);
    tcase_add_test(tc, metrics_per_endpoint);
    tcase_add_test(tc, a_full_view_fits_its_budget);
    suite_add_tcase(s, tc);
    return check_run(s);
}
