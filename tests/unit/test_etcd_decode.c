/* Unit tests for server/cluster/etcd_decode.c: replies as etcd 3.4's JSON
 * gateway writes them, and everything that is not: wrong types, bad
 * base64, nesting deeper than a coroutine's stack would take, etcd's
 * error documents (each gRPC code its errno, the message kept), and the
 * shapes of txn, lease and watch replies. Every malformed input is an
 * error, never a crash (ASan runs this suite too). */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_run.h"
#include "cluster/etcd_decode.h"

#define HEADER "\"header\":{\"revision\":\"7\"}"

static struct etcd_json json;
static struct etcd_jv doc;
static struct etcd_reply reply;
static char why[ETCD_WHY_CAP];

static void teardown(void)
{
    etcd_json_free(&json);
    doc = (struct etcd_jv){0};
    etcd_reply_free(&reply);
}

/* The document of a 200 reply with body text: 0 or its error. */
static int load(const char *text)
{
    why[0] = '\0';
    return etcd_decode_doc(text, strlen(text), 200, false, &json, &doc, why);
}

/* A range reply's decoding: 0 or its error. */
static int range(const char *text)
{
    int rc = load(text);
    etcd_reply_free(&reply);
    return rc < 0 ? rc : etcd_decode_range(doc, &reply);
}

START_TEST(a_range_and_its_kvs)
{
    ck_assert_int_eq(range("{" HEADER ",\"count\":\"9007199254740993\",\"more\":true,\"kvs\":["
                           "{\"key\":\"Zm9v\",\"value\":\"YQBi\",\"create_revision\":\"3\","
                           "\"mod_revision\":4,\"version\":\"2\",\"lease\":\"255\"}]}"),
                     0);
    ck_assert_int_eq(reply.revision, 7);
    ck_assert_uint_eq(reply.nops, 1);
    const struct etcd_op_result *r = &reply.ops[0];
    ck_assert_int_eq(r->type, ETCD_OP_RANGE);
    ck_assert_int_eq(r->count, 9007199254740993); /* exact past 2^53 */
    ck_assert(r->more);
    ck_assert_uint_eq(r->nkvs, 1);
    ck_assert_str_eq(r->kvs[0].key, "foo");
    ck_assert_uint_eq(r->kvs[0].value_len, 3);
    ck_assert_mem_eq(r->kvs[0].value, "a\0b", 4); /* NUL-terminated as well */
    ck_assert_int_eq(r->kvs[0].create_revision, 3);
    ck_assert_int_eq(r->kvs[0].mod_revision, 4);
    ck_assert_int_eq(r->kvs[0].version, 2);
    ck_assert_int_eq(r->kvs[0].lease, 255);
    /* Absent fields are zero: an empty range. */
    ck_assert_int_eq(range("{" HEADER "}"), 0);
    ck_assert_int_eq(reply.ops[0].count, 0);
    ck_assert_uint_eq(reply.ops[0].nkvs, 0);
}
END_TEST

START_TEST(wrong_shapes_are_eio)
{
    static const char *const bad[] = {
        "{}", /* no header: every reply has one */
        "{\"header\":{\"revision\":true}}",
        "{\"header\":{\"revision\":\"7x\"}}",
        "{\"header\":{\"revision\":\"0\"}}",
        "{\"header\":[]}",
        "{" HEADER ",\"kvs\":{}}",
        "{" HEADER ",\"kvs\":[1]}",
        "{" HEADER ",\"kvs\":[{\"key\":7}]}",
        "{" HEADER ",\"kvs\":[{\"key\":\"Zm9v\",\"version\":[]}]}",
        "{" HEADER ",\"more\":\"yes\"}",
        "{" HEADER ",\"count\":\"+3\"}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(range(bad[i]) == -EIO, "%s", bad[i]);
}
END_TEST

/* OpenSSL's decoder alone would take '=' anywhere and trim blanks. */
START_TEST(base64_whole_quads_padding_at_the_end)
{
    static const char *const bad[] = {"Zm9v=", "Zm=v", "Zm9",  " Zm9v",
                                      "Zm9v ", "Zg=a", "====", "Zm9*"};
    char text[128];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(text, sizeof(text), "{" HEADER ",\"kvs\":[{\"key\":\"%s\"}]}", bad[i]);
        ck_assert_msg(range(text) == -EIO, "%s", bad[i]);
    }
    static const struct {
        const char *text, *bytes;
    } good[] = {{"", ""}, {"Zg==", "f"}, {"Zm8=", "fo"}, {"Zm9vYg==", "foob"}};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        snprintf(text, sizeof(text), "{" HEADER ",\"kvs\":[{\"key\":\"%s\"}]}", good[i].text);
        ck_assert_int_eq(range(text), 0);
        ck_assert_str_eq(reply.ops[0].kvs[0].key, good[i].bytes);
        ck_assert_uint_eq(reply.ops[0].kvs[0].key_len, strlen(good[i].bytes));
    }
}
END_TEST

/* etcd's errors: each gRPC code its errno, the message kept; a body that
 * is not etcd's is -EIO, and says what came. */
START_TEST(error_documents)
{
    static const struct {
        int status;
        const char *body;
        int rc;
    } cases[] = {
        {400, "{\"error\":\"x\",\"message\":\"etcdserver: bad\",\"code\":3}", -EINVAL},
        {404, "{\"error\":\"x\",\"message\":\"m\",\"code\":5}", -ENOENT},
        {409, "{\"error\":\"x\",\"message\":\"m\",\"code\":6}", -EEXIST},
        {403, "{\"error\":\"x\",\"message\":\"m\",\"code\":7}", -EACCES},
        {401, "{\"error\":\"x\",\"message\":\"m\",\"code\":16}", -EACCES},
        {429, "{\"error\":\"x\",\"message\":\"m\",\"code\":8}", -ENOSPC},
        {400, "{\"error\":\"x\",\"message\":\"m\",\"code\":11}", -ERANGE},
        {503, "{\"error\":\"x\",\"message\":\"m\",\"code\":14}", -EAGAIN},
        {500, "{\"error\":\"x\",\"message\":\"m\",\"code\":99}", -EREMOTEIO},
        {200, "{\"error\":{\"grpc_code\":5,\"message\":\"gone\"}}", -ENOENT},
        {500, "{\"error\":\"x\"}", -EIO},
        {404, "Not Found\n", -EIO},
        /* etcd's auth: a token to renew, none sent, and 3.4's gateway
         * refusing a client certificate with a CommonName. */
        {401, "{\"error\":\"x\",\"message\":\"etcdserver: invalid auth token\",\"code\":16}",
         -EKEYEXPIRED},
        {400, "{\"message\":\"etcdserver: revision of auth store is old\",\"code\":3}",
         -EKEYEXPIRED},
        {400, "{\"message\":\"etcdserver: user name is empty\",\"code\":3}", -EACCES},
        {400,
         "CommonName of client sending a request against gateway will be ignored and not used "
         "as expected\n",
         -EACCES},
        {404, "CommonName of client sending a request against gateway\n", -EIO},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        why[0] = '\0';
        int rc = etcd_decode_doc(cases[i].body, strlen(cases[i].body), cases[i].status, false,
                                 &json, &doc, why);
        ck_assert_msg(rc == cases[i].rc, "%s: %d", cases[i].body, rc);
        ck_assert_int_eq(etcd_json_type(doc), ETCD_JSON_NONE);
        ck_assert_str_ne(why, "");
    }
    etcd_decode_doc(cases[0].body, strlen(cases[0].body), 400, false, &json, &doc, why);
    ck_assert_str_eq(why, "etcd: etcdserver: bad");
    etcd_decode_doc("Not Found\n", 10, 404, false, &json, &doc, why);
    ck_assert_ptr_nonnull(strstr(why, "404"));
}
END_TEST

/* The scanner recurses a level at a time: deep input is refused, inside
 * strings brackets do not count. */
START_TEST(deep_nesting_is_refused)
{
    enum { DEEP = 100000 };
    char *deep = malloc(2 * DEEP);
    memset(deep, '[', DEEP);
    memset(deep + DEEP, ']', DEEP);
    ck_assert_int_eq(etcd_decode_doc(deep, 2 * DEEP, 200, false, &json, &doc, why), -EIO);
    free(deep);
    ck_assert_int_eq(load("{\"s\":\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\\\"\"}"), 0);
}
END_TEST

START_TEST(stream_replies_are_wrapped_in_result)
{
    static const char body[] = "{\"result\":{" HEADER ",\"TTL\":\"5\"}}";
    int64_t ttl = 0;
    const char *reason = NULL;
    ck_assert_int_eq(etcd_decode_doc(body, strlen(body), 200, true, &json, &doc, why), 0);
    ck_assert_int_eq(etcd_decode_keepalive(doc, &ttl, &reason), 0);
    ck_assert_int_eq(ttl, 5);
    ck_assert_int_eq(
        etcd_decode_doc("{" HEADER "}", strlen("{" HEADER "}"), 200, true, &json, &doc, why), -EIO);
    ck_assert_int_eq(etcd_json_type(doc), ETCD_JSON_NONE);
    /* A keepalive of a lease that is gone has no TTL. */
    ck_assert_int_eq(load("{" HEADER ",\"ID\":\"9\"}"), 0);
    ck_assert_int_eq(etcd_decode_keepalive(doc, &ttl, &reason), -ENOENT);
    ck_assert_ptr_nonnull(reason);
}
END_TEST

START_TEST(txn_results_match_its_ops)
{
    struct etcd_op ops[2] = {{.type = ETCD_OP_PUT}, {.type = ETCD_OP_DELETE}};
    struct etcd_op failure = {.type = ETCD_OP_RANGE};
    struct etcd_txn t = {.success = ops, .nsuccess = 2, .failure = &failure, .nfailure = 1};
    ck_assert_int_eq(load("{" HEADER ",\"succeeded\":true,\"responses\":[{\"response_put\":{}},"
                          "{\"response_delete_range\":{\"deleted\":\"1\"}}]}"),
                     0);
    ck_assert_int_eq(etcd_decode_txn(doc, &t, &reply), 0);
    ck_assert(reply.succeeded);
    ck_assert_uint_eq(reply.nops, 2);
    ck_assert_int_eq(reply.ops[1].type, ETCD_OP_DELETE);
    ck_assert_int_eq(reply.ops[1].count, 1);
    etcd_reply_free(&reply);
    /* No "succeeded": the compares failed, and the failure branch ran. */
    ck_assert_int_eq(load("{" HEADER ",\"responses\":[{\"response_range\":{\"count\":\"2\"}}]}"),
                     0);
    ck_assert_int_eq(etcd_decode_txn(doc, &t, &reply), 0);
    ck_assert(!reply.succeeded);
    ck_assert_int_eq(reply.ops[0].count, 2);
    etcd_reply_free(&reply);
    /* Too few, or of another op's type. */
    ck_assert_int_eq(load("{" HEADER ",\"succeeded\":true,\"responses\":[{\"response_put\":{}}]}"),
                     0);
    ck_assert_int_eq(etcd_decode_txn(doc, &t, &reply), -EIO);
    etcd_reply_free(&reply);
    ck_assert_int_eq(load("{" HEADER ",\"succeeded\":true,\"responses\":[{\"response_put\":{}},"
                          "{\"response_range\":{}}]}"),
                     0);
    ck_assert_int_eq(etcd_decode_txn(doc, &t, &reply), -EIO);
}
END_TEST

START_TEST(a_grant_needs_an_id_and_a_ttl)
{
    int64_t id, ttl;
    ck_assert_int_eq(load("{" HEADER ",\"ID\":\"9\",\"TTL\":\"5\"}"), 0);
    ck_assert_int_eq(etcd_decode_grant(doc, &id, &ttl), 0);
    ck_assert_int_eq(id, 9);
    ck_assert_int_eq(ttl, 5);
    ck_assert_int_eq(load("{" HEADER ",\"TTL\":\"5\"}"), 0);
    ck_assert_int_eq(etcd_decode_grant(doc, &id, &ttl), -EIO);
    ck_assert_int_eq(load("{" HEADER ",\"ID\":\"9\",\"TTL\":\"0\"}"), 0);
    ck_assert_int_eq(etcd_decode_grant(doc, &id, &ttl), -EIO);
}
END_TEST

/* The alarms, by name as the gateway writes them (or by number), for the
 * cluster and per member; none is 0; names for the page. */
START_TEST(alarms_as_a_mask)
{
    struct etcd_alarms alarms;
    char names[32];
    ck_assert_int_eq(load("{" HEADER "}"), 0);
    ck_assert_int_eq(etcd_decode_alarms(doc, &alarms), 0);
    ck_assert_uint_eq(alarms.all, 0);
    ck_assert_uint_eq(alarms.n, 0);
    ck_assert_int_eq(load("{" HEADER ",\"alarms\":[{\"memberID\":\"1\",\"alarm\":\"NOSPACE\"},"
                          "{\"memberID\":\"2\",\"alarm\":2},{\"memberID\":\"1\",\"alarm\":2},"
                          "{\"alarm\":\"LATER\"}]}"),
                     0);
    ck_assert_int_eq(etcd_decode_alarms(doc, &alarms), 0);
    ck_assert_uint_eq(alarms.all, ETCD_ALARM_NOSPACE | ETCD_ALARM_CORRUPT);
    ck_assert_uint_eq(alarms.n, 2);
    ck_assert_str_eq(alarms.at[0].member, "1");
    ck_assert_uint_eq(alarms.at[0].bits, ETCD_ALARM_NOSPACE | ETCD_ALARM_CORRUPT);
    ck_assert_str_eq(alarms.at[1].member, "2");
    ck_assert_uint_eq(alarms.at[1].bits, ETCD_ALARM_CORRUPT);
    etcd_alarm_names(alarms.at[0].bits, names, sizeof(names));
    ck_assert_str_eq(names, "NOSPACE CORRUPT");
    etcd_alarm_names(0, names, sizeof(names));
    ck_assert_str_eq(names, "");
    /* etcd 3.4's own replies have no header: {} when there is no alarm. */
    ck_assert_int_eq(load("{}"), 0);
    ck_assert_int_eq(etcd_decode_alarms(doc, &alarms), 0);
    ck_assert_uint_eq(alarms.all, 0);
    ck_assert_int_eq(load("{\"alarms\":[{\"memberID\":\"10276657743932975437\","
                          "\"alarm\":\"NOSPACE\"}]}"),
                     0);
    ck_assert_int_eq(etcd_decode_alarms(doc, &alarms), 0);
    ck_assert_uint_eq(alarms.all, ETCD_ALARM_NOSPACE);
    ck_assert_str_eq(alarms.at[0].member, "10276657743932975437");
    ck_assert_int_eq(load("{\"header\":[]}"), 0);
    ck_assert_int_eq(etcd_decode_alarms(doc, &alarms), -EIO);
    ck_assert_int_eq(load("{" HEADER ",\"alarms\":{}}"), 0);
    ck_assert_int_eq(etcd_decode_alarms(doc, &alarms), -EIO);
    ck_assert_int_eq(load("{" HEADER ",\"alarms\":[{\"alarm\":[]}]}"), 0);
    ck_assert_int_eq(etcd_decode_alarms(doc, &alarms), -EIO);
}
END_TEST

/* A watch's messages: created, events (PUT is the absent type), the end. */
START_TEST(watch_messages)
{
    static const char created[] = "{\"result\":{" HEADER ",\"created\":true}}";
    static const char events[] =
        "{\"result\":{" HEADER ",\"events\":[{\"kv\":{\"key\":\"YQ==\",\"mod_revision\":\"8\"}},"
        "{\"type\":\"DELETE\",\"kv\":{\"key\":\"Yg==\"}},{\"type\":\"MOVE\",\"kv\":{}},"
        "{\"type\":\"PUT\"}]}}";
    struct etcd_mem *mem = NULL;
    struct etcd_event ev;
    int64_t revision = 0;
    ck_assert_int_eq(etcd_decode_message(created, strlen(created), &json, &doc, why), 0);
    ck_assert_int_eq(etcd_decode_watch_created(doc, &revision), 0);
    ck_assert_int_eq(revision, 7);
    ck_assert_int_eq(etcd_json_type(etcd_decode_events(doc)), ETCD_JSON_NONE);
    ck_assert_int_eq(etcd_decode_message(events, strlen(events), &json, &doc, why), 0);
    ck_assert_int_eq(etcd_decode_watch_status(doc), 0);
    ck_assert_int_eq(etcd_decode_watch_created(doc, &revision), -EIO); /* not a "created" */
    struct etcd_jv it = etcd_decode_events(doc);
    ck_assert_int_eq(etcd_decode_event(&it, &mem, &ev), 0);
    ck_assert_int_eq(ev.type, ETCD_EVENT_PUT);
    ck_assert_str_eq(ev.kv.key, "a");
    ck_assert_int_eq(ev.kv.mod_revision, 8);
    ck_assert_int_eq(etcd_decode_event(&it, &mem, &ev), 0);
    ck_assert_int_eq(ev.type, ETCD_EVENT_DELETE);
    ck_assert_int_eq(etcd_decode_event(&it, &mem, &ev), -EIO); /* no such type */
    ck_assert_int_eq(etcd_decode_event(&it, &mem, &ev), -EIO); /* no kv */
    ck_assert_int_eq(etcd_json_type(it), ETCD_JSON_NONE);      /* four in all */
    etcd_mem_free(&mem);
    ck_assert_ptr_null(mem);
}
END_TEST

START_TEST(watch_ends)
{
    static const struct {
        const char *line;
        int rc;
    } cases[] = {
        {"{\"result\":{" HEADER ",\"canceled\":true,\"compact_revision\":\"3\"}}", -ERANGE},
        {"{\"result\":{" HEADER ",\"canceled\":true}}", -EPIPE},
        {"{\"result\":{" HEADER ",\"canceled\":true,\"cancel_reason\":\"rpc error: code = "
         "PermissionDenied desc = etcdserver: permission denied\"}}",
         -EACCES},
        {"{\"result\":{" HEADER ",\"events\":{}}}", -EIO},
        {"{\"result\":{" HEADER ",\"canceled\":\"no\"}}", -EIO},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ck_assert_int_eq(
            etcd_decode_message(cases[i].line, strlen(cases[i].line), &json, &doc, why), 0);
        ck_assert_int_eq(etcd_decode_watch_status(doc), cases[i].rc);
    }
    ck_assert_int_eq(etcd_decode_message("nonsense", 8, &json, &doc, why), -EIO);
    ck_assert_int_eq(etcd_decode_message("{}", 2, &json, &doc, why), -EIO);
    static const char err[] = "{\"error\":{\"grpc_code\":14,\"message\":\"no leader\"}}";
    ck_assert_int_eq(etcd_decode_message(err, strlen(err), &json, &doc, why), -EAGAIN);
    ck_assert_str_eq(why, "etcd: no leader");
    ck_assert_int_eq(etcd_json_type(doc), ETCD_JSON_NONE);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("etcd_decode");
    TCase *tc = tcase_create("etcd_decode");
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_add_test(tc, a_range_and_its_kvs);
    tcase_add_test(tc, alarms_as_a_mask);
    tcase_add_test(tc, wrong_shapes_are_eio);
    tcase_add_test(tc, base64_whole_quads_padding_at_the_end);
    tcase_add_test(tc, error_documents);
    tcase_add_test(tc, deep_nesting_is_refused);
    tcase_add_test(tc, stream_replies_are_wrapped_in_result);
    tcase_add_test(tc, txn_results_match_its_ops);
    tcase_add_test(tc, a_grant_needs_an_id_and_a_ttl);
    tcase_add_test(tc, watch_messages);
    tcase_add_test(tc, watch_ends);
    suite_add_tcase(s, tc);
    return check_run(s);
}
