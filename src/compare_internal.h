/*
 * compare_internal.h — what the generic engine (compare.c) and the per-protocol
 * rule sets (compare_tcp.c, compare_datagram.c) share, and nothing else sees.
 *
 * A rule set is a small ops table, in the manner of Open vSwitch's conntrack
 * protocols: the engine queues, times, releases and flushes; a rule set decides
 * what an arriving packet means, compares, and says when a held PVM packet may
 * leave. Adding a protocol means one new file and one table entry.
 */
#ifndef COLO_COMPARE_INTERNAL_H
#define COLO_COMPARE_INTERNAL_H

#include "colo/compare.h"

/* conn_stream.flags */
enum {
    CMPF_DIVERGED = 0x01,  /* stop comparing; hold until the checkpoint */
    CMPF_BASE = 0x02,      /* TCP: cmp_seq/stream_base are set */
    CMPF_SVM_SYN = 0x04,   /* TCP: the SVM's SYN or SYN-ACK arrived */
    CMPF_SVM_RST = 0x08,   /* TCP: the SVM reset the connection */
    CMPF_PVM_RST = 0x10,   /* TCP: a PVM reset is waiting */
    CMPF_SVM_ACK = 0x20,   /* TCP: svm_max_ack holds a real value */
    CMPF_DIRTY = 0x40,     /* touched since the last checkpoint */
    CMPF_PVM_ACK = 0x80,   /* TCP: pvm_max_ack holds a real value */
    CMPF_SYN_SYNCED = 0x100, /* TCP: a checkpoint made the SVM's handshake the PVM's */
    CMPF_SVM_AHEAD = 0x200,  /* TCP: the SVM began a new incarnation (port reuse) first */
    CMPF_LISTED = 0x400,     /* transient: kept once while the dirty list is compacted */
};

/* colo_pkt.cmp_flags */
enum { PKTF_MATCHED = 0x01 };

struct compare_proto {
    const char *name;
    /* A PVM packet was appended to the connection's queue. */
    void (*pvm_arrived)(struct colo_compare *c, struct conn *conn, struct colo_pkt *pkt);
    /* Queue the SVM packet for comparison, or hand it back with compare_svm_done. */
    void (*svm_arrived)(struct colo_compare *c, struct conn *conn, struct colo_pkt *pkt);
    /* Compare what can be compared; call compare_diverge on a difference. */
    void (*advance)(struct colo_compare *c, struct conn *conn);
    /* May this PVM packet, at the head of its queue, leave now? */
    bool (*releasable)(const struct conn *conn, const struct colo_pkt *pkt,
                       enum release_reason *why);
    /* After a checkpoint: restart comparison from the PVM's next byte. */
    void (*resync)(struct conn *conn);
};

extern const struct compare_proto compare_proto_tcp;
extern const struct compare_proto compare_proto_datagram;

/* Services of the generic engine for the rule sets. */
void compare_diverge(struct colo_compare *c, struct conn *conn, struct divergence *d);
void compare_svm_link(struct colo_compare *c, struct conn *conn, struct colo_pkt *after,
                      struct colo_pkt *pkt);
void compare_svm_unlink_head(struct colo_compare *c, struct conn *conn);
enum svm_fate { SVM_MATCHED, SVM_STALE, SVM_UNCOMPARED };
void compare_svm_done(struct colo_compare *c, struct colo_pkt *pkt, enum svm_fate fate);

static inline bool seq_lt(uint32_t a, uint32_t b) { return (int32_t)(a - b) < 0; }
static inline bool seq_leq(uint32_t a, uint32_t b) { return (int32_t)(a - b) <= 0; }
static inline uint32_t seq_max(uint32_t a, uint32_t b) { return seq_lt(a, b) ? b : a; }

#endif
