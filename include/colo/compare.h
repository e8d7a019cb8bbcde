/*
 * compare.h — the compare engine: per-connection PVM/SVM queues, the comparison
 * rules, and release / hold / checkpoint decisions.
 *
 * The caller parses each packet (pkt_parse) and hands it in with its side and a
 * monotonic time. The engine keeps PVM packets until they may leave and hands
 * them back through `release`, always in per-connection arrival order; it hands
 * SVM packets back through `discard` once they are compared or stale. It never
 * drops a PVM packet: a packet leaves after a match, after a checkpoint, at a
 * failover, or by `colo_compare_release_all` (shutdown, end of a replay).
 *
 * Failover (`colo_compare_go_alone`: the secondary is gone) releases every held
 * PVM packet in arrival order and from then on the engine compares nothing: PVM
 * packets leave as they come, SVM packets are discarded, no checkpoint is ever
 * requested. `colo_compare_rejoin` starts comparing again for a new secondary.
 *
 * A checkpoint is requested (through `request_checkpoint`) on a divergence, a
 * PVM packet held longer than compare_timeout, a full queue, or a full table —
 * once per episode: no further request is made until `colo_compare_checkpoint_done`
 * is called — and, with checkpoint_min_interval_ms, never sooner than that after the
 * previous request: a request due earlier waits for the interval (on a tick) and is
 * counted as deferred. That call releases every held PVM packet, discards every held SVM
 * packet and resynchronises each connection so stale SVM data causes no false
 * divergence. With a secondary that marks its output with epochs (one per SVM
 * resume, `pkt->epoch`), `colo_compare_checkpoint_done_epoch` discards only the SVM
 * packets of the epochs the checkpoint made stale, now and when they arrive later,
 * and keeps the SVM's output after its resume for comparison. The rules themselves, and where they differ from QEMU's colo-compare,
 * are in docs/compare-rules.md and docs/qemu-faults.md.
 */
#ifndef COLO_COMPARE_H
#define COLO_COMPARE_H

#include <stdint.h>

#include "colo/bypass.h"
#include "colo/latency_hist.h"
#include "colo/pkt.h"
#include "colo/tcp_track.h"

struct colo_compare_config {
    uint32_t compare_timeout_ms;    /* QEMU's name; default 3000 */
    uint32_t expired_scan_cycle_ms; /* QEMU's name; here: how often idle connections expire */
    uint32_t max_queue_size;        /* QEMU's name; per connection and side, default 1024 */
    uint32_t max_conns;             /* connection table size, default 1048576 */
    uint32_t checkpoint_min_interval_ms; /* requests at most this often; 0 (default): no limit */
    struct conn_timeouts timeouts;
    struct bypass_rules bypass;     /* flows left uncompared (bypass.h); none by default */
};

enum checkpoint_reason {
    CKPT_DIVERGENCE = 0,
    CKPT_TIMEOUT,
    CKPT_QUEUE_FULL,
    CKPT_TABLE_FULL,
    CKPT_POOL_LOW,    /* the packet buffers are running out (data plane) */
    CKPT_SHUTDOWN,    /* a clean shutdown wants the held packets released safely */
    CKPT_REASON_COUNT
};

enum release_reason {
    RELEASE_MATCHED = 0,  /* compared equal with the SVM's output */
    RELEASE_UNCOMPARED,   /* carries nothing to compare: pure ACK, verified retransmit */
    RELEASE_CHECKPOINT,   /* held, then flushed by a checkpoint */
    RELEASE_FORCED,       /* colo_compare_release_all: shutdown, end of a replay, run mode's failover */
    RELEASE_BYPASSED,     /* its flow matches a bypass rule: never compared */
    RELEASE_FAILOVER,     /* held when the secondary was lost, released at once */
    RELEASE_ALONE,        /* came after the secondary was lost: passed straight */
    RELEASE_REASON_COUNT
};

enum divergence_kind {
    DIV_PAYLOAD = 0,     /* stream or datagram bytes differ */
    DIV_FIN_VS_DATA,     /* one side ends the stream where the other sends data */
    DIV_RST,             /* one side resets, the other closes or carries on */
    DIV_DATAGRAM_LEN,    /* datagrams of different length */
    DIV_KIND_COUNT
};

#define DIVERGENCE_SHOW_BYTES 16

struct divergence {
    const struct conn *conn;   /* NULL never; key and direction for the report */
    enum divergence_kind kind;
    uint64_t stream_offset;    /* TCP: byte offset from the stream start; else datagram index */
    uint32_t byte_in_packet;   /* first differing byte, from the compared start */
    const struct colo_pkt *pvm_pkt, *svm_pkt;
    const uint8_t *pvm_bytes, *svm_bytes; /* from the first differing byte */
    uint32_t pvm_avail, svm_avail;        /* bytes readable there */
};

struct colo_compare_ops {
    void (*release)(void *ctx, struct colo_pkt *pkt, enum release_reason why);
    void (*discard)(void *ctx, struct colo_pkt *pkt);
    void (*request_checkpoint)(void *ctx, enum checkpoint_reason why, uint64_t now_ns);
    void (*divergence)(void *ctx, const struct divergence *d); /* may be NULL */
};

struct colo_compare_stats {
    uint64_t pvm_in, svm_in;
    uint64_t released[RELEASE_REASON_COUNT];
    uint64_t svm_matched, svm_stale, svm_uncompared, svm_flushed, svm_untracked;
    uint64_t svm_stale_epoch;            /* SVM packets of a stale epoch, discarded on arrival */
    uint64_t svm_kept_new_epoch;         /* SVM packets of a newer epoch kept through a checkpoint */
    uint64_t divergences[DIV_KIND_COUNT];
    uint64_t checkpoint_requests[CKPT_REASON_COUNT];
    uint64_t checkpoint_requests_deferred; /* episodes that waited for checkpoint_min_interval */
    uint64_t checkpoints_done;
    uint64_t malformed[PARSE_STATUS_COUNT];
    uint64_t pvm_held, svm_held;  /* now */
    uint64_t pvm_held_max;
    uint64_t svm_bypassed;               /* SVM frames of bypassed flows, discarded */
    uint64_t svm_alone;                  /* SVM frames that came after a failover, discarded */
    uint64_t failovers;                  /* times the engine went alone */
    uint64_t bypass_hits[BYPASS_MAX_RULES]; /* frames (both sides) per rule */
    struct latency_hist hold;            /* arrival to release, every released PVM packet */
    struct latency_hist checkpoint_wait; /* a request to its checkpoint's completion */
};

struct colo_compare;

void colo_compare_config_default(struct colo_compare_config *cfg);

/* NULL when the table cannot be allocated. */
struct colo_compare *colo_compare_create(const struct colo_compare_config *cfg,
                                         const struct colo_compare_ops *ops, void *ctx);
void colo_compare_destroy(struct colo_compare *c);

/* `pkt->view` must already be filled by pkt_parse. Time must not go backwards. */
void colo_compare_input(struct colo_compare *c, enum colo_side side, struct colo_pkt *pkt,
                        uint64_t now_ns);
void colo_compare_input_burst(struct colo_compare *c, enum colo_side side,
                              struct colo_pkt **pkts, unsigned n, uint64_t now_ns);

/* Runs timers due at now_ns: compare timeouts and connection expiry. */
void colo_compare_tick(struct colo_compare *c, uint64_t now_ns);

/* The earliest time colo_compare_tick has work; UINT64_MAX when none. */
uint64_t colo_compare_next_deadline(const struct colo_compare *c);

/*
 * For a caller that knows nothing reaches the engine before `until` (replay's
 * next frame or checkpoint completion): of the connection scans due before
 * then, only the last can expire anything (each expires what is due by its own
 * time, and nothing arrives in between to keep a connection alive), so the scan
 * deadline moves to the last one at or before `until` (or before the next other
 * deadline, if sooner). A gap then costs one scan however long it is; more than
 * 65536 connections falling due in it expire over the scans that follow.
 */
void colo_compare_skip_idle_scans(struct colo_compare *c, uint64_t until);

void colo_compare_checkpoint_done(struct colo_compare *c, uint64_t now_ns);

/*
 * A checkpoint completed, the SVM's output marked with epochs: every held PVM packet
 * is released; the SVM packets of epochs up to stale_through (sent before the SVM
 * resumed from this checkpoint) are discarded, now and whenever one arrives later;
 * those of newer epochs (the SVM's output after it resumed) stay queued and are
 * compared with the PVM's output after it resumes. Epochs compare in serial order.
 */
void colo_compare_checkpoint_done_epoch(struct colo_compare *c, uint64_t now_ns, uint32_t stale_through);

/* A reason from outside the rules (buffers, shutdown); latched like the others. */
void colo_compare_request_checkpoint(struct colo_compare *c, enum checkpoint_reason why,
                                     uint64_t now_ns);

/* Releases every held PVM packet, drops every SVM packet (per connection); for shutdown, the end of a
 * replay, and run mode's failover (which then bypasses the engine). */
void colo_compare_release_all(struct colo_compare *c);

/*
 * The secondary is gone: releases every held PVM packet in arrival order (across
 * connections too), drops every SVM packet, and passes every later PVM packet
 * straight (RELEASE_ALONE); nothing is compared or requested any more. Returns
 * how many were released; a second call does nothing and returns 0.
 */
uint64_t colo_compare_go_alone(struct colo_compare *c, uint64_t now_ns);
bool colo_compare_alone(const struct colo_compare *c);

/*
 * A new secondary took over from the replication's start (nothing is held while
 * alone): compares again, from a fresh connection table, so streams passed
 * uncompared leave no stale positions. -1 (and still alone) when the table
 * cannot be allocated.
 */
int colo_compare_rejoin(struct colo_compare *c);

bool colo_compare_checkpoint_pending(const struct colo_compare *c);

/*
 * New bypass rules (counts restart from zero). They take effect at once when no
 * PVM packet is held, else after the next checkpoint or release_all, so a flow
 * that changes sides never overtakes its own held packets.
 */
void colo_compare_set_bypass(struct colo_compare *c, const struct bypass_rules *rules);
/* The rules in effect now (their counts are stats.bypass_hits). */
const struct bypass_rules *colo_compare_bypass(const struct colo_compare *c);

const struct colo_compare_stats *colo_compare_stats(const struct colo_compare *c);
const struct conn_table *colo_compare_table(const struct colo_compare *c);
/*
 * Memory allocated at creation per connection of capacity (max_conns): the table's
 * entry and share of lookup slots plus the engine's share of the checkpoint list.
 * Allocated once, whether the connections are used or not.
 */
double colo_compare_bytes_per_conn(const struct colo_compare *c);

const char *checkpoint_reason_name(enum checkpoint_reason r);
const char *release_reason_name(enum release_reason r);
const char *divergence_kind_name(enum divergence_kind k);

#endif
