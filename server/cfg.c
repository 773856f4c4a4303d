/* cfg: defaults, INI file, command line -- in that order.
 *
 * One table describes every flag: its name, type, range, default group and
 * help text. getopt's long options, the config-file keys, the --help text
 * and the range in every error message all come from it, so they cannot
 * drift apart. Errors are one line on stderr, never more: scripts and
 * humans both read the first line. */
#include "cfg.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ini.h>

#include "limits.h"
#include "log.h"

#ifndef TURNSTILE_VERSION
#define TURNSTILE_VERSION "0.1.0"
#endif

/* Upper bounds we add so that ms -> us conversions elsewhere can never
 * overflow: an hour of simulated work, a day for any timeout. */
#define MAX_DELAY_MS   3600000.0
#define MAX_TIMEOUT_MS 86400000u

/* Order matters: value kinds first, then the flags that are not file keys. */
enum kind {
    K_STR,     /* char[256], non-empty, printable */
    K_PATH,    /* char[4096], non-empty, no control bytes */
    K_UINT,    /* unsigned */
    K_U64,     /* uint64_t */
    K_MS,      /* double, finite, fractional allowed */
    K_LEVEL,   /* unsigned: a log level name (log.h) */
    K_BOOL,    /* bool: a bare flag on the command line, true/false in a file */
    K_CONFIG,  /* --config: handled before all other flags */
    K_HELP,    /* --help */
    K_VERSION, /* --version */
};

/* Every K_STR field is a char[256] and every K_PATH one a char[4096]: set_value()
 * and cfg_keep_restart_settings() size them by their kind. */
#define FIELD_SIZE(f) sizeof(((struct cfg *)0)->f)
_Static_assert(FIELD_SIZE(etcd) == FIELD_SIZE(bind) && FIELD_SIZE(cluster) == FIELD_SIZE(bind),
               "K_STR fields");
_Static_assert(FIELD_SIZE(access_log) == FIELD_SIZE(state_file) &&
                   FIELD_SIZE(config_path) == FIELD_SIZE(state_file),
               "K_PATH fields");
#undef FIELD_SIZE

enum group { G_LISTEN, G_RESOURCE, G_CLUSTER, G_LIMITS, G_OTHER, G_COUNT };

struct opt {
    const char *name;
    int short_name; /* 0 = long only */
    enum kind kind;
    enum group group;
    size_t off;          /* field in struct cfg */
    uint64_t umin, umax; /* K_UINT, K_U64 */
    double dmin, dmax;   /* K_MS */
    const char *arg;     /* metavariable in --help, NULL if no value */
    const char *help;    /* '\n' continues on an indented line */
    bool restart;        /* a reload cannot change it: it needs a restart */
};

#define U(field, lo, hi) .off = offsetof(struct cfg, field), .umin = (lo), .umax = (hi)
#define D(field, lo, hi) .off = offsetof(struct cfg, field), .dmin = (lo), .dmax = (hi)

static const struct opt opts[] = {
    {"bind", 0, K_STR, G_LISTEN, .off = offsetof(struct cfg, bind), .arg = "ADDR",
     .help = "address to listen on", .restart = true},
    {"port", 0, K_UINT, G_LISTEN, U(port, 0, 65535), .arg = "N",
     .help = "TCP port, 0 = any free port", .restart = true},

    {"delay-ms", 0, K_MS, G_RESOURCE, D(delay_ms, 0, MAX_DELAY_MS), .arg = "MS",
     .help = "simulated work inside the lock;\n"
             "fractions allowed"},
    {"jitter-ms", 0, K_MS, G_RESOURCE, D(jitter_ms, 0, MAX_DELAY_MS), .arg = "MS",
     .help = "adds a random 0..MS to each delay"},
    {"lock-timeout-ms", 0, K_MS, G_RESOURCE, D(lock_timeout_ms, 0, MAX_TIMEOUT_MS), .arg = "MS",
     .help = "wait for the lock at most MS, then\n"
             "503; 0 = forever"},
    {"max-waiters", 0, K_U64, G_RESOURCE, U(max_waiters, 0, UINT64_MAX), .arg = "N",
     .help = "longest lock queue, then 503;\n"
             "0 = unbounded"},
    {"state-file", 0, K_PATH, G_RESOURCE, .off = offsetof(struct cfg, state_file), .arg = "PATH",
     .help = "keep the counter in PATH: it survives\n"
             "restarts and crashes; a reply says N\n"
             "only once N is on disk",
     .restart = true},
    {"no-lock", 0, K_BOOL, G_RESOURCE, .off = offsetof(struct cfg, no_lock),
     .help = "DEMONSTRATION ONLY: skip the lock, so\n"
             "concurrent updates get lost",
     .restart = true},

    {"etcd", 0, K_STR, G_CLUSTER, .off = offsetof(struct cfg, etcd), .arg = "URLS",
     .help = "cluster mode: keep the counter and the\n"
             "lock in etcd, shared by every instance\n"
             "given the same etcd and --cluster;\n"
             "comma-separated http://IP:PORT",
     .restart = true},
    {"cluster", 0, K_STR, G_CLUSTER, .off = offsetof(struct cfg, cluster), .arg = "NAME",
     .help = "the cluster's keys: /turnstile/NAME/", .restart = true},
    {"lease-ttl-ms", 0, K_U64, G_CLUSTER, U(lease_ttl_ms, 1000, 3600000), .arg = "MS",
     .help = "a dead or cut-off instance's requests\n"
             "leave the queue within this",
     .restart = true},

    {"header-timeout-ms", 0, K_U64, G_LIMITS, U(header_timeout_ms, 1, MAX_TIMEOUT_MS), .arg = "MS",
     .help = "request head deadline (408)"},
    {"keepalive-timeout-ms", 0, K_U64, G_LIMITS, U(keepalive_timeout_ms, 1, MAX_TIMEOUT_MS),
     .arg = "MS", .help = "idle time between requests"},
    {"send-timeout-ms", 0, K_U64, G_LIMITS, U(send_timeout_ms, 1, MAX_TIMEOUT_MS), .arg = "MS",
     .help = "cut a client that stops reading"},
    {"drain-timeout-ms", 0, K_U64, G_LIMITS, U(drain_timeout_ms, 1, MAX_TIMEOUT_MS), .arg = "MS",
     .help = "grace period on SIGINT/SIGTERM"},
    {"threads", 0, K_UINT, G_LIMITS, U(threads, 0, 1024), .arg = "N",
     .help = "event loops, each on a thread of its\n"
             "own; 0 = one per core",
     .restart = true},
    {"max-connections", 0, K_U64, G_LIMITS, U(max_connections, 1, 1000000), .arg = "N",
     .help = "connections, then accept pauses"},
    {"max-header-bytes", 0, K_U64, G_LIMITS, U(max_header_bytes, 512, 1048576), .arg = "N",
     .help = "request line + headers (431/414)"},
    {"max-headers", 0, K_U64, G_LIMITS, U(max_headers, 1, 10000), .arg = "N",
     .help = "header fields per request (431)"},
    {"max-body-bytes", 0, K_U64, G_LIMITS, U(max_body, 0, 1u << 30), .arg = "N",
     .help = "request body, discarded (413)"},

    {"log-level", 0, K_LEVEL, G_OTHER, .off = offsetof(struct cfg, log_level), .arg = "LEVEL",
     .help = "error, warn, info or debug: what goes\n"
             "to stderr, one line per event"},
    {"access-log", 0, K_PATH, G_OTHER, .off = offsetof(struct cfg, access_log), .arg = "PATH",
     .help = "one line per request (Common Log\n"
             "Format + lock wait); '-' = stdout"},
    {"config", 0, K_CONFIG, G_OTHER, .off = offsetof(struct cfg, config_path), .arg = "FILE",
     .help = "INI file read before the flags"},
    {"help", 'h', K_HELP, G_OTHER, .help = "print this help and exit"},
    {"version", 'V', K_VERSION, G_OTHER, .help = "print the version and exit"},
};

#undef U
#undef D

#define NOPTS    (sizeof(opts) / sizeof(opts[0]))
#define OPT_BASE 0x100 /* getopt val of opts[i] is OPT_BASE + i: clear of chars */
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
    c->no_lock = false;
    c->state_file[0] = '\0';
    c->etcd[0] = '\0';
    snprintf(c->cluster, sizeof(c->cluster), "%s", LIMIT_CLUSTER_NAME);
    c->lease_ttl_ms = LIMIT_LEASE_TTL_MS;
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

/* User text inside an error line: control bytes become \xNN and long text
 * is cut, so a value with a newline cannot break the one-line promise. */
static const char *show(const char *s, char *buf, size_t size)
{
    size_t n = 0;
    for (; *s && n + 8 < size; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch < 0x20 || ch == 0x7f)
            n += (size_t)snprintf(buf + n, size - n, "\\x%02x", ch);
        else
            buf[n++] = (char)ch;
    }
    if (*s)
        n += (size_t)snprintf(buf + n, size - n, "...");
    buf[n] = '\0';
    return buf;
}

/* ---- values ---- */

/* Unsigned decimal, digits only: strtoull alone would take " 1", "+1" and
 * even "-1" (as UINT64_MAX). */
static bool parse_u64(const char *s, uint64_t *out)
{
    char *end;
    if (!isdigit((unsigned char)s[0]))
        return false;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end)
        return false;
    *out = v;
    return true;
}

/* Plain decimal or exponent notation only: strtod alone would also take
 * "nan", "inf", hex floats and leading blanks or signs. */
static bool parse_double(const char *s, double *out)
{
    char *end;
    if (!isdigit((unsigned char)s[0]) && s[0] != '.')
        return false;
    if (s[strspn(s, "0123456789.eE+-")])
        return false;
    errno = 0;
    double v = strtod(s, &end);
    if (*end || !isfinite(v) || (errno == ERANGE && v != 0.0))
        return false; /* an underflow to 0 is just 0 ms: fine */
    *out = v;
    return true;
}

static bool parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (!strcasecmp(s, yes[i]) || !strcasecmp(s, no[i])) {
            *out = !strcasecmp(s, yes[i]);
            return true;
        }
    }
    return false;
}

/* Control bytes would break the one-line error messages that name it. */
static bool valid_path(const char *s, size_t size)
{
    size_t n = strlen(s);
    if (n == 0 || n >= size)
        return false;
    for (; *s; s++) {
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return false;
    }
    return true;
}

static bool valid_host(const char *s, size_t size)
{
    size_t n = strlen(s);
    if (n == 0 || n >= size)
        return false;
    for (; *s; s++) {
        if (!isgraph((unsigned char)*s))
            return false; /* no blanks or control bytes in "listening on" */
    }
    return true;
}

/* Store value v into o's field of c, or describe why not in err (the part
 * after "--flag: " or "FILE:LINE: key: "). */
static int set_value(struct cfg *c, const struct opt *o, const char *v, char *err, size_t n)
{
    char *field = (char *)c + o->off;
    char shown[80];
    uint64_t u;
    double d;
    bool b;

    switch (o->kind) {
    case K_STR:
        if (!valid_host(v, sizeof(c->bind)))
            goto bad_host;
        memcpy(field, v, strlen(v) + 1);
        return 0;
    case K_PATH:
        if (!valid_path(v, sizeof(c->state_file)))
            goto bad_path;
        memcpy(field, v, strlen(v) + 1);
        return 0;
    case K_UINT:
    case K_U64:
        if (!parse_u64(v, &u) || u < o->umin || u > o->umax)
            goto bad_uint;
        if (o->kind == K_UINT)
            *(unsigned *)(void *)field = (unsigned)u;
        else
            *(uint64_t *)(void *)field = u;
        return 0;
    case K_MS:
        if (!parse_double(v, &d) || d < o->dmin || d > o->dmax)
            goto bad_double;
        *(double *)(void *)field = d;
        return 0;
    case K_BOOL:
        if (!parse_bool(v, &b))
            goto bad_bool;
        *(bool *)(void *)field = b;
        return 0;
    case K_LEVEL:
        if (log_level_parse(v) < 0)
            goto bad_level;
        *(unsigned *)(void *)field = (unsigned)log_level_parse(v);
        return 0;
    default:
        snprintf(err, n, "cannot be set here");
        return -EINVAL;
    }
bad_host:
    snprintf(err, n, "'%s' is not a host name or address (1 to %zu characters, no blanks)",
             show(v, shown, sizeof(shown)), sizeof(c->bind) - 1);
    return -EINVAL;
bad_level:
    snprintf(err, n, "'%s' is not one of error, warn, info, debug", show(v, shown, sizeof(shown)));
    return -EINVAL;
bad_path:
    snprintf(err, n, "'%s' is not a file name (1 to %zu characters, no control characters)",
             show(v, shown, sizeof(shown)), sizeof(c->state_file) - 1);
    return -EINVAL;
bad_uint:
    snprintf(err, n, "'%s' is not a whole number from %" PRIu64 " to %" PRIu64,
             show(v, shown, sizeof(shown)), o->umin, o->umax);
    return -EINVAL;
bad_double:
    snprintf(err, n, "'%s' is not a number from %.15g to %.15g", show(v, shown, sizeof(shown)),
             o->dmin, o->dmax);
    return -EINVAL;
bad_bool:
    snprintf(err, n, "'%s' is not true/false, yes/no, on/off or 1/0",
             show(v, shown, sizeof(shown)));
    return -EINVAL;
}

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

/* "delay_ms", "Delay-MS" -> the option "delay-ms". */
static const struct opt *find_key(const char *key)
{
    for (size_t i = 0; i < NOPTS; i++) {
        const char *a = opts[i].name, *b = key;
        while (*a && (*a == tolower((unsigned char)*b) || (*a == '-' && *b == '_'))) {
            a++;
            b++;
        }
        if (!*a && !*b)
            return &opts[i];
    }
    return NULL;
}

static int file_handler(void *user, const char *section, const char *name, const char *value)
{
    struct file_ctx *f = user;
    char shown[80], err[400];

    if (section[0] && strcasecmp(section, "turnstile") != 0)
        return file_error(f, "key '%s' in unknown section [%s] (use [turnstile] or none)",
                          show(name, shown, sizeof(shown)), section);
    const struct opt *o = find_key(name);
    if (!o)
        return file_error(f, "unknown key '%s' (keys are the flags of --help, without --)",
                          show(name, shown, sizeof(shown)));
    if (o->kind >= K_CONFIG)
        return file_error(f, "'%s' works only on the command line", o->name);
    if (set_value(f->c, o, value ? value : "", err, sizeof(err)) < 0)
        return file_error(f, "%s: %s", show(name, shown, sizeof(shown)), err);
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
        return fail("%s: %s", show(path, shown, sizeof(shown)), strerror(ENAMETOOLONG));
    f.fp = fopen(path, "r");
    if (!f.fp)
        return fail("%s: %s", show(path, shown, sizeof(shown)), strerror(errno));
    int rc = ini_parse_stream(file_reader, &f, file_handler, &f);
    fclose(f.fp);

    show(path, shown, sizeof(shown));
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
    if (val >= OPT_BASE && val < OPT_BASE + (int)NOPTS)
        return &opts[val - OPT_BASE];
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
                                OPT_BASE + (int)i};
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
                    show((char[]){(char)optopt, '\0'}, shown, sizeof(shown)));
    /* An unknown or ambiguous long option: getopt has stepped past it. */
    const char *word = argv[optind - 1];
    size_t len = strcspn(word, "=");
    char name[64];
    snprintf(name, sizeof(name), "%.*s", (int)(len < 63 ? len : 63), word);
    show(name, shown, sizeof(shown));
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
        if (o->kind == K_HELP) {
            cfg_usage(stdout);
            return CFG_EXIT_OK;
        }
        if (o->kind == K_VERSION) {
            printf("turnstile %s\n", TURNSTILE_VERSION);
            return CFG_EXIT_OK;
        }
        if (o->kind == K_CONFIG)
            *config = optarg;
    }
    if (optind < argc) {
        char shown[80];
        return fail("unexpected argument '%s' (see --help)",
                    show(argv[optind], shown, sizeof(shown)));
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
        if (o->kind == K_BOOL)
            *(bool *)(void *)((char *)c + o->off) = true;
        else if (o->kind < K_BOOL && set_value(c, o, optarg, err, sizeof(err)) < 0)
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

static bool same(const struct opt *o, const struct cfg *a, const struct cfg *b)
{
    const char *x = (const char *)a + o->off, *y = (const char *)b + o->off;
    switch (o->kind) {
    case K_STR:
    case K_PATH:
        return strcmp(x, y) == 0;
    case K_UINT:
    case K_LEVEL:
        return *(const unsigned *)(const void *)x == *(const unsigned *)(const void *)y;
    case K_U64:
        return *(const uint64_t *)(const void *)x == *(const uint64_t *)(const void *)y;
    case K_MS:
        return *(const double *)(const void *)x == *(const double *)(const void *)y;
    case K_BOOL:
        return *(const bool *)(const void *)x == *(const bool *)(const void *)y;
    default:
        return true;
    }
}

unsigned cfg_keep_restart_settings(const struct cfg *running, struct cfg *next,
                                   void (*report)(const char *key, void *arg), void *arg)
{
    unsigned kept = 0;
    for (size_t i = 0; i < NOPTS; i++) {
        const struct opt *o = &opts[i];
        if (!o->restart || same(o, running, next))
            continue;
        report(o->name, arg);
        /* Every kind's field is a fixed size: the string arrays are copied
         * whole, the scalars by their own size. */
        size_t size = o->kind == K_STR    ? sizeof(running->bind)
                      : o->kind == K_PATH ? sizeof(running->state_file)
                      : o->kind == K_U64  ? sizeof(uint64_t)
                      : o->kind == K_MS   ? sizeof(double)
                      : o->kind == K_BOOL ? sizeof(bool)
                                          : sizeof(unsigned);
        memcpy((char *)next + o->off, (const char *)running + o->off, size);
        kept++;
    }
    return kept;
}

/* ---- --help ---- */

static void format_default(const struct cfg *d, const struct opt *o, char *buf, size_t n)
{
    const char *field = (const char *)d + o->off;
    switch (o->kind) {
    case K_STR:
        snprintf(buf, n, " (default %s)", field[0] ? field : "none");
        break;
    case K_UINT:
        snprintf(buf, n, " (default %u)", *(const unsigned *)(const void *)field);
        break;
    case K_U64:
        snprintf(buf, n, " (default %" PRIu64 ")", *(const uint64_t *)(const void *)field);
        break;
    case K_MS:
        snprintf(buf, n, " (default %.15g)", *(const double *)(const void *)field);
        break;
    case K_BOOL:
        snprintf(buf, n, " (default %s)", *(const bool *)(const void *)field ? "on" : "off");
        break;
    case K_LEVEL:
        snprintf(buf, n, " (default %s)", log_level_name(*(const unsigned *)(const void *)field));
        break;
    case K_PATH:
    case K_CONFIG:
        snprintf(buf, n, " (default none)");
        break;
    default:
        buf[0] = '\0';
    }
}

#define HELP_COL 33

static void usage_line(FILE *out, const struct cfg *d, const struct opt *o)
{
    char left[64], def[64];
    if (o->short_name)
        snprintf(left, sizeof(left), "  -%c, --%s", o->short_name, o->name);
    else
        snprintf(left, sizeof(left), "      --%s%s%s", o->name, o->arg ? " " : "",
                 o->arg ? o->arg : "");
    format_default(d, o, def, sizeof(def));
    fprintf(out, "%-*s ", HELP_COL - 1, left);
    for (const char *h = o->help; *h; h++) {
        if (*h == '\n')
            fprintf(out, "\n%*s", HELP_COL, "");
        else
            fputc(*h, out);
    }
    fprintf(out, "%s\n", def);
}

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
            if (opts[i].group == (enum group)g)
                usage_line(out, &d, &opts[i]);
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
