/* hist: a small log-bucketed histogram of unsigned values (microseconds).
 *
 * Values below 16 have a bucket each; above, every power of two is split in
 * 16 sub-buckets, so a bucket is at most 1/16 (6.25 %) wider than its lower
 * bound. Recording is O(1) with no allocation; percentiles walk the buckets. */
#ifndef TURNSTILE_HIST_H
#define TURNSTILE_HIST_H

#include <stdint.h>

#define HIST_SUB_BITS 4
#define HIST_SUB      (1u << HIST_SUB_BITS)
/* Enough buckets for any uint64_t value. */
#define HIST_NBUCKETS ((64 - HIST_SUB_BITS + 1) * HIST_SUB)

struct hist {
    uint64_t count;
    uint64_t sum;
    uint64_t max;
    uint64_t buckets[HIST_NBUCKETS];
};

void hist_init(struct hist *h);
void hist_record(struct hist *h, uint64_t value);
/* Adds from's values to to: per-loop histograms summed when read. */
void hist_merge(struct hist *to, const struct hist *from);
/* The value at percentile p (0 < p <= 100): the upper bound of the bucket
 * holding the ceil(p% * count)-th smallest value, capped at the maximum
 * recorded. 0 for an empty histogram. */
uint64_t hist_percentile(const struct hist *h, double p);

/* Bucket geometry. */
unsigned hist_bucket_of(uint64_t value);
uint64_t hist_bucket_upper(unsigned bucket); /* largest value in the bucket */

/* How many recorded values are <= limit, for cumulative exporters
 * (Prometheus `le`). A bucket that straddles limit counts only in the next
 * one up, so the answer may be low by one bucket's share, never high. */
uint64_t hist_count_le(const struct hist *h, uint64_t limit);

#endif
