/*
 * status_metrics.c — the exported counters of the engine, QMP and the DPDK pipeline.
 *
 * Only names and meanings live here: every value comes from a snapshot its owner
 * took. Reasons and kinds become one labelled family each, so a new reason shows
 * up everywhere at once.
 */
#include "colo/status_metrics.h"

#include "colo/chardev_endpoint.h"
#include "colo/pipeline.h"
#include "colo/seq_rewrite.h"

static void labelled(struct metric_set *m, const char *name, const char *help, const char *label,
                     const uint64_t *v, int n, const char *(*label_of)(int))
{
    for (int i = 0; i < n; i++)
        metric_counter(m, name, help, label, label_of(i), v[i]);
}

static const char *ckpt_label(int i) { return checkpoint_reason_name((enum checkpoint_reason)i); }
static const char *release_label(int i) { return release_reason_name((enum release_reason)i); }
static const char *div_label(int i) { return divergence_kind_name((enum divergence_kind)i); }

void status_metrics_compare(struct metric_set *m, const struct colo_compare_stats *s,
                            const struct conn_table_stats *conns, uint32_t conns_max,
                            const struct bypass_rules *bypass)
{
    metric_gauge(m, "connections", "Connections tracked now", NULL, NULL, conns->in_use);
    metric_gauge(m, "connections_in_use_max", "Most connections tracked at once", NULL, NULL, conns->in_use_max);
    metric_gauge(m, "connections_max", "Size of the connection table", NULL, NULL, conns_max);
    metric_counter(m, "connections_created", "Connections created", NULL, NULL, conns->created);
    metric_counter(m, "connections_expired", "Connections expired (FIN, RST, idle)", NULL, NULL, conns->expired);
    metric_counter(m, "connections_evicted", "Connections evicted for room", NULL, NULL, conns->evicted);
    metric_counter(m, "connections_probe_full", "New connections refused: the slots their key may take were full",
                   NULL, NULL, conns->probe_full);
    metric_counter(m, "pvm_packets", "PVM packets compared", NULL, NULL, s->pvm_in);
    metric_counter(m, "svm_packets", "SVM packets compared", NULL, NULL, s->svm_in);
    labelled(m, "released_packets", "PVM packets released, by why", "reason", s->released,
             RELEASE_REASON_COUNT, release_label);
    metric_gauge(m, "held_packets", "PVM packets held now", NULL, NULL, (double)s->pvm_held);
    metric_gauge(m, "held_packets_max", "Most PVM packets held at once", NULL, NULL, (double)s->pvm_held_max);
    metric_gauge(m, "svm_held_packets", "SVM packets queued for comparison now", NULL, NULL, (double)s->svm_held);
    labelled(m, "divergences", "Divergences between PVM and SVM output, by kind", "kind", s->divergences,
             DIV_KIND_COUNT, div_label);
    labelled(m, "checkpoint_requests", "Checkpoints asked for, by reason", "reason", s->checkpoint_requests,
             CKPT_REASON_COUNT, ckpt_label);
    metric_counter(m, "checkpoint_requests_deferred", "Requests delayed by checkpoint-min-interval", NULL, NULL,
                   s->checkpoint_requests_deferred);
    metric_counter(m, "checkpoints", "Checkpoints completed", NULL, NULL, s->checkpoints_done);
    for (unsigned i = 0; i < bypass->count; i++)
        metric_counter(m, "bypass_packets", "Frames (PVM and SVM) left uncompared, by bypass rule", "rule",
                       bypass->rule[i].text, s->bypass_hits[i]);
    metric_latency(m, "hold_latency_seconds", "Time a PVM packet was held before release", &s->hold);
    metric_latency(m, "checkpoint_wait_seconds", "Time from a checkpoint request to its completion",
                   &s->checkpoint_wait);
}

void status_metrics_checkpoint_channel(struct metric_set *m, bool qmp, bool notify_dev)
{
    metric_info(m, "checkpoint_channel", "How this colo-proxy asks QEMU for checkpoints (none: it cannot)",
                "channel", qmp && notify_dev ? "qmp+notify_dev" : qmp ? "qmp" : notify_dev ? "notify_dev" : "none");
}

void status_metrics_qmp(struct metric_set *m, const struct checkpoint_ctl_stats *s)
{
    metric_gauge(m, "qmp_connected", "1 while the QMP channel to QEMU is up", NULL, NULL, s->connected);
    metric_gauge(m, "qmp_in_colo", "1 while QEMU reports the COLO state", NULL, NULL, s->in_colo);
    metric_counter(m, "qmp_connects", "QMP connections made", NULL, NULL, s->connects);
    metric_counter(m, "qmp_requests_sent", "Checkpoint requests sent to QEMU", NULL, NULL, s->requests_sent);
    metric_counter(m, "qmp_requests_coalesced", "Requests merged into one in flight", NULL, NULL,
                   s->requests_coalesced);
    metric_counter(m, "qmp_checkpoints_seen", "Checkpoints seen on QMP (STOP then RESUME)", NULL, NULL,
                   s->checkpoints_seen);
    metric_counter(m, "qmp_errors", "Errors QEMU answered", NULL, NULL, s->errors);
    metric_latency(m, "checkpoint_duration_seconds", "Checkpoints as QEMU ran them, STOP to RESUME", &s->stopped);
}

static void ports(struct metric_set *m, const struct pipeline_stats *s)
{
    for (int r = 0; r < PORT_ROLE_COUNT; r++) {
        const struct port_stats *p = &s->ports[r];
        if (!p->in_use)
            continue;
        const char *name = port_role_name((enum port_role)r);
        metric_gauge(m, "port_link_up", "1 while the port's link is up", "port", name, p->link_up);
        metric_counter(m, "port_rx_packets", "Frames received per port", "port", name, p->rx);
        metric_counter(m, "port_tx_packets", "Frames sent per port", "port", name, p->tx);
        metric_gauge(m, "port_tx_queue", "Frames waiting to be sent per port", "port", name, (double)p->tx_pending);
    }
    for (int r = 0; r < PORT_ROLE_COUNT; r++) {
        const struct port_stats *p = &s->ports[r];
        if (!p->in_use)
            continue;
        const char *name = port_role_name((enum port_role)r);
        uint64_t longest = p->down_now_ns > p->watch.down_ns_longest ? p->down_now_ns : p->watch.down_ns_longest;
        metric_counter(m, "port_link_downs", "Times the port's link went down after it was first up", "port", name,
                       p->watch.downs);
        metric_gauge(m, "port_down_seconds", "Time the port's link was down in all, since it was first up", "port",
                     name, (double)(p->watch.down_ns_total + p->down_now_ns) / 1e9);
        metric_gauge(m, "port_down_longest_seconds", "The port's longest time down", "port", name, (double)longest / 1e9);
        metric_counter(m, "port_held_while_down_packets", "Frames queued for the port while its link was down", "port",
                       name, p->held_while_down);
        metric_gauge(m, "port_held_while_down_max", "Most frames waiting for the port at once while it was down",
                     "port", name, (double)p->held_while_down_max);
        metric_counter(m, "port_held_back_polls", "Polls whose input waited: the down port's queue was at its bound",
                       "port", name, p->held_back);
    }
}

/* The last checkpoint as the VM's port and QMP saw it; the SVM's epochs. */
static void checkpoint_signals(struct metric_set *m, const struct pipeline_stats *s)
{
    const struct checkpoint_signals *g = &s->signals;
    metric_counter(m, "checkpoint_signals", "Checkpoint begins and ends, by who saw them", "signal", "port_down",
                   g->port_began);
    metric_counter(m, "checkpoint_signals", "Checkpoint begins and ends, by who saw them", "signal", "port_up",
                   g->port_ended);
    metric_counter(m, "checkpoint_signals", "Checkpoint begins and ends, by who saw them", "signal", "qmp_stop",
                   g->qmp_began);
    metric_counter(m, "checkpoint_signals", "Checkpoint begins and ends, by who saw them", "signal", "qmp_resume",
                   g->qmp_done);
    metric_gauge(m, "last_checkpoint_seconds", "The last checkpoint: the VM's port down, QMP's STOP to RESUME",
                 "signal", "port_down", (double)g->last_port_down_ns / 1e9);
    metric_gauge(m, "last_checkpoint_seconds", "The last checkpoint: the VM's port down, QMP's STOP to RESUME",
                 "signal", "qmp", (double)g->last_qmp_ns / 1e9);
    if (g->paired) {
        metric_gauge(m, "last_checkpoint_port_minus_qmp_seconds", "The VM's port down time less QMP's STOP to RESUME",
                     NULL, NULL, (double)g->down_minus_qmp_ns / 1e9);
        metric_gauge(m, "last_checkpoint_port_up_after_resume_seconds",
                     "The VM's port came up this long after QMP's RESUME (negative: before)", NULL, NULL,
                     (double)g->up_minus_resume_ns / 1e9);
    }
    metric_gauge(m, "svm_epoch", "The SVM's epoch: resumes marked (secondary) or markers seen (primary)", NULL, NULL,
                 g->epoch);
    metric_counter(m, "epoch_markers", "Epoch markers sent (secondary) or received (primary)", NULL, NULL, g->markers);
    if (s->role == ROLE_PRIMARY) {
        metric_counter(m, "epoch_marker_gaps", "Markers whose number did not follow the last one", NULL, NULL,
                       g->marker_gaps);
        metric_gauge(m, "svm_resumed_before_checkpoint_end_seconds",
                     "The SVM's marker came this long before the last checkpoint's end", NULL, NULL,
                     (double)g->svm_ahead_ns / 1e9);
        metric_counter(m, "svm_stale_epoch_packets", "SVM packets from before the SVM's resume, discarded on arrival",
                       NULL, NULL, s->compare.svm_stale_epoch);
        metric_counter(m, "svm_kept_new_epoch_packets",
                       "SVM packets from after the SVM's resume kept through a checkpoint", NULL, NULL,
                       s->compare.svm_kept_new_epoch);
    }
    metric_gauge(m, "vm_dead", "1 once the VM's port stayed down longer than --vm-down-ms (this side is silent)",
                 NULL, NULL, s->vm_dead);
}

static void heartbeat(struct metric_set *m, const struct pipeline_stats *s)
{
    metric_info(m, "heartbeat_state", "The peer colo-proxy as the heartbeat sees it", "state",
                heartbeat_state_name(s->heartbeat.state));
    metric_gauge(m, "heartbeat_rtt_seconds", "Heartbeat round trip to the peer", NULL, NULL,
                 (double)s->heartbeat.rtt_ns / 1e9);
    metric_counter(m, "heartbeat_peer_lost", "Times the peer was declared down", NULL, NULL, s->heartbeat.went_down);
    metric_info(m, "failover", "Why this host stopped relying on its peer", "reason",
                failover_reason_name(s->failover.reason));
}

void status_metrics_pipeline(struct metric_set *m, const struct pipeline_stats *s)
{
    metric_info(m, "role", "What this colo-proxy is", "role", role_name(s->role));
    ports(m, s);
    if (s->role == ROLE_PRIMARY) {
        metric_counter(m, "mirrored_packets", "Client frames mirrored to the secondary", NULL, NULL,
                       s->mirror.mirrored);
        status_metrics_compare(m, &s->compare, &s->conns, s->conns_max, &s->bypass);
        metric_gauge(m, "alone", "1 once the secondary is lost and PVM output passes straight", NULL, NULL,
                     s->alone);
    } else {
        status_metrics_rewriter(m, &s->rewrite);
        metric_gauge(m, "taken_over", "1 once this secondary serves the clients", NULL, NULL, s->taken_over);
    }
    heartbeat(m, s);
    checkpoint_signals(m, s);
}

void status_metrics_rewriter(struct metric_set *m, const struct seq_rewriter_stats *s)
{
    metric_counter(m, "forwarded_packets", "Frames passed on", "direction", "to_svm", s->to_svm);
    metric_counter(m, "forwarded_packets", "Frames passed on", "direction", "to_primary", s->to_link);
    metric_counter(m, "rewritten_packets", "Segments whose sequence numbers were shifted", "direction", "to_svm",
                   s->rewritten_to_svm);
    metric_counter(m, "rewritten_packets", "Segments whose sequence numbers were shifted", "direction",
                   "to_primary", s->rewritten_to_link);
    metric_counter(m, "offsets_learned", "Connections whose offset was learned", "open", "client", s->learned_passive);
    metric_counter(m, "offsets_learned", "Connections whose offset was learned", "open", "guest", s->learned_active);
    metric_counter(m, "early_segments_held", "Client segments held until the SVM's SYN-ACK", NULL, NULL,
                   s->held_early);
    metric_counter(m, "early_segments_dropped", "Held client segments given up on", NULL, NULL, s->dropped_early);
    metric_counter(m, "checkpoints", "Checkpoints completed (offsets reset)", NULL, NULL, s->checkpoints);
}

void status_metrics_endpoints(struct metric_set *m, const struct chardev_endpoint *ep, const bool *opened,
                              const char *const *names, int n)
{
    for (int r = 0; r < n; r++)
        if (opened[r])
            metric_gauge(m, "socket_connected", "1 while the chardev peer is connected", "socket", names[r],
                         chardev_endpoint_connected(&ep[r]));
    for (int r = 0; r < n; r++)
        if (opened[r])
            metric_counter(m, "socket_connects", "Chardev peers connected", "socket", names[r], ep[r].stats.connects);
    for (int r = 0; r < n; r++)
        if (opened[r])
            metric_counter(m, "socket_bad_peers", "Peers disconnected for a bad record", "socket", names[r],
                           ep[r].stats.bad_peers);
}
