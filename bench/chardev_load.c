/*
 * chardev_load.c — a load generator for anything that speaks colo-compare's sockets.
 *
 *   chardev_load PRIMARY_IN SECONDARY_IN OUTDEV PAYLOAD PACKETS FLOWS PID [--rate R --latency-file F]
 *                [--diverge-every N --notify NOTIFY_DEV]
 *                [--pcap-pvm F --pcap-svm F --loops L --notify NOTIFY_DEV]
 *
 * Each socket is a TCP port on 127.0.0.1 or, when it starts with '/', a unix
 * socket path. Connects to the three sockets (the target listens on all three:
 * colo-proxy compare with ",server" endpoints, or QEMU's colo-compare with
 * server=on chardevs), writes PACKETS identical TCP segments as PVM and as SVM
 * records (FLOWS connections round-robin, PAYLOAD bytes each) from one thread,
 * and reads the released records from outdev in another. It prints one line:
 *   packets/s, CPU microseconds of PID per packet (from /proc), received,
 *   reordered within a flow, lost
 * With --rate (records per second and side), each PVM record is written with its
 * SVM twin right after it, paced, and the time from that write to the release
 * is measured for every packet: the line gains p50, p99 and p99.9 in
 * microseconds, and the --latency-file gets the distribution (microseconds,
 * fraction of packets at or below) for a CDF plot.
 * With --diverge-every N, every Nth SVM record differs in its first payload byte,
 * and the load generator plays the Xen COLO frame on --notify: it answers every
 * DO_CHECKPOINT with COLO_CHECKPOINT at once (an instant checkpoint). The line
 * then gains the number of DO_CHECKPOINT words and the median time from writing
 * a divergent record to the first request after it, in microseconds.
 * With --pcap-pvm/--pcap-svm, the records are a recorded pair instead (pcap_trace.h),
 * L passes of it as new connections, PACKETS and FLOWS unused; real traces carry
 * real divergences, so --notify is needed to complete the checkpoints.
 * Nothing is asserted; bench/run-socket and bench/run compare targets side by side.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "colo/pkt.h"
#include "frame_builder.h"
#include "pcap_trace.h"
#include "sock_endpoint.h"

#define BATCH 64
#define STALL_S 5.0

struct load {
    int pin, sin, out, notify;
    uint32_t payload, packets, flows;
    double rate;            /* 0: as fast as the target takes them */
    double *sent_at;        /* paced: when each packet's pair was written */
    uint32_t diverge_every; /* 0: identical streams */
    volatile double pending_divergence; /* the first divergent SVM record not yet followed by a request */
    uint64_t requests, timed;
    double *request_delay;  /* divergence written -> the first DO_CHECKPOINT after it */
    struct trace trace;     /* records from a recorded pair, when given */
};

#define RECORD_HEADER 4
#define FIRST_PAYLOAD_BYTE (RECORD_HEADER + 54) /* Ethernet, IPv4, TCP without options */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void write_all(int fd, const uint8_t *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            perror("chardev_load: write");
            exit(2);
        }
        p += w;
        n -= (size_t)w;
    }
}

/* Appends record i (flow i % flows, its (i / flows)-th segment) to buf. */
static size_t put_record(const struct load *l, uint32_t i, uint8_t *buf)
{
    static uint8_t data[1500];
    struct frame_spec s = frame_guest_tcp(1000 + (i / l->flows) * l->payload, 1, TCPF_ACK | TCPF_PSH,
                                          data, l->payload);
    s.dport = (uint16_t)(10000 + i % l->flows);
    size_t n = frame_build(&s, buf + 4, 2048);
    buf[0] = (uint8_t)(n >> 24);
    buf[1] = (uint8_t)(n >> 16);
    buf[2] = (uint8_t)(n >> 8);
    buf[3] = (uint8_t)n;
    return n + 4;
}

/* Flips the first payload byte of the batch's divergent SVM records; true when there was one. */
static bool make_divergent(const struct load *l, uint32_t first, uint32_t count, uint8_t *buf, const size_t *starts)
{
    bool any = false;
    for (uint32_t k = 0; l->diverge_every && k < count; k++) {
        if ((first + k) % l->diverge_every == l->diverge_every - 1 && l->payload) {
            buf[starts[k] + FIRST_PAYLOAD_BYTE] ^= 0xff;
            any = true;
        }
    }
    return any;
}

static void send_word(int fd, const char *word)
{
    uint8_t rec[64];
    uint32_t len = (uint32_t)strlen(word);
    rec[0] = (uint8_t)(len >> 24);
    rec[1] = (uint8_t)(len >> 16);
    rec[2] = (uint8_t)(len >> 8);
    rec[3] = (uint8_t)len;
    memcpy(rec + RECORD_HEADER, word, len);
    write_all(fd, rec, RECORD_HEADER + len);
}

/* The Xen COLO frame's side of notify_dev: every DO_CHECKPOINT is a checkpoint done at once. */
static void *notify_main(void *arg)
{
    struct load *l = arg;
    uint8_t buf[4096];
    size_t have = 0;
    send_word(l->notify, "COLO_USERSPACE_PROXY_INIT");
    for (;;) {
        ssize_t n = read(l->notify, buf + have, sizeof(buf) - have);
        if (n <= 0)
            return NULL;
        have += (size_t)n;
        size_t off = 0;
        while (have - off >= RECORD_HEADER) {
            uint32_t len = (uint32_t)buf[off] << 24 | (uint32_t)buf[off + 1] << 16 | (uint32_t)buf[off + 2] << 8 |
                           buf[off + 3];
            if (len > sizeof(buf) - RECORD_HEADER)
                return NULL;
            if (have - off - RECORD_HEADER < len)
                break;
            if (len == 13 && memcmp(buf + off + RECORD_HEADER, "DO_CHECKPOINT", 13) == 0) {
                if (l->pending_divergence && l->timed < l->packets) /* the first request after a divergence */
                    l->request_delay[l->timed++] = now_s() - l->pending_divergence;
                l->pending_divergence = 0;
                l->requests++;
                send_word(l->notify, "COLO_CHECKPOINT");
            }
            off += RECORD_HEADER + len;
        }
        memmove(buf, buf + off, have - off);
        have -= off;
    }
}

/* One PVM record and its SVM twin at a time, at the rate: for latency, not throughput. */
static void write_paced(const struct load *l)
{
    uint8_t buf[2100];
    double t0 = now_s();
    for (uint32_t i = 0; i < l->packets; i++) {
        double due = t0 + i / l->rate, wait = due - now_s();
        if (wait > 0) { /* sleep, not spin: the target and the reader need the cores */
            struct timespec ts = { (time_t)wait, (long)((wait - (double)(time_t)wait) * 1e9) };
            nanosleep(&ts, NULL);
        }
        size_t n = put_record(l, i, buf), start = 0;
        l->sent_at[i] = now_s();
        write_all(l->pin, buf, n);
        bool diverged = make_divergent(l, i, 1, buf, &start);
        write_all(l->sin, buf, n);
        if (diverged && !l->pending_divergence)
            ((struct load *)l)->pending_divergence = now_s();
    }
}

/* The recorded pair: runs of one side's records, each run written at once. */
static void write_trace(const struct load *l)
{
    enum { RUN_BYTES = 64 << 10 };
    uint8_t *buf = malloc(RUN_BYTES + 70000);
    size_t n = 0;
    int side = -1;
    for (size_t i = 0; i < l->trace.count; i++) {
        const struct trace_record *r = &l->trace.records[i];
        if ((r->side != side || n >= RUN_BYTES) && n) {
            write_all(side == 0 ? l->pin : l->sin, buf, n);
            n = 0;
        }
        side = r->side;
        memcpy(buf + n, r->bytes, r->len);
        n += r->len;
    }
    if (n)
        write_all(side == 0 ? l->pin : l->sin, buf, n);
    free(buf);
}

static void *writer(void *arg)
{
    const struct load *l = arg;
    if (l->trace.count) {
        write_trace(l);
        return NULL;
    }
    if (l->rate > 0) {
        write_paced(l);
        return NULL;
    }
    uint8_t *buf = malloc((size_t)BATCH * 2100);
    for (uint32_t i = 0; i < l->packets; i += BATCH) {
        size_t n = 0;
        size_t starts[BATCH];
        uint32_t count = 0;
        for (uint32_t k = i; k < i + BATCH && k < l->packets; k++, count++) {
            starts[count] = n;
            n += put_record(l, k, buf + n);
        }
        write_all(l->pin, buf, n);
        bool diverged = make_divergent(l, i, count, buf, starts);
        write_all(l->sin, buf, n);
        if (diverged && !l->pending_divergence)
            ((struct load *)l)->pending_divergence = now_s();
    }
    free(buf);
    return NULL;
}

static double cpu_seconds(int pid)
{
    char path[64], line[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f || !fgets(line, sizeof(line), f)) {
        if (f)
            fclose(f);
        return 0;
    }
    fclose(f);
    char *p = strrchr(line, ')');
    unsigned long utime = 0, stime = 0;
    /* fields after the command: state(3) ... utime(14) stime(15) */
    if (p)
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime);
    return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* p50, p99, p99.9 on the line; the distribution in the file. */
static void report_latency(double *lat, uint64_t n, const char *path)
{
    if (!n) {
        printf(" 0 0 0");
        return;
    }
    qsort(lat, n, sizeof(*lat), by_value);
    printf(" %.1f %.1f %.1f", lat[n / 2] * 1e6, lat[n * 99 / 100] * 1e6, lat[n * 999 / 1000] * 1e6);
    FILE *f = fopen(path, "w");
    if (!f)
        return;
    for (int q = 0; q <= 1000; q++) {
        uint64_t k = q == 1000 ? n - 1 : n * (uint64_t)q / 1000;
        fprintf(f, "%.2f %.4f\n", lat[k] * 1e6, (double)(k + 1) / (double)n);
    }
    fclose(f);
}

/* The packet index a released frame stands for (see put_record), or -1. */
static int64_t packet_index(const struct load *l, const uint8_t *f, uint32_t len)
{
    if (len < 54)
        return -1;
    uint32_t flow = (uint32_t)(f[36] << 8 | f[37]) - 10000;
    uint32_t seq = (uint32_t)f[38] << 24 | (uint32_t)f[39] << 16 | (uint32_t)f[40] << 8 | f[41];
    if (flow >= l->flows || seq < 1000 || !l->payload)
        return -1;
    uint64_t i = (uint64_t)(seq - 1000) / l->payload * l->flows + flow;
    return i < l->packets ? (int64_t)i : -1;
}

static void usage(void)
{
    fprintf(stderr, "usage: chardev_load PRIMARY_IN SECONDARY_IN OUTDEV PAYLOAD PACKETS FLOWS PID\n"
                    "         [--rate R --latency-file F] [--diverge-every N --notify NOTIFY_DEV]\n"
                    "         [--pcap-pvm F --pcap-svm F --loops L --notify NOTIFY_DEV]\n"
                    "  (each socket a TCP port on 127.0.0.1, or a unix socket path)\n");
    exit(2);
}

static double median_of(double *v, uint64_t n)
{
    if (!n)
        return 0;
    qsort(v, n, sizeof(*v), by_value);
    return v[n / 2];
}

int main(int argc, char **argv)
{
    if (argc < 8 || (argc - 8) % 2)
        usage();
    struct load l = {
        .payload = (uint32_t)atoi(argv[4]), .packets = (uint32_t)atoi(argv[5]), .flows = (uint32_t)atoi(argv[6]),
        .notify = -1,
    };
    const char *latency_file = NULL, *notify = NULL, *pcap_pvm = NULL, *pcap_svm = NULL;
    unsigned loops = 1;
    for (int a = 8; a < argc; a += 2) {
        if (strcmp(argv[a], "--rate") == 0)
            l.rate = atof(argv[a + 1]);
        else if (strcmp(argv[a], "--latency-file") == 0)
            latency_file = argv[a + 1];
        else if (strcmp(argv[a], "--diverge-every") == 0)
            l.diverge_every = (uint32_t)atoi(argv[a + 1]);
        else if (strcmp(argv[a], "--notify") == 0)
            notify = argv[a + 1];
        else if (strcmp(argv[a], "--pcap-pvm") == 0)
            pcap_pvm = argv[a + 1];
        else if (strcmp(argv[a], "--pcap-svm") == 0)
            pcap_svm = argv[a + 1];
        else if (strcmp(argv[a], "--loops") == 0)
            loops = (unsigned)atoi(argv[a + 1]);
        else
            usage();
    }
    bool traced = pcap_pvm && pcap_svm;
    if ((l.rate > 0) != (latency_file != NULL) || (l.diverge_every > 0 || traced) != (notify != NULL) ||
        (traced && (l.rate > 0 || l.diverge_every)) || !loops)
        usage();
    if (traced) {
        if (trace_load(&l.trace, pcap_pvm, pcap_svm, loops) != 0)
            return 2;
        l.packets = (uint32_t)l.trace.pvm_count;
        l.flows = 0; /* no per-flow order check: the trace's own flows */
    }
    double *latency = NULL;
    uint64_t measured = 0;
    if (l.rate > 0) {
        l.sent_at = calloc(l.packets, sizeof(double));
        latency = calloc(l.packets, sizeof(double));
    }
    int pid = atoi(argv[7]);
    l.out = sock_endpoint_connect(argv[3], "chardev_load");
    l.pin = sock_endpoint_connect(argv[1], "chardev_load");
    l.sin = sock_endpoint_connect(argv[2], "chardev_load");
    pthread_t notifier;
    if (notify) {
        l.notify = sock_endpoint_connect(notify, "chardev_load");
        l.request_delay = calloc(l.packets, sizeof(double));
        pthread_create(&notifier, NULL, notify_main, &l);
    }
    usleep(200000); /* let the target see all its peers */
    uint32_t *last_seq = calloc(l.flows, sizeof(uint32_t));
    uint8_t *buf = malloc(1 << 22);
    size_t have = 0;
    uint64_t received = 0, reordered = 0;
    double cpu0 = cpu_seconds(pid), t0 = now_s(), progress = t0;
    pthread_t w;
    pthread_create(&w, NULL, writer, &l);
    while (received < l.packets && now_s() - progress < STALL_S) {
        struct timeval tv = { 0, 200000 };
        setsockopt(l.out, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        ssize_t n = read(l.out, buf + have, (1 << 22) - have);
        if (n <= 0)
            continue;
        have += (size_t)n;
        progress = now_s();
        size_t off = 0;
        while (have - off >= 4) {
            uint32_t len = (uint32_t)buf[off] << 24 | (uint32_t)buf[off + 1] << 16 | (uint32_t)buf[off + 2] << 8 | buf[off + 3];
            if (have - off < 4 + (size_t)len)
                break;
            const uint8_t *f = buf + off + 4;
            int64_t idx = latency ? packet_index(&l, f, len) : -1;
            if (idx >= 0 && l.sent_at[idx] > 0)
                latency[measured++] = now_s() - l.sent_at[idx];
            if (len >= 54) {
                uint32_t flow = (uint32_t)(f[36] << 8 | f[37]) - 10000;
                uint32_t seq = (uint32_t)f[38] << 24 | (uint32_t)f[39] << 16 | (uint32_t)f[40] << 8 | f[41];
                if (flow < l.flows) {
                    reordered += last_seq[flow] && seq < last_seq[flow];
                    last_seq[flow] = seq;
                }
            }
            received++;
            off += 4 + len;
        }
        memmove(buf, buf + off, have - off);
        have -= off;
    }
    double dt = (received == l.packets ? progress : now_s() - STALL_S) - t0;
    double cpu = cpu_seconds(pid) - cpu0;
    printf("%.0f %.2f %lu %lu %lu", (double)received / dt, received ? cpu / (double)received * 1e6 : 0.0,
           (unsigned long)received, (unsigned long)reordered, (unsigned long)(l.packets - received));
    if (latency)
        report_latency(latency, measured, latency_file);
    if (notify) {
        printf(" %lu %.1f", (unsigned long)l.requests, median_of(l.request_delay, l.timed) * 1e6);
    }
    printf("\n");
    pthread_detach(w);
    return 0;
}
