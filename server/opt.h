/* opt: one typed setting, described by a row of a table: how its value is
 * read from text (range-checked, with one message for each way it can be
 * wrong), compared and copied between two structures of settings, and
 * shown in --help. It knows no particular setting: cfg.c holds the table
 * of the server's, and reads flags and files with it.
 *
 * A row names its field by offset in the caller's structure; the field's C
 * type follows from the row's kind. */
#ifndef TURNSTILE_OPT_H
#define TURNSTILE_OPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define OPT_STR_SIZE  256  /* an OPT_STR field is a char[OPT_STR_SIZE] */
#define OPT_PATH_SIZE 4096 /* an OPT_PATH field is a char[OPT_PATH_SIZE] */

/* Order matters: the kinds that hold a value first (up to OPT_BOOL), then
 * the flags that are no file key and that the caller acts on itself. */
enum opt_kind {
    OPT_STR,     /* char[OPT_STR_SIZE], non-empty, printable (a host name) */
    OPT_PATH,    /* char[OPT_PATH_SIZE], non-empty, no control bytes */
    OPT_UINT,    /* unsigned */
    OPT_U64,     /* uint64_t */
    OPT_MS,      /* double, finite, fractional allowed */
    OPT_LEVEL,   /* unsigned: a log level name (log.h) */
    OPT_BOOL,    /* bool: a bare flag on the command line, true/false in a file */
    OPT_CONFIG,  /* --config: read before all other flags */
    OPT_HELP,    /* --help */
    OPT_VERSION, /* --version */
};

struct opt {
    const char *name;
    int short_name; /* 0 = long only */
    enum opt_kind kind;
    int group;           /* the caller's section of --help */
    size_t off;          /* the field in the caller's structure */
    uint64_t umin, umax; /* OPT_UINT, OPT_U64 */
    double dmin, dmax;   /* OPT_MS */
    const char *arg;     /* metavariable in --help, NULL if no value */
    const char *help;    /* '\n' continues on an indented line */
    bool restart;        /* a reload cannot change it: it needs a restart */
};

/* Stores text v in o's field of settings. Returns 0, or -EINVAL with why
 * not in err (n bytes; the part of an error line after "--flag: ", e.g.
 * "'x' is not a whole number from 1 to 10"); the field is then unchanged. */
int opt_set(void *settings, const struct opt *o, const char *v, char *err, size_t n);

/* The row of table[0..n) that a config-file key names: the flag without
 * "--", any case, '_' for '-' ("delay_ms", "Delay-MS"). NULL if none. */
const struct opt *opt_find_key(const struct opt *table, size_t n, const char *key);

/* True when o's field holds the same value in a and b. */
bool opt_same(const struct opt *o, const void *a, const void *b);

/* Copies o's field, whole, from src to dst. */
void opt_copy(const struct opt *o, void *dst, const void *src);

/* Prints o's --help entry (its line and continuation lines), ending with
 * its value in defaults. */
void opt_usage(FILE *out, const struct opt *o, const void *defaults);

/* User text made fit for an error line, in buf (size bytes): control bytes
 * become \xNN and long text is cut with "...", so that a value with a
 * newline cannot break the one-line promise. Returns buf. */
const char *opt_show(const char *s, char *buf, size_t size);

#endif
