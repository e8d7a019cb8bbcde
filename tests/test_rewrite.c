/*
 * test_rewrite.c — the secondary's rewriter: its arithmetic (checked against a
 * full checksum recompute), and learning offsets for passive and active opens.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "colo/pkt_parse.h"
#include "colo/seq_rewrite.h"
#include "frame_builder.h"

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

struct built {
    uint8_t buf[512];
    size_t len;
    struct pkt_view v;
};

static void build(struct built *b, const struct frame_spec *s)
{
    b->len = frame_build(s, b->buf, sizeof(b->buf));
    assert_true(b->len > 0);
    frame_fill_checksums(b->buf, b->len);
    if (s->proto == 6)
        assert_true(frame_tcp_checksum_ok(b->buf, b->len));
    assert_int_equal(pkt_parse(b->buf, (uint32_t)b->len, &b->v), PARSE_OK);
}

static uint8_t *tcp(struct built *b)
{
    return b->buf + b->v.l4_off;
}

static uint32_t tcp_len(const struct built *b)
{
    return b->v.l3_end - b->v.l4_off;
}

/* NOP, SACK with two blocks, timestamps, EOL: every 32-bit field at an odd offset. */
static const uint8_t odd_options[] = {
    1, 5, 18, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x20, 0x00, 0xff, 0xff, 0xff, 0xf0,
    0x00, 0x00, 0x00, 0x08, 8, 10, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0, 0, 0,
};

static void test_checksum_update_matches_full_recompute(void **state)
{
    (void)state;
    struct frame_spec s = frame_guest_tcp(0xfffffff0u, 0x12345678u, TCPF_ACK | TCPF_PSH, "payload!", 8);
    s.tcp_options = odd_options;
    s.tcp_options_len = sizeof(odd_options);
    struct built b;
    build(&b, &s);
    tcp_shift_toward_svm(tcp(&b), tcp_len(&b), 0x9abcdef1u, 0x01020304u, true);
    assert_true(frame_tcp_checksum_ok(b.buf, b.len));
    assert_int_equal(rd32(tcp(&b) + 8), 0x12345678u + 0x9abcdef1u);
    /* SACK edges, at odd offsets 23, 27, 31, 35. */
    assert_int_equal(rd32(tcp(&b) + 23), 0x00001000u + 0x9abcdef1u);
    assert_int_equal(rd32(tcp(&b) + 27), 0x00002000u + 0x9abcdef1u);
    assert_int_equal(rd32(tcp(&b) + 31), 0xfffffff0u + 0x9abcdef1u); /* wraps */
    assert_int_equal(rd32(tcp(&b) + 35), 0x00000008u + 0x9abcdef1u);
    /* TSecr (at 45) shifted into the SVM's clock, TSval (at 41) untouched. */
    assert_int_equal(rd32(tcp(&b) + 41), 0x11223344u);
    assert_int_equal(rd32(tcp(&b) + 45), 0x55667788u + 0x01020304u);
}

static void test_toward_link_shifts_seq_and_tsval(void **state)
{
    (void)state;
    struct frame_spec s = frame_guest_tcp(0x00000005u, 77, TCPF_ACK, "abc", 3);
    s.tcp_options = odd_options;
    s.tcp_options_len = sizeof(odd_options);
    struct built b;
    build(&b, &s);
    tcp_shift_toward_link(tcp(&b), tcp_len(&b), 0x10u, 0x100u, true);
    assert_true(frame_tcp_checksum_ok(b.buf, b.len));
    assert_int_equal(rd32(tcp(&b) + 4), 0xfffffff5u); /* 5 - 16 wraps below zero */
    assert_int_equal(rd32(tcp(&b) + 8), 77);          /* ack is in the peer's space */
    assert_int_equal(rd32(tcp(&b) + 23), 0x00001000u); /* SACK edges too */
    assert_int_equal(rd32(tcp(&b) + 41), 0x11223344u - 0x100u);
    assert_int_equal(rd32(tcp(&b) + 45), 0x55667788u);
}

static void test_random_shifts_keep_checksums_valid(void **state)
{
    (void)state;
    srand(99);
    for (int i = 0; i < 20000; i++) {
        struct frame_spec s = frame_guest_tcp((uint32_t)rand() * 2654435761u,
                                              (uint32_t)rand() * 2246822519u, TCPF_ACK, "xyz", 3);
        s.tcp_options = odd_options;
        s.tcp_options_len = sizeof(odd_options);
        s.family = i % 2 ? 6 : 4;
        struct built b;
        build(&b, &s);
        uint32_t so = (uint32_t)rand() * 3266489917u, to = (uint32_t)rand() * 668265263u;
        if (i % 4 < 2)
            tcp_shift_toward_svm(tcp(&b), tcp_len(&b), so, to, true);
        else
            tcp_shift_toward_link(tcp(&b), tcp_len(&b), so, to, true);
        assert_true(frame_tcp_checksum_ok(b.buf, b.len));
    }
}

static void test_ipv6_checksum_updated(void **state)
{
    (void)state;
    struct frame_spec s = frame_guest_tcp(1000, 2000, TCPF_ACK, "v6", 2);
    s.family = 6;
    s.src[0] = 0xfd;
    s.dst[0] = 0xfd;
    s.tcp_timestamp = true;
    s.tsval = 5;
    s.tsecr = 6;
    struct built b;
    build(&b, &s);
    tcp_shift_toward_svm(tcp(&b), tcp_len(&b), 123456789u, 42u, true);
    assert_true(frame_tcp_checksum_ok(b.buf, b.len));
    assert_int_equal(rd32(tcp(&b) + 8), 2000u + 123456789u);
}

static void test_malformed_options_left_alone(void **state)
{
    (void)state;
    static const uint8_t bad[] = { 8, 40, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 }; /* length past the header */
    struct frame_spec s = frame_guest_tcp(1, 2, TCPF_ACK, NULL, 0);
    s.tcp_options = bad;
    s.tcp_options_len = sizeof(bad);
    struct built b;
    build(&b, &s);
    tcp_shift_toward_svm(tcp(&b), tcp_len(&b), 10, 10, true);
    assert_int_equal(rd32(tcp(&b) + 8), 12);
    assert_true(frame_tcp_checksum_ok(b.buf, b.len));
}

/* ---- learning ---- */

#define MAXP 64

struct harness {
    struct seq_rewriter *rw;
    struct built frames[MAXP];
    struct colo_pkt pkts[MAXP];
    int n;
    struct colo_pkt *to_svm[MAXP], *to_link[MAXP];
    int nsvm, nlink, ndrop;
};

static void h_to_svm(void *ctx, struct colo_pkt *p)
{
    struct harness *h = ctx;
    h->to_svm[h->nsvm++] = p;
}

static void h_to_link(void *ctx, struct colo_pkt *p)
{
    struct harness *h = ctx;
    h->to_link[h->nlink++] = p;
}

static void h_drop(void *ctx, struct colo_pkt *p)
{
    (void)p;
    ((struct harness *)ctx)->ndrop++;
}

static const struct seq_rewriter_ops hops = { h_to_svm, h_to_link, h_drop };

static int setup(void **state)
{
    struct harness *h = calloc(1, sizeof(*h));
    h->rw = seq_rewriter_create(1024, &hops, h);
    *state = h;
    return 0;
}

static int teardown(void **state)
{
    struct harness *h = *state;
    seq_rewriter_destroy(h->rw);
    free(h);
    return 0;
}

/* Client 10.0.0.1:40000 <-> guest 10.0.0.2:80. */
static struct colo_pkt *segment(struct harness *h, bool from_client, uint32_t seq, uint32_t ack,
                                uint8_t flags, const char *data, uint32_t tsval, uint32_t tsecr)
{
    struct frame_spec s = frame_guest_tcp(seq, ack, flags, data, data ? (uint32_t)strlen(data) : 0);
    if (from_client)
        frame_spec_reverse(&s);
    s.tcp_timestamp = true;
    s.tsval = tsval;
    s.tsecr = tsecr;
    struct built *b = &h->frames[h->n];
    build(b, &s);
    struct colo_pkt *p = &h->pkts[h->n++];
    p->frame = b->buf;
    p->frame_len = (uint32_t)b->len;
    p->view = b->v;
    return p;
}

static void from_link(struct harness *h, struct colo_pkt *p)
{
    seq_rewrite_from_link(h->rw, p, 1000000000ull);
}

static void from_svm(struct harness *h, struct colo_pkt *p)
{
    seq_rewrite_from_svm(h->rw, p, 1000000000ull);
}

static uint32_t seq_of(const struct colo_pkt *p) { return rd32(p->frame + p->view.l4_off + 4); }
static uint32_t ack_of(const struct colo_pkt *p) { return rd32(p->frame + p->view.l4_off + 8); }
static uint32_t tsval_of(const struct colo_pkt *p) { return rd32(p->frame + p->view.l4_off + 24); }
static uint32_t tsecr_of(const struct colo_pkt *p) { return rd32(p->frame + p->view.l4_off + 28); }

#define CLIENT_ISN 1000u
#define PVM_ISN 50000u
#define SVM_ISN 0xfffff000u /* the SVM's own ISN; the offset wraps */
#define PVM_TS 7000u
#define SVM_TS 900u

static void passive_handshake(struct harness *h)
{
    from_link(h, segment(h, true, CLIENT_ISN, 0, TCPF_SYN, NULL, 11, 0));
    from_svm(h, segment(h, false, SVM_ISN, CLIENT_ISN + 1, TCPF_SYN | TCPF_ACK, NULL, SVM_TS, 11));
    /* The client acknowledges the PVM's SYN-ACK (released by the primary). */
    from_link(h, segment(h, true, CLIENT_ISN + 1, PVM_ISN + 1, TCPF_ACK, NULL, 12, PVM_TS));
}

static void test_passive_open_learns_and_rewrites_both_ways(void **state)
{
    struct harness *h = *state;
    passive_handshake(h);
    assert_int_equal(h->nsvm, 2);
    assert_int_equal(ack_of(h->to_svm[1]), SVM_ISN + 1);
    assert_int_equal(tsecr_of(h->to_svm[1]), SVM_TS);
    assert_int_equal(seq_of(h->to_link[0]), SVM_ISN); /* the SYN-ACK keeps its own ISN */
    from_link(h, segment(h, true, CLIENT_ISN + 1, PVM_ISN + 1, TCPF_ACK | TCPF_PSH, "GET /", 13, PVM_TS + 5));
    assert_int_equal(ack_of(h->to_svm[2]), SVM_ISN + 1);
    assert_int_equal(tsecr_of(h->to_svm[2]), SVM_TS + 5);
    from_svm(h, segment(h, false, SVM_ISN + 1, CLIENT_ISN + 6, TCPF_ACK | TCPF_PSH, "200 OK", SVM_TS + 9, 13));
    assert_int_equal(seq_of(h->to_link[1]), PVM_ISN + 1);
    assert_int_equal(ack_of(h->to_link[1]), CLIENT_ISN + 6);
    assert_int_equal(tsval_of(h->to_link[1]), PVM_TS + 9);
    assert_true(frame_tcp_checksum_ok(h->to_link[1]->frame, h->to_link[1]->frame_len));
    assert_true(frame_tcp_checksum_ok(h->to_svm[2]->frame, h->to_svm[2]->frame_len));
    assert_int_equal(seq_rewriter_stats(h->rw)->learned_passive, 1);
}

static void test_client_ack_before_svm_synack_is_held_not_mislearned(void **state)
{
    struct harness *h = *state;
    from_link(h, segment(h, true, CLIENT_ISN, 0, TCPF_SYN, NULL, 11, 0));
    /* The PVM's SYN-ACK reached the client first: its ACK (and data) arrive early. */
    from_link(h, segment(h, true, CLIENT_ISN + 1, PVM_ISN + 1, TCPF_ACK, NULL, 12, PVM_TS));
    from_link(h, segment(h, true, CLIENT_ISN + 1, PVM_ISN + 1, TCPF_ACK | TCPF_PSH, "GET", 12, PVM_TS));
    assert_int_equal(h->nsvm, 1);
    assert_int_equal(seq_rewriter_stats(h->rw)->held_early, 2);
    from_svm(h, segment(h, false, SVM_ISN, CLIENT_ISN + 1, TCPF_SYN | TCPF_ACK, NULL, SVM_TS, 11));
    assert_int_equal(h->nsvm, 3);
    assert_int_equal(ack_of(h->to_svm[1]), SVM_ISN + 1);
    assert_int_equal(ack_of(h->to_svm[2]), SVM_ISN + 1);
    assert_int_equal(tsecr_of(h->to_svm[2]), SVM_TS);
    assert_int_equal(h->ndrop, 0);
}

static void test_held_segments_given_up_after_a_second(void **state)
{
    struct harness *h = *state;
    from_link(h, segment(h, true, CLIENT_ISN, 0, TCPF_SYN, NULL, 11, 0));
    from_link(h, segment(h, true, CLIENT_ISN + 1, PVM_ISN + 1, TCPF_ACK, NULL, 12, PVM_TS));
    seq_rewriter_tick(h->rw, 1500000000ull);
    assert_int_equal(h->ndrop, 0);
    seq_rewriter_tick(h->rw, 2100000000ull);
    assert_int_equal(h->ndrop, 1);
}

static void test_active_open_learns_from_peer_synack(void **state)
{
    struct harness *h = *state;
    /* The guest connects out: the SVM's SYN goes to the primary unchanged. */
    from_svm(h, segment(h, false, SVM_ISN, 0, TCPF_SYN, NULL, SVM_TS, 0));
    assert_int_equal(seq_of(h->to_link[0]), SVM_ISN);
    /* The server answers the PVM's SYN. */
    from_link(h, segment(h, true, 777, PVM_ISN + 1, TCPF_SYN | TCPF_ACK, NULL, 55, PVM_TS));
    assert_int_equal(ack_of(h->to_svm[0]), SVM_ISN + 1);
    assert_int_equal(tsecr_of(h->to_svm[0]), SVM_TS);
    from_svm(h, segment(h, false, SVM_ISN + 1, 778, TCPF_ACK | TCPF_PSH, "hello", SVM_TS + 1, 55));
    assert_int_equal(seq_of(h->to_link[1]), PVM_ISN + 1);
    assert_int_equal(seq_rewriter_stats(h->rw)->learned_active, 1);
}

static void test_checkpoint_resets_offsets_to_zero(void **state)
{
    struct harness *h = *state;
    passive_handshake(h);
    seq_rewriter_checkpoint_done(h->rw);
    /* The SVM now has the PVM's TCP state: its numbers are the PVM's. */
    from_svm(h, segment(h, false, PVM_ISN + 1, CLIENT_ISN + 1, TCPF_ACK, "x", PVM_TS + 1, 12));
    assert_int_equal(seq_of(h->to_link[1]), PVM_ISN + 1);
    assert_int_equal(tsval_of(h->to_link[1]), PVM_TS + 1);
    from_link(h, segment(h, true, CLIENT_ISN + 1, PVM_ISN + 2, TCPF_ACK, NULL, 14, PVM_TS + 1));
    assert_int_equal(ack_of(h->to_svm[2]), PVM_ISN + 2);
}

static void test_failover_keeps_old_connections_and_leaves_new_ones(void **state)
{
    struct harness *h = *state;
    passive_handshake(h);
    seq_rewriter_failover(h->rw);
    /* The connection from before goes on in the PVM's spaces, both ways. */
    from_link(h, segment(h, true, CLIENT_ISN + 1, PVM_ISN + 1, TCPF_ACK, NULL, 20, PVM_TS + 5));
    assert_int_equal(ack_of(h->to_svm[h->nsvm - 1]), SVM_ISN + 1);
    from_svm(h, segment(h, false, SVM_ISN + 1, CLIENT_ISN + 1, TCPF_ACK | TCPF_PSH, "late", SVM_TS + 9, 20));
    assert_int_equal(seq_of(h->to_link[h->nlink - 1]), PVM_ISN + 1);
    /* The client reuses the port for a new connection: it is the SVM's own, never rewritten. */
    from_link(h, segment(h, true, CLIENT_ISN + 5000, 0, TCPF_SYN, NULL, 30, 0));
    from_svm(h, segment(h, false, SVM_ISN + 7000, CLIENT_ISN + 5001, TCPF_SYN | TCPF_ACK, NULL, SVM_TS + 50, 30));
    from_link(h, segment(h, true, CLIENT_ISN + 5001, SVM_ISN + 7001, TCPF_ACK, NULL, 31, SVM_TS + 50));
    assert_int_equal(ack_of(h->to_svm[h->nsvm - 1]), SVM_ISN + 7001);
    assert_int_equal(tsecr_of(h->to_svm[h->nsvm - 1]), SVM_TS + 50);
    from_svm(h, segment(h, false, SVM_ISN + 7001, CLIENT_ISN + 5001, TCPF_ACK | TCPF_PSH, "new", SVM_TS + 60, 31));
    assert_int_equal(seq_of(h->to_link[h->nlink - 1]), SVM_ISN + 7001);
    assert_int_equal(tsval_of(h->to_link[h->nlink - 1]), SVM_TS + 60);
    assert_int_equal(h->ndrop, 0);
}

static void test_resume_after_failover_keeps_offsets(void **state)
{
    struct harness *h = *state;
    passive_handshake(h);
    seq_rewriter_failover(h->rw);
    /* The secondary QEMU's failover stops and resumes the VM: no checkpoint, the SVM keeps its own ISN. */
    seq_rewriter_checkpoint_done(h->rw);
    from_svm(h, segment(h, false, SVM_ISN + 1, CLIENT_ISN + 1, TCPF_ACK | TCPF_PSH, "token", SVM_TS + 9, 20));
    assert_int_equal(seq_of(h->to_link[h->nlink - 1]), PVM_ISN + 1);
    from_link(h, segment(h, true, CLIENT_ISN + 1, PVM_ISN + 6, TCPF_ACK, NULL, 21, PVM_TS + 5));
    assert_int_equal(ack_of(h->to_svm[h->nsvm - 1]), SVM_ISN + 6);
    assert_int_equal(seq_rewriter_stats(h->rw)->checkpoints, 0);
}

static void test_partial_checksum_left_to_offload(void **state)
{
    struct harness *h = *state;
    passive_handshake(h);
    struct colo_pkt *p = segment(h, false, SVM_ISN + 1, CLIENT_ISN + 1, TCPF_ACK, "d", SVM_TS, 12);
    uint16_t before = (uint16_t)(p->frame[p->view.l4_off + 16] << 8 | p->frame[p->view.l4_off + 17]);
    p->csum_partial = true;
    from_svm(h, p);
    uint16_t after = (uint16_t)(p->frame[p->view.l4_off + 16] << 8 | p->frame[p->view.l4_off + 17]);
    assert_int_equal(before, after);
    assert_int_equal(seq_of(p), PVM_ISN + 1);
}

static void test_non_tcp_passes_unchanged(void **state)
{
    struct harness *h = *state;
    struct frame_spec s = frame_guest_tcp(0, 0, 0, "udp", 3);
    s.proto = 17;
    struct built *b = &h->frames[h->n];
    build(b, &s);
    struct colo_pkt *p = &h->pkts[h->n++];
    p->frame = b->buf;
    p->frame_len = (uint32_t)b->len;
    p->view = b->v;
    uint8_t copy[512];
    memcpy(copy, b->buf, b->len);
    from_svm(h, p);
    assert_int_equal(h->nlink, 1);
    assert_memory_equal(copy, b->buf, b->len);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_checksum_update_matches_full_recompute),
        cmocka_unit_test(test_toward_link_shifts_seq_and_tsval),
        cmocka_unit_test(test_random_shifts_keep_checksums_valid),
        cmocka_unit_test(test_ipv6_checksum_updated),
        cmocka_unit_test(test_malformed_options_left_alone),
        cmocka_unit_test_setup_teardown(test_passive_open_learns_and_rewrites_both_ways, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_ack_before_svm_synack_is_held_not_mislearned, setup, teardown),
        cmocka_unit_test_setup_teardown(test_held_segments_given_up_after_a_second, setup, teardown),
        cmocka_unit_test_setup_teardown(test_active_open_learns_from_peer_synack, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoint_resets_offsets_to_zero, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failover_keeps_old_connections_and_leaves_new_ones, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resume_after_failover_keeps_offsets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_partial_checksum_left_to_offload, setup, teardown),
        cmocka_unit_test_setup_teardown(test_non_tcp_passes_unchanged, setup, teardown),
    };
    return cmocka_run_group_tests_name("rewrite", tests, NULL, NULL);
}
