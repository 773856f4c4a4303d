/* Cluster mode on a secured etcd (tests/common/etcd_proc, with the
 * certificates of tests/common/certs.sh): TLS with client certificates and
 * etcd's auth. The counter stays exact through it; each refusal (another
 * CA, an expired or misnamed certificate, a wrong password, a user without
 * the permission) is one log line, 503s and /stats' cluster.error, never a
 * 200; tokens expiring cost no request; a certificate rotated and SIGHUPed
 * is used without a restart; files that cannot be used are refused at
 * start. Waits are for events (a log line) or polls of /stats with
 * deadlines. */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "certs.h"
#include "check_run.h"
#include "cluster_fixture.h"
#include "etcd_proc.h"
#include "harness.h"

static struct etcd_proc hardened; /* TLS, client certificates, auth */

/* The certificates (tests/common/certs.sh), a config file naming them, and
 * a client pair that a test rotates. */
static char certs[64], conf[128], rot_cert[128], rot_key[128];

static const char *cert_file(const char *name)
{
    return certs_path(certs, name);
}

static void copy_file(const char *from, const char *to)
{
    char data[16384];
    FILE *in = fopen(from, "r"), *out = fopen(to, "w");
    ck_assert(in && out);
    size_t n = fread(data, 1, sizeof(data), in);
    ck_assert_uint_eq(fwrite(data, 1, n, out), n);
    fclose(in);
    ck_assert_int_eq(fclose(out), 0);
}

/* The client pair NAME.pem and NAME.key of certs.sh becomes the rotated one. */
static void rotate_to(const char *name)
{
    char from[64];
    snprintf(from, sizeof(from), "%s.pem", name);
    copy_file(cert_file(from), rot_cert);
    snprintf(from, sizeof(from), "%s.key", name);
    copy_file(cert_file(from), rot_key);
}

/* Every instance of the test gets --config conf: the CA, the client pair
 * (`client` of certs.sh, installed as the rotated pair), the user and its
 * password file. */
static void secure_conf(const char *cacert, const char *client, const char *user,
                        const char *password)
{
    char pw[128];
    snprintf(pw, sizeof(pw), "%s/%s.password", certs, user);
    FILE *f = fopen(pw, "w");
    ck_assert(f);
    fprintf(f, "%s\n", password);
    ck_assert_int_eq(fclose(f), 0);
    rotate_to(client);
    f = fopen(conf, "w");
    ck_assert(f);
    fprintf(f,
            "etcd-cacert = %s\netcd-cert = %s\netcd-key = %s\netcd-user = %s\n"
            "etcd-password-file = %s\n",
            cert_file(cacert), rot_cert, rot_key, user, pw);
    ck_assert_int_eq(fclose(f), 0);
    cf_extra[0] = "--config";
    cf_extra[1] = conf;
}

/* One instance, not waited for: etcd may refuse it. */
static void start_refused(const char *endpoints)
{
    cf_new_cluster_name();
    cf_nsrv = 1;
    cf_start_one(0, endpoints, "0");
    memset(cf_extra, 0, sizeof(cf_extra));
}

/* /access answers 503, and /stats' cluster.error says why. */
static void assert_refused(int port, const char *cause)
{
    struct resp r;
    ck_assert_int_eq(http_get(port, "/access", &r), 0);
    ck_assert_int_eq(r.status, 503);
    ck_assert_int_eq(http_get(port, "/stats", &r), 0);
    char *error = strstr(r.body, "\"error\": \"");
    ck_assert_msg(error && strstr(error, cause), "cluster.error lacks '%s': %s", cause, r.body);
}

START_TEST(secured_counter_exact)
{
    secure_conf("ca.pem", "client", "turnstile", "right-password");
    cf_counter_exact(hardened.endpoints);
}
END_TEST

/* Each refusal: one error line naming the cause (and the file), 503s,
 * cluster.error; never a 200. */
static const struct {
    const char *cacert, *client, *user, *password;
    const char *log, *cause;
} refusals[] = {
    {"other-ca.pem", "client", "turnstile", "right-password", "other-ca.pem", "did not verify"},
    {"ca.pem", "client-expired", "turnstile", "right-password", "it expired on",
     "refused the client certificate"},
    {"ca.pem", "client-cn", "turnstile", "right-password", "CommonName", "CommonName"},
    {"ca.pem", "client", "turnstile", "wrong-password", "turnstile.password",
     "authentication failed"},
    {"ca.pem", "client", "stranger", "stranger-password", "permission denied", "permission denied"},
};

START_TEST(secured_refusals)
{
    secure_conf(refusals[_i].cacert, refusals[_i].client, refusals[_i].user, refusals[_i].password);
    start_refused(hardened.endpoints);
    bool logged = srv_log_wait(&cf_srv[0], refusals[_i].log, 20000);
    assert_refused(cf_srv[0].port, refusals[_i].cause);
    ck_assert_msg(logged, "no log line with '%s'", refusals[_i].log);
    ck_assert_int_eq(stat_value(cf_srv[0].port, "cluster.healthy"), 0);
    cf_stop_all();
}
END_TEST

/* etcd's simple token lives 1 s from its last use (the fixture's
 * --auth-token-ttl): each request after an idle second finds it expired
 * on some client, which renews it and sends again. No request fails. */
START_TEST(token_expiry_costs_no_request)
{
    struct resp r;
    secure_conf("ca.pem", "client", "turnstile", "right-password");
    cf_start_all(hardened.endpoints, "0");
    for (int k = 0; k < 6; k++) {
        /* Idle past the token's TTL: the wait is what is tested. */
        usleep(1500 * 1000);
        ck_assert_int_eq(http_get(cf_srv[k % NSRV].port, "/access", &r), 0);
        ck_assert_msg(r.status == 200, "request %d: %d %s", k, r.status, r.body);
        ck_assert_int_eq(access_n(&r), k + 1);
    }
    cf_assert_counter(6);
    cf_stop_all();
}
END_TEST

/* An expired client certificate is refused; the new one, installed and
 * SIGHUPed, is used by the next connection without a restart. */
START_TEST(rotated_certificate_after_sighup)
{
    struct resp r;
    secure_conf("ca.pem", "client-expired", "turnstile", "right-password");
    start_refused(hardened.endpoints);
    ck_assert(srv_log_wait(&cf_srv[0], "it expired on", 20000));
    assert_refused(cf_srv[0].port, "refused the client certificate");
    rotate_to("client");
    kill(cf_srv[0].pid, SIGHUP);
    ck_assert(srv_log_wait(&cf_srv[0], "read again", 10000));
    ck_assert_msg(wait_stat(cf_srv[0].port, "cluster.healthy", 1, 20000), "still refused");
    ck_assert_int_eq(http_get(cf_srv[0].port, "/access", &r), 0);
    ck_assert_int_eq(r.status, 200);
    cf_assert_counter(1);
    cf_stop_all();
}
END_TEST

/* A file that cannot be used at start is a configuration error: one line
 * naming it, exit status 2, nothing served. */
START_TEST(unusable_files_refused_at_start)
{
    static const struct {
        const char *flag, *value, *endpoints, *says;
    } bad[] = {
        {"--etcd-cacert", "/nonexistent/ca.pem", "https://127.0.0.1:1", "/nonexistent/ca.pem"},
        {"--etcd-cert", "rotated.pem", "https://127.0.0.1:1", "needs its key"},
        {"--etcd-cacert", "ca.pem", "http://127.0.0.1:1", "https://"},
        {"--etcd-user", "turnstile", "https://127.0.0.1:1", "--etcd-password-file"},
        {"--etcd-password-file", "/nonexistent/pw", "https://127.0.0.1:1", "--etcd-user"},
        {"--etcd-cacert", "ca.pem", "https://127.0.0.1:1,http://127.0.0.1:2", "not a mix"},
    };
    char out[512], err[1024];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *value = bad[i].value[0] == '/' ? bad[i].value : cert_file(bad[i].value);
        int status = run_binary(10000, out, sizeof(out), err, sizeof(err), "--port", "0", "--etcd",
                                bad[i].endpoints, bad[i].flag, value, NULL);
        ck_assert_msg(status == 2, "%s %s: exit %d", bad[i].flag, value, status);
        ck_assert_msg(strstr(err, bad[i].says), "%s: '%s'", bad[i].flag, err);
        ck_assert_msg(strchr(err, '\n') == err + strlen(err) - 1, "not one line: '%s'", err);
    }
}
END_TEST

/* ---- fixtures ---- */

static void hardened_start(void)
{
    ck_assert_int_eq(certs_make(certs, sizeof(certs)), 0);
    snprintf(conf, sizeof(conf), "%s/turnstile.conf", certs);
    snprintf(rot_cert, sizeof(rot_cert), "%s/rotated.pem", certs);
    snprintf(rot_key, sizeof(rot_key), "%s/rotated.key", certs);
    struct etcd_proc_opts o = {.certs = certs, .auth_token_ttl_s = 1};
    ck_assert_int_eq(etcd_proc_start_opts(&hardened, 1, &o, START_MS), 0);
    ck_assert_int_eq(etcd_proc_auth_enable(&hardened), 0);
    ck_assert_int_eq(etcd_proc_add_user(&hardened, "turnstile", "right-password", "/turnstile/"),
                     0);
    ck_assert_int_eq(etcd_proc_add_user(&hardened, "stranger", "stranger-password", "/elsewhere/"),
                     0);
}

static void hardened_stop(void)
{
    cf_stop_all();
    etcd_proc_stop(&hardened);
    certs_remove(certs);
}

int main(void)
{
    Suite *s = suite_create("cluster_secured");
    TCase *secured = tcase_create("secured");
    tcase_set_timeout(secured, 180);
    tcase_add_unchecked_fixture(secured, hardened_start, hardened_stop);
    tcase_add_checked_fixture(secured, NULL, cf_stop_all); /* a failed test's too */
    tcase_add_test(secured, secured_counter_exact);
    tcase_add_loop_test(secured, secured_refusals, 0, sizeof(refusals) / sizeof(refusals[0]));
    tcase_add_test(secured, token_expiry_costs_no_request);
    tcase_add_test(secured, rotated_certificate_after_sighup);
    tcase_add_test(secured, unusable_files_refused_at_start);
    suite_add_tcase(s, secured);
    return check_run(s);
}
