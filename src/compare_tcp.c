/*
 * compare_tcp.c — the TCP rule set: byte-stream comparison in the PVM's sequence space.
 *
 * Each connection's guest-to-client stream is compared as bytes at stream
 * positions, not as segments: `cmp_seq` is the next position not yet verified,
 * and a PVM byte at a position is compared with the SVM byte at the same
 * position, however each side segmented them. A FIN is the position just past
 * the last byte: the same stream ending at the same offset matches whether the
 * FIN rode on the last data segment or came alone.
 *
 * A PVM segment may leave when every position it covers is verified and the SVM
 * has acknowledged at least as far as it does (ACK gating, seq-space maxima).
 * A pure ACK carries nothing to compare and leaves at once (in order). The PVM's
 * SYN-ACK is held until the SVM's SYN-ACK answering the same client SYN has
 * arrived, so the client cannot ACK before the secondary's rewriter can learn its
 * offset. A RST matches a RST; one side resetting while the other sends data or
 * a FIN is a divergence. For a PVM RST only SVM data at or past the RST's
 * position counts: SVM data before it is what the PVM sent too, in segments a
 * lossy capture missed.
 *
 * A SYN with a new ISN on a known 5-tuple (the client reused its port) starts a
 * new incarnation: the stream restarts from the new ISN. Whichever side starts
 * it first, the other side's old data is discarded, and an SVM that is ahead
 * is not compared until the PVM's SYN-ACK for the same client SYN arrives.
 *
 * SVM segments are kept sorted by sequence number; those wholly before
 * `cmp_seq` are stale (retransmissions, or data the SVM sent before a
 * checkpoint) and are discarded. Must never: compare bytes at different stream
 * positions, or read outside a packet's payload.
 */
#include "compare_internal.h"

#include <string.h>

static bool occupies_stream(const struct colo_pkt *p)
{
    const struct pkt_view *v = &p->view;
    if (v->tcp_flags & (TCPF_SYN | TCPF_RST))
        return false;
    return v->payload_len != 0 || (v->tcp_flags & TCPF_FIN);
}

static uint32_t data_end(const struct colo_pkt *p)
{
    return p->view.tcp_seq + p->view.payload_len;
}

static uint32_t stream_end(const struct colo_pkt *p)
{
    return data_end(p) + ((p->view.tcp_flags & TCPF_FIN) ? 1 : 0);
}

static bool has_ack(const struct colo_pkt *p)
{
    return (p->view.tcp_flags & TCPF_ACK) != 0;
}

static void discard_svm_data(struct colo_compare *c, struct conn *conn)
{
    while (conn->stream.svm_head) {
        struct colo_pkt *q = conn->stream.svm_head;
        compare_svm_unlink_head(c, conn);
        compare_svm_done(c, q, SVM_STALE);
    }
}

/* The PVM's SYN with a new ISN: the stream restarts there. */
static void pvm_new_incarnation(struct colo_compare *c, struct conn *conn, const struct pkt_view *v)
{
    struct conn_stream *s = &conn->stream;
    s->stream_base = s->cmp_seq = s->pvm_next = v->tcp_seq + 1;
    s->flags &= (uint16_t)~(CMPF_PVM_RST | CMPF_SYN_SYNCED | CMPF_PVM_ACK);
    if (s->svm_syn_ack == v->tcp_ack && (s->flags & CMPF_SVM_SYN)) {
        s->flags &= (uint16_t)~CMPF_SVM_AHEAD; /* the SVM got here first */
    } else {
        discard_svm_data(c, conn);
        s->flags &= (uint16_t)~(CMPF_SVM_ACK | CMPF_SVM_RST);
    }
}

/* The SVM's SYN answering another client SYN than its last one. */
static void svm_new_incarnation(struct colo_compare *c, struct conn *conn, const struct pkt_view *v)
{
    struct conn_stream *s = &conn->stream;
    discard_svm_data(c, conn);
    s->svm_max_ack = v->tcp_ack;
    s->flags &= (uint16_t)~CMPF_SVM_RST;
    if (s->pvm_syn_ack != v->tcp_ack)
        s->flags |= CMPF_SVM_AHEAD;
}

static void tcp_pvm_arrived(struct colo_compare *c, struct conn *conn, struct colo_pkt *p)
{
    struct conn_stream *s = &conn->stream;
    const struct pkt_view *v = &p->view;
    if (v->tcp_flags & TCPF_SYN) {
        if ((s->flags & CMPF_BASE) && v->tcp_seq + 1 != s->stream_base)
            pvm_new_incarnation(c, conn, v);
        s->pvm_syn_ack = v->tcp_ack;
    }
    if (!(s->flags & CMPF_BASE)) {
        s->stream_base = v->tcp_seq + ((v->tcp_flags & TCPF_SYN) ? 1 : 0);
        s->cmp_seq = s->pvm_next = s->stream_base;
        s->flags |= CMPF_BASE;
    }
    if (v->tcp_flags & TCPF_RST) {
        s->flags |= CMPF_PVM_RST;
        s->pvm_rst_seq = v->tcp_seq;
    }
    if (has_ack(p)) {
        s->pvm_max_ack = (s->flags & CMPF_PVM_ACK) ? seq_max(s->pvm_max_ack, v->tcp_ack) : v->tcp_ack;
        s->flags |= CMPF_PVM_ACK;
    }
    if (occupies_stream(p))
        s->pvm_next = seq_max(s->pvm_next, stream_end(p));
}

static void svm_insert_sorted(struct colo_compare *c, struct conn *conn, struct colo_pkt *p)
{
    struct conn_stream *s = &conn->stream;
    uint32_t seq = p->view.tcp_seq;
    if (!s->svm_tail || seq_leq(s->svm_tail->view.tcp_seq, seq)) {
        compare_svm_link(c, conn, s->svm_tail, p);
        return;
    }
    struct colo_pkt *after = NULL;
    for (struct colo_pkt *q = s->svm_head; q && seq_leq(q->view.tcp_seq, seq); q = q->next)
        after = q;
    compare_svm_link(c, conn, after, p);
}

static void tcp_svm_arrived(struct colo_compare *c, struct conn *conn, struct colo_pkt *p)
{
    struct conn_stream *s = &conn->stream;
    const struct pkt_view *v = &p->view;
    if (has_ack(p)) {
        s->svm_max_ack = (s->flags & CMPF_SVM_ACK) ? seq_max(s->svm_max_ack, v->tcp_ack) : v->tcp_ack;
        s->flags |= CMPF_SVM_ACK;
    }
    if (v->tcp_flags & TCPF_SYN) {
        if ((s->flags & CMPF_SVM_SYN) && s->svm_syn_ack != v->tcp_ack)
            svm_new_incarnation(c, conn, v);
        s->flags |= CMPF_SVM_SYN;
        s->svm_syn_ack = v->tcp_ack;
        compare_svm_done(c, p, SVM_MATCHED);
    } else if (v->tcp_flags & TCPF_RST) {
        s->flags |= CMPF_SVM_RST;
        compare_svm_done(c, p, SVM_MATCHED);
    } else if (!occupies_stream(p)) {
        compare_svm_done(c, p, SVM_UNCOMPARED);
    } else if ((s->flags & (CMPF_BASE | CMPF_SVM_AHEAD)) == CMPF_BASE &&
               seq_leq(stream_end(p), s->cmp_seq)) {
        compare_svm_done(c, p, SVM_STALE);
    } else {
        svm_insert_sorted(c, conn, p);
    }
}

/* The first PVM packet not yet verified that covers stream position `pos`. */
static struct colo_pkt *pvm_covering(struct conn_stream *s, uint32_t pos)
{
    while (s->pvm_cmp && (!occupies_stream(s->pvm_cmp) || seq_leq(stream_end(s->pvm_cmp), pos)))
        s->pvm_cmp = s->pvm_cmp->next;
    for (struct colo_pkt *q = s->pvm_cmp; q; q = q->next) {
        if (occupies_stream(q) && seq_leq(q->view.tcp_seq, pos) && seq_lt(pos, stream_end(q)))
            return q;
    }
    return NULL;
}

static void drop_stale_svm(struct colo_compare *c, struct conn *conn)
{
    struct conn_stream *s = &conn->stream;
    while (s->svm_head && seq_leq(stream_end(s->svm_head), s->cmp_seq)) {
        struct colo_pkt *q = s->svm_head;
        compare_svm_unlink_head(c, conn);
        compare_svm_done(c, q, (q->cmp_flags & PKTF_MATCHED) ? SVM_MATCHED : SVM_STALE);
    }
}

static const uint8_t *payload_at(const struct colo_pkt *p, uint32_t pos)
{
    return p->frame + p->view.payload_off + (pos - p->view.tcp_seq);
}

static void diverge_at(struct colo_compare *c, struct conn *conn, enum divergence_kind kind,
                       struct colo_pkt *p, struct colo_pkt *sv, uint32_t pos)
{
    struct divergence d = {
        .kind = kind,
        .stream_offset = (uint32_t)(pos - conn->stream.stream_base),
        .pvm_pkt = p,
        .svm_pkt = sv,
    };
    if (p && seq_leq(p->view.tcp_seq, pos) && seq_lt(pos, data_end(p))) {
        d.pvm_bytes = payload_at(p, pos);
        d.pvm_avail = data_end(p) - pos;
        d.byte_in_packet = pos - p->view.tcp_seq;
    }
    if (sv && seq_leq(sv->view.tcp_seq, pos) && seq_lt(pos, data_end(sv))) {
        d.svm_bytes = payload_at(sv, pos);
        d.svm_avail = data_end(sv) - pos;
    }
    compare_diverge(c, conn, &d);
}

static uint32_t first_difference(const uint8_t *a, const uint8_t *b, uint32_t n)
{
    uint32_t i = 0;
    while (i < n && a[i] == b[i])
        i++;
    return i;
}

/* Compares one run of bytes (or one FIN) at cmp_seq; false when nothing more can be done. */
static bool compare_step(struct colo_compare *c, struct conn *conn)
{
    struct conn_stream *s = &conn->stream;
    drop_stale_svm(c, conn);
    struct colo_pkt *p = pvm_covering(s, s->cmp_seq);
    struct colo_pkt *sv = s->svm_head;
    if (!p || !sv || seq_lt(s->cmp_seq, sv->view.tcp_seq))
        return false;
    p->cmp_flags |= PKTF_MATCHED;
    sv->cmp_flags |= PKTF_MATCHED;
    bool p_fin = (p->view.tcp_flags & TCPF_FIN) && s->cmp_seq == data_end(p);
    bool s_fin = (sv->view.tcp_flags & TCPF_FIN) && s->cmp_seq == data_end(sv);
    if (p_fin || s_fin) {
        if (p_fin != s_fin) {
            diverge_at(c, conn, DIV_FIN_VS_DATA, p, sv, s->cmp_seq);
            return false;
        }
        s->cmp_seq++;
        return true;
    }
    uint32_t end = seq_lt(data_end(p), data_end(sv)) ? data_end(p) : data_end(sv);
    uint32_t n = end - s->cmp_seq;
    const uint8_t *a = payload_at(p, s->cmp_seq), *b = payload_at(sv, s->cmp_seq);
    if (memcmp(a, b, n) != 0) {
        diverge_at(c, conn, DIV_PAYLOAD, p, sv, s->cmp_seq + first_difference(a, b, n));
        return false;
    }
    s->cmp_seq = end;
    return true;
}

/* The first queued SVM segment with data (or a FIN) at or past `pos`. */
static struct colo_pkt *svm_reaching(const struct conn_stream *s, uint32_t pos)
{
    for (struct colo_pkt *q = s->svm_head; q; q = q->next)
        if (seq_lt(pos, stream_end(q)))
            return q;
    return NULL;
}

static void tcp_advance(struct colo_compare *c, struct conn *conn)
{
    struct conn_stream *s = &conn->stream;
    if (!(s->flags & CMPF_BASE) || (s->flags & CMPF_SVM_AHEAD))
        return;
    while (compare_step(c, conn))
        ;
    if (s->flags & CMPF_DIVERGED)
        return;
    bool pvm_rst = s->flags & CMPF_PVM_RST, svm_rst = s->flags & CMPF_SVM_RST;
    struct colo_pkt *svm_past_rst = pvm_rst && !svm_rst ? svm_reaching(s, s->pvm_rst_seq) : NULL;
    if (svm_past_rst) {
        diverge_at(c, conn, DIV_RST, NULL, svm_past_rst, seq_max(s->cmp_seq, svm_past_rst->view.tcp_seq));
    } else if (svm_rst && !pvm_rst) {
        struct colo_pkt *p = pvm_covering(s, s->cmp_seq);
        if (p)
            diverge_at(c, conn, DIV_RST, p, NULL, s->cmp_seq);
    }
}

static bool tcp_releasable(const struct conn *conn, const struct colo_pkt *p,
                           enum release_reason *why)
{
    const struct conn_stream *s = &conn->stream;
    const struct pkt_view *v = &p->view;
    *why = RELEASE_MATCHED;
    if (v->tcp_flags & TCPF_SYN) {
        if (s->flags & CMPF_SYN_SYNCED)
            return true;
        return (s->flags & CMPF_SVM_SYN) && (!has_ack(p) || s->svm_syn_ack == v->tcp_ack);
    }
    if (v->tcp_flags & TCPF_RST)
        return (s->flags & CMPF_SVM_RST) != 0;
    if (!occupies_stream(p)) {
        *why = RELEASE_UNCOMPARED;
        return true;
    }
    if (!seq_leq(stream_end(p), s->cmp_seq))
        return false;
    if (has_ack(p) && (!(s->flags & CMPF_SVM_ACK) || seq_lt(s->svm_max_ack, v->tcp_ack)))
        return false;
    if (!(p->cmp_flags & PKTF_MATCHED))
        *why = RELEASE_UNCOMPARED;
    return true;
}

static void tcp_resync(struct conn *conn)
{
    struct conn_stream *s = &conn->stream;
    if (s->flags & CMPF_BASE)
        s->cmp_seq = seq_max(s->cmp_seq, s->pvm_next);
    if (s->flags & CMPF_PVM_ACK) {
        s->svm_max_ack = (s->flags & CMPF_SVM_ACK) ? seq_max(s->svm_max_ack, s->pvm_max_ack)
                                                   : s->pvm_max_ack;
        s->flags |= CMPF_SVM_ACK;
    }
    s->flags &= (uint16_t)~(CMPF_SVM_RST | CMPF_PVM_RST);
    s->flags |= CMPF_SYN_SYNCED;
}

const struct compare_proto compare_proto_tcp = {
    .name = "tcp",
    .pvm_arrived = tcp_pvm_arrived,
    .svm_arrived = tcp_svm_arrived,
    .advance = tcp_advance,
    .releasable = tcp_releasable,
    .resync = tcp_resync,
};
