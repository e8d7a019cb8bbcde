/*
 * metrics.h — one snapshot of what colo-proxy is doing, in three renderings.
 *
 * A metric set is an ordered list of samples, each of a family (a name, a help
 * line, a type) and at most one label. Whoever owns the counters fills a set
 * from a snapshot (status_metrics.h); the same set then becomes the Prometheus
 * text exposition (families prefixed `colo_proxy_`, counters suffixed `_total`,
 * latencies in seconds as summaries), the JSON of `colo-proxy status --json`, or
 * the human table of `colo-proxy status`, so the three never disagree. Names
 * and label values are copied; the set owns its memory.
 */
#ifndef COLO_METRICS_H
#define COLO_METRICS_H

#include <stdint.h>

#include "colo/latency_hist.h"

struct metric_set;

struct metric_set *metric_set_new(void);
void metric_set_free(struct metric_set *m);

/* label may be NULL (then label_value is ignored). */
void metric_counter(struct metric_set *m, const char *name, const char *help, const char *label,
                    const char *label_value, uint64_t value);
void metric_gauge(struct metric_set *m, const char *name, const char *help, const char *label,
                  const char *label_value, double value);
/* A state as text: a gauge of 1 labelled with it (Prometheus' info idiom). */
void metric_info(struct metric_set *m, const char *name, const char *help, const char *label,
                 const char *value);
/* A latency histogram as a summary: p50, p90, p99, p99.9, count and sum, in seconds. */
void metric_latency(struct metric_set *m, const char *name, const char *help, const struct latency_hist *h);

/* Renderings; each returns a string the caller frees with g_free. */
char *metric_set_prometheus(const struct metric_set *m);
char *metric_set_json(const struct metric_set *m);
char *metric_set_table(const struct metric_set *m);

#endif
