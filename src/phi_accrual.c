/*
 * phi_accrual.c — the phi-accrual detector's window and its phi (phi_accrual.h).
 * Owns a ring of inter-arrival samples and their running sums; nothing else.
 */
#include "colo/phi_accrual.h"

#include <math.h>
#include <string.h>

#define NS_PER_MS 1e6

static void add_sample(struct phi_detector *d, double ms)
{
    if (d->count == d->cfg.window) {
        double old = d->samples_ms[d->next];
        d->sum -= old;
        d->sum_sq -= old * old;
    } else {
        d->count++;
    }
    d->samples_ms[d->next] = ms;
    d->sum += ms;
    d->sum_sq += ms * ms;
    d->next = (d->next + 1) % d->cfg.window;
}

void phi_init(struct phi_detector *d, const struct phi_config *cfg)
{
    memset(d, 0, sizeof(*d));
    d->cfg = *cfg;
    if (d->cfg.window < 2 || d->cfg.window > PHI_WINDOW_MAX)
        d->cfg.window = PHI_WINDOW_DEFAULT;
    if (!d->cfg.min_std_ms)
        d->cfg.min_std_ms = PHI_MIN_STD_MS_DEFAULT;
    if (d->cfg.threshold <= 0)
        d->cfg.threshold = PHI_THRESHOLD_DEFAULT;
    double interval = d->cfg.expected_interval_ms ? d->cfg.expected_interval_ms : 1;
    add_sample(d, interval - interval / 4);
    add_sample(d, interval + interval / 4);
}

void phi_heartbeat(struct phi_detector *d, uint64_t now_ns)
{
    if (d->heard && now_ns >= d->last_ns)
        add_sample(d, (double)(now_ns - d->last_ns) / NS_PER_MS);
    d->heard = true;
    d->last_ns = now_ns;
}

double phi_mean_ms(const struct phi_detector *d)
{
    return d->sum / d->count;
}

double phi_std_ms(const struct phi_detector *d)
{
    double mean = phi_mean_ms(d);
    double var = d->sum_sq / d->count - mean * mean;
    double std = var > 0 ? sqrt(var) : 0;
    return std > d->cfg.min_std_ms ? std : d->cfg.min_std_ms;
}

/*
 * -log10 of P(a heartbeat comes later than elapsed), with the logistic approximation of the
 * normal tail: P = 1 / (1 + exp(z)), z = y (1.5976 + 0.070566 y^2), y = (elapsed - mean) / std;
 * so phi = log10(1 + exp(z)), written so that a long silence gives a large phi, not infinity.
 */
static double phi_of(double elapsed_ms, double mean, double std)
{
    double y = (elapsed_ms - mean) / std;
    double z = y * (1.5976 + 0.070566 * y * y);
    return (z > 0 ? z + log1p(exp(-z)) : log1p(exp(z))) / M_LN10;
}

double phi_value(const struct phi_detector *d, uint64_t now_ns)
{
    if (!d->heard || now_ns <= d->last_ns)
        return 0;
    return phi_of((double)(now_ns - d->last_ns) / NS_PER_MS, phi_mean_ms(d), phi_std_ms(d));
}

bool phi_suspect(const struct phi_detector *d, uint64_t now_ns)
{
    return phi_value(d, now_ns) > d->cfg.threshold;
}

double phi_detection_ms(const struct phi_detector *d)
{
    double mean = phi_mean_ms(d), std = phi_std_ms(d), lo = 0, hi = mean + 64 * std;
    while (hi - lo > 0.1) {
        double mid = (lo + hi) / 2;
        if (phi_of(mid, mean, std) > d->cfg.threshold)
            hi = mid;
        else
            lo = mid;
    }
    return hi;
}
