/*
 * test_announce.c — RARP, gratuitous ARP and neighbour advertisement frames,
 * learning the VM's addresses, and the rounds' timing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "colo/announce.h"
#include "colo/pkt_parse.h"
#include "frame_builder.h"

#define MS 1000000ull

static const uint8_t vm_mac[6] = { 0x52, 0x54, 0x00, 0x77, 0x00, 0x02 };
static const uint8_t vm_ip4[4] = { 10, 77, 0, 2 };
static const uint8_t vm_ip6[16] = { 0xfd, 0x00, [15] = 0x02 };

static uint16_t be16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static void test_rarp_is_qemus_announcement(void **state)
{
    (void)state;
    uint8_t f[ANNOUNCE_FRAME_MAX];
    assert_int_equal(announce_rarp(vm_mac, f), 60);
    assert_memory_equal(f, "\xff\xff\xff\xff\xff\xff", 6);
    assert_memory_equal(f + 6, vm_mac, 6);
    assert_int_equal(be16(f + 12), 0x8035);
    assert_int_equal(be16(f + 20), 3);            /* reverse request */
    assert_memory_equal(f + 22, vm_mac, 6);       /* sender hardware address */
    assert_memory_equal(f + 32, vm_mac, 6);       /* target hardware address */
}

static void test_gratuitous_arp_names_the_address_twice(void **state)
{
    (void)state;
    uint8_t f[ANNOUNCE_FRAME_MAX];
    uint32_t len = announce_garp(vm_mac, vm_ip4, f);
    assert_int_equal(len, 60);
    struct pkt_view v;
    assert_int_equal(pkt_parse(f, len, &v), PARSE_OK);
    assert_int_equal(v.key.ethertype, 0x0806);
    assert_int_equal(be16(f + 20), 1);            /* request */
    assert_memory_equal(f + 28, vm_ip4, 4);       /* sender protocol address */
    assert_memory_equal(f + 38, vm_ip4, 4);       /* target protocol address */
    assert_memory_equal(f, "\xff\xff\xff\xff\xff\xff", 6);
}

static void test_neighbour_advertisement_overrides_and_checks_out(void **state)
{
    (void)state;
    uint8_t f[ANNOUNCE_FRAME_MAX];
    uint32_t len = announce_na(vm_mac, vm_ip6, f);
    assert_int_equal(len, 86);
    struct pkt_view v;
    assert_int_equal(pkt_parse(f, len, &v), PARSE_OK);
    assert_int_equal(v.key.family, FAMILY_IPV6);
    assert_int_equal(v.key.proto, 58);
    assert_memory_equal(f, "\x33\x33\x00\x00\x00\x01", 6);
    assert_int_equal(f[21], 255);                 /* hop limit */
    const uint8_t *icmp = f + 54;
    assert_int_equal(icmp[0], 136);
    assert_int_equal(icmp[4], 0x20);              /* override, not solicited */
    assert_memory_equal(icmp + 8, vm_ip6, 16);    /* target */
    assert_int_equal(icmp[24], 2);                /* target link-layer address option */
    assert_memory_equal(icmp + 26, vm_mac, 6);
    /* The checksum over pseudo-header and message folds to zero. */
    uint32_t sum = 0;
    for (int i = 0; i < 32; i += 2)
        sum += be16(f + 22 + i);
    sum += 32 + 58;
    for (int i = 0; i < 32; i += 2)
        sum += be16(icmp + i);
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    assert_int_equal(sum, 0xffff);
}

static struct pkt_view view_from(int family, const uint8_t *src)
{
    static uint8_t frame[256];
    struct frame_spec s = frame_guest_tcp(1, 1, TCPF_ACK, NULL, 0);
    s.family = family;
    memset(s.src, 0, 16);
    memcpy(s.src, src, family == 4 ? 4 : 16);
    memset(s.dst, 0, 16);
    s.dst[0] = family == 4 ? 10 : 0xfd;
    s.dst[15] = 9;
    s.dst[3] = family == 4 ? 9 : 0;
    size_t n = frame_build(&s, frame, sizeof(frame));
    struct pkt_view v;
    pkt_parse(frame, (uint32_t)n, &v);
    return v;
}

static void test_learns_each_sender_address_once(void **state)
{
    (void)state;
    struct announce a;
    announce_init(&a, vm_mac);
    for (int i = 0; i < 3; i++) {
        struct pkt_view v4 = view_from(4, vm_ip4), v6 = view_from(6, vm_ip6);
        announce_learn(&a, &v4);
        announce_learn(&a, &v6);
    }
    assert_int_equal(a.n_ipv4, 1);
    assert_int_equal(a.n_ipv6, 1);
    assert_memory_equal(a.ipv4[0], vm_ip4, 4);
    assert_memory_equal(a.ipv6[0], vm_ip6, 16);
    static const uint8_t zero[16];
    struct pkt_view vz = view_from(4, zero);
    announce_learn(&a, &vz);
    assert_int_equal(a.n_ipv4, 1);
}

static void test_table_is_bounded_and_overflow_counted(void **state)
{
    (void)state;
    struct announce a;
    announce_init(&a, vm_mac);
    for (uint8_t i = 1; i <= ANNOUNCE_MAX_ADDRS + 3; i++) {
        uint8_t ip[4] = { 10, 0, 0, i };
        struct pkt_view v = view_from(4, ip);
        announce_learn(&a, &v);
    }
    assert_int_equal(a.n_ipv4, ANNOUNCE_MAX_ADDRS);
    assert_int_equal(a.addrs_dropped, 3);
}

static void test_five_rounds_with_back_off_then_silence(void **state)
{
    (void)state;
    struct announce a;
    announce_init(&a, vm_mac);
    struct pkt_view v4 = view_from(4, vm_ip4), v6 = view_from(6, vm_ip6);
    announce_learn(&a, &v4);
    announce_learn(&a, &v6);
    struct announce_frame out[ANNOUNCE_MAX_FRAMES];
    uint64_t t = 1000 * MS;
    assert_int_equal(announce_due(&a, t, out), 0); /* not started */
    announce_start(&a, t);
    uint64_t expected_gap[ANNOUNCE_ROUNDS] = { 0, 50 * MS, 150 * MS, 250 * MS, 350 * MS };
    for (int round = 0; round < ANNOUNCE_ROUNDS; round++) {
        t += expected_gap[round];
        if (round)
            assert_int_equal(announce_due(&a, t - 1, out), 0);
        assert_int_equal(announce_due(&a, t, out), 3); /* RARP, GARP, NA */
    }
    assert_int_equal(announce_due(&a, t + 10000 * MS, out), 0);
    assert_int_equal(a.frames_sent, 15);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rarp_is_qemus_announcement),
        cmocka_unit_test(test_gratuitous_arp_names_the_address_twice),
        cmocka_unit_test(test_neighbour_advertisement_overrides_and_checks_out),
        cmocka_unit_test(test_learns_each_sender_address_once),
        cmocka_unit_test(test_table_is_bounded_and_overflow_counted),
        cmocka_unit_test(test_five_rounds_with_back_off_then_silence),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
