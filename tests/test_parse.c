/*
 * test_parse.c — the frame parser on well-formed and hostile frames.
 *
 * Hostile frames are copied into buffers of exactly their length, so under
 * AddressSanitizer any read past the end fails the test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "colo/pkt_parse.h"
#include "frame_builder.h"

static enum parse_status parse_exact(const uint8_t *frame, size_t len, struct pkt_view *v)
{
    uint8_t *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    if (len)
        memcpy(copy, frame, len);
    enum parse_status st = pkt_parse(copy, (uint32_t)len, v);
    free(copy);
    return st;
}

static void test_ipv4_tcp_with_options(void **state)
{
    (void)state;
    uint8_t buf[256];
    struct frame_spec s = frame_guest_tcp(0x11223344, 0x55667788, TCPF_ACK | TCPF_PSH, "abc", 3);
    s.tcp_timestamp = true;
    size_t n = frame_build(&s, buf, sizeof(buf));
    struct pkt_view v;
    assert_int_equal(pkt_parse(buf, (uint32_t)n, &v), PARSE_OK);
    assert_int_equal(v.key.family, FAMILY_IPV4);
    assert_int_equal(v.key.proto, 6);
    assert_int_equal(v.l3_off, 14);
    assert_int_equal(v.l4_off, 34);
    assert_int_equal(v.payload_off, 34 + 32);
    assert_int_equal(v.payload_len, 3);
    assert_int_equal(v.tcp_seq, 0x11223344);
    assert_int_equal(v.tcp_ack, 0x55667788);
    assert_int_equal(v.tcp_flags, TCPF_ACK | TCPF_PSH);
    assert_memory_equal(buf + v.payload_off, "abc", 3);
}

static void test_ipv4_options_header_length(void **state)
{
    (void)state;
    uint8_t buf[256];
    struct frame_spec s = frame_guest_tcp(1, 2, TCPF_ACK, "zz", 2);
    size_t n = frame_build(&s, buf, sizeof(buf));
    /* Insert 4 bytes of IP options (NOPs) after the 20-byte header. */
    uint8_t opt[256];
    memcpy(opt, buf, 34);
    memset(opt + 34, 1, 4);
    memcpy(opt + 38, buf + 34, n - 34);
    opt[14] = 0x46;
    uint16_t total = (uint16_t)((buf[16] << 8 | buf[17]) + 4);
    opt[16] = (uint8_t)(total >> 8);
    opt[17] = (uint8_t)total;
    struct pkt_view v;
    assert_int_equal(parse_exact(opt, n + 4, &v), PARSE_OK);
    assert_int_equal(v.l4_off, 38);
    assert_int_equal(v.payload_len, 2);
}

static void test_ethernet_padding_is_not_payload(void **state)
{
    (void)state;
    uint8_t buf[256];
    struct frame_spec s = frame_guest_tcp(1, 2, TCPF_ACK, "p", 1);
    s.eth_pad = 5;
    s.pad_byte = 0xee;
    size_t n = frame_build(&s, buf, sizeof(buf));
    struct pkt_view v;
    assert_int_equal(pkt_parse(buf, (uint32_t)n, &v), PARSE_OK);
    assert_int_equal(v.payload_len, 1);
    assert_int_equal(v.l3_end, n - 5);
}

static void test_ipv4_bad_lengths_classified(void **state)
{
    (void)state;
    uint8_t buf[256];
    struct frame_spec s = frame_guest_tcp(1, 2, TCPF_ACK, "p", 1);
    size_t n = frame_build(&s, buf, sizeof(buf));
    struct pkt_view v;
    buf[16] = 0x10; /* total length far beyond the frame */
    assert_int_equal(parse_exact(buf, n, &v), PARSE_BAD_IP_LEN);
    assert_int_equal(v.status, PARSE_BAD_IP_LEN);
    assert_int_equal(v.payload_off + v.payload_len, n);
    frame_build(&s, buf, sizeof(buf));
    buf[14] = 0x44; /* IHL 4 */
    assert_int_equal(parse_exact(buf, n, &v), PARSE_BAD_IP_HDRLEN);
    frame_build(&s, buf, sizeof(buf));
    buf[14] = 0x55; /* version 5 */
    assert_int_equal(parse_exact(buf, n, &v), PARSE_BAD_IP_VERSION);
    frame_build(&s, buf, sizeof(buf));
    buf[14 + 20 + 12] = 0x10; /* TCP data offset 4 */
    assert_int_equal(parse_exact(buf, n, &v), PARSE_BAD_TCP_HDRLEN);
}

static void test_every_truncation_is_safe(void **state)
{
    (void)state;
    struct frame_spec specs[6];
    specs[0] = frame_guest_tcp(1, 2, TCPF_ACK, "payload", 7);
    specs[0].tcp_timestamp = true;
    specs[1] = specs[0];
    specs[1].family = 6;
    specs[2] = specs[0];
    specs[2].proto = 17;
    specs[3] = specs[0];
    specs[3].proto = 1;
    specs[4] = specs[0];
    specs[4].nvlan = 2;
    specs[4].vlan[0] = 5;
    specs[4].vlan[1] = 6;
    specs[5] = specs[1];
    specs[5].fragment = true;
    specs[5].more_frags = true;
    for (int k = 0; k < 6; k++) {
        uint8_t buf[256];
        size_t n = frame_build(&specs[k], buf, sizeof(buf));
        struct pkt_view v;
        assert_int_equal(parse_exact(buf, n, &v), PARSE_OK);
        for (size_t len = 0; len < n; len++) {
            parse_exact(buf, len, &v);
            assert_true(v.payload_off + v.payload_len <= len);
            assert_true(v.l3_end <= len);
        }
    }
}

static void test_random_frames_never_read_out_of_bounds(void **state)
{
    (void)state;
    srand(12345);
    uint8_t base[256];
    struct frame_spec s = frame_guest_tcp(1, 2, TCPF_ACK, "0123456789", 10);
    size_t n = frame_build(&s, base, sizeof(base));
    for (int i = 0; i < 200000; i++) {
        uint8_t buf[256];
        size_t len = (size_t)rand() % (n + 1);
        memcpy(buf, base, n);
        for (int m = rand() % 4; m >= 0; m--)
            buf[rand() % n] = (uint8_t)rand();
        if (i % 3 == 0) { /* steer toward IPv6 and VLAN paths */
            buf[12] = i % 2 ? 0x86 : 0x81;
            buf[13] = i % 2 ? 0xdd : 0x00;
        }
        struct pkt_view v;
        enum parse_status st = parse_exact(buf, len, &v);
        assert_true(st < PARSE_STATUS_COUNT);
        assert_true(v.payload_off + v.payload_len <= len);
    }
}

static void test_single_and_double_vlan(void **state)
{
    (void)state;
    uint8_t buf[256];
    struct frame_spec s = frame_guest_tcp(1, 2, TCPF_ACK, "v", 1);
    s.nvlan = 1;
    s.vlan[0] = 100;
    size_t n = frame_build(&s, buf, sizeof(buf));
    struct pkt_view v;
    assert_int_equal(pkt_parse(buf, (uint32_t)n, &v), PARSE_OK);
    assert_int_equal(v.key.vlan, 100);
    assert_int_equal(v.l3_off, 18);
    s.nvlan = 2;
    s.vlan[0] = 7;
    s.vlan[1] = 100;
    n = frame_build(&s, buf, sizeof(buf));
    assert_int_equal(pkt_parse(buf, (uint32_t)n, &v), PARSE_OK);
    assert_int_equal(v.key.vlan, 7u << 12 | 100);
    assert_int_equal(v.l3_off, 22);
    assert_int_equal(v.payload_len, 1);
}

static void test_three_vlan_tags_rejected(void **state)
{
    (void)state;
    uint8_t buf[256];
    struct frame_spec s = frame_guest_tcp(1, 2, TCPF_ACK, "v", 1);
    s.nvlan = 2;
    size_t n = frame_build(&s, buf, sizeof(buf));
    buf[20] = 0x81; /* the inner ethertype becomes a third tag */
    buf[21] = 0x00;
    struct pkt_view v;
    assert_int_equal(parse_exact(buf, n, &v), PARSE_TOO_MANY_VLANS);
}

static void test_ipv6_extension_headers_walked(void **state)
{
    (void)state;
    uint8_t buf[256];
    struct frame_spec s = frame_guest_tcp(9, 8, TCPF_ACK, "six", 3);
    s.family = 6;
    size_t n = frame_build(&s, buf, sizeof(buf));
    /* Insert a hop-by-hop and a destination-options header (8 bytes each). */
    uint8_t x[256];
    memcpy(x, buf, 54);
    uint8_t ext[16] = { 60, 0, 1, 4, 0, 0, 0, 0, 6, 0, 1, 4, 0, 0, 0, 0 };
    memcpy(x + 54, ext, 16);
    memcpy(x + 70, buf + 54, n - 54);
    x[14 + 6] = 0; /* next header: hop-by-hop */
    uint16_t plen = (uint16_t)((buf[18] << 8 | buf[19]) + 16);
    x[18] = (uint8_t)(plen >> 8);
    x[19] = (uint8_t)plen;
    struct pkt_view v;
    assert_int_equal(parse_exact(x, n + 16, &v), PARSE_OK);
    assert_int_equal(v.key.proto, 6);
    assert_int_equal(v.l4_off, 70);
    assert_int_equal(v.payload_len, 3);
    x[54 + 9] = 200; /* destination options claim 1608 bytes */
    assert_int_equal(parse_exact(x, n + 16, &v), PARSE_BAD_EXT_HDR);
}

static void test_ipv6_fragment_header(void **state)
{
    (void)state;
    uint8_t buf[256];
    struct frame_spec s = frame_guest_tcp(0, 0, 0, "fragment", 8);
    s.family = 6;
    s.proto = 17;
    s.fragment = true;
    s.frag_off = 2;
    s.more_frags = true;
    size_t n = frame_build(&s, buf, sizeof(buf));
    struct pkt_view v;
    assert_int_equal(pkt_parse(buf, (uint32_t)n, &v), PARSE_OK);
    assert_true(v.is_fragment);
    assert_true(v.more_frags);
    assert_int_equal(v.frag_off, 2);
    assert_int_equal(v.key.fragment, 1);
    assert_int_equal(v.key.port[0], 0);
    assert_int_equal(v.payload_len, 8);
}

static void test_ipv4_fragments_share_a_key(void **state)
{
    (void)state;
    uint8_t a[256], b[256];
    struct frame_spec f1 = frame_guest_tcp(0, 0, 0, "0123456789abcdef", 16);
    f1.proto = 17;
    f1.more_frags = true;
    struct frame_spec f2 = f1;
    f2.more_frags = false;
    f2.frag_off = 3;
    size_t na = frame_build(&f1, a, sizeof(a)), nb = frame_build(&f2, b, sizeof(b));
    struct pkt_view va, vb;
    assert_int_equal(pkt_parse(a, (uint32_t)na, &va), PARSE_OK);
    assert_int_equal(pkt_parse(b, (uint32_t)nb, &vb), PARSE_OK);
    assert_memory_equal(&va.key, &vb.key, sizeof(va.key));
    assert_int_equal(vb.payload_len, 16);
}

static void test_both_directions_share_a_key(void **state)
{
    (void)state;
    uint8_t a[256], b[256];
    struct frame_spec out = frame_guest_tcp(1, 2, TCPF_ACK, NULL, 0);
    struct frame_spec in = out;
    memcpy(in.src, out.dst, 16);
    memcpy(in.dst, out.src, 16);
    in.sport = out.dport;
    in.dport = out.sport;
    size_t na = frame_build(&out, a, sizeof(a)), nb = frame_build(&in, b, sizeof(b));
    struct pkt_view va, vb;
    pkt_parse(a, (uint32_t)na, &va);
    pkt_parse(b, (uint32_t)nb, &vb);
    assert_memory_equal(&va.key, &vb.key, sizeof(va.key));
    assert_true(va.dir_swapped != vb.dir_swapped);
    char text[160];
    flow_key_format(&va.key, va.dir_swapped, text, sizeof(text));
    assert_string_equal(text, "tcp 10.0.0.2:80 > 10.0.0.1:40000");
}

static void test_udp_icmp_and_arp(void **state)
{
    (void)state;
    uint8_t buf[256];
    struct frame_spec s = frame_guest_tcp(0, 0, 0, "dns", 3);
    s.proto = 17;
    size_t n = frame_build(&s, buf, sizeof(buf));
    struct pkt_view v;
    assert_int_equal(pkt_parse(buf, (uint32_t)n, &v), PARSE_OK);
    assert_int_equal(v.payload_len, 3);
    assert_int_equal(v.l4_off + 8, v.payload_off);
    s.proto = 1;
    s.sport = 0x4242;
    n = frame_build(&s, buf, sizeof(buf));
    assert_int_equal(pkt_parse(buf, (uint32_t)n, &v), PARSE_OK);
    assert_int_equal(v.key.port[0], 0x4242); /* echo id keys the ping session */
    const uint8_t a[4] = { 10, 0, 0, 2 }, b[4] = { 10, 0, 0, 1 };
    n = frame_build_arp(a, b, buf, sizeof(buf));
    assert_int_equal(pkt_parse(buf, (uint32_t)n, &v), PARSE_OK);
    assert_int_equal(v.key.family, FAMILY_OTHER);
    assert_int_equal(v.key.ethertype, 0x0806);
    assert_int_equal(v.payload_len, 28);
    assert_int_equal(parse_exact(buf, 30, &v), PARSE_TRUNC_ARP);
}

static void test_short_frames(void **state)
{
    (void)state;
    struct pkt_view v;
    uint8_t z[13] = { 0 };
    assert_int_equal(parse_exact(z, 0, &v), PARSE_TRUNC_L2);
    assert_int_equal(parse_exact(z, 13, &v), PARSE_TRUNC_L2);
    assert_string_equal(parse_status_name(PARSE_TRUNC_L2), "truncated_l2");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ipv4_tcp_with_options),
        cmocka_unit_test(test_ipv4_options_header_length),
        cmocka_unit_test(test_ethernet_padding_is_not_payload),
        cmocka_unit_test(test_ipv4_bad_lengths_classified),
        cmocka_unit_test(test_every_truncation_is_safe),
        cmocka_unit_test(test_random_frames_never_read_out_of_bounds),
        cmocka_unit_test(test_single_and_double_vlan),
        cmocka_unit_test(test_three_vlan_tags_rejected),
        cmocka_unit_test(test_ipv6_extension_headers_walked),
        cmocka_unit_test(test_ipv6_fragment_header),
        cmocka_unit_test(test_ipv4_fragments_share_a_key),
        cmocka_unit_test(test_both_directions_share_a_key),
        cmocka_unit_test(test_udp_icmp_and_arp),
        cmocka_unit_test(test_short_frames),
    };
    return cmocka_run_group_tests_name("parse", tests, NULL, NULL);
}
