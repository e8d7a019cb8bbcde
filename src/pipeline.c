/*
 * pipeline.c — the poll loops of both roles, and their shutdown.
 *
 * Owns: the mbuf pools (packet handles live in each mbuf's private area), the
 * ports of the role, their lossless TX FIFOs, the compare engine (primary) or
 * the rewriter (secondary), the two control rings, the VM port's link watch
 * (checkpoints in band, epoch markers, a dead VM). Must never: lock, allocate or
 * make a system call per packet; drop a PVM packet; take more from an input port
 * than its output FIFO has room for; read the SVM's port before the marker of its
 * resume is queued; speak again once its VM was taken for dead.
 */
#include "colo/pipeline.h"

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_ether.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_ring.h>
#include <rte_ring_elem.h>

#include "colo/announce.h"
#include "colo/ctrl_msg.h"
#include "colo/divergence_report.h"
#include "colo/dpdk_port.h"
#include "colo/epoch_marker.h"
#include "colo/log.h"
#include "colo/pkt_parse.h"

#define BURST 32
#define CONTROL_BURST 8
#define POOL_CACHE 256
#define LINK_CHECK_NS 10000000ull /* carrier loss must be seen fast (heartbeat) */
#define VM_LINK_CHECK_NS 1000000ull /* a VM port's restart (a checkpoint, 9 ms at the shortest) within 1 ms */
#define PVM_RESUME_WAIT_NS 50000000ull /* QMP's RESUME comes 2-4 ms before the PVM's port is up */
#define DRAIN_GRACE_NS 1000000000ull

static volatile sig_atomic_t stop_requested;

struct pipeline {
    struct pipeline_config cfg;
    struct rte_mempool *pool, *clone_pool;
    uint16_t port_id[PORT_ROLE_COUNT];
    struct port_txq txq[PORT_ROLE_COUNT];
    struct colo_compare *engine;
    struct seq_rewriter *rewriter;
    struct rte_ring *to_dp, *from_dp;
    struct rte_ether_addr vm_mac;
    const struct rte_ether_addr *vm_mac_or_null;
    uint64_t tsc_hz, now_ns, next_link_check_ns, next_vm_link_check_ns;
    enum port_role vm_port;      /* PORT_PVM (primary) or PORT_SVM (secondary) */
    uint32_t vm_down_hold_max;   /* frames the VM port's queue takes while it is down; then input waits */
    uint32_t svm_epoch;          /* primary: the epoch of the SVM frames now arriving on the link */
    bool marker_pending;         /* secondary: the SVM resumed; its marker is not on the link yet */
    struct epoch_marker marker;
    bool stopping, shutdown_checkpoint_asked;
    struct heartbeat hb;
    enum port_role svm_out;      /* secondary: where the SVM's output goes (the link, or the clients) */
    struct announce announce;    /* secondary: the VM's addresses, announced after a takeover */
    uint64_t stop_deadline_ns;
    struct pipeline_stats stats;
    struct divergence_capture *capture; /* lent to the control thread while capture_busy */
    bool capture_busy;
    struct divergence_limiter div_limiter;
    uint64_t divergences;
};

static const bool role_uses[2][PORT_ROLE_COUNT] = {
    [ROLE_PRIMARY] = { [PORT_CLIENT] = true, [PORT_PVM] = true, [PORT_LINK] = true },
    [ROLE_SECONDARY] = { [PORT_LINK] = true, [PORT_SVM] = true },
};

/* The secondary's client port is optional: with it, the secondary can take over. */
static bool port_wanted(const struct pipeline_config *cfg, enum port_role r)
{
    return role_uses[cfg->role][r] || (cfg->role == ROLE_SECONDARY && r == PORT_CLIENT && cfg->port_name[r]);
}

void pipeline_config_default(struct pipeline_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    colo_compare_config_default(&cfg->compare);
    cfg->compare.max_conns = 1u << 16;
    cfg->rewrite_max_conns = 1u << 16;
    cfg->nb_mbufs = 16384;
    cfg->shutdown_policy = SHUTDOWN_RELEASE;
    cfg->shutdown_timeout_ms = 5000;
    cfg->heartbeat_ms = 20;
    cfg->heartbeat_misses = 4;
    cfg->client_heartbeat = true;
    cfg->divergence_reports_per_minute = 60;
    cfg->vm_down_ms = 5000;
}

void pipeline_request_stop(void)
{
    stop_requested = 1;
}

const char *failover_reason_name(enum failover_reason r)
{
    static const char *const names[] = { "none", "heartbeat", "carrier" };
    return (unsigned)r < sizeof(names) / sizeof(names[0]) ? names[r] : "?";
}

const char *port_role_name(enum port_role r)
{
    static const char *const names[PORT_ROLE_COUNT] = { "client", "pvm", "link", "svm" };
    return (unsigned)r < PORT_ROLE_COUNT ? names[r] : "?";
}

const char *role_name(enum colo_role r)
{
    return r == ROLE_PRIMARY ? "primary" : "secondary";
}

/* ---- helpers ---- */

static uint64_t clock_ns(const struct pipeline *p)
{
    uint64_t c = rte_get_tsc_cycles();
    return c / p->tsc_hz * 1000000000ull + c % p->tsc_hz * 1000000000ull / p->tsc_hz;
}

static struct colo_pkt *handle_of(struct rte_mbuf *m)
{
    struct colo_pkt *pkt = rte_mbuf_to_priv(m);
    pkt->frame = rte_pktmbuf_mtod(m, uint8_t *);
    pkt->frame_len = rte_pktmbuf_data_len(m); /* the first segment: never read past it */
    pkt->owner = m;
    pkt->csum_partial = (m->ol_flags & RTE_MBUF_F_TX_L4_MASK) != 0;
    pkt->epoch = 0;
    pkt_parse(pkt->frame, pkt->frame_len, &pkt->view);
    return pkt;
}

static void send_to_control(struct pipeline *p, uint32_t type, uint32_t arg, void *ptr)
{
    struct ctrl_msg msg = { .type = type, .arg = arg, .ptr = ptr };
    if (rte_ring_enqueue_elem(p->from_dp, &msg, sizeof(msg)) != 0)
        p->stats.control_ring_full++;
}

static void push(struct pipeline *p, enum port_role r, struct rte_mbuf *m)
{
    if (!port_txq_push(&p->txq[r], m)) {
        /* Room was checked before receiving; reaching this is a sizing bug. */
        log_msg(LOG_ERROR, "%s TX queue overflow; dropping a frame (a bug: please report)",
                port_role_name(r));
        rte_pktmbuf_free(m);
        return;
    }
    p->stats.ports[r].held_while_down += !p->stats.ports[r].link_up;
}

/* Room toward the VM: while its port is down (a checkpoint), at most vm_down_hold_max frames wait there. */
static uint32_t vm_room(struct pipeline *p)
{
    const struct port_txq *q = &p->txq[p->vm_port];
    struct port_stats *ps = &p->stats.ports[p->vm_port];
    if (ps->link_up)
        return port_txq_room(q);
    uint32_t room = q->count < p->vm_down_hold_max ? p->vm_down_hold_max - q->count : 0;
    ps->held_back += room == 0;
    return RTE_MIN(room, port_txq_room(q));
}

static uint16_t rx(struct pipeline *p, enum port_role r, struct rte_mbuf **m, uint32_t room)
{
    uint16_t n = rte_eth_rx_burst(p->port_id[r], 0, m, (uint16_t)RTE_MIN(room, (uint32_t)BURST));
    p->stats.ports[r].rx += n;
    return n;
}

static bool from_vm(const struct pipeline *p, const struct rte_mbuf *m)
{
    if (!p->vm_mac_or_null || rte_pktmbuf_data_len(m) < RTE_ETHER_HDR_LEN)
        return true;
    const struct rte_ether_hdr *eth = rte_pktmbuf_mtod(m, const struct rte_ether_hdr *);
    return rte_is_same_ether_addr(&eth->src_addr, p->vm_mac_or_null);
}

/* ---- engine and rewriter callbacks ---- */

static void on_release(void *ctx, struct colo_pkt *pkt, enum release_reason why)
{
    (void)why;
    push(ctx, PORT_CLIENT, pkt->owner);
}

static void on_discard(void *ctx, struct colo_pkt *pkt)
{
    (void)ctx;
    rte_pktmbuf_free(pkt->owner);
}

static void on_checkpoint_request(void *ctx, enum checkpoint_reason why, uint64_t now)
{
    (void)now;
    send_to_control(ctx, MSG_CHECKPOINT_REQUEST, why, NULL);
}

static void to_svm(void *ctx, struct colo_pkt *pkt)
{
    push(ctx, PORT_SVM, pkt->owner);
}

static void to_link(void *ctx, struct colo_pkt *pkt)
{
    struct pipeline *p = ctx;
    push(p, p->svm_out, pkt->owner);
}

/* ---- the heartbeat with the peer colo-proxy ---- */

/* A heartbeat frame is consumed here (into `hb`); anything else is left to the caller. */
static bool take_heartbeat(struct pipeline *p, struct heartbeat *hb, struct rte_mbuf *m)
{
    const uint8_t *f = rte_pktmbuf_mtod(m, const uint8_t *);
    if (!p->cfg.heartbeat_ms || !heartbeat_is_frame(f, rte_pktmbuf_data_len(m)))
        return false;
    heartbeat_receive(hb, f, rte_pktmbuf_data_len(m), p->now_ns);
    rte_pktmbuf_free(m);
    return true;
}

/* False when there is no room or no buffer this time. */
static bool send_frame(struct pipeline *p, enum port_role r, const uint8_t *bytes, uint32_t len)
{
    if (!port_txq_room(&p->txq[r]))
        return false;
    struct rte_mbuf *m = rte_pktmbuf_alloc(p->pool);
    if (!m)
        return false;
    memcpy(rte_pktmbuf_mtod(m, uint8_t *), bytes, len);
    m->data_len = m->pkt_len = len;
    push(p, r, m);
    return true;
}

/* The primary also beats on the client side, so a secondary that loses only the link holds back. */
static void send_heartbeat(struct pipeline *p)
{
    uint8_t frame[HEARTBEAT_FRAME_LEN];
    if (!p->cfg.heartbeat_ms || p->stats.vm_dead || !heartbeat_due(&p->hb, frame, p->now_ns))
        return;
    send_frame(p, PORT_LINK, frame, sizeof(frame));
    if (p->cfg.role == ROLE_PRIMARY && p->cfg.client_heartbeat)
        send_frame(p, PORT_CLIENT, frame, sizeof(frame));
}

/* ---- the VM's port: checkpoints in band, SVM epochs, a dead VM ---- */

/* Primary: a marker from the secondary; the SVM frames after it on the link belong to the next epoch. */
static bool take_marker(struct pipeline *p, struct rte_mbuf *m)
{
    const uint8_t *f = rte_pktmbuf_mtod(m, const uint8_t *);
    uint32_t len = rte_pktmbuf_data_len(m);
    if (!epoch_marker_is_frame(f, len))
        return false;
    struct epoch_marker mk;
    if (epoch_marker_read(f, len, &mk))
        p->svm_epoch = checkpoint_signals_marker(&p->stats.signals, &mk, p->now_ns);
    else
        p->stats.signals.markers_malformed++;
    rte_pktmbuf_free(m);
    return true;
}

/* Secondary: the marker of the SVM's last resume, on the link ahead of its new output; false while it waits. */
static bool send_marker(struct pipeline *p)
{
    if (!p->marker_pending)
        return true;
    uint8_t frame[EPOCH_MARKER_FRAME_LEN];
    epoch_marker_write(frame, &p->marker);
    p->marker_pending = !send_frame(p, PORT_LINK, frame, sizeof(frame));
    return !p->marker_pending;
}

/* The SVM resumed (its port came up): what it sends from now on is a new epoch. */
static void svm_resumed(struct pipeline *p, const struct link_watch *w)
{
    if (p->svm_out != PORT_LINK)
        return; /* taken over: no primary to tell */
    checkpoint_signals_next_epoch(&p->stats.signals, w->downs ? w->last_down_ns : 0, &p->marker);
    p->marker_pending = true;
}

static void link_changed(struct pipeline *p, enum port_role r, bool up)
{
    struct port_stats *ps = &p->stats.ports[r];
    bool first_up = up && !ps->watch.ever_up;
    link_watch_update(&ps->watch, up, p->now_ns);
    ps->link_up = up;
    if (r != p->vm_port) {
        log_msg(LOG_INFO, "%s port link %s", port_role_name(r), up ? "up" : "down");
        return;
    }
    /* Every checkpoint restarts a vhost-user NIC: only the first up is news. */
    log_msg(first_up ? LOG_INFO : LOG_DEBUG, "%s port link %s%s", port_role_name(r), up ? "up" : "down",
            first_up ? " (the VM's NIC started)" : "");
    checkpoint_signals_port(&p->stats.signals, &ps->watch, p->now_ns);
    if (up && p->cfg.role == ROLE_SECONDARY)
        svm_resumed(p, &ps->watch);
}

/*
 * The VM's port has been down far longer than a checkpoint: the VM is dead, and that
 * is this host's failure. This side falls silent for good (no heartbeat on the link
 * or the client side, nothing to clients, the VM or the peer), so the peer acts as
 * when the host dies: the secondary takes over (the PVM died), or the primary goes on
 * alone (the SVM died). The PVM's held output is not released: the SVM, resumed from
 * the last checkpoint, is what clients talk to now, and it never sent those frames.
 * Never undone: a VM that comes back is not to be served (never two primaries).
 */
static void vm_is_dead(struct pipeline *p, uint64_t down_ns)
{
    bool primary = p->cfg.role == ROLE_PRIMARY;
    p->stats.vm_dead = true;
    p->stats.vm_dead_unreleased = p->engine ? colo_compare_stats(p->engine)->pvm_held : 0;
    p->stats.vm_dead_dropped += port_txq_discard(&p->txq[p->vm_port]);
    if (primary)
        log_msg(LOG_ERROR, "the PVM's port has been down for %" PRIu64 " ms (--vm-down-ms %u): the PVM is taken for "
                "dead; this primary falls silent for good so that the secondary takes over, and the %" PRIu64
                " PVM frames it held are not released (if checkpoints take this long, raise --vm-down-ms)",
                down_ns / 1000000, p->cfg.vm_down_ms, p->stats.vm_dead_unreleased);
    else
        log_msg(LOG_ERROR, "the SVM's port has been down for %" PRIu64 " ms (--vm-down-ms %u): the SVM is taken for "
                "dead; this secondary falls silent for good so that the primary goes on alone (if checkpoints "
                "take this long, raise --vm-down-ms)", down_ns / 1000000, p->cfg.vm_down_ms);
    send_to_control(p, MSG_VM_DEAD, p->vm_port, NULL);
}

/* Before the stages: a VM port that comes up must be seen before it is read (the marker goes first). */
static void check_vm_link(struct pipeline *p)
{
    struct port_stats *ps = &p->stats.ports[p->vm_port];
    if (!ps->in_use || (ps->link_up && p->now_ns < p->next_vm_link_check_ns))
        return;
    p->next_vm_link_check_ns = p->now_ns + VM_LINK_CHECK_NS;
    bool up = dpdk_port_link_up(p->port_id[p->vm_port]);
    if (up != ps->link_up)
        link_changed(p, p->vm_port, up);
    uint64_t down = link_watch_down_ns(&ps->watch, p->now_ns);
    if (!p->stats.vm_dead && p->cfg.vm_down_ms && down >= (uint64_t)p->cfg.vm_down_ms * 1000000ull)
        vm_is_dead(p, down);
}

/* A dead VM's host passes nothing: whatever arrives is dropped and counted. */
static unsigned silent_iteration(struct pipeline *p)
{
    struct rte_mbuf *m[BURST];
    unsigned got = 0;
    for (int r = 0; r < PORT_ROLE_COUNT; r++) {
        if (!p->stats.ports[r].in_use)
            continue;
        uint16_t n = rx(p, (enum port_role)r, m, BURST);
        rte_pktmbuf_free_bulk(m, n);
        p->stats.vm_dead_dropped += n;
        got += n;
    }
    return got;
}

/*
 * The secondary is gone: nothing will ever match, so release everything held
 * (in arrival order, counted as released at failover) and pass PVM output
 * straight through from now on. Joining a secondary again means starting COLO
 * again (a new colo-proxy run).
 */
static void continue_alone(struct pipeline *p)
{
    uint64_t released = colo_compare_go_alone(p->engine, p->now_ns);
    p->stats.alone = true;
    log_msg(LOG_WARNING, "primary continues alone: %" PRIu64 " held frames released, "
                    "PVM output now passes straight through", released);
    send_to_control(p, MSG_PRIMARY_ALONE, 0, NULL);
}

static uint64_t unix_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void note_failover(struct pipeline *p)
{
    p->stats.failover.reason = p->stats.ports[PORT_LINK].link_up ? FAILOVER_HEARTBEAT : FAILOVER_CARRIER;
    p->stats.failover.at_unix_ms = unix_ms();
    p->stats.failover.silent_ms = p->hb.last_heard_ns ? (p->now_ns - p->hb.last_heard_ns) / 1000000 : 0;
}

/*
 * The primary is gone: the SVM serves the clients from now on. Its output goes to
 * the client port, still rewritten for every connection known now (the clients
 * are in the PVM's sequence space for good); connections that start later are the
 * SVM's own. The VM is announced where it now is, and QEMU is told.
 */
static void take_over(struct pipeline *p)
{
    note_failover(p);
    p->stats.taken_over = true;
    p->svm_out = PORT_CLIENT;
    seq_rewriter_failover(p->rewriter);
    announce_start(&p->announce, p->now_ns);
    log_msg(LOG_WARNING, "secondary takes over (%s, the primary silent for %" PRIu64
                    " ms): the SVM serves the clients; announcing %u IPv4 and %u IPv6 addresses",
            failover_reason_name(p->stats.failover.reason), p->stats.failover.silent_ms, p->announce.n_ipv4,
            p->announce.n_ipv6);
    send_to_control(p, MSG_TAKEOVER, p->stats.failover.reason, NULL);
}

/*
 * Split-brain rule: the secondary takes over only when the primary is silent on
 * the link AND on the client side. A primary still beating on the client side has
 * lost only the link: it goes on alone, and the secondary must stay quiet.
 */
static void consider_takeover(struct pipeline *p)
{
    if (p->cfg.role != ROLE_SECONDARY || !p->stats.ports[PORT_CLIENT].in_use)
        return;
    heartbeat_check(&p->stats.client_side, p->stats.ports[PORT_CLIENT].link_up, p->now_ns);
    if (p->stats.taken_over || p->hb.state != PEER_DOWN)
        return;
    if (p->stats.client_side.state != PEER_UP) {
        take_over(p);
        return;
    }
    if (p->stats.takeover_guarded++ == 0) {
        log_msg(LOG_WARNING, "the link to the primary is lost but the primary still speaks on the "
                        "client side: not taking over (split-brain guard)");
        send_to_control(p, MSG_TAKEOVER_GUARDED, 0, NULL);
    }
}

static void judge_peer(struct pipeline *p)
{
    if (!p->cfg.heartbeat_ms || p->stats.vm_dead)
        return;
    if (heartbeat_check(&p->hb, p->stats.ports[PORT_LINK].link_up, p->now_ns)) {
        log_msg(LOG_WARNING, "the peer colo-proxy is %s (%s)", heartbeat_state_name(p->hb.state),
                p->stats.ports[PORT_LINK].link_up ? "heartbeat" : "link carrier lost");
        send_to_control(p, MSG_PEER_STATE, p->hb.state, NULL);
        if (p->hb.state == PEER_DOWN && p->cfg.role == ROLE_PRIMARY && !p->stats.alone) {
            note_failover(p);
            continue_alone(p);
        }
    }
    consider_takeover(p);
}

/* ---- the primary's stages ---- */

static unsigned client_to_pvm_and_link(struct pipeline *p)
{
    struct rte_mbuf *m[BURST];
    uint32_t room = RTE_MIN(vm_room(p), port_txq_room(&p->txq[PORT_LINK]));
    uint16_t n = rx(p, PORT_CLIENT, m, room);
    for (uint16_t i = 0; i < n; i++) {
        if (take_heartbeat(p, &p->stats.client_side, m[i]))
            continue; /* another colo-proxy's, on the client side: never the VM's */
        if (p->stats.alone) {
            push(p, PORT_PVM, m[i]); /* no secondary to mirror to */
            continue;
        }
        if (mirror_frame_is_for_vm(m[i], p->vm_mac_or_null)) {
            struct rte_mbuf *copy = mirror_clone(m[i], p->clone_pool, &p->stats.mirror);
            if (copy)
                push(p, PORT_LINK, copy);
        } else {
            p->stats.mirror.not_for_vm++;
        }
        push(p, PORT_PVM, m[i]);
    }
    return n;
}

static unsigned into_compare(struct pipeline *p, enum port_role r, enum colo_side side)
{
    struct rte_mbuf *m[BURST];
    struct colo_pkt *pkts[BURST];
    unsigned k = 0;
    uint16_t n = rx(p, r, m, port_txq_room(&p->txq[PORT_CLIENT]));
    for (uint16_t i = 0; i < n; i++) {
        if (r == PORT_LINK && (take_heartbeat(p, &p->hb, m[i]) || take_marker(p, m[i])))
            continue;
        if (from_vm(p, m[i])) {
            pkts[k] = handle_of(m[i]);
            pkts[k++]->epoch = side == SIDE_SVM ? p->svm_epoch : 0;
        } else if (side == SIDE_PVM) {
            p->stats.pvm_not_from_vm++; /* host traffic on the PVM's segment: not the VM's output */
            push(p, PORT_CLIENT, m[i]);
        } else {
            p->stats.link_not_from_vm++;
            rte_pktmbuf_free(m[i]);
        }
    }
    colo_compare_input_burst(p->engine, side, pkts, k, p->now_ns);
    return n;
}

/* Alone: PVM output to the client as it comes; the link carries only heartbeats. */
static unsigned pass_straight_through(struct pipeline *p)
{
    struct rte_mbuf *m[BURST];
    uint16_t n = rx(p, PORT_PVM, m, port_txq_room(&p->txq[PORT_CLIENT]));
    for (uint16_t i = 0; i < n; i++)
        push(p, PORT_CLIENT, m[i]);
    p->stats.passed_alone += n;
    uint16_t k = rx(p, PORT_LINK, m, BURST);
    for (uint16_t i = 0; i < k; i++) {
        if (!take_heartbeat(p, &p->hb, m[i]) && !take_marker(p, m[i]))
            rte_pktmbuf_free(m[i]);
    }
    return n + k;
}

/* Held frames, and frames waiting for a PVM port that is down, must leave room in the pool. */
static void guard_buffers(struct pipeline *p)
{
    const struct colo_compare_stats *s = colo_compare_stats(p->engine);
    if (s->pvm_held + s->svm_held + p->txq[PORT_PVM].count > (uint64_t)p->cfg.nb_mbufs * 3 / 4)
        colo_compare_request_checkpoint(p->engine, CKPT_POOL_LOW, p->now_ns);
}

/*
 * The PVM's port is up again, QMP has ended checkpoints before, but this one's end has
 * not reached us yet: what the PVM sends now is from after its resume and would be
 * flushed uncompared by that end, while the SVM's copy is kept (a newer epoch) and would
 * meet the PVM's next frame instead. So it waits in the port, at most PVM_RESUME_WAIT_NS.
 */
static bool pvm_resumed_before_the_end(const struct pipeline *p)
{
    const struct port_stats *ps = &p->stats.ports[PORT_PVM];
    const struct checkpoint_signals *g = &p->stats.signals;
    return g->open && g->markers && g->qmp_done && ps->link_up && ps->watch.downs &&
           p->now_ns - ps->watch.since_ns < PVM_RESUME_WAIT_NS;
}

static unsigned primary_iteration(struct pipeline *p)
{
    unsigned got = 0;
    if (p->stats.vm_dead)
        return silent_iteration(p);
    if (!p->stopping)
        got += client_to_pvm_and_link(p);
    if (p->stats.alone)
        return got + pass_straight_through(p);
    if (!pvm_resumed_before_the_end(p))
        got += into_compare(p, PORT_PVM, SIDE_PVM);
    got += into_compare(p, PORT_LINK, SIDE_SVM);
    colo_compare_tick(p->engine, p->now_ns);
    guard_buffers(p);
    return got;
}

/* ---- the secondary's stages ---- */

/* Toward the SVM: from the link (mirrored client frames) or, after a takeover, the clients. */
static unsigned toward_svm(struct pipeline *p, enum port_role from)
{
    struct rte_mbuf *m[BURST];
    uint16_t n = rx(p, from, m, vm_room(p));
    for (uint16_t i = 0; i < n; i++) {
        struct heartbeat *hb = from == PORT_LINK ? &p->hb : &p->stats.client_side;
        if (!take_heartbeat(p, hb, m[i]))
            seq_rewrite_from_link(p->rewriter, handle_of(m[i]), p->now_ns);
    }
    return n;
}

/*
 * The SVM's output, toward the link (or the clients after a takeover); its addresses are
 * learned. Read only while its port is seen up and the marker of its last resume is
 * queued, so nothing it sent after resuming goes ahead of that marker.
 */
static unsigned from_svm(struct pipeline *p)
{
    if (!p->stats.ports[PORT_SVM].link_up || !send_marker(p))
        return 0;
    struct rte_mbuf *m[BURST];
    uint16_t n = rx(p, PORT_SVM, m, port_txq_room(&p->txq[p->svm_out]));
    for (uint16_t i = 0; i < n; i++) {
        struct colo_pkt *pkt = handle_of(m[i]);
        if (!p->cfg.vm_mac_set && pkt->frame_len >= RTE_ETHER_HDR_LEN)
            memcpy(p->announce.mac, pkt->frame + RTE_ETHER_ADDR_LEN, RTE_ETHER_ADDR_LEN); /* the SVM's MAC */
        announce_learn(&p->announce, &pkt->view);
        seq_rewrite_from_svm(p->rewriter, pkt, p->now_ns);
    }
    return n;
}

/* Before a takeover the client side is the primary's to serve: only its heartbeats are taken. */
static unsigned watch_client_side(struct pipeline *p, enum port_role r)
{
    struct rte_mbuf *m[BURST];
    uint16_t n = rx(p, r, m, BURST);
    for (uint16_t i = 0; i < n; i++) {
        struct heartbeat *hb = r == PORT_LINK ? &p->hb : &p->stats.client_side;
        if (!take_heartbeat(p, hb, m[i])) {
            p->stats.client_ignored += r == PORT_CLIENT;
            rte_pktmbuf_free(m[i]);
        }
    }
    return n;
}

static void send_announcements(struct pipeline *p)
{
    struct announce_frame frames[ANNOUNCE_MAX_FRAMES];
    unsigned n = announce_due(&p->announce, p->now_ns, frames);
    for (unsigned i = 0; i < n; i++)
        send_frame(p, PORT_CLIENT, frames[i].bytes, frames[i].len);
    p->stats.announce_frames += n;
}

static unsigned secondary_iteration(struct pipeline *p)
{
    unsigned got;
    if (p->stats.vm_dead)
        return silent_iteration(p);
    if (p->stats.taken_over) {
        got = toward_svm(p, PORT_CLIENT) + from_svm(p) + watch_client_side(p, PORT_LINK);
        send_announcements(p);
    } else {
        got = toward_svm(p, PORT_LINK) + from_svm(p);
        if (p->stats.ports[PORT_CLIENT].in_use)
            got += watch_client_side(p, PORT_CLIENT);
    }
    seq_rewriter_tick(p->rewriter, p->now_ns);
    return got;
}

/* ---- control, link state, statistics ---- */

static void snapshot(struct pipeline *p, struct pipeline_stats *out)
{
    *out = p->stats;
    out->role = p->cfg.role;
    for (int r = 0; r < PORT_ROLE_COUNT; r++) {
        out->ports[r].tx = p->txq[r].sent;
        out->ports[r].tx_pending = p->txq[r].count;
        out->ports[r].tx_partial_bursts = p->txq[r].partial_bursts;
        out->ports[r].down_now_ns = link_watch_down_ns(&p->stats.ports[r].watch, p->now_ns);
    }
    out->vm_port = p->vm_port;
    if (p->engine) {
        out->compare = *colo_compare_stats(p->engine);
        out->conns = *conn_table_stats(colo_compare_table(p->engine));
        out->conns_max = p->cfg.compare.max_conns;
        out->bypass = *colo_compare_bypass(p->engine);
    }
    if (p->rewriter)
        out->rewrite = *seq_rewriter_stats(p->rewriter);
    out->heartbeat = p->hb;
    out->announce_ipv4 = p->announce.n_ipv4;
    out->announce_ipv6 = p->announce.n_ipv6;
}

static void begin_stop(struct pipeline *p)
{
    if (p->stopping)
        return;
    p->stopping = true;
    p->stop_deadline_ns = p->now_ns + (uint64_t)p->cfg.shutdown_timeout_ms * 1000000ull;
    log_msg(LOG_INFO, "%s stopping", role_name(p->cfg.role));
}

void pipeline_stop(struct pipeline *p)
{
    begin_stop(p);
}

/*
 * A checkpoint completed (qmp_us: QEMU's STOP→RESUME, 0 when the word came from the
 * control socket). With the secondary's epoch markers, only the SVM output from
 * before its resume is stale; without them, every held SVM frame is, as always.
 */
static void checkpoint_done(struct pipeline *p, uint32_t qmp_us)
{
    uint32_t stale_through;
    bool epochs = checkpoint_signals_done(&p->stats.signals, (uint64_t)qmp_us * 1000, p->now_ns, &stale_through);
    if (p->engine && epochs)
        colo_compare_checkpoint_done_epoch(p->engine, p->now_ns, stale_through);
    else if (p->engine)
        colo_compare_checkpoint_done(p->engine, p->now_ns);
    if (p->rewriter)
        seq_rewriter_checkpoint_done(p->rewriter);
}

static uint64_t unix_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts); /* vDSO: no system call */
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Copies the divergence for the control thread, which logs and writes it; one at a time, within the limit. */
static void on_divergence(void *ctx, const struct divergence *d)
{
    struct pipeline *p = ctx;
    uint64_t number = ++p->divergences;
    if (p->capture_busy || !divergence_limiter_allow(&p->div_limiter, p->now_ns)) {
        p->stats.divergence_reports_suppressed++;
        return;
    }
    divergence_capture_fill(p->capture, number, d, p->now_ns, unix_ns());
    p->capture_busy = true;
    send_to_control(p, MSG_DIVERGENCE, 0, p->capture);
}

static void apply_reload(struct pipeline *p, const struct pipeline_reload *r)
{
    p->div_limiter.per_minute = r->divergence_reports_per_minute;
    if (p->engine)
        colo_compare_set_bypass(p->engine, &r->bypass);
}

static void handle_control(struct pipeline *p)
{
    struct ctrl_msg msgs[CONTROL_BURST];
    unsigned n = rte_ring_dequeue_burst_elem(p->to_dp, msgs, sizeof(msgs[0]), CONTROL_BURST, NULL);
    for (unsigned i = 0; i < n; i++) {
        switch (msgs[i].type) {
        case MSG_CHECKPOINT_DONE:
            checkpoint_done(p, msgs[i].arg);
            break;
        case MSG_CHECKPOINT_BEGAN:
            checkpoint_signals_qmp_stop(&p->stats.signals, p->now_ns);
            break;
        case MSG_SHUTDOWN:
            begin_stop(p);
            break;
        case MSG_STATS_REQUEST:
            snapshot(p, msgs[i].ptr);
            send_to_control(p, MSG_STATS_READY, 0, msgs[i].ptr);
            break;
        case MSG_DIVERGENCE_DONE:
            p->capture_busy = false;
            break;
        case MSG_RELOAD:
            apply_reload(p, msgs[i].ptr);
            send_to_control(p, MSG_RELOAD_DONE, 0, msgs[i].ptr);
            break;
        default:
            break;
        }
    }
    if (stop_requested)
        begin_stop(p);
}

static void check_links(struct pipeline *p)
{
    if (p->now_ns < p->next_link_check_ns)
        return;
    p->next_link_check_ns = p->now_ns + LINK_CHECK_NS;
    for (int r = 0; r < PORT_ROLE_COUNT; r++) {
        struct port_stats *ps = &p->stats.ports[r];
        if (!ps->in_use || r == (int)p->vm_port)
            continue; /* the VM's port is watched more closely, before the stages */
        bool up = dpdk_port_link_up(p->port_id[r]);
        if (up != ps->link_up)
            link_changed(p, (enum port_role)r, up);
    }
}

/* A VM port that is down (a checkpoint) keeps its frames queued, in order, until it is up. */
static void flush_all(struct pipeline *p)
{
    for (int r = 0; r < PORT_ROLE_COUNT; r++) {
        struct port_stats *ps = &p->stats.ports[r];
        if (!ps->in_use)
            continue;
        if (r != (int)p->vm_port || ps->link_up)
            port_txq_flush(&p->txq[r]);
        else if (p->txq[r].count > ps->held_while_down_max)
            ps->held_while_down_max = p->txq[r].count;
    }
}

/* Is the drain finished? Releases held packets by the policy when it is time. */
static bool drained(struct pipeline *p)
{
    if (p->engine && colo_compare_stats(p->engine)->pvm_held && !p->stats.vm_dead) {
        bool wait = p->cfg.shutdown_policy == SHUTDOWN_CHECKPOINT && p->now_ns < p->stop_deadline_ns;
        if (wait && !p->shutdown_checkpoint_asked) {
            colo_compare_request_checkpoint(p->engine, CKPT_SHUTDOWN, p->now_ns);
            p->shutdown_checkpoint_asked = true;
        }
        if (wait)
            return false;
        uint64_t before = colo_compare_stats(p->engine)->pvm_held;
        colo_compare_release_all(p->engine);
        p->stats.shutdown_released += before;
        p->stop_deadline_ns = p->now_ns;
    }
    for (int r = 0; r < PORT_ROLE_COUNT; r++) {
        if (p->txq[r].count && p->now_ns < p->stop_deadline_ns + DRAIN_GRACE_NS)
            return false;
    }
    return true;
}

unsigned pipeline_poll_once(struct pipeline *p)
{
    p->now_ns = clock_ns(p);
    p->stats.iterations++;
    handle_control(p);
    check_vm_link(p);
    send_heartbeat(p);
    unsigned got = p->cfg.role == ROLE_PRIMARY ? primary_iteration(p) : secondary_iteration(p);
    flush_all(p);
    check_links(p);
    judge_peer(p);
    return got;
}

void pipeline_stats_snapshot(struct pipeline *p, struct pipeline_stats *out)
{
    snapshot(p, out);
}

void pipeline_run(struct pipeline *p)
{
    log_msg(LOG_INFO, "%s running on lcore %u", role_name(p->cfg.role), rte_lcore_id());
    for (;;) {
        unsigned got = pipeline_poll_once(p);
        if (p->stopping && drained(p))
            break;
        if (got == 0) {
            p->stats.idle_iterations++;
            if (p->cfg.idle_sleep_us)
                rte_delay_us_sleep(p->cfg.idle_sleep_us);
            else
                rte_pause();
        }
    }
    for (int r = 0; r < PORT_ROLE_COUNT; r++)
        p->stats.shutdown_unsent += port_txq_discard(&p->txq[r]);
    if (p->stats.shutdown_unsent)
        log_msg(LOG_WARNING, "%" PRIu64 " frames could not be sent before shutdown (ports full or down)",
                p->stats.shutdown_unsent);
    send_to_control(p, MSG_STOPPED, 0, NULL);
}

/* ---- setup ---- */

int pipeline_check_config(const struct pipeline_config *cfg, char *err, size_t errlen)
{
    for (int r = 0; r < PORT_ROLE_COUNT; r++) {
        if (port_wanted(cfg, (enum port_role)r) && !cfg->port_name[r]) {
            snprintf(err, errlen, "the %s role needs --%s-port", role_name(cfg->role), port_role_name(r));
            return -1;
        }
    }
    return 0;
}

static int open_ports(struct pipeline *p, char *err, size_t errlen)
{
    if (pipeline_check_config(&p->cfg, err, errlen) != 0)
        return -1;
    for (int r = 0; r < PORT_ROLE_COUNT; r++) {
        if (!port_wanted(&p->cfg, (enum port_role)r))
            continue;
        if (dpdk_port_resolve(p->cfg.port_name[r], &p->port_id[r], err, errlen) != 0)
            return -1;
        for (int o = 0; o < r; o++) {
            if (p->stats.ports[o].in_use && p->port_id[o] == p->port_id[r]) {
                snprintf(err, errlen, "--%s-port and --%s-port name the same DPDK port",
                         port_role_name(o), port_role_name(r));
                return -1;
            }
        }
        if (dpdk_port_start(p->port_id[r], p->pool, err, errlen) != 0 ||
            port_txq_init(&p->txq[r], p->port_id[r], 2 * p->cfg.nb_mbufs) != 0)
            return -1;
        p->stats.ports[r].in_use = true;
        p->stats.ports[r].link_up = dpdk_port_link_up(p->port_id[r]);
        link_watch_init(&p->stats.ports[r].watch, p->stats.ports[r].link_up, p->now_ns);
    }
    return 0;
}

static int create_pools_and_rings(struct pipeline *p, char *err, size_t errlen)
{
    int socket = (int)rte_socket_id();
    uint16_t priv = (uint16_t)RTE_ALIGN(sizeof(struct colo_pkt), RTE_MBUF_PRIV_ALIGN);
    p->pool = rte_pktmbuf_pool_create("colo_pkts", p->cfg.nb_mbufs, POOL_CACHE, priv,
                                      RTE_MBUF_DEFAULT_BUF_SIZE, socket);
    p->clone_pool = rte_pktmbuf_pool_create("colo_clones", p->cfg.nb_mbufs, POOL_CACHE, 0, 0, socket);
    p->to_dp = rte_ring_create_elem("colo_to_dp", sizeof(struct ctrl_msg), CTRL_RING_SIZE, socket,
                                    RING_F_SP_ENQ | RING_F_SC_DEQ);
    p->from_dp = rte_ring_create_elem("colo_from_dp", sizeof(struct ctrl_msg), CTRL_RING_SIZE, socket,
                                      RING_F_SP_ENQ | RING_F_SC_DEQ);
    if (!p->pool || !p->clone_pool || !p->to_dp || !p->from_dp) {
        snprintf(err, errlen, "cannot allocate %u packet buffers: %s (give EAL more memory with -m, or lower --mbufs)",
                 p->cfg.nb_mbufs, rte_strerror(rte_errno));
        return -1;
    }
    return 0;
}

static int create_stage(struct pipeline *p, char *err, size_t errlen)
{
    if (p->cfg.role == ROLE_PRIMARY) {
        static const struct colo_compare_ops ops = {
            .release = on_release,
            .discard = on_discard,
            .request_checkpoint = on_checkpoint_request,
            .divergence = on_divergence,
        };
        p->div_limiter.per_minute = p->cfg.divergence_reports_per_minute;
        p->capture = malloc(sizeof(*p->capture));
        p->engine = p->capture ? colo_compare_create(&p->cfg.compare, &ops, p) : NULL;
    } else {
        static const struct seq_rewriter_ops ops = { .to_svm = to_svm, .to_link = to_link,
                                                     .drop = on_discard };
        p->rewriter = seq_rewriter_create(p->cfg.rewrite_max_conns, &ops, p);
    }
    if (!p->engine && !p->rewriter) {
        snprintf(err, errlen, "cannot allocate the connection table; lower --max-conns");
        return -1;
    }
    return 0;
}

struct pipeline *pipeline_create(const struct pipeline_config *cfg, char *err, size_t errlen)
{
    struct pipeline *p = calloc(1, sizeof(*p));
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    p->cfg = *cfg;
    p->tsc_hz = rte_get_tsc_hz();
    p->now_ns = clock_ns(p);
    p->stats.role = cfg->role;
    p->vm_port = p->stats.vm_port = cfg->role == ROLE_PRIMARY ? PORT_PVM : PORT_SVM;
    p->vm_down_hold_max = cfg->nb_mbufs / 4;
    heartbeat_init(&p->hb, cfg->role == ROLE_PRIMARY ? 0 : 1, cfg->heartbeat_ms, cfg->heartbeat_misses);
    heartbeat_init(&p->stats.client_side, cfg->role == ROLE_PRIMARY ? 0 : 1, cfg->heartbeat_ms,
                   cfg->heartbeat_misses);
    p->svm_out = PORT_LINK;
    announce_init(&p->announce, cfg->vm_mac);
    if (cfg->vm_mac_set) {
        memcpy(p->vm_mac.addr_bytes, cfg->vm_mac, RTE_ETHER_ADDR_LEN);
        p->vm_mac_or_null = &p->vm_mac;
    }
    if (create_pools_and_rings(p, err, errlen) != 0 || create_stage(p, err, errlen) != 0 ||
        open_ports(p, err, errlen) != 0) {
        pipeline_destroy(p);
        return NULL;
    }
    return p;
}

void pipeline_destroy(struct pipeline *p)
{
    if (!p)
        return;
    /* The stages first: whatever they still hold comes back through the TX queues. */
    colo_compare_destroy(p->engine);
    seq_rewriter_destroy(p->rewriter);
    for (int r = 0; r < PORT_ROLE_COUNT; r++) {
        if (p->txq[r].fifo)
            port_txq_discard(&p->txq[r]);
        if (p->stats.ports[r].in_use) {
            rte_eth_dev_stop(p->port_id[r]);
            rte_eth_dev_close(p->port_id[r]);
        }
        port_txq_free(&p->txq[r]);
    }
    rte_ring_free(p->to_dp);
    rte_ring_free(p->from_dp);
    rte_mempool_free(p->pool);
    rte_mempool_free(p->clone_pool);
    free(p->capture);
    free(p);
}

struct rte_ring *pipeline_ring_to_dataplane(struct pipeline *p)
{
    return p->to_dp;
}

struct rte_ring *pipeline_ring_from_dataplane(struct pipeline *p)
{
    return p->from_dp;
}
