/* Unit tests for server/cluster/etcd_auth.c: the password file (its first
 * line, refused when empty, missing or not a line), its re-reading, the
 * authenticate request's JSON, the token's numbering when several clients
 * renew at once, and which refusals mean "renew the token". */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "check_run.h"
#include "cluster/etcd_auth.h"

static char dir[] = "/tmp/test_etcd_auth_XXXXXX";
static char path[64];
static char why[256];

static void write_file(const char *text, size_t len)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(text, 1, len, f), len);
    fclose(f);
}

static void setup(void)
{
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/password", dir);
}

static void teardown(void)
{
    unlink(path);
    rmdir(dir);
    strcpy(dir, "/tmp/test_etcd_auth_XXXXXX");
}

/* The password as the request carries it. */
static void expect_password(struct etcd_auth *a, const char *want)
{
    char *body = etcd_auth_request(a);
    json_t *doc = json_loads(body, 0, NULL);
    ck_assert_ptr_nonnull(doc);
    ck_assert_str_eq(json_string_value(json_object_get(doc, "name")), "turnstile");
    ck_assert_str_eq(json_string_value(json_object_get(doc, "password")), want);
    json_decref(doc);
    etcd_auth_request_free(body);
}

START_TEST(first_line_is_the_password)
{
    static const struct {
        const char *text, *password;
    } cases[] = {
        {"s3cret", "s3cret"},
        {"s3cret\n", "s3cret"},
        {"s3cret\r\n", "s3cret"},
        {"with \"quotes\" \\ \n", "with \"quotes\" \\ "},
        {"line one\nline two\n", "line one"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct etcd_auth a;
        write_file(cases[i].text, strlen(cases[i].text));
        ck_assert_int_eq(etcd_auth_init(&a, "turnstile", path, why, sizeof(why)), 0);
        expect_password(&a, cases[i].password);
        etcd_auth_fini(&a);
    }
}
END_TEST

START_TEST(unusable_files_refused)
{
    struct etcd_auth a;
    ck_assert_int_eq(etcd_auth_init(&a, "turnstile", path, why, sizeof(why)), -ENOENT);
    ck_assert_ptr_nonnull(strstr(why, "cannot read password file"));
    ck_assert_ptr_nonnull(strstr(why, path));
    write_file("\n", 1);
    ck_assert_int_eq(etcd_auth_init(&a, "turnstile", path, why, sizeof(why)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(why, "is empty"));
    write_file("ab\0cd", 5);
    ck_assert_int_eq(etcd_auth_init(&a, "turnstile", path, why, sizeof(why)), -EINVAL);
    char big[2000];
    memset(big, 'x', sizeof(big));
    write_file(big, sizeof(big));
    ck_assert_int_eq(etcd_auth_init(&a, "turnstile", path, why, sizeof(why)), -EINVAL);
    ck_assert_ptr_null(strstr(why, "xxxx")); /* the password is never in a message */
    write_file("pw", 2);
    ck_assert_int_eq(etcd_auth_init(&a, "", path, why, sizeof(why)), -EINVAL);
}
END_TEST

/* An authenticate reply carrying token ("" for none), parsed into r. */
struct reply {
    char text[128];
    struct etcd_json json;
};

static struct etcd_jv reply(struct reply *r, const char *token)
{
    const char *fmt = token[0] ? "{\"header\":{\"revision\":\"1\"},\"token\":\"%s\"}" : "{}";
    snprintf(r->text, sizeof(r->text), fmt, token);
    r->json = (struct etcd_json){0};
    ck_assert_int_eq(etcd_json_parse(&r->json, r->text, strlen(r->text)), 0);
    return etcd_json_root(&r->json);
}

START_TEST(tokens_are_numbered)
{
    struct etcd_auth a;
    char token[ETCD_AUTH_TOKEN_CAP];
    write_file("pw\n", 3);
    ck_assert_int_eq(etcd_auth_init(&a, "turnstile", path, why, sizeof(why)), 0);
    uint64_t none = etcd_auth_token(&a, token, sizeof(token));
    ck_assert_str_eq(token, "");
    struct reply r1, r2, r3;
    struct etcd_jv first = reply(&r1, "first.1"), second = reply(&r2, "second.2"),
                   empty = reply(&r3, "");
    ck_assert_int_eq(etcd_auth_accept(&a, first, none), 0);
    uint64_t used = etcd_auth_token(&a, token, sizeof(token));
    ck_assert_str_eq(token, "first.1");
    ck_assert_uint_ne(used, none);
    /* Two clients saw "first" refused; one renewed: the other's late
     * renewal does not replace it. */
    ck_assert_int_eq(etcd_auth_accept(&a, second, used), 0);
    uint64_t renewed = etcd_auth_token(&a, token, sizeof(token));
    ck_assert_int_eq(etcd_auth_accept(&a, first, used), 0);
    ck_assert_uint_eq(etcd_auth_token(&a, token, sizeof(token)), renewed);
    ck_assert_str_eq(token, "second.2");
    ck_assert_int_eq(etcd_auth_accept(&a, empty, renewed), -EIO);
    etcd_json_free(&r1.json);
    etcd_json_free(&r2.json);
    etcd_json_free(&r3.json);
    etcd_auth_fini(&a);
}
END_TEST

/* A reload reads the new password and forgets the token it was used for;
 * one that cannot read the file changes nothing. */
START_TEST(reload_reads_again)
{
    struct etcd_auth a;
    char token[ETCD_AUTH_TOKEN_CAP];
    write_file("old\n", 4);
    ck_assert_int_eq(etcd_auth_init(&a, "turnstile", path, why, sizeof(why)), 0);
    struct reply r;
    struct etcd_jv doc = reply(&r, "tok.1");
    ck_assert_int_eq(etcd_auth_accept(&a, doc, etcd_auth_token(&a, token, sizeof(token))), 0);
    write_file("new\n", 4);
    ck_assert_int_eq(etcd_auth_reload(&a, why, sizeof(why)), 0);
    etcd_auth_token(&a, token, sizeof(token));
    ck_assert_str_eq(token, "");
    expect_password(&a, "new");
    unlink(path);
    ck_assert_int_eq(etcd_auth_reload(&a, why, sizeof(why)), -ENOENT);
    expect_password(&a, "new");
    etcd_json_free(&r.json);
    etcd_auth_fini(&a);
}
END_TEST

START_TEST(which_refusals_renew)
{
    ck_assert_int_eq(etcd_auth_errno(16, "etcdserver: invalid auth token"), -EKEYEXPIRED);
    ck_assert_int_eq(etcd_auth_errno(3, "etcdserver: revision of auth store is old"), -EKEYEXPIRED);
    ck_assert_int_eq(etcd_auth_errno(3, "etcdserver: user name is empty"), -EACCES);
    ck_assert_int_eq(etcd_auth_errno(7, "etcdserver: permission denied"), 0);
    ck_assert_int_eq(
        etcd_auth_errno(3, "etcdserver: authentication failed, invalid user ID or password"), 0);
    ck_assert_int_eq(etcd_auth_errno(3, "etcdserver: key is not provided"), 0);
}
END_TEST

/* One login at a time: a second waits while the first is under way, and
 * takes over once it is done or its deadline passed. */
START_TEST(one_login_at_a_time)
{
    struct etcd_auth a;
    write_file("pw\n", 3);
    ck_assert_int_eq(etcd_auth_init(&a, "turnstile", path, why, sizeof(why)), 0);
    ck_assert(etcd_auth_login_begin(&a, 100, 1000));
    ck_assert(!etcd_auth_login_begin(&a, 200, 1200));
    ck_assert(etcd_auth_login_begin(&a, 1000, 2000)); /* the first one's deadline passed */
    etcd_auth_login_done(&a);
    ck_assert(etcd_auth_login_begin(&a, 1100, 2100));
    etcd_auth_fini(&a);
}
END_TEST

static Suite *etcd_auth_suite(void)
{
    Suite *s = suite_create("etcd_auth");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, first_line_is_the_password);
    tcase_add_test(tc, unusable_files_refused);
    tcase_add_test(tc, tokens_are_numbered);
    tcase_add_test(tc, reload_reads_again);
    tcase_add_test(tc, which_refusals_renew);
    tcase_add_test(tc, one_login_at_a_time);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return check_run(etcd_auth_suite());
}
