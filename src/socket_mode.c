/*
 * socket_mode.c — colo-proxy in place of QEMU's colo-compare, on its chardev sockets.
 *
 * Owns: the libevent base, the four endpoints (chardev_endpoint.c does their
 * I/O), the record pool, the compare engine, the 1 ms timer, the QMP channel and
 * the notify_dev words. Each record is copied once into a pooled slot; released
 * records go into outdev's queue and are written after each batch, after a
 * checkpoint and on each tick. Also owns the failover decision (see
 * socket_mode.h): the evidence that the secondary is gone, the "alone" state.
 * Must never: drop or reorder a released frame, read more input while outdev is
 * backed up, or go alone without evidence that the secondary is gone.
 */
#include "colo/socket_mode.h"

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "colo/chardev_endpoint.h"
#include "colo/divergence_report.h"
#include "colo/log.h"
#include "colo/metrics.h"
#include "colo/notify_words.h"
#include "colo/ops_server.h"
#include "colo/pkt_parse.h"
#include "colo/record_buf.h"
#include "colo/status_metrics.h"

#define TICK_US 1000
#define DRAIN_LIMIT_S 5

struct socket_mode {
    struct socket_mode_config cfg;
    struct event_base *base;
    struct colo_compare *engine;
    struct chardev_endpoint ep[SOCK_ROLE_COUNT];
    bool opened[SOCK_ROLE_COUNT];
    struct record_pool pool;
    uint64_t batch_now; /* one clock reading per batch of records, taken at its first */
    bool batch_now_valid;
    struct event *tick, *sigint, *sigterm, *sighup;
    struct checkpoint_ctl *qmp;
    struct ops_server *ops;
    bool inputs_paused;
    struct socket_mode_stats stats;
    struct notify_peer notify_peer;
    struct divergence_limiter div_limiter;
    struct divergence_capture *div_capture;
    struct divergence_report_stats div_reports;
    uint64_t divergences;
    bool secondary_seen;          /* secondary_in had a peer since the last (re)join */
    uint64_t secondary_gone_ns;   /* when secondary_in lost its peer; 0 while connected */
    char alone_why[128];          /* empty while comparing */
};

static const char *const role_names[SOCK_ROLE_COUNT] = { "primary_in", "secondary_in", "outdev",
                                                          "notify_dev" };

void socket_mode_config_default(struct socket_mode_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    colo_compare_config_default(&cfg->compare);
    cfg->compare.max_conns = 1u << 16;
    cfg->checkpoint_period_ms = 20000;
    cfg->secondary_lost_ms = 5000;
    cfg->outdev_high_water = 8u << 20;
    cfg->divergence_reports_per_minute = 60;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static enum socket_role role_of(const struct socket_mode *sm, const struct chardev_endpoint *ep)
{
    return (enum socket_role)(ep - sm->ep);
}

/* ---- output ---- */

static void set_inputs_paused(struct socket_mode *sm, bool paused)
{
    if (paused == sm->inputs_paused)
        return;
    sm->inputs_paused = paused;
    sm->stats.input_pauses += paused;
    chardev_endpoint_pause(&sm->ep[SOCK_PRIMARY_IN], paused);
    chardev_endpoint_pause(&sm->ep[SOCK_SECONDARY_IN], paused);
}

/* Released records go out now (after a batch, a checkpoint's end, a tick). */
static void flush_released(struct socket_mode *sm)
{
    if (sm->ep[SOCK_OUTDEV].out.head)
        chardev_endpoint_flush(&sm->ep[SOCK_OUTDEV]);
}

static void on_release(void *ctx, struct colo_pkt *pkt, enum release_reason why)
{
    (void)why;
    struct socket_mode *sm = ctx;
    struct sock_record *rec = pkt->owner;
    struct chardev_endpoint *out = &sm->ep[SOCK_OUTDEV];
    chardev_endpoint_queue(out, rec, sm->cfg.vnet_hdr_support);
    sm->stats.records_out++;
    sm->stats.bytes_out += rec->len;
    if (chardev_endpoint_backed_up(out))
        set_inputs_paused(sm, true);
}

static void on_discard(void *ctx, struct colo_pkt *pkt)
{
    struct socket_mode *sm = ctx;
    record_put(&sm->pool, pkt->owner);
}

/* A notify_dev word: the framing, never the vnet field (QEMU writes none). */
static void send_word(struct socket_mode *sm, const char *word)
{
    uint32_t len = (uint32_t)strlen(word);
    struct sock_record *rec = record_get(&sm->pool, len);
    if (!rec) {
        log_msg(LOG_WARNING, "out of memory for the notify_dev word %s", word);
        return;
    }
    memcpy(rec->data, word, len);
    chardev_endpoint_queue(&sm->ep[SOCK_NOTIFY_DEV], rec, false);
    chardev_endpoint_flush(&sm->ep[SOCK_NOTIFY_DEV]);
}

static void on_request(void *ctx, enum checkpoint_reason why, uint64_t now)
{
    (void)now;
    struct socket_mode *sm = ctx;
    bool notify = sm->opened[SOCK_NOTIFY_DEV];
    log_msg(LOG_INFO, "checkpoint requested (%s)%s", checkpoint_reason_name(why),
            sm->qmp || notify ? "" : "; no --qmp or --notify_dev: only QEMU's periodic checkpoints complete it");
    if (sm->qmp)
        checkpoint_ctl_request(sm->qmp);
    if (notify)
        send_word(sm, NOTIFY_WORD_DO_CHECKPOINT);
}

static uint64_t unix_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* One line per divergence (within the limit): which connection, where in its stream, what kind; a report. */
static void on_divergence(void *ctx, const struct divergence *d)
{
    struct socket_mode *sm = ctx;
    uint64_t number = ++sm->divergences, now = now_ns();
    if (!divergence_limiter_allow(&sm->div_limiter, now))
        return;
    char line[1024];
    divergence_capture_fill(sm->div_capture, number, d, now, unix_ns());
    divergence_report_publish(sm->div_capture, sm->cfg.divergence_reports, &sm->div_reports, line, sizeof(line));
    log_msg(LOG_INFO, "%s", line);
    if (sm->ops)
        ops_server_broadcast(sm->ops, line);
}

/* Once a minute at most: how many divergences the limit kept quiet. */
static void log_suppressed(struct socket_mode *sm)
{
    struct divergence_limiter *l = &sm->div_limiter;
    if (l->suppressed_unlogged && now_ns() - l->window_start_ns >= 60ull * 1000000000ull) {
        log_msg(LOG_WARNING, "%" PRIu64 " more divergences were not logged or reported "
                        "(over --divergence-reports-per-minute %u)", l->suppressed_unlogged, l->per_minute);
        l->suppressed_unlogged = 0;
    }
}

static uint64_t sum(const uint64_t *v, int n)
{
    uint64_t total = 0;
    for (int i = 0; i < n; i++)
        total += v[i];
    return total;
}

/* The accounting at exit, one line: what came in, how each PVM record left, why checkpoints were asked. */
static void print_summary(const struct socket_mode *sm)
{
    const struct colo_compare_stats *s = colo_compare_stats(sm->engine);
    char requests[256] = "";
    size_t used = 0;
    for (int i = 0; i < CKPT_REASON_COUNT && used < sizeof(requests); i++)
        used += (size_t)snprintf(requests + used, sizeof(requests) - used, " %s %" PRIu64,
                                 checkpoint_reason_name((enum checkpoint_reason)i), s->checkpoint_requests[i]);
    log_msg(LOG_INFO, "summary: PVM records in %" PRIu64 ", released %" PRIu64 " (matched %" PRIu64
            ", uncompared %" PRIu64 ", after checkpoint %" PRIu64 ", at exit %" PRIu64 ", bypassed %" PRIu64
            ", at failover %" PRIu64 ", passed alone %" PRIu64 "); SVM records in %" PRIu64 "; divergences %" PRIu64
            "; checkpoint requests%s; deferred by checkpoint-min-interval %" PRIu64 "; checkpoints done %" PRIu64,
            sm->stats.records_in[SOCK_PRIMARY_IN], sum(s->released, RELEASE_REASON_COUNT),
            s->released[RELEASE_MATCHED], s->released[RELEASE_UNCOMPARED], s->released[RELEASE_CHECKPOINT],
            s->released[RELEASE_FORCED], s->released[RELEASE_BYPASSED], s->released[RELEASE_FAILOVER],
            s->released[RELEASE_ALONE], sm->stats.records_in[SOCK_SECONDARY_IN],
            sum(s->divergences, DIV_KIND_COUNT), requests, s->checkpoint_requests_deferred, s->checkpoints_done);
}

static void on_notify_word(struct socket_mode *sm, const uint8_t *bytes, uint32_t len)
{
    bool log_it;
    switch (notify_peer_word(&sm->notify_peer, bytes, len, &log_it)) {
    case NOTIFY_REPLY_INIT:
        send_word(sm, NOTIFY_WORD_INIT_REPLY);
        break;
    case NOTIFY_FLUSH:
        colo_compare_checkpoint_done(sm->engine, now_ns());
        break;
    case NOTIFY_IGNORE:
        if (log_it)
            log_msg(LOG_WARNING, "notify_dev sent an unknown word of %u bytes; ignored (%" PRIu64
                            " so far; logged once per 1024)", len, sm->notify_peer.unknown_words);
        break;
    }
}

/* ---- input ---- */

static void on_record(void *ctx, struct chardev_endpoint *ep, const uint8_t *bytes, uint32_t len,
                      uint32_t vnet_len)
{
    struct socket_mode *sm = ctx;
    enum socket_role role = role_of(sm, ep);
    if (role == SOCK_NOTIFY_DEV) {
        on_notify_word(sm, bytes + vnet_len, len - vnet_len);
        return;
    }
    if (role == SOCK_OUTDEV)
        return; /* QEMU never writes here; whatever comes is ignored */
    struct sock_record *rec = record_packet(&sm->pool, bytes, len, vnet_len);
    if (!rec) {
        log_msg(LOG_WARNING, "out of memory for a %u-byte record from %s", len, role_names[role]);
        return;
    }
    rec->pkt.owner_index = sm->stats.records_in[role]++;
    if (!sm->batch_now_valid) {
        sm->batch_now = now_ns();
        sm->batch_now_valid = true;
    }
    colo_compare_input(sm->engine, role == SOCK_PRIMARY_IN ? SIDE_PVM : SIDE_SVM, &rec->pkt, sm->batch_now);
}

static void after_batch(void *ctx, struct chardev_endpoint *ep)
{
    (void)ep;
    struct socket_mode *sm = ctx;
    flush_released(sm);
    sm->batch_now_valid = false;
}

static void on_outdev_drained(void *ctx, struct chardev_endpoint *ep)
{
    struct socket_mode *sm = ctx;
    if (ep == &sm->ep[SOCK_OUTDEV])
        set_inputs_paused(sm, false);
}

int socket_mode_check_config(const struct socket_mode_config *cfg, char *err, size_t errlen)
{
    for (int r = 0; r < SOCK_ROLE_COUNT; r++) {
        const char *spec = cfg->endpoint[r];
        if (!spec && r != SOCK_NOTIFY_DEV) {
            snprintf(err, errlen, "socket mode needs --%s (QEMU's colo-compare has it too)", role_names[r]);
            return -1;
        }
        if (spec && chardev_endpoint_check_spec(role_names[r], spec, err, errlen) != 0)
            return -1;
    }
    char addr[64];
    unsigned port;
    if (cfg->divergence_reports && divergence_report_check_dir(cfg->divergence_reports, err, errlen) != 0)
        return -1;
    if (cfg->qmp && checkpoint_ctl_check_address(cfg->qmp, err, errlen) != 0)
        return -1;
    if (cfg->metrics_addr &&
        ops_server_parse_metrics_addr(cfg->metrics_addr, addr, sizeof(addr), &port, err, errlen) != 0)
        return -1;
    return 0;
}

static int open_endpoint(struct socket_mode *sm, enum socket_role role, char *err, size_t errlen)
{
    static const struct chardev_endpoint_ops ops = { on_record, after_batch, on_outdev_drained };
    const char *spec = sm->cfg.endpoint[role];
    if (!spec)
        return 0;
    sm->opened[role] = true;
    return chardev_endpoint_open(&sm->ep[role], sm->base, role_names[role], spec, sm->cfg.vnet_hdr_support,
                                 &sm->pool, sm->cfg.outdev_high_water, &ops, sm, err, errlen);
}

/* ---- failover ---- */

static void tell_operators(struct socket_mode *sm, const char *line)
{
    if (sm->ops)
        ops_server_broadcast(sm->ops, line);
}

/* The secondary is gone (why says how we know): everything held leaves in order, then PVM frames pass. */
static void go_alone(struct socket_mode *sm, const char *why)
{
    if (colo_compare_alone(sm->engine))
        return;
    uint64_t released = colo_compare_go_alone(sm->engine, now_ns());
    flush_released(sm);
    snprintf(sm->alone_why, sizeof(sm->alone_why), "%s", why);
    log_msg(LOG_WARNING, "failover: the secondary is gone (%s); released the %" PRIu64 " held PVM records in "
                         "order; from now on PVM frames pass straight to outdev, uncompared, and no checkpoint "
                         "is asked for", why, released);
    tell_operators(sm, "event alone");
}

/* A new COLO session with a secondary connected: compare again, from nothing held. */
static void rejoin(struct socket_mode *sm)
{
    if (!colo_compare_alone(sm->engine))
        return;
    if (!chardev_endpoint_connected(&sm->ep[SOCK_SECONDARY_IN])) {
        log_msg(LOG_WARNING, "QEMU is in COLO again but secondary_in has no peer: staying alone until it has "
                             "one and QEMU starts COLO anew");
        return;
    }
    if (colo_compare_rejoin(sm->engine) != 0) {
        log_msg(LOG_WARNING, "QEMU is in COLO again but the connection table cannot be allocated: staying "
                             "alone; lower --max-conns and restart");
        return;
    }
    sm->alone_why[0] = '\0';
    sm->secondary_seen = true;
    sm->secondary_gone_ns = 0;
    log_msg(LOG_INFO, "QEMU is in COLO again with a secondary: comparing again");
    tell_operators(sm, "event comparing");
}

/* secondary_in without a peer for the whole window, after it had one: the secondary is gone for good. */
static void watch_secondary(struct socket_mode *sm, uint64_t now)
{
    if (!sm->cfg.secondary_lost_ms || colo_compare_alone(sm->engine))
        return;
    if (chardev_endpoint_connected(&sm->ep[SOCK_SECONDARY_IN])) {
        sm->secondary_seen = true;
        sm->secondary_gone_ns = 0;
        return;
    }
    if (!sm->secondary_seen)
        return;
    if (!sm->secondary_gone_ns)
        sm->secondary_gone_ns = now;
    else if (now - sm->secondary_gone_ns >= (uint64_t)sm->cfg.secondary_lost_ms * 1000000ull) {
        char why[96];
        snprintf(why, sizeof(why), "secondary_in without a peer for %u ms", sm->cfg.secondary_lost_ms);
        go_alone(sm, why);
    }
}

/* ---- timers, signals, QMP ---- */

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct socket_mode *sm = arg;
    uint64_t now = now_ns();
    watch_secondary(sm, now);
    colo_compare_tick(sm->engine, now);
    flush_released(sm);
    log_suppressed(sm);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    struct socket_mode *sm = arg;
    log_msg(LOG_INFO, "signal %d: releasing what is held and stopping", (int)sig);
    event_base_loopbreak(sm->base);
}

static void on_sighup(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    struct socket_mode *sm = arg;
    log_reopen();
    log_msg(LOG_INFO, "SIGHUP: log reopened%s", sm->cfg.reload ? "; reloading the configuration" : "");
    if (sm->cfg.reload)
        sm->cfg.reload(sm->cfg.reload_ctx, sm);
}

int socket_mode_reload(struct socket_mode *sm, const struct socket_mode_config *fresh, char *err, size_t errlen)
{
    if (socket_mode_check_config(fresh, err, errlen) != 0)
        return -1;
    sm->cfg.divergence_reports = fresh->divergence_reports;
    sm->cfg.divergence_reports_per_minute = fresh->divergence_reports_per_minute;
    sm->div_limiter.per_minute = fresh->divergence_reports_per_minute;
    colo_compare_set_bypass(sm->engine, &fresh->compare.bypass);
    log_msg(LOG_INFO, "reloaded: divergence reports %s, at most %u a minute; %u bypass rules%s",
            fresh->divergence_reports ? fresh->divergence_reports : "off", fresh->divergence_reports_per_minute,
            fresh->compare.bypass.count, colo_compare_stats(sm->engine)->pvm_held ? " (from the next checkpoint)" : "");
    return 0;
}

static void qmp_done(void *ctx)
{
    struct socket_mode *sm = ctx;
    colo_compare_checkpoint_done(sm->engine, now_ns());
    flush_released(sm);
}

static void qmp_failover(void *ctx, const char *why)
{
    struct socket_mode *sm = ctx;
    char line[128];
    log_msg(LOG_WARNING, "COLO ended (%s)", why);
    snprintf(line, sizeof(line), "event colo-exit %.64s", why);
    tell_operators(sm, line);
    snprintf(line, sizeof(line), "QMP COLO_EXIT, reason %.64s", why);
    go_alone(sm, line);
}

static void qmp_colo_started(void *ctx)
{
    rejoin(ctx);
}

static void qmp_log(void *ctx, const char *line)
{
    (void)ctx;
    log_msg(LOG_INFO, "%s", line);
}

/* ---- the control socket and metrics ---- */

static void ops_fill(void *ctx, struct metric_set *m)
{
    struct socket_mode *sm = ctx;
    metric_info(m, "role", "What this colo-proxy is", "role", "compare");
    char state[160];
    snprintf(state, sizeof(state), "alone (failover: %s)", sm->alone_why);
    metric_info(m, "state", "Comparing, or alone once the secondary is gone (PVM frames pass straight)", "state",
                colo_compare_alone(sm->engine) ? state : "comparing");
    metric_gauge(m, "alone", "1 once the secondary is lost and PVM output passes straight", NULL, NULL,
                 colo_compare_alone(sm->engine));
    status_metrics_endpoints(m, sm->ep, sm->opened, role_names, SOCK_ROLE_COUNT);
    metric_counter(m, "socket_records_in", "Records read", "socket", "primary_in",
                   sm->stats.records_in[SOCK_PRIMARY_IN]);
    metric_counter(m, "socket_records_in", "Records read", "socket", "secondary_in",
                   sm->stats.records_in[SOCK_SECONDARY_IN]);
    metric_counter(m, "socket_records_out", "Records written to outdev", NULL, NULL, sm->stats.records_out);
    metric_counter(m, "socket_bytes_out", "Bytes of records written to outdev", NULL, NULL, sm->stats.bytes_out);
    metric_gauge(m, "outdev_queue_bytes", "Released bytes waiting for outdev", NULL, NULL,
                 (double)sm->ep[SOCK_OUTDEV].out.bytes);
    metric_counter(m, "divergence_reports", "Divergences logged (and written, with a report directory)", NULL,
                   NULL, sm->div_reports.reported);
    metric_counter(m, "divergence_reports_written", "Divergence reports written", NULL, NULL, sm->div_reports.written);
    metric_counter(m, "divergence_reports_suppressed", "Divergences over the per-minute limit", NULL, NULL,
                   sm->div_limiter.suppressed);
    metric_counter(m, "input_pauses", "Times input paused for a slow outdev", NULL, NULL, sm->stats.input_pauses);
    const struct conn_table *t = colo_compare_table(sm->engine);
    status_metrics_compare(m, colo_compare_stats(sm->engine), conn_table_stats(t), sm->cfg.compare.max_conns,
                           colo_compare_bypass(sm->engine));
    status_metrics_checkpoint_channel(m, sm->qmp != NULL, sm->opened[SOCK_NOTIFY_DEV]);
    if (sm->qmp)
        status_metrics_qmp(m, checkpoint_ctl_stats(sm->qmp));
}

static int start_ops(struct socket_mode *sm, char *err, size_t errlen)
{
    struct ops_server_config oc = { sm->cfg.control, sm->cfg.metrics_addr };
    sm->ops = ops_server_start_local(sm->base, &oc, ops_fill, qmp_done, sm, err, errlen);
    return sm->ops ? 0 : -1;
}

struct socket_mode *socket_mode_create(const struct socket_mode_config *cfg, char *err, size_t errlen)
{
    if (socket_mode_check_config(cfg, err, errlen) != 0)
        return NULL;
    struct socket_mode *sm = calloc(1, sizeof(*sm));
    if (!sm || !(sm->base = event_base_new())) {
        snprintf(err, errlen, "cannot create the event loop");
        socket_mode_destroy(sm);
        return NULL;
    }
    sm->cfg = *cfg;
    sm->div_limiter.per_minute = cfg->divergence_reports_per_minute;
    if (!(sm->div_capture = malloc(sizeof(*sm->div_capture)))) {
        snprintf(err, errlen, "out of memory for the divergence report buffer");
        socket_mode_destroy(sm);
        return NULL;
    }
    static const struct colo_compare_ops ops = {
        .release = on_release, .discard = on_discard, .request_checkpoint = on_request,
        .divergence = on_divergence,
    };
    sm->engine = colo_compare_create(&cfg->compare, &ops, sm);
    if (!sm->engine) {
        snprintf(err, errlen, "cannot allocate the connection table; lower --max-conns");
        socket_mode_destroy(sm);
        return NULL;
    }
    for (int r = 0; r < SOCK_ROLE_COUNT; r++) {
        if (open_endpoint(sm, (enum socket_role)r, err, errlen) != 0) {
            socket_mode_destroy(sm);
            return NULL;
        }
    }
    if (cfg->qmp) {
        struct checkpoint_ctl_config q;
        checkpoint_ctl_config_default(&q);
        q.qmp = cfg->qmp;
        q.period_ms = cfg->checkpoint_period_ms;
        static const struct checkpoint_ctl_ops qops = { qmp_done, qmp_failover, qmp_log, qmp_colo_started, NULL };
        if (!(sm->qmp = checkpoint_ctl_start(sm->base, &q, &qops, sm, err, errlen))) {
            socket_mode_destroy(sm);
            return NULL;
        }
    }
    if (start_ops(sm, err, errlen) != 0) {
        socket_mode_destroy(sm);
        return NULL;
    }
    struct timeval tick = { 0, TICK_US };
    sm->tick = event_new(sm->base, -1, EV_PERSIST, on_tick, sm);
    event_add(sm->tick, &tick);
    sm->sigint = evsignal_new(sm->base, SIGINT, on_signal, sm);
    sm->sigterm = evsignal_new(sm->base, SIGTERM, on_signal, sm);
    sm->sighup = evsignal_new(sm->base, SIGHUP, on_sighup, sm);
    event_add(sm->sigint, NULL);
    event_add(sm->sigterm, NULL);
    event_add(sm->sighup, NULL);
    return sm;
}

int socket_mode_run(struct socket_mode *sm)
{
    signal(SIGPIPE, SIG_IGN);
    event_base_dispatch(sm->base);
    colo_compare_release_all(sm->engine);
    /* Give outdev a bounded time to take the rest. */
    struct chardev_endpoint *out = &sm->ep[SOCK_OUTDEV];
    chardev_endpoint_flush(out);
    time_t until = time(NULL) + DRAIN_LIMIT_S;
    while (chardev_endpoint_connected(out) && out->out.head && time(NULL) < until)
        event_base_loop(sm->base, EVLOOP_ONCE);
    size_t left = out->out.bytes;
    if (left)
        log_msg(LOG_WARNING, "%zu bytes of released frames could not reach outdev within %d s of "
                        "stopping; exiting with status 1", left, DRAIN_LIMIT_S);
    print_summary(sm);
    return left ? 1 : 0;
}

void socket_mode_destroy(struct socket_mode *sm)
{
    if (!sm)
        return;
    colo_compare_destroy(sm->engine); /* releases what it holds into the output, freed below */
    for (int r = 0; r < SOCK_ROLE_COUNT; r++)
        if (sm->opened[r])
            chardev_endpoint_close(&sm->ep[r]);
    checkpoint_ctl_free(sm->qmp);
    ops_server_free(sm->ops);
    if (sm->tick)
        event_free(sm->tick);
    if (sm->sigint)
        event_free(sm->sigint);
    if (sm->sigterm)
        event_free(sm->sigterm);
    if (sm->sighup)
        event_free(sm->sighup);
    record_pool_free(&sm->pool);
    free(sm->div_capture);
    if (sm->base)
        event_base_free(sm->base);
    free(sm);
}

const struct socket_mode_stats *socket_mode_stats(const struct socket_mode *sm)
{
    return &sm->stats;
}
