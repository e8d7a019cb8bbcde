/*
 * divergence_report.h — what colo-proxy keeps of a divergence for a person to read.
 *
 * A report is three files in the report directory, named by a number:
 *   divergence-N.txt       the connection, kind, stream offset, time, and where the
 *                          first differing byte is (a GKeyFile, [divergence] group)
 *   divergence-N-pvm.pcap  the PVM's packets of that connection held at the time,
 *   divergence-N-svm.pcap  and the SVM's (Ethernet frames; Wireshark opens them)
 * and `colo-proxy explain` reads them back (divergence_explain.h).
 *
 * It is made in two steps so the DPDK lcore can take part: capture copies what
 * is needed out of the engine's divergence into a preallocated slot (no system
 * call, no allocation), and write puts a capture on disk and makes its log line.
 * A limiter keeps both to a number per minute and counts what it suppressed.
 */
#ifndef COLO_DIVERGENCE_REPORT_H
#define COLO_DIVERGENCE_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "colo/compare.h"

#define DIVCAP_FRAMES_PER_SIDE 8
#define DIVCAP_BLOB (256u << 10)

enum divcap_side { DIVCAP_PVM, DIVCAP_SVM };

struct divcap_frame {
    uint8_t side;        /* enum divcap_side */
    bool diverging;      /* the packet where the difference was found */
    uint32_t off, len;   /* in the capture's blob */
    uint64_t ts_unix_ns;
};

struct divergence_capture {
    uint64_t number;               /* 1-based, per process */
    uint64_t at_unix_ns;
    char flow[160];
    enum divergence_kind kind;
    uint64_t stream_offset;
    int64_t diff_at[2];            /* per side: frame offset of the first differing byte; -1: none */
    unsigned n_frames;
    struct divcap_frame frames[2 * DIVCAP_FRAMES_PER_SIDE];
    uint32_t blob_used;
    uint8_t blob[DIVCAP_BLOB];
};

struct divergence_limiter {
    uint32_t per_minute;           /* 0: no limit */
    uint64_t window_start_ns;
    uint32_t in_window;
    uint64_t suppressed, suppressed_unlogged;
};

/* May a divergence at now_ns be reported? Counts it as suppressed when not. */
bool divergence_limiter_allow(struct divergence_limiter *l, uint64_t now_ns);

/*
 * Copies d into cap: the diverging packets and the others the connection holds
 * (up to DIVCAP_FRAMES_PER_SIDE a side, within DIVCAP_BLOB bytes). now_ns is the
 * engine's clock, now_unix_ns the wall clock at the same moment.
 */
void divergence_capture_fill(struct divergence_capture *cap, uint64_t number, const struct divergence *d,
                             uint64_t now_ns, uint64_t now_unix_ns);

/* The log line for cap (no newline). */
void divergence_capture_describe(const struct divergence_capture *cap, char *line, size_t len);

/* Writes cap's three files into dir; -1 with a one-line reason. */
int divergence_capture_write(const struct divergence_capture *cap, const char *dir, char *err, size_t errlen);

/* Is dir a directory this process can write reports into? -1 with why. */
int divergence_report_check_dir(const char *dir, char *err, size_t errlen);

struct divergence_report_stats {
    uint64_t reported, written, write_failed;
};

/*
 * Publishes cap: writes its files when dir is set, counts, and makes the log
 * line, which names the report file (or why it could not be written).
 */
void divergence_report_publish(const struct divergence_capture *cap, const char *dir,
                               struct divergence_report_stats *st, char *line, size_t len);

#endif
