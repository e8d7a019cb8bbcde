/*
 * fuzz_rewrite.c — libFuzzer target: the secondary's sequence rewriter fed
 * client segments from the link and SVM segments, handshakes included, with
 * checkpoints, clock jumps and a failover, as the input dictates.
 *
 * Invariants: every packet handed in comes out exactly once (to the SVM, to the
 * link, or dropped as a held segment given up on), by destroy at the latest, and
 * in the direction it was going; a rewrite never changes a frame's length, its
 * Ethernet and IP addresses, its ports or its payload — only sequence and
 * acknowledgment numbers, options and checksums.
 */
#include <string.h>

#include "colo/pkt_parse.h"
#include "colo/seq_rewrite.h"
#include "frame_builder.h"
#include "fuzz_input.h"

#define MAX_STEPS 512
#define MAX_FRAME 256

struct harness {
    struct colo_pkt pkts[MAX_STEPS];
    uint8_t frames[MAX_STEPS][MAX_FRAME], before[MAX_STEPS][MAX_FRAME];
    uint8_t from_link[MAX_STEPS], out[MAX_STEPS];
    uint64_t in, outs;
};

/* The bytes a rewrite may not touch: everything but the TCP header (and the IP checksum). */
static void check_untouched(const struct harness *h, const struct colo_pkt *p)
{
    const uint8_t *was = h->before[p->owner_index];
    const struct pkt_view *v = &p->view;
    if (v->status != PARSE_OK || v->key.proto != 6 || v->l4_off < v->l3_off) {
        FUZZ_CHECK(memcmp(was, p->frame, p->frame_len) == 0);
        return;
    }
    FUZZ_CHECK(memcmp(was, p->frame, 12) == 0); /* MAC addresses */
    FUZZ_CHECK(memcmp(was + v->l4_off, p->frame + v->l4_off, 4) == 0); /* ports */
    FUZZ_CHECK(memcmp(was + v->payload_off, p->frame + v->payload_off, p->frame_len - v->payload_off) == 0);
}

static void handed_out(struct harness *h, struct colo_pkt *p, int where)
{
    FUZZ_CHECK(p->owner == (void *)h && p->owner_index < MAX_STEPS);
    FUZZ_CHECK(!h->out[p->owner_index]);
    h->out[p->owner_index] = 1;
    h->outs++;
    if (where >= 0)
        FUZZ_CHECK(h->from_link[p->owner_index] == (where == 0));
    check_untouched(h, p);
}

static void to_svm(void *ctx, struct colo_pkt *p) { handed_out(ctx, p, 0); }
static void to_link(void *ctx, struct colo_pkt *p) { handed_out(ctx, p, 1); }
static void dropped(void *ctx, struct colo_pkt *p) { handed_out(ctx, p, -1); }

/* A segment of one of a few connections: from the client (link) or from the SVM. */
static size_t build_segment(struct fuzz_input *in, uint8_t *frame, bool from_link)
{
    static const uint8_t flag_sets[] = { TCPF_SYN, TCPF_SYN | TCPF_ACK, TCPF_ACK, TCPF_ACK | TCPF_PSH,
                                         TCPF_FIN | TCPF_ACK, TCPF_RST, TCPF_RST | TCPF_ACK, 0 };
    uint8_t conn = take_u8(in) % 4, sel = take_u8(in), len = take_u8(in) % 64;
    uint32_t seq = take_u32(in), ack = take_u32(in);
    uint8_t payload[64];
    memset(payload, 'x', sizeof(payload));
    struct frame_spec s = frame_guest_tcp(seq, ack, flag_sets[sel % 8], payload, len);
    s.dport = (uint16_t)(40000 + conn);
    s.tcp_timestamp = sel & 0x08;
    s.tsval = take_u32(in);
    s.tsecr = take_u32(in);
    if (sel & 0x10) { /* a SACK block on top of the options */
        static const uint8_t sack[12] = { 1, 1, 5, 10, 0, 0, 0x10, 0, 0, 0, 0x20, 0 };
        s.tcp_options = sack;
        s.tcp_options_len = sizeof(sack);
    }
    if (sel & 0x20)
        s.family = 6;
    if (from_link)
        frame_spec_reverse(&s);
    return frame_build(&s, frame, MAX_FRAME);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct harness h;
    memset(&h, 0, sizeof(h));
    struct fuzz_input in = { data, size };
    struct seq_rewriter_ops ops = { .to_svm = to_svm, .to_link = to_link, .drop = dropped };
    struct seq_rewriter *rw = seq_rewriter_create(4, &ops, &h);
    FUZZ_CHECK(rw != NULL);
    uint64_t now = 1000000000ull;
    for (unsigned n = 0; n < MAX_STEPS && in.left; n++) {
        uint8_t op = take_u8(&in); /* kind in bits 0-2, direction bit 3, offloaded checksum bit 6 */
        if (op % 8 >= 5) {
            if (op % 8 == 5)
                seq_rewriter_checkpoint_done(rw);
            else if (op % 8 == 6)
                seq_rewriter_tick(rw, now += (uint64_t)take_u16(&in) * 1000000ull);
            else if (op & 0x80)
                seq_rewriter_failover(rw);
            continue;
        }
        bool from_link = op & 0x08;
        struct colo_pkt *p = &h.pkts[n];
        size_t len;
        if (op % 8 == 4) { /* raw bytes */
            const uint8_t *raw = take_bytes(&in, take_u8(&in), &len);
            memcpy(h.frames[n], raw, len);
        } else {
            len = build_segment(&in, h.frames[n], from_link);
        }
        memcpy(h.before[n], h.frames[n], len);
        p->frame = h.frames[n];
        p->frame_len = (uint32_t)len;
        p->owner = &h;
        p->owner_index = n;
        p->csum_partial = op & 0x40;
        pkt_parse(p->frame, p->frame_len, &p->view);
        h.from_link[n] = from_link;
        h.in++;
        if (from_link)
            seq_rewrite_from_link(rw, p, now);
        else
            seq_rewrite_from_svm(rw, p, now);
    }
    seq_rewriter_destroy(rw);
    FUZZ_CHECK(h.outs == h.in);
    return 0;
}
