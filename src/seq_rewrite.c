/*
 * seq_rewrite.c — learning and applying the secondary's sequence and timestamp offsets.
 *
 * Owns: a connection table (its entries' `rewrite` state), the per-connection
 * queue of peer segments held until the SVM's SYN-ACK, and the checkpoint
 * epoch. Rewrites frames in place; the caller owns them and gets each back
 * exactly once through to_svm, to_link or drop. Non-TCP frames pass unchanged.
 * Must never: learn an offset from a segment that does not acknowledge a SYN,
 * or read TCP options past the header.
 */
#include "colo/seq_rewrite.h"

#include <stdlib.h>
#include <string.h>

#include "colo/byte_order.h"
#include "colo/pkt_parse.h"

#define MAX_HELD_PER_CONN 16
#define MAX_HOLDING_CONNS 4096
#define HELD_TIMEOUT_NS 1000000000ull
#define EXPIRE_BUDGET 65536
#define TCPOPT_EOL 0
#define TCPOPT_NOP 1
#define TCPOPT_SACK 5
#define TCPOPT_TIMESTAMP 8

enum {
    RWF_CLIENT_SYN = 0x01, /* the peer opened: a client SYN went to the SVM */
    RWF_SVM_SYN = 0x02,    /* the SVM's SYN or SYN-ACK went by: svm_isn is known */
    RWF_LEARNED = 0x04,    /* offsets are known (in `epoch`) */
    RWF_SVM_OPENED = 0x08, /* the guest opened: the SVM sent a plain SYN */
};

struct seq_rewriter {
    struct conn_table *table;
    struct seq_rewriter_ops ops;
    void *ctx;
    uint32_t epoch;
    uint64_t next_expiry_ns;
    uint32_t holding[MAX_HOLDING_CONNS]; /* ids of connections that hold segments */
    uint32_t holding_count;
    bool failed_over;  /* the secondary serves alone: only connections known before go on being rewritten */
    struct seq_rewriter_stats stats;
};

/* ---- arithmetic ---- */

/* RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'), for each 16-bit half of a 32-bit field. */
static uint16_t csum_replace16(uint16_t csum, uint16_t old_value, uint16_t new_value)
{
    uint32_t sum = (uint16_t)~csum + (uint32_t)(uint16_t)~old_value + new_value;
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}

uint16_t csum_replace32(uint16_t csum, uint32_t old_value, uint32_t new_value)
{
    csum = csum_replace16(csum, (uint16_t)(old_value >> 16), (uint16_t)(new_value >> 16));
    return csum_replace16(csum, (uint16_t)old_value, (uint16_t)new_value);
}

/*
 * Replaces a 32-bit field at an offset from the TCP header. Fields at odd
 * 16-bit alignment (options can be anywhere) are folded by byte position, which
 * the one's-complement sum allows: a byte-swapped sum is the sum of swapped words.
 */
static void replace32(uint8_t *tcp, uint32_t off, uint32_t value, bool fix_csum)
{
    uint32_t old = get_be32(tcp + off);
    if (old == value)
        return;
    put_be32(tcp + off, value);
    if (!fix_csum)
        return;
    uint16_t csum = (uint16_t)(tcp[16] << 8 | tcp[17]);
    if (off % 2 == 0) {
        csum = csum_replace32(csum, old, value);
    } else {
        /* Odd offset: the field straddles words as [x o0][o1 o2][o3 y]. */
        uint8_t before = tcp[off - 1], after = tcp[off + 4];
        uint16_t o1 = (uint16_t)(before << 8 | (uint8_t)(old >> 24));
        uint16_t n1 = (uint16_t)(before << 8 | (uint8_t)(value >> 24));
        uint16_t o2 = (uint16_t)(old >> 8);
        uint16_t n2 = (uint16_t)(value >> 8);
        uint16_t o3 = (uint16_t)((uint8_t)old << 8 | after);
        uint16_t n3 = (uint16_t)((uint8_t)value << 8 | after);
        csum = csum_replace16(csum, o1, n1);
        csum = csum_replace16(csum, o2, n2);
        csum = csum_replace16(csum, o3, n3);
    }
    tcp[16] = (uint8_t)(csum >> 8);
    tcp[17] = (uint8_t)csum;
}

static void add32(uint8_t *tcp, uint32_t off, uint32_t delta, bool fix_csum)
{
    replace32(tcp, off, get_be32(tcp + off) + delta, fix_csum);
}

enum shift_dir { TOWARD_SVM, TOWARD_LINK };

/* Walks the options; shifts SACK edges (toward the SVM) and the timestamp field. */
static void shift_options(uint8_t *tcp, uint32_t hdr_len, enum shift_dir dir, uint32_t seq_off,
                          uint32_t ts_off, bool fix_csum)
{
    uint32_t off = 20;
    while (off < hdr_len) {
        uint8_t kind = tcp[off];
        if (kind == TCPOPT_EOL)
            return;
        if (kind == TCPOPT_NOP) {
            off++;
            continue;
        }
        if (off + 1 >= hdr_len || tcp[off + 1] < 2 || off + tcp[off + 1] > hdr_len)
            return; /* malformed: leave the rest alone */
        uint32_t len = tcp[off + 1];
        if (kind == TCPOPT_SACK && dir == TOWARD_SVM) {
            for (uint32_t b = off + 2; b + 8 <= off + len; b += 8) {
                add32(tcp, b, seq_off, fix_csum);
                add32(tcp, b + 4, seq_off, fix_csum);
            }
        } else if (kind == TCPOPT_TIMESTAMP && len == 10) {
            if (dir == TOWARD_SVM)
                add32(tcp, off + 6, ts_off, fix_csum);      /* TSecr */
            else
                add32(tcp, off + 2, (uint32_t)-ts_off, fix_csum); /* TSval */
        }
        off += len;
    }
}

static uint32_t tcp_header_len(const uint8_t *tcp, uint32_t tcp_len)
{
    uint32_t hl = (uint32_t)(tcp[12] >> 4) * 4;
    return hl >= 20 && hl <= tcp_len ? hl : 0;
}

void tcp_shift_toward_svm(uint8_t *tcp, uint32_t tcp_len, uint32_t seq_off, uint32_t ts_off,
                          bool fix_csum)
{
    uint32_t hl = tcp_header_len(tcp, tcp_len);
    if (!hl)
        return;
    if (tcp[13] & TCPF_ACK)
        add32(tcp, 8, seq_off, fix_csum);
    shift_options(tcp, hl, TOWARD_SVM, seq_off, ts_off, fix_csum);
}

void tcp_shift_toward_link(uint8_t *tcp, uint32_t tcp_len, uint32_t seq_off, uint32_t ts_off,
                           bool fix_csum)
{
    uint32_t hl = tcp_header_len(tcp, tcp_len);
    if (!hl)
        return;
    if (!(tcp[13] & TCPF_SYN))
        add32(tcp, 4, (uint32_t)-seq_off, fix_csum);
    shift_options(tcp, hl, TOWARD_LINK, seq_off, ts_off, fix_csum);
}

/* The TSval (toward-link) or TSecr (from the peer) of a segment, if it has one. */
static bool find_timestamp(const uint8_t *tcp, uint32_t tcp_len, bool echo, uint32_t *value)
{
    uint32_t hl = tcp_header_len(tcp, tcp_len);
    for (uint32_t off = 20; off < hl;) {
        uint8_t kind = tcp[off];
        if (kind == TCPOPT_EOL)
            return false;
        if (kind == TCPOPT_NOP) {
            off++;
            continue;
        }
        if (off + 1 >= hl || tcp[off + 1] < 2 || off + tcp[off + 1] > hl)
            return false;
        if (kind == TCPOPT_TIMESTAMP && tcp[off + 1] == 10) {
            *value = get_be32(tcp + off + (echo ? 6 : 2));
            return true;
        }
        off += tcp[off + 1];
    }
    return false;
}

/* ---- per-connection state ---- */

static bool holds_segments(const struct conn *c)
{
    (void)c;
    return false; /* held segments are the peer's: its TCP retransmits them */
}

static void drop_held(void *ctx, struct conn *c)
{
    struct seq_rewriter *rw = ctx;
    while (c->rewrite.held_head) {
        struct colo_pkt *p = c->rewrite.held_head;
        c->rewrite.held_head = p->next;
        p->next = NULL;
        rw->stats.dropped_early++;
        rw->ops.drop(rw->ctx, p);
    }
    c->rewrite.held_tail = NULL;
    c->rewrite.held_count = 0;
}

struct seq_rewriter *seq_rewriter_create(uint32_t max_conns, const struct seq_rewriter_ops *ops,
                                         void *ctx)
{
    struct seq_rewriter *rw = calloc(1, sizeof(*rw));
    if (!rw)
        return NULL;
    struct conn_timeouts t;
    conn_timeouts_default(&t);
    rw->ops = *ops;
    rw->ctx = ctx;
    rw->epoch = 1;
    rw->table = conn_table_create(max_conns, &t, holds_segments, drop_held, rw);
    if (!rw->table) {
        free(rw);
        return NULL;
    }
    return rw;
}

static void drop_all_held(void *ctx, struct conn *c)
{
    drop_held(ctx, c);
}

void seq_rewriter_destroy(struct seq_rewriter *rw)
{
    if (!rw)
        return;
    conn_table_foreach(rw->table, drop_all_held, rw);
    conn_table_destroy(rw->table);
    free(rw);
}

static bool offsets_known(const struct seq_rewriter *rw, const struct conn_rewrite *r)
{
    return (r->flags & RWF_LEARNED) && r->epoch == rw->epoch;
}

static uint8_t *tcp_of(struct colo_pkt *p)
{
    return p->frame + p->view.l4_off;
}

static uint32_t tcp_len_of(const struct colo_pkt *p)
{
    return p->view.l3_end - p->view.l4_off;
}

/* The peer acknowledged the guest's SYN: ack = PVM ISN + 1, TSecr = the PVM's TSval. */
static void learn(struct seq_rewriter *rw, struct conn_rewrite *r, struct colo_pkt *p)
{
    r->seq_offset = r->svm_isn - (p->view.tcp_ack - 1);
    uint32_t tsecr;
    r->ts_offset = find_timestamp(tcp_of(p), tcp_len_of(p), true, &tsecr) ? r->svm_syn_tsval - tsecr : 0;
    r->flags |= RWF_LEARNED;
    r->epoch = rw->epoch;
    if (r->flags & RWF_SVM_OPENED)
        rw->stats.learned_active++;
    else
        rw->stats.learned_passive++;
}

static void deliver_to_svm(struct seq_rewriter *rw, struct conn_rewrite *r, struct colo_pkt *p)
{
    if (offsets_known(rw, r) && (r->seq_offset || r->ts_offset)) {
        tcp_shift_toward_svm(tcp_of(p), tcp_len_of(p), r->seq_offset, r->ts_offset, !p->csum_partial);
        rw->stats.rewritten_to_svm++;
    }
    if (p->csum_partial)
        rw->stats.checksum_left_to_offload++;
    rw->stats.to_svm++;
    rw->ops.to_svm(rw->ctx, p);
}

static void hold(struct seq_rewriter *rw, struct conn *c, struct colo_pkt *p, uint64_t now_ns)
{
    struct conn_rewrite *r = &c->rewrite;
    if (r->held_count == MAX_HELD_PER_CONN ||
        (r->held_count == 0 && rw->holding_count == MAX_HOLDING_CONNS)) {
        rw->stats.dropped_early++;
        rw->ops.drop(rw->ctx, p);
        return;
    }
    if (r->held_count == 0)
        rw->holding[rw->holding_count++] = conn_id(rw->table, c);
    p->next = NULL;
    p->arrival_ns = now_ns;
    if (r->held_tail)
        r->held_tail->next = p;
    else
        r->held_head = p;
    r->held_tail = p;
    r->held_count++;
    rw->stats.held_early++;
}

/* The SVM's SYN-ACK went out: segments the client sent too early can go now. */
static void release_held(struct seq_rewriter *rw, struct conn_rewrite *r)
{
    while (r->held_head) {
        struct colo_pkt *p = r->held_head;
        r->held_head = p->next;
        p->next = NULL;
        r->held_count--;
        if (!offsets_known(rw, r) && (p->view.tcp_flags & TCPF_ACK))
            learn(rw, r, p);
        rw->stats.released_early++;
        deliver_to_svm(rw, r, p);
    }
    r->held_tail = NULL;
}

static struct conn *conn_for(struct seq_rewriter *rw, struct colo_pkt *p, uint64_t now_ns)
{
    const struct flow_key *k = &p->view.key;
    if (rw->failed_over) /* new connections are the SVM's own: nothing to rewrite */
        return conn_lookup(rw->table, k, conn_hash(rw->table, k));
    return conn_lookup_or_create(rw->table, k, conn_hash(rw->table, k), (uint32_t)(now_ns / 1000000000ull));
}

static bool is_tcp(const struct colo_pkt *p)
{
    const struct flow_key *k = &p->view.key;
    return p->view.status == PARSE_OK && k->family != FAMILY_OTHER && k->proto == 6 && !k->fragment;
}

/* ---- the two directions ---- */

void seq_rewrite_from_link(struct seq_rewriter *rw, struct colo_pkt *p, uint64_t now_ns)
{
    if (!is_tcp(p)) {
        rw->stats.not_tcp++;
        rw->stats.to_svm++;
        rw->ops.to_svm(rw->ctx, p);
        return;
    }
    struct conn *c = conn_for(rw, p, now_ns);
    if (!c) {
        rw->stats.untracked++;
        rw->stats.to_svm++;
        rw->ops.to_svm(rw->ctx, p);
        return;
    }
    struct conn_rewrite *r = &c->rewrite;
    uint8_t flags = p->view.tcp_flags;
    conn_observe_tcp(rw->table, c, flags, false, (uint32_t)(now_ns / 1000000000ull));
    if ((flags & TCPF_SYN) && !(flags & TCPF_ACK) && rw->failed_over) {
        /* A port reused after the failover: a connection of the SVM's own, never rewritten. */
        drop_held(rw, c);
        r->flags = 0;
        r->seq_offset = r->ts_offset = 0;
    } else if ((flags & TCPF_SYN) && !(flags & TCPF_ACK)) {
        /* A client SYN (perhaps reusing a port): a new passive open. */
        drop_held(rw, c);
        r->flags = RWF_CLIENT_SYN;
        r->epoch = rw->epoch;
    } else if (!offsets_known(rw, r) && (flags & TCPF_ACK) && (r->flags & RWF_SVM_SYN) &&
               r->epoch == rw->epoch) {
        learn(rw, r, p);
    } else if (!offsets_known(rw, r) && (r->flags & RWF_CLIENT_SYN) && !(r->flags & RWF_SVM_SYN) &&
               r->epoch == rw->epoch) {
        hold(rw, c, p, now_ns);
        return;
    }
    deliver_to_svm(rw, r, p);
}

/* The SVM's SYN or SYN-ACK: its own ISN, and the start of a handshake to learn from. */
static void svm_syn(struct seq_rewriter *rw, struct conn_rewrite *r, struct colo_pkt *p)
{
    bool retransmission = (r->flags & RWF_SVM_SYN) && r->svm_isn == p->view.tcp_seq &&
                          r->epoch == rw->epoch;
    if (retransmission)
        return;
    if (!(p->view.tcp_flags & TCPF_ACK))
        r->flags = RWF_SVM_OPENED;
    r->flags = (uint8_t)((r->flags & ~RWF_LEARNED) | RWF_SVM_SYN);
    r->svm_isn = p->view.tcp_seq;
    r->svm_syn_tsval = 0;
    find_timestamp(tcp_of(p), tcp_len_of(p), false, &r->svm_syn_tsval);
    r->epoch = rw->epoch;
}

void seq_rewrite_from_svm(struct seq_rewriter *rw, struct colo_pkt *p, uint64_t now_ns)
{
    struct conn *c = is_tcp(p) ? conn_for(rw, p, now_ns) : NULL;
    if (c) {
        struct conn_rewrite *r = &c->rewrite;
        uint8_t flags = p->view.tcp_flags;
        conn_observe_tcp(rw->table, c, flags, true, (uint32_t)(now_ns / 1000000000ull));
        if (flags & TCPF_SYN) {
            svm_syn(rw, r, p);
        } else if (offsets_known(rw, r) && (r->seq_offset || r->ts_offset)) {
            tcp_shift_toward_link(tcp_of(p), tcp_len_of(p), r->seq_offset, r->ts_offset,
                                  !p->csum_partial);
            rw->stats.rewritten_to_link++;
        }
        if (p->csum_partial)
            rw->stats.checksum_left_to_offload++;
        rw->stats.to_link++;
        rw->ops.to_link(rw->ctx, p);
        if ((flags & TCPF_SYN) && (flags & TCPF_ACK))
            release_held(rw, r);
        return;
    }
    rw->stats.not_tcp += !is_tcp(p);
    rw->stats.untracked += is_tcp(p);
    rw->stats.to_link++;
    rw->ops.to_link(rw->ctx, p);
}

/* Gives up on segments held for a second (the peer retransmits them); keeps the rest listed. */
static void drop_stale_held(struct seq_rewriter *rw, uint64_t now_ns)
{
    uint32_t kept = 0;
    for (uint32_t i = 0; i < rw->holding_count; i++) {
        struct conn *c = conn_by_id(rw->table, rw->holding[i]);
        if (!c || !c->rewrite.held_head)
            continue;
        if (now_ns - c->rewrite.held_head->arrival_ns >= HELD_TIMEOUT_NS)
            drop_held(rw, c);
        else
            rw->holding[kept++] = rw->holding[i];
    }
    rw->holding_count = kept;
}

void seq_rewriter_tick(struct seq_rewriter *rw, uint64_t now_ns)
{
    if (now_ns < rw->next_expiry_ns)
        return;
    rw->next_expiry_ns = now_ns + HELD_TIMEOUT_NS / 4;
    conn_table_expire(rw->table, (uint32_t)(now_ns / 1000000000ull), EXPIRE_BUDGET);
    drop_stale_held(rw, now_ns);
}

void seq_rewriter_failover(struct seq_rewriter *rw)
{
    rw->failed_over = true;
}

void seq_rewriter_checkpoint_done(struct seq_rewriter *rw)
{
    if (rw->failed_over) /* the SVM's state is its own for good: the offsets stand */
        return;
    rw->epoch++;
    rw->stats.checkpoints++;
}

const struct seq_rewriter_stats *seq_rewriter_stats(const struct seq_rewriter *rw)
{
    return &rw->stats;
}
