/*
 * fuzz_compare.c — libFuzzer target: the compare engine fed interleaved PVM and
 * SVM frames, checkpoints, clock jumps and failovers, as the input dictates.
 *
 * The input is a little program (fuzz_input.h): each step is a PVM or SVM TCP
 * segment or UDP datagram on one of a few connections (sequence numbers near each
 * other and payloads drawn from the stream position, so the two sides often
 * agree and the interesting paths are reached), a raw frame, a completed
 * checkpoint, a tick, or a release of everything. The table and queues are small
 * so that full-table and full-queue paths run too.
 *
 * Invariants, checked after every step: each PVM packet is released at most once
 * and, by the end, exactly once; within a connection PVM packets leave in arrival
 * order; the engine's held count equals packets in minus packets released; each
 * SVM packet is handed back at most once and all of them by destroy.
 */
#include <string.h>

#include "colo/compare.h"
#include "colo/pkt_parse.h"
#include "frame_builder.h"
#include "fuzz_input.h"

#define MAX_STEPS 512
#define MAX_FRAME 256

struct harness {
    struct colo_pkt pkts[MAX_STEPS];
    uint8_t frames[MAX_STEPS][MAX_FRAME];
    uint8_t handed_back[MAX_STEPS];
    struct flow_key keys[MAX_STEPS];   /* per connection seen: its key */
    int64_t last_released[MAX_STEPS];  /* per connection: the last PVM packet released */
    unsigned nkeys;
    uint64_t pvm_in, released, svm_in, discarded, requests;
};

static unsigned conn_index(struct harness *h, const struct flow_key *k)
{
    for (unsigned i = 0; i < h->nkeys; i++)
        if (memcmp(&h->keys[i], k, sizeof(*k)) == 0)
            return i;
    h->keys[h->nkeys] = *k;
    h->last_released[h->nkeys] = -1;
    return h->nkeys++;
}

static void on_release(void *ctx, struct colo_pkt *p, enum release_reason why)
{
    struct harness *h = ctx;
    FUZZ_CHECK(why < RELEASE_REASON_COUNT);
    FUZZ_CHECK(p->owner == (void *)h && p->owner_index < MAX_STEPS);
    FUZZ_CHECK(!h->handed_back[p->owner_index]);
    h->handed_back[p->owner_index] = 1;
    unsigned c = conn_index(h, &p->view.key);
    FUZZ_CHECK(h->last_released[c] < (int64_t)p->owner_index);
    h->last_released[c] = (int64_t)p->owner_index;
    h->released++;
}

static void on_discard(void *ctx, struct colo_pkt *p)
{
    struct harness *h = ctx;
    FUZZ_CHECK(p->owner == (void *)h && p->owner_index < MAX_STEPS);
    FUZZ_CHECK(!h->handed_back[p->owner_index]);
    h->handed_back[p->owner_index] = 1;
    h->discarded++;
}

static void on_request(void *ctx, enum checkpoint_reason why, uint64_t now)
{
    (void)now;
    FUZZ_CHECK(why < CKPT_REASON_COUNT);
    ((struct harness *)ctx)->requests++;
}

/* Stream bytes are a function of their position, so matching sides agree unless told not to. */
static void stream_bytes(uint8_t *out, uint32_t seq, uint32_t n, uint8_t flip)
{
    for (uint32_t i = 0; i < n; i++)
        out[i] = (uint8_t)('a' + (seq + i) % 23);
    if (flip && n)
        out[flip % n] ^= 0x20;
}

static size_t build_segment(struct fuzz_input *in, uint8_t *frame, bool udp)
{
    uint8_t conn = take_u8(in) % 4, flags = take_u8(in), len = take_u8(in) % 96, flip = take_u8(in);
    uint32_t seq = 1000u + take_u16(in) % 4096, ack = 1u + take_u16(in) % 4096;
    uint8_t payload[96];
    stream_bytes(payload, seq, len, flip % 8 == 0 ? flip : 0);
    struct frame_spec s = frame_guest_tcp(seq, ack, flags & 0x3f, payload, len);
    s.dport = (uint16_t)(40000 + conn);
    s.tcp_timestamp = flags & 0x40;
    if (udp)
        s.proto = 17;
    return frame_build(&s, frame, MAX_FRAME);
}

static void check_accounting(struct harness *h, const struct colo_compare *e)
{
    const struct colo_compare_stats *st = colo_compare_stats(e);
    FUZZ_CHECK(st->pvm_held == h->pvm_in - h->released);
    FUZZ_CHECK(st->svm_held <= h->svm_in - h->discarded);
}

static void step(struct harness *h, struct colo_compare *e, struct fuzz_input *in, uint64_t *now, unsigned n)
{
    uint8_t op = take_u8(in);
    enum colo_side side = op & 1 ? SIDE_SVM : SIDE_PVM;
    size_t len = 0;
    switch ((op >> 1) % 6) {
    case 0: case 1:
        len = build_segment(in, h->frames[n], false);
        break;
    case 2:
        len = build_segment(in, h->frames[n], true);
        break;
    case 3: {
        size_t got;
        const uint8_t *raw = take_bytes(in, take_u8(in), &got);
        memcpy(h->frames[n], raw, got);
        len = got;
        break;
    }
    case 4:
        colo_compare_checkpoint_done(e, *now);
        return;
    default:
        *now += (uint64_t)take_u16(in) * 1000000ull;
        if (op & 0x80)
            colo_compare_release_all(e);
        else
            colo_compare_tick(e, *now);
        return;
    }
    struct colo_pkt *p = &h->pkts[n];
    p->frame = h->frames[n];
    p->frame_len = (uint32_t)len;
    p->owner = h;
    p->owner_index = n;
    pkt_parse(p->frame, p->frame_len, &p->view);
    if (side == SIDE_PVM) {
        h->pvm_in++;
        conn_index(h, &p->view.key);
    } else {
        h->svm_in++;
    }
    colo_compare_input(e, side, p, *now);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct harness h;
    memset(&h, 0, sizeof(h));
    struct fuzz_input in = { data, size };
    struct colo_compare_config cfg;
    colo_compare_config_default(&cfg);
    cfg.max_conns = 4;
    cfg.max_queue_size = 8;
    cfg.compare_timeout_ms = 100;
    cfg.expired_scan_cycle_ms = 50;
    struct colo_compare_ops ops = { .release = on_release, .discard = on_discard, .request_checkpoint = on_request };
    struct colo_compare *e = colo_compare_create(&cfg, &ops, &h);
    FUZZ_CHECK(e != NULL);
    uint64_t now = 1000000000ull;
    for (unsigned n = 0; n < MAX_STEPS && in.left; n++) {
        step(&h, e, &in, &now, n);
        check_accounting(&h, e);
    }
    colo_compare_release_all(e);
    FUZZ_CHECK(h.released == h.pvm_in);
    colo_compare_destroy(e);
    FUZZ_CHECK(h.discarded == h.svm_in);
    return 0;
}
