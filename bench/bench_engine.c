/*
 * bench_engine.c — the compare engine's throughput and memory, packets preloaded.
 *
 * For each payload size (64, 512, 1460 bytes) and number of concurrent
 * connections (1, 10k, 1M) it builds identical PVM and SVM segment streams in
 * memory, parses them once (outside the timed part: parsing is measured on its
 * own), creates every connection in an untimed warm-up round, then times the
 * engine over the rest: PVM bursts of 32 and the SVM's matching bursts,
 * round-robin over the connections, each PVM packet compared and released.
 * It prints packets/s and Gbit/s of compared payload, the 1M/1 ratio, and the
 * table's bytes per idle connection, allocated and resident. It asserts nothing.
 *
 *   bench_engine --pcap PVM.pcap SVM.pcap
 * runs a recorded pair through the engine instead (pcap_trace.h: enough passes as
 * new connections for about a million PVM packets, at most 250), in the trace's
 * order, each run of one side's frames in bursts of 32, every checkpoint it asks
 * for completed at once; it prints PVM packets/s, released and requests.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "colo/compare.h"
#include "colo/pkt_parse.h"
#include "frame_builder.h"
#include "pcap_trace.h"

#define BURST 32
#define TIMED_PVM_PACKETS (4u << 20)

struct counters {
    uint64_t released, released_bytes, discarded, requests;
};

static void on_release(void *ctx, struct colo_pkt *p, enum release_reason why)
{
    (void)why;
    struct counters *c = ctx;
    c->released++;
    c->released_bytes += p->view.payload_len;
}

static void on_discard(void *ctx, struct colo_pkt *p)
{
    (void)p;
    ((struct counters *)ctx)->discarded++;
}

static void on_request(void *ctx, enum checkpoint_reason why, uint64_t now)
{
    (void)why;
    (void)now;
    ((struct counters *)ctx)->requests++;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long rss_bytes(void)
{
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
            resident = 0;
        fclose(f);
    }
    return resident * sysconf(_SC_PAGESIZE);
}

/* One template frame per payload size; each handle gets its own key and seq. */
struct workload {
    uint8_t frame[2048];
    size_t frame_len;
    struct pkt_view view;
    struct colo_pkt *pvm, *svm;
    uint32_t conns, rounds;
};

static void set_conn(struct pkt_view *v, uint32_t conn)
{
    /* Vary the client address and port, as many clients would. */
    v->key.addr[1][13] = (uint8_t)(conn >> 16);
    v->key.addr[1][14] = (uint8_t)(conn >> 8);
    v->key.addr[1][15] = (uint8_t)conn;
    v->key.port[1] = (uint16_t)(1024 + conn % 60000);
}

static int workload_build(struct workload *w, uint32_t payload, uint32_t conns)
{
    static uint8_t data[1500];
    memset(data, 'x', sizeof(data));
    struct frame_spec s = frame_guest_tcp(1000, 1, TCPF_ACK | TCPF_PSH, data, payload);
    s.dst[0] = 172; /* the guest's address sorts first, so the key is not swapped */
    w->frame_len = frame_build(&s, w->frame, sizeof(w->frame));
    if (pkt_parse(w->frame, (uint32_t)w->frame_len, &w->view) != PARSE_OK)
        return -1;
    w->conns = conns;
    w->rounds = 1 + (TIMED_PVM_PACKETS + conns - 1) / conns;
    size_t n = (size_t)w->rounds * conns;
    w->pvm = calloc(n, sizeof(struct colo_pkt));
    w->svm = calloc(n, sizeof(struct colo_pkt));
    if (!w->pvm || !w->svm)
        return -1;
    for (uint32_t r = 0; r < w->rounds; r++) {
        for (uint32_t c = 0; c < conns; c++) {
            size_t i = (size_t)r * conns + c;
            struct colo_pkt *p = &w->pvm[i];
            p->frame = w->frame;
            p->frame_len = (uint32_t)w->frame_len;
            p->view = w->view;
            set_conn(&p->view, c);
            p->view.tcp_seq = 1000 + r * payload;
            w->svm[i] = *p;
        }
    }
    return 0;
}

static void workload_free(struct workload *w)
{
    free(w->pvm);
    free(w->svm);
}

static void feed(struct colo_compare *e, struct colo_pkt *pvm, struct colo_pkt *svm, size_t n,
                 uint64_t *clock)
{
    struct colo_pkt *bp[BURST], *bs[BURST];
    for (size_t i = 0; i < n; i += BURST) {
        unsigned k = (unsigned)(n - i < BURST ? n - i : BURST);
        for (unsigned j = 0; j < k; j++) {
            bp[j] = &pvm[i + j];
            bs[j] = &svm[i + j];
        }
        *clock += 1000; /* one timestamp per burst, as a poll loop takes it */
        colo_compare_input_burst(e, SIDE_PVM, bp, k, *clock);
        colo_compare_input_burst(e, SIDE_SVM, bs, k, *clock);
    }
}

struct result {
    double mpps, gbps;
};

static int run_case(uint32_t payload, uint32_t conns, struct result *out)
{
    struct workload w;
    memset(&w, 0, sizeof(w));
    if (workload_build(&w, payload, conns) != 0) {
        fprintf(stderr, "bench_engine: out of memory for %u connections\n", conns);
        return -1;
    }
    struct colo_compare_config cfg;
    colo_compare_config_default(&cfg);
    cfg.max_conns = conns < 1024 ? 1024 : conns;
    cfg.expired_scan_cycle_ms = 3600000;
    struct counters cnt = { 0 };
    struct colo_compare_ops ops = { .release = on_release, .discard = on_discard,
                                    .request_checkpoint = on_request };
    struct colo_compare *e = colo_compare_create(&cfg, &ops, &cnt);
    uint64_t clock = 1000000000ull;
    feed(e, w.pvm, w.svm, conns, &clock); /* warm-up round: creates every connection */
    uint64_t before = cnt.released, before_bytes = cnt.released_bytes;
    size_t timed = (size_t)(w.rounds - 1) * conns;
    double t0 = now_s();
    feed(e, w.pvm + conns, w.svm + conns, timed, &clock);
    double dt = now_s() - t0;
    uint64_t rel = cnt.released - before;
    if (rel != timed || cnt.requests != 0)
        fprintf(stderr, "bench_engine: %" PRIu64 " of %zu released, %" PRIu64 " checkpoint requests\n",
                rel, timed, cnt.requests);
    out->mpps = (double)rel / dt / 1e6;
    out->gbps = (double)(cnt.released_bytes - before_bytes) * 8 / dt / 1e9;
    colo_compare_destroy(e);
    workload_free(&w);
    return 0;
}

static void report_parse_cost(void)
{
    uint8_t frame[2048];
    struct frame_spec s = frame_guest_tcp(1, 1, TCPF_ACK, "0123456789012345678901234567890123456789012345678901234567890123", 64);
    s.tcp_timestamp = true;
    size_t n = frame_build(&s, frame, sizeof(frame));
    struct pkt_view v;
    const unsigned iters = 20000000;
    uint64_t sink = 0;
    double t0 = now_s();
    for (unsigned i = 0; i < iters; i++) {
        frame[17] = (uint8_t)i; /* defeat hoisting */
        pkt_parse(frame, (uint32_t)n, &v);
        sink += v.payload_len;
    }
    double dt = now_s() - t0;
    printf("parse: %.1f ns per IPv4/TCP frame (%.1f M frames/s)%s\n", dt / iters * 1e9,
           iters / dt / 1e6, sink ? "" : " ");
}

static void report_memory(void)
{
    struct colo_compare_config cfg;
    colo_compare_config_default(&cfg);
    const uint32_t n = cfg.max_conns;
    struct counters cnt = { 0 };
    struct colo_compare_ops ops = { .release = on_release, .discard = on_discard,
                                    .request_checkpoint = on_request };
    long rss0 = rss_bytes();
    struct colo_compare *e = colo_compare_create(&cfg, &ops, &cnt);
    struct workload w;
    memset(&w, 0, sizeof(w));
    uint8_t data[1] = { 'a' };
    struct frame_spec s = frame_guest_tcp(1000, 1, TCPF_ACK, data, 0);
    s.dst[0] = 172;
    w.frame_len = frame_build(&s, w.frame, sizeof(w.frame));
    pkt_parse(w.frame, (uint32_t)w.frame_len, &w.view);
    struct colo_pkt p;
    for (uint32_t c = 0; c < n; c++) { /* a pure ACK on each: idle, nothing held */
        memset(&p, 0, sizeof(p));
        p.frame = w.frame;
        p.frame_len = (uint32_t)w.frame_len;
        p.view = w.view;
        set_conn(&p.view, c);
        colo_compare_input(e, SIDE_PVM, &p, 1000000000ull);
    }
    long rss1 = rss_bytes();
    printf("memory: %u idle connections (the default --max-conns, all in use): %.1f bytes/connection "
           "allocated (table entry, lookup slots, checkpoint list), %.1f bytes/connection resident; "
           "target <= 256\n",
           conn_table_stats(colo_compare_table(e))->in_use, colo_compare_bytes_per_conn(e),
           (double)(rss1 - rss0) / n);
    colo_compare_destroy(e);
}

/* Feeds the burst of one side; a requested checkpoint completes at once after it. */
static void feed_side(struct colo_compare *e, struct counters *cnt, enum colo_side side, struct colo_pkt **burst,
                      unsigned n, uint64_t *clock, uint64_t *done)
{
    *clock += 1000;
    colo_compare_input_burst(e, side, burst, n, *clock);
    if (cnt->requests > *done) {
        *done = cnt->requests;
        colo_compare_checkpoint_done(e, *clock);
    }
}

static int run_trace(const char *pvm_pcap, const char *svm_pcap)
{
    struct trace probe;
    if (trace_load(&probe, pvm_pcap, svm_pcap, 0, 1) != 0)
        return 1;
    size_t once = probe.pvm_count ? probe.pvm_count : 1;
    trace_free(&probe);
    unsigned passes = (unsigned)(1000000 / once) + 1;
    passes = passes > 250 ? 250 : passes;
    struct trace t;
    if (trace_load(&t, pvm_pcap, svm_pcap, 0, passes) != 0)
        return 1;
    struct colo_pkt *pkts = calloc(t.count ? t.count : 1, sizeof(*pkts));
    for (size_t i = 0; i < t.count; i++) { /* parsed outside the timed part */
        pkts[i].frame = t.records[i].bytes + 4;
        pkts[i].frame_len = t.records[i].len - 4;
        pkt_parse(pkts[i].frame, pkts[i].frame_len, &pkts[i].view);
    }
    struct colo_compare_config cfg;
    colo_compare_config_default(&cfg);
    cfg.max_conns = t.conns + 1024;
    struct counters cnt = { 0 };
    struct colo_compare_ops ops = { .release = on_release, .discard = on_discard, .request_checkpoint = on_request };
    struct colo_compare *e = colo_compare_create(&cfg, &ops, &cnt);
    uint64_t clock = 1000000000ull, done = 0;
    struct colo_pkt *burst[BURST];
    double t0 = now_s();
    for (size_t i = 0; i < t.count;) {
        enum colo_side side = t.records[i].side == 0 ? SIDE_PVM : SIDE_SVM;
        unsigned n = 0;
        for (; i < t.count && n < BURST && (t.records[i].side == 0) == (side == SIDE_PVM); i++)
            burst[n++] = &pkts[i];
        feed_side(e, &cnt, side, burst, n, &clock, &done);
    }
    double dt = now_s() - t0;
    uint64_t released_in_time = cnt.released;
    colo_compare_release_all(e);
    printf("trace %s + %s: %zu PVM packets (%u passes), %.3f Mpps compared and released, "
           "%" PRIu64 " released in the run, %" PRIu64 " at the end, %" PRIu64 " checkpoint requests\n",
           pvm_pcap, svm_pcap, t.pvm_count, passes,
           (double)released_in_time / dt / 1e6, released_in_time, cnt.released - released_in_time, cnt.requests);
    colo_compare_destroy(e);
    free(pkts);
    trace_free(&t);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "--pcap") == 0)
        return run_trace(argv[2], argv[3]);
    if (argc != 1) {
        fprintf(stderr, "usage: bench_engine [--pcap PVM.pcap SVM.pcap]\n");
        return 2;
    }
    static const uint32_t payloads[] = { 64, 512, 1460 };
    static const uint32_t conns[] = { 1, 10000, 1000000 };
    printf("colo-proxy compare engine, one core, packets preloaded (%u timed PVM packets per case,\n"
           "each matched by an identical SVM packet; rates count PVM packets compared and released)\n\n",
           TIMED_PVM_PACKETS);
    printf("%-8s %12s %12s %12s %14s\n", "payload", "connections", "Mpps", "Gbit/s", "vs 1 conn");
    for (unsigned i = 0; i < 3; i++) {
        double base = 0;
        for (unsigned j = 0; j < 3; j++) {
            struct result r;
            if (run_case(payloads[i], conns[j], &r) != 0)
                return 1;
            if (j == 0)
                base = r.mpps;
            printf("%-8u %12u %12.2f %12.2f %13.0f%%\n", payloads[i], conns[j], r.mpps, r.gbps,
                   100.0 * r.mpps / base);
            fflush(stdout);
        }
    }
    printf("\ntargets: >= 10 Mpps at 64 bytes; 1M connections within 30%% of 1 connection\n\n");
    report_parse_cost();
    report_memory();
    return 0;
}
