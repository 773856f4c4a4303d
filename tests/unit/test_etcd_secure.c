/* Unit tests for server/cluster/etcd_secure.c: which flags go together,
 * files read at start (a missing one refused, naming it), and the refusal
 * shown: set by a refusal, safe to put in JSON, cleared only by a success
 * of the client it refused. TLS and auth themselves: test_tls,
 * test_etcd_auth. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "check_run.h"
#include "cluster/etcd_secure.h"

static char why[ETCD_SECURE_WHY_CAP];

START_TEST(flags_that_go_together)
{
    static const struct {
        struct etcd_secure_files f;
        bool https;
        int rc;
        const char *says;
    } cases[] = {
        {{0}, false, 0, ""},
        {{.cacert = "/nonexistent/ca.pem"}, false, -EINVAL, "https://"},
        {{.cacert = "/nonexistent/ca.pem"}, true, -ENOENT, "/nonexistent/ca.pem"},
        {{.cert = "/nonexistent/c.pem"}, true, -EINVAL, "needs its key"},
        {{.user = "turnstile"}, false, -EINVAL, "--etcd-password-file"},
        {{.password_file = "/nonexistent/pw"}, false, -EINVAL, "--etcd-user"},
        {{.user = "turnstile", .password_file = "/nonexistent/pw"},
         false,
         -ENOENT,
         "/nonexistent/pw"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct etcd_secure *s = NULL;
        why[0] = '\0';
        int rc = etcd_secure_new(&s, &cases[i].f, cases[i].https, why, sizeof(why));
        ck_assert_msg(rc == cases[i].rc, "case %zu: %d (%s)", i, rc, why);
        ck_assert_msg(strstr(why, cases[i].says), "case %zu: '%s'", i, why);
        ck_assert(rc < 0 || (s && !s->tls && !s->auth));
        etcd_secure_free(s);
    }
}
END_TEST

START_TEST(a_refusal_is_shown_until_its_client_succeeds)
{
    struct etcd_secure *s;
    struct etcd_secure_files none = {0};
    int watch, lease;
    char shown[ETCD_SECURE_WHY_CAP];
    ck_assert_int_eq(etcd_secure_new(&s, &none, false, why, sizeof(why)), 0);
    ck_assert(etcd_secure_is_refusal(-EACCES) && etcd_secure_is_refusal(-EKEYREJECTED) &&
              etcd_secure_is_refusal(-EPROTO) && !etcd_secure_is_refusal(-ETIMEDOUT));
    etcd_secure_note(s, &watch, -ETIMEDOUT, "etcd at 127.0.0.1 timed out");
    etcd_secure_refusal(s, shown, sizeof(shown));
    ck_assert_str_eq(shown, ""); /* unreachable is not refused */
    etcd_secure_note(s, &watch, -EACCES, "etcd: \"permission\\denied\"\n");
    etcd_secure_refusal(s, shown, sizeof(shown));
    ck_assert_str_eq(shown, "etcd: 'permission/denied' "); /* as JSON can hold it */
    etcd_secure_note(s, &lease, 0, NULL); /* another client's success proves nothing */
    etcd_secure_refusal(s, shown, sizeof(shown));
    ck_assert_str_ne(shown, "");
    etcd_secure_note(s, &watch, 0, NULL);
    etcd_secure_refusal(s, shown, sizeof(shown));
    ck_assert_str_eq(shown, "");
    etcd_secure_note(NULL, &watch, -EACCES, "nothing to note it in");
    etcd_secure_free(s);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("etcd_secure");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, flags_that_go_together);
    tcase_add_test(tc, a_refusal_is_shown_until_its_client_succeeds);
    suite_add_tcase(s, tc);
    return check_run(s);
}
