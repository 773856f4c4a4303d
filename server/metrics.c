/* metrics: see metrics.h. Every family comes from stats.h's table. Names
 * follow Prometheus conventions: base units (seconds), _total for
 * counters, one HELP and TYPE line per family. */
#include "metrics.h"

#include "stats.h"
#include "textbuf.h"

/* Histogram buckets, in microseconds: 100 us to 10 s, 1-2.5-5 steps. */
static const uint64_t bucket_us[] = {100,     250,     500,     1000,    2500,   5000,
                                     10000,   25000,   50000,   100000,  250000, 500000,
                                     1000000, 2500000, 5000000, 10000000};

static const char *type_of(enum stats_kind kind)
{
    switch (kind) {
    case STATS_COUNTER:
    case STATS_VECTOR:
    case STATS_MATRIX:
        return "counter";
    case STATS_HIST:
        return "histogram";
    default:
        return "gauge";
    }
}

static void histogram(struct textbuf *t, const char *name, const struct hist *h)
{
    for (size_t i = 0; i < sizeof(bucket_us) / sizeof(bucket_us[0]); i++)
        textbuf_printf(t, "turnstile_%s_bucket{le=\"%g\"} %llu\n", name, (double)bucket_us[i] / 1e6,
                       (unsigned long long)hist_count_le(h, bucket_us[i]));
    textbuf_printf(t, "turnstile_%s_bucket{le=\"+Inf\"} %llu\n", name,
                   (unsigned long long)h->count);
    textbuf_printf(t, "turnstile_%s_sum %.6f\n", name, (double)h->sum / 1e6);
    textbuf_printf(t, "turnstile_%s_count %llu\n", name, (unsigned long long)h->count);
}

/* Every label value, zeros included: a series that appears only once it
 * is non-zero would make rate() miss its first increase. */
static void vector(struct textbuf *t, const struct stats_row *row, const uint64_t *v)
{
    const struct stats_dim *d = row->dims[0];
    for (unsigned i = 0; i < d->n; i++)
        textbuf_printf(t, "turnstile_%s{%s=\"%s\"} %llu\n", row->metric, d->label, d->names[i],
                       (unsigned long long)v[i]);
}

/* Route by status would be mostly zeros: those are left out. */
static void matrix(struct textbuf *t, const struct stats_row *row, const uint64_t *m)
{
    const struct stats_dim *rows = row->dims[0], *cols = row->dims[1];
    for (unsigned r = 0; r < rows->n; r++)
        for (unsigned c = 0; c < cols->n; c++)
            if (m[r * cols->n + c])
                textbuf_printf(t, "turnstile_%s{%s=\"%s\",%s=\"%s\"} %llu\n", row->metric,
                               rows->label, rows->names[r], cols->label, cols->names[c],
                               (unsigned long long)m[r * cols->n + c]);
}

static void family(struct textbuf *t, const struct stats_row *row, const struct stats_snapshot *s)
{
    const void *p = (const char *)s + row->off;
    textbuf_printf(t, "# HELP turnstile_%s %s\n# TYPE turnstile_%s %s\n", row->metric, row->help,
                   row->metric, type_of(row->kind));
    switch (row->kind) {
    case STATS_HIST:
        histogram(t, row->metric, p);
        break;
    case STATS_VECTOR:
        vector(t, row, p);
        break;
    case STATS_MATRIX:
        matrix(t, row, p);
        break;
    case STATS_TEXT:
        textbuf_printf(t, "turnstile_%s{value=\"%s\"} 1\n", row->metric, (const char *)p);
        break;
    case STATS_SECONDS:
        textbuf_printf(t, "turnstile_%s %.3f\n", row->metric, (double)*(const uint64_t *)p / 1e6);
        break;
    default:
        textbuf_printf(t, "turnstile_%s %llu\n", row->metric,
                       (unsigned long long)*(const uint64_t *)p);
    }
}

size_t metrics_text(const struct stats_source *src, char *buf, size_t cap)
{
    const struct stats_snapshot *s = stats_take(src);
    struct textbuf t;
    textbuf_init(&t, buf, cap);
    for (size_t i = 0; i < stats_nrows; i++)
        if (stats_rows[i].metric)
            family(&t, &stats_rows[i], s);
    if (s->cluster_enabled)
        cluster_view_metrics(&t, &s->view);
    return textbuf_len(&t);
}
