/*
 * socket_rewrite.c — the secondary's rewriter on chardev sockets (see socket_rewrite.h).
 *
 * Owns: the libevent base, the endpoints, the record pool, the sequence
 * rewriter, the 100 ms timer, the QMP channel to the secondary QEMU that tells
 * when a checkpoint is done and when the SVM takes over, and which sockets carry
 * the client's side before and after that takeover. Each record is copied once into a pooled slot,
 * rewritten in place and queued for its way out, in arrival order per direction.
 * Must never: reorder a direction, drop a frame silently, or read a direction
 * whose way out is backed up.
 */
#include "colo/socket_rewrite.h"

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "colo/chardev_endpoint.h"
#include "colo/checkpoint_ctl.h"
#include "colo/log.h"
#include "colo/metrics.h"
#include "colo/ops_server.h"
#include "colo/pkt_parse.h"
#include "colo/record_buf.h"
#include "colo/seq_rewrite.h"
#include "colo/status_metrics.h"

#define TICK_US 100000
#define DRAIN_LIMIT_S 5

struct socket_rewrite {
    struct socket_rewrite_config cfg;
    struct event_base *base;
    struct seq_rewriter *rw;
    struct chardev_endpoint ep[RW_ROLE_COUNT];
    bool opened[RW_ROLE_COUNT];
    struct record_pool pool;
    struct event *tick, *sigint, *sigterm, *sighup;
    struct checkpoint_ctl *qmp;
    struct ops_server *ops;
    uint64_t dropped;
    bool taken_over;              /* the secondary QEMU left COLO: the SVM serves the clients */
    char takeover_why[80];
    uint64_t off_side[RW_ROLE_COUNT]; /* frames from the side not in use (net_in before, mirror_in after) */
    uint64_t sent[RW_ROLE_COUNT];     /* frames queued to each output */
};

static const char *const role_names[RW_ROLE_COUNT] = { "mirror_in", "to_svm", "from_svm", "to_primary",
                                                        "net_in", "net_out" };

static bool has_net(const struct socket_rewrite *sr)
{
    return sr->opened[RW_NET_IN];
}

/* Where the client's frames come from and the SVM's go: the primary, or after a takeover this host's network. */
static enum rewrite_role client_side_in(const struct socket_rewrite *sr)
{
    return sr->taken_over && has_net(sr) ? RW_NET_IN : RW_MIRROR_IN;
}

static enum rewrite_role client_side_out(const struct socket_rewrite *sr)
{
    return sr->taken_over && has_net(sr) ? RW_NET_OUT : RW_TO_PRIMARY;
}

/* The input that feeds an output, for backpressure. */
static enum rewrite_role feeder(const struct socket_rewrite *sr, enum rewrite_role out)
{
    return out == RW_TO_SVM ? client_side_in(sr) : RW_FROM_SVM;
}

void socket_rewrite_config_default(struct socket_rewrite_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->max_conns = 1u << 16;
    cfg->high_water = 8u << 20;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void send_out(struct socket_rewrite *sr, enum rewrite_role role, struct colo_pkt *pkt)
{
    struct chardev_endpoint *ep = &sr->ep[role];
    sr->sent[role]++;
    chardev_endpoint_queue(ep, pkt->owner, sr->cfg.vnet_hdr_support);
    if (chardev_endpoint_backed_up(ep))
        chardev_endpoint_pause(&sr->ep[feeder(sr, role)], true);
}

static void to_svm(void *ctx, struct colo_pkt *pkt)
{
    send_out(ctx, RW_TO_SVM, pkt);
}

static void to_link(void *ctx, struct colo_pkt *pkt)
{
    struct socket_rewrite *sr = ctx;
    send_out(sr, client_side_out(sr), pkt);
}

static void drop(void *ctx, struct colo_pkt *pkt)
{
    struct socket_rewrite *sr = ctx;
    sr->dropped++;
    record_put(&sr->pool, pkt->owner);
}

static void on_record(void *ctx, struct chardev_endpoint *ep, const uint8_t *bytes, uint32_t len,
                      uint32_t vnet_len)
{
    struct socket_rewrite *sr = ctx;
    enum rewrite_role role = (enum rewrite_role)(ep - sr->ep);
    if (role != RW_MIRROR_IN && role != RW_FROM_SVM && role != RW_NET_IN)
        return; /* nothing is expected from the outputs' peers; whatever comes is ignored */
    if (role != RW_FROM_SVM && role != client_side_in(sr)) {
        sr->off_side[role]++; /* net_in before the takeover, mirror_in after it */
        return;
    }
    struct sock_record *rec = record_packet(&sr->pool, bytes, len, vnet_len);
    if (!rec) {
        log_msg(LOG_WARNING, "out of memory for a %u-byte record from %s", len, role_names[role]);
        return;
    }
    if (role != RW_FROM_SVM)
        seq_rewrite_from_link(sr->rw, &rec->pkt, now_ns());
    else
        seq_rewrite_from_svm(sr->rw, &rec->pkt, now_ns());
}

static void flush_outputs(struct socket_rewrite *sr)
{
    chardev_endpoint_flush(&sr->ep[RW_TO_SVM]);
    chardev_endpoint_flush(&sr->ep[RW_TO_PRIMARY]);
    if (has_net(sr))
        chardev_endpoint_flush(&sr->ep[RW_NET_OUT]);
}

static void after_batch(void *ctx, struct chardev_endpoint *ep)
{
    (void)ep;
    flush_outputs(ctx);
}

static void on_drained(void *ctx, struct chardev_endpoint *ep)
{
    struct socket_rewrite *sr = ctx;
    enum rewrite_role role = (enum rewrite_role)(ep - sr->ep);
    if (role == RW_TO_SVM || role == client_side_out(sr))
        chardev_endpoint_pause(&sr->ep[feeder(sr, role)], false);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct socket_rewrite *sr = arg;
    seq_rewriter_tick(sr->rw, now_ns());
    flush_outputs(sr);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    struct socket_rewrite *sr = arg;
    log_msg(LOG_INFO, "signal %d: sending what is queued and stopping", (int)sig);
    event_base_loopbreak(sr->base);
}

/* A STOP then RESUME is a checkpoint only while in COLO: after the takeover it is the SVM starting alone,
 * whose state is not the PVM's, so the offsets must stay. */
static void qmp_done(void *ctx)
{
    struct socket_rewrite *sr = ctx;
    if (!sr->taken_over)
        seq_rewriter_checkpoint_done(sr->rw);
}

/* The SVM serves the clients now: known connections stay rewritten, the client's side moves to net_in/net_out. */
static void qmp_failover(void *ctx, const char *why)
{
    struct socket_rewrite *sr = ctx;
    if (sr->taken_over)
        return;
    sr->taken_over = true;
    snprintf(sr->takeover_why, sizeof(sr->takeover_why), "QMP COLO_EXIT, reason %.48s", why);
    seq_rewriter_failover(sr->rw);
    chardev_endpoint_pause(&sr->ep[RW_MIRROR_IN], false); /* read and dropped from now on */
    if (has_net(sr)) { /* backpressure now follows the new sides; a dead primary no longer holds the SVM back */
        chardev_endpoint_pause(&sr->ep[RW_NET_IN], chardev_endpoint_backed_up(&sr->ep[RW_TO_SVM]));
        chardev_endpoint_pause(&sr->ep[RW_FROM_SVM], chardev_endpoint_backed_up(&sr->ep[RW_NET_OUT]));
    }
    if (has_net(sr))
        log_msg(LOG_WARNING, "takeover: the secondary QEMU left COLO (%s); the SVM serves the clients: client "
                             "frames now come from net_in and SVM frames leave on net_out, still rewritten for "
                             "the connections known before", why);
    else
        log_msg(LOG_WARNING, "takeover: the secondary QEMU left COLO (%s), but there is no --net_in/--net_out: "
                             "SVM frames still go to_primary, so connections rewritten until now cannot go on; "
                             "give both (docs/migration.md, \"When a host dies\")", why);
    if (sr->ops)
        ops_server_broadcast(sr->ops, "event takeover");
}

static void qmp_log(void *ctx, const char *line)
{
    (void)ctx;
    log_msg(LOG_INFO, "%s", line);
}

int socket_rewrite_check_config(const struct socket_rewrite_config *cfg, char *err, size_t errlen)
{
    for (int r = 0; r < RW_ROLE_COUNT; r++) {
        if (!cfg->endpoint[r] && r != RW_NET_IN && r != RW_NET_OUT) {
            snprintf(err, errlen, "socket rewrite mode needs --%s", role_names[r]);
            return -1;
        }
        if (cfg->endpoint[r] && chardev_endpoint_check_spec(role_names[r], cfg->endpoint[r], err, errlen) != 0)
            return -1;
    }
    if (!cfg->endpoint[RW_NET_IN] != !cfg->endpoint[RW_NET_OUT]) {
        snprintf(err, errlen, "--net_in and --net_out go together (the SVM's way to this host's network after a "
                              "takeover); give both or neither");
        return -1;
    }
    char addr[64];
    unsigned port;
    if (cfg->metrics_addr &&
        ops_server_parse_metrics_addr(cfg->metrics_addr, addr, sizeof(addr), &port, err, errlen) != 0)
        return -1;
    return cfg->qmp ? checkpoint_ctl_check_address(cfg->qmp, err, errlen) : 0;
}

static int open_endpoints(struct socket_rewrite *sr, char *err, size_t errlen)
{
    static const struct chardev_endpoint_ops ops = { on_record, after_batch, on_drained };
    for (int r = 0; r < RW_ROLE_COUNT; r++) {
        if (!sr->cfg.endpoint[r])
            continue;
        sr->opened[r] = true;
        if (chardev_endpoint_open(&sr->ep[r], sr->base, role_names[r], sr->cfg.endpoint[r],
                                  sr->cfg.vnet_hdr_support, &sr->pool, sr->cfg.high_water, &ops, sr, err,
                                  errlen) != 0)
            return -1;
    }
    return 0;
}

static int start_qmp(struct socket_rewrite *sr, char *err, size_t errlen)
{
    if (!sr->cfg.qmp) {
        log_msg(LOG_WARNING, "no --qmp: offsets are never reset by checkpoints; give the "
                        "secondary QEMU's monitor for a real COLO pair");
        return 0;
    }
    struct checkpoint_ctl_config q;
    checkpoint_ctl_config_default(&q);
    q.qmp = sr->cfg.qmp;
    static const struct checkpoint_ctl_ops qops = { qmp_done, qmp_failover, qmp_log, NULL, NULL };
    sr->qmp = checkpoint_ctl_start(sr->base, &q, &qops, sr, err, errlen);
    return sr->qmp ? 0 : -1;
}

/* ---- the control socket and metrics ---- */

static void ops_fill(void *ctx, struct metric_set *m)
{
    struct socket_rewrite *sr = ctx;
    metric_info(m, "role", "What this colo-proxy is", "role", "rewrite");
    char state[128];
    snprintf(state, sizeof(state), "taken over (%s)", sr->takeover_why);
    metric_info(m, "state", "Replicating, or taken over once the secondary QEMU left COLO", "state",
                sr->taken_over ? state : "replicating");
    metric_gauge(m, "taken_over", "1 once this secondary serves the clients", NULL, NULL, sr->taken_over);
    metric_counter(m, "off_side_frames", "Frames from the client's side not in use, dropped", "socket", "net_in",
                   sr->off_side[RW_NET_IN]);
    metric_counter(m, "off_side_frames", "Frames from the client's side not in use, dropped", "socket",
                   "mirror_in", sr->off_side[RW_MIRROR_IN]);
    status_metrics_endpoints(m, sr->ep, sr->opened, role_names, RW_ROLE_COUNT);
    status_metrics_rewriter(m, seq_rewriter_stats(sr->rw));
    if (sr->qmp)
        status_metrics_qmp(m, checkpoint_ctl_stats(sr->qmp));
}

static int start_ops(struct socket_rewrite *sr, char *err, size_t errlen)
{
    struct ops_server_config oc = { sr->cfg.control, sr->cfg.metrics_addr };
    sr->ops = ops_server_start_local(sr->base, &oc, ops_fill, qmp_done, sr, err, errlen);
    return sr->ops ? 0 : -1;
}

struct socket_rewrite *socket_rewrite_create(const struct socket_rewrite_config *cfg, char *err, size_t errlen)
{
    if (socket_rewrite_check_config(cfg, err, errlen) != 0)
        return NULL;
    struct socket_rewrite *sr = calloc(1, sizeof(*sr));
    if (!sr || !(sr->base = event_base_new())) {
        snprintf(err, errlen, "cannot create the event loop");
        socket_rewrite_destroy(sr);
        return NULL;
    }
    sr->cfg = *cfg;
    static const struct seq_rewriter_ops ops = { to_svm, to_link, drop };
    if (!(sr->rw = seq_rewriter_create(cfg->max_conns, &ops, sr))) {
        snprintf(err, errlen, "cannot allocate the connection table; lower --max-conns");
        socket_rewrite_destroy(sr);
        return NULL;
    }
    if (open_endpoints(sr, err, errlen) != 0 || start_qmp(sr, err, errlen) != 0 || start_ops(sr, err, errlen) != 0) {
        socket_rewrite_destroy(sr);
        return NULL;
    }
    struct timeval tick = { 0, TICK_US };
    sr->tick = event_new(sr->base, -1, EV_PERSIST, on_tick, sr);
    event_add(sr->tick, &tick);
    sr->sigint = evsignal_new(sr->base, SIGINT, on_signal, sr);
    sr->sigterm = evsignal_new(sr->base, SIGTERM, on_signal, sr);
    event_add(sr->sigint, NULL);
    event_add(sr->sigterm, NULL);
    sr->sighup = evsignal_new(sr->base, SIGHUP, log_on_sighup, NULL);
    event_add(sr->sighup, NULL);
    return sr;
}

static bool output_waiting(struct socket_rewrite *sr, enum rewrite_role role)
{
    return sr->opened[role] && chardev_endpoint_connected(&sr->ep[role]) && sr->ep[role].out.head;
}

int socket_rewrite_run(struct socket_rewrite *sr)
{
    signal(SIGPIPE, SIG_IGN);
    event_base_dispatch(sr->base);
    flush_outputs(sr);
    time_t until = time(NULL) + DRAIN_LIMIT_S;
    while (time(NULL) < until && (output_waiting(sr, RW_TO_SVM) || output_waiting(sr, RW_TO_PRIMARY) ||
                                  output_waiting(sr, RW_NET_OUT)))
        event_base_loop(sr->base, EVLOOP_ONCE);
    const struct seq_rewriter_stats *st = seq_rewriter_stats(sr->rw);
    log_msg(LOG_INFO, "summary: client frames in %" PRIu64 ", SVM frames in %" PRIu64
                    "; rewritten toward the SVM %" PRIu64 ", toward the primary %" PRIu64
                    "; offsets learned %" PRIu64 " (client-opened) + %" PRIu64
                    " (guest-opened); checkpoints %" PRIu64 "; given up on (no SYN-ACK in time) %" PRIu64
                    "; %s; frames of the side not in use dropped: net_in %" PRIu64 ", mirror_in %" PRIu64
                    "; frames out: to_svm %" PRIu64 ", to_primary %" PRIu64 ", net_out %" PRIu64,
            sr->ep[RW_MIRROR_IN].stats.records_in + (has_net(sr) ? sr->ep[RW_NET_IN].stats.records_in : 0),
            sr->ep[RW_FROM_SVM].stats.records_in, st->rewritten_to_svm,
            st->rewritten_to_link, st->learned_passive, st->learned_active, st->checkpoints, sr->dropped,
            sr->taken_over ? "taken over" : "not taken over", sr->off_side[RW_NET_IN], sr->off_side[RW_MIRROR_IN],
            sr->sent[RW_TO_SVM], sr->sent[RW_TO_PRIMARY], sr->sent[RW_NET_OUT]);
    return 0;
}

void socket_rewrite_destroy(struct socket_rewrite *sr)
{
    if (!sr)
        return;
    seq_rewriter_destroy(sr->rw);
    for (int r = 0; r < RW_ROLE_COUNT; r++)
        if (sr->opened[r])
            chardev_endpoint_close(&sr->ep[r]);
    checkpoint_ctl_free(sr->qmp);
    ops_server_free(sr->ops);
    if (sr->tick)
        event_free(sr->tick);
    if (sr->sigint)
        event_free(sr->sigint);
    if (sr->sigterm)
        event_free(sr->sigterm);
    if (sr->sighup)
        event_free(sr->sighup);
    record_pool_free(&sr->pool);
    if (sr->base)
        event_base_free(sr->base);
    free(sr);
}
