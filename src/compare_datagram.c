/*
 * compare_datagram.c — the rule set for everything that is not a TCP stream:
 * UDP, ICMP/ICMPv6, other IP protocols, IP fragments, ARP and non-IP frames.
 *
 * Datagrams of one flow are matched in order, oldest PVM against oldest SVM,
 * never by searching (QEMU's newest-first search causes false checkpoints on
 * identical streams). What is compared:
 *   - IP packets: everything after the IP header up to where the IP length says
 *     the packet ends (Ethernet padding excluded), skipping the UDP/ICMP checksum
 *     (a PVM's may be left partial by checksum offload). IP ID, TTL and the IP
 *     checksum are never compared, so other IP protocols compare cleanly too.
 *   - IP fragments: fragment by fragment, identical fragmentation required
 *     (same offset, same more-fragments bit, same bytes); the flow is the host
 *     pair and protocol, since fragment IDs legitimately differ.
 *   - ARP: the ARP body; other non-IP frames and frames that failed to parse: the
 *     whole frame.
 * Must never: read outside [0, frame_len) of either packet.
 */
#include "compare_internal.h"

#include <string.h>

enum { PROTO_ICMP = 1, PROTO_UDP = 17, PROTO_ICMPV6 = 58 };
enum { ETHERTYPE_ARP = 0x0806 };

struct region {
    uint32_t start, end;
    uint32_t skip_at;   /* two bytes at skip_at are not compared; 0 = none */
};

static struct region compared_region(const struct colo_pkt *p)
{
    const struct pkt_view *v = &p->view;
    struct region r = { .start = v->l4_off, .end = v->l3_end, .skip_at = 0 };
    if (v->key.family == FAMILY_OTHER) {
        r.start = v->key.ethertype == ETHERTYPE_ARP && v->status == PARSE_OK ? v->l3_off : 0;
        return r;
    }
    if (v->is_fragment && v->frag_off != 0)
        return r;
    if (v->key.proto == PROTO_UDP && r.end - r.start >= 8)
        r.skip_at = r.start + 6;
    else if ((v->key.proto == PROTO_ICMP || v->key.proto == PROTO_ICMPV6) && r.end - r.start >= 4)
        r.skip_at = r.start + 2;
    return r;
}

/* Returns the index of the first differing byte, or UINT32_MAX when equal. */
static uint32_t datagram_difference(const struct colo_pkt *a, const struct colo_pkt *b)
{
    struct region ra = compared_region(a), rb = compared_region(b);
    uint32_t n = ra.end - ra.start;
    if (n != rb.end - rb.start)
        return 0;
    const uint8_t *pa = a->frame + ra.start, *pb = b->frame + rb.start;
    uint32_t skip = ra.skip_at ? ra.skip_at - ra.start : UINT32_MAX;
    for (uint32_t i = 0; i < n; i++) {
        if (i == skip) {
            i++;
            continue;
        }
        if (pa[i] != pb[i])
            return i;
    }
    return UINT32_MAX;
}

static bool same_fragment_shape(const struct colo_pkt *a, const struct colo_pkt *b)
{
    return a->view.frag_off == b->view.frag_off && a->view.more_frags == b->view.more_frags;
}

static void datagram_pvm_arrived(struct colo_compare *c, struct conn *conn, struct colo_pkt *p)
{
    (void)c;
    (void)conn;
    (void)p;
}

static void datagram_svm_arrived(struct colo_compare *c, struct conn *conn, struct colo_pkt *p)
{
    compare_svm_link(c, conn, conn->stream.svm_tail, p);
}

static void report(struct colo_compare *c, struct conn *conn, struct colo_pkt *p,
                   struct colo_pkt *sv, uint32_t at)
{
    struct region rp = compared_region(p), rs = compared_region(sv);
    bool same_len = rp.end - rp.start == rs.end - rs.start;
    struct divergence d = {
        .kind = same_len ? DIV_PAYLOAD : DIV_DATAGRAM_LEN,
        .stream_offset = conn->stream.cmp_seq,
        .byte_in_packet = at,
        .pvm_pkt = p,
        .svm_pkt = sv,
    };
    if (at < rp.end - rp.start) {
        d.pvm_bytes = p->frame + rp.start + at;
        d.pvm_avail = rp.end - rp.start - at;
    }
    if (at < rs.end - rs.start) {
        d.svm_bytes = sv->frame + rs.start + at;
        d.svm_avail = rs.end - rs.start - at;
    }
    compare_diverge(c, conn, &d);
}

static void datagram_advance(struct colo_compare *c, struct conn *conn)
{
    struct conn_stream *s = &conn->stream;
    while (s->pvm_cmp && s->svm_head) {
        struct colo_pkt *p = s->pvm_cmp, *sv = s->svm_head;
        uint32_t at = same_fragment_shape(p, sv) ? datagram_difference(p, sv) : 0;
        if (at != UINT32_MAX) {
            report(c, conn, p, sv, at);
            return;
        }
        p->cmp_flags |= PKTF_MATCHED;
        s->pvm_cmp = p->next;
        s->cmp_seq++;
        compare_svm_unlink_head(c, conn);
        compare_svm_done(c, sv, SVM_MATCHED);
    }
}

static bool datagram_releasable(const struct conn *conn, const struct colo_pkt *p,
                                enum release_reason *why)
{
    (void)conn;
    *why = RELEASE_MATCHED;
    return (p->cmp_flags & PKTF_MATCHED) != 0;
}

static void datagram_resync(struct conn *conn)
{
    (void)conn;
}

const struct compare_proto compare_proto_datagram = {
    .name = "datagram",
    .pvm_arrived = datagram_pvm_arrived,
    .svm_arrived = datagram_svm_arrived,
    .advance = datagram_advance,
    .releasable = datagram_releasable,
    .resync = datagram_resync,
};
