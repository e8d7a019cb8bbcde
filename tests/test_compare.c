/*
 * test_compare.c — every compare rule of docs/compare-rules.md (and what colo-proxy does
 * instead of each fault of docs/qemu-faults.md),
 * driven through the public engine API with frames built byte by byte.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "colo/compare.h"
#include "colo/pkt_parse.h"
#include "frame_builder.h"

#define MAX_PKTS 8192
#define MS 1000000ull

struct tpkt {
    struct colo_pkt pkt;
    uint8_t buf[2048];
};

struct harness {
    struct colo_compare *engine;
    struct tpkt *pkts;
    size_t npkts;
    uint32_t pvm_sent;
    uint32_t released[MAX_PKTS];
    enum release_reason reasons[MAX_PKTS];
    size_t nreleased;
    size_t ndiscarded;
    size_t nrequests;
    enum checkpoint_reason last_reason;
    size_t ndivs;
    enum divergence_kind last_kind;
    uint64_t last_offset;
    uint8_t last_pvm_byte, last_svm_byte;
    uint64_t now;
    uint32_t svm_epoch; /* the epoch SVM frames are sent in */
};

static void on_release(void *ctx, struct colo_pkt *p, enum release_reason why)
{
    struct harness *h = ctx;
    h->reasons[h->nreleased] = why;
    h->released[h->nreleased++] = (uint32_t)p->owner_index;
}

static void on_discard(void *ctx, struct colo_pkt *p)
{
    (void)p;
    ((struct harness *)ctx)->ndiscarded++;
}

static void on_request(void *ctx, enum checkpoint_reason why, uint64_t now)
{
    (void)now;
    struct harness *h = ctx;
    h->nrequests++;
    h->last_reason = why;
}

static void on_divergence(void *ctx, const struct divergence *d)
{
    struct harness *h = ctx;
    h->ndivs++;
    h->last_kind = d->kind;
    h->last_offset = d->stream_offset;
    h->last_pvm_byte = d->pvm_avail ? d->pvm_bytes[0] : 0;
    h->last_svm_byte = d->svm_avail ? d->svm_bytes[0] : 0;
}

static const struct colo_compare_ops ops = {
    .release = on_release,
    .discard = on_discard,
    .request_checkpoint = on_request,
    .divergence = on_divergence,
};

static struct harness *harness_new(const struct colo_compare_config *cfg)
{
    struct harness *h = calloc(1, sizeof(*h));
    struct colo_compare_config def;
    colo_compare_config_default(&def);
    def.max_conns = 1024;
    def.expired_scan_cycle_ms = 600000; /* so the compare timeout is the next deadline */
    h->pkts = calloc(MAX_PKTS, sizeof(struct tpkt));
    h->engine = colo_compare_create(cfg ? cfg : &def, &ops, h);
    h->now = 1000 * MS;
    assert_non_null(h->engine);
    return h;
}

/* A harness whose engine has a small table and queue bound, for the bound tests. */
static struct harness *harness_bounded(uint32_t max_conns, uint32_t max_queue_size)
{
    struct colo_compare_config cfg;
    colo_compare_config_default(&cfg);
    cfg.max_conns = max_conns;
    cfg.max_queue_size = max_queue_size;
    return harness_new(&cfg);
}

static int setup(void **state)
{
    *state = harness_new(NULL);
    return 0;
}

static int teardown(void **state)
{
    struct harness *h = *state;
    colo_compare_destroy(h->engine);
    free(h->pkts);
    free(h);
    return 0;
}

/* Sends one frame from a side; returns its PVM index (or -1 for SVM frames). */
static int send_spec(struct harness *h, enum colo_side side, const struct frame_spec *s)
{
    struct tpkt *t = &h->pkts[h->npkts++];
    size_t len = frame_build(s, t->buf, sizeof(t->buf));
    assert_true(len > 0);
    t->pkt.frame = t->buf;
    t->pkt.frame_len = (uint32_t)len;
    t->pkt.owner_index = side == SIDE_PVM ? h->pvm_sent++ : UINT32_MAX;
    t->pkt.epoch = side == SIDE_SVM ? h->svm_epoch : 0;
    pkt_parse(t->pkt.frame, t->pkt.frame_len, &t->pkt.view);
    colo_compare_input(h->engine, side, &t->pkt, h->now);
    return side == SIDE_PVM ? (int)t->pkt.owner_index : -1;
}

static int send_raw(struct harness *h, enum colo_side side, const uint8_t *frame, size_t len)
{
    struct tpkt *t = &h->pkts[h->npkts++];
    memcpy(t->buf, frame, len);
    t->pkt.frame = t->buf;
    t->pkt.frame_len = (uint32_t)len;
    t->pkt.owner_index = side == SIDE_PVM ? h->pvm_sent++ : UINT32_MAX;
    t->pkt.epoch = side == SIDE_SVM ? h->svm_epoch : 0;
    pkt_parse(t->pkt.frame, t->pkt.frame_len, &t->pkt.view);
    colo_compare_input(h->engine, side, &t->pkt, h->now);
    return side == SIDE_PVM ? (int)t->pkt.owner_index : -1;
}

static int tcp(struct harness *h, enum colo_side side, uint32_t seq, uint32_t ack, uint8_t flags,
               const char *data)
{
    struct frame_spec s = frame_guest_tcp(seq, ack, flags, data, data ? (uint32_t)strlen(data) : 0);
    s.tcp_timestamp = true;
    s.tsval = side == SIDE_PVM ? 1111 : 2222; /* timestamps differ between guests */
    s.ip_id = side == SIDE_PVM ? 100 : 200;   /* and so do IP IDs */
    return send_spec(h, side, &s);
}

#define A TCPF_ACK
#define PA (TCPF_PSH | TCPF_ACK)
#define FA (TCPF_FIN | TCPF_ACK)

static uint64_t total_released(struct harness *h)
{
    const struct colo_compare_stats *s = colo_compare_stats(h->engine);
    uint64_t n = 0;
    for (int i = 0; i < RELEASE_REASON_COUNT; i++)
        n += s->released[i];
    return n;
}

/* ---- TCP ---- */

static void test_tcp_identical_segments_match_and_release(void **state)
{
    struct harness *h = *state;
    tcp(h, SIDE_PVM, 1000, 500, PA, "hello world");
    assert_int_equal(h->nreleased, 0);
    tcp(h, SIDE_SVM, 1000, 500, PA, "hello world");
    assert_int_equal(h->nreleased, 1);
    assert_int_equal(h->reasons[0], RELEASE_MATCHED);
    assert_int_equal(h->nrequests, 0);
    assert_int_equal(h->ndivs, 0);
}

static void test_tcp_svm_first_then_pvm_matches(void **state)
{
    struct harness *h = *state;
    tcp(h, SIDE_SVM, 1000, 500, PA, "abc");
    tcp(h, SIDE_PVM, 1000, 500, PA, "abc");
    assert_int_equal(h->nreleased, 1);
    assert_int_equal(h->ndivs, 0);
}

static void test_tcp_resegmented_payload_matches(void **state)
{
    struct harness *h = *state;
    tcp(h, SIDE_PVM, 1000, 500, PA, "0123456789");
    tcp(h, SIDE_SVM, 1000, 500, A, "0123");
    assert_int_equal(h->nreleased, 0);
    tcp(h, SIDE_SVM, 1004, 500, PA, "456789ABCD");
    assert_int_equal(h->nreleased, 1);
    tcp(h, SIDE_PVM, 1010, 500, A, "AB");
    tcp(h, SIDE_PVM, 1012, 500, PA, "CD");
    assert_int_equal(h->nreleased, 3);
    assert_int_equal(h->ndivs, 0);
    assert_int_equal(h->nrequests, 0);
}

static void test_tcp_payload_difference_requests_one_checkpoint(void **state)
{
    struct harness *h = *state;
    tcp(h, SIDE_PVM, 1000, 500, PA, "Date: 10:00:01");
    tcp(h, SIDE_SVM, 1000, 500, PA, "Date: 10:00:02");
    assert_int_equal(h->ndivs, 1);
    assert_int_equal(h->last_kind, DIV_PAYLOAD);
    assert_int_equal(h->last_offset, 13);
    assert_int_equal(h->last_pvm_byte, '1');
    assert_int_equal(h->last_svm_byte, '2');
    assert_int_equal(h->nrequests, 1);
    assert_int_equal(h->last_reason, CKPT_DIVERGENCE);
    /* Later packets wait for the checkpoint and cause no further requests. */
    for (uint32_t i = 0; i < 20; i++) {
        tcp(h, SIDE_PVM, 1014 + i, 500, PA, "x");
        tcp(h, SIDE_SVM, 1014 + i, 500, PA, "y");
    }
    assert_int_equal(h->nrequests, 1);
    assert_int_equal(h->ndivs, 1);
    assert_int_equal(h->nreleased, 0);
    colo_compare_checkpoint_done(h->engine, h->now);
    assert_int_equal(h->nreleased, 21);
    for (uint32_t i = 0; i < 21; i++) {
        assert_int_equal(h->released[i], i);
        assert_int_equal(h->reasons[i], RELEASE_CHECKPOINT);
    }
}

static void test_tcp_fin_merged_vs_separate_matches(void **state)
{
    struct harness *h = *state;
    tcp(h, SIDE_PVM, 1000, 500, FA | TCPF_PSH, "bye");
    tcp(h, SIDE_SVM, 1000, 500, PA, "bye");
    assert_int_equal(h->nreleased, 0); /* the PVM's FIN is not yet matched */
    tcp(h, SIDE_SVM, 1003, 500, FA, NULL);
    assert_int_equal(h->nreleased, 1);
    assert_int_equal(h->reasons[0], RELEASE_MATCHED);
    assert_int_equal(h->ndivs, 0);
}

static void test_tcp_fin_separate_vs_merged_matches(void **state)
{
    struct harness *h = *state;
    tcp(h, SIDE_PVM, 1000, 500, PA, "bye");
    tcp(h, SIDE_PVM, 1003, 500, FA, NULL);
    tcp(h, SIDE_SVM, 1000, 500, FA | TCPF_PSH, "bye");
    assert_int_equal(h->nreleased, 2);
    assert_int_equal(h->ndivs, 0);
}

static void test_tcp_fin_vs_data_diverges(void **state)
{
    struct harness *h = *state;
    tcp(h, SIDE_PVM, 1000, 500, FA, "end");
    tcp(h, SIDE_SVM, 1000, 500, PA, "endmore");
    assert_int_equal(h->ndivs, 1);
    assert_int_equal(h->last_kind, DIV_FIN_VS_DATA);
    assert_int_equal(h->last_offset, 3);
    assert_int_equal(h->nrequests, 1);
}

static void test_tcp_rst_vs_fin_diverges(void **state)
{
    struct harness *h = *state;
    tcp(h, SIDE_SVM, 1000, 500, FA, NULL);
    tcp(h, SIDE_PVM, 1000, 500, TCPF_RST | TCPF_ACK, NULL);
    assert_int_equal(h->ndivs, 1);
    assert_int_equal(h->last_kind, DIV_RST);
    assert_int_equal(h->nreleased, 0);
}

static void test_tcp_svm_rst_while_pvm_sends_data_diverges(void **state)
{
    struct harness *h = *state;
    tcp(h, SIDE_SVM, 1000, 500, TCPF_RST, NULL);
    tcp(h, SIDE_PVM, 1000, 500, PA, "still talking");
    assert_int_equal(h->ndivs, 1);
    assert_int_equal(h->last_kind, DIV_RST);
}

/* A lossy capture: the PVM's segment at 1005 is missing, the SVM's is queued, and both then reset at 1010. */
static void test_tcp_pvm_rst_after_svm_data_in_a_hole_matches(void **state)
{
    struct harness *h = *state;
    tcp(h, SIDE_PVM, 1000, 500, PA, "hello");
    tcp(h, SIDE_SVM, 1000, 500, PA, "hello");
    tcp(h, SIDE_SVM, 1005, 500, PA, "world");
    tcp(h, SIDE_PVM, 1010, 500, TCPF_RST | TCPF_ACK, NULL);
    assert_int_equal(h->ndivs, 0);
    tcp(h, SIDE_SVM, 1010, 500, TCPF_RST | TCPF_ACK, NULL);
    assert_int_equal(h->ndivs, 0);
    assert_int_equal(h->nreleased, 2);
}

static void test_tcp_pvm_rst_while_svm_sends_past_it_diverges(void **state)
{
    struct harness *h = *state;
    tcp(h, SIDE_PVM, 1000, 500, PA, "hello");
    tcp(h, SIDE_SVM, 1000, 500, PA, "hello");
    tcp(h, SIDE_SVM, 1005, 500, PA, "world");
    tcp(h, SIDE_PVM, 1008, 500, TCPF_RST | TCPF_ACK, NULL);
    assert_int_equal(h->ndivs, 1);
    assert_int_equal(h->last_kind, DIV_RST);
}

static void test_tcp_rst_matches_rst(void **state)
{
    struct harness *h = *state;
    tcp(h, SIDE_PVM, 1000, 500, TCPF_RST | TCPF_ACK, NULL);
    assert_int_equal(h->nreleased, 0);
    tcp(h, SIDE_SVM, 1000, 500, TCPF_RST | TCPF_ACK, NULL);
    assert_int_equal(h->nreleased, 1);
    assert_int_equal(h->ndivs, 0);
}

static void test_tcp_pure_ack_released_at_once(void **state)
{
    struct harness *h = *state;
    tcp(h, SIDE_PVM, 1000, 500, A, NULL);
    assert_int_equal(h->nreleased, 1);
    assert_int_equal(h->reasons[0], RELEASE_UNCOMPARED);
}

static void test_tcp_pure_ack_waits_behind_held_data(void **state)
{
    struct harness *h = *state;
    tcp(h, SIDE_PVM, 1000, 500, PA, "data");
    tcp(h, SIDE_PVM, 1004, 600, A, NULL);
    assert_int_equal(h->nreleased, 0);
    tcp(h, SIDE_SVM, 1000, 500, PA, "data");
    assert_int_equal(h->nreleased, 2);
    assert_int_equal(h->released[0], 0);
    assert_int_equal(h->released[1], 1);
}

static void test_tcp_ack_gating_holds_until_svm_acks(void **state)
{
    struct harness *h = *state;
    tcp(h, SIDE_PVM, 1000, 700, PA, "reply");
    tcp(h, SIDE_SVM, 1000, 600, PA, "reply"); /* SVM has not yet received bytes 600..700 */
    assert_int_equal(h->nreleased, 0);
    assert_int_equal(h->ndivs, 0);
    tcp(h, SIDE_SVM, 1005, 700, A, NULL);
    assert_int_equal(h->nreleased, 1);
}

static void test_tcp_ack_gating_across_sequence_wrap(void **state)
{
    struct harness *h = *state;
    tcp(h, SIDE_SVM, 1000, 0xfffffff0u, A, NULL);
    tcp(h, SIDE_SVM, 1000, 0x00000010u, A, NULL); /* later, past the wrap: the true maximum */
    tcp(h, SIDE_SVM, 1000, 0xfffffff8u, A, NULL); /* older, reordered */
    tcp(h, SIDE_PVM, 1000, 0x00000008u, PA, "x");
    tcp(h, SIDE_SVM, 1000, 0x00000010u, PA, "x");
    assert_int_equal(h->nreleased, 1);
}

static void test_tcp_stream_across_sequence_wrap(void **state)
{
    struct harness *h = *state;
    tcp(h, SIDE_PVM, 0xfffffffcu, 1, PA, "abcdefgh");
    tcp(h, SIDE_SVM, 0xfffffffcu, 1, PA, "abcd");
    tcp(h, SIDE_SVM, 0x00000000u, 1, PA, "efgh");
    assert_int_equal(h->nreleased, 1);
    assert_int_equal(h->ndivs, 0);
}

static void test_tcp_synack_held_until_svm_synack(void **state)
{
    struct harness *h = *state;
    tcp(h, SIDE_PVM, 5000, 301, TCPF_SYN | TCPF_ACK, NULL);
    assert_int_equal(h->nreleased, 0);
    tcp(h, SIDE_SVM, 9999, 301, TCPF_SYN | TCPF_ACK, NULL); /* the SVM's own ISN */
    assert_int_equal(h->nreleased, 1);
    /* The stream starts after the PVM's ISN; the SVM's data is in the PVM's space. */
    tcp(h, SIDE_PVM, 5001, 301, PA, "HTTP/1.0 200 OK");
    tcp(h, SIDE_SVM, 5001, 301, PA, "HTTP/1.0 200 OK");
    assert_int_equal(h->nreleased, 2);
    assert_int_equal(h->ndivs, 0);
}

static void test_tcp_synack_for_another_client_syn_waits(void **state)
{
    struct harness *h = *state;
    tcp(h, SIDE_PVM, 5000, 301, TCPF_SYN | TCPF_ACK, NULL);
    tcp(h, SIDE_SVM, 9999, 777, TCPF_SYN | TCPF_ACK, NULL);
    assert_int_equal(h->nreleased, 0);
}

static void test_tcp_retransmit_of_verified_bytes_released_uncompared(void **state)
{
    struct harness *h = *state;
    tcp(h, SIDE_PVM, 1000, 500, PA, "data");
    tcp(h, SIDE_SVM, 1000, 500, PA, "data");
    tcp(h, SIDE_PVM, 1000, 500, PA, "data");
    assert_int_equal(h->nreleased, 2);
    assert_int_equal(h->reasons[1], RELEASE_UNCOMPARED);
    tcp(h, SIDE_SVM, 1000, 500, PA, "data"); /* the SVM's retransmission is stale */
    assert_int_equal(colo_compare_stats(h->engine)->svm_stale, 1);
    assert_int_equal(h->ndivs, 0);
}

static void test_tcp_no_wait_for_bytes_svm_will_not_resend(void **state)
{
    struct harness *h = *state;
    tcp(h, SIDE_PVM, 1000, 500, PA, "first response");
    assert_int_equal(h->nreleased, 0);
    /* A periodic checkpoint: the SVM now has the PVM's state and never sends those bytes. */
    colo_compare_checkpoint_done(h->engine, h->now);
    assert_int_equal(h->nreleased, 1);
    tcp(h, SIDE_PVM, 1014, 500, PA, "second");
    tcp(h, SIDE_SVM, 1014, 500, PA, "second");
    assert_int_equal(h->nreleased, 2);
    assert_int_equal(h->reasons[1], RELEASE_MATCHED);
    assert_int_equal(h->ndivs, 0);
    assert_int_equal(h->nrequests, 0);
}

static void test_tcp_stale_svm_after_checkpoint_causes_no_divergence(void **state)
{
    struct harness *h = *state;
    tcp(h, SIDE_PVM, 1000, 500, PA, "AAAA");
    tcp(h, SIDE_SVM, 1000, 500, PA, "BBBB");
    assert_int_equal(h->ndivs, 1);
    colo_compare_checkpoint_done(h->engine, h->now);
    /* A late SVM segment from before the checkpoint. */
    tcp(h, SIDE_SVM, 1000, 500, PA, "BBBB");
    tcp(h, SIDE_PVM, 1004, 500, PA, "next");
    tcp(h, SIDE_SVM, 1004, 500, PA, "next");
    assert_int_equal(h->ndivs, 1);
    assert_int_equal(h->nreleased, 2);
}

static struct frame_spec udp_spec(const char *data, uint16_t ip_id);

/* The SVM resumed (epoch 2) before the checkpoint ended: its new output is compared, not thrown away. */
static void test_tcp_epoch_checkpoint_keeps_the_svm_output_after_its_resume(void **state)
{
    struct harness *h = *state;
    h->svm_epoch = 1;
    tcp(h, SIDE_PVM, 1000, 500, PA, "AAAA");
    tcp(h, SIDE_SVM, 1000, 500, PA, "BBBB");
    assert_int_equal(h->ndivs, 1);
    h->svm_epoch = 2;
    tcp(h, SIDE_SVM, 1004, 500, PA, "next");
    colo_compare_checkpoint_done_epoch(h->engine, h->now, 1);
    const struct colo_compare_stats *st = colo_compare_stats(h->engine);
    assert_int_equal(st->svm_kept_new_epoch, 1);
    assert_int_equal(st->svm_held, 1);
    h->svm_epoch = 1;
    tcp(h, SIDE_SVM, 1000, 500, PA, "BBBB"); /* a late frame of the stale epoch */
    assert_int_equal(st->svm_stale_epoch, 1);
    tcp(h, SIDE_PVM, 1004, 500, PA, "next");
    assert_int_equal(h->nreleased, 2);
    assert_int_equal(h->reasons[1], RELEASE_MATCHED);
    assert_int_equal(h->ndivs, 1);
    assert_int_equal(h->nrequests, 1);
}

/* The same with datagrams, which match in order: the kept one must be the first compared. */
static void test_udp_epoch_checkpoint_keeps_new_and_drops_stale_in_order(void **state)
{
    struct harness *h = *state;
    struct frame_spec p1 = udp_spec("before", 1), s1 = udp_spec("before-svm", 1);
    struct frame_spec s2 = udp_spec("after", 2), s3 = udp_spec("after-2", 3), late = udp_spec("late", 4);
    h->svm_epoch = 7;
    send_spec(h, SIDE_PVM, &p1);
    send_spec(h, SIDE_SVM, &s1);
    assert_int_equal(h->ndivs, 1);
    h->svm_epoch = 8;
    send_spec(h, SIDE_SVM, &s2);
    h->svm_epoch = 7;
    send_spec(h, SIDE_SVM, &late); /* queued behind the epoch-8 one, stale at the checkpoint */
    h->svm_epoch = 8;
    send_spec(h, SIDE_SVM, &s3);
    colo_compare_checkpoint_done_epoch(h->engine, h->now, 7);
    assert_int_equal(colo_compare_stats(h->engine)->svm_kept_new_epoch, 2);
    assert_int_equal(h->nreleased, 1);
    struct frame_spec p2 = udp_spec("after", 5), p3 = udp_spec("after-2", 6);
    send_spec(h, SIDE_PVM, &p2);
    send_spec(h, SIDE_PVM, &p3);
    assert_int_equal(h->nreleased, 3);
    assert_int_equal(h->reasons[1], RELEASE_MATCHED);
    assert_int_equal(h->reasons[2], RELEASE_MATCHED);
    assert_int_equal(h->ndivs, 1);
}

/* Without epochs a checkpoint discards every held SVM frame, as it always did. */
static void test_legacy_checkpoint_discards_the_svm_output_after_its_resume(void **state)
{
    struct harness *h = *state;
    tcp(h, SIDE_PVM, 1000, 500, PA, "AAAA");
    tcp(h, SIDE_SVM, 1000, 500, PA, "BBBB");
    tcp(h, SIDE_SVM, 1004, 500, PA, "next");
    colo_compare_checkpoint_done(h->engine, h->now);
    tcp(h, SIDE_PVM, 1004, 500, PA, "next");
    assert_int_equal(h->nreleased, 1); /* "next" waits for an SVM copy that was thrown away */
    assert_int_equal(colo_compare_stats(h->engine)->svm_held, 0);
}

static void test_tcp_out_of_order_svm_segments_sorted(void **state)
{
    struct harness *h = *state;
    tcp(h, SIDE_SVM, 1005, 500, PA, "world");
    tcp(h, SIDE_SVM, 1000, 500, PA, "hello");
    tcp(h, SIDE_PVM, 1000, 500, PA, "helloworld");
    assert_int_equal(h->nreleased, 1);
    assert_int_equal(h->ndivs, 0);
}

static void test_tcp_partial_overlap_offsets_verified(void **state)
{
    struct harness *h = *state;
    tcp(h, SIDE_PVM, 1000, 500, PA, "abcdef");
    tcp(h, SIDE_SVM, 1000, 500, PA, "abc");
    tcp(h, SIDE_SVM, 1002, 500, PA, "cdXf"); /* overlaps; byte at offset 4 differs */
    assert_int_equal(h->ndivs, 1);
    assert_int_equal(h->last_offset, 4);
}

static void test_tcp_port_reuse_after_close_compares_new_incarnation(void **state)
{
    struct harness *h = *state;
    tcp(h, SIDE_PVM, 5000, 301, TCPF_SYN | TCPF_ACK, NULL);
    tcp(h, SIDE_SVM, 9000, 301, TCPF_SYN | TCPF_ACK, NULL);
    tcp(h, SIDE_PVM, 5001, 301, FA | TCPF_PSH, "old");
    tcp(h, SIDE_SVM, 5001, 301, FA | TCPF_PSH, "old");
    assert_int_equal(h->nreleased, 2);
    /* The client reuses its port: a new SYN with a new ISN, answered with new ISNs. */
    tcp(h, SIDE_PVM, 70000, 90001, TCPF_SYN | TCPF_ACK, NULL);
    assert_int_equal(h->nreleased, 2); /* waits for the SVM's SYN-ACK of this incarnation */
    tcp(h, SIDE_SVM, 123456, 90001, TCPF_SYN | TCPF_ACK, NULL);
    assert_int_equal(h->nreleased, 3);
    tcp(h, SIDE_PVM, 70001, 90001, PA, "new");
    tcp(h, SIDE_SVM, 70001, 90001, PA, "new");
    assert_int_equal(h->nreleased, 4);
    assert_int_equal(h->ndivs, 0);
    assert_int_equal(h->nrequests, 0);
}

static void test_tcp_port_reuse_svm_first(void **state)
{
    struct harness *h = *state;
    tcp(h, SIDE_PVM, 5000, 301, TCPF_SYN | TCPF_ACK, NULL);
    tcp(h, SIDE_SVM, 9000, 301, TCPF_SYN | TCPF_ACK, NULL);
    tcp(h, SIDE_PVM, 5001, 301, FA, "old");
    tcp(h, SIDE_SVM, 5001, 301, FA, "old");
    tcp(h, SIDE_SVM, 123456, 90001, TCPF_SYN | TCPF_ACK, NULL);
    tcp(h, SIDE_SVM, 70001, 90001, PA, "new");
    tcp(h, SIDE_PVM, 70000, 90001, TCPF_SYN | TCPF_ACK, NULL);
    tcp(h, SIDE_PVM, 70001, 90001, PA, "new");
    assert_int_equal(h->nreleased, 4);
    assert_int_equal(h->ndivs, 0);
}

/* ---- timeouts, queues, checkpoints ---- */

static void test_timeout_requests_checkpoint_at_deadline(void **state)
{
    struct harness *h = *state;
    uint64_t t0 = h->now;
    tcp(h, SIDE_PVM, 1000, 500, PA, "waiting");
    assert_int_equal(colo_compare_next_deadline(h->engine), t0 + 3000 * MS);
    colo_compare_tick(h->engine, t0 + 3000 * MS - 1);
    assert_int_equal(h->nrequests, 0);
    colo_compare_tick(h->engine, t0 + 3000 * MS);
    assert_int_equal(h->nrequests, 1);
    assert_int_equal(h->last_reason, CKPT_TIMEOUT);
    colo_compare_tick(h->engine, t0 + 9000 * MS);
    assert_int_equal(h->nrequests, 1);
    colo_compare_checkpoint_done(h->engine, t0 + 9000 * MS);
    assert_int_equal(h->nreleased, 1);
    assert_int_equal(h->reasons[0], RELEASE_CHECKPOINT);
}

static void test_timeout_tracks_oldest_held_packet(void **state)
{
    struct harness *h = *state;
    uint64_t t0 = h->now;
    tcp(h, SIDE_PVM, 1000, 500, PA, "one");
    h->now += 1000 * MS;
    tcp(h, SIDE_PVM, 1003, 500, PA, "two");
    tcp(h, SIDE_SVM, 1000, 500, PA, "one"); /* releases the oldest */
    assert_int_equal(h->nreleased, 1);
    assert_int_equal(colo_compare_next_deadline(h->engine), t0 + 4000 * MS);
}

static void test_queue_full_requests_checkpoint_and_drops_nothing(void **state)
{
    (void)state;
    struct harness *h = harness_bounded(64, 8);
    for (uint32_t i = 0; i < 20; i++)
        tcp(h, SIDE_PVM, 1000 + i, 500, PA, "z");
    assert_int_equal(h->nrequests, 1);
    assert_int_equal(h->last_reason, CKPT_QUEUE_FULL);
    assert_int_equal(colo_compare_stats(h->engine)->pvm_held, 20);
    colo_compare_checkpoint_done(h->engine, h->now);
    assert_int_equal(h->nreleased, 20);
    void *s = h;
    teardown(&s);
}

static void test_table_full_holds_packets_until_checkpoint(void **state)
{
    (void)state;
    struct harness *h = harness_bounded(4, 1024);
    for (uint16_t port = 1; port <= 6; port++) {
        struct frame_spec s = frame_guest_tcp(1000, 500, PA, "q", 1);
        s.dport = port;
        send_spec(h, SIDE_PVM, &s);
    }
    assert_int_equal(h->nrequests, 1);
    assert_int_equal(h->last_reason, CKPT_TABLE_FULL);
    assert_int_equal(colo_compare_stats(h->engine)->pvm_held, 6);
    colo_compare_checkpoint_done(h->engine, h->now);
    assert_int_equal(h->nreleased, 6);
    void *s = h;
    teardown(&s);
}

/* Client n of many (address and port drawn from n) sending to the guest. */
static struct frame_spec client_flow(uint32_t n)
{
    struct frame_spec s = frame_guest_tcp(1000, 500, PA, "q", 1);
    s.dport = (uint16_t)(1 + n % 65535);
    s.dst[2] = (uint8_t)(n / 65535);
    return s;
}

/* Clients whose flows share the low 12 bits of their hash in t: one home slot in a small table. */
static unsigned colliding_clients(struct conn_table *t, uint32_t *clients, unsigned count)
{
    unsigned found = 0;
    uint32_t home = UINT32_MAX;
    for (uint32_t n = 0; n < 65535u * 256 && found < count; n++) {
        struct frame_spec s = client_flow(n);
        uint8_t buf[256];
        struct pkt_view v;
        pkt_parse(buf, (uint32_t)frame_build(&s, buf, sizeof(buf)), &v);
        uint32_t h = conn_hash(t, &v.key) & 0xfffu;
        if (home == UINT32_MAX)
            home = h;
        if (h == home)
            clients[found++] = n;
    }
    return found;
}

static void test_probe_window_overflow_holds_packets_until_checkpoint(void **state)
{
    (void)state;
    struct harness *h = harness_bounded(64, 1024); /* 256 slots: far from full with CONN_PROBE_LIMIT flows */
    struct conn_table *t = (struct conn_table *)colo_compare_table(h->engine);
    const uint64_t key[2] = { 1, 2 };
    assert_true(conn_table_set_hash_key(t, key));
    uint32_t clients[CONN_PROBE_LIMIT + 2];
    assert_int_equal(colliding_clients(t, clients, CONN_PROBE_LIMIT + 2), CONN_PROBE_LIMIT + 2);
    for (unsigned i = 0; i < CONN_PROBE_LIMIT + 2; i++) {
        struct frame_spec s = client_flow(clients[i]);
        send_spec(h, SIDE_PVM, &s);
    }
    assert_int_equal(conn_table_stats(t)->in_use, CONN_PROBE_LIMIT);
    assert_int_equal(conn_table_stats(t)->probe_full, 2);
    assert_int_equal(h->nrequests, 1);
    assert_int_equal(h->last_reason, CKPT_TABLE_FULL);
    assert_int_equal(colo_compare_stats(h->engine)->pvm_held, CONN_PROBE_LIMIT + 2); /* nothing dropped */
    colo_compare_checkpoint_done(h->engine, h->now);
    assert_int_equal(h->nreleased, CONN_PROBE_LIMIT + 2);
    void *s = h;
    teardown(&s);
}

static void test_orphaned_connection_keeps_its_order_when_room_appears(void **state)
{
    (void)state;
    struct harness *h = harness_bounded(2, 1024);
    struct frame_spec rst = frame_guest_tcp(1000, 500, TCPF_RST, NULL, 0);
    send_spec(h, SIDE_SVM, &rst);
    send_spec(h, SIDE_PVM, &rst); /* connection 1: closed, evictable */
    struct frame_spec s = frame_guest_tcp(1000, 500, PA, "a", 1);
    s.dport = 2;
    send_spec(h, SIDE_PVM, &s); /* connection 2 holds a packet */
    s.dport = 3;
    send_spec(h, SIDE_PVM, &s); /* connection 3 evicts connection 1 */
    s.dport = 4;
    int first = send_spec(h, SIDE_PVM, &s); /* connection 4: no room, an orphan */
    assert_int_equal(h->last_reason, CKPT_TABLE_FULL);
    struct frame_spec svm = frame_guest_tcp(1000, 500, PA, "a", 1);
    svm.dport = 3;
    send_spec(h, SIDE_SVM, &svm); /* connection 3 matches and could make room */
    s = frame_guest_tcp(1001, 500, PA, "b", 1);
    s.dport = 4;
    int second = send_spec(h, SIDE_PVM, &s); /* must not overtake its orphaned first packet */
    colo_compare_checkpoint_done(h->engine, h->now);
    int at_first = -1, at_second = -1;
    for (size_t i = 0; i < h->nreleased; i++) {
        if ((int)h->released[i] == first)
            at_first = (int)i;
        if ((int)h->released[i] == second)
            at_second = (int)i;
    }
    assert_true(at_first >= 0 && at_second > at_first);
    assert_int_equal(total_released(h), h->pvm_sent);
    void *st = h;
    teardown(&st);
}

static void test_checkpoint_min_interval_defers_and_counts(void **state)
{
    (void)state;
    struct colo_compare_config cfg;
    colo_compare_config_default(&cfg);
    cfg.max_conns = 64;
    cfg.checkpoint_min_interval_ms = 100;
    struct harness *h = harness_new(&cfg);
    uint64_t t0 = h->now;
    tcp(h, SIDE_PVM, 1000, 500, PA, "x");
    tcp(h, SIDE_SVM, 1000, 500, PA, "y"); /* a divergence: asked at once */
    assert_int_equal(h->nrequests, 1);
    colo_compare_checkpoint_done(h->engine, h->now);
    h->now = t0 + 10 * MS;
    tcp(h, SIDE_PVM, 1001, 500, PA, "x");
    tcp(h, SIDE_SVM, 1001, 500, PA, "z"); /* another, 10 ms later: waits */
    assert_int_equal(h->nrequests, 1);
    assert_int_equal(colo_compare_stats(h->engine)->checkpoint_requests_deferred, 1);
    assert_int_equal(colo_compare_next_deadline(h->engine), t0 + 100 * MS);
    colo_compare_tick(h->engine, t0 + 99 * MS);
    assert_int_equal(h->nrequests, 1);
    colo_compare_tick(h->engine, t0 + 100 * MS);
    assert_int_equal(h->nrequests, 2);
    assert_int_equal(h->last_reason, CKPT_DIVERGENCE);
    colo_compare_checkpoint_done(h->engine, h->now);
    assert_int_equal(total_released(h), h->pvm_sent);
    void *st = h;
    teardown(&st);
}

static void test_table_full_evicts_closed_connection(void **state)
{
    (void)state;
    struct harness *h = harness_bounded(2, 1024);
    struct frame_spec s = frame_guest_tcp(1000, 500, TCPF_RST, NULL, 0);
    send_spec(h, SIDE_SVM, &s);
    send_spec(h, SIDE_PVM, &s); /* connection 1: reset both sides, closed, nothing held */
    s = frame_guest_tcp(1000, 500, PA, "busy", 4);
    s.dport = 2;
    send_spec(h, SIDE_PVM, &s); /* connection 2: holds a packet */
    s.dport = 3;
    send_spec(h, SIDE_PVM, &s); /* connection 3 evicts connection 1 */
    assert_int_equal(h->nrequests, 0);
    assert_int_equal(conn_table_stats(colo_compare_table(h->engine))->evicted, 1);
    void *st = h;
    teardown(&st);
}

static void test_checkpoint_done_releases_every_connection_in_order(void **state)
{
    struct harness *h = *state;
    for (uint32_t i = 0; i < 10; i++) {
        struct frame_spec s = frame_guest_tcp(1000 + i, 500, PA, "k", 1);
        s.dport = (uint16_t)(40000 + i % 3);
        send_spec(h, SIDE_PVM, &s);
    }
    tcp(h, SIDE_SVM, 1000, 500, PA, "Q");
    colo_compare_checkpoint_done(h->engine, h->now);
    assert_int_equal(h->nreleased, 10);
    /* Per-connection order is arrival order. */
    for (uint32_t a = 0; a < h->nreleased; a++)
        for (uint32_t b = a + 1; b < h->nreleased; b++)
            if (h->released[a] % 3 == h->released[b] % 3)
                assert_true(h->released[a] < h->released[b]);
    assert_int_equal(colo_compare_stats(h->engine)->svm_held, 0);
}

static void test_release_all_accounts_for_every_pvm_packet(void **state)
{
    struct harness *h = *state;
    tcp(h, SIDE_PVM, 1000, 500, PA, "a");
    tcp(h, SIDE_PVM, 5000, 500, TCPF_SYN | TCPF_ACK, NULL);
    struct frame_spec u = frame_guest_tcp(0, 0, 0, "udp", 3);
    u.proto = 17;
    send_spec(h, SIDE_PVM, &u);
    colo_compare_release_all(h->engine);
    assert_int_equal(total_released(h), 3);
    assert_int_equal(colo_compare_stats(h->engine)->pvm_held, 0);
}

/* ---- datagrams ---- */

static struct frame_spec udp_spec(const char *data, uint16_t ip_id)
{
    struct frame_spec s = frame_guest_tcp(0, 0, 0, data, (uint32_t)strlen(data));
    s.proto = 17;
    s.sport = 53;
    s.dport = 5353;
    s.ip_id = ip_id;
    return s;
}

static void test_udp_identical_stream_in_order_no_false_checkpoint(void **state)
{
    struct harness *h = *state;
    char msg[16];
    for (int i = 0; i < 500; i++) {
        snprintf(msg, sizeof(msg), "dgram-%04d", i);
        struct frame_spec s = udp_spec(msg, (uint16_t)i);
        send_spec(h, SIDE_PVM, &s);
    }
    for (int i = 0; i < 500; i++) {
        snprintf(msg, sizeof(msg), "dgram-%04d", i);
        struct frame_spec s = udp_spec(msg, (uint16_t)(i + 7000));
        send_spec(h, SIDE_SVM, &s);
    }
    assert_int_equal(h->nreleased, 500);
    assert_int_equal(h->nrequests, 0);
    for (uint32_t i = 0; i < 500; i++)
        assert_int_equal(h->released[i], i);
}

static void test_udp_difference_diverges(void **state)
{
    struct harness *h = *state;
    struct frame_spec p = udp_spec("answer=1", 1), s = udp_spec("answer=2", 1);
    send_spec(h, SIDE_PVM, &p);
    send_spec(h, SIDE_SVM, &s);
    assert_int_equal(h->ndivs, 1);
    assert_int_equal(h->last_kind, DIV_PAYLOAD);
    assert_int_equal(h->nrequests, 1);
}

static void test_udp_checksum_and_padding_ignored(void **state)
{
    struct harness *h = *state;
    struct frame_spec p = udp_spec("x", 1), s = udp_spec("x", 2);
    p.eth_pad = 17;
    p.pad_byte = 0xaa;
    s.eth_pad = 17;
    s.pad_byte = 0x55;
    struct tpkt tp, ts;
    size_t lp = frame_build(&p, tp.buf, sizeof(tp.buf));
    size_t ls = frame_build(&s, ts.buf, sizeof(ts.buf));
    tp.buf[14 + 20 + 6] = 0x12; /* UDP checksum: partial on the PVM */
    ts.buf[14 + 20 + 6] = 0x34;
    send_raw(h, SIDE_PVM, tp.buf, lp);
    send_raw(h, SIDE_SVM, ts.buf, ls);
    assert_int_equal(h->nreleased, 1);
    assert_int_equal(h->ndivs, 0);
}

static void test_udp_length_difference_diverges(void **state)
{
    struct harness *h = *state;
    struct frame_spec p = udp_spec("short", 1), s = udp_spec("longer", 1);
    send_spec(h, SIDE_PVM, &p);
    send_spec(h, SIDE_SVM, &s);
    assert_int_equal(h->ndivs, 1);
    assert_int_equal(h->last_kind, DIV_DATAGRAM_LEN);
}

static void test_icmp_echo_reply_compared(void **state)
{
    struct harness *h = *state;
    struct frame_spec s = frame_guest_tcp(0, 0, 0, "ping-data", 9);
    s.proto = 1;
    s.sport = 77; /* echo id */
    s.dport = 1;
    send_spec(h, SIDE_PVM, &s);
    send_spec(h, SIDE_SVM, &s);
    assert_int_equal(h->nreleased, 1);
}

static void test_other_ip_protocol_ignores_ip_id_and_ttl(void **state)
{
    struct harness *h = *state;
    struct frame_spec p = frame_guest_tcp(0, 0, 0, "gre-ish", 7);
    p.proto = 47;
    struct frame_spec s = p;
    p.ip_id = 1;
    s.ip_id = 999;
    s.ttl = 3;
    send_spec(h, SIDE_PVM, &p);
    send_spec(h, SIDE_SVM, &s);
    assert_int_equal(h->nreleased, 1);
    assert_int_equal(h->ndivs, 0);
}

static void test_ipv4_fragments_compared_fragment_by_fragment(void **state)
{
    struct harness *h = *state;
    struct frame_spec f1 = udp_spec("AAAAAAAAAAAAAAAA", 11);
    f1.more_frags = true;
    struct frame_spec f2 = udp_spec("BBBBBBBB", 11);
    f2.frag_off = 3;
    struct frame_spec g1 = f1, g2 = f2;
    g1.ip_id = g2.ip_id = 4242; /* fragment IDs differ between guests */
    send_spec(h, SIDE_PVM, &f1);
    send_spec(h, SIDE_PVM, &f2);
    send_spec(h, SIDE_SVM, &g1);
    send_spec(h, SIDE_SVM, &g2);
    assert_int_equal(h->nreleased, 2);
    assert_int_equal(h->ndivs, 0);
    struct frame_spec f3 = f2, g3 = f2;
    g3.payload = "BBBBBBBC";
    send_spec(h, SIDE_PVM, &f3);
    send_spec(h, SIDE_SVM, &g3);
    assert_int_equal(h->ndivs, 1);
}

static void test_ipv6_tcp_compared(void **state)
{
    struct harness *h = *state;
    struct frame_spec s = frame_guest_tcp(1000, 500, PA, "six", 3);
    s.family = 6;
    s.src[15] = 2;
    s.src[0] = 0xfd;
    s.dst[15] = 1;
    s.dst[0] = 0xfd;
    send_spec(h, SIDE_PVM, &s);
    assert_int_equal(h->nreleased, 0);
    struct frame_spec d = s;
    d.payload = "sIx";
    send_spec(h, SIDE_SVM, &d);
    assert_int_equal(h->ndivs, 1);
    assert_int_equal(h->last_offset, 1);
}

static void test_vlan_frames_compared_per_vlan(void **state)
{
    struct harness *h = *state;
    struct frame_spec v10 = frame_guest_tcp(1000, 500, PA, "tagged", 6);
    v10.nvlan = 1;
    v10.vlan[0] = 10;
    struct frame_spec v20 = v10;
    v20.vlan[0] = 20;
    send_spec(h, SIDE_PVM, &v10);
    send_spec(h, SIDE_SVM, &v20); /* same 5-tuple, other VLAN: another connection */
    assert_int_equal(h->nreleased, 0);
    send_spec(h, SIDE_SVM, &v10);
    assert_int_equal(h->nreleased, 1);
    assert_int_equal(h->ndivs, 0);
}

static void test_arp_extra_svm_requests_cause_no_divergence(void **state)
{
    struct harness *h = *state;
    uint8_t frame[64];
    const uint8_t me[4] = { 10, 0, 0, 2 }, gw[4] = { 10, 0, 0, 254 }, peer[4] = { 10, 0, 0, 1 };
    size_t n = frame_build_arp(me, gw, frame, sizeof(frame));
    send_raw(h, SIDE_SVM, frame, n);
    send_raw(h, SIDE_SVM, frame, n);
    n = frame_build_arp(me, peer, frame, sizeof(frame));
    send_raw(h, SIDE_SVM, frame, n);
    send_raw(h, SIDE_PVM, frame, n);
    assert_int_equal(h->nreleased, 1);
    assert_int_equal(h->ndivs, 0);
}

static void test_malformed_frame_compared_whole_and_counted(void **state)
{
    struct harness *h = *state;
    struct frame_spec s = frame_guest_tcp(1000, 500, PA, "x", 1);
    uint8_t buf[128];
    size_t n = frame_build(&s, buf, sizeof(buf));
    buf[14 + 2] = 0x05; /* IP total length beyond the frame */
    send_raw(h, SIDE_PVM, buf, n);
    send_raw(h, SIDE_SVM, buf, n);
    assert_int_equal(h->nreleased, 1);
    assert_int_equal(colo_compare_stats(h->engine)->malformed[PARSE_BAD_IP_LEN], 2);
}

/* ---- failover: the secondary is gone ---- */

/* Held packets of several connections, a UDP flow and the table-full orphans leave in arrival order. */
static void assert_released_in_arrival_order(const struct harness *h, size_t n, enum release_reason why)
{
    assert_int_equal(h->nreleased, n);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(h->released[i], i);
        assert_int_equal(h->reasons[i], why);
    }
}

static void test_failover_releases_every_held_packet_in_arrival_order(void **state)
{
    struct harness *h = *state;
    for (uint32_t i = 0; i < 12; i++) {
        struct frame_spec s = frame_guest_tcp(1000 + i, 500, PA, "k", 1);
        s.dport = (uint16_t)(40000 + i % 3);
        if (i % 4 == 3)
            s.proto = 17;
        send_spec(h, SIDE_PVM, &s);
    }
    tcp(h, SIDE_SVM, 7000, 500, PA, "unrelated");
    const struct colo_compare_stats *st = colo_compare_stats(h->engine);
    assert_int_equal(h->nreleased, 0); /* the precondition: everything is held */
    assert_int_equal(st->pvm_held, 12);
    assert_int_equal(colo_compare_go_alone(h->engine, h->now), 12);
    assert_released_in_arrival_order(h, 12, RELEASE_FAILOVER);
    assert_int_equal(st->pvm_held, 0);
    assert_int_equal(st->svm_held, 0);
    assert_true(colo_compare_alone(h->engine));
    assert_int_equal(colo_compare_go_alone(h->engine, h->now), 0); /* a second failover finds nothing */
    assert_int_equal(st->failovers, 1);
}

static void test_failover_releases_table_full_orphans_in_arrival_order(void **state)
{
    (void)state;
    struct harness *h = harness_bounded(4, 1024);
    for (uint16_t i = 0; i < 9; i++) {
        struct frame_spec s = frame_guest_tcp(1000u + i, 500, PA, "q", 1);
        s.dport = (uint16_t)(1 + i % 6); /* six connections for a table of four */
        send_spec(h, SIDE_PVM, &s);
    }
    assert_int_equal(h->last_reason, CKPT_TABLE_FULL); /* the precondition: some are orphans */
    assert_int_equal(colo_compare_stats(h->engine)->pvm_held, 9);
    colo_compare_go_alone(h->engine, h->now);
    assert_released_in_arrival_order(h, 9, RELEASE_FAILOVER);
    void *s = h;
    teardown(&s);
}

static void test_alone_passes_pvm_straight_and_asks_for_nothing(void **state)
{
    struct harness *h = *state;
    tcp(h, SIDE_PVM, 1000, 500, PA, "before");
    tcp(h, SIDE_SVM, 1000, 500, PA, "BEFORE"); /* a divergence: one request */
    assert_int_equal(h->nrequests, 1);
    assert_true(colo_compare_checkpoint_pending(h->engine));
    colo_compare_go_alone(h->engine, h->now);
    assert_false(colo_compare_checkpoint_pending(h->engine));
    tcp(h, SIDE_PVM, 1006, 500, PA, "after");
    tcp(h, SIDE_SVM, 1006, 500, PA, "AFTER");
    assert_int_equal(h->nreleased, 2);
    assert_int_equal(h->reasons[1], RELEASE_ALONE);
    assert_int_equal(colo_compare_stats(h->engine)->svm_alone, 1);
    assert_int_equal(colo_compare_stats(h->engine)->pvm_held, 0);
    h->now += 10000 * MS; /* far past compare_timeout */
    colo_compare_tick(h->engine, h->now);
    colo_compare_request_checkpoint(h->engine, CKPT_POOL_LOW, h->now);
    assert_int_equal(h->nrequests, 1);
    uint64_t asked = 0;
    for (int i = 0; i < CKPT_REASON_COUNT; i++)
        asked += colo_compare_stats(h->engine)->checkpoint_requests[i];
    assert_int_equal(asked, 1); /* no request counted that could never be sent */
    assert_int_equal(colo_compare_next_deadline(h->engine), UINT64_MAX);
    assert_int_equal(total_released(h), h->pvm_sent);
}

static void test_rejoin_compares_again_from_a_fresh_table(void **state)
{
    struct harness *h = *state;
    tcp(h, SIDE_PVM, 1000, 500, PA, "held");
    colo_compare_go_alone(h->engine, h->now);
    tcp(h, SIDE_PVM, 1004, 500, PA, "passed");
    assert_int_equal(h->nreleased, 2);
    assert_int_equal(colo_compare_rejoin(h->engine), 0);
    assert_false(colo_compare_alone(h->engine));
    tcp(h, SIDE_PVM, 1010, 500, PA, "compared");
    assert_int_equal(h->nreleased, 2); /* held again, until the new SVM's output matches */
    tcp(h, SIDE_SVM, 1010, 500, PA, "compared");
    assert_int_equal(h->nreleased, 3);
    assert_int_equal(h->reasons[2], RELEASE_MATCHED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
        T(test_tcp_identical_segments_match_and_release),
        T(test_tcp_svm_first_then_pvm_matches),
        T(test_tcp_resegmented_payload_matches),
        T(test_tcp_payload_difference_requests_one_checkpoint),
        T(test_tcp_fin_merged_vs_separate_matches),
        T(test_tcp_fin_separate_vs_merged_matches),
        T(test_tcp_fin_vs_data_diverges),
        T(test_tcp_rst_vs_fin_diverges),
        T(test_tcp_svm_rst_while_pvm_sends_data_diverges),
        T(test_tcp_pvm_rst_after_svm_data_in_a_hole_matches),
        T(test_tcp_pvm_rst_while_svm_sends_past_it_diverges),
        T(test_tcp_rst_matches_rst),
        T(test_tcp_pure_ack_released_at_once),
        T(test_tcp_pure_ack_waits_behind_held_data),
        T(test_tcp_ack_gating_holds_until_svm_acks),
        T(test_tcp_ack_gating_across_sequence_wrap),
        T(test_tcp_stream_across_sequence_wrap),
        T(test_tcp_synack_held_until_svm_synack),
        T(test_tcp_synack_for_another_client_syn_waits),
        T(test_tcp_retransmit_of_verified_bytes_released_uncompared),
        T(test_tcp_no_wait_for_bytes_svm_will_not_resend),
        T(test_tcp_stale_svm_after_checkpoint_causes_no_divergence),
        T(test_tcp_epoch_checkpoint_keeps_the_svm_output_after_its_resume),
        T(test_udp_epoch_checkpoint_keeps_new_and_drops_stale_in_order),
        T(test_legacy_checkpoint_discards_the_svm_output_after_its_resume),
        T(test_tcp_out_of_order_svm_segments_sorted),
        T(test_tcp_partial_overlap_offsets_verified),
        T(test_tcp_port_reuse_after_close_compares_new_incarnation),
        T(test_tcp_port_reuse_svm_first),
        T(test_timeout_requests_checkpoint_at_deadline),
        T(test_timeout_tracks_oldest_held_packet),
        cmocka_unit_test(test_queue_full_requests_checkpoint_and_drops_nothing),
        cmocka_unit_test(test_table_full_holds_packets_until_checkpoint),
        cmocka_unit_test(test_probe_window_overflow_holds_packets_until_checkpoint),
        cmocka_unit_test(test_table_full_evicts_closed_connection),
        cmocka_unit_test(test_orphaned_connection_keeps_its_order_when_room_appears),
        cmocka_unit_test(test_checkpoint_min_interval_defers_and_counts),
        T(test_checkpoint_done_releases_every_connection_in_order),
        T(test_release_all_accounts_for_every_pvm_packet),
        T(test_udp_identical_stream_in_order_no_false_checkpoint),
        T(test_udp_difference_diverges),
        T(test_udp_checksum_and_padding_ignored),
        T(test_udp_length_difference_diverges),
        T(test_icmp_echo_reply_compared),
        T(test_other_ip_protocol_ignores_ip_id_and_ttl),
        T(test_ipv4_fragments_compared_fragment_by_fragment),
        T(test_ipv6_tcp_compared),
        T(test_vlan_frames_compared_per_vlan),
        T(test_arp_extra_svm_requests_cause_no_divergence),
        T(test_malformed_frame_compared_whole_and_counted),
        T(test_failover_releases_every_held_packet_in_arrival_order),
        cmocka_unit_test(test_failover_releases_table_full_orphans_in_arrival_order),
        T(test_alone_passes_pvm_straight_and_asks_for_nothing),
        T(test_rejoin_compares_again_from_a_fresh_table),
#undef T
    };
    return cmocka_run_group_tests_name("compare", tests, NULL, NULL);
}
