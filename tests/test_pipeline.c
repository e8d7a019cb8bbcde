/*
 * test_pipeline.c — the data plane on in-memory ring ports (rte_eth_from_rings).
 *
 * Each test builds ports whose RX and TX are rte_rings the test holds: it
 * enqueues what a client, the PVM or the SVM would send, steps the loop with
 * pipeline_poll_once, and dequeues what the proxy sent. EAL runs with
 * --no-huge --no-pci --no-shconf.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <rte_eal.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_ring.h>
#include <rte_ring_elem.h>

#include "colo/ctrl_msg.h"
#include "colo/divergence_report.h"
#include "colo/epoch_marker.h"
#include "colo/pipeline.h"
#include "frame_builder.h"

struct ring_port {
    struct rte_ring *rx, *tx; /* rx: what the proxy receives; tx: what it sends */
    char id[8];
};

struct bench {
    struct rte_mempool *pool;
    struct ring_port port[PORT_ROLE_COUNT];
    struct pipeline *p;
};

static unsigned serial;

static void make_port(struct ring_port *rp, const char *what, unsigned tx_size)
{
    char name[64];
    snprintf(name, sizeof(name), "t%u_%s_rx", serial, what);
    rp->rx = rte_ring_create(name, 1024, 0, RING_F_SP_ENQ | RING_F_SC_DEQ);
    snprintf(name, sizeof(name), "t%u_%s_tx", serial, what);
    rp->tx = rte_ring_create(name, tx_size, 0, RING_F_SP_ENQ | RING_F_SC_DEQ);
    assert_non_null(rp->rx);
    assert_non_null(rp->tx);
    snprintf(name, sizeof(name), "t%u_%s", serial, what);
    int id = rte_eth_from_rings(name, &rp->rx, 1, &rp->tx, 1, 0);
    assert_true(id >= 0);
    snprintf(rp->id, sizeof(rp->id), "%d", id);
}

/* The pipeline's idea of its pool size (its pool_low threshold is 3/4 of it). */
static uint32_t bench_nb_mbufs = 2048;
/* How long the VM's port may stay down before the VM is taken for dead. */
static uint32_t bench_vm_down_ms = 5000;

/* `secondary_client`: the secondary also gets a client port (it can take over). */
static void bench_up_ports(struct bench *b, enum colo_role role, unsigned client_tx_size,
                           uint32_t heartbeat_ms, bool secondary_client)
{
    memset(b, 0, sizeof(*b));
    serial++;
    char name[32];
    snprintf(name, sizeof(name), "tpool%u", serial);
    uint16_t priv = (uint16_t)RTE_ALIGN(sizeof(struct colo_pkt), RTE_MBUF_PRIV_ALIGN);
    b->pool = rte_pktmbuf_pool_create(name, 1024, 0, priv, RTE_MBUF_DEFAULT_BUF_SIZE, 0);
    assert_non_null(b->pool);
    struct pipeline_config cfg;
    pipeline_config_default(&cfg);
    cfg.heartbeat_ms = heartbeat_ms; /* 0 in most tests: they count frames on the link */
    cfg.role = role;
    cfg.nb_mbufs = bench_nb_mbufs;
    cfg.vm_down_ms = bench_vm_down_ms;
    cfg.compare.max_conns = 1024;
    cfg.rewrite_max_conns = 1024;
    static const char *const what[PORT_ROLE_COUNT] = { "client", "pvm", "link", "svm" };
    for (int r = 0; r < PORT_ROLE_COUNT; r++) {
        bool used = role == ROLE_PRIMARY ? r != PORT_SVM
                                         : (r == PORT_LINK || r == PORT_SVM || (r == PORT_CLIENT && secondary_client));
        if (!used)
            continue;
        make_port(&b->port[r], what[r], r == PORT_CLIENT ? client_tx_size : 1024);
        cfg.port_name[r] = b->port[r].id;
    }
    char err[256];
    b->p = pipeline_create(&cfg, err, sizeof(err));
    if (!b->p)
        fail_msg("%s", err);
}

static void bench_up_with(struct bench *b, enum colo_role role, unsigned client_tx_size,
                          uint32_t heartbeat_ms)
{
    bench_up_ports(b, role, client_tx_size, heartbeat_ms, false);
}

static void bench_up(struct bench *b, enum colo_role role, unsigned client_tx_size)
{
    bench_up_with(b, role, client_tx_size, 0);
}

static void free_all(struct rte_ring *r)
{
    void *m;
    while (rte_ring_dequeue(r, &m) == 0)
        rte_pktmbuf_free(m);
}

static void bench_down(struct bench *b)
{
    pipeline_destroy(b->p);
    for (int r = 0; r < PORT_ROLE_COUNT; r++) {
        if (b->port[r].rx) {
            free_all(b->port[r].rx);
            free_all(b->port[r].tx);
            rte_ring_free(b->port[r].rx);
            rte_ring_free(b->port[r].tx);
        }
    }
    rte_mempool_free(b->pool);
}

/* A frame from the guest (10.0.0.2:80) or the client (10.0.0.1:40000). */
static struct rte_mbuf *frame(struct bench *b, bool from_client, uint32_t seq, uint32_t ack,
                              uint8_t flags, const char *data)
{
    struct frame_spec s = frame_guest_tcp(seq, ack, flags, data, data ? (uint32_t)strlen(data) : 0);
    if (from_client)
        frame_spec_reverse(&s);
    struct rte_mbuf *m = rte_pktmbuf_alloc(b->pool);
    assert_non_null(m);
    size_t len = frame_build(&s, rte_pktmbuf_mtod(m, uint8_t *), 2048);
    frame_fill_checksums(rte_pktmbuf_mtod(m, uint8_t *), len);
    m->data_len = m->pkt_len = (uint32_t)len;
    return m;
}

static void send_on(struct bench *b, enum port_role r, struct rte_mbuf *m)
{
    assert_int_equal(rte_ring_enqueue(b->port[r].rx, m), 0);
}

static unsigned sent_on(struct bench *b, enum port_role r)
{
    return rte_ring_count(b->port[r].tx);
}

static struct rte_mbuf *take(struct bench *b, enum port_role r)
{
    void *m = NULL;
    assert_int_equal(rte_ring_dequeue(b->port[r].tx, &m), 0);
    return m;
}

static uint32_t seq_of(struct rte_mbuf *m)
{
    const uint8_t *t = rte_pktmbuf_mtod(m, const uint8_t *) + 34;
    return (uint32_t)t[4] << 24 | (uint32_t)t[5] << 16 | (uint32_t)t[6] << 8 | t[7];
}

static uint32_t ack_of(struct rte_mbuf *m)
{
    const uint8_t *t = rte_pktmbuf_mtod(m, const uint8_t *) + 34;
    return (uint32_t)t[8] << 24 | (uint32_t)t[9] << 16 | (uint32_t)t[10] << 8 | t[11];
}

/* Takes the heartbeats out of what a port sent (keeping the rest in order); returns what is left. */
static unsigned data_on(struct bench *b, enum port_role r)
{
    unsigned n = rte_ring_count(b->port[r].tx), kept = 0;
    for (unsigned i = 0; i < n; i++) {
        struct rte_mbuf *m = take(b, r);
        if (heartbeat_is_frame(rte_pktmbuf_mtod(m, uint8_t *), m->data_len)) {
            rte_pktmbuf_free(m);
        } else {
            assert_int_equal(rte_ring_enqueue(b->port[r].tx, m), 0);
            kept++;
        }
    }
    return kept;
}

static void poll_n(struct bench *b, int n)
{
    for (int i = 0; i < n; i++)
        pipeline_poll_once(b->p);
}

static void control(struct bench *b, uint32_t type, void *ptr)
{
    struct ctrl_msg msg = { .type = type, .ptr = ptr };
    assert_int_equal(rte_ring_enqueue_elem(pipeline_ring_to_dataplane(b->p), &msg, sizeof(msg)), 0);
}

static bool event(struct bench *b, uint32_t type, uint32_t *arg)
{
    struct ctrl_msg msg;
    while (rte_ring_dequeue_elem(pipeline_ring_from_dataplane(b->p), &msg, sizeof(msg)) == 0) {
        if (msg.type == type) {
            if (arg)
                *arg = msg.arg;
            return true;
        }
    }
    return false;
}

/* Like event(), but hands back the message's pointer. */
static void *event_ptr(struct bench *b, uint32_t type)
{
    struct ctrl_msg msg;
    while (rte_ring_dequeue_elem(pipeline_ring_from_dataplane(b->p), &msg, sizeof(msg)) == 0)
        if (msg.type == type)
            return msg.ptr;
    return NULL;
}

/* The PVM's segment on its port and the SVM's on the link, the same sequence number; then two polls. */
static void pvm_and_svm_send(struct bench *b, uint32_t seq, const char *pvm, const char *svm)
{
    send_on(b, PORT_PVM, frame(b, false, seq, 101, TCPF_ACK | TCPF_PSH, pvm));
    send_on(b, PORT_LINK, frame(b, false, seq, 101, TCPF_ACK | TCPF_PSH, svm));
    poll_n(b, 2);
}

static void test_client_frames_reach_pvm_and_link_without_copy(void **state)
{
    (void)state;
    struct bench b;
    bench_up(&b, ROLE_PRIMARY, 1024);
    struct rte_mbuf *syn = frame(&b, true, 100, 0, TCPF_SYN, NULL);
    send_on(&b, PORT_CLIENT, syn);
    poll_n(&b, 1);
    assert_int_equal(sent_on(&b, PORT_PVM), 1);
    assert_int_equal(sent_on(&b, PORT_LINK), 1);
    struct rte_mbuf *to_pvm = take(&b, PORT_PVM), *to_link = take(&b, PORT_LINK);
    assert_ptr_equal(to_pvm, syn);
    assert_true(RTE_MBUF_CLONED(to_link)); /* an indirect mbuf: the same bytes, not a copy */
    assert_ptr_equal(rte_pktmbuf_mtod(to_link, void *), rte_pktmbuf_mtod(syn, void *));
    rte_pktmbuf_free(to_link);
    rte_pktmbuf_free(to_pvm);
    bench_down(&b);
}

static void test_pvm_output_released_after_svm_match(void **state)
{
    (void)state;
    struct bench b;
    bench_up(&b, ROLE_PRIMARY, 1024);
    send_on(&b, PORT_PVM, frame(&b, false, 5000, 101, TCPF_SYN | TCPF_ACK, NULL));
    poll_n(&b, 2);
    assert_int_equal(sent_on(&b, PORT_CLIENT), 0); /* the SYN-ACK waits for the SVM's */
    send_on(&b, PORT_LINK, frame(&b, false, 9000, 101, TCPF_SYN | TCPF_ACK, NULL));
    poll_n(&b, 1);
    assert_int_equal(sent_on(&b, PORT_CLIENT), 1);
    assert_int_equal(seq_of(take(&b, PORT_CLIENT)), 5000);
    send_on(&b, PORT_PVM, frame(&b, false, 5001, 101, TCPF_ACK | TCPF_PSH, "reply"));
    send_on(&b, PORT_LINK, frame(&b, false, 5001, 101, TCPF_ACK | TCPF_PSH, "reply"));
    poll_n(&b, 1);
    assert_int_equal(sent_on(&b, PORT_CLIENT), 1);
    struct pipeline_stats st;
    pipeline_stats_snapshot(b.p, &st);
    assert_int_equal(st.compare.released[RELEASE_MATCHED], 2);
    bench_down(&b);
}

static void test_divergence_requests_checkpoint_over_the_ring(void **state)
{
    (void)state;
    struct bench b;
    bench_up(&b, ROLE_PRIMARY, 1024);
    pvm_and_svm_send(&b, 5001, "AAAA", "AAAB");
    uint32_t reason = 99;
    assert_true(event(&b, MSG_CHECKPOINT_REQUEST, &reason));
    assert_int_equal(reason, CKPT_DIVERGENCE);
    assert_int_equal(sent_on(&b, PORT_CLIENT), 0);
    control(&b, MSG_CHECKPOINT_DONE, NULL);
    poll_n(&b, 1);
    assert_int_equal(sent_on(&b, PORT_CLIENT), 1);
    bench_down(&b);
}

static void test_divergence_is_lent_to_control_as_a_capture(void **state)
{
    (void)state;
    struct bench b;
    bench_up(&b, ROLE_PRIMARY, 1024);
    pvm_and_svm_send(&b, 5001, "AAAA", "AAAB");
    const struct divergence_capture *cap = event_ptr(&b, MSG_DIVERGENCE);
    assert_non_null(cap);
    assert_int_equal(cap->number, 1);
    assert_int_equal(cap->kind, DIV_PAYLOAD);
    assert_int_equal(cap->stream_offset, 3); /* the fourth byte differs */
    assert_int_equal(cap->n_frames, 2);      /* the PVM's held frame and the SVM's */
    assert_string_equal(cap->flow, "tcp 10.0.0.2:80 > 10.0.0.1:40000");
    /* While the capture is lent, a second divergence is only counted. */
    control(&b, MSG_CHECKPOINT_DONE, NULL);
    pvm_and_svm_send(&b, 5005, "CCCC", "CCCD");
    assert_null(event_ptr(&b, MSG_DIVERGENCE));
    struct pipeline_stats st;
    pipeline_stats_snapshot(b.p, &st);
    assert_int_equal(st.divergence_reports_suppressed, 1);
    control(&b, MSG_DIVERGENCE_DONE, NULL);
    bench_down(&b);
}

static void test_reload_over_the_ring_applies_bypass_once_nothing_is_held(void **state)
{
    (void)state;
    struct bench b;
    bench_up(&b, ROLE_PRIMARY, 1024);
    send_on(&b, PORT_PVM, frame(&b, false, 5001, 101, TCPF_ACK | TCPF_PSH, "held"));
    poll_n(&b, 1);
    static struct pipeline_reload r;
    char err[128];
    memset(&r, 0, sizeof(r));
    assert_int_equal(bypass_rules_add(&r.bypass, "proto=tcp,guest_port=80", err, sizeof(err)), 0);
    r.divergence_reports_per_minute = 5;
    control(&b, MSG_RELOAD, &r);
    poll_n(&b, 1);
    assert_ptr_equal(event_ptr(&b, MSG_RELOAD_DONE), &r);
    struct pipeline_stats st;
    pipeline_stats_snapshot(b.p, &st);
    assert_int_equal(st.bypass.count, 0); /* a packet of that flow is held: the rules wait */
    send_on(&b, PORT_PVM, frame(&b, false, 5005, 101, TCPF_ACK | TCPF_PSH, "more"));
    poll_n(&b, 1);
    assert_int_equal(sent_on(&b, PORT_CLIENT), 0); /* not overtaking what is held */
    control(&b, MSG_CHECKPOINT_DONE, NULL);
    poll_n(&b, 1);
    assert_int_equal(sent_on(&b, PORT_CLIENT), 2);
    pipeline_stats_snapshot(b.p, &st);
    assert_int_equal(st.bypass.count, 1);
    send_on(&b, PORT_PVM, frame(&b, false, 5009, 101, TCPF_ACK | TCPF_PSH, "free"));
    poll_n(&b, 1);
    assert_int_equal(sent_on(&b, PORT_CLIENT), 3); /* bypassed: out at once, no SVM needed */
    pipeline_stats_snapshot(b.p, &st);
    assert_int_equal(st.compare.released[RELEASE_BYPASSED], 1);
    assert_int_equal(st.compare.bypass_hits[0], 1);
    bench_down(&b);
}

static void test_pool_running_low_requests_a_checkpoint(void **state)
{
    (void)state;
    struct bench b;
    bench_nb_mbufs = 1000; /* asks at 750 held frames */
    bench_up(&b, ROLE_PRIMARY, 1024);
    bench_nb_mbufs = 2048;
    uint32_t reason = 99;
    for (uint32_t i = 0; i < 800; i++) { /* PVM output the SVM never matches: all held */
        send_on(&b, PORT_PVM, frame(&b, false, 5001 + i, 101, TCPF_ACK | TCPF_PSH, "x"));
        poll_n(&b, 1);
    }
    assert_true(event(&b, MSG_CHECKPOINT_REQUEST, &reason));
    assert_int_equal(reason, CKPT_POOL_LOW);
    assert_int_equal(sent_on(&b, PORT_CLIENT), 0);
    control(&b, MSG_CHECKPOINT_DONE, NULL);
    poll_n(&b, 2);
    assert_int_equal(sent_on(&b, PORT_CLIENT), 800); /* nothing lost */
    bench_down(&b);
}

static void test_partial_transmits_are_retried_in_order(void **state)
{
    (void)state;
    struct bench b;
    bench_up(&b, ROLE_PRIMARY, 4); /* the client port takes at most 3 frames at a time */
    for (uint32_t i = 0; i < 10; i++)
        send_on(&b, PORT_PVM, frame(&b, false, 5001, 101 + i, TCPF_ACK, NULL)); /* pure ACKs */
    poll_n(&b, 1);
    assert_int_equal(sent_on(&b, PORT_CLIENT), 3);
    struct pipeline_stats st;
    pipeline_stats_snapshot(b.p, &st);
    assert_int_equal(st.ports[PORT_CLIENT].tx_pending, 7);
    uint32_t next = 101;
    while (next < 111) {
        while (sent_on(&b, PORT_CLIENT)) {
            struct rte_mbuf *m = take(&b, PORT_CLIENT);
            assert_int_equal(ack_of(m), next++);
            rte_pktmbuf_free(m);
        }
        poll_n(&b, 1);
    }
    pipeline_stats_snapshot(b.p, &st);
    assert_int_equal(st.ports[PORT_CLIENT].tx, 10);
    assert_int_equal(st.ports[PORT_CLIENT].tx_pending, 0);
    bench_down(&b);
}

static void test_secondary_rewrites_both_directions(void **state)
{
    (void)state;
    struct bench b;
    bench_up(&b, ROLE_SECONDARY, 1024);
    send_on(&b, PORT_LINK, frame(&b, true, 100, 0, TCPF_SYN, NULL));
    poll_n(&b, 1);
    rte_pktmbuf_free(take(&b, PORT_SVM));
    send_on(&b, PORT_SVM, frame(&b, false, 9000, 101, TCPF_SYN | TCPF_ACK, NULL));
    poll_n(&b, 1);
    rte_pktmbuf_free(take(&b, PORT_LINK));
    send_on(&b, PORT_LINK, frame(&b, true, 101, 5001, TCPF_ACK, NULL)); /* acks the PVM's ISN 5000 */
    poll_n(&b, 1);
    struct rte_mbuf *m = take(&b, PORT_SVM);
    assert_int_equal(ack_of(m), 9001);
    assert_true(frame_tcp_checksum_ok(rte_pktmbuf_mtod(m, uint8_t *), m->data_len));
    rte_pktmbuf_free(m);
    send_on(&b, PORT_SVM, frame(&b, false, 9001, 101, TCPF_ACK | TCPF_PSH, "data"));
    poll_n(&b, 1);
    m = take(&b, PORT_LINK);
    assert_int_equal(seq_of(m), 5001);
    assert_true(frame_tcp_checksum_ok(rte_pktmbuf_mtod(m, uint8_t *), m->data_len));
    rte_pktmbuf_free(m);
    bench_down(&b);
}

static void test_stats_snapshot_over_the_rings(void **state)
{
    (void)state;
    struct bench b;
    bench_up(&b, ROLE_PRIMARY, 1024);
    send_on(&b, PORT_CLIENT, frame(&b, true, 100, 0, TCPF_SYN, NULL));
    poll_n(&b, 1);
    struct pipeline_stats *st = calloc(1, sizeof(*st));
    control(&b, MSG_STATS_REQUEST, st);
    poll_n(&b, 1);
    assert_true(event(&b, MSG_STATS_READY, NULL));
    assert_int_equal(st->ports[PORT_CLIENT].rx, 1);
    assert_int_equal(st->mirror.mirrored, 1);
    free(st);
    bench_down(&b);
}

static void test_shutdown_releases_held_packets(void **state)
{
    (void)state;
    struct bench b;
    bench_up(&b, ROLE_PRIMARY, 1024);
    send_on(&b, PORT_PVM, frame(&b, false, 5001, 101, TCPF_ACK | TCPF_PSH, "held"));
    poll_n(&b, 1);
    assert_int_equal(sent_on(&b, PORT_CLIENT), 0);
    control(&b, MSG_SHUTDOWN, NULL);
    pipeline_run(b.p); /* returns once drained */
    assert_int_equal(sent_on(&b, PORT_CLIENT), 1);
    assert_true(event(&b, MSG_STOPPED, NULL));
    bench_down(&b);
}

static void step_for(struct bench *b, double seconds)
{
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do {
        pipeline_poll_once(b->p);
        usleep(100);
        clock_gettime(CLOCK_MONOTONIC, &t);
    } while ((double)(t.tv_sec - t0.tv_sec) + (double)(t.tv_nsec - t0.tv_nsec) / 1e9 < seconds);
}

static void test_heartbeat_detects_a_dead_secondary_and_the_primary_goes_on_alone(void **state)
{
    (void)state;
    struct bench b;
    bench_up_with(&b, ROLE_PRIMARY, 1024, 5);
    step_for(&b, 0.03);
    unsigned beats = sent_on(&b, PORT_LINK);
    assert_true(beats >= 3);
    struct rte_mbuf *m = take(&b, PORT_LINK);
    assert_true(heartbeat_is_frame(rte_pktmbuf_mtod(m, uint8_t *), m->data_len));
    rte_pktmbuf_free(m);
    /* The secondary's heartbeat arrives on the link: consumed, never compared. */
    struct heartbeat peer;
    heartbeat_init(&peer, 1, 5, 4);
    struct rte_mbuf *hb = rte_pktmbuf_alloc(b.pool);
    heartbeat_due(&peer, rte_pktmbuf_mtod(hb, uint8_t *), 1);
    hb->data_len = hb->pkt_len = HEARTBEAT_FRAME_LEN;
    send_on(&b, PORT_LINK, hb);
    step_for(&b, 0.002);
    struct pipeline_stats st;
    pipeline_stats_snapshot(b.p, &st);
    assert_int_equal(st.heartbeat.received, 1);
    assert_int_equal(st.heartbeat.state, PEER_UP);
    assert_int_equal(st.compare.svm_in, 0);
    uint32_t arg = 99;
    assert_true(event(&b, MSG_PEER_STATE, &arg));
    assert_int_equal(arg, PEER_UP);
    /* A PVM frame the SVM will never match is held... */
    send_on(&b, PORT_PVM, frame(&b, false, 5001, 101, TCPF_ACK | TCPF_PSH, "held"));
    step_for(&b, 0.002);
    assert_int_equal(data_on(&b, PORT_CLIENT), 0);
    /* ...then silence: the secondary is down after 4 intervals (20 ms), and the primary goes on alone. */
    step_for(&b, 0.05);
    pipeline_stats_snapshot(b.p, &st);
    assert_int_equal(st.heartbeat.state, PEER_DOWN);
    assert_true(st.alone);
    assert_true(event(&b, MSG_PEER_STATE, &arg));
    assert_int_equal(arg, PEER_DOWN);
    assert_true(event(&b, MSG_PRIMARY_ALONE, NULL));
    assert_int_equal(data_on(&b, PORT_CLIENT), 1); /* what was held is released */
    rte_pktmbuf_free(take(&b, PORT_CLIENT));
    send_on(&b, PORT_PVM, frame(&b, false, 5005, 101, TCPF_ACK | TCPF_PSH, "straight"));
    while (sent_on(&b, PORT_LINK))
        rte_pktmbuf_free(take(&b, PORT_LINK));
    send_on(&b, PORT_CLIENT, frame(&b, true, 101, 5005, TCPF_ACK, NULL));
    pipeline_poll_once(b.p);
    assert_int_equal(data_on(&b, PORT_CLIENT), 1); /* passed straight through, uncompared */
    assert_int_equal(sent_on(&b, PORT_PVM), 1);
    unsigned on_link = 0;
    while (sent_on(&b, PORT_LINK)) {
        struct rte_mbuf *x = take(&b, PORT_LINK);
        on_link += !heartbeat_is_frame(rte_pktmbuf_mtod(x, uint8_t *), x->data_len);
        rte_pktmbuf_free(x);
    }
    assert_int_equal(on_link, 0); /* nothing mirrored any more */
    bench_down(&b);
}


/* A heartbeat from the primary colo-proxy (role 0), as if it came on `r`. */
static void primary_beat(struct bench *b, struct heartbeat *peer, enum port_role r, uint64_t t)
{
    struct rte_mbuf *m = rte_pktmbuf_alloc(b->pool);
    peer->next_send_ns = 0;
    assert_true(heartbeat_due(peer, rte_pktmbuf_mtod(m, uint8_t *), t));
    m->data_len = m->pkt_len = HEARTBEAT_FRAME_LEN;
    send_on(b, r, m);
}

/* A client-opened connection through the secondary: PVM ISN 5000, SVM ISN 9000. */
static void learn_a_connection(struct bench *b)
{
    send_on(b, PORT_LINK, frame(b, true, 100, 0, TCPF_SYN, NULL));
    poll_n(b, 1);
    rte_pktmbuf_free(take(b, PORT_SVM));
    send_on(b, PORT_SVM, frame(b, false, 9000, 101, TCPF_SYN | TCPF_ACK, NULL));
    poll_n(b, 1);
    assert_int_equal(data_on(b, PORT_LINK), 1); /* the SYN-ACK (heartbeats aside) */
    rte_pktmbuf_free(take(b, PORT_LINK));
    send_on(b, PORT_LINK, frame(b, true, 101, 5001, TCPF_ACK, NULL));
    poll_n(b, 1);
    rte_pktmbuf_free(take(b, PORT_SVM));
}

static bool sent_frame_of_type(struct bench *b, enum port_role r, uint16_t ethertype, unsigned *count)
{
    *count = 0;
    unsigned n = sent_on(b, r);
    for (unsigned i = 0; i < n; i++) {
        struct rte_mbuf *m = take(b, r);
        const uint8_t *f = rte_pktmbuf_mtod(m, const uint8_t *);
        *count += (uint16_t)(f[12] << 8 | f[13]) == ethertype;
        rte_pktmbuf_free(m);
    }
    return *count > 0;
}

static void test_primary_beats_on_the_client_side_too(void **state)
{
    (void)state;
    struct bench b;
    bench_up_with(&b, ROLE_PRIMARY, 1024, 5);
    step_for(&b, 0.03);
    unsigned beats;
    assert_true(sent_frame_of_type(&b, PORT_CLIENT, HEARTBEAT_ETHERTYPE, &beats));
    assert_true(beats >= 3);
    bench_down(&b);
}

static void test_secondary_takes_over_when_the_primary_is_silent_everywhere(void **state)
{
    (void)state;
    struct bench b;
    bench_up_ports(&b, ROLE_SECONDARY, 1024, 5, true);
    struct heartbeat peer;
    heartbeat_init(&peer, 0, 5, 4);
    learn_a_connection(&b);
    send_on(&b, PORT_SVM, frame(&b, false, 9001, 101, TCPF_ACK | TCPF_PSH, "before"));
    for (int i = 0; i < 5; i++) {
        primary_beat(&b, &peer, PORT_LINK, (uint64_t)(i + 1) * 1000000);
        primary_beat(&b, &peer, PORT_CLIENT, (uint64_t)(i + 1) * 1000000);
        step_for(&b, 0.004);
    }
    struct pipeline_stats st;
    pipeline_stats_snapshot(b.p, &st);
    assert_false(st.taken_over);
    assert_int_equal(st.client_side.state, PEER_UP);
    assert_int_equal(data_on(&b, PORT_CLIENT), 0); /* the client side is the primary's */
    assert_int_equal(data_on(&b, PORT_LINK), 1);    /* "before", toward the primary */
    rte_pktmbuf_free(take(&b, PORT_LINK));
    /* The primary dies: silent on the link and on the client side. */
    step_for(&b, 0.05);
    pipeline_stats_snapshot(b.p, &st);
    assert_true(st.taken_over);
    assert_int_equal(st.failover.reason, FAILOVER_HEARTBEAT);
    uint32_t arg = 99;
    assert_true(event(&b, MSG_TAKEOVER, &arg)); /* skips the peer-state events before it */
    assert_int_equal(arg, FAILOVER_HEARTBEAT);
    /* The VM is announced on the client side: RARP for its MAC, gratuitous ARP for 10.0.0.2. */
    unsigned rarp = 0, garp = 0;
    step_for(&b, 0.002);
    unsigned n = sent_on(&b, PORT_CLIENT);
    for (unsigned i = 0; i < n; i++) {
        struct rte_mbuf *m = take(&b, PORT_CLIENT);
        const uint8_t *f = rte_pktmbuf_mtod(m, const uint8_t *);
        uint16_t type = (uint16_t)(f[12] << 8 | f[13]);
        rarp += type == 0x8035;
        garp += type == 0x0806 && f[28] == 10 && f[31] == 2 && f[38] == 10 && f[41] == 2;
        rte_pktmbuf_free(m);
    }
    assert_true(rarp >= 1);
    assert_true(garp >= 1);
    /* The client's segment now comes to the secondary's client port: ack rewritten into the SVM's space. */
    send_on(&b, PORT_CLIENT, frame(&b, true, 101, 5007, TCPF_ACK, NULL));
    poll_n(&b, 1);
    struct rte_mbuf *m = take(&b, PORT_SVM);
    assert_int_equal(ack_of(m), 9007);
    rte_pktmbuf_free(m);
    /* The SVM's answer goes to the clients, in the PVM's sequence space. */
    send_on(&b, PORT_SVM, frame(&b, false, 9007, 101, TCPF_ACK | TCPF_PSH, "after"));
    poll_n(&b, 1);
    assert_int_equal(data_on(&b, PORT_CLIENT), 1);
    m = take(&b, PORT_CLIENT);
    assert_int_equal(seq_of(m), 5007);
    assert_true(frame_tcp_checksum_ok(rte_pktmbuf_mtod(m, uint8_t *), m->data_len));
    rte_pktmbuf_free(m);
    assert_int_equal(data_on(&b, PORT_LINK), 0);
    bench_down(&b);
}

static void test_secondary_holds_back_while_the_primary_speaks_on_the_client_side(void **state)
{
    (void)state;
    struct bench b;
    bench_up_ports(&b, ROLE_SECONDARY, 1024, 5, true);
    struct heartbeat peer;
    heartbeat_init(&peer, 0, 5, 4);
    primary_beat(&b, &peer, PORT_LINK, 1000000);
    step_for(&b, 0.002);
    /* The link is cut: the primary's heartbeats still come, but only on the client side. */
    for (int i = 0; i < 20; i++) {
        primary_beat(&b, &peer, PORT_CLIENT, (uint64_t)(i + 2) * 1000000);
        step_for(&b, 0.004);
    }
    struct pipeline_stats st;
    pipeline_stats_snapshot(b.p, &st);
    assert_int_equal(st.heartbeat.state, PEER_DOWN);
    assert_false(st.taken_over);
    assert_true(st.takeover_guarded > 0);
    assert_true(event(&b, MSG_TAKEOVER_GUARDED, NULL));
    assert_false(event(&b, MSG_TAKEOVER, NULL));
    assert_int_equal(data_on(&b, PORT_CLIENT), 0); /* not a frame to the clients */
    /* When the client side falls silent too, the primary is really gone: take over. */
    step_for(&b, 0.05);
    pipeline_stats_snapshot(b.p, &st);
    assert_true(st.taken_over);
    bench_down(&b);
}

/* ---- the VM's port restarts at every checkpoint (vhost-user) ---- */

/* Takes the port's link down or up as a vhost-user NIC's restart does, and waits until the pipeline has seen it. */
static void set_link(struct bench *b, enum port_role r, bool up)
{
    uint16_t id = (uint16_t)atoi(b->port[r].id);
    assert_int_equal(up ? rte_eth_dev_set_link_up(id) : rte_eth_dev_set_link_down(id), 0);
    struct pipeline_stats st;
    for (int i = 0; i < 1000; i++) {
        pipeline_poll_once(b->p);
        pipeline_stats_snapshot(b->p, &st);
        if (st.ports[r].link_up == up)
            return;
        usleep(100);
    }
    fail_msg("the pipeline never saw the %s port %s", port_role_name(r), up ? "up" : "down");
}

static void test_frames_for_a_down_pvm_port_wait_in_order_and_leave_when_it_is_up(void **state)
{
    (void)state;
    struct bench b;
    bench_up(&b, ROLE_PRIMARY, 1024);
    set_link(&b, PORT_PVM, false);
    for (uint32_t i = 0; i < 10; i++)
        send_on(&b, PORT_CLIENT, frame(&b, true, 101, 5001 + i, TCPF_ACK, NULL));
    poll_n(&b, 3);
    assert_int_equal(sent_on(&b, PORT_PVM), 0);
    assert_int_equal(sent_on(&b, PORT_LINK), 10); /* the mirror goes on */
    struct pipeline_stats st;
    pipeline_stats_snapshot(b.p, &st);
    assert_int_equal(st.ports[PORT_PVM].tx_pending, 10);
    assert_int_equal(st.ports[PORT_PVM].held_while_down, 10);
    assert_int_equal(st.ports[PORT_PVM].held_while_down_max, 10);
    assert_int_equal(st.signals.port_began, 1);
    set_link(&b, PORT_PVM, true);
    poll_n(&b, 1);
    assert_int_equal(sent_on(&b, PORT_PVM), 10);
    for (uint32_t i = 0; i < 10; i++) {
        struct rte_mbuf *m = take(&b, PORT_PVM);
        assert_int_equal(ack_of(m), 5001 + i);
        rte_pktmbuf_free(m);
    }
    pipeline_stats_snapshot(b.p, &st);
    assert_int_equal(st.ports[PORT_PVM].tx_pending, 0);
    assert_int_equal(st.ports[PORT_PVM].watch.downs, 1);
    assert_true(st.ports[PORT_PVM].watch.down_ns_longest > 0);
    assert_int_equal(st.signals.port_ended, 1);
    assert_false(st.vm_dead);
    bench_down(&b);
}

static void test_a_down_pvm_ports_queue_is_bounded_and_holds_the_clients_back(void **state)
{
    (void)state;
    struct bench b;
    bench_nb_mbufs = 1024; /* a down VM port's queue takes 256 frames */
    bench_up(&b, ROLE_PRIMARY, 1024);
    bench_nb_mbufs = 2048;
    set_link(&b, PORT_PVM, false);
    for (uint32_t i = 0; i < 300; i++)
        send_on(&b, PORT_CLIENT, frame(&b, true, 101, 5001 + i, TCPF_ACK, NULL));
    poll_n(&b, 20);
    struct pipeline_stats st;
    pipeline_stats_snapshot(b.p, &st);
    assert_int_equal(st.ports[PORT_PVM].tx_pending, 256);
    assert_int_equal(st.ports[PORT_CLIENT].rx, 256); /* the rest waits in the client port */
    assert_true(st.ports[PORT_PVM].held_back > 0);
    set_link(&b, PORT_PVM, true);
    uint32_t next = 5001;
    for (int i = 0; i < 50 && next < 5301; i++) {
        poll_n(&b, 1);
        while (sent_on(&b, PORT_PVM)) {
            struct rte_mbuf *m = take(&b, PORT_PVM);
            assert_int_equal(ack_of(m), next++);
            rte_pktmbuf_free(m);
        }
    }
    assert_int_equal(next, 5301); /* every frame, in order, none lost */
    bench_down(&b);
}

static void test_compare_state_survives_a_pvm_port_restart(void **state)
{
    (void)state;
    struct bench b;
    bench_up(&b, ROLE_PRIMARY, 1024);
    send_on(&b, PORT_PVM, frame(&b, false, 5000, 101, TCPF_SYN | TCPF_ACK, NULL));
    send_on(&b, PORT_LINK, frame(&b, false, 9000, 101, TCPF_SYN | TCPF_ACK, NULL));
    poll_n(&b, 2);
    pvm_and_svm_send(&b, 5001, "one", "one");
    assert_int_equal(sent_on(&b, PORT_CLIENT), 2);
    set_link(&b, PORT_PVM, false);
    set_link(&b, PORT_PVM, true);
    pvm_and_svm_send(&b, 5004, "two", "two");
    assert_int_equal(sent_on(&b, PORT_CLIENT), 3);
    struct pipeline_stats st;
    pipeline_stats_snapshot(b.p, &st);
    assert_int_equal(st.compare.released[RELEASE_MATCHED], 3);
    assert_int_equal(st.conns.created, 1);
    assert_false(event(&b, MSG_CHECKPOINT_REQUEST, NULL));
    bench_down(&b);
}

/* Takes what the link carried, in order: 'M' for a marker (its epoch in *epoch), 'D' for data. */
static unsigned link_shapes(struct bench *b, char *shape, unsigned max, uint32_t *epoch)
{
    unsigned n = 0;
    while (sent_on(b, PORT_LINK) && n < max) {
        struct rte_mbuf *m = take(b, PORT_LINK);
        const uint8_t *f = rte_pktmbuf_mtod(m, const uint8_t *);
        struct epoch_marker mk;
        if (epoch_marker_read(f, m->data_len, &mk)) {
            shape[n++] = 'M';
            *epoch = mk.epoch;
        } else if (!heartbeat_is_frame(f, m->data_len)) {
            shape[n++] = 'D';
        }
        rte_pktmbuf_free(m);
    }
    shape[n] = '\0';
    return n;
}

static void test_secondary_marks_the_svm_resume_ahead_of_its_new_output(void **state)
{
    (void)state;
    struct bench b;
    bench_up(&b, ROLE_SECONDARY, 1024);
    send_on(&b, PORT_SVM, frame(&b, false, 9001, 101, TCPF_ACK | TCPF_PSH, "before"));
    poll_n(&b, 1);
    set_link(&b, PORT_SVM, false);
    send_on(&b, PORT_SVM, frame(&b, false, 9007, 101, TCPF_ACK | TCPF_PSH, "after"));
    send_on(&b, PORT_LINK, frame(&b, true, 101, 5001, TCPF_ACK, NULL)); /* for the SVM, which is down */
    poll_n(&b, 3);
    assert_int_equal(sent_on(&b, PORT_SVM), 0);
    set_link(&b, PORT_SVM, true);
    poll_n(&b, 2);
    char shape[8];
    uint32_t epoch = 0;
    link_shapes(&b, shape, sizeof(shape) - 1, &epoch);
    assert_string_equal(shape, "DMD"); /* before, the marker, after */
    assert_int_equal(epoch, 1);
    assert_int_equal(sent_on(&b, PORT_SVM), 1); /* what waited for the SVM */
    struct pipeline_stats st;
    pipeline_stats_snapshot(b.p, &st);
    assert_int_equal(st.signals.epoch, 1);
    assert_int_equal(st.signals.markers, 1);
    assert_int_equal(st.ports[PORT_SVM].held_while_down, 1);
    bench_down(&b);
}

/* The secondary's marker, as it would come on the link. */
static void marker_on_link(struct bench *b, uint32_t epoch)
{
    struct rte_mbuf *m = rte_pktmbuf_alloc(b->pool);
    struct epoch_marker mk = { epoch, 40000 };
    epoch_marker_write(rte_pktmbuf_mtod(m, uint8_t *), &mk);
    m->data_len = m->pkt_len = EPOCH_MARKER_FRAME_LEN;
    send_on(b, PORT_LINK, m);
}

static void test_primary_compares_the_svm_output_after_its_resume_instead_of_discarding_it(void **state)
{
    (void)state;
    struct bench b;
    bench_up(&b, ROLE_PRIMARY, 1024);
    marker_on_link(&b, 1); /* the SVM started */
    pvm_and_svm_send(&b, 5001, "AAAA", "AAAB");
    assert_true(event(&b, MSG_CHECKPOINT_REQUEST, NULL));
    /* The checkpoint: the PVM's port goes down, the SVM resumes first (marker, then its output). */
    set_link(&b, PORT_PVM, false);
    marker_on_link(&b, 2);
    send_on(&b, PORT_LINK, frame(&b, false, 5005, 101, TCPF_ACK | TCPF_PSH, "next"));
    poll_n(&b, 2);
    struct ctrl_msg done = { .type = MSG_CHECKPOINT_DONE, .arg = 45000 }; /* QMP: STOP→RESUME 45 ms */
    assert_int_equal(rte_ring_enqueue_elem(pipeline_ring_to_dataplane(b.p), &done, sizeof(done)), 0);
    poll_n(&b, 1);
    assert_int_equal(sent_on(&b, PORT_CLIENT), 1); /* "AAAA", released by the checkpoint */
    set_link(&b, PORT_PVM, true);
    send_on(&b, PORT_PVM, frame(&b, false, 5005, 101, TCPF_ACK | TCPF_PSH, "next"));
    poll_n(&b, 1);
    assert_int_equal(sent_on(&b, PORT_CLIENT), 2); /* matched at once with the SVM's kept copy */
    struct pipeline_stats st;
    pipeline_stats_snapshot(b.p, &st);
    assert_int_equal(st.compare.released[RELEASE_MATCHED], 1);
    assert_int_equal(st.compare.svm_kept_new_epoch, 1);
    assert_int_equal(st.signals.last_stale_through, 1);
    assert_int_equal(st.signals.last_qmp_ns, 45000000);
    assert_true(st.signals.paired);
    assert_int_equal(st.signals.qmp_done, 1);
    /* Next checkpoint, begun by QMP's STOP and done before the SVM's marker: its frames still on the way are stale. */
    control(&b, MSG_CHECKPOINT_BEGAN, NULL);
    control(&b, MSG_CHECKPOINT_DONE, NULL);
    poll_n(&b, 1);
    send_on(&b, PORT_LINK, frame(&b, false, 5009, 101, TCPF_ACK | TCPF_PSH, "old!"));
    marker_on_link(&b, 3);
    send_on(&b, PORT_LINK, frame(&b, false, 5009, 101, TCPF_ACK | TCPF_PSH, "more"));
    poll_n(&b, 1);
    send_on(&b, PORT_PVM, frame(&b, false, 5009, 101, TCPF_ACK | TCPF_PSH, "more"));
    poll_n(&b, 1);
    assert_int_equal(sent_on(&b, PORT_CLIENT), 3);
    pipeline_stats_snapshot(b.p, &st);
    assert_int_equal(st.compare.svm_stale_epoch, 1);
    assert_int_equal(st.compare.released[RELEASE_MATCHED], 2);
    assert_int_equal(st.signals.last_stale_through, 2);
    assert_int_equal(st.signals.qmp_began, 1);
    assert_int_equal(st.compare.divergences[DIV_PAYLOAD], 1);
    bench_down(&b);
}

/* QMP's RESUME late (after the PVM's port is up): the PVM's new output waits for it, then is compared. */
static void test_pvm_output_after_its_resume_waits_for_the_checkpoints_end(void **state)
{
    (void)state;
    struct bench b;
    bench_up(&b, ROLE_PRIMARY, 1024);
    marker_on_link(&b, 1);
    struct ctrl_msg done = { .type = MSG_CHECKPOINT_DONE, .arg = 45000 };
    assert_int_equal(rte_ring_enqueue_elem(pipeline_ring_to_dataplane(b.p), &done, sizeof(done)), 0);
    poll_n(&b, 1); /* QMP has ended a checkpoint before */
    set_link(&b, PORT_PVM, false);
    marker_on_link(&b, 2);
    send_on(&b, PORT_LINK, frame(&b, false, 5001, 101, TCPF_ACK | TCPF_PSH, "new"));
    set_link(&b, PORT_PVM, true);
    send_on(&b, PORT_PVM, frame(&b, false, 5001, 101, TCPF_ACK | TCPF_PSH, "new"));
    poll_n(&b, 3);
    struct pipeline_stats st;
    pipeline_stats_snapshot(b.p, &st);
    assert_int_equal(st.compare.pvm_in, 0); /* waits in the port for the checkpoint's end */
    assert_int_equal(rte_ring_enqueue_elem(pipeline_ring_to_dataplane(b.p), &done, sizeof(done)), 0);
    poll_n(&b, 2);
    assert_int_equal(sent_on(&b, PORT_CLIENT), 1);
    pipeline_stats_snapshot(b.p, &st);
    assert_int_equal(st.compare.released[RELEASE_MATCHED], 1);
    assert_int_equal(st.compare.released[RELEASE_CHECKPOINT], 0);
    bench_down(&b);
}

static void test_a_pvm_port_down_longer_than_vm_down_ms_silences_the_primary(void **state)
{
    (void)state;
    struct bench b;
    bench_vm_down_ms = 30;
    bench_up_with(&b, ROLE_PRIMARY, 1024, 5);
    bench_vm_down_ms = 5000;
    send_on(&b, PORT_PVM, frame(&b, false, 5001, 101, TCPF_ACK | TCPF_PSH, "held"));
    poll_n(&b, 1);
    set_link(&b, PORT_PVM, false);
    step_for(&b, 0.01);
    struct pipeline_stats st;
    pipeline_stats_snapshot(b.p, &st);
    assert_false(st.vm_dead); /* 10 ms down: a checkpoint */
    step_for(&b, 0.05);
    pipeline_stats_snapshot(b.p, &st);
    assert_true(st.vm_dead);
    assert_int_equal(st.vm_dead_unreleased, 1);
    uint32_t arg = 99;
    assert_true(event(&b, MSG_VM_DEAD, &arg));
    assert_int_equal(arg, PORT_PVM);
    while (sent_on(&b, PORT_LINK))
        rte_pktmbuf_free(take(&b, PORT_LINK));
    while (sent_on(&b, PORT_CLIENT))
        rte_pktmbuf_free(take(&b, PORT_CLIENT));
    /* Silent: no heartbeat anywhere, and a PVM that comes back is not served. */
    set_link(&b, PORT_PVM, true);
    send_on(&b, PORT_PVM, frame(&b, false, 5005, 101, TCPF_ACK | TCPF_PSH, "back"));
    send_on(&b, PORT_CLIENT, frame(&b, true, 101, 5001, TCPF_ACK, NULL));
    step_for(&b, 0.05);
    assert_int_equal(sent_on(&b, PORT_LINK), 0);
    assert_int_equal(sent_on(&b, PORT_CLIENT), 0);
    assert_int_equal(sent_on(&b, PORT_PVM), 0);
    pipeline_stats_snapshot(b.p, &st);
    assert_false(st.alone); /* never goes on alone with a dead PVM */
    assert_true(st.vm_dead_dropped >= 2);
    bench_down(&b);
}

static void test_an_svm_port_down_longer_than_vm_down_ms_silences_the_secondary(void **state)
{
    (void)state;
    struct bench b;
    bench_vm_down_ms = 30;
    bench_up_ports(&b, ROLE_SECONDARY, 1024, 5, true);
    bench_vm_down_ms = 5000;
    set_link(&b, PORT_SVM, false);
    step_for(&b, 0.06);
    struct pipeline_stats st;
    pipeline_stats_snapshot(b.p, &st);
    assert_true(st.vm_dead);
    uint32_t arg = 99;
    assert_true(event(&b, MSG_VM_DEAD, &arg));
    assert_int_equal(arg, PORT_SVM);
    while (sent_on(&b, PORT_LINK))
        rte_pktmbuf_free(take(&b, PORT_LINK));
    step_for(&b, 0.05); /* the primary is silent everywhere too: a live secondary would take over now */
    assert_int_equal(sent_on(&b, PORT_LINK), 0);
    assert_int_equal(sent_on(&b, PORT_CLIENT), 0);
    pipeline_stats_snapshot(b.p, &st);
    assert_false(st.taken_over);
    bench_down(&b);
}

int main(void)
{
    char prefix[64];
    snprintf(prefix, sizeof(prefix), "--file-prefix=colo-test-%d", getpid());
    char *eal_args[] = { "test_pipeline", "--no-huge", "-m", "256", "--no-pci", "--no-shconf",
                         "--no-telemetry", "--log-level=error", "-l", "0", prefix };
    if (rte_eal_init((int)(sizeof(eal_args) / sizeof(eal_args[0])), eal_args) < 0) {
        fprintf(stderr, "test_pipeline: EAL did not start\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_client_frames_reach_pvm_and_link_without_copy),
        cmocka_unit_test(test_pvm_output_released_after_svm_match),
        cmocka_unit_test(test_divergence_requests_checkpoint_over_the_ring),
        cmocka_unit_test(test_pool_running_low_requests_a_checkpoint),
        cmocka_unit_test(test_partial_transmits_are_retried_in_order),
        cmocka_unit_test(test_secondary_rewrites_both_directions),
        cmocka_unit_test(test_stats_snapshot_over_the_rings),
        cmocka_unit_test(test_divergence_is_lent_to_control_as_a_capture),
        cmocka_unit_test(test_reload_over_the_ring_applies_bypass_once_nothing_is_held),
        cmocka_unit_test(test_shutdown_releases_held_packets),
        cmocka_unit_test(test_heartbeat_detects_a_dead_secondary_and_the_primary_goes_on_alone),
        cmocka_unit_test(test_primary_beats_on_the_client_side_too),
        cmocka_unit_test(test_secondary_takes_over_when_the_primary_is_silent_everywhere),
        cmocka_unit_test(test_secondary_holds_back_while_the_primary_speaks_on_the_client_side),
        cmocka_unit_test(test_frames_for_a_down_pvm_port_wait_in_order_and_leave_when_it_is_up),
        cmocka_unit_test(test_a_down_pvm_ports_queue_is_bounded_and_holds_the_clients_back),
        cmocka_unit_test(test_compare_state_survives_a_pvm_port_restart),
        cmocka_unit_test(test_secondary_marks_the_svm_resume_ahead_of_its_new_output),
        cmocka_unit_test(test_primary_compares_the_svm_output_after_its_resume_instead_of_discarding_it),
        cmocka_unit_test(test_pvm_output_after_its_resume_waits_for_the_checkpoints_end),
        cmocka_unit_test(test_a_pvm_port_down_longer_than_vm_down_ms_silences_the_primary),
        cmocka_unit_test(test_an_svm_port_down_longer_than_vm_down_ms_silences_the_secondary),
    };
    if (getenv("PIPELINE_TEST"))
        cmocka_set_test_filter(getenv("PIPELINE_TEST")); /* one test alone: a failed one leaks its pool's name */
    int rc = cmocka_run_group_tests_name("pipeline", tests, NULL, NULL);
    rte_eal_cleanup();
    return rc;
}
