/*
 * status_metrics.h — which counters colo-proxy exports, and under which names.
 *
 * Each function adds one owner's snapshot to a metric set (metrics.h): the
 * compare engine and its connection table, the QMP channel, the DPDK pipeline,
 * socket mode. Names follow Prometheus conventions (base units, `_total` added
 * to counters by the renderer, one label per family); docs/operations.md lists them.
 */
#ifndef COLO_STATUS_METRICS_H
#define COLO_STATUS_METRICS_H

#include <stdbool.h>

#include "colo/checkpoint_ctl.h"
#include "colo/compare.h"
#include "colo/metrics.h"
#include "colo/tcp_track.h"

struct chardev_endpoint;
struct pipeline_stats;
struct seq_rewriter_stats;

/* bypass: the rules in effect, whose counts are s->bypass_hits. */
void status_metrics_compare(struct metric_set *m, const struct colo_compare_stats *s,
                            const struct conn_table_stats *conns, uint32_t conns_max,
                            const struct bypass_rules *bypass);
/* Socket mode: qmp, notify_dev, both, or none (no checkpoint can ever be asked for). */
void status_metrics_checkpoint_channel(struct metric_set *m, bool qmp, bool notify_dev);
void status_metrics_qmp(struct metric_set *m, const struct checkpoint_ctl_stats *s);
void status_metrics_pipeline(struct metric_set *m, const struct pipeline_stats *s);
void status_metrics_rewriter(struct metric_set *m, const struct seq_rewriter_stats *s);
/* Socket modes: each opened endpoint's connection state, peers and bad peers, by its option name. */
void status_metrics_endpoints(struct metric_set *m, const struct chardev_endpoint *ep, const bool *opened,
                              const char *const *names, int n);

#endif
