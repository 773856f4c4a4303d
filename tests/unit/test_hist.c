/* Unit tests for lib/hist.c: bucket geometry and percentiles against a
 * sorted reference. */
#include <check.h>
#include <math.h>
#include <stdlib.h>

#include "rng.h"
#include "check_run.h"
#include "hist.h"

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

START_TEST(buckets_cover_values)
{
    /* Every value lands in a bucket whose bounds contain it, and the
     * bucket is at most 1/16 wider than its smallest value. */
    for (int i = 0; i < 200000; i++) {
        uint64_t v = rng() >> (rng() % 64);
        unsigned b = hist_bucket_of(v);
        ck_assert_uint_lt(b, HIST_NBUCKETS);
        uint64_t upper = hist_bucket_upper(b);
        uint64_t lower = b == 0 ? 0 : hist_bucket_upper(b - 1) + 1;
        ck_assert(lower <= v && v <= upper);
        ck_assert_uint_le(upper - lower, lower / HIST_SUB);
    }
    ck_assert_uint_eq(hist_bucket_upper(hist_bucket_of(UINT64_MAX)), UINT64_MAX);
    for (uint64_t v = 0; v < HIST_SUB; v++)
        ck_assert_uint_eq(hist_bucket_upper(hist_bucket_of(v)), v); /* exact */
}
END_TEST

static void check_against_reference(uint64_t *vals, size_t n)
{
    struct hist h;
    hist_init(&h);
    for (size_t i = 0; i < n; i++)
        hist_record(&h, vals[i]);
    qsort(vals, n, sizeof(*vals), cmp_u64);
    const double ps[] = {1, 10, 50, 90, 99, 99.9, 100};
    for (size_t i = 0; i < sizeof(ps) / sizeof(ps[0]); i++) {
        size_t rank = (size_t)ceil(ps[i] / 100.0 * (double)n);
        uint64_t ref = vals[(rank ? rank : 1) - 1];
        uint64_t got = hist_percentile(&h, ps[i]);
        ck_assert_msg(got >= ref && got <= ref + ref / HIST_SUB,
                      "p%.1f: got %lu want %lu (+6.25%%)", ps[i], (unsigned long)got,
                      (unsigned long)ref);
    }
    ck_assert_uint_eq(hist_percentile(&h, 100), vals[n - 1]);
    ck_assert_uint_eq(h.max, vals[n - 1]);
    ck_assert_uint_eq(h.count, n);
}

START_TEST(percentiles_match_sorted_reference)
{
    enum { N = 100000 };
    static uint64_t vals[N];
    for (int round = 0; round < 5; round++) {
        for (int i = 0; i < N; i++) /* log-uniform: spans every magnitude */
            vals[i] = rng() >> (rng() % 50 + 14);
        check_against_reference(vals, N);
    }
    for (int i = 0; i < N; i++) /* a narrow band: microsecond latencies */
        vals[i] = 950 + rng() % 100;
    check_against_reference(vals, N);
}
END_TEST

START_TEST(empty_and_single)
{
    struct hist h;
    hist_init(&h);
    ck_assert_uint_eq(hist_percentile(&h, 50), 0);
    hist_record(&h, 1234);
    ck_assert_uint_eq(hist_percentile(&h, 1), 1234);
    ck_assert_uint_eq(hist_percentile(&h, 99), 1234);
    ck_assert_uint_eq(h.sum, 1234);
}
END_TEST

/* Per-loop histograms summed: the same as one that saw every value. */
START_TEST(merge_equals_recording_all)
{
    static struct hist a, b, all;
    hist_init(&a);
    hist_init(&b);
    hist_init(&all);
    for (uint64_t v = 1; v < 100000; v = v * 3 + 1) {
        hist_record(v % 2 ? &a : &b, v);
        hist_record(&all, v);
    }
    hist_merge(&a, &b);
    ck_assert_mem_eq(&a, &all, sizeof(all));
}
END_TEST

/* Cumulative counts never exceed the true count at the limit and never
 * fall short of the count at the limit less one bucket's width. */
START_TEST(count_le_brackets_the_truth)
{
    enum { N = 20000 };
    static uint64_t vals[N];
    struct hist h;
    hist_init(&h);
    for (int i = 0; i < N; i++) {
        vals[i] = rng() >> (rng() % 40 + 24);
        hist_record(&h, vals[i]);
    }
    const uint64_t limits[] = {0, 15, 100, 250, 1000, 2500, 100000, UINT64_MAX};
    for (size_t l = 0; l < sizeof(limits) / sizeof(limits[0]); l++) {
        uint64_t lim = limits[l], at_most = 0, below_bucket = 0;
        uint64_t floor = lim - lim / HIST_SUB; /* the straddling bucket starts above this */
        for (int i = 0; i < N; i++) {
            at_most += vals[i] <= lim;
            below_bucket += vals[i] < floor;
        }
        uint64_t got = hist_count_le(&h, lim);
        ck_assert_uint_le(got, at_most);
        ck_assert_uint_ge(got, below_bucket);
    }
    ck_assert_uint_eq(hist_count_le(&h, UINT64_MAX), N);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("hist");
    TCase *tc = tcase_create("hist");
    tcase_add_test(tc, buckets_cover_values);
    tcase_add_test(tc, percentiles_match_sorted_reference);
    tcase_add_test(tc, empty_and_single);
    tcase_add_test(tc, count_le_brackets_the_truth);
    tcase_add_test(tc, merge_equals_recording_all);
    suite_add_tcase(s, tc);
    return check_run(s);
}
