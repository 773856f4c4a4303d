/* Unit tests for server/cluster/etcd_json.c, the scanner of the gateway's
 * JSON: what it takes (every escape, UTF-8, numbers of JSON's grammar,
 * blanks), what it refuses (bad escapes and UTF-8, control characters,
 * numbers out of grammar, nesting past its bound, anything after the
 * value, every cut of a valid text), and how values read: members by
 * name (unknown ones skipped, a name given twice refused), arrays in
 * order, int64s as numbers or strings at their limits. Each text is
 * parsed from a heap copy of exactly its length, so ASan sees a read past
 * its end. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "check_run.h"
#include "cluster/etcd_json.h"

static struct etcd_json json;
static char *copy;

static void teardown(void)
{
    etcd_json_free(&json);
    free(copy);
    copy = NULL;
}

/* Parses len bytes of text from a copy of exactly that length. */
static int parse_n(const char *text, size_t len)
{
    free(copy);
    copy = malloc(len ? len : 1);
    memcpy(copy, text, len);
    return etcd_json_parse(&json, copy, len);
}

static int parse(const char *text)
{
    return parse_n(text, strlen(text));
}

static struct etcd_jv root(void)
{
    return etcd_json_root(&json);
}

/* The string member `name` of the root, unescaped. */
static const char *str(const char *name, size_t *len)
{
    static char buf[64];
    ck_assert_int_eq(etcd_json_string(etcd_json_get(root(), name), buf, sizeof(buf), len), 0);
    return buf;
}

START_TEST(escapes_unescape)
{
    size_t len;
    ck_assert_int_eq(parse("{\"s\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\",\"u\":\"\\u0041\\u00e9\\u20ac\","
                           "\"pair\":\"\\ud83d\\ude00\",\"nul\":\"a\\u0000b\",\"k\\u0065y\":1}"),
                     0);
    ck_assert_str_eq(str("s", &len), "\"\\/\b\f\n\r\t");
    ck_assert_uint_eq(len, 8);
    ck_assert_str_eq(str("u", &len), "A\xc3\xa9\xe2\x82\xac");
    ck_assert_str_eq(str("pair", &len), "\xf0\x9f\x98\x80");
    ck_assert_uint_eq(len, 4);
    str("nul", &len);
    ck_assert_uint_eq(len, 3); /* its bytes, the NUL among them */
    ck_assert_int_eq(etcd_json_type(etcd_json_get(root(), "key")), ETCD_JSON_NUMBER);
    ck_assert(etcd_json_string_is(etcd_json_get(root(), "u"), "A\xc3\xa9\xe2\x82\xac"));
    ck_assert(!etcd_json_string_is(etcd_json_get(root(), "u"), "A\xc3\xa9"));
}
END_TEST

START_TEST(bad_strings_are_refused)
{
    static const char *const bad[] = {
        "\"\\x\"",              /* no such escape */
        "\"\\u12g4\"",          /* not hex */
        "\"\\u12\"",            /* cut */
        "\"\\ud800\"",          /* a high surrogate alone */
        "\"\\ud800\\u0041\"",   /* followed by no low one */
        "\"\\udc00\"",          /* a low surrogate alone */
        "\"a\tb\"",             /* a control character */
        "\"\xc0\x80\"",         /* overlong */
        "\"\xed\xa0\x80\"",     /* a surrogate in UTF-8 */
        "\"\xf5\x80\x80\x80\"", /* past U+10FFFF */
        "\"\x80\"",             /* a continuation alone */
        "\"\xe2\x82\"",         /* cut */
        "\"abc",                /* no closing quote */
        "\"abc\\\"",            /* the quote escaped */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(parse(bad[i]) == -EIO, "%s", bad[i]);
    ck_assert_int_eq(parse("\"\xe2\x82\xac \xf4\x8f\xbf\xbf\""), 0);
}
END_TEST

START_TEST(numbers_and_literals_by_the_grammar)
{
    static const char *const good[] = {"0",      "-0",   "12",    "-3.25", "1e9",         "2E-3",
                                       "1.5e+2", "true", "false", "null",  " \t\r\n{} \n"};
    static const char *const bad[] = {
        "01",         "-",       "1.",    ".5",    "+1",        "1e",  "1e+",   "--1",
        "tru",        "nul",     "True",  "",      " ",         "{}x", "{} {}", "[1,]",
        "{\"a\":1,}", "{\"a\"}", "{a:1}", "[1 2]", "{\"a\" 1}", "[",   "]",     "{\"a\":1"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        ck_assert_msg(parse(good[i]) == 0, "%s", good[i]);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(parse(bad[i]) == -EIO, "%s", bad[i]);
    ck_assert_int_eq(parse_n("{}\0", 3), -EIO); /* a NUL after the value */
}
END_TEST

/* int64s at their limits, as numbers and as the gateway's strings. */
START_TEST(huge_numbers)
{
    int64_t n;
    ck_assert_int_eq(parse("{\"max\":9223372036854775807,\"min\":\"-9223372036854775808\","
                           "\"over\":9223372036854775808,\"under\":\"-9223372036854775809\","
                           "\"long\":\"000000000000000000000000000000000001\",\"real\":1.0,"
                           "\"exp\":1e3,\"plus\":\"+1\",\"blank\":\" 1\",\"empty\":\"\","
                           "\"minus\":\"-\",\"esc\":\"\\u0037\",\"big\":"
                           "123456789012345678901234567890}"),
                     0); /* out of range is an error only when read */
    ck_assert_int_eq(etcd_json_int(etcd_json_get(root(), "max"), &n), 0);
    ck_assert_int_eq(n, INT64_MAX);
    ck_assert_int_eq(etcd_json_int(etcd_json_get(root(), "min"), &n), 0);
    ck_assert_int_eq(n, INT64_MIN);
    ck_assert_int_eq(etcd_json_int(etcd_json_get(root(), "esc"), &n), 0);
    ck_assert_int_eq(n, 7);
    static const char *const bad[] = {"over", "under", "long",  "real",  "exp",
                                      "plus", "blank", "empty", "minus", "big"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_msg(etcd_json_int(etcd_json_get(root(), bad[i]), &n) == -EIO, "%s", bad[i]);
        ck_assert_int_eq(n, 0);
    }
    ck_assert_int_eq(etcd_json_int(etcd_json_get(root(), "absent"), &n), 0);
    ck_assert_int_eq(n, 0);
}
END_TEST

START_TEST(nesting_is_bounded)
{
    char text[2 * (ETCD_JSON_MAX_DEPTH + 1)];
    memset(text, '[', ETCD_JSON_MAX_DEPTH);
    memset(text + ETCD_JSON_MAX_DEPTH, ']', ETCD_JSON_MAX_DEPTH);
    ck_assert_int_eq(parse_n(text, 2 * ETCD_JSON_MAX_DEPTH), 0);
    memset(text, '[', ETCD_JSON_MAX_DEPTH + 1);
    memset(text + ETCD_JSON_MAX_DEPTH + 1, ']', ETCD_JSON_MAX_DEPTH + 1);
    ck_assert_int_eq(parse_n(text, sizeof(text)), -EIO);
    ck_assert_int_eq(parse("{\"a\":[{\"b\":[[]]}],\"s\":\"[[[[{{{{\"}"), 0);
    ck_assert_int_eq(etcd_json_count(etcd_json_get(root(), "a")), 1);
}
END_TEST

/* Every proper prefix of a reply is refused (and read within its bytes). */
START_TEST(every_cut_is_refused)
{
    static const char text[] =
        "{\"header\":{\"revision\":\"7\"},\"kvs\":[{\"key\":\"Zm9v\",\"n\":-1.5e3},true,null],"
        "\"s\":\"\\u00e9\\ud83d\\ude00\xe2\x82\xac\\n\"}";
    ck_assert_int_eq(parse(text), 0);
    for (size_t len = 0; len < strlen(text); len++)
        ck_assert_msg(parse_n(text, len) == -EIO, "cut at %zu", len);
}
END_TEST

/* Members by name: unknown ones are passed over, nested or not; a name
 * given twice is a bad value; members of what is not an object too. */
START_TEST(members_unknown_and_twice)
{
    bool b;
    int64_t n;
    ck_assert_int_eq(parse("{\"x\":{\"deep\":[1,{\"t\":2}]},\"t\":true,\"y\":[],\"d\":1,"
                           "\"d\":2,\"d2\":\"a\",\"d\\u0032\":\"b\"}"),
                     0);
    ck_assert_int_eq(etcd_json_count(root()), 7);
    ck_assert_int_eq(etcd_json_bool(etcd_json_get(root(), "t"), &b), 0);
    ck_assert(b);
    ck_assert_int_eq(etcd_json_type(etcd_json_get(root(), "d")), ETCD_JSON_BAD);
    ck_assert_int_eq(etcd_json_int(etcd_json_get(root(), "d"), &n), -EIO);
    ck_assert_int_eq(etcd_json_type(etcd_json_get(root(), "d2")), ETCD_JSON_BAD); /* escaped */
    ck_assert_int_eq(etcd_json_type(etcd_json_get(root(), "absent")), ETCD_JSON_NONE);
    /* Chains: a member of none is none, of a non-object bad. */
    ck_assert_int_eq(etcd_json_type(etcd_json_get(etcd_json_get(root(), "no"), "a")),
                     ETCD_JSON_NONE);
    ck_assert_int_eq(etcd_json_type(etcd_json_get(etcd_json_get(root(), "y"), "a")), ETCD_JSON_BAD);
    ck_assert_int_eq(etcd_json_bool(etcd_json_get(root(), "y"), &b), -EIO);
    ck_assert_int_eq(etcd_json_type((struct etcd_jv){0}), ETCD_JSON_NONE);
}
END_TEST

START_TEST(arrays_in_order)
{
    int64_t n;
    ck_assert_int_eq(parse("[\"1\",[2,3],{\"a\":4},5]"), 0);
    ck_assert_uint_eq(etcd_json_count(root()), 4);
    struct etcd_jv v = etcd_json_first(root());
    ck_assert_int_eq(etcd_json_int(v, &n), 0);
    ck_assert_int_eq(n, 1);
    v = etcd_json_next(v);
    ck_assert_uint_eq(etcd_json_count(v), 2);
    v = etcd_json_next(v);
    ck_assert_int_eq(etcd_json_int(etcd_json_get(v, "a"), &n), 0);
    ck_assert_int_eq(n, 4);
    v = etcd_json_next(v);
    ck_assert_int_eq(etcd_json_int(v, &n), 0);
    ck_assert_int_eq(n, 5);
    ck_assert_int_eq(etcd_json_type(etcd_json_next(v)), ETCD_JSON_NONE);
    ck_assert_int_eq(etcd_json_type(etcd_json_first(etcd_json_first(root()))), ETCD_JSON_NONE);
    ck_assert_int_eq(parse("[]"), 0);
    ck_assert_int_eq(etcd_json_type(etcd_json_first(root())), ETCD_JSON_NONE);
}
END_TEST

/* A string copied into a buffer too small is cut and still terminated;
 * its whole length is told. A failed parse leaves nothing to read. */
START_TEST(strings_cut_to_the_buffer)
{
    char buf[4];
    size_t len;
    ck_assert_int_eq(parse("{\"s\":\"abcdef\",\"e\":\"\\u00e9\\u00e9\\u00e9\",\"n\":1}"), 0);
    ck_assert_int_eq(etcd_json_string(etcd_json_get(root(), "s"), buf, sizeof(buf), &len), 0);
    ck_assert_str_eq(buf, "abc");
    ck_assert_uint_eq(len, 6);
    ck_assert_int_eq(etcd_json_string(etcd_json_get(root(), "e"), buf, sizeof(buf), &len), 0);
    ck_assert_uint_eq(len, 6);
    ck_assert_uint_ge(etcd_json_string_cap(etcd_json_get(root(), "e")), len + 1);
    ck_assert_int_eq(etcd_json_string(etcd_json_get(root(), "n"), buf, sizeof(buf), &len), -EIO);
    ck_assert_str_eq(buf, "");
    ck_assert_int_eq(etcd_json_string(etcd_json_get(root(), "x"), buf, sizeof(buf), &len), -ENOENT);
    ck_assert_int_eq(parse("{\"a\":"), -EIO);
    ck_assert_int_eq(etcd_json_type(root()), ETCD_JSON_NONE);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("etcd_json");
    TCase *tc = tcase_create("etcd_json");
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_add_test(tc, escapes_unescape);
    tcase_add_test(tc, bad_strings_are_refused);
    tcase_add_test(tc, numbers_and_literals_by_the_grammar);
    tcase_add_test(tc, huge_numbers);
    tcase_add_test(tc, nesting_is_bounded);
    tcase_add_test(tc, every_cut_is_refused);
    tcase_add_test(tc, members_unknown_and_twice);
    tcase_add_test(tc, arrays_in_order);
    tcase_add_test(tc, strings_cut_to_the_buffer);
    suite_add_tcase(s, tc);
    return check_run(s);
}
