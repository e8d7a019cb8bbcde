/*
 * seq_rewrite.h — the secondary's TCP rewriter (QEMU's filter-rewriter, completed).
 *
 * The SVM chose its own ISNs and its own TCP timestamp clock. Everything the
 * client (or an outside server) sends is in the PVM's spaces, and everything the
 * primary compares must be too. So, per connection:
 *   toward the SVM (mirrored ingress from the link):
 *       ack += seq_offset, SACK edges += seq_offset, TSecr += ts_offset
 *   from the SVM (toward the link):
 *       seq -= seq_offset, TSval -= ts_offset  (SACK edges and ack are in the peer's space)
 * with seq_offset = SVM ISN - PVM ISN and ts_offset = SVM TSval - PVM TSval.
 * The SVM's SYN and SYN-ACK keep their own ISN (the primary never compares it).
 *
 * Offsets are learned for connections the client opens (from the client's
 * first ACK, whose ack is PVM ISN + 1 and whose TSecr is the PVM's SYN-ACK
 * TSval) and for connections the guest opens (from the peer's SYN-ACK). A peer
 * segment that arrives before the SVM's SYN-ACK is held (boundedly) until it
 * comes, then rewritten and delivered, so no wrong offset is ever learned.
 * Checksums are updated incrementally (RFC 1624) unless the frame's checksum is
 * left to offload. IPv4 of any header length and IPv6.
 *
 * A checkpoint makes the SVM's TCP state the PVM's: every offset becomes 0 at
 * once (an epoch counter, O(1)). Connections opened later learn new offsets.
 */
#ifndef COLO_SEQ_REWRITE_H
#define COLO_SEQ_REWRITE_H

#include <stdbool.h>
#include <stdint.h>

#include "colo/pkt.h"
#include "colo/tcp_track.h"

struct seq_rewriter_ops {
    void (*to_svm)(void *ctx, struct colo_pkt *pkt);  /* deliver to the SVM port */
    void (*to_link)(void *ctx, struct colo_pkt *pkt); /* send toward the primary */
    void (*drop)(void *ctx, struct colo_pkt *pkt);    /* a held segment given up on */
};

struct seq_rewriter_stats {
    uint64_t to_svm, to_link, rewritten_to_svm, rewritten_to_link;
    uint64_t learned_passive, learned_active;
    uint64_t held_early, released_early, dropped_early;
    uint64_t not_tcp, untracked, checksum_left_to_offload, checkpoints;
};

struct seq_rewriter;

struct seq_rewriter *seq_rewriter_create(uint32_t max_conns, const struct seq_rewriter_ops *ops,
                                         void *ctx);
void seq_rewriter_destroy(struct seq_rewriter *rw);

/*
 * `pkt->view` must be filled by pkt_parse. A frame whose `csum_partial` is set
 * (vnet NEEDS_CSUM, an mbuf TX checksum flag) keeps its checksum untouched.
 */
void seq_rewrite_from_link(struct seq_rewriter *rw, struct colo_pkt *pkt, uint64_t now_ns);
void seq_rewrite_from_svm(struct seq_rewriter *rw, struct colo_pkt *pkt, uint64_t now_ns);

/* Expires quiet connections; drops held segments older than a second. */
void seq_rewriter_tick(struct seq_rewriter *rw, uint64_t now_ns);

/*
 * A checkpoint completed: every offset is 0 from now on. After a failover there
 * are no checkpoints: a STOP/RESUME of the secondary QEMU then (its failover
 * restarts the NIC) changes nothing, and is not counted.
 */
void seq_rewriter_checkpoint_done(struct seq_rewriter *rw);

/*
 * The secondary has taken over: connections known now go on being rewritten
 * (their clients are in the PVM's sequence space for good); connections that
 * start later are the SVM's own and pass untouched, untracked.
 */
void seq_rewriter_failover(struct seq_rewriter *rw);

const struct seq_rewriter_stats *seq_rewriter_stats(const struct seq_rewriter *rw);

/* The arithmetic, exposed for tests. `tcp` points at the TCP header of `tcp_len` bytes. */
uint16_t csum_replace32(uint16_t csum, uint32_t old_value, uint32_t new_value);
void tcp_shift_toward_svm(uint8_t *tcp, uint32_t tcp_len, uint32_t seq_offset,
                          uint32_t ts_offset, bool fix_csum);
void tcp_shift_toward_link(uint8_t *tcp, uint32_t tcp_len, uint32_t seq_offset,
                           uint32_t ts_offset, bool fix_csum);

#endif
