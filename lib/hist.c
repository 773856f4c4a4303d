/* hist: log-bucketed histogram. See hist.h. */
#include "hist.h"

#include <math.h>
#include <string.h>

void hist_init(struct hist *h)
{
    memset(h, 0, sizeof(*h));
}

unsigned hist_bucket_of(uint64_t v)
{
    if (v < HIST_SUB)
        return (unsigned)v;
    unsigned msb = 63u - (unsigned)__builtin_clzll(v); /* >= HIST_SUB_BITS */
    unsigned shift = msb - HIST_SUB_BITS;
    /* The bits below the leading one select the sub-bucket. */
    return (shift + 1) * HIST_SUB + (unsigned)((v >> shift) & (HIST_SUB - 1));
}

uint64_t hist_bucket_upper(unsigned bucket)
{
    if (bucket < HIST_SUB)
        return bucket;
    unsigned shift = bucket / HIST_SUB - 1;
    uint64_t lower = (uint64_t)(HIST_SUB + bucket % HIST_SUB) << shift;
    return lower + (((uint64_t)1 << shift) - 1);
}

void hist_record(struct hist *h, uint64_t v)
{
    h->buckets[hist_bucket_of(v)]++;
    h->count++;
    h->sum += v;
    if (v > h->max)
        h->max = v;
}

void hist_merge(struct hist *to, const struct hist *from)
{
    for (unsigned b = 0; b < HIST_NBUCKETS; b++)
        to->buckets[b] += from->buckets[b];
    to->count += from->count;
    to->sum += from->sum;
    if (from->max > to->max)
        to->max = from->max;
}

uint64_t hist_percentile(const struct hist *h, double p)
{
    if (h->count == 0)
        return 0;
    uint64_t rank = (uint64_t)ceil(p / 100.0 * (double)h->count);
    if (rank < 1)
        rank = 1;
    uint64_t seen = 0;
    for (unsigned b = 0; b < HIST_NBUCKETS; b++) {
        seen += h->buckets[b];
        if (seen >= rank) {
            uint64_t upper = hist_bucket_upper(b);
            return upper < h->max ? upper : h->max;
        }
    }
    return h->max;
}

uint64_t hist_count_le(const struct hist *h, uint64_t limit)
{
    uint64_t n = 0;
    for (unsigned b = 0; b < HIST_NBUCKETS && hist_bucket_upper(b) <= limit; b++)
        n += h->buckets[b];
    return n;
}
