/* Unit tests for server/stats.c, server/metrics.c and server/tally.c: the
 * one table of numbers (stats_rows[]) and the two documents drawn from it.
 *
 * The source is built by hand with a distinct value in every counter, so a
 * value shown under the wrong name is caught. /stats is checked by a strict
 * JSON reader written for this test (it also refuses a key repeated in one
 * object, which a split group would produce and which most JSON libraries
 * accept silently), and once by python3's json module as a second opinion.
 * /metrics is checked line by line against the Prometheus text format
 * 0.0.4: one HELP and TYPE per family, _total counters, every label of a
 * vector, no zero cell of the matrix, cumulative histogram buckets ending
 * in +Inf equal to _count. */
#include <check.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "check_run.h"
#include "grants.h"
#include "loop.h"
#include "metrics.h"
#include "resource.h"
#include "route.h"
#include "server_fixture.h"
#include "stats.h"
#include "tally.h"

enum { DOC_CAP = 65536 };

static struct loop loop;
static struct fixture fx;
static char doc[DOC_CAP];
static size_t doc_len;

/* ---- the source: a distinct value everywhere ---- */

static void fill_source(void)
{
    fixture_init(&fx, &(struct resource_settings){.use_lock = true});
    fx.res.counter = 4242;
    fx.res.in_section = 104;
    struct lock_stats *l = &fx.res.lock.stats;
    l->waiters = 401;
    l->max_waiters = 402;
    l->acquisitions = 403;
    l->contended = 404;
    l->timeouts = 405;
    l->cancellations = 406;
    l->shed = 407;
    for (uint64_t v = 1000; v <= 10000; v += 1000)
        hist_record(&l->wait_us, v); /* 10 values, sum 55 000 */
    hist_record(&l->hold_us, 7);
    hist_record(&l->hold_us, 70);
    hist_record(&l->hold_us, 700000);

    fx.requests = (struct tally_requests){.total = 101, .access = 102, .gone = 103};
    fx.requests.by_route[TALLY_ACCESS][TALLY_200] = 201;
    fx.requests.by_route[TALLY_ACCESS][TALLY_503] = 202;
    fx.requests.by_route[TALLY_NONE][TALLY_400] = 203;
    fx.requests.by_route[TALLY_UNKNOWN][TALLY_404] = 204;
    fx.requests.by_route[TALLY_STATS][TALLY_OTHER] = 205; /* no class: not in responses */

    fx.conns = (struct tally_conns){.accepted = 302, .active = 301, .refused = 303};
    for (unsigned i = 0; i < TALLY_ENDS; i++)
        fx.conns.ended[i] = 310 + i;
    fx.conns.ended[TALLY_END_GONE] = 0; /* a vector lists zeros too */

    fx.draining = true;
    fx.src.started_us = loop_now_us() - 3500000;
    grants_record(&fx.grants, 5, 55, fx.src.started_us + 1000000);
    grants_record(&fx.grants, 6, 66, fx.src.started_us + 2000000);
}

static void setup(void)
{
    ck_assert_int_eq(loop_init(&loop, 0, 4), 0);
    fill_source();
}

static void teardown(void)
{
    fixture_fini(&fx);
    loop_fini(&loop);
}

static void take_json(void)
{
    doc_len = stats_json(&fx.src, doc, sizeof(doc));
    ck_assert_uint_gt(doc_len, 0);
    ck_assert_uint_eq(strlen(doc), doc_len);
}

static void take_metrics(void)
{
    doc_len = metrics_text(&fx.src, doc, sizeof(doc));
    ck_assert_uint_gt(doc_len, 0);
    ck_assert_uint_eq(strlen(doc), doc_len);
}

/* ---- a strict JSON reader (RFC 8259), enough to check and look up ---- */

struct json {
    const char *p;
    const char *err; /* first error, or NULL */
};

static bool json_fail(struct json *j, const char *why)
{
    if (!j->err)
        j->err = why;
    return false;
}

static void skip_ws(struct json *j)
{
    while (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r')
        j->p++;
}

/* A string; its text (escapes kept as written) goes to out if there is
 * room. The documents here have no escapes, but a valid one is accepted. */
static bool string(struct json *j, char *out, size_t cap)
{
    size_t n = 0;
    if (*j->p != '"')
        return json_fail(j, "string expected");
    for (j->p++; *j->p != '"'; j->p++) {
        unsigned char c = (unsigned char)*j->p;
        if (c < 0x20)
            return json_fail(j, "control character in a string");
        if (c == '\\') {
            j->p++;
            if (*j->p == 'u') {
                for (int i = 1; i <= 4; i++)
                    if (!isxdigit((unsigned char)j->p[i]))
                        return json_fail(j, "bad \\u escape");
                j->p += 4;
            } else if (!strchr("\"\\/bfnrt", *j->p) || !*j->p) {
                return json_fail(j, "bad escape");
            }
        }
        if (out && n + 1 < cap)
            out[n++] = (char)c;
    }
    j->p++;
    if (out)
        out[n] = '\0';
    return true;
}

static bool digits(struct json *j)
{
    if (!isdigit((unsigned char)*j->p))
        return json_fail(j, "digit expected");
    while (isdigit((unsigned char)*j->p))
        j->p++;
    return true;
}

static bool number(struct json *j)
{
    if (*j->p == '-')
        j->p++;
    if (*j->p == '0')
        j->p++;
    else if (!digits(j))
        return false;
    if (*j->p == '.') {
        j->p++;
        if (!digits(j))
            return false;
    }
    if (*j->p == 'e' || *j->p == 'E') {
        j->p++;
        if (*j->p == '+' || *j->p == '-')
            j->p++;
        if (!digits(j))
            return false;
    }
    return true;
}

static bool value(struct json *j, int depth);

static bool object(struct json *j, int depth)
{
    enum { MAX_KEYS = 64, KEY_CAP = 64 };
    char keys[MAX_KEYS][KEY_CAP];
    int nkeys = 0;
    j->p++;
    skip_ws(j);
    if (*j->p == '}') {
        j->p++;
        return true;
    }
    for (;;) {
        char key[KEY_CAP];
        skip_ws(j);
        if (!string(j, key, sizeof(key)))
            return false;
        for (int i = 0; i < nkeys; i++)
            if (strcmp(keys[i], key) == 0)
                return json_fail(j, "a key repeated in one object");
        if (nkeys == MAX_KEYS)
            return json_fail(j, "more keys than this reader keeps");
        strcpy(keys[nkeys++], key);
        skip_ws(j);
        if (*j->p != ':')
            return json_fail(j, "':' expected");
        j->p++;
        if (!value(j, depth + 1))
            return false;
        skip_ws(j);
        if (*j->p == '}') {
            j->p++;
            return true;
        }
        if (*j->p != ',')
            return json_fail(j, "',' or '}' expected");
        j->p++;
    }
}

static bool array(struct json *j, int depth)
{
    j->p++;
    skip_ws(j);
    if (*j->p == ']') {
        j->p++;
        return true;
    }
    for (;;) {
        if (!value(j, depth + 1))
            return false;
        skip_ws(j);
        if (*j->p == ']') {
            j->p++;
            return true;
        }
        if (*j->p != ',')
            return json_fail(j, "',' or ']' expected");
        j->p++;
    }
}

static bool literal(struct json *j, const char *word)
{
    size_t n = strlen(word);
    if (strncmp(j->p, word, n) != 0)
        return json_fail(j, "unknown literal");
    j->p += n;
    return true;
}

static bool value(struct json *j, int depth)
{
    if (depth > 32)
        return json_fail(j, "nested too deep");
    skip_ws(j);
    switch (*j->p) {
    case '{':
        return object(j, depth);
    case '[':
        return array(j, depth);
    case '"':
        return string(j, NULL, 0);
    case 't':
        return literal(j, "true");
    case 'f':
        return literal(j, "false");
    case 'n':
        return literal(j, "null");
    default:
        return number(j);
    }
}

/* Fails the test unless text is exactly one JSON value (an object). */
static void assert_json(const char *text)
{
    struct json j = {.p = text};
    skip_ws(&j);
    ck_assert_msg(*j.p == '{', "the document is not an object");
    bool ok = value(&j, 0);
    skip_ws(&j);
    ck_assert_msg(ok && *j.p == '\0', "invalid JSON at offset %td (%s): %.40s", j.p - text,
                  j.err ? j.err : "trailing bytes", j.p);
}

/* The value at a path of keys joined by '.', or NULL. keys may contain
 * '/' (by_route) but not '.'. Only called on a document assert_json()
 * accepted. */
static const char *json_get(const char *text, const char *path)
{
    struct json j = {.p = text};
    if (!*path)
        return text; /* the document itself */
    for (;;) {
        size_t seg = strcspn(path, ".");
        skip_ws(&j);
        if (*j.p != '{')
            return NULL;
        j.p++;
        for (;;) {
            char key[256];
            skip_ws(&j);
            if (*j.p == '}')
                return NULL;
            if (*j.p == ',')
                j.p++, skip_ws(&j);
            string(&j, key, sizeof(key));
            skip_ws(&j);
            j.p++; /* ':' */
            skip_ws(&j);
            if (strlen(key) == seg && strncmp(key, path, seg) == 0)
                break;
            value(&j, 0);
            skip_ws(&j);
        }
        if (path[seg] == '\0')
            return j.p;
        path += seg + 1;
    }
}

static const char *must_get(const char *path)
{
    const char *v = json_get(doc, path);
    ck_assert_msg(v != NULL, "/stats has no %s", path);
    return v;
}

/* The unsigned integer at path (nothing but digits). */
static uint64_t get_u64(const char *path)
{
    const char *v = must_get(path);
    char *end;
    ck_assert_msg(isdigit((unsigned char)*v), "%s is not an unsigned integer: %.20s", path, v);
    errno = 0;
    uint64_t n = strtoull(v, &end, 10);
    ck_assert_int_eq(errno, 0);
    ck_assert_msg(*end == ',' || *end == '}' || *end == ']', "%s is not an integer: %.20s", path,
                  v);
    return n;
}

static bool get_bool(const char *path)
{
    const char *v = must_get(path);
    ck_assert_msg(strncmp(v, "true", 4) == 0 || strncmp(v, "false", 5) == 0,
                  "%s is not a boolean: %.20s", path, v);
    return *v == 't';
}

/* Members of the object at path. */
static int count_members(const char *path)
{
    const char *v = must_get(path);
    struct json j = {.p = v};
    int n = 0;
    ck_assert_msg(*v == '{', "%s is not an object", path);
    j.p++;
    for (;;) {
        skip_ws(&j);
        if (*j.p == '}')
            return n;
        if (*j.p == ',')
            j.p++, skip_ws(&j);
        string(&j, NULL, 0);
        skip_ws(&j);
        j.p++;
        value(&j, 0);
        n++;
    }
}

/* ---- the reader itself must refuse what it should ---- */

START_TEST(the_test_json_reader_refuses_bad_documents)
{
    static const char *const bad[] = {
        "{",           "{\"a\": 1,}",  "{\"a\": 1, \"a\": 2}", "{\"a\": 01}",
        "{\"a\": 1.}", "{\"a\": tru}", "{\"a\": \"x}",         "{a: 1}",
        "{\"a\" 1}",   "{\"a\": 1} x", "{\"a\": [1,]}",        "{\"a\": {\"b\": 1, \"b\": 1}}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct json j = {.p = bad[i]};
        bool ok = value(&j, 0);
        skip_ws(&j);
        ck_assert_msg(!ok || *j.p != '\0', "accepted %s", bad[i]);
    }
    assert_json("{\"a\": {\"b\": [1, -2.5e3, true, false, null, \"\\u00e9\"]}, \"b\": {}}");
}
END_TEST

/* ---- /stats ---- */

START_TEST(stats_is_one_line_of_valid_json)
{
    take_json();
    ck_assert_int_eq(doc[0], '{');
    ck_assert_int_eq(doc[doc_len - 1], '\n');
    ck_assert_ptr_eq(strchr(doc, '\n'), doc + doc_len - 1); /* one line */
    assert_json(doc);
}
END_TEST

/* Every row is at its path, nested as the dots say, with the type its kind
 * calls for. */
START_TEST(stats_has_every_row_at_its_path)
{
    take_json();
    assert_json(doc);
    for (size_t i = 0; i < stats_nrows; i++) {
        const struct stats_row *row = &stats_rows[i];
        const char *v = must_get(row->path);
        switch (row->kind) {
        case STATS_COUNTER:
        case STATS_GAUGE:
            get_u64(row->path);
            break;
        case STATS_FLAG:
            get_bool(row->path);
            break;
        case STATS_SECONDS:
            ck_assert_msg(isdigit((unsigned char)*v), "%s: %.20s", row->path, v);
            break;
        case STATS_HIST: {
            static const char *const keys[] = {"p50", "p90", "p99", "max", "count"};
            char path[128];
            for (size_t k = 0; k < 5; k++) {
                snprintf(path, sizeof(path), "%s.%s", row->path, keys[k]);
                get_u64(path);
            }
            ck_assert_int_eq(count_members(row->path), 5);
            break;
        }
        case STATS_VECTOR: {
            const struct stats_dim *d = row->dims[0];
            char path[128];
            ck_assert_ptr_nonnull(d);
            for (unsigned k = 0; k < d->n; k++) {
                snprintf(path, sizeof(path), "%s.%s", row->path, d->names[k]);
                get_u64(path);
            }
            ck_assert_int_eq(count_members(row->path), (int)d->n);
            break;
        }
        case STATS_MATRIX:
            ck_assert_ptr_nonnull(row->dims[0]);
            ck_assert_ptr_nonnull(row->dims[1]);
            ck_assert_msg(*v == '{', "%s is not an object", row->path);
            break;
        case STATS_TEXT:
            ck_assert_msg(*v == '"', "%s is not a string", row->path);
            break;
        }
    }
    get_u64("grants.total");
}
END_TEST

START_TEST(stats_values_match_the_source)
{
    static const struct {
        const char *path;
        uint64_t want;
    } ints[] = {
        {"counter", 4242},
        {"requests.total", 101},
        {"requests.access", 102},
        {"requests.in_section", 104},
        {"requests.gone", 103},
        {"requests.responses.2xx", 201},
        {"requests.responses.3xx", 0},
        {"requests.responses.4xx", 203 + 204},
        {"requests.responses.5xx", 202},
        {"connections.active", 301},
        {"connections.accepted", 302},
        {"connections.refused", 303},
        {"connections.closed.client", 310 + TALLY_END_CLIENT},
        {"connections.closed.done", 310 + TALLY_END_DONE},
        {"connections.closed.bad_request", 310 + TALLY_END_BAD_REQUEST},
        {"connections.closed.timeout", 310 + TALLY_END_TIMEOUT},
        {"connections.closed.idle", 310 + TALLY_END_IDLE},
        {"connections.closed.gone", 0},
        {"lock.waiters", 401},
        {"lock.max_waiters", 402},
        {"lock.acquisitions", 403},
        {"lock.contended", 404},
        {"lock.timeouts", 405},
        {"lock.cancellations", 406},
        {"lock.shed", 407},
        {"lock.wait_us.count", 10},
        {"lock.wait_us.max", 10000},
        {"lock.hold_us.count", 3},
        {"lock.hold_us.max", 700000},
        {"grants.total", 2},
    };
    take_json();
    assert_json(doc);
    for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++)
        ck_assert_msg(get_u64(ints[i].path) == ints[i].want, "%s is %" PRIu64 ", not %" PRIu64,
                      ints[i].path, get_u64(ints[i].path), ints[i].want);
    ck_assert(get_bool("draining"));
    ck_assert(get_bool("lock.enabled"));
    ck_assert(!get_bool("lock.locked"));
    ck_assert_uint_eq(get_u64("lock.wait_us.p50"), hist_percentile(&fx.res.lock.stats.wait_us, 50));
    ck_assert_uint_eq(get_u64("lock.wait_us.p99"), hist_percentile(&fx.res.lock.stats.wait_us, 99));
    ck_assert_uint_eq(get_u64("lock.hold_us.p90"), hist_percentile(&fx.res.lock.stats.hold_us, 90));
    ck_assert_double_ge(strtod(must_get("uptime_s"), NULL), 3.5); /* started 3.5 s ago */
}
END_TEST

/* The matrix leaves out zeros: rows with nothing counted, and zero cells. */
START_TEST(stats_matrix_leaves_out_zeros)
{
    take_json();
    assert_json(doc);
    ck_assert_int_eq(count_members("requests.by_route"), 4);
    ck_assert_int_eq(count_members("requests.by_route./access"), 2);
    ck_assert_uint_eq(get_u64("requests.by_route./access.200"), 201);
    ck_assert_uint_eq(get_u64("requests.by_route./access.503"), 202);
    ck_assert_uint_eq(get_u64("requests.by_route.none.400"), 203);
    ck_assert_uint_eq(get_u64("requests.by_route.unknown.404"), 204);
    ck_assert_uint_eq(get_u64("requests.by_route./stats.other"), 205);
    ck_assert_ptr_null(json_get(doc, "requests.by_route./metrics"));
    ck_assert_ptr_null(json_get(doc, "requests.by_route./access.404"));
}
END_TEST

/* Groups are objects holding exactly the rows whose path starts with
 * them: nothing is left at the top level that belongs in a group. */
START_TEST(stats_groups_hold_exactly_their_rows)
{
    take_json();
    assert_json(doc);
    static const char *const groups[] = {"requests", "connections", "lock", "cluster",
                                         "idempotency"};
    enum { NGROUPS = sizeof(groups) / sizeof(groups[0]) };
    int top = 1; /* grants */
    for (size_t g = 0; g < NGROUPS; g++) {
        size_t len = strlen(groups[g]);
        int members = 0;
        for (size_t i = 0; i < stats_nrows; i++)
            if (strncmp(stats_rows[i].path, groups[g], len) == 0 && stats_rows[i].path[len] == '.')
                members++;
        ck_assert_int_eq(count_members(groups[g]), members);
    }
    for (size_t i = 0; i < stats_nrows; i++)
        top += strchr(stats_rows[i].path, '.') == NULL;
    ck_assert_int_eq(count_members("") /* the document */, top + NGROUPS);
}
END_TEST

START_TEST(stats_shows_the_lock_held)
{
    take_json();
    ck_assert(!get_bool("lock.locked"));
    fx.res.lock.owner = (coro_t *)&fx.res; /* any non-NULL owner: stats only looks */
    take_json();
    ck_assert(get_bool("lock.locked"));
    fx.res.lock.owner = NULL;
    fx.res.use_lock = false;
    take_json();
    ck_assert(!get_bool("lock.enabled"));
}
END_TEST

/* grants: oldest first, times in seconds since the start. */
START_TEST(stats_lists_recent_grants)
{
    take_json();
    assert_json(doc);
    static const char want[] = "[{\"n\": 5, \"wait_us\": 55, \"at_s\": 1.000}, "
                               "{\"n\": 6, \"wait_us\": 66, \"at_s\": 2.000}]";
    const char *recent = must_get("grants.recent");
    ck_assert_msg(strncmp(recent, want, sizeof(want) - 1) == 0, "grants.recent: %.100s", recent);
}
END_TEST

/* A second opinion on validity: python3's json module (a test dependency,
 * scripts/setup installs it), with repeated keys refused. */
START_TEST(stats_is_valid_json_to_python)
{
    take_json();
    FILE *py = popen("python3 -c '"
                     "import json, sys\n"
                     "def once(pairs):\n"
                     "    keys = [k for k, _ in pairs]\n"
                     "    assert len(keys) == len(set(keys)), keys\n"
                     "    return dict(pairs)\n"
                     "d = json.loads(sys.stdin.read(), object_pairs_hook=once)\n"
                     "assert d[\"counter\"] == 4242\n"
                     "'",
                     "w");
    ck_assert_ptr_nonnull(py);
    ck_assert_uint_eq(fwrite(doc, 1, doc_len, py), doc_len);
    int status = pclose(py);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "python3 refused the document (status %d)", status);
}
END_TEST

/* ---- /metrics ---- */

/* The line of doc that starts with prefix, or NULL; *count gets how many
 * lines do. */
static const char *find_line(const char *prefix, int *count)
{
    const char *found = NULL;
    size_t n = strlen(prefix);
    *count = 0;
    for (const char *line = doc; *line; line = strchr(line, '\n') + 1) {
        if (strncmp(line, prefix, n) == 0) {
            found = found ? found : line;
            ++*count;
        }
    }
    return found;
}

static bool ends_with(const char *s, const char *tail)
{
    size_t a = strlen(s), b = strlen(tail);
    return a >= b && strcmp(s + a - b, tail) == 0;
}

/* Whether the rest of the line at s is word. */
static bool rest_is(const char *s, const char *word)
{
    size_t n = strlen(word);
    return strncmp(s, word, n) == 0 && s[n] == '\n';
}

START_TEST(metrics_lines_are_well_formed)
{
    take_metrics();
    ck_assert_int_eq(doc[doc_len - 1], '\n');
    for (const char *line = doc; *line; line = strchr(line, '\n') + 1) {
        size_t len = strcspn(line, "\n");
        ck_assert_msg(len > 0, "an empty line");
        if (line[0] == '#') {
            ck_assert_msg(strncmp(line, "# HELP turnstile_", 17) == 0 ||
                              strncmp(line, "# TYPE turnstile_", 17) == 0,
                          "%.*s", (int)len, line);
            continue;
        }
        /* name{labels} value */
        ck_assert_msg(strncmp(line, "turnstile_", 10) == 0, "%.*s", (int)len, line);
        const char *sp = memchr(line, ' ', len);
        ck_assert_msg(sp && sp + 1 < line + len, "no value: %.*s", (int)len, line);
        char *end;
        strtod(sp + 1, &end);
        ck_assert_msg(end == line + len, "bad value: %.*s", (int)len, line);
        for (const char *c = line; c < sp && *c != '{'; c++)
            ck_assert_msg(islower((unsigned char)*c) || isdigit((unsigned char)*c) || *c == '_',
                          "bad name: %.*s", (int)len, line);
    }
}
END_TEST

/* One HELP and one TYPE per family, TYPE right after HELP; the type, as
 * the document gives it, is one the format knows and agrees with the
 * family: a histogram is the kind whose samples are _bucket, _sum and
 * _count, counters end in _total and nothing else does; every sample after
 * them belongs to the family. The type is read from the document and
 * held against the family (its kind's samples, its name), not against a
 * second copy of metrics.c's choice of type for each kind. */
START_TEST(metrics_has_one_help_and_type_per_family)
{
    take_metrics();
    int families = 0;
    for (size_t i = 0; i < stats_nrows; i++) {
        const struct stats_row *row = &stats_rows[i];
        if (!row->metric)
            continue;
        families++;
        for (size_t k = 0; k < i; k++)
            ck_assert_msg(!stats_rows[k].metric || strcmp(stats_rows[k].metric, row->metric) != 0,
                          "family %s twice in stats_rows", row->metric);
        char help[256], type[256];
        int n;
        snprintf(help, sizeof(help), "# HELP turnstile_%s %s\n", row->metric, row->help);
        snprintf(type, sizeof(type), "# TYPE turnstile_%s ", row->metric);
        const char *h = find_line(help, &n);
        ck_assert_msg(h && n == 1, "%s: %d HELP lines", row->metric, n);
        const char *t = strchr(h, '\n') + 1;
        ck_assert_msg(strncmp(t, type, strlen(type)) == 0, "%s: no TYPE after its HELP",
                      row->metric);
        t += strlen(type);
        int tlen = (int)strcspn(t, "\n");
        bool counter = rest_is(t, "counter"), histogram = rest_is(t, "histogram");
        ck_assert_msg(counter || histogram || rest_is(t, "gauge"), "%s: TYPE %.*s", row->metric,
                      tlen, t);
        ck_assert_msg(histogram == (row->kind == STATS_HIST), "%s: a %.*s", row->metric, tlen, t);
        ck_assert_msg(counter == ends_with(row->metric, "_total"), "%s: a %.*s", row->metric, tlen,
                      t);
        /* The samples up to the next family are this one's. */
        char name[128];
        snprintf(name, sizeof(name), "turnstile_%s", row->metric);
        int samples = 0;
        for (const char *line = strchr(strchr(h, '\n') + 1, '\n') + 1; *line && *line != '#';
             line = strchr(line, '\n') + 1, samples++) {
            ck_assert_msg(strncmp(line, name, strlen(name)) == 0, "%s: stray sample %.40s",
                          row->metric, line);
            char next = line[strlen(name)];
            if (row->kind == STATS_HIST)
                ck_assert_msg(strncmp(line + strlen(name), "_bucket{", 8) == 0 ||
                                  strncmp(line + strlen(name), "_sum ", 5) == 0 ||
                                  strncmp(line + strlen(name), "_count ", 7) == 0,
                              "%.40s", line);
            else
                ck_assert_msg(next == ' ' || next == '{', "%.40s", line);
        }
        ck_assert_msg(samples > 0, "%s: no samples", row->metric);
    }
    int n;
    find_line("# HELP ", &n);
    ck_assert_int_eq(n, families);
    find_line("# TYPE ", &n);
    ck_assert_int_eq(n, families);
}
END_TEST

START_TEST(metrics_values_match_the_source)
{
    static const char *const lines[] = {
        "turnstile_resource_value 4242\n",
        "turnstile_draining 1\n",
        "turnstile_access_requests_total 102\n",
        "turnstile_requests_in_section 104\n",
        "turnstile_requests_gone_total 103\n",
        "turnstile_connections_active 301\n",
        "turnstile_connections_accepted_total 302\n",
        "turnstile_connections_refused_total 303\n",
        "turnstile_lock_enabled 1\n",
        "turnstile_lock_held 0\n",
        "turnstile_lock_waiters 401\n",
        "turnstile_lock_waiters_max 402\n",
        "turnstile_lock_acquisitions_total 403\n",
        "turnstile_lock_contended_total 404\n",
        "turnstile_lock_timeouts_total 405\n",
        "turnstile_lock_cancellations_total 406\n",
        "turnstile_lock_shed_total 407\n",
        "turnstile_requests_total{route=\"/access\",code=\"200\"} 201\n",
        "turnstile_requests_total{route=\"/access\",code=\"503\"} 202\n",
        "turnstile_requests_total{route=\"none\",code=\"400\"} 203\n",
        "turnstile_requests_total{route=\"unknown\",code=\"404\"} 204\n",
        "turnstile_requests_total{route=\"/stats\",code=\"other\"} 205\n",
        "turnstile_lock_wait_seconds_sum 0.055000\n",
        "turnstile_lock_wait_seconds_count 10\n",
        "turnstile_lock_hold_seconds_count 3\n",
    };
    take_metrics();
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
        int n;
        find_line(lines[i], &n);
        ck_assert_msg(n == 1, "%d lines of %s", n, lines[i]);
    }
    int n;
    const char *up = find_line("turnstile_uptime_seconds ", &n);
    ck_assert_int_eq(n, 1);
    ck_assert_double_ge(strtod(up + 25, NULL), 3.5);
}
END_TEST

/* A vector lists every label value, zeros included; the matrix leaves its
 * zeros out. */
START_TEST(metrics_vectors_list_every_label_and_the_matrix_no_zero)
{
    take_metrics();
    for (unsigned i = 0; i < TALLY_ENDS; i++) {
        char line[128];
        int n;
        snprintf(line, sizeof(line), "turnstile_connections_closed_total{reason=\"%s\"} %llu\n",
                 tally_end_names[i], (unsigned long long)fx.conns.ended[i]);
        find_line(line, &n);
        ck_assert_msg(n == 1, "missing %s", line);
    }
    int n;
    find_line("turnstile_connections_closed_total{", &n);
    ck_assert_int_eq(n, TALLY_ENDS);
    find_line("turnstile_requests_total{", &n);
    ck_assert_int_eq(n, 5); /* the five non-zero cells */
    for (const char *line = doc; *line; line = strchr(line, '\n') + 1) {
        size_t len = strcspn(line, "\n");
        if (strncmp(line, "turnstile_requests_total{", 25) == 0)
            ck_assert_msg(strncmp(line + len - 2, " 0", 2) != 0, "%.*s", (int)len, line);
    }
}
END_TEST

/* Buckets in increasing le, counts never decreasing, the last le="+Inf"
 * and equal to _count. */
static void check_histogram(const char *family, uint64_t count)
{
    char prefix[128];
    snprintf(prefix, sizeof(prefix), "turnstile_%s_bucket{le=\"", family);
    size_t plen = strlen(prefix);
    double last_le = -1;
    uint64_t last_count = 0;
    int buckets = 0;
    bool inf = false;
    for (const char *line = doc; *line; line = strchr(line, '\n') + 1) {
        if (strncmp(line, prefix, plen) != 0)
            continue;
        ck_assert_msg(!inf, "%s: a bucket after +Inf", family);
        const char *le = line + plen;
        double v;
        if (strncmp(le, "+Inf\"}", 6) == 0) {
            inf = true;
            v = 1e300;
        } else {
            char *end;
            v = strtod(le, &end);
            ck_assert_msg(strncmp(end, "\"} ", 3) == 0, "%.60s", line);
        }
        ck_assert_msg(v > last_le, "%s: le not increasing at %.60s", family, line);
        uint64_t c = strtoull(strchr(line, ' ') + 1, NULL, 10);
        ck_assert_msg(c >= last_count, "%s: not cumulative at %.60s", family, line);
        last_le = v;
        last_count = c;
        buckets++;
    }
    ck_assert_msg(inf, "%s: no +Inf bucket", family);
    ck_assert_int_gt(buckets, 1);
    ck_assert_uint_eq(last_count, count);
    char line[128];
    int n;
    snprintf(line, sizeof(line), "turnstile_%s_count %llu\n", family, (unsigned long long)count);
    find_line(line, &n);
    ck_assert_int_eq(n, 1);
}

START_TEST(metrics_histograms_are_cumulative_and_end_in_inf)
{
    take_metrics();
    check_histogram("lock_wait_seconds", 10);
    check_histogram("lock_hold_seconds", 3);
    int n;
    /* Every value recorded is far below the 10 s bucket: all counted there. */
    find_line("turnstile_lock_wait_seconds_bucket{le=\"10\"} 10\n", &n);
    ck_assert_int_eq(n, 1);
    find_line("turnstile_lock_hold_seconds_bucket{le=\"0.0001\"} 2\n", &n); /* 7 and 70 us */
    ck_assert_int_eq(n, 1);
}
END_TEST

/* ---- sizes ---- */

/* A cap too small for the document gives 0, and nothing is written past
 * cap (a heap buffer of exactly cap bytes: ASan sees any overrun too). */
static void check_fit(size_t (*write)(const struct stats_source *, char *, size_t))
{
    size_t len = write(&fx.src, doc, sizeof(doc));
    ck_assert_uint_gt(len, 0);
    for (size_t cap = 0; cap <= len + 1; cap++) {
        char *buf = malloc(cap + 16);
        ck_assert_ptr_nonnull(buf);
        memset(buf, 0xA5, cap + 16);
        size_t got = write(&fx.src, buf, cap);
        if (cap <= len)
            ck_assert_msg(got == 0, "cap %zu of %zu: returned %zu", cap, len, got);
        else
            ck_assert_uint_eq(got, len);
        for (size_t i = cap; i < cap + 16; i++)
            ck_assert_msg((unsigned char)buf[i] == 0xA5, "cap %zu: byte %zu written", cap, i);
        free(buf);
    }
}

START_TEST(a_document_that_does_not_fit_is_zero)
{
    /* The uptime's length must not change while this runs, however slow
     * (it changes at 1000 s). */
    fx.src.started_us = loop_now_us() - 100000000;
    check_fit(stats_json);
    check_fit(metrics_text);
}
END_TEST

/* The worst case: every number at 20 digits, every cell of the matrix
 * counted, a full ring of grants. Both documents still fit the buffer the
 * routes give them, or /stats and /metrics would answer 500 on a server
 * that has simply run long enough. */
START_TEST(the_largest_documents_fit_the_route_buffer)
{
    fixture_fill_max(&fx);
    size_t json = stats_json(&fx.src, doc, sizeof(doc));
    size_t text = metrics_text(&fx.src, doc, sizeof(doc));
    ck_assert_uint_gt(json, 0);
    ck_assert_uint_gt(text, 0);
    ck_assert_msg(json < ROUTE_DOC_CAP, "/stats needs %zu bytes of %d", json, ROUTE_DOC_CAP);
    ck_assert_msg(text < ROUTE_DOC_CAP, "/metrics needs %zu bytes of %d", text, ROUTE_DOC_CAP);
    take_json();
    assert_json(doc);
}
END_TEST

/* ---- tally ---- */

START_TEST(status_slots_round_trip)
{
    for (unsigned slot = 0; slot < TALLY_OTHER; slot++) {
        int code = tally_status_code((enum tally_status)slot);
        char name[8];
        ck_assert_msg(code >= 100 && code <= 599, "slot %u has status %d", slot, code);
        ck_assert_msg(tally_status_of(code) == (enum tally_status)slot, "status %d", code);
        snprintf(name, sizeof(name), "%d", code);
        ck_assert_str_eq(tally_status_names[slot], name);
    }
    ck_assert_int_eq(tally_status_code(TALLY_OTHER), 0);
    ck_assert_str_eq(tally_status_names[TALLY_OTHER], "other");
    static const int others[] = {0, -1, 100, 201, 299, 302, 402, 599, 600, 1000};
    for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++)
        ck_assert_int_eq(tally_status_of(others[i]), TALLY_OTHER);
    /* The statuses the server sends each have a slot of their own. */
    static const int sent[] = {200, 400, 404, 405, 408, 413, 414, 417, 431, 500, 501, 503, 505};
    for (size_t i = 0; i < sizeof(sent) / sizeof(sent[0]); i++)
        ck_assert_int_ne(tally_status_of(sent[i]), TALLY_OTHER);
}
END_TEST

/* The name arrays are sized by their enums and filled with designated
 * initializers: an enum value added without a name leaves a NULL, caught
 * here. Names are distinct and safe as JSON keys and label values. */
static void check_names(const char *what, const char *const *names, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        ck_assert_msg(names[i] != NULL, "%s %u has no name", what, i);
        ck_assert_msg(names[i][0] != '\0', "%s %u has an empty name", what, i);
        ck_assert_msg(strpbrk(names[i], "\"\\\n.") == NULL, "%s name %s", what, names[i]);
        for (unsigned k = 0; k < i; k++)
            ck_assert_msg(strcmp(names[k], names[i]) != 0, "%s name %s twice", what, names[i]);
    }
}

START_TEST(every_name_is_present_and_distinct)
{
    check_names("route", tally_route_names, TALLY_ROUTES);
    check_names("status", tally_status_names, TALLY_STATUSES);
    check_names("end", tally_end_names, TALLY_ENDS);
    /* route.c matches request paths against these. */
    ck_assert_str_eq(tally_route_names[TALLY_ACCESS], "/access");
    ck_assert_str_eq(tally_route_names[TALLY_STATS], "/stats");
    ck_assert_str_eq(tally_route_names[TALLY_METRICS], "/metrics");
    ck_assert_str_eq(tally_route_names[TALLY_DASHBOARD], "/");
    ck_assert_str_eq(tally_route_names[TALLY_EVENTS], "/events");
    /* Every dimension of the table names each of its values. */
    for (size_t i = 0; i < stats_nrows; i++)
        for (int d = 0; d < 2; d++)
            if (stats_rows[i].dims[d]) {
                ck_assert_ptr_nonnull(stats_rows[i].dims[d]->label);
                check_names(stats_rows[i].path, stats_rows[i].dims[d]->names,
                            stats_rows[i].dims[d]->n);
            }
}
END_TEST

START_TEST(tally_response_counts_in_its_cell)
{
    struct tally_requests t = {0};
    tally_response(&t, TALLY_ACCESS, 200);
    tally_response(&t, TALLY_ACCESS, 200);
    tally_response(&t, TALLY_NONE, 431);
    tally_response(&t, TALLY_UNKNOWN, 418);
    ck_assert_uint_eq(t.by_route[TALLY_ACCESS][TALLY_200], 2);
    ck_assert_uint_eq(t.by_route[TALLY_NONE][TALLY_431], 1);
    ck_assert_uint_eq(t.by_route[TALLY_UNKNOWN][TALLY_OTHER], 1);
    uint64_t sum = 0;
    for (unsigned r = 0; r < TALLY_ROUTES; r++)
        for (unsigned s = 0; s < TALLY_STATUSES; s++)
            sum += t.by_route[r][s];
    ck_assert_uint_eq(sum, 4);
    ck_assert_uint_eq(t.total, 0); /* requests are counted by the connection */
}
END_TEST

/* ---- the table ---- */

START_TEST(every_row_is_complete)
{
    for (size_t i = 0; i < stats_nrows; i++) {
        const struct stats_row *row = &stats_rows[i];
        ck_assert_ptr_nonnull(row->path);
        ck_assert_ptr_nonnull(row->help);
        ck_assert_msg(strchr(row->help, '\n') == NULL, "%s: help on two lines", row->path);
        ck_assert_uint_lt(row->off, sizeof(struct stats_snapshot));
        bool labelled = row->kind == STATS_VECTOR || row->kind == STATS_MATRIX;
        ck_assert_msg(labelled == (row->dims[0] != NULL), "%s: dims", row->path);
        ck_assert_msg((row->kind == STATS_MATRIX) == (row->dims[1] != NULL), "%s: dims", row->path);
        for (size_t k = 0; k < i; k++)
            ck_assert_msg(strcmp(stats_rows[k].path, row->path) != 0, "%s twice", row->path);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("stats");
    TCase *tc = tcase_create("stats");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, the_test_json_reader_refuses_bad_documents);
    tcase_add_test(tc, stats_is_one_line_of_valid_json);
    tcase_add_test(tc, stats_has_every_row_at_its_path);
    tcase_add_test(tc, stats_values_match_the_source);
    tcase_add_test(tc, stats_matrix_leaves_out_zeros);
    tcase_add_test(tc, stats_groups_hold_exactly_their_rows);
    tcase_add_test(tc, stats_shows_the_lock_held);
    tcase_add_test(tc, stats_lists_recent_grants);
    tcase_add_test(tc, stats_is_valid_json_to_python);
    tcase_add_test(tc, metrics_lines_are_well_formed);
    tcase_add_test(tc, metrics_has_one_help_and_type_per_family);
    tcase_add_test(tc, metrics_values_match_the_source);
    tcase_add_test(tc, metrics_vectors_list_every_label_and_the_matrix_no_zero);
    tcase_add_test(tc, metrics_histograms_are_cumulative_and_end_in_inf);
    tcase_add_test(tc, a_document_that_does_not_fit_is_zero);
    tcase_add_test(tc, the_largest_documents_fit_the_route_buffer);
    tcase_add_test(tc, status_slots_round_trip);
    tcase_add_test(tc, every_name_is_present_and_distinct);
    tcase_add_test(tc, tally_response_counts_in_its_cell);
    tcase_add_test(tc, every_row_is_complete);
    suite_add_tcase(s, tc);
    return check_run(s);
}
