/*
 * replay.c — drives the compare engine from two pcap traces on a virtual clock.
 *
 * Owns: the merge of the two traces by timestamp, the schedule of checkpoint
 * completions (model and recorded), and the collection of what the engine did
 * (release order, divergences, checkpoints) into a `struct replay_result`.
 * With --vnet-hdr, a frame without a plausible header never reaches the engine:
 * it is counted as malformed and a PVM one is released at once, uncompared.
 *
 * The clock only moves forward: each step takes the earliest of the next frame,
 * the next engine deadline (compare timeout, connection expiry) and the next
 * checkpoint completion; equal times run completions first, then timers, then
 * frames, as a live data plane would within one poll iteration. Connection
 * scans in a gap with nothing else due are jumped to the last of them (the
 * engine's colo_compare_skip_idle_scans), so a replay's cost follows its frame
 * count, not its span.
 */
#include "colo/replay.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "colo/checkpoint_times.h"
#include "colo/divergence_report.h"
#include "colo/pcap_port.h"
#include "colo/pkt_parse.h"

#define NS_PER_MS 1000000ull

struct replay_run {
    const struct replay_options *opt;
    struct replay_result *res;
    struct pcap_trace pvm_trace, svm_trace;
    struct colo_pkt *pvm_pkts, *svm_pkts;
    bool *pvm_bad, *svm_bad;     /* no plausible virtio-net header (--vnet-hdr): never compared */
    struct pcap_sink *sink;
    struct colo_compare *engine;
    uint64_t now;
    uint64_t model_done_at;      /* UINT64_MAX: nothing scheduled */
    struct replay_checkpoint *recorded;
    size_t recorded_count, recorded_next;
    size_t ckpt_cap, div_cap;
    bool oom;
    const char *reports_dir;     /* opt->reports_dir once its capture slot exists */
    struct divergence_capture *capture;
    bool report_failed;          /* said once */
};

void replay_options_default(struct replay_options *opt)
{
    memset(opt, 0, sizeof(*opt));
    colo_compare_config_default(&opt->compare);
    opt->compare.max_conns = 1u << 16;
    opt->checkpoint_ms = 90; /* median STOP→RESUME measured on a real pair */
}

static void *grow_array(void *base, size_t *cap, size_t used, size_t elem, bool *oom)
{
    if (used < *cap)
        return base;
    size_t n = *cap ? *cap * 2 : 16;
    void *p = realloc(base, n * elem);
    if (!p) {
        *oom = true;
        return NULL;
    }
    *cap = n;
    return p;
}

static void on_release(void *ctx, struct colo_pkt *pkt, enum release_reason why)
{
    struct replay_run *r = ctx;
    struct replay_result *res = r->res;
    res->release_order[res->released] = (uint32_t)pkt->owner_index;
    res->release_reason[res->released] = (uint8_t)why;
    res->released++;
    if (r->sink) {
        const struct pcap_record *rec = pkt->owner;
        pcap_sink_write(r->sink, r->now, rec->data, rec->len);
    }
}

static void on_discard(void *ctx, struct colo_pkt *pkt)
{
    (void)ctx;
    (void)pkt;
}

static void add_checkpoint(struct replay_run *r, struct replay_checkpoint ck)
{
    struct replay_result *res = r->res;
    struct replay_checkpoint *p = grow_array(res->checkpoints, &r->ckpt_cap,
                                             res->checkpoint_count, sizeof(*p), &r->oom);
    if (!p)
        return;
    res->checkpoints = p;
    res->checkpoints[res->checkpoint_count++] = ck;
}

static void on_request(void *ctx, enum checkpoint_reason why, uint64_t now)
{
    struct replay_run *r = ctx;
    (void)now;
    add_checkpoint(r, (struct replay_checkpoint){
        .requested_ns = r->now, .done_ns = 0, .reason = why, .recorded = false });
    if (r->opt->checkpoint_ms != REPLAY_NO_MODEL)
        r->model_done_at = r->now + (uint64_t)r->opt->checkpoint_ms * NS_PER_MS;
}

static void copy_shown(uint8_t *dst, uint32_t *shown, const uint8_t *src, uint32_t avail)
{
    *shown = src ? (avail < DIVERGENCE_SHOW_BYTES ? avail : DIVERGENCE_SHOW_BYTES) : 0;
    if (*shown)
        memcpy(dst, src, *shown);
}

/* The pcaps' clock is wall-clock time already. */
static void write_report(struct replay_run *r, const struct divergence *d, uint64_t number)
{
    char err[512];
    divergence_capture_fill(r->capture, number, d, r->now, r->now);
    if (divergence_capture_write(r->capture, r->reports_dir, err, sizeof(err)) != 0 && !r->report_failed) {
        fprintf(stderr, "colo-proxy replay: %s\n", err);
        r->report_failed = true;
    }
}

static void on_divergence(void *ctx, const struct divergence *d)
{
    struct replay_run *r = ctx;
    struct replay_result *res = r->res;
    struct replay_divergence *p = grow_array(res->divergences, &r->div_cap,
                                             res->divergence_count, sizeof(*p), &r->oom);
    if (!p)
        return;
    res->divergences = p;
    struct replay_divergence *e = &res->divergences[res->divergence_count++];
    memset(e, 0, sizeof(*e));
    flow_key_format(&d->conn->key, d->conn->guest_is_1, e->flow, sizeof(e->flow));
    e->kind = d->kind;
    e->stream_offset = d->stream_offset;
    e->pvm_frame = d->pvm_pkt ? d->pvm_pkt->owner_index + 1 : 0;
    e->svm_frame = d->svm_pkt ? d->svm_pkt->owner_index + 1 : 0;
    e->time_ns = r->now;
    copy_shown(e->pvm_bytes, &e->pvm_shown, d->pvm_bytes, d->pvm_avail);
    copy_shown(e->svm_bytes, &e->svm_shown, d->svm_bytes, d->svm_avail);
    if (r->reports_dir)
        write_report(r, d, res->divergence_count);
}

static struct colo_pkt *make_packets(const struct pcap_trace *t, uint32_t vnet_len, bool **bad, const char *side,
                                     bool *warned)
{
    struct colo_pkt *pkts = calloc(t->count ? t->count : 1, sizeof(*pkts));
    *bad = calloc(t->count ? t->count : 1, sizeof(**bad));
    if (!pkts || !*bad)
        return NULL;
    for (size_t i = 0; i < t->count; i++) {
        const struct pcap_record *rec = &t->records[i];
        uint32_t skip = rec->len < vnet_len ? rec->len : vnet_len;
        pkts[i].frame = rec->data + skip;
        pkts[i].frame_len = rec->len - skip;
        pkts[i].owner = (void *)rec;
        pkts[i].owner_index = i;
        pkt_parse(pkts[i].frame, pkts[i].frame_len, &pkts[i].view);
        (*bad)[i] = vnet_len && (rec->len < vnet_len || !vnet_hdr_plausible(rec->data, vnet_len, rec->len - skip));
        if ((*bad)[i] && !*warned) {
            fprintf(stderr, "colo-proxy replay: warning: %s frame %zu does not start with a plausible %u-byte "
                    "virtio-net header: was the capture taken with them (--vnet-hdr)? Such frames are counted "
                    "as malformed and never compared\n", side, i + 1, vnet_len);
            *warned = true;
        }
    }
    return pkts;
}

static int load_recorded(struct replay_run *r, const char *path, char *err, size_t errlen)
{
    struct recorded_checkpoint *times;
    size_t n;
    if (checkpoint_times_load(path, &times, &n, err, errlen) != 0)
        return -1;
    r->recorded = calloc(n ? n : 1, sizeof(*r->recorded));
    if (!r->recorded) {
        free(times);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        r->recorded[i] = (struct replay_checkpoint){
            .requested_ns = times[i].begin_ns, .done_ns = times[i].end_ns, .recorded = true };
    r->recorded_count = n;
    free(times);
    return 0;
}

static uint64_t next_done(const struct replay_run *r)
{
    uint64_t t = r->model_done_at;
    if (r->recorded_next < r->recorded_count && r->recorded[r->recorded_next].done_ns < t)
        t = r->recorded[r->recorded_next].done_ns;
    return t;
}

static void complete_checkpoint(struct replay_run *r)
{
    struct replay_result *res = r->res;
    if (r->recorded_next < r->recorded_count && r->recorded[r->recorded_next].done_ns <= r->now) {
        add_checkpoint(r, r->recorded[r->recorded_next++]);
    } else {
        for (size_t i = res->checkpoint_count; i-- > 0;) {
            if (!res->checkpoints[i].recorded && res->checkpoints[i].done_ns == 0) {
                res->checkpoints[i].done_ns = r->now;
                break;
            }
        }
    }
    r->model_done_at = UINT64_MAX; /* any completed checkpoint satisfies the request */
    colo_compare_checkpoint_done(r->engine, r->now);
}

static void advance_clock(struct replay_run *r, uint64_t t)
{
    if (t > r->now)
        r->now = t;
}

/* A frame to the engine; one without a plausible vnet header leaves at once (PVM) or is dropped (SVM). */
static void input_frame(struct replay_run *r, enum colo_side side, struct colo_pkt *p, bool bad_vnet)
{
    if (!bad_vnet) {
        colo_compare_input(r->engine, side, p, r->now);
        return;
    }
    r->res->bad_vnet_frames++;
    if (side == SIDE_PVM) {
        r->res->bad_vnet_pvm_released++;
        on_release(r, p, RELEASE_UNCOMPARED);
    }
}

static void run_events(struct replay_run *r)
{
    size_t i = 0, j = 0, np = r->pvm_trace.count, ns = r->svm_trace.count;
    for (;;) {
        uint64_t tp = i < np ? r->pvm_trace.records[i].ts_ns : UINT64_MAX;
        uint64_t ts = j < ns ? r->svm_trace.records[j].ts_ns : UINT64_MAX;
        uint64_t tframe = tp <= ts ? tp : ts;
        uint64_t tdone = next_done(r);
        colo_compare_skip_idle_scans(r->engine, tdone < tframe ? tdone : tframe);
        uint64_t ttimer = colo_compare_next_deadline(r->engine);
        bool input_left = i < np || j < ns;
        bool held = colo_compare_stats(r->engine)->pvm_held != 0;
        if (!input_left && !held)
            break;
        if (!input_left && tdone == UINT64_MAX && colo_compare_checkpoint_pending(r->engine))
            break; /* nothing will ever complete the checkpoint */
        if (tdone <= tframe && tdone <= ttimer) {
            advance_clock(r, tdone);
            complete_checkpoint(r);
        } else if (ttimer <= tframe) {
            advance_clock(r, ttimer);
            colo_compare_tick(r->engine, r->now);
        } else if (tp <= ts) {
            advance_clock(r, tp);
            input_frame(r, SIDE_PVM, &r->pvm_pkts[i], r->pvm_bad[i]);
            i++;
        } else {
            advance_clock(r, ts);
            input_frame(r, SIDE_SVM, &r->svm_pkts[j], r->svm_bad[j]);
            j++;
        }
    }
    colo_compare_release_all(r->engine);
}

static int setup(struct replay_run *r, char *err, size_t errlen)
{
    const struct replay_options *opt = r->opt;
    if (pcap_trace_load(opt->primary_path, &r->pvm_trace, err, errlen) != 0 ||
        pcap_trace_load(opt->secondary_path, &r->svm_trace, err, errlen) != 0)
        return -1;
    if (opt->checkpoint_times_path && load_recorded(r, opt->checkpoint_times_path, err, errlen) != 0)
        return -1;
    bool warned = false;
    r->pvm_pkts = make_packets(&r->pvm_trace, opt->vnet_hdr_len, &r->pvm_bad, "PVM", &warned);
    r->svm_pkts = make_packets(&r->svm_trace, opt->vnet_hdr_len, &r->svm_bad, "SVM", &warned);
    size_t n = r->pvm_trace.count ? r->pvm_trace.count : 1;
    r->res->release_order = calloc(n, sizeof(uint32_t));
    r->res->release_reason = calloc(n, 1);
    if (!r->pvm_pkts || !r->svm_pkts || !r->pvm_bad || !r->svm_bad || !r->res->release_order || !r->res->release_reason) {
        snprintf(err, errlen, "out of memory for %zu + %zu frames", r->pvm_trace.count,
                 r->svm_trace.count);
        return -1;
    }
    if (opt->output_path && !(r->sink = pcap_sink_open(opt->output_path, err, errlen)))
        return -1;
    static const struct colo_compare_ops ops = {
        .release = on_release,
        .discard = on_discard,
        .request_checkpoint = on_request,
        .divergence = on_divergence,
    };
    r->engine = colo_compare_create(&opt->compare, &ops, r);
    if (!r->engine) {
        snprintf(err, errlen, "cannot allocate a connection table of %u entries; lower --max-conns",
                 opt->compare.max_conns);
        return -1;
    }
    return 0;
}

static void collect(struct replay_run *r)
{
    struct replay_result *res = r->res;
    res->stats = *colo_compare_stats(r->engine);
    res->stats.released[RELEASE_UNCOMPARED] += res->bad_vnet_pvm_released; /* released past the engine */
    res->pvm_frames = r->pvm_trace.count;
    res->svm_frames = r->svm_trace.count;
    const struct conn_table *t = colo_compare_table(r->engine);
    res->bytes_per_conn = colo_compare_bytes_per_conn(r->engine);
    res->conns_created = conn_table_stats(t)->created;
    uint64_t first = UINT64_MAX, last = 0;
    const struct pcap_trace *traces[2] = { &r->pvm_trace, &r->svm_trace };
    for (int k = 0; k < 2; k++) {
        if (traces[k]->count) {
            if (traces[k]->records[0].ts_ns < first)
                first = traces[k]->records[0].ts_ns;
            if (traces[k]->records[traces[k]->count - 1].ts_ns > last)
                last = traces[k]->records[traces[k]->count - 1].ts_ns;
        }
    }
    res->first_ns = first == UINT64_MAX ? 0 : first;
    res->last_ns = last;
}

int replay_run(const struct replay_options *opt, struct replay_result *res, char *err,
               size_t errlen)
{
    struct replay_run r = { .opt = opt, .res = res, .model_done_at = UINT64_MAX };
    memset(res, 0, sizeof(*res));
    int rc = setup(&r, err, errlen);
    if (rc == 0 && opt->reports_dir) {
        r.capture = malloc(sizeof(*r.capture));
        r.reports_dir = r.capture ? opt->reports_dir : NULL;
    }
    if (rc == 0) {
        run_events(&r);
        collect(&r);
        if (r.oom) {
            snprintf(err, errlen, "out of memory while recording the replay's report");
            rc = -1;
        }
    }
    colo_compare_destroy(r.engine);
    pcap_sink_close(r.sink);
    free(r.pvm_pkts);
    free(r.svm_pkts);
    free(r.pvm_bad);
    free(r.svm_bad);
    free(r.recorded);
    free(r.capture);
    pcap_trace_free(&r.pvm_trace);
    pcap_trace_free(&r.svm_trace);
    return rc;
}

void replay_result_free(struct replay_result *res)
{
    free(res->release_order);
    free(res->release_reason);
    free(res->divergences);
    free(res->checkpoints);
    memset(res, 0, sizeof(*res));
}
