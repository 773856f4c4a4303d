/* cfg: defaults, INI file, command line -- in that order.
 *
 * One table describes every flag: its name, type, range, default group and
 * help text (a row is a struct opt: opt.c reads, compares and shows it). getopt's long options, the
 * config-file keys, the --help text and the range in every error message all come from it, so they
 * cannot drift apart. Errors are one line on stderr, never more: scripts and humans both read the
 * first line. */
#include "cfg.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ini.h>

#include "limits.h"
#include "log.h"
#include "opt.h"

#ifndef TURNSTILE_VERSION
#define TURNSTILE_VERSION "0.1.0"
#endif

/* Upper bounds we add so that ms -> us conversions elsewhere can never
 * overflow: an hour of simulated work, a day for any timeout. */
#define MAX_DELAY_MS   3600000.0
#define MAX_TIMEOUT_MS 86400000u

/* opt.h sizes text fields by their kind. */
#define FIELD_SIZE(f) sizeof(((struct cfg *)0)->f)
_Static_assert(FIELD_SIZE(bind) == OPT_STR_SIZE && FIELD_SIZE(etcd) == OPT_STR_SIZE &&
                   FIELD_SIZE(cluster) == OPT_STR_SIZE &&
                   FIELD_SIZE(admin_listen) == OPT_STR_SIZE &&
                   FIELD_SIZE(etcd_user) == OPT_STR_SIZE,
               "OPT_STR fields");
_Static_assert(FIELD_SIZE(state_file) == OPT_PATH_SIZE && FIELD_SIZE(access_log) == OPT_PATH_SIZE &&
                   FIELD_SIZE(config_path) == OPT_PATH_SIZE &&
                   FIELD_SIZE(etcd_cacert) == OPT_PATH_SIZE &&
                   FIELD_SIZE(etcd_cert) == OPT_PATH_SIZE &&
                   FIELD_SIZE(etcd_key) == OPT_PATH_SIZE &&
                   FIELD_SIZE(etcd_password_file) == OPT_PATH_SIZE,
               "OPT_PATH fields");
#undef FIELD_SIZE

/* The sections of --help, in order. */
enum group { G_LISTEN, G_RESOURCE, G_CLUSTER, G_LIMITS, G_OTHER, G_COUNT };

#define U(field, lo, hi) .off = offsetof(struct cfg, field), .umin = (lo), .umax = (hi)
#define D(field, lo, hi) .off = offsetof(struct cfg, field), .dmin = (lo), .dmax = (hi)

static const struct opt opts[] = {
    {"bind", 0, OPT_STR, G_LISTEN, .off = offsetof(struct cfg, bind), .arg = "ADDR",
     .help = "address to listen on", .restart = true},
    {"port", 0, OPT_UINT, G_LISTEN, U(port, 0, 65535), .arg = "N",
     .help = "TCP port, 0 = any free port", .restart = true},
    {"admin-listen", 0, OPT_ADDR, G_LISTEN, .off = offsetof(struct cfg, admin_listen),
     .arg = "ADDR:PORT",
     .help = "serve /stats, /metrics, /events and\n"
             "the page here, and only /access on\n"
             "the main port; [IPv6]:PORT; port 0 =\n"
             "any free port",
     .restart = true},

    {"delay-ms", 0, OPT_MS, G_RESOURCE, D(delay_ms, 0, MAX_DELAY_MS), .arg = "MS",
     .help = "simulated work inside the lock;\n"
             "fractions allowed"},
    {"jitter-ms", 0, OPT_MS, G_RESOURCE, D(jitter_ms, 0, MAX_DELAY_MS), .arg = "MS",
     .help = "adds a random 0..MS to each delay"},
    {"lock-timeout-ms", 0, OPT_MS, G_RESOURCE, D(lock_timeout_ms, 0, MAX_TIMEOUT_MS), .arg = "MS",
     .help = "wait for the lock at most MS, then\n"
             "503; 0 = forever"},
    {"max-waiters", 0, OPT_U64, G_RESOURCE, U(max_waiters, 0, UINT64_MAX), .arg = "N",
     .help = "longest lock queue, then 503;\n"
             "0 = unbounded"},
    {"idempotency-retention-ms", 0, OPT_U64, G_RESOURCE,
     U(idem_retention_ms, 1, 30 * (uint64_t)MAX_TIMEOUT_MS), .arg = "MS",
     .help = "an Idempotency-Key's repeat within MS\n"
             "gets the first answer, not a new N"},
    {"idempotency-max-keys", 0, OPT_U64, G_RESOURCE, U(idem_max_keys, 1, 100000000), .arg = "N",
     .help = "keys remembered at most, oldest out\n"
             "first (approximate in cluster mode)"},
    {"state-file", 0, OPT_PATH, G_RESOURCE, .off = offsetof(struct cfg, state_file), .arg = "PATH",
     .help = "keep the counter in PATH: it survives\n"
             "restarts and crashes; a reply says N\n"
             "only once N is on disk",
     .restart = true},
    {"no-lock", 0, OPT_BOOL, G_RESOURCE, .off = offsetof(struct cfg, no_lock),
     .help = "DEMONSTRATION ONLY: skip the lock, so\n"
             "concurrent updates get lost",
     .restart = true},

    {"etcd", 0, OPT_STR, G_CLUSTER, .off = offsetof(struct cfg, etcd), .arg = "URLS",
     .help = "cluster mode: keep the counter and the\n"
             "lock in etcd, shared by every instance\n"
             "given the same etcd and --cluster;\n"
             "comma-separated http://IP:PORT, or\n"
             "https://IP:PORT for TLS",
     .restart = true},
    {"cluster", 0, OPT_STR, G_CLUSTER, .off = offsetof(struct cfg, cluster), .arg = "NAME",
     .help = "the cluster's keys: /turnstile/NAME/", .restart = true},
    {"lease-ttl-ms", 0, OPT_U64, G_CLUSTER, U(lease_ttl_ms, 1000, 3600000), .arg = "MS",
     .help = "a dead or cut-off instance's requests\n"
             "leave the queue within this",
     .restart = true},
    {"compact-interval-ms", 0, OPT_U64, G_CLUSTER, U(compact_interval_ms, 0, MAX_TIMEOUT_MS),
     .arg = "MS",
     .help = "compact etcd's history this often,\n"
             "keeping one interval of it; 0 = never",
     .restart = true},
    {"etcd-quota-bytes", 0, OPT_U64, G_CLUSTER, U(etcd_quota_bytes, 0, 1ull << 40), .arg = "BYTES",
     .help = "etcd's --quota-backend-bytes, for the\n"
             "page's db size bar (0: unknown)",
     .restart = true},
    {"etcd-cacert", 0, OPT_PATH, G_CLUSTER, .off = offsetof(struct cfg, etcd_cacert), .arg = "FILE",
     .help = "https: the CA that must have signed\n"
             "etcd's certificate (PEM); without it,\n"
             "the system's trust store",
     .restart = true},
    {"etcd-cert", 0, OPT_PATH, G_CLUSTER, .off = offsetof(struct cfg, etcd_cert), .arg = "FILE",
     .help = "https: the client certificate to show\n"
             "etcd (PEM); re-read on SIGHUP",
     .restart = true},
    {"etcd-key", 0, OPT_PATH, G_CLUSTER, .off = offsetof(struct cfg, etcd_key), .arg = "FILE",
     .help = "https: that certificate's key (PEM)", .restart = true},
    {"etcd-user", 0, OPT_STR, G_CLUSTER, .off = offsetof(struct cfg, etcd_user), .arg = "NAME",
     .help = "etcd's auth: the user (its role must\n"
             "cover /turnstile/NAME/)",
     .restart = true},
    {"etcd-password-file", 0, OPT_PATH, G_CLUSTER, .off = offsetof(struct cfg, etcd_password_file),
     .arg = "FILE",
     .help = "that user's password: the file's first\n"
             "line; re-read on SIGHUP",
     .restart = true},

    {"header-timeout-ms", 0, OPT_U64, G_LIMITS, U(header_timeout_ms, 1, MAX_TIMEOUT_MS),
     .arg = "MS", .help = "request head deadline (408)"},
    {"keepalive-timeout-ms", 0, OPT_U64, G_LIMITS, U(keepalive_timeout_ms, 1, MAX_TIMEOUT_MS),
     .arg = "MS", .help = "idle time between requests"},
    {"send-timeout-ms", 0, OPT_U64, G_LIMITS, U(send_timeout_ms, 1, MAX_TIMEOUT_MS), .arg = "MS",
     .help = "cut a client that stops reading"},
    {"drain-timeout-ms", 0, OPT_U64, G_LIMITS, U(drain_timeout_ms, 1, MAX_TIMEOUT_MS), .arg = "MS",
     .help = "grace period on SIGINT/SIGTERM"},
    {"threads", 0, OPT_UINT, G_LIMITS, U(threads, 0, 1024), .arg = "N",
     .help = "event loops, each on a thread of its\n"
             "own; 0 = one per core",
     .restart = true},
    {"max-connections", 0, OPT_U64, G_LIMITS, U(max_connections, 1, 1000000), .arg = "N",
     .help = "connections, then accept pauses"},
    {"max-header-bytes", 0, OPT_U64, G_LIMITS, U(max_header_bytes, 512, 1048576), .arg = "N",
     .help = "request line + headers (431/414)"},
    {"max-headers", 0, OPT_U64, G_LIMITS, U(max_headers, 1, 10000), .arg = "N",
     .help = "header fields per request (431)"},
    {"max-body-bytes", 0, OPT_U64, G_LIMITS, U(max_body, 0, 1u << 30), .arg = "N",
     .help = "request body, discarded (413)"},

    {"log-level", 0, OPT_LEVEL, G_OTHER, .off = offsetof(struct cfg, log_level), .arg = "LEVEL",
     .help = "error, warn, info or debug: what goes\n"
             "to stderr, one line per event"},
    {"access-log", 0, OPT_PATH, G_OTHER, .off = offsetof(struct cfg, access_log), .arg = "PATH",
     .help = "one line per request (Common Log\n"
             "Format + lock wait); '-' = stdout"},
    {"config", 0, OPT_CONFIG, G_OTHER, .off = offsetof(struct cfg, config_path), .arg = "FILE",
     .help = "INI file read before the flags"},
    {"help", 'h', OPT_HELP, G_OTHER, .help = "print this help and exit"},
    {"version", 'V', OPT_VERSION, G_OTHER, .help = "print the version and exit"},
};

#undef U
#undef D

#define NOPTS       (sizeof(opts) / sizeof(opts[0]))
#define GETOPT_BASE 0x100 /* getopt val of opts[i] is GETOPT_BASE + i: clear of chars */
/* Leading ':' makes getopt tell a missing value (':') from an unknown
 * option ('?'); GNU permutation moves positionals to the end. */
#define SHORTOPTS ":hV"

static const char *const group_names[G_COUNT] = {"Listening", "The resource", "Cluster mode (etcd)",
                                                 "Limits", "Other"};

void cfg_defaults(struct cfg *c)
{
    memset(c, 0, sizeof(*c));
    snprintf(c->bind, sizeof(c->bind), "%s", LIMIT_BIND);
    c->port = LIMIT_PORT;
    c->admin_listen[0] = '\0';
    c->delay_ms = LIMIT_DELAY_MS;
    c->jitter_ms = LIMIT_JITTER_MS;
    c->lock_timeout_ms = LIMIT_LOCK_TIMEOUT_MS;
    c->max_waiters = LIMIT_MAX_WAITERS;
    c->header_timeout_ms = LIMIT_HEADER_TIMEOUT_MS;
    c->keepalive_timeout_ms = LIMIT_KEEPALIVE_TIMEOUT_MS;
    c->send_timeout_ms = LIMIT_SEND_TIMEOUT_MS;
    c->drain_timeout_ms = LIMIT_DRAIN_TIMEOUT_MS;
    c->max_connections = LIMIT_MAX_CONNECTIONS;
    c->threads = LIMIT_THREADS;
    c->max_header_bytes = LIMIT_MAX_HEADER_BYTES;
    c->max_headers = LIMIT_MAX_HEADERS;
    c->max_body = LIMIT_MAX_BODY;
    c->idem_retention_ms = LIMIT_IDEM_RETENTION_MS;
    c->idem_max_keys = LIMIT_IDEM_MAX_KEYS;
    c->no_lock = false;
    c->state_file[0] = '\0';
    c->etcd[0] = '\0';
    snprintf(c->cluster, sizeof(c->cluster), "%s", LIMIT_CLUSTER_NAME);
    c->lease_ttl_ms = LIMIT_LEASE_TTL_MS;
    c->compact_interval_ms = LIMIT_COMPACT_INTERVAL_MS;
    c->etcd_quota_bytes = LIMIT_ETCD_QUOTA_BYTES;
    c->log_level = LOG_LEVEL_INFO;
    c->access_log[0] = '\0';
    c->config_path[0] = '\0';
}

/* ---- error lines ---- */

/* The last error, and whether to print it (not during a reload: the
 * server logs it). */
static char last_error[1024];
static bool quiet;

/* The one line on stderr. Everything that fails ends up here, so "exactly
 * one line" holds by construction. */
__attribute__((format(printf, 1, 2))) static int fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof(last_error), fmt, ap);
    va_end(ap);
    if (!quiet)
        fprintf(stderr, "turnstile: %s\n", last_error);
    return -EINVAL;
}

const char *cfg_error(void)
{
    return last_error;
}

/* ---- values ---- */

/* ---- config file ---- */

struct file_ctx {
    struct cfg *c;
    FILE *fp;
    int line; /* physical line inih is working on */
    int read_errno;
    int err_line;  /* first error, 0 = none */
    char err[512]; /* its text, after "FILE:LINE: " */
};

__attribute__((format(printf, 2, 3))) static int file_error(struct file_ctx *f, const char *fmt,
                                                            ...)
{
    va_list ap;
    if (f->err_line)
        return 0; /* keep the first: it is the one to fix first */
    f->err_line = f->line;
    va_start(ap, fmt);
    vsnprintf(f->err, sizeof(f->err), fmt, ap);
    va_end(ap);
    return 0; /* inih: handler failed */
}

/* fgets for inih that knows the line number (Debian's inih does not pass it
 * to the handler), stops at our first error, and rejects lines longer than
 * inih's buffer, which inih would otherwise split into bogus "lines".
 * It also drops leading blanks: inih reads an indented line as the
 * continuation of the previous value, so "  port = 1" under "  bind = x"
 * would set bind to "port = 1". Keys indented under [turnstile] must work. */
static char *file_reader(char *buf, int size, void *stream)
{
    struct file_ctx *f = stream;
    if (f->err_line)
        return NULL;
    errno = 0;
    if (!fgets(buf, size, f->fp)) {
        if (ferror(f->fp))
            f->read_errno = errno ? errno : EIO;
        return NULL;
    }
    f->line++;
    size_t n = strlen(buf);
    if (n + 1 == (size_t)size && buf[n - 1] != '\n') {
        file_error(f, "line longer than %d characters", size - 2);
        return NULL;
    }
    size_t blanks = strspn(buf, " \t");
    memmove(buf, buf + blanks, n - blanks + 1);
    return buf;
}

static int file_handler(void *user, const char *section, const char *name, const char *value)
{
    struct file_ctx *f = user;
    char shown[80], err[400];

    if (section[0] && strcasecmp(section, "turnstile") != 0)
        return file_error(f, "key '%s' in unknown section [%s] (use [turnstile] or none)",
                          opt_show(name, shown, sizeof(shown)), section);
    const struct opt *o = opt_find_key(opts, NOPTS, name);
    if (!o)
        return file_error(f, "unknown key '%s' (keys are the flags of --help, without --)",
                          opt_show(name, shown, sizeof(shown)));
    if (o->kind >= OPT_CONFIG)
        return file_error(f, "'%s' works only on the command line", o->name);
    if (opt_set(f->c, o, value ? value : "", err, sizeof(err)) < 0)
        return file_error(f, "%s: %s", opt_show(name, shown, sizeof(shown)), err);
    return 1;
}

int cfg_load_file(struct cfg *c, const char *path)
{
    /* Work on a copy: a file with an error changes nothing. */
    struct cfg next = *c;
    struct file_ctx f = {.c = &next};
    char shown[300];

    if (!path[0])
        return fail("--config: the file name is empty");
    if (strlen(path) >= sizeof(c->config_path))
        return fail("%s: %s", opt_show(path, shown, sizeof(shown)), strerror(ENAMETOOLONG));
    f.fp = fopen(path, "r");
    if (!f.fp)
        return fail("%s: %s", opt_show(path, shown, sizeof(shown)), strerror(errno));
    int rc = ini_parse_stream(file_reader, &f, file_handler, &f);
    fclose(f.fp);

    opt_show(path, shown, sizeof(shown));
    if (f.read_errno)
        return fail("%s: %s", shown, strerror(f.read_errno));
    /* inih returns the first bad line, ours or a syntax error before it. */
    if (rc > 0 && (!f.err_line || rc < f.err_line))
        return fail("%s:%d: expected 'key = value' or '[section]'", shown, rc);
    if (f.err_line)
        return fail("%s:%d: %s", shown, f.err_line, f.err);
    if (rc < 0)
        return fail("%s: %s", shown, strerror(ENOMEM));
    memcpy(next.config_path, path, strlen(path) + 1);
    *c = next;
    return 0;
}

/* ---- command line ---- */

static const struct opt *opt_by_val(int val)
{
    if (val >= GETOPT_BASE && val < GETOPT_BASE + (int)NOPTS)
        return &opts[val - GETOPT_BASE];
    for (size_t i = 0; i < NOPTS; i++) {
        if (opts[i].short_name && opts[i].short_name == val)
            return &opts[i];
    }
    return NULL;
}

static void build_longopts(struct option *lo)
{
    for (size_t i = 0; i < NOPTS; i++) {
        lo[i] = (struct option){opts[i].name, opts[i].arg ? required_argument : no_argument, NULL,
                                GETOPT_BASE + (int)i};
    }
    lo[NOPTS] = (struct option){0};
}

/* How many flags start with this (getopt takes unique abbreviations). */
static size_t count_prefixed(const char *word, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < NOPTS; i++)
        n += strncmp(opts[i].name, word, len) == 0;
    return n;
}

/* Turn getopt's silent '?' or ':' into our one line. */
static int bad_option(int ch, char **argv)
{
    const struct opt *o = opt_by_val(optopt);
    char shown[80];

    if (ch == ':' && o)
        return fail("option '--%s' needs a value (see --help)", o->name);
    if (o)
        return fail("option '--%s' does not take a value (see --help)", o->name);
    if (optopt)
        return fail("unknown option '-%s' (see --help)",
                    opt_show((char[]){(char)optopt, '\0'}, shown, sizeof(shown)));
    /* An unknown or ambiguous long option: getopt has stepped past it. */
    const char *word = argv[optind - 1];
    size_t len = strcspn(word, "=");
    char name[64];
    snprintf(name, sizeof(name), "%.*s", (int)(len < 63 ? len : 63), word);
    opt_show(name, shown, sizeof(shown));
    if (len > 2 && count_prefixed(word + 2, len - 2) > 1)
        return fail("ambiguous option '%s' (see --help)", shown);
    return fail("unknown option '%s' (see --help)", shown);
}

/* Pass 1: syntax, --help, --version, and which --config (the last one). */
static int scan_args(int argc, char **argv, const struct option *lo, const char **config)
{
    int ch;
    optind = 0; /* 0, not 1: GNU getopt then fully re-initialises */
    opterr = 0;
    while ((ch = getopt_long(argc, argv, SHORTOPTS, lo, NULL)) != -1) {
        const struct opt *o = opt_by_val(ch);
        if (!o)
            return bad_option(ch, argv);
        if (o->kind == OPT_HELP) {
            cfg_usage(stdout);
            return CFG_EXIT_OK;
        }
        if (o->kind == OPT_VERSION) {
            printf("turnstile %s\n", TURNSTILE_VERSION);
            return CFG_EXIT_OK;
        }
        if (o->kind == OPT_CONFIG)
            *config = optarg;
    }
    if (optind < argc) {
        char shown[80];
        return fail("unexpected argument '%s' (see --help)",
                    opt_show(argv[optind], shown, sizeof(shown)));
    }
    return 0;
}

/* Pass 2: every value, in order, on top of defaults and file. */
static int apply_args(struct cfg *c, int argc, char **argv, const struct option *lo)
{
    char err[400];
    int ch;
    optind = 0;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, SHORTOPTS, lo, NULL)) != -1) {
        const struct opt *o = opt_by_val(ch);
        if (!o)
            return bad_option(ch, argv); /* pass 1 saw it first; kept for safety */
        if (o->kind == OPT_BOOL)
            *(bool *)(void *)((char *)c + o->off) = true;
        else if (o->kind < OPT_BOOL && opt_set(c, o, optarg, err, sizeof(err)) < 0)
            return fail("--%s: %s", o->name, err);
    }
    return 0;
}

int cfg_parse(struct cfg *c, int argc, char **argv)
{
    struct option lo[NOPTS + 1];
    const char *config = NULL;

    cfg_defaults(c);
    if (argc < 1 || !argv)
        return 0;
    build_longopts(lo);
    int rc = scan_args(argc, argv, lo, &config);
    if (rc)
        return rc;
    if (config && cfg_load_file(c, config) < 0)
        return -EINVAL;
    return apply_args(c, argc, argv, lo);
}

int cfg_reparse(struct cfg *c, int argc, char **argv)
{
    quiet = true;
    int rc = cfg_parse(c, argc, argv);
    quiet = false;
    return rc;
}

unsigned cfg_keep_restart_settings(const struct cfg *running, struct cfg *next,
                                   void (*report)(const char *key, void *arg), void *arg)
{
    unsigned kept = 0;
    for (size_t i = 0; i < NOPTS; i++) {
        const struct opt *o = &opts[i];
        if (!o->restart || opt_same(o, running, next))
            continue;
        report(o->name, arg);
        opt_copy(o, next, running);
        kept++;
    }
    return kept;
}

/* ---- --help ---- */

void cfg_usage(FILE *out)
{
    struct cfg d;
    cfg_defaults(&d);
    fputs("Usage: turnstile [OPTION]...\n"
          "Serve GET /access (a counter updated under a fair FIFO lock) and GET /stats.\n",
          out);
    for (int g = 0; g < G_COUNT; g++) {
        fprintf(out, "\n%s:\n", group_names[g]);
        for (size_t i = 0; i < NOPTS; i++) {
            if (opts[i].group == g)
                opt_usage(out, &opts[i], &d);
        }
    }
    fputs("\nValues go as '--flag VALUE' or '--flag=VALUE'. Every flag except --config,\n"
          "--help and --version is also a config-file key: drop the '--' and write '-' or\n"
          "'_' (delay-ms = 250 or delay_ms = 250), at top level or in a [turnstile]\n"
          "section; no-lock takes true or false. Flags override the file.\n"
          "\n"
          "--no-lock exists to demonstrate lost updates: without the lock, concurrent\n"
          "GET /access requests read the same count and the counter falls behind.\n"
          "\n"
          "Exit status: 0 after a clean shutdown (SIGINT/SIGTERM), 1 on a runtime\n"
          "failure, 2 on a usage or config error.\n",
          out);
}
