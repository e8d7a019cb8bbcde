/*
 * bench_pipeline.c — the data plane's forwarding rate through DPDK ring ports, per role.
 *
 * In-memory ports (rte_eth_from_rings) give the ceiling: no NIC, no kernel.
 * One thread alternates a tiny generator and the pipeline: it writes the next
 * sequence numbers into a window of preloaded frames (their reference counts
 * keep them out of the pool when the proxy frees them), enqueues the window on
 * the RX rings, and steps the pipeline until the window has come out of the
 * TX rings, counting only what the proxy released (primary) or forwarded
 * (secondary). Round-robin over FLOWS connections. It prints Mpps and Gbit/s of
 * payload; it asserts nothing. A "ceiling" row is a bare DPDK forwarding loop
 * (rx burst from one ring port, tx burst to another, nothing parsed) over the
 * same ports with the same generator: what the machine allows, to read the
 * pipeline's figures against. A "hold" row is the latency the primary adds to a
 * matching packet: a PVM frame and its SVM twin are put on the ports, and the
 * time until the frame leaves on the client port is taken with the TSC, one
 * packet at a time (p50, p99, p99.9 in microseconds).
 *
 *   bench_pipeline [EAL options]      (bench/run-pipeline picks hugepages or --no-huge)
 *
 * Two processes side by side (bench/run-memif starts both): a primary and a
 * secondary joined by net_memif as their link port. The secondary's generator
 * feeds SVM output into its SVM ring port; it crosses the memif link; the
 * primary compares it with its own generator's PVM output and releases.
 *   bench_pipeline [EAL options with --vdev=net_memif0,...] -- memif-primary|memif-secondary PAYLOAD
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include "colo/pipeline.h"
#include "frame_builder.h"

#define FLOWS 1024
#define WINDOW 4096
#define PACKETS_PER_CASE (8u << 20)

struct rings {
    struct rte_ring *rx[PORT_ROLE_COUNT], *tx[PORT_ROLE_COUNT];
    char id[PORT_ROLE_COUNT][8];
};

static unsigned serial;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void make_port(struct rings *r, int role)
{
    char name[48];
    snprintf(name, sizeof(name), "b%u_%d_rx", serial, role);
    r->rx[role] = rte_ring_create(name, 2 * WINDOW, 0, RING_F_SP_ENQ | RING_F_SC_DEQ);
    snprintf(name, sizeof(name), "b%u_%d_tx", serial, role);
    r->tx[role] = rte_ring_create(name, 2 * WINDOW, 0, RING_F_SP_ENQ | RING_F_SC_DEQ);
    snprintf(name, sizeof(name), "b%u_%d", serial, role);
    int id = rte_eth_from_rings(name, &r->rx[role], 1, &r->tx[role], 1, 0);
    snprintf(r->id[role], sizeof(r->id[role]), "%d", id);
}

/* A window of frames for one side: flow i % FLOWS, from the guest or from the client. */
static void build_window(struct rte_mempool *pool, struct rte_mbuf **w, uint32_t payload,
                         bool from_client)
{
    static uint8_t data[1500];
    memset(data, 'p', sizeof(data));
    for (unsigned i = 0; i < WINDOW; i++) {
        struct frame_spec s = frame_guest_tcp(1000, 1, TCPF_ACK | TCPF_PSH, data, payload);
        s.dport = (uint16_t)(10000 + i % FLOWS);
        if (from_client)
            frame_spec_reverse(&s);
        w[i] = rte_pktmbuf_alloc(pool);
        size_t len = frame_build(&s, rte_pktmbuf_mtod(w[i], uint8_t *), 2048);
        w[i]->data_len = w[i]->pkt_len = (uint32_t)len;
    }
}

static void set_seq(struct rte_mbuf *m, uint32_t seq)
{
    uint8_t *t = rte_pktmbuf_mtod(m, uint8_t *) + 34 + 4;
    t[0] = (uint8_t)(seq >> 24);
    t[1] = (uint8_t)(seq >> 16);
    t[2] = (uint8_t)(seq >> 8);
    t[3] = (uint8_t)seq;
}

/* Takes what the proxy sent on a port back to the generator (reference drop). */
static unsigned drain(struct rte_ring *tx)
{
    void *m[64];
    unsigned n, total = 0;
    while ((n = rte_ring_dequeue_burst(tx, m, 64, NULL)) != 0) {
        for (unsigned i = 0; i < n; i++)
            rte_pktmbuf_free(m[i]);
        total += n;
    }
    return total;
}

static void feed(struct rte_ring *rx, struct rte_mbuf **w, uint32_t round, uint32_t payload)
{
    for (unsigned i = 0; i < WINDOW; i++) {
        set_seq(w[i], 1000 + (round * (WINDOW / FLOWS) + i / FLOWS) * payload);
        rte_mbuf_refcnt_update(w[i], 1); /* the proxy's free returns it to us, not the pool */
    }
    rte_ring_enqueue_bulk(rx, (void **)w, WINDOW, NULL);
}

/* One frame of a flow's handshake, through a port, stepped through the pipeline. */
static void handshake_frame(struct pipeline *p, struct rings *r, struct rte_mempool *pool,
                            enum port_role port, unsigned flow, bool from_client, uint32_t seq,
                            uint32_t ack, uint8_t flags)
{
    struct frame_spec s = frame_guest_tcp(seq, ack, flags, NULL, 0);
    s.dport = (uint16_t)(10000 + flow);
    if (from_client)
        frame_spec_reverse(&s);
    struct rte_mbuf *m = rte_pktmbuf_alloc(pool);
    size_t len = frame_build(&s, rte_pktmbuf_mtod(m, uint8_t *), 2048);
    m->data_len = m->pkt_len = (uint32_t)len;
    rte_ring_enqueue(r->rx[port], m);
    pipeline_poll_once(p);
}

/* The secondary learns every flow's offsets: client SYN, SVM SYN-ACK, client ACK. */
static void learn_all_flows(struct pipeline *p, struct rings *r, struct rte_mempool *pool)
{
    for (unsigned f = 0; f < FLOWS; f++) {
        handshake_frame(p, r, pool, PORT_LINK, f, true, 100, 0, TCPF_SYN);
        handshake_frame(p, r, pool, PORT_SVM, f, false, 777777, 101, TCPF_SYN | TCPF_ACK);
        handshake_frame(p, r, pool, PORT_LINK, f, true, 101, 1000, TCPF_ACK);
        drain(r->tx[PORT_LINK]);
        drain(r->tx[PORT_SVM]);
    }
}

/* The generator's frames: mbufs with room for the pipeline's packet handle. */
static struct rte_mempool *generator_pool(unsigned n)
{
    char name[32];
    snprintf(name, sizeof(name), "bpool%u", serial);
    uint16_t priv = (uint16_t)RTE_ALIGN(sizeof(struct colo_pkt), RTE_MBUF_PRIV_ALIGN);
    return rte_pktmbuf_pool_create(name, n, 0, priv, RTE_MBUF_DEFAULT_BUF_SIZE, 0);
}

/* Gives back the windows, the rings and the pool of a case. */
static void tear_down(struct rings *r, struct rte_mbuf **wa, struct rte_mbuf **wb, struct rte_mempool *pool)
{
    for (unsigned i = 0; i < WINDOW; i++) {
        rte_pktmbuf_free(wa[i]);
        if (wb)
            rte_pktmbuf_free(wb[i]);
    }
    for (int i = 0; i < PORT_ROLE_COUNT; i++) {
        if (r->rx[i]) {
            drain(r->rx[i]);
            drain(r->tx[i]);
            rte_ring_free(r->rx[i]);
            rte_ring_free(r->tx[i]);
        }
    }
    rte_mempool_free(pool);
}

static struct pipeline_config bench_config(enum colo_role role)
{
    struct pipeline_config cfg;
    pipeline_config_default(&cfg);
    cfg.heartbeat_ms = 0; /* only data frames are counted */
    cfg.role = role;
    cfg.nb_mbufs = 4 * WINDOW;
    return cfg;
}

struct result {
    double mpps, gbps;
};

static void run_case(enum colo_role role, uint32_t payload, struct result *res)
{
    serial++;
    struct rings r;
    memset(&r, 0, sizeof(r));
    struct rte_mempool *pool = generator_pool(2 * WINDOW + 1024);
    struct pipeline_config cfg = bench_config(role);
    enum port_role in_a, in_b, out_a, out_b;
    if (role == ROLE_PRIMARY) {
        in_a = PORT_PVM, in_b = PORT_LINK, out_a = PORT_CLIENT, out_b = PORT_CLIENT;
        make_port(&r, PORT_CLIENT);
        make_port(&r, PORT_PVM);
        make_port(&r, PORT_LINK);
    } else {
        in_a = PORT_LINK, in_b = PORT_SVM, out_a = PORT_SVM, out_b = PORT_LINK;
        make_port(&r, PORT_LINK);
        make_port(&r, PORT_SVM);
    }
    for (int i = 0; i < PORT_ROLE_COUNT; i++)
        cfg.port_name[i] = r.rx[i] ? r.id[i] : NULL;
    char err[256];
    struct pipeline *p = pipeline_create(&cfg, err, sizeof(err));
    if (!p) {
        fprintf(stderr, "bench_pipeline: %s\n", err);
        exit(1);
    }
    if (role == ROLE_SECONDARY)
        learn_all_flows(p, &r, pool);
    struct rte_mbuf *wa[WINDOW], *wb[WINDOW];
    /* Primary: PVM and SVM output (same bytes). Secondary: client frames and SVM output. */
    build_window(pool, wa, payload, role == ROLE_SECONDARY);
    build_window(pool, wb, payload, false);
    uint32_t rounds = PACKETS_PER_CASE / WINDOW;
    uint64_t out = 0, want = (uint64_t)rounds * WINDOW * (role == ROLE_PRIMARY ? 1 : 2);
    double t0 = now_s();
    for (uint32_t round = 0; round < rounds; round++) {
        feed(r.rx[in_a], wa, round, payload);
        feed(r.rx[in_b], wb, round, payload);
        uint64_t target = (uint64_t)(round + 1) * WINDOW * (role == ROLE_PRIMARY ? 1 : 2);
        while (out < target) {
            pipeline_poll_once(p);
            out += drain(r.tx[out_a]);
            if (out_b != out_a)
                out += drain(r.tx[out_b]);
        }
        if (role == ROLE_PRIMARY)
            drain(r.tx[PORT_PVM]), drain(r.tx[PORT_LINK]);
    }
    double dt = now_s() - t0;
    res->mpps = (double)want / dt / 1e6;
    res->gbps = (double)want * payload * 8 / dt / 1e9;
    pipeline_destroy(p);
    tear_down(&r, wa, wb, pool);
}

/* The bare loop: every frame of the PVM port to the client port, untouched. */
static void forward_until(uint16_t in, uint16_t out, struct rte_ring *tx, uint64_t target, uint64_t *done)
{
    struct rte_mbuf *m[32];
    while (*done < target) {
        uint16_t n = rte_eth_rx_burst(in, 0, m, 32);
        uint16_t sent = 0;
        while (sent < n)
            sent += rte_eth_tx_burst(out, 0, m + sent, (uint16_t)(n - sent));
        *done += drain(tx);
    }
}

static void run_ceiling(uint32_t payload, struct result *res)
{
    serial++;
    struct rings r;
    memset(&r, 0, sizeof(r));
    struct rte_mempool *pool = generator_pool(WINDOW + 1024);
    make_port(&r, PORT_PVM);
    make_port(&r, PORT_CLIENT);
    uint16_t in = (uint16_t)atoi(r.id[PORT_PVM]), out = (uint16_t)atoi(r.id[PORT_CLIENT]);
    struct rte_eth_conf conf;
    memset(&conf, 0, sizeof(conf));
    for (uint16_t port = in;; port = out) {
        rte_eth_dev_configure(port, 1, 1, &conf);
        rte_eth_rx_queue_setup(port, 0, 1024, (unsigned)rte_socket_id(), NULL, pool);
        rte_eth_tx_queue_setup(port, 0, 1024, (unsigned)rte_socket_id(), NULL);
        rte_eth_dev_start(port);
        if (port == out)
            break;
    }
    struct rte_mbuf *w[WINDOW];
    build_window(pool, w, payload, false);
    uint32_t rounds = PACKETS_PER_CASE / WINDOW;
    uint64_t done = 0;
    double t0 = now_s();
    for (uint32_t round = 0; round < rounds; round++) {
        feed(r.rx[PORT_PVM], w, round, payload);
        forward_until(in, out, r.tx[PORT_CLIENT], (uint64_t)(round + 1) * WINDOW, &done);
    }
    double dt = now_s() - t0;
    res->mpps = (double)done / dt / 1e6;
    res->gbps = (double)done * payload * 8 / dt / 1e9;
    rte_eth_dev_stop(in);
    rte_eth_dev_stop(out);
    tear_down(&r, w, NULL, pool);
}

static int by_cycles(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

#define HOLD_SAMPLES 100000u

/* The primary's hold on a matching packet, one at a time; percentiles in microseconds. */
static void run_hold(uint32_t payload, double pct[3])
{
    serial++;
    struct rings r;
    memset(&r, 0, sizeof(r));
    struct rte_mempool *pool = generator_pool(2 * WINDOW + 1024);
    struct pipeline_config cfg = bench_config(ROLE_PRIMARY);
    for (int port = PORT_CLIENT; port <= PORT_LINK; port++) {
        make_port(&r, port);
        cfg.port_name[port] = r.id[port];
    }
    char err[256];
    struct pipeline *p = pipeline_create(&cfg, err, sizeof(err));
    if (!p) {
        fprintf(stderr, "bench_pipeline: %s\n", err);
        exit(1);
    }
    struct rte_mbuf *wa[WINDOW], *wb[WINDOW];
    build_window(pool, wa, payload, false);
    build_window(pool, wb, payload, false);
    uint64_t *cycles = calloc(HOLD_SAMPLES, sizeof(*cycles));
    for (uint32_t i = 0; i < HOLD_SAMPLES; i++) {
        unsigned k = i % WINDOW;
        uint32_t seq = 1000 + (i / FLOWS) * payload;
        set_seq(wa[k], seq);
        set_seq(wb[k], seq);
        rte_mbuf_refcnt_update(wa[k], 1);
        rte_mbuf_refcnt_update(wb[k], 1);
        uint64_t t0 = rte_rdtsc();
        rte_ring_enqueue(r.rx[PORT_PVM], wa[k]);
        rte_ring_enqueue(r.rx[PORT_LINK], wb[k]);
        while (!rte_ring_count(r.tx[PORT_CLIENT]))
            pipeline_poll_once(p);
        cycles[i] = rte_rdtsc() - t0;
        drain(r.tx[PORT_CLIENT]);
        drain(r.tx[PORT_PVM]);
        drain(r.tx[PORT_LINK]);
    }
    qsort(cycles, HOLD_SAMPLES, sizeof(*cycles), by_cycles);
    double us = 1e6 / (double)rte_get_tsc_hz();
    pct[0] = (double)cycles[HOLD_SAMPLES / 2] * us;
    pct[1] = (double)cycles[HOLD_SAMPLES * 99 / 100] * us;
    pct[2] = (double)cycles[HOLD_SAMPLES * 999 / 1000] * us;
    free(cycles);
    pipeline_destroy(p);
    tear_down(&r, wa, wb, pool);
}

static bool window_back(struct rte_mbuf **w)
{
    for (unsigned i = 0; i < WINDOW; i++) {
        if (rte_mbuf_refcnt_read(w[i]) != 1)
            return false;
    }
    return true;
}

/* One side of the two-process run; the primary prints the rate it released at. */
static int run_memif(enum colo_role role, uint32_t payload)
{
    serial++;
    struct rings r;
    memset(&r, 0, sizeof(r));
    struct rte_mempool *pool = generator_pool(WINDOW + 1024);
    struct pipeline_config cfg = bench_config(role);
    cfg.port_name[PORT_LINK] = "net_memif0";
    enum port_role gen = role == ROLE_PRIMARY ? PORT_PVM : PORT_SVM;
    make_port(&r, gen);
    cfg.port_name[gen] = r.id[gen];
    if (role == ROLE_PRIMARY) {
        make_port(&r, PORT_CLIENT);
        cfg.port_name[PORT_CLIENT] = r.id[PORT_CLIENT];
    }
    char err[256];
    struct pipeline *p = pipeline_create(&cfg, err, sizeof(err));
    if (!p) {
        fprintf(stderr, "bench_pipeline: %s\n", err);
        return 1;
    }
    struct rte_mbuf *w[WINDOW];
    build_window(pool, w, payload, false);
    uint32_t rounds = PACKETS_PER_CASE / WINDOW;
    uint64_t released = 0;
    double t0 = 0, last_progress = now_s();
    for (uint32_t round = 0; round < rounds && now_s() - last_progress < 10; round++) {
        while (!window_back(w) && now_s() - last_progress < 10)
            pipeline_poll_once(p);
        feed(r.rx[gen], w, round, payload);
        if (role == ROLE_SECONDARY)
            continue;
        uint64_t target = (uint64_t)(round + 1) * WINDOW;
        while (released < target && now_s() - last_progress < 10) {
            pipeline_poll_once(p);
            unsigned n = drain(r.tx[PORT_CLIENT]);
            if (n && t0 == 0)
                t0 = now_s();
            if (n)
                last_progress = now_s();
            released += n;
        }
    }
    if (role == ROLE_PRIMARY) {
        double dt = now_s() - t0;
        printf("%-10s %8u %10.2f %10.2f   (%" PRIu64 " released over net_memif)\n", "memif", payload,
               (double)released / dt / 1e6, (double)released * payload * 8 / dt / 1e9, released);
    } else {
        for (double t = now_s(); now_s() - t < 3;) /* let the primary take the last frames */
            pipeline_poll_once(p);
    }
    pipeline_destroy(p);
    return 0;
}

int main(int argc, char **argv)
{
    int used = rte_eal_init(argc, argv);
    if (used < 0) {
        fprintf(stderr, "bench_pipeline: EAL did not start\n");
        return 1;
    }
    argc -= used;
    argv += used;
    if (argc == 3 && strncmp(argv[1], "memif-", 6) == 0) {
        enum colo_role role = strcmp(argv[1], "memif-primary") == 0 ? ROLE_PRIMARY : ROLE_SECONDARY;
        int rc = run_memif(role, (uint32_t)atoi(argv[2]));
        rte_eal_cleanup();
        return rc;
    }
    printf("colo-proxy pipeline on in-memory ring ports, one core, %u flows, %u packets per case\n",
           FLOWS, PACKETS_PER_CASE);
    printf("primary: PVM frames compared with identical SVM frames and released to the client port\n");
    printf("secondary: client frames (ack rewritten) to the SVM port, SVM frames (seq rewritten) to the link\n\n");
    printf("%-10s %8s %10s %10s\n", "role", "payload", "Mpps", "Gbit/s");
    static const uint32_t payloads[] = { 64, 1460 };
    for (int role = ROLE_PRIMARY; role <= ROLE_SECONDARY; role++) {
        for (unsigned i = 0; i < 2; i++) {
            struct result res;
            run_case((enum colo_role)role, payloads[i], &res);
            printf("%-10s %8u %10.2f %10.2f\n", role_name((enum colo_role)role), payloads[i], res.mpps,
                   res.gbps);
            fflush(stdout);
        }
    }
    for (unsigned i = 0; i < 2; i++) {
        struct result res;
        run_ceiling(payloads[i], &res);
        printf("%-10s %8u %10.2f %10.2f   (bare rx/tx forwarding, nothing parsed)\n", "ceiling", payloads[i],
               res.mpps, res.gbps);
    }
    printf("\n%-10s %8s %10s %10s %10s\n", "hold", "payload", "p50 us", "p99 us", "p99.9 us");
    for (unsigned i = 0; i < 2; i++) {
        double pct[3];
        run_hold(payloads[i], pct);
        printf("%-10s %8u %10.2f %10.2f %10.2f\n", "hold", payloads[i], pct[0], pct[1], pct[2]);
    }
    printf("\ntargets (primary): >= 5 Mpps at 64 bytes, >= 20 Gbit/s at 1460 bytes; hold <= 10 us at p99\n");
    rte_eal_cleanup();
    return 0;
}
