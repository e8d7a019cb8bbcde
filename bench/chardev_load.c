/*
 * chardev_load.c — a load generator for anything that speaks colo-compare's sockets.
 *
 *   chardev_load PRIMARY_IN SECONDARY_IN OUTDEV PID --pcap-pvm F --pcap-svm F [--loops L [--first-pass N]]
 *                [--rate R --latency-file F] [--notify NOTIFY_DEV [--periodic-checkpoint-ms MS]]
 *
 * Each socket is a TCP port on 127.0.0.1 or, when it starts with '/', a unix
 * socket path. Connects to the three sockets (the target listens on all three:
 * colo-proxy compare with ",server" endpoints, or QEMU's colo-compare with
 * server=on chardevs) and replays a PVM/SVM pcap pair (pcap_trace.h; L passes of
 * it as new connections, numbered from N so that runs against one target differ)
 * as PVM and SVM records, from one thread: each run of
 * one side's records in the trace's time order is written at once. Another
 * thread reads the released records from outdev and finds each among the PVM
 * records sent. It prints one line:
 *   PVM packets/s, CPU microseconds of PID per PVM packet (from /proc), released,
 *   reordered within a connection, lost (PVM records never released)
 * then, when some released frame is none of the PVM records sent (changed or
 * made up by the target), a second line "foreign N" on stderr.
 * With --rate (PVM records per second), each PVM record is written at its time
 * and the SVM records after it at once, and the time from writing a PVM record
 * to its release is measured: the line gains p50, p99 and p99.9 in microseconds,
 * and the --latency-file gets the distribution (microseconds, fraction of
 * packets at or below) for a CDF plot.
 * With --notify, it plays the Xen COLO frame on notify_dev: it answers every
 * DO_CHECKPOINT with COLO_CHECKPOINT at once (an instant checkpoint). The line
 * then gains the number of DO_CHECKPOINT words and the median time from writing
 * an SVM record that differs from its PVM twin to the first request after it, in
 * microseconds. A trace with divergences needs --notify to complete its checkpoints.
 * With --periodic-checkpoint-ms, it also takes a checkpoint that often unasked
 * (QEMU's timer), the same way; the line then ends with how many it took.
 * bench/make_trace writes the synthetic scenarios' pairs. Nothing is asserted;
 * bench/run-socket and bench/run compare targets side by side.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "pcap_trace.h"
#include "sock_endpoint.h"

#define STALL_S 5.0
#define RECORD_HEADER 4

struct load {
    int pin, sin, out, notify;
    double rate;            /* 0: as fast as the target takes them */
    double *sent_at;        /* paced: when each PVM record was written */
    volatile double pending_divergence; /* the first divergent SVM record not yet followed by a request */
    uint64_t requests, timed;
    double *request_delay;  /* divergence written -> the first DO_CHECKPOINT after it */
    struct trace trace;
    /* A checkpoint stops both VMs: the writer, between two writes. */
    pthread_mutex_t lock;
    pthread_cond_t changed;
    bool stop_wanted, stopped, writer_done;
    uint32_t pvm_written;   /* PVM records written so far */
    uint32_t svm_floor;     /* the SVM restarted here: its records for earlier PVM records are never sent */
    pthread_mutex_t one_checkpoint; /* requested and periodic checkpoints never overlap */
    double periodic_s;      /* > 0: a checkpoint this often, unasked, as QEMU's own timer takes them */
    uint64_t periodic_done;
};

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

static void sleep_until(double due)
{
    double wait = due - now_s();
    if (wait > 0) { /* sleep, not spin: the target and the reader need the cores */
        struct timespec ts = { (time_t)wait, (long)((wait - (double)(time_t)wait) * 1e9) };
        nanosleep(&ts, NULL);
    }
}

/* Waits (up to a second) until the peer has read everything written on fd. */
static void wait_read_by_peer(int fd)
{
    for (int i = 0; i < 20000; i++) {
        int queued = 0;
        if (ioctl(fd, SIOCOUTQ, &queued) != 0 || queued == 0)
            return;
        usleep(50);
    }
}

/*
 * A checkpoint as COLO takes one: both VMs stop (the writer, between two writes),
 * what they sent reaches the proxy, the checkpoint is done, and the SVM carries on
 * from the PVM's state: from the PVM's next record, whatever it had sent before.
 */
static void checkpoint(struct load *l)
{
    pthread_mutex_lock(&l->one_checkpoint);
    pthread_mutex_lock(&l->lock);
    l->stop_wanted = true;
    while (!l->stopped && !l->writer_done)
        pthread_cond_wait(&l->changed, &l->lock);
    pthread_mutex_unlock(&l->lock);
    wait_read_by_peer(l->pin);
    wait_read_by_peer(l->sin);
    send_word(l->notify, "COLO_CHECKPOINT");
    wait_read_by_peer(l->notify);
    pthread_mutex_lock(&l->lock);
    l->svm_floor = l->pvm_written;
    l->stop_wanted = false;
    pthread_cond_broadcast(&l->changed);
    pthread_mutex_unlock(&l->lock);
    pthread_mutex_unlock(&l->one_checkpoint);
}

/* QEMU's periodic checkpoints: taken on a timer, whether or not the proxy asked. */
static void *periodic_main(void *arg)
{
    struct load *l = arg;
    for (;;) {
        sleep_until(now_s() + l->periodic_s);
        if (__atomic_load_n(&l->writer_done, __ATOMIC_ACQUIRE))
            return NULL;
        checkpoint(l);
        l->periodic_done++;
    }
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
                if (l->pending_divergence && l->timed < l->trace.pvm_count) /* the first request after a divergence */
                    l->request_delay[l->timed++] = now_s() - l->pending_divergence;
                l->pending_divergence = 0;
                l->requests++;
                checkpoint(l);
            }
            off += RECORD_HEADER + len;
        }
        memmove(buf, buf + off, have - off);
        have -= off;
    }
}

static void note_divergence(const struct load *l, bool divergent)
{
    if (divergent && !l->pending_divergence)
        ((struct load *)l)->pending_divergence = now_s();
}

/* An SVM record for a PVM record before the SVM's restart point: the restarted SVM never sends it. */
static bool svm_skips(const struct load *l, const struct trace_record *r)
{
    return r->side == 1 && r->twin_ord != TRACE_NO_TWIN && r->twin_ord < l->svm_floor;
}

/* Writes records [from, to) of the trace, the SVM's only from its restart point on. */
static void write_records(struct load *l, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++) {
        const struct trace_record *r = &l->trace.records[i];
        if (!svm_skips(l, r))
            write_all(r->side == 0 ? l->pin : l->sin, r->bytes, r->len);
    }
}

/* After a checkpoint the SVM sends again what it had sent past the PVM's point (the run before `next`). */
static void resend_svm_ahead(struct load *l, size_t next)
{
    size_t from = next;
    while (from > 0 && l->trace.records[from - 1].side == 1)
        from--;
    write_records(l, from, next);
}

/* Between two writes: stops here while a checkpoint is taken. */
static void stop_point(struct load *l, size_t next)
{
    if (!__atomic_load_n(&l->stop_wanted, __ATOMIC_ACQUIRE))
        return;
    pthread_mutex_lock(&l->lock);
    l->stopped = true;
    pthread_cond_broadcast(&l->changed);
    while (l->stop_wanted)
        pthread_cond_wait(&l->changed, &l->lock);
    l->stopped = false;
    pthread_mutex_unlock(&l->lock);
    resend_svm_ahead(l, next);
}

/* Each PVM record at its time, the SVM records after it at once: for latency, not throughput. */
static void write_paced(struct load *l)
{
    double t0 = now_s();
    for (size_t i = 0; i < l->trace.count; i++) {
        const struct trace_record *r = &l->trace.records[i];
        stop_point(l, i);
        if (r->side == 0) {
            sleep_until(t0 + r->pvm_ord / l->rate);
            l->sent_at[r->pvm_ord] = now_s();
        }
        write_records(l, i, i + 1);
        l->pvm_written += r->side == 0;
        note_divergence(l, r->divergent);
    }
}

/* Runs of one side's records (up to RUN_BYTES), each run written at once. */
static void write_runs(struct load *l)
{
    enum { RUN_BYTES = 64 << 10 };
    uint8_t *buf = malloc(RUN_BYTES + 70000);
    size_t i = 0;
    while (i < l->trace.count) {
        stop_point(l, i);
        int side = l->trace.records[i].side;
        size_t n = 0, pvm = 0;
        bool divergent = false;
        for (; i < l->trace.count && l->trace.records[i].side == side && n < RUN_BYTES; i++) {
            const struct trace_record *r = &l->trace.records[i];
            if (svm_skips(l, r))
                continue;
            memcpy(buf + n, r->bytes, r->len);
            n += r->len;
            pvm += side == 0;
            divergent |= r->divergent;
        }
        write_all(side == 0 ? l->pin : l->sin, buf, n);
        l->pvm_written += (uint32_t)pvm;
        note_divergence(l, divergent);
    }
    free(buf);
}

static void *writer(void *arg)
{
    struct load *l = arg;
    if (l->rate > 0)
        write_paced(l);
    else
        write_runs(l);
    pthread_mutex_lock(&l->lock);
    l->writer_done = true;
    pthread_cond_broadcast(&l->changed);
    pthread_mutex_unlock(&l->lock);
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

static void usage(void)
{
    fprintf(stderr, "usage: chardev_load PRIMARY_IN SECONDARY_IN OUTDEV PID --pcap-pvm F --pcap-svm F [--loops L [--first-pass N]]\n"
                    "         [--rate R --latency-file F] [--notify NOTIFY_DEV [--periodic-checkpoint-ms MS]]\n"
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

struct outcome {
    uint64_t released, reordered, foreign, measured;
    double *latency;  /* paced: per released PVM record */
    double last_progress;
};

/* One released record: which PVM record it is, whether its connection's order held, its latency. */
static void take_released(struct load *l, struct outcome *o, uint32_t *last_in_conn, const uint8_t *f, uint32_t len)
{
    int64_t ord = trace_match(&l->trace, f, len);
    if (ord < 0) {
        o->foreign++;
        return;
    }
    o->released++;
    uint32_t conn = trace_pvm(&l->trace, (uint32_t)ord)->conn;
    o->reordered += last_in_conn[conn] > ord + 1;
    last_in_conn[conn] = (uint32_t)ord + 1;
    if (o->latency && l->sent_at[ord] > 0)
        o->latency[o->measured++] = now_s() - l->sent_at[ord];
}

/* Reads outdev until every PVM record came back or nothing came for STALL_S. */
static void read_outdev(struct load *l, struct outcome *o)
{
    enum { BUF = 1 << 22 };
    uint8_t *buf = malloc(BUF);
    uint32_t *last_in_conn = calloc(l->trace.conns + 1, sizeof(uint32_t));
    size_t have = 0;
    struct timeval tv = { 0, 200000 };
    setsockopt(l->out, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    o->last_progress = now_s();
    while (o->released < l->trace.pvm_count && now_s() - o->last_progress < STALL_S) {
        ssize_t n = read(l->out, buf + have, BUF - have);
        if (n <= 0)
            continue;
        have += (size_t)n;
        o->last_progress = now_s();
        size_t off = 0;
        while (have - off >= RECORD_HEADER) {
            const uint8_t *h = buf + off;
            uint32_t len = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
            if (len > BUF - RECORD_HEADER) {
                fprintf(stderr, "chardev_load: outdev sent a record of %u bytes; giving up\n", len);
                goto out;
            }
            if (have - off < RECORD_HEADER + (size_t)len)
                break;
            take_released(l, o, last_in_conn, h + RECORD_HEADER, len);
            off += RECORD_HEADER + len;
        }
        memmove(buf, buf + off, have - off);
        have -= off;
    }
out:
    free(buf);
    free(last_in_conn);
}

int main(int argc, char **argv)
{
    if (argc < 5 || (argc - 5) % 2)
        usage();
    struct load l = { .notify = -1, .lock = PTHREAD_MUTEX_INITIALIZER, .changed = PTHREAD_COND_INITIALIZER,
                      .one_checkpoint = PTHREAD_MUTEX_INITIALIZER };
    const char *latency_file = NULL, *notify = NULL, *pcap_pvm = NULL, *pcap_svm = NULL;
    unsigned loops = 1, first_pass = 0;
    for (int a = 5; a < argc; a += 2) {
        if (strcmp(argv[a], "--rate") == 0)
            l.rate = atof(argv[a + 1]);
        else if (strcmp(argv[a], "--latency-file") == 0)
            latency_file = argv[a + 1];
        else if (strcmp(argv[a], "--notify") == 0)
            notify = argv[a + 1];
        else if (strcmp(argv[a], "--pcap-pvm") == 0)
            pcap_pvm = argv[a + 1];
        else if (strcmp(argv[a], "--pcap-svm") == 0)
            pcap_svm = argv[a + 1];
        else if (strcmp(argv[a], "--periodic-checkpoint-ms") == 0)
            l.periodic_s = atof(argv[a + 1]) / 1000.0;
        else if (strcmp(argv[a], "--first-pass") == 0)
            first_pass = (unsigned)atoi(argv[a + 1]);
        else if (strcmp(argv[a], "--loops") == 0)
            loops = (unsigned)atoi(argv[a + 1]);
        else
            usage();
    }
    if (!pcap_pvm || !pcap_svm || (l.rate > 0) != (latency_file != NULL) || !loops || (l.periodic_s > 0 && !notify))
        usage();
    if (trace_load(&l.trace, pcap_pvm, pcap_svm, first_pass, loops) != 0)
        return 2;
    size_t packets = l.trace.pvm_count ? l.trace.pvm_count : 1;
    struct outcome o = { 0 };
    if (l.rate > 0) {
        l.sent_at = calloc(packets, sizeof(double));
        o.latency = calloc(packets, sizeof(double));
    }
    int pid = atoi(argv[4]);
    l.out = sock_endpoint_connect(argv[3], "chardev_load");
    l.pin = sock_endpoint_connect(argv[1], "chardev_load");
    l.sin = sock_endpoint_connect(argv[2], "chardev_load");
    pthread_t notifier;
    if (notify) {
        l.notify = sock_endpoint_connect(notify, "chardev_load");
        l.request_delay = calloc(packets, sizeof(double));
        pthread_create(&notifier, NULL, notify_main, &l);
        if (l.periodic_s > 0) {
            pthread_t periodic;
            pthread_create(&periodic, NULL, periodic_main, &l);
            pthread_detach(periodic);
        }
    }
    usleep(200000); /* let the target see all its peers */
    double cpu0 = cpu_seconds(pid), t0 = now_s();
    pthread_t w;
    pthread_create(&w, NULL, writer, &l);
    read_outdev(&l, &o);
    double dt = (o.released == l.trace.pvm_count ? o.last_progress : now_s() - STALL_S) - t0;
    double cpu = cpu_seconds(pid) - cpu0;
    printf("%.0f %.2f %lu %lu %lu", (double)o.released / dt, o.released ? cpu / (double)o.released * 1e6 : 0.0,
           (unsigned long)o.released, (unsigned long)o.reordered, (unsigned long)(l.trace.pvm_count - o.released));
    if (o.latency)
        report_latency(o.latency, o.measured, latency_file);
    if (notify)
        printf(" %lu %.1f %lu", (unsigned long)l.requests, median_of(l.request_delay, l.timed) * 1e6,
               (unsigned long)l.periodic_done);
    printf("\n");
    if (o.foreign)
        fprintf(stderr, "foreign %lu\n", (unsigned long)o.foreign);
    pthread_detach(w);
    return 0;
}
