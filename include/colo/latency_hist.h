/*
 * latency_hist.h — a fixed-size latency histogram for the fast path.
 *
 * Log-linear buckets (8 per power of two, so a quantile is within 12.5% of the
 * truth), counted in nanoseconds from 0 to 2^40 ns (about 18 minutes; longer
 * values land in the last bucket). Recording is a count-leading-zeros and two
 * increments: no allocation, no locks. Snapshots are plain struct copies.
 */
#ifndef COLO_LATENCY_HIST_H
#define COLO_LATENCY_HIST_H

#include <stdint.h>

#define LATENCY_HIST_SUB 8
#define LATENCY_HIST_MAX_LOG2 40
#define LATENCY_HIST_BUCKETS ((LATENCY_HIST_MAX_LOG2 - 2) * LATENCY_HIST_SUB + LATENCY_HIST_SUB)

struct latency_hist {
    uint64_t count;
    uint64_t sum_ns;
    uint64_t max_ns;
    uint64_t bucket[LATENCY_HIST_BUCKETS];
};

void latency_hist_record(struct latency_hist *h, uint64_t ns);

/* The q-quantile (0 < q <= 1) in ns: the upper edge of the bucket holding it; 0 when empty. */
uint64_t latency_hist_quantile(const struct latency_hist *h, double q);

#endif
