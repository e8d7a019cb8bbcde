/*
 * latency_hist.c — log-linear latency buckets: record and read quantiles.
 *
 * Bucket i < 8 holds exactly i ns. Above, a value with its top bit at e (e >= 3)
 * goes to bucket (e - 2) * 8 + the three bits below the top one, so each power
 * of two is split into 8 equal parts.
 */
#include "colo/latency_hist.h"

static unsigned bucket_of(uint64_t ns)
{
    if (ns < LATENCY_HIST_SUB)
        return (unsigned)ns;
    unsigned e = 63u - (unsigned)__builtin_clzll(ns);
    if (e >= LATENCY_HIST_MAX_LOG2)
        return LATENCY_HIST_BUCKETS - 1;
    return (e - 2) * LATENCY_HIST_SUB + (unsigned)((ns >> (e - 3)) & (LATENCY_HIST_SUB - 1));
}

/* The largest value that falls in bucket b. */
static uint64_t bucket_upper(unsigned b)
{
    if (b < LATENCY_HIST_SUB)
        return b;
    unsigned e = b / LATENCY_HIST_SUB + 2, sub = b % LATENCY_HIST_SUB;
    uint64_t low = (1ull << e) + ((uint64_t)sub << (e - 3));
    return low + (1ull << (e - 3)) - 1;
}

void latency_hist_record(struct latency_hist *h, uint64_t ns)
{
    h->bucket[bucket_of(ns)]++;
    h->count++;
    h->sum_ns += ns;
    if (ns > h->max_ns)
        h->max_ns = ns;
}

uint64_t latency_hist_quantile(const struct latency_hist *h, double q)
{
    if (!h->count)
        return 0;
    uint64_t rank = (uint64_t)(q * (double)h->count + 0.5);
    if (rank < 1)
        rank = 1;
    uint64_t seen = 0;
    for (unsigned b = 0; b < LATENCY_HIST_BUCKETS; b++) {
        seen += h->bucket[b];
        if (seen >= rank) {
            if (b == LATENCY_HIST_BUCKETS - 1)
                return h->max_ns; /* the overflow bucket has no upper edge */
            uint64_t upper = bucket_upper(b);
            return upper < h->max_ns ? upper : h->max_ns;
        }
    }
    return h->max_ns;
}
