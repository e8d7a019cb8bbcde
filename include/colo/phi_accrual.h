/*
 * phi_accrual.h — a phi-accrual failure detector over heartbeat inter-arrival
 * times (Hayashibara et al., 2004; as in Akka and Cassandra).
 *
 * Instead of "down after N silent intervals", it keeps the last `window`
 * inter-arrival times and judges the current silence against them: phi is
 * -log10 of the probability that a heartbeat comes even later than now, under a
 * normal distribution of the observed mean and standard deviation (the logistic
 * approximation Akka uses). phi 8 means a one in 10^8 chance that the peer is
 * only late. The standard deviation has a floor (`min_std_ms`), so a peer whose
 * heartbeats were perfectly regular until now is not declared dead by the first
 * stall of a loaded host; jitter actually seen raises it further.
 *
 * Before any inter-arrival is known, the window holds two samples a quarter of
 * `expected_interval_ms` either side of it, as Akka seeds its detector.
 *
 * Pure: stepped with an explicit now; no clock, no I/O.
 */
#ifndef COLO_PHI_ACCRUAL_H
#define COLO_PHI_ACCRUAL_H

#include <stdbool.h>
#include <stdint.h>

#define PHI_WINDOW_MAX 1000
#define PHI_WINDOW_DEFAULT 100
#define PHI_MIN_STD_MS_DEFAULT 30
#define PHI_THRESHOLD_DEFAULT 8.0

struct phi_config {
    uint32_t expected_interval_ms; /* the heartbeat interval the peer was told to use */
    uint32_t window;               /* inter-arrival samples kept (2..PHI_WINDOW_MAX); 0: default */
    uint32_t min_std_ms;           /* floor of the standard deviation; 0: default */
    double threshold;              /* suspect the peer above this phi; 0: default */
};

struct phi_detector {
    struct phi_config cfg;
    double samples_ms[PHI_WINDOW_MAX];
    uint32_t count, next;
    double sum, sum_sq;
    uint64_t last_ns;
    bool heard;
};

void phi_init(struct phi_detector *d, const struct phi_config *cfg);

/* A heartbeat arrived at now. The first one only starts the clock. */
void phi_heartbeat(struct phi_detector *d, uint64_t now_ns);

/* The suspicion level now: 0 before the first heartbeat. */
double phi_value(const struct phi_detector *d, uint64_t now_ns);

/* Is phi above the threshold? */
bool phi_suspect(const struct phi_detector *d, uint64_t now_ns);

double phi_mean_ms(const struct phi_detector *d);
double phi_std_ms(const struct phi_detector *d); /* with its floor */

/* How long after the last heartbeat phi crosses the threshold, as the window stands (to 0.1 ms). */
double phi_detection_ms(const struct phi_detector *d);

#endif
