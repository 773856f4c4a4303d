/* Unit tests for server/cluster/etcd_encode.c: requests as etcd 3.4's
 * JSON gateway reads them. Each encoding is parsed back with jansson and
 * its fields checked: keys and values in base64, int64s as strings, enums
 * by name, zero fields left out, a prefix as its range_end; and arguments
 * that make no sense are -EINVAL with nothing encoded. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "check_run.h"
#include "cluster/etcd_encode.h"

static json_t *doc;
static char *text; /* what the encoder under test wrote */

static void teardown(void)
{
    json_decref(doc);
    doc = NULL;
}

/* Parses text (freed) into doc, after an encoder returned rc. */
static void parse(int rc)
{
    ck_assert_int_eq(rc, 0);
    ck_assert_ptr_nonnull(text);
    json_decref(doc);
    doc = json_loads(text, 0, NULL);
    free(text);
    text = NULL;
    ck_assert_ptr_nonnull(doc);
}

/* The string at a '.'-separated path of object keys. */
static const char *str_at(const char *path)
{
    char buf[128];
    snprintf(buf, sizeof(buf), "%s", path);
    const json_t *v = doc;
    for (char *save, *k = strtok_r(buf, ".", &save); k; k = strtok_r(NULL, ".", &save))
        v = json_object_get(v, k);
    return json_string_value(v);
}

static bool has(const json_t *o, const char *name)
{
    return json_object_get(o, name) != NULL;
}

START_TEST(range_fields_as_the_gateway_reads_them)
{
    struct etcd_range_req r = {.key = "foo",
                               .key_len = 3,
                               .limit = 9007199254740993, /* 2^53 + 1: exact only as a string */
                               .sort_order = ETCD_SORT_ASCEND,
                               .sort_target = ETCD_SORT_CREATE,
                               .count_only = true,
                               .revision = 42};
    parse(etcd_encode_range(&r, &text));
    ck_assert_str_eq(str_at("key"), "Zm9v");
    ck_assert_str_eq(str_at("limit"), "9007199254740993");
    ck_assert_str_eq(str_at("sort_order"), "ASCEND");
    ck_assert_str_eq(str_at("sort_target"), "CREATE");
    ck_assert(json_is_true(json_object_get(doc, "count_only")));
    ck_assert_str_eq(str_at("revision"), "42");
    ck_assert(!has(doc, "range_end"));
    ck_assert(!has(doc, "max_create_revision"));

    /* Zero fields are left out: absent is zero to the gateway. */
    parse(etcd_encode_range(&(struct etcd_range_req){.key = "a", .key_len = 1}, &text));
    ck_assert_uint_eq(json_object_size(doc), 1);
}
END_TEST

/* A prefix is [key, key with its last byte below 0xff incremented). */
START_TEST(prefix_range_ends)
{
    parse(etcd_encode_range(&(struct etcd_range_req){.key = "ab", .key_len = 2, .prefix = true},
                            &text));
    ck_assert_str_eq(str_at("range_end"), "YWM="); /* "ac" */
    parse(etcd_encode_range(
        &(struct etcd_range_req){.key = "a\xff\xff", .key_len = 3, .prefix = true}, &text));
    ck_assert_str_eq(str_at("range_end"), "Yg=="); /* "b" */
    parse(etcd_encode_range(
        &(struct etcd_range_req){.key = "\xff\xff", .key_len = 2, .prefix = true}, &text));
    ck_assert_str_eq(str_at("range_end"), "AA=="); /* "\0": every key from key on */
    /* An empty key with prefix is every key. */
    parse(etcd_encode_range(&(struct etcd_range_req){.key = "", .prefix = true}, &text));
    ck_assert_str_eq(str_at("key"), "AA==");
    ck_assert_str_eq(str_at("range_end"), "AA==");
    parse(etcd_encode_delete(&(struct etcd_delete_req){.key = "ab", .key_len = 2, .prefix = true},
                             &text));
    ck_assert_str_eq(str_at("range_end"), "YWM=");
}
END_TEST

/* Bytes are bytes: a NUL inside a value survives. */
START_TEST(txn_compares_and_ops)
{
    struct etcd_cmp cmps[2] = {
        {.key = "k", .key_len = 1, .target = ETCD_CMP_CREATE, .number = 7},
        {.key = "v",
         .key_len = 1,
         .target = ETCD_CMP_VALUE,
         .result = ETCD_CMP_NOT_EQUAL,
         .value = "a\0b",
         .value_len = 3},
    };
    struct etcd_op ops[2] = {
        {.type = ETCD_OP_PUT,
         .put = {.key = "k", .key_len = 1, .value = "x", .value_len = 1, .lease = 255}},
        {.type = ETCD_OP_DELETE, .del = {.key = "k", .key_len = 1, .prev_kv = true}},
    };
    struct etcd_txn t = {.cmps = cmps, .ncmps = 2, .success = ops, .nsuccess = 2};
    parse(etcd_encode_txn(&t, &text));
    const json_t *c0 = json_array_get(json_object_get(doc, "compare"), 0);
    const json_t *c1 = json_array_get(json_object_get(doc, "compare"), 1);
    ck_assert_str_eq(json_string_value(json_object_get(c0, "target")), "CREATE");
    ck_assert_str_eq(json_string_value(json_object_get(c0, "result")), "EQUAL");
    ck_assert_str_eq(json_string_value(json_object_get(c0, "create_revision")), "7");
    ck_assert_str_eq(json_string_value(json_object_get(c1, "result")), "NOT_EQUAL");
    ck_assert_str_eq(json_string_value(json_object_get(c1, "value")), "YQBi");
    const json_t *put =
        json_object_get(json_array_get(json_object_get(doc, "success"), 0), "request_put");
    ck_assert_str_eq(json_string_value(json_object_get(put, "lease")), "255");
    ck_assert_str_eq(json_string_value(json_object_get(put, "value")), "eA==");
    const json_t *del =
        json_object_get(json_array_get(json_object_get(doc, "success"), 1), "request_delete_range");
    ck_assert(json_is_true(json_object_get(del, "prev_kv")));
    ck_assert(!has(doc, "failure")); /* absent means empty */
}
END_TEST

START_TEST(lease_and_watch)
{
    parse(etcd_encode_lease(0, 5, &text));
    ck_assert_str_eq(str_at("TTL"), "5");
    ck_assert(!has(doc, "ID"));
    parse(etcd_encode_lease(-2, 0, &text));
    ck_assert_str_eq(str_at("ID"), "-2");
    ck_assert_int_eq(etcd_encode_lease(0, 0, &text), -EINVAL);
    ck_assert_ptr_null(text);
    parse(etcd_encode_watch("/p/", 3, true, &text));
    ck_assert_str_eq(str_at("create_request.key"), "L3Av");
    ck_assert_str_eq(str_at("create_request.range_end"), "L3Aw"); /* "/p0" */
}
END_TEST

START_TEST(nonsense_is_einval_and_encodes_nothing)
{
    text = (char *)"untouched";
    ck_assert_int_eq(etcd_encode_range(&(struct etcd_range_req){.key = "", .key_len = 0}, &text),
                     -EINVAL);
    ck_assert_ptr_null(text);
    ck_assert_int_eq(etcd_encode_range(&(struct etcd_range_req){.key_len = 3}, &text), -EINVAL);
    ck_assert_int_eq(
        etcd_encode_range(&(struct etcd_range_req){.key = "k", .key_len = 1, .limit = -1}, &text),
        -EINVAL);
    ck_assert_int_eq(
        etcd_encode_range(&(struct etcd_range_req){.key = "k", .key_len = 1, .sort_order = 7},
                          &text),
        -EINVAL);
    struct etcd_op op = {.type = 9};
    ck_assert_int_eq(etcd_encode_txn(&(struct etcd_txn){.success = &op, .nsuccess = 1}, &text),
                     -EINVAL);
    struct etcd_op put = {.type = ETCD_OP_PUT, .put = {.key = "k", .key_len = 1, .value_len = 2}};
    ck_assert_int_eq(etcd_encode_txn(&(struct etcd_txn){.failure = &put, .nfailure = 1}, &text),
                     -EINVAL);
    struct etcd_cmp cmp = {.key = "k", .key_len = 1, .result = 4};
    ck_assert_int_eq(etcd_encode_txn(&(struct etcd_txn){.cmps = &cmp, .ncmps = 1}, &text), -EINVAL);
    ck_assert_int_eq(etcd_encode_delete(&(struct etcd_delete_req){.key = "k"}, &text), -EINVAL);
    ck_assert_int_eq(etcd_encode_watch(NULL, 1, false, &text), -EINVAL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("etcd_encode");
    TCase *tc = tcase_create("etcd_encode");
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_add_test(tc, range_fields_as_the_gateway_reads_them);
    tcase_add_test(tc, prefix_range_ends);
    tcase_add_test(tc, txn_compares_and_ops);
    tcase_add_test(tc, lease_and_watch);
    tcase_add_test(tc, nonsense_is_einval_and_encodes_nothing);
    suite_add_tcase(s, tc);
    return check_run(s);
}
