/*
 * replay.h — offline replay: a primary and a secondary pcap through the compare
 * engine, with the pcap timestamps as the clock and a model of checkpoints.
 *
 * The primary trace is what the PVM sent; the secondary trace is what the SVM
 * sent as it would reach the primary host (already seq-rewritten). Both are
 * merged by timestamp (PVM first on ties). Checkpoints complete either by the
 * model ("N ms after the request") or at recorded times (from a real pair's QMP
 * STOP/RESUME), and act exactly like live ones. At the end of the traces, held
 * packets are given their timeouts and checkpoints; whatever is still held after
 * that is released as forced, so every PVM packet is accounted for.
 */
#ifndef COLO_REPLAY_H
#define COLO_REPLAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

#include "colo/compare.h"

#define REPLAY_NO_MODEL UINT32_MAX

struct replay_options {
    const char *primary_path;
    const char *secondary_path;
    const char *output_path;            /* released frames; NULL: none written */
    const char *checkpoint_times_path;  /* recorded "begin end" seconds; NULL: none */
    struct colo_compare_config compare;
    uint32_t checkpoint_ms;             /* model latency, REPLAY_NO_MODEL: recorded only */
    uint32_t vnet_hdr_len;              /* bytes in front of each Ethernet frame */
    const char *reports_dir;            /* a report per divergence (divergence_report.h); NULL: none */
};

struct replay_divergence {
    char flow[160];
    enum divergence_kind kind;
    uint64_t stream_offset;
    uint64_t pvm_frame, svm_frame;      /* 1-based frame numbers in the traces; 0: none */
    uint64_t time_ns;
    uint8_t pvm_bytes[DIVERGENCE_SHOW_BYTES], svm_bytes[DIVERGENCE_SHOW_BYTES];
    uint32_t pvm_shown, svm_shown;
};

struct replay_checkpoint {
    uint64_t requested_ns;              /* 0 when recorded, not requested */
    uint64_t done_ns;
    enum checkpoint_reason reason;
    bool recorded;
};

struct replay_result {
    struct colo_compare_stats stats;
    size_t pvm_frames, svm_frames;
    uint32_t *release_order;            /* PVM frame indices (0-based), in release order */
    uint8_t *release_reason;            /* enum release_reason, parallel */
    size_t released;
    struct replay_divergence *divergences;
    size_t divergence_count;
    struct replay_checkpoint *checkpoints;
    size_t checkpoint_count;
    uint64_t first_ns, last_ns;
    double bytes_per_conn;
    uint64_t conns_created;
    uint64_t bad_vnet_frames;           /* --vnet-hdr: frames (both sides) without a plausible header */
    uint64_t bad_vnet_pvm_released;     /* of them PVM frames, released uncompared (counted in stats) */
};

void replay_options_default(struct replay_options *opt);

/* 0 on success; -1 with a one-line reason in err (unreadable input, bad option). */
int replay_run(const struct replay_options *opt, struct replay_result *res, char *err,
               size_t errlen);
void replay_result_free(struct replay_result *res);

/* Human-readable report, or JSON. */
void replay_report_text(const struct replay_result *res, const struct replay_options *opt,
                        FILE *out);
void replay_report_json(const struct replay_result *res, const struct replay_options *opt,
                        FILE *out);

#endif
