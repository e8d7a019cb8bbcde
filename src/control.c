/*
 * control.c — the control thread: the DPDK mode's commands, events, snapshots,
 * divergence reports and QMP, all to and from the data plane through rings.
 *
 * Owns: the libevent base and its thread, the ops server (the control socket
 * and /metrics, ops_server.c), the statistics buffer lent to the data plane for
 * a snapshot, and the writing of the captures it lends for divergences. Polls the
 * ring from the data plane on a 1 ms timer. Must never: touch data-plane state
 * except through the rings and the buffers lent with them.
 */
#include "colo/control.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include <rte_ring.h>
#include <rte_ring_elem.h>

#include "colo/checkpoint_ctl.h"
#include "colo/ctrl_msg.h"
#include "colo/divergence_report.h"
#include "colo/log.h"
#include "colo/metrics.h"
#include "colo/ops_server.h"
#include "colo/pipeline.h"
#include "colo/pkt_parse.h"
#include "colo/status_metrics.h"


struct control {
    struct event_base *base;
    struct ops_server *ops;
    struct event *poll_timer;
    struct event *sighup;
    struct rte_ring *to_dp, *from_dp;
    struct checkpoint_ctl *qmp;
    pthread_t thread;
    struct pipeline_stats stats_buf; /* lent to the data plane while a snapshot is taken */
    const char *divergence_reports;
    struct divergence_report_stats reports;
    int (*reload)(void *ctx, struct pipeline_reload *out, const char **divergence_reports);
    void *reload_ctx;
    struct pipeline_reload reload_buf; /* lent to the data plane while reload_in_flight */
    const char *reload_reports;
    bool reload_in_flight;
};

static void send_to_dataplane(struct control *c, uint32_t type, uint32_t arg, void *ptr)
{
    struct ctrl_msg msg = { .type = type, .arg = arg, .ptr = ptr };
    if (rte_ring_enqueue_elem(c->to_dp, &msg, sizeof(msg)) != 0)
        log_msg(LOG_WARNING, "control ring to the data plane is full; message %u lost", type);
}

static void broadcast(struct control *c, const char *line)
{
    ops_server_broadcast(c->ops, line);
}

static void json_u64_array(struct evbuffer *out, const char *name, const uint64_t *v, int n,
                           const char *(*label)(int))
{
    evbuffer_add_printf(out, ",\"%s\":{", name);
    for (int i = 0; i < n; i++)
        evbuffer_add_printf(out, "%s\"%s\":%" PRIu64, i ? "," : "", label(i), v[i]);
    evbuffer_add_printf(out, "}");
}

static const char *ckpt_label(int i) { return checkpoint_reason_name((enum checkpoint_reason)i); }
static const char *release_label(int i) { return release_reason_name((enum release_reason)i); }
static const char *div_label(int i) { return divergence_kind_name((enum divergence_kind)i); }
static const char *malformed_label(int i) { return parse_status_name((enum parse_status)i); }

static uint64_t longest_down_ms(const struct port_stats *p)
{
    return (p->down_now_ns > p->watch.down_ns_longest ? p->down_now_ns : p->watch.down_ns_longest) / 1000000;
}

/* The last checkpoint as the VM's port and QMP saw it, and the SVM's epochs. */
static void write_signals(struct evbuffer *out, const struct pipeline_stats *s)
{
    const struct checkpoint_signals *g = &s->signals;
    evbuffer_add_printf(out, ",\"checkpoint_signals\":{\"vm_port\":\"%s\",\"port_began\":%" PRIu64
                             ",\"port_ended\":%" PRIu64 ",\"qmp_began\":%" PRIu64 ",\"qmp_done\":%" PRIu64
                             ",\"last_port_down_ms\":%.3f,\"last_qmp_stop_to_resume_ms\":%.3f",
                        port_role_name(s->vm_port), g->port_began, g->port_ended, g->qmp_began, g->qmp_done,
                        (double)g->last_port_down_ns / 1e6, (double)g->last_qmp_ns / 1e6);
    if (g->paired)
        evbuffer_add_printf(out, ",\"port_down_minus_qmp_ms\":%.3f,\"port_up_after_resume_ms\":%.3f",
                            (double)g->down_minus_qmp_ns / 1e6, (double)g->up_minus_resume_ns / 1e6);
    evbuffer_add_printf(out, ",\"epoch\":%" PRIu32 ",\"markers\":%" PRIu64, g->epoch, g->markers);
    if (s->role == ROLE_PRIMARY)
        evbuffer_add_printf(out, ",\"marker_gaps\":%" PRIu64 ",\"markers_malformed\":%" PRIu64
                                 ",\"last_stale_through\":%" PRIu32 ",\"last_svm_port_down_ms\":%.3f"
                                 ",\"svm_resumed_before_end_ms\":%.3f,\"svm_stale_epoch\":%" PRIu64
                                 ",\"svm_kept_new_epoch\":%" PRIu64,
                            g->marker_gaps, g->markers_malformed, g->last_stale_through,
                            (double)g->last_svm_down_us / 1e3, (double)g->svm_ahead_ns / 1e6,
                            s->compare.svm_stale_epoch, s->compare.svm_kept_new_epoch);
    evbuffer_add_printf(out, "}");
}

static void write_stats(struct evbuffer *out, const struct pipeline_stats *s)
{
    evbuffer_add_printf(out, "{\"role\":\"%s\",\"ports\":{", role_name(s->role));
    bool first = true;
    for (int r = 0; r < PORT_ROLE_COUNT; r++) {
        const struct port_stats *p = &s->ports[r];
        if (!p->in_use)
            continue;
        evbuffer_add_printf(out, "%s\"%s\":{\"rx\":%" PRIu64 ",\"tx\":%" PRIu64 ",\"tx_pending\":%" PRIu64
                                 ",\"link_up\":%s,\"link_downs\":%" PRIu64 ",\"down_ms\":%" PRIu64
                                 ",\"down_ms_total\":%" PRIu64 ",\"down_ms_longest\":%" PRIu64
                                 ",\"held_while_down\":%" PRIu64 ",\"held_while_down_max\":%" PRIu64
                                 ",\"held_back\":%" PRIu64 "}",
                            first ? "" : ",", port_role_name(r), p->rx, p->tx, p->tx_pending,
                            p->link_up ? "true" : "false", p->watch.downs, p->down_now_ns / 1000000,
                            (p->watch.down_ns_total + p->down_now_ns) / 1000000, longest_down_ms(p),
                            p->held_while_down, p->held_while_down_max, p->held_back);
        first = false;
    }
    evbuffer_add_printf(out, "},\"iterations\":%" PRIu64 ",\"idle_iterations\":%" PRIu64,
                        s->iterations, s->idle_iterations);
    if (s->role == ROLE_PRIMARY) {
        const struct colo_compare_stats *c = &s->compare;
        evbuffer_add_printf(out, ",\"mirrored\":%" PRIu64 ",\"mirror_failed\":%" PRIu64
                                 ",\"not_for_vm\":%" PRIu64 ",\"pvm_in\":%" PRIu64 ",\"svm_in\":%" PRIu64
                                 ",\"held\":%" PRIu64 ",\"svm_held\":%" PRIu64 ",\"checkpoints_done\":%" PRIu64
                                 ",\"checkpoint_requests_deferred\":%" PRIu64,
                            s->mirror.mirrored, s->mirror.clone_failed, s->mirror.not_for_vm, c->pvm_in,
                            c->svm_in, c->pvm_held, c->svm_held, c->checkpoints_done,
                            c->checkpoint_requests_deferred);
        evbuffer_add_printf(out, ",\"conns\":{\"in_use\":%" PRIu32 ",\"in_use_max\":%" PRIu32
                                 ",\"max\":%" PRIu32 ",\"created\":%" PRIu64 ",\"expired\":%" PRIu64
                                 ",\"evicted\":%" PRIu64 ",\"create_failed\":%" PRIu64 ",\"probe_full\":%" PRIu64 "}",
                            s->conns.in_use, s->conns.in_use_max, s->conns_max, s->conns.created,
                            s->conns.expired, s->conns.evicted, s->conns.create_failed, s->conns.probe_full);
        json_u64_array(out, "released", c->released, RELEASE_REASON_COUNT, release_label);
        json_u64_array(out, "divergences", c->divergences, DIV_KIND_COUNT, div_label);
        json_u64_array(out, "checkpoint_requests", c->checkpoint_requests, CKPT_REASON_COUNT, ckpt_label);
        json_u64_array(out, "malformed", c->malformed, PARSE_STATUS_COUNT, malformed_label);
    } else {
        const struct seq_rewriter_stats *w = &s->rewrite;
        evbuffer_add_printf(out, ",\"to_svm\":%" PRIu64 ",\"to_link\":%" PRIu64
                                 ",\"rewritten_to_svm\":%" PRIu64 ",\"rewritten_to_link\":%" PRIu64
                                 ",\"learned_passive\":%" PRIu64 ",\"learned_active\":%" PRIu64
                                 ",\"held_early\":%" PRIu64 ",\"dropped_early\":%" PRIu64
                                 ",\"checkpoints_done\":%" PRIu64,
                            w->to_svm, w->to_link, w->rewritten_to_svm, w->rewritten_to_link,
                            w->learned_passive, w->learned_active, w->held_early, w->dropped_early,
                            w->checkpoints);
    }
    const struct heartbeat *hb = &s->heartbeat;
    evbuffer_add_printf(out, ",\"heartbeat\":{\"state\":\"%s\",\"rtt_us\":%.1f,\"sent\":%" PRIu64
                             ",\"received\":%" PRIu64 ",\"went_down\":%" PRIu64 "}",
                        heartbeat_state_name(hb->state), (double)hb->rtt_ns / 1000.0, hb->sent, hb->received,
                        hb->went_down);
    evbuffer_add_printf(out, ",\"alone\":%s,\"passed_alone\":%" PRIu64, s->alone ? "true" : "false",
                        s->passed_alone);
    evbuffer_add_printf(out, ",\"taken_over\":%s,\"failover\":{\"reason\":\"%s\",\"at_unix_ms\":%" PRIu64
                             ",\"peer_silent_ms\":%" PRIu64 "}",
                        s->taken_over ? "true" : "false", failover_reason_name(s->failover.reason),
                        s->failover.at_unix_ms, s->failover.silent_ms);
    evbuffer_add_printf(out, ",\"client_side_heartbeat\":{\"state\":\"%s\",\"received\":%" PRIu64 "}",
                        heartbeat_state_name(s->client_side.state), s->client_side.received);
    if (s->role == ROLE_SECONDARY)
        evbuffer_add_printf(out, ",\"takeover_guarded\":%" PRIu64 ",\"client_ignored\":%" PRIu64
                                 ",\"announce\":{\"frames\":%" PRIu64 ",\"ipv4\":%u,\"ipv6\":%u}",
                            s->takeover_guarded, s->client_ignored, s->announce_frames, s->announce_ipv4,
                            s->announce_ipv6);
    evbuffer_add_printf(out, ",\"vm_dead\":%s,\"vm_dead_dropped\":%" PRIu64 ",\"vm_dead_unreleased\":%" PRIu64,
                        s->vm_dead ? "true" : "false", s->vm_dead_dropped, s->vm_dead_unreleased);
    write_signals(out, s);
    evbuffer_add_printf(out, ",\"control_ring_full\":%" PRIu64, s->control_ring_full);
}

static void write_qmp_stats(struct evbuffer *out, const struct checkpoint_ctl *q)
{
    if (q) {
        const struct checkpoint_ctl_stats *s = checkpoint_ctl_stats(q);
        evbuffer_add_printf(out, ",\"qmp\":{\"connected\":%s,\"in_colo\":%s,\"connects\":%" PRIu64
                                 ",\"requests_sent\":%" PRIu64 ",\"requests_coalesced\":%" PRIu64
                                 ",\"checkpoints_seen\":%" PRIu64 ",\"errors\":%" PRIu64 "}",
                            s->connected ? "true" : "false", s->in_colo ? "true" : "false", s->connects,
                            s->requests_sent, s->requests_coalesced, s->checkpoints_seen, s->errors);
    }
    evbuffer_add_printf(out, "}\n");
}

static enum ops_reply on_command(void *ctx, const char *line, bool fresh, struct evbuffer *out)
{
    struct control *c = ctx;
    if (strcmp(line, "checkpoint-done") == 0) {
        send_to_dataplane(c, MSG_CHECKPOINT_DONE, 0, NULL);
        evbuffer_add_printf(out, "ok\n");
    } else if (strcmp(line, "stats") == 0) {
        if (!fresh)
            return OPS_NEED_SNAPSHOT;
        write_stats(out, &c->stats_buf);
        write_qmp_stats(out, c->qmp);
    } else if (strcmp(line, "shutdown") == 0) {
        send_to_dataplane(c, MSG_SHUTDOWN, 0, NULL);
        evbuffer_add_printf(out, "ok\n");
    } else {
        return OPS_UNKNOWN;
    }
    return OPS_DONE;
}

/* The data plane copies its counters into stats_buf and answers MSG_STATS_READY. */
static void on_refresh(void *ctx)
{
    struct control *c = ctx;
    send_to_dataplane(c, MSG_STATS_REQUEST, 0, &c->stats_buf);
}

static void on_fill(void *ctx, struct metric_set *m)
{
    struct control *c = ctx;
    status_metrics_pipeline(m, &c->stats_buf);
    if (c->stats_buf.role == ROLE_PRIMARY) {
        metric_counter(m, "divergence_reports", "Divergences logged (and written, with a report directory)", NULL,
                       NULL, c->reports.reported);
        metric_counter(m, "divergence_reports_written", "Divergence reports written", NULL, NULL,
                       c->reports.written);
        metric_counter(m, "divergence_reports_suppressed", "Divergences over the per-minute limit", NULL, NULL,
                       c->stats_buf.divergence_reports_suppressed);
    }
    if (c->qmp)
        status_metrics_qmp(m, checkpoint_ctl_stats(c->qmp));
}

static void on_sighup(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    struct control *c = arg;
    log_reopen();
    log_msg(LOG_INFO, "SIGHUP: log reopened%s", c->reload ? "; reloading the configuration" : "");
    if (!c->reload)
        return;
    if (c->reload_in_flight) {
        log_msg(LOG_WARNING, "the previous reload is still being applied; send SIGHUP again in a moment");
        return;
    }
    if (c->reload(c->reload_ctx, &c->reload_buf, &c->reload_reports) != 0)
        return;
    c->reload_in_flight = true;
    send_to_dataplane(c, MSG_RELOAD, 0, &c->reload_buf);
}

static void reload_applied(struct control *c)
{
    c->reload_in_flight = false;
    c->divergence_reports = c->reload_reports;
    log_msg(LOG_INFO, "reloaded: divergence reports %s, at most %u a minute; %u bypass rules (in effect once "
            "nothing is held)", c->divergence_reports ? c->divergence_reports : "off",
            c->reload_buf.divergence_reports_per_minute, c->reload_buf.bypass.count);
}

/* A capture the data plane lent: logged, written, announced, handed back. */
static void publish_divergence(struct control *c, const struct divergence_capture *cap)
{
    char line[1024], event[1100];
    divergence_report_publish(cap, c->divergence_reports, &c->reports, line, sizeof(line));
    log_msg(LOG_INFO, "%s", line);
    snprintf(event, sizeof(event), "event %s", line);
    broadcast(c, event);
    send_to_dataplane(c, MSG_DIVERGENCE_DONE, 0, NULL);
}

static void on_poll(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct control *c = arg;
    struct ctrl_msg msgs[16];
    unsigned n = rte_ring_dequeue_burst_elem(c->from_dp, msgs, sizeof(msgs[0]), 16, NULL);
    for (unsigned i = 0; i < n; i++) {
        char line[96];
        switch (msgs[i].type) {
        case MSG_CHECKPOINT_REQUEST:
            snprintf(line, sizeof(line), "event checkpoint-request %s",
                     checkpoint_reason_name((enum checkpoint_reason)msgs[i].arg));
            broadcast(c, line);
            if (c->qmp)
                checkpoint_ctl_request(c->qmp);
            break;
        case MSG_STATS_READY:
            ops_server_snapshot_ready(c->ops);
            break;
        case MSG_PEER_STATE:
            snprintf(line, sizeof(line), "event peer %s", heartbeat_state_name((enum heartbeat_state)msgs[i].arg));
            broadcast(c, line);
            break;
        case MSG_PRIMARY_ALONE:
            broadcast(c, "event primary-alone");
            if (c->qmp)
                checkpoint_ctl_lost_heartbeat(c->qmp);
            break;
        case MSG_TAKEOVER:
            snprintf(line, sizeof(line), "event takeover %s", failover_reason_name((enum failover_reason)msgs[i].arg));
            broadcast(c, line);
            if (c->qmp)
                checkpoint_ctl_lost_heartbeat(c->qmp);
            break;
        case MSG_DIVERGENCE:
            publish_divergence(c, msgs[i].ptr);
            break;
        case MSG_RELOAD_DONE:
            reload_applied(c);
            break;
        case MSG_VM_DEAD:
            snprintf(line, sizeof(line), "event vm-dead %s", port_role_name((enum port_role)msgs[i].arg));
            broadcast(c, line);
            break;
        case MSG_TAKEOVER_GUARDED:
            broadcast(c, "event takeover-guarded the primary still speaks on the client side");
            break;
        case MSG_STOPPED: {
            struct timeval flush_time = { 0, 100000 }; /* let clients' output drain */
            broadcast(c, "event stopped");
            event_base_loopexit(c->base, &flush_time);
            break;
        }
        default:
            break;
        }
    }
}

static void *control_main(void *arg)
{
    struct control *c = arg;
    event_base_dispatch(c->base);
    return NULL;
}

/* ---- the QEMU channel ---- */

/* The data plane gets QEMU's STOP→RESUME with the word, to set beside its VM port's down time. */
static void qmp_checkpoint_done(void *ctx)
{
    struct control *c = ctx;
    uint64_t us = checkpoint_ctl_stats(c->qmp)->last_stopped_ns / 1000;
    send_to_dataplane(c, MSG_CHECKPOINT_DONE, us == 0 ? 1 : us > UINT32_MAX ? UINT32_MAX : (uint32_t)us, NULL);
    broadcast(c, "event checkpoint-done qemu");
}

static void qmp_checkpoint_began(void *ctx)
{
    send_to_dataplane(ctx, MSG_CHECKPOINT_BEGAN, 0, NULL);
}

static void qmp_failover(void *ctx, const char *why)
{
    char line[128];
    snprintf(line, sizeof(line), "event colo-exit %.64s", why);
    broadcast(ctx, line);
}

static void qmp_log(void *ctx, const char *line)
{
    (void)ctx;
    log_msg(LOG_INFO, "%s", line);
}

static void control_free(struct control *c)
{
    checkpoint_ctl_free(c->qmp);
    ops_server_free(c->ops);
    if (c->poll_timer)
        event_free(c->poll_timer);
    if (c->sighup)
        event_free(c->sighup);
    event_base_free(c->base);
    free(c);
}

struct control *control_start(const struct control_config *cfg, struct rte_ring *to_dp, struct rte_ring *from_dp,
                              char *err, size_t errlen)
{
    const struct checkpoint_ctl_config *qmp = cfg->qmp;
    struct control *c = calloc(1, sizeof(*c));
    if (!c || !(c->base = event_base_new())) {
        snprintf(err, errlen, "cannot create the control event loop");
        free(c);
        return NULL;
    }
    c->to_dp = to_dp;
    c->from_dp = from_dp;
    struct timeval ms = { 0, 1000 };
    c->poll_timer = event_new(c->base, -1, EV_PERSIST, on_poll, c);
    c->sighup = evsignal_new(c->base, SIGHUP, on_sighup, c);
    if (c->sighup)
        event_add(c->sighup, NULL);
    if (!c->poll_timer || event_add(c->poll_timer, &ms) != 0) {
        snprintf(err, errlen, "cannot create the control timer");
        control_free(c);
        return NULL;
    }
    static const struct ops_server_ops ops = { on_command, on_refresh, on_fill };
    c->divergence_reports = cfg->divergence_reports;
    c->reload = cfg->reload;
    c->reload_ctx = cfg->reload_ctx;
    if (!(c->ops = ops_server_start(c->base, cfg->ops, &ops, c, err, errlen))) {
        control_free(c);
        return NULL;
    }
    static const struct checkpoint_ctl_ops qmp_ops = {
        .checkpoint_done = qmp_checkpoint_done,
        .checkpoint_began = qmp_checkpoint_began,
        .failover = qmp_failover,
        .log = qmp_log,
    };
    if (qmp && !(c->qmp = checkpoint_ctl_start(c->base, qmp, &qmp_ops, c, err, errlen))) {
        control_free(c);
        return NULL;
    }
    if (pthread_create(&c->thread, NULL, control_main, c) != 0) {
        snprintf(err, errlen, "cannot start the control thread: %s", strerror(errno));
        control_free(c);
        return NULL;
    }
    return c;
}

void control_stop(struct control *c)
{
    if (!c)
        return;
    pthread_join(c->thread, NULL);
    control_free(c);
}
