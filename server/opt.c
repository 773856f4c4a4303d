/* opt: one typed setting, read from text, compared, copied and shown. See
 * opt.h.
 *
 * Every way a value can be wrong has its own message, naming the range from
 * the row, so that the table is the only place a range is written. */
#include "opt.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"

/* User text inside an error line: control bytes become \xNN and long text
 * is cut, so a value with a newline cannot break the one-line promise. */
const char *opt_show(const char *s, char *buf, size_t size)
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

/* Control bytes would break the one-line error messages that name a path. */
static bool path_byte(unsigned char c)
{
    return c >= 0x20 && c != 0x7f;
}

/* No blanks or control bytes in "listening on". */
static bool host_byte(unsigned char c)
{
    return isgraph(c);
}

/* Non-empty, shorter than size, and made of ok bytes only. */
static bool valid_text(const char *s, size_t size, bool (*ok)(unsigned char))
{
    size_t n = strlen(s);
    if (n == 0 || n >= size)
        return false;
    for (; *s; s++) {
        if (!ok((unsigned char)*s))
            return false;
    }
    return true;
}

int opt_set(void *settings, const struct opt *o, const char *v, char *err, size_t n)
{
    char *field = (char *)settings + o->off;
    char shown[80];
    uint64_t u;
    double d;
    bool b;

    switch (o->kind) {
    case OPT_STR:
        if (!valid_text(v, OPT_STR_SIZE, host_byte))
            goto bad_host;
        memcpy(field, v, strlen(v) + 1);
        return 0;
    case OPT_PATH:
        if (!valid_text(v, OPT_PATH_SIZE, path_byte))
            goto bad_path;
        memcpy(field, v, strlen(v) + 1);
        return 0;
    case OPT_UINT:
    case OPT_U64:
        if (!parse_u64(v, &u) || u < o->umin || u > o->umax)
            goto bad_uint;
        if (o->kind == OPT_UINT)
            *(unsigned *)(void *)field = (unsigned)u;
        else
            *(uint64_t *)(void *)field = u;
        return 0;
    case OPT_MS:
        if (!parse_double(v, &d) || d < o->dmin || d > o->dmax)
            goto bad_double;
        *(double *)(void *)field = d;
        return 0;
    case OPT_BOOL:
        if (!parse_bool(v, &b))
            goto bad_bool;
        *(bool *)(void *)field = b;
        return 0;
    case OPT_LEVEL:
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
             opt_show(v, shown, sizeof(shown)), (size_t)OPT_STR_SIZE - 1);
    return -EINVAL;
bad_level:
    snprintf(err, n, "'%s' is not one of error, warn, info, debug",
             opt_show(v, shown, sizeof(shown)));
    return -EINVAL;
bad_path:
    snprintf(err, n, "'%s' is not a file name (1 to %zu characters, no control characters)",
             opt_show(v, shown, sizeof(shown)), (size_t)OPT_PATH_SIZE - 1);
    return -EINVAL;
bad_uint:
    snprintf(err, n, "'%s' is not a whole number from %" PRIu64 " to %" PRIu64,
             opt_show(v, shown, sizeof(shown)), o->umin, o->umax);
    return -EINVAL;
bad_double:
    snprintf(err, n, "'%s' is not a number from %.15g to %.15g", opt_show(v, shown, sizeof(shown)),
             o->dmin, o->dmax);
    return -EINVAL;
bad_bool:
    snprintf(err, n, "'%s' is not true/false, yes/no, on/off or 1/0",
             opt_show(v, shown, sizeof(shown)));
    return -EINVAL;
}

const struct opt *opt_find_key(const struct opt *table, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++) {
        const char *a = table[i].name, *b = key;
        while (*a && (*a == tolower((unsigned char)*b) || (*a == '-' && *b == '_'))) {
            a++;
            b++;
        }
        if (!*a && !*b)
            return &table[i];
    }
    return NULL;
}

/* ---- two settings ---- */

bool opt_same(const struct opt *o, const void *a, const void *b)
{
    const char *x = (const char *)a + o->off, *y = (const char *)b + o->off;
    switch (o->kind) {
    case OPT_STR:
    case OPT_PATH:
        return strcmp(x, y) == 0;
    case OPT_UINT:
    case OPT_LEVEL:
        return *(const unsigned *)(const void *)x == *(const unsigned *)(const void *)y;
    case OPT_U64:
        return *(const uint64_t *)(const void *)x == *(const uint64_t *)(const void *)y;
    case OPT_MS:
        return *(const double *)(const void *)x == *(const double *)(const void *)y;
    case OPT_BOOL:
        return *(const bool *)(const void *)x == *(const bool *)(const void *)y;
    default:
        return true;
    }
}

void opt_copy(const struct opt *o, void *dst, const void *src)
{
    /* Every kind's field is a fixed size: the string arrays are copied
     * whole, the scalars by their own size. */
    size_t size = o->kind == OPT_STR    ? OPT_STR_SIZE
                  : o->kind == OPT_PATH ? OPT_PATH_SIZE
                  : o->kind == OPT_U64  ? sizeof(uint64_t)
                  : o->kind == OPT_MS   ? sizeof(double)
                  : o->kind == OPT_BOOL ? sizeof(bool)
                                        : sizeof(unsigned);
    memcpy((char *)dst + o->off, (const char *)src + o->off, size);
}

/* ---- --help ---- */

static void format_default(const void *d, const struct opt *o, char *buf, size_t n)
{
    const char *field = (const char *)d + o->off;
    switch (o->kind) {
    case OPT_STR:
        snprintf(buf, n, " (default %s)", field[0] ? field : "none");
        break;
    case OPT_UINT:
        snprintf(buf, n, " (default %u)", *(const unsigned *)(const void *)field);
        break;
    case OPT_U64:
        snprintf(buf, n, " (default %" PRIu64 ")", *(const uint64_t *)(const void *)field);
        break;
    case OPT_MS:
        snprintf(buf, n, " (default %.15g)", *(const double *)(const void *)field);
        break;
    case OPT_BOOL:
        snprintf(buf, n, " (default %s)", *(const bool *)(const void *)field ? "on" : "off");
        break;
    case OPT_LEVEL:
        snprintf(buf, n, " (default %s)", log_level_name(*(const unsigned *)(const void *)field));
        break;
    case OPT_PATH:
    case OPT_CONFIG:
        snprintf(buf, n, " (default none)");
        break;
    default:
        buf[0] = '\0';
    }
}

#define HELP_COL 33

void opt_usage(FILE *out, const struct opt *o, const void *defaults)
{
    char left[64], def[64];
    if (o->short_name)
        snprintf(left, sizeof(left), "  -%c, --%s", o->short_name, o->name);
    else
        snprintf(left, sizeof(left), "      --%s%s%s", o->name, o->arg ? " " : "",
                 o->arg ? o->arg : "");
    format_default(defaults, o, def, sizeof(def));
    fprintf(out, "%-*s ", HELP_COL - 1, left);
    for (const char *h = o->help; *h; h++) {
        if (*h == '\n')
            fprintf(out, "\n%*s", HELP_COL, "");
        else
            fputc(*h, out);
    }
    fprintf(out, "%s\n", def);
}
