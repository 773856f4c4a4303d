/* Unit tests for server/cfg.c: defaults, every flag in both syntaxes, the
 * config file and its precedence, and the one-line error promise (stderr is
 * captured through a temporary file). */
#include <check.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_run.h"
#include "cfg.h"
#include "log.h"
#include "limits.h"

#ifndef TURNSTILE_VERSION
#define TURNSTILE_VERSION "0.1.0"
#endif

/* ---- helpers ---- */

/* Redirect a stdio stream's fd into a temporary file until capture_end. */
struct capture {
    FILE *stream;
    FILE *tmp;
    int saved;
};

static void capture_begin(struct capture *cap, FILE *stream)
{
    fflush(stream);
    cap->stream = stream;
    cap->tmp = tmpfile();
    ck_assert_ptr_nonnull(cap->tmp);
    cap->saved = dup(fileno(stream));
    ck_assert_int_ge(cap->saved, 0);
    ck_assert_int_ge(dup2(fileno(cap->tmp), fileno(stream)), 0);
}

/* Returns what was written, NUL-terminated; the caller frees it. */
static char *capture_end(struct capture *cap)
{
    fflush(cap->stream);
    ck_assert_int_ge(dup2(cap->saved, fileno(cap->stream)), 0);
    close(cap->saved);
    long len = ftell(cap->tmp);
    ck_assert_int_ge(len, 0);
    char *text = calloc(1, (size_t)len + 1);
    ck_assert_ptr_nonnull(text);
    rewind(cap->tmp);
    ck_assert_uint_eq(fread(text, 1, (size_t)len, cap->tmp), (size_t)len);
    fclose(cap->tmp);
    return text;
}

struct result {
    int rc;
    char *out; /* stdout */
    char *err; /* stderr */
};

static struct result parse_argv(struct cfg *c, char **argv)
{
    struct capture out, err;
    struct result r;
    int argc = 0;
    while (argv[argc])
        argc++;
    capture_begin(&out, stdout);
    capture_begin(&err, stderr);
    r.rc = cfg_parse(c, argc, argv);
    r.err = capture_end(&err);
    r.out = capture_end(&out);
    return r;
}

#define PARSE(c, ...) parse_argv((c), (char *[]){"turnstile", __VA_ARGS__, NULL})

static void result_free(struct result *r)
{
    free(r->out);
    free(r->err);
}

/* The error contract: exactly one line, starting "turnstile: ". */
static void assert_one_error_line(const char *err)
{
    size_t len = strlen(err);
    ck_assert_msg(strncmp(err, "turnstile: ", 11) == 0, "bad prefix: '%s'", err);
    ck_assert_msg(len > 11 && err[len - 1] == '\n', "no final newline: '%s'", err);
    ck_assert_msg(strchr(err, '\n') == err + len - 1, "more than one line: '%s'", err);
}

static void expect_usage_error(struct result r, const char *needle)
{
    ck_assert_int_eq(r.rc, -EINVAL);
    assert_one_error_line(r.err);
    ck_assert_msg(strstr(r.err, needle), "'%s' does not mention '%s'", r.err, needle);
    ck_assert_str_eq(r.out, "");
}

/* A temporary config file; path must hold 64 bytes. */
static void write_file(char *path, const char *text)
{
    strcpy(path, "/tmp/test_cfg_XXXXXX");
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    FILE *fp = fdopen(fd, "w");
    ck_assert_ptr_nonnull(fp);
    ck_assert_int_ge(fputs(text, fp), 0);
    ck_assert_int_eq(fclose(fp), 0);
}

/* Every long option; the help test checks --help mentions each and the
 * flag test checks cfg_parse knows each. */
static const char *const all_flags[] = {
    "bind",
    "port",
    "admin-listen",
    "delay-ms",
    "jitter-ms",
    "lock-timeout-ms",
    "max-waiters",
    "header-timeout-ms",
    "keepalive-timeout-ms",
    "send-timeout-ms",
    "drain-timeout-ms",
    "max-connections",
    "max-header-bytes",
    "max-headers",
    "max-body-bytes",
    "no-lock",
    "state-file",
    "log-level",
    "access-log",
    "config",
    "help",
    "version",
};
#define NFLAGS (sizeof(all_flags) / sizeof(all_flags[0]))

/* One value-taking flag, a value different from its default, and where it
 * lands. */
enum ftype { F_STR, F_UINT, F_U64, F_DBL };
struct flag_case {
    const char *flag;
    const char *value;
    enum ftype type;
    size_t off;
    double expect; /* numbers; strings compare with value */
};

#define AT(field) offsetof(struct cfg, field)
static const struct flag_case flag_cases[] = {
    {"bind", "0.0.0.0", F_STR, AT(bind), 0},
    {"port", "9090", F_UINT, AT(port), 9090},
    {"admin-listen", "[::1]:9091", F_STR, AT(admin_listen), 0},
    {"delay-ms", "0.25", F_DBL, AT(delay_ms), 0.25},
    {"jitter-ms", "12.5", F_DBL, AT(jitter_ms), 12.5},
    {"lock-timeout-ms", "750", F_DBL, AT(lock_timeout_ms), 750},
    {"max-waiters", "64", F_U64, AT(max_waiters), 64},
    {"header-timeout-ms", "2000", F_U64, AT(header_timeout_ms), 2000},
    {"keepalive-timeout-ms", "3000", F_U64, AT(keepalive_timeout_ms), 3000},
    {"send-timeout-ms", "4000", F_U64, AT(send_timeout_ms), 4000},
    {"drain-timeout-ms", "5000", F_U64, AT(drain_timeout_ms), 5000},
    {"max-connections", "123", F_U64, AT(max_connections), 123},
    {"max-header-bytes", "4096", F_U64, AT(max_header_bytes), 4096},
    {"max-headers", "50", F_U64, AT(max_headers), 50},
    {"max-body-bytes", "0", F_U64, AT(max_body), 0},
    {"state-file", "/tmp/x", F_STR, AT(state_file), 0},
    {"access-log", "-", F_STR, AT(access_log), 0},
    {"log-level", "debug", F_UINT, AT(log_level), LOG_LEVEL_DEBUG},
};
#define NCASES (sizeof(flag_cases) / sizeof(flag_cases[0]))

static void assert_field(const struct cfg *c, const struct flag_case *fc)
{
    const char *p = (const char *)c + fc->off;
    switch (fc->type) {
    case F_STR:
        ck_assert_str_eq(p, fc->value);
        break;
    case F_UINT:
        ck_assert_uint_eq(*(const unsigned *)(const void *)p, (unsigned)fc->expect);
        break;
    case F_U64:
        ck_assert_uint_eq(*(const uint64_t *)(const void *)p, (uint64_t)fc->expect);
        break;
    case F_DBL:
        ck_assert_double_eq(*(const double *)(const void *)p, fc->expect);
        break;
    }
}

static void assert_defaults(const struct cfg *c)
{
    ck_assert_str_eq(c->bind, LIMIT_BIND);
    ck_assert_uint_eq(c->port, LIMIT_PORT);
    ck_assert_double_eq(c->delay_ms, LIMIT_DELAY_MS);
    ck_assert_double_eq(c->jitter_ms, LIMIT_JITTER_MS);
    ck_assert_double_eq(c->lock_timeout_ms, LIMIT_LOCK_TIMEOUT_MS);
    ck_assert_uint_eq(c->max_waiters, LIMIT_MAX_WAITERS);
    ck_assert_uint_eq(c->header_timeout_ms, LIMIT_HEADER_TIMEOUT_MS);
    ck_assert_uint_eq(c->keepalive_timeout_ms, LIMIT_KEEPALIVE_TIMEOUT_MS);
    ck_assert_uint_eq(c->send_timeout_ms, LIMIT_SEND_TIMEOUT_MS);
    ck_assert_uint_eq(c->drain_timeout_ms, LIMIT_DRAIN_TIMEOUT_MS);
    ck_assert_uint_eq(c->max_connections, LIMIT_MAX_CONNECTIONS);
    ck_assert_uint_eq(c->max_header_bytes, LIMIT_MAX_HEADER_BYTES);
    ck_assert_uint_eq(c->max_headers, LIMIT_MAX_HEADERS);
    ck_assert_uint_eq(c->max_body, LIMIT_MAX_BODY);
    ck_assert(!c->no_lock);
    ck_assert_str_eq(c->config_path, "");
}

/* ---- defaults and flags ---- */

START_TEST(defaults_equal_limits)
{
    struct cfg c;
    memset(&c, 0xa5, sizeof(c));
    cfg_defaults(&c);
    assert_defaults(&c);

    /* No flags at all: cfg_parse starts from the same defaults. */
    memset(&c, 0xa5, sizeof(c));
    struct result r = parse_argv(&c, (char *[]){"turnstile", NULL});
    ck_assert_int_eq(r.rc, 0);
    ck_assert_str_eq(r.err, "");
    assert_defaults(&c);
    result_free(&r);
}
END_TEST

START_TEST(each_flag_both_syntaxes)
{
    for (size_t i = 0; i < NCASES; i++) {
        const struct flag_case *fc = &flag_cases[i];
        char flag[64], joined[128];
        struct cfg c;
        snprintf(flag, sizeof(flag), "--%s", fc->flag);
        snprintf(joined, sizeof(joined), "--%s=%s", fc->flag, fc->value);

        struct result r = PARSE(&c, flag, (char *)fc->value);
        ck_assert_msg(r.rc == 0, "%s %s: rc %d, stderr '%s'", flag, fc->value, r.rc, r.err);
        assert_field(&c, fc);
        result_free(&r);

        r = PARSE(&c, joined);
        ck_assert_msg(r.rc == 0, "%s: rc %d, stderr '%s'", joined, r.rc, r.err);
        assert_field(&c, fc);
        result_free(&r);
    }
}
END_TEST

START_TEST(no_lock_flag)
{
    struct cfg c;
    struct result r = PARSE(&c, "--no-lock");
    ck_assert_int_eq(r.rc, 0);
    ck_assert(c.no_lock);
    result_free(&r);
}
END_TEST

START_TEST(flags_combine_and_last_wins)
{
    struct cfg c;
    struct result r = PARSE(&c, "--port", "1", "--delay-ms=.5", "--no-lock", "--port=2");
    ck_assert_int_eq(r.rc, 0);
    ck_assert_uint_eq(c.port, 2);
    ck_assert_double_eq(c.delay_ms, 0.5);
    ck_assert(c.no_lock);
    result_free(&r);

    /* Stop getopt in the middle of "-hV": a parse that set optind = 1
     * instead of 0 would resume at the stale 'V' and print the version. */
    r = PARSE(&c, "-hV");
    ck_assert_int_eq(r.rc, CFG_EXIT_OK);
    result_free(&r);

    /* A second parse starts over: getopt state and the struct are reset. */
    r = PARSE(&c, "--jitter-ms", "3");
    ck_assert_int_eq(r.rc, 0);
    ck_assert_uint_eq(c.port, LIMIT_PORT);
    ck_assert_double_eq(c.jitter_ms, 3);
    ck_assert(!c.no_lock);
    result_free(&r);
}
END_TEST

START_TEST(fractional_delay)
{
    struct cfg c;
    struct result r = PARSE(&c, "--delay-ms", "0.25");
    ck_assert_int_eq(r.rc, 0);
    ck_assert_double_eq(c.delay_ms, 0.25);
    result_free(&r);

    r = PARSE(&c, "--delay-ms=2.5e1");
    ck_assert_int_eq(r.rc, 0);
    ck_assert_double_eq(c.delay_ms, 25);
    result_free(&r);
}
END_TEST

START_TEST(range_edges)
{
    static const struct {
        const char *arg;
        int rc;
    } cases[] = {
        {"--port=0", 0},
        {"--port=65535", 0},
        {"--port=65536", -EINVAL},
        {"--delay-ms=0", 0},
        {"--delay-ms=3600000", 0},
        {"--delay-ms=3600000.5", -EINVAL},
        {"--header-timeout-ms=0", -EINVAL},
        {"--header-timeout-ms=1", 0},
        {"--max-connections=0", -EINVAL},
        {"--max-connections=1000000", 0},
        {"--max-connections=1000001", -EINVAL},
        {"--max-header-bytes=511", -EINVAL},
        {"--max-header-bytes=512", 0},
        {"--max-header-bytes=1048576", 0},
        {"--max-header-bytes=1048577", -EINVAL},
        {"--max-headers=0", -EINVAL},
        {"--max-headers=10000", 0},
        {"--max-headers=10001", -EINVAL},
        {"--max-body-bytes=1073741824", 0},
        {"--max-body-bytes=1073741825", -EINVAL},
        {"--max-waiters=18446744073709551615", 0},
        {"--max-waiters=18446744073709551616", -EINVAL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct cfg c;
        struct result r = PARSE(&c, (char *)cases[i].arg);
        ck_assert_msg(r.rc == cases[i].rc, "%s: rc %d, want %d", cases[i].arg, r.rc, cases[i].rc);
        if (r.rc)
            assert_one_error_line(r.err);
        else
            ck_assert_str_eq(r.err, "");
        result_free(&r);
    }
}
END_TEST

/* ---- command-line errors ---- */

START_TEST(bad_numbers)
{
    static const struct {
        const char *flag, *value;
    } cases[] = {
        {"--port", "abc"},           {"--port", "-1"},
        {"--port", "70000"},         {"--port", ""},
        {"--port", " 80"},           {"--port", "+80"},
        {"--port", "80x"},           {"--port", "0x50"},
        {"--max-waiters", "-1"},     {"--delay-ms", "abc"},
        {"--delay-ms", "-1"},        {"--delay-ms", "1e400"},
        {"--delay-ms", "nan"},       {"--delay-ms", "inf"},
        {"--delay-ms", ""},          {"--delay-ms", "0x10"},
        {"--jitter-ms", "-0.5"},     {"--lock-timeout-ms", "1e400"},
        {"--max-body-bytes", "1.5"}, {"--bind", ""},
        {"--bind", "a b"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct cfg c;
        struct result r = PARSE(&c, (char *)cases[i].flag, (char *)cases[i].value);
        expect_usage_error(r, cases[i].flag);
        result_free(&r);
    }
}
END_TEST

START_TEST(bad_addresses)
{
    /* HOST:PORT, an IPv6 address in brackets ("::1:80" is ambiguous). */
    static const char *const bad[] = {"nope", "::1:80",  ":80",   "[]:80",
                                      "h:",   "h:70000", "h:+80", ""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct cfg c;
        struct result r = PARSE(&c, "--admin-listen", (char *)bad[i]);
        expect_usage_error(r, "--admin-listen: ");
        ck_assert_msg(strstr(r.err, "is not HOST:PORT"), "%s", r.err);
        result_free(&r);
    }
}
END_TEST

START_TEST(error_names_the_range)
{
    struct cfg c;
    struct result r = PARSE(&c, "--port", "70000");
    expect_usage_error(r, "--port: '70000' is not a whole number from 0 to 65535");
    result_free(&r);

    r = PARSE(&c, "--delay-ms=nan");
    expect_usage_error(r, "--delay-ms: 'nan' is not a number from 0 to 3600000");
    result_free(&r);
}
END_TEST

START_TEST(value_with_newline_stays_one_line)
{
    struct cfg c;
    struct result r = PARSE(&c, "--port", "1\n2");
    expect_usage_error(r, "--port");
    ck_assert_ptr_nonnull(strstr(r.err, "\\x0a"));
    result_free(&r);
}
END_TEST

START_TEST(unknown_option)
{
    struct cfg c;
    struct result r = PARSE(&c, "--bogus");
    expect_usage_error(r, "unknown option '--bogus'");
    result_free(&r);

    r = PARSE(&c, "--bogus=3");
    expect_usage_error(r, "'--bogus'");
    result_free(&r);

    r = PARSE(&c, "-x");
    expect_usage_error(r, "'-x'");
    result_free(&r);

    r = PARSE(&c, "--max", "3"); /* a prefix of several flags */
    expect_usage_error(r, "ambiguous option '--max'");
    result_free(&r);
}
END_TEST

START_TEST(missing_value)
{
    static const char *const flags[] = {"--port", "--bind", "--delay-ms", "--config"};
    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
        struct cfg c;
        struct result r = PARSE(&c, (char *)flags[i]);
        expect_usage_error(r, "needs a value");
        ck_assert_ptr_nonnull(strstr(r.err, flags[i]));
        result_free(&r);
    }
}
END_TEST

START_TEST(value_for_bare_flag)
{
    struct cfg c;
    struct result r = PARSE(&c, "--no-lock=1");
    expect_usage_error(r, "'--no-lock' does not take a value");
    result_free(&r);
}
END_TEST

START_TEST(positional_argument)
{
    struct cfg c;
    struct result r = PARSE(&c, "--port", "1", "serve");
    expect_usage_error(r, "unexpected argument 'serve'");
    result_free(&r);

    r = PARSE(&c, "--", "x");
    expect_usage_error(r, "'x'");
    result_free(&r);
}
END_TEST

/* ---- --help, --version ---- */

START_TEST(help_lists_every_flag)
{
    static const char *const forms[] = {"--help", "-h"};
    for (size_t f = 0; f < 2; f++) {
        struct cfg c;
        struct result r = PARSE(&c, (char *)forms[f]);
        ck_assert_int_eq(r.rc, CFG_EXIT_OK);
        ck_assert_str_eq(r.err, "");
        for (size_t i = 0; i < NFLAGS; i++) {
            char flag[64];
            snprintf(flag, sizeof(flag), "--%s", all_flags[i]);
            ck_assert_msg(strstr(r.out, flag), "--help does not mention %s", flag);
        }
        static const char *const musts[] = {
            "Listening:",
            "The resource:",
            "Limits:",
            "Other:",
            "config-file key",
            "lost updates",
            "(default 127.0.0.1)",
            "(default 8080)",
            "(default 10000)",
        };
        for (size_t i = 0; i < sizeof(musts) / sizeof(musts[0]); i++)
            ck_assert_msg(strstr(r.out, musts[i]), "--help does not say '%s'", musts[i]);
        result_free(&r);
    }
}
END_TEST

START_TEST(every_flag_is_known)
{
    /* The list the help test checks is the list getopt accepts. */
    for (size_t i = 0; i < NFLAGS; i++) {
        char flag[64];
        snprintf(flag, sizeof(flag), "--%s", all_flags[i]);
        struct cfg c;
        struct result r = PARSE(&c, flag);
        ck_assert_msg(!strstr(r.err, "unknown option"), "%s: %s", flag, r.err);
        result_free(&r);
    }
}
END_TEST

START_TEST(version)
{
    static const char *const forms[] = {"--version", "-V"};
    for (size_t f = 0; f < 2; f++) {
        struct cfg c;
        struct result r = PARSE(&c, (char *)forms[f]);
        ck_assert_int_eq(r.rc, CFG_EXIT_OK);
        ck_assert_str_eq(r.out, "turnstile " TURNSTILE_VERSION "\n");
        ck_assert_str_eq(r.err, "");
        result_free(&r);
    }
}
END_TEST

START_TEST(usage_to_any_stream)
{
    struct capture cap;
    capture_begin(&cap, stderr);
    cfg_usage(stderr);
    char *text = capture_end(&cap);
    ck_assert_ptr_nonnull(strstr(text, "Usage: turnstile"));
    free(text);
}
END_TEST

/* ---- config file ---- */

START_TEST(file_then_flags_override)
{
    char path[64];
    write_file(path, "bind = 0.0.0.0\n"
                     "port = 9000\n"
                     "delay-ms = 2.5\n"
                     "no-lock = true\n");
    struct cfg c;
    struct result r = PARSE(&c, "--config", path, "--port", "1");
    ck_assert_msg(r.rc == 0, "rc %d: %s", r.rc, r.err);
    ck_assert_str_eq(c.bind, "0.0.0.0");
    ck_assert_uint_eq(c.port, 1);
    ck_assert_double_eq(c.delay_ms, 2.5);
    ck_assert(c.no_lock);
    ck_assert_str_eq(c.config_path, path);
    result_free(&r);

    /* Flags win even when they come before --config. */
    char joined[80];
    snprintf(joined, sizeof(joined), "--config=%s", path);
    r = PARSE(&c, "--port=2", joined);
    ck_assert_int_eq(r.rc, 0);
    ck_assert_uint_eq(c.port, 2);
    ck_assert_double_eq(c.delay_ms, 2.5);
    result_free(&r);
    unlink(path);
}
END_TEST

START_TEST(file_key_forms)
{
    char path[64];
    write_file(path, "delay_ms = 7\n"
                     "jitter-ms = 8\n"
                     "max_body_bytes = 100\n"
                     "Max-Headers = 9\n"
                     "no_lock = yes\n");
    struct cfg c;
    cfg_defaults(&c);
    int rc = cfg_load_file(&c, path);
    unlink(path); /* now, so a failed assertion leaves no file behind */
    ck_assert_int_eq(rc, 0);
    ck_assert_double_eq(c.delay_ms, 7);
    ck_assert_double_eq(c.jitter_ms, 8);
    ck_assert_uint_eq(c.max_body, 100);
    ck_assert_uint_eq(c.max_headers, 9);
    ck_assert(c.no_lock);
}
END_TEST

START_TEST(file_bool_values)
{
    static const struct {
        const char *text;
        bool value;
    } cases[] = {
        {"true", true},   {"yes", true}, {"1", true},  {"on", true},
        {"false", false}, {"no", false}, {"0", false}, {"off", false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char path[64], text[64];
        snprintf(text, sizeof(text), "no-lock = %s\n", cases[i].text);
        write_file(path, text);
        struct cfg c;
        cfg_defaults(&c);
        c.no_lock = !cases[i].value;
        int rc = cfg_load_file(&c, path);
        unlink(path);
        ck_assert_int_eq(rc, 0);
        ck_assert_msg(c.no_lock == cases[i].value, "no-lock = %s", cases[i].text);
    }
}
END_TEST

START_TEST(file_section)
{
    char path[64];
    write_file(path, "; turnstile settings\n"
                     "[turnstile]\n"
                     "    port = 9100\n"
                     "    delay-ms = 1 ; inline comment\n"
                     "\t# indented comment\n");
    struct cfg c;
    cfg_defaults(&c);
    int rc = cfg_load_file(&c, path);
    unlink(path);
    ck_assert_int_eq(rc, 0);
    ck_assert_uint_eq(c.port, 9100);
    ck_assert_double_eq(c.delay_ms, 1);
}
END_TEST

/* Load path into defaults; expect failure, one stderr line containing
 * "PATH:LINE" and needle, and an untouched struct. */
static void expect_file_error(const char *text, int line, const char *needle)
{
    char path[64], where[96];
    write_file(path, text);
    struct cfg c;
    cfg_defaults(&c);
    struct capture cap;
    capture_begin(&cap, stderr);
    int rc = cfg_load_file(&c, path);
    char *err = capture_end(&cap);
    unlink(path);
    ck_assert_int_eq(rc, -EINVAL);
    assert_one_error_line(err);
    snprintf(where, sizeof(where), "turnstile: %s:%d: ", path, line);
    ck_assert_msg(strncmp(err, where, strlen(where)) == 0, "'%s' does not start '%s'", err, where);
    ck_assert_msg(strstr(err, needle), "'%s' does not mention '%s'", err, needle);
    assert_defaults(&c); /* a bad file changes nothing */
    free(err);
}

START_TEST(file_unknown_key)
{
    expect_file_error("port = 9000\n\nbogus = 1\n", 3, "unknown key 'bogus'");
}
END_TEST

START_TEST(file_bad_values)
{
    expect_file_error("delay-ms = 5\nport = 70000\n", 2, "from 0 to 65535");
    expect_file_error("max-body-bytes =\n", 1, "max-body-bytes");
    expect_file_error("delay_ms = nan\n", 1, "delay_ms");
    expect_file_error("no-lock = maybe\n", 1, "no-lock");
    expect_file_error("[turnstile]\nport = -1\n", 2, "port");
}
END_TEST

START_TEST(file_other_errors)
{
    expect_file_error("[server]\nport = 1\n", 2, "unknown section [server]");
    expect_file_error("port = 1\nnot a pair\n", 2, "expected");
    expect_file_error("config = other.ini\n", 1, "only on the command line");
    /* A syntax error before a bad key is the one reported. */
    expect_file_error("junk\nbogus = 1\n", 1, "expected");
}
END_TEST

START_TEST(file_missing)
{
    struct cfg c;
    cfg_defaults(&c);
    struct capture cap;
    capture_begin(&cap, stderr);
    int rc = cfg_load_file(&c, "/nonexistent/turnstile.ini");
    char *err = capture_end(&cap);
    ck_assert_int_eq(rc, -EINVAL);
    ck_assert_str_eq(err, "turnstile: /nonexistent/turnstile.ini: No such file or directory\n");
    free(err);

    /* Through --config: the same line, and the caller exits 2. */
    struct result r = PARSE(&c, "--config", "/nonexistent/turnstile.ini");
    expect_usage_error(r, "/nonexistent/turnstile.ini: No such file or directory");
    result_free(&r);

    r = PARSE(&c, "--config=");
    expect_usage_error(r, "--config");
    result_free(&r);
}
END_TEST

START_TEST(file_is_directory)
{
    struct cfg c;
    struct result r = PARSE(&c, "--config", "/tmp");
    expect_usage_error(r, "/tmp: ");
    result_free(&r);
}
END_TEST

static Suite *cfg_suite(void)
{
    Suite *s = suite_create("cfg");
    TCase *tc = tcase_create("flags");
    tcase_add_test(tc, defaults_equal_limits);
    tcase_add_test(tc, each_flag_both_syntaxes);
    tcase_add_test(tc, no_lock_flag);
    tcase_add_test(tc, flags_combine_and_last_wins);
    tcase_add_test(tc, fractional_delay);
    tcase_add_test(tc, range_edges);
    tcase_add_test(tc, bad_numbers);
    tcase_add_test(tc, bad_addresses);
    tcase_add_test(tc, error_names_the_range);
    tcase_add_test(tc, value_with_newline_stays_one_line);
    tcase_add_test(tc, unknown_option);
    tcase_add_test(tc, missing_value);
    tcase_add_test(tc, value_for_bare_flag);
    tcase_add_test(tc, positional_argument);
    tcase_add_test(tc, help_lists_every_flag);
    tcase_add_test(tc, every_flag_is_known);
    tcase_add_test(tc, version);
    tcase_add_test(tc, usage_to_any_stream);
    suite_add_tcase(s, tc);

    tc = tcase_create("file");
    tcase_add_test(tc, file_then_flags_override);
    tcase_add_test(tc, file_key_forms);
    tcase_add_test(tc, file_bool_values);
    tcase_add_test(tc, file_section);
    tcase_add_test(tc, file_unknown_key);
    tcase_add_test(tc, file_bad_values);
    tcase_add_test(tc, file_other_errors);
    tcase_add_test(tc, file_missing);
    tcase_add_test(tc, file_is_directory);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return check_run(cfg_suite());
}
