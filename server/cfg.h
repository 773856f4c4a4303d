/* cfg: the server's settings, from defaults (limits.h), an optional INI file
 * and the command line, in that order, so flags override the file.
 *
 * Every error is reported as exactly one line on stderr starting with
 * "turnstile: " that names the flag or FILE:LINE and, for numbers, the
 * allowed range; the caller then exits with status 2 (docs/design.md). */
#ifndef TURNSTILE_CFG_H
#define TURNSTILE_CFG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* cfg_parse() printed --help or --version: the caller exits with status 0. */
#define CFG_EXIT_OK 1

struct cfg {
    char bind[256];                /* --bind, default LIMIT_BIND */
    unsigned port;                 /* --port 0..65535, default LIMIT_PORT; 0 = pick a free port */
    double delay_ms;               /* --delay-ms, fractional allowed, 0..3600000 */
    double jitter_ms;              /* --jitter-ms, 0..3600000 */
    double lock_timeout_ms;        /* --lock-timeout-ms, 0..86400000, 0 = forever */
    uint64_t max_waiters;          /* --max-waiters, 0 = unbounded */
    uint64_t idem_retention_ms;    /* --idempotency-retention-ms, 1..30 days */
    uint64_t idem_max_keys;        /* --idempotency-max-keys, 1..100000000 */
    uint64_t header_timeout_ms;    /* --header-timeout-ms, 1..86400000 */
    uint64_t keepalive_timeout_ms; /* --keepalive-timeout-ms, 1..86400000 */
    uint64_t send_timeout_ms;      /* --send-timeout-ms, 1..86400000 */
    uint64_t drain_timeout_ms;     /* --drain-timeout-ms, 1..86400000 */
    uint64_t max_connections;      /* --max-connections, 1..1000000 */
    unsigned threads;              /* --threads, 0..1024: event loops, 0 = one per core */
    uint64_t max_header_bytes;     /* --max-header-bytes, 512..1048576 */
    uint64_t max_headers;          /* --max-headers, 1..10000 */
    uint64_t max_body;             /* --max-body-bytes, 0..1 GiB */
    /* --no-lock: demonstration only: run the critical section WITHOUT the
     * lock, so concurrent updates get lost. Documented as such. */
    bool no_lock;
    char state_file[4096];        /* --state-file PATH ("" = the counter lives in memory only) */
    char etcd[256];               /* --etcd URL[,URL...] ("" = no cluster: all in this process) */
    char cluster[256];            /* --cluster NAME: the etcd key prefix /turnstile/NAME/ */
    uint64_t lease_ttl_ms;        /* --lease-ttl-ms, 1000..3600000, whole seconds in etcd */
    uint64_t compact_interval_ms; /* --compact-interval-ms, 0..86400000, 0 = never */
    /* A secured etcd (https:// endpoints), as etcdctl's --cacert, --cert,
     * --key, --user; "" = none. The files are read again on SIGHUP. */
    char etcd_cacert[4096];        /* --etcd-cacert FILE ("" = the system's trust store) */
    char etcd_cert[4096];          /* --etcd-cert FILE: the client certificate */
    char etcd_key[4096];           /* --etcd-key FILE: its key */
    char etcd_user[256];           /* --etcd-user NAME: etcd's auth */
    char etcd_password_file[4096]; /* --etcd-password-file FILE: its password, never a flag */
    unsigned log_level;            /* --log-level, an enum log_level */
    char access_log[4096];         /* --access-log PATH or "-" ("" = none) */
    char config_path[4096];        /* --config FILE ("" = none) */
    /* --etcd-quota-bytes: etcd's backend quota, only shown (0: unknown) */
    uint64_t etcd_quota_bytes;

    /* --admin-listen HOST:PORT: the internals' own port ("" = none: on the
     * main port with /access). */
    char admin_listen[256];
};

/* Fill c with the defaults of limits.h. */
void cfg_defaults(struct cfg *c);

/* Reset c to the defaults, then parse argv on top of them: first find
 * --config (and load that file), then apply every flag, so flags override
 * the file. Accepts "--flag VALUE" and "--flag=VALUE"; may be called again
 * (getopt is fully re-initialised each time).
 * Returns 0 to run; CFG_EXIT_OK when --help or --version was printed to
 * stdout (caller exits 0); -EINVAL after printing one line to stderr
 * (caller exits 2). */
int cfg_parse(struct cfg *c, int argc, char **argv);

/* Apply an INI file on top of c. Keys are the long flag names without "--"
 * ('-' or '_' alike, any case), at top level or in a [turnstile] section;
 * no-lock takes true/false/yes/no/on/off/1/0. Sets c->config_path.
 * Returns 0, or -EINVAL after one line on stderr
 * ("turnstile: FILE:LINE: ..." or "turnstile: FILE: <strerror>"). */
int cfg_load_file(struct cfg *c, const char *path);

/* cfg_parse() for a reload (SIGHUP): the same flags and file, but it
 * prints nothing; an error's line is left in cfg_error(). */
int cfg_reparse(struct cfg *c, int argc, char **argv);
/* The last error line, without the "turnstile: " prefix. */
const char *cfg_error(void);

/* For a reload: every setting that only a restart can change (bind, port,
 * state-file, ...) and that differs between running and next is reported
 * by name and set back to its running value in next. Returns how many. */
unsigned cfg_keep_restart_settings(const struct cfg *running, struct cfg *next,
                                   void (*report)(const char *key, void *arg), void *arg);

/* The --help text: every flag with its default, grouped. */
void cfg_usage(FILE *out);

#endif
