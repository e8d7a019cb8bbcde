/*
 * announce.c — RARP, gratuitous ARP and unsolicited neighbour advertisements
 * for a VM that has moved, the addresses to announce, and the rounds' timing.
 *
 * Owns: the learned address table and the round schedule. Must never: write past
 * a frame buffer, announce an address the VM did not use, or keep announcing
 * after the last round.
 */
#include "colo/announce.h"

#include <string.h>

#define ETH_MIN_FRAME 60
#define ETHERTYPE_ARP 0x0806
#define ETHERTYPE_RARP 0x8035
#define ETHERTYPE_IPV6 0x86dd
#define ARP_REQUEST 1
#define RARP_REQUEST 3
#define ICMPV6_NA 136
#define NA_FLAG_OVERRIDE 0x20
#define ND_OPT_TARGET_LLADDR 2
#define FIRST_DELAY_NS 50000000ull
#define STEP_NS 100000000ull

static const uint8_t broadcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
static const uint8_t all_nodes_mac[6] = { 0x33, 0x33, 0x00, 0x00, 0x00, 0x01 };
static const uint8_t all_nodes_ip[16] = { 0xff, 0x02, [15] = 0x01 };

static uint8_t *put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
    return p + 2;
}

static uint8_t *put_bytes(uint8_t *p, const void *b, size_t n)
{
    memcpy(p, b, n);
    return p + n;
}

static uint8_t *put_eth(uint8_t *p, const uint8_t dst[6], const uint8_t src[6], uint16_t type)
{
    p = put_bytes(p, dst, 6);
    p = put_bytes(p, src, 6);
    return put16(p, type);
}

/* ARP-format body (RFC 826) for Ethernet/IPv4; returns the padded frame length. */
static uint32_t arp_frame(uint8_t *out, uint16_t ethertype, uint16_t op, const uint8_t sha[6],
                          const uint8_t spa[4], const uint8_t tha[6], const uint8_t tpa[4],
                          const uint8_t src_mac[6])
{
    memset(out, 0, ETH_MIN_FRAME);
    uint8_t *p = put_eth(out, broadcast, src_mac, ethertype);
    p = put16(p, 1);      /* Ethernet */
    p = put16(p, 0x0800); /* IPv4 */
    *p++ = 6;
    *p++ = 4;
    p = put16(p, op);
    p = put_bytes(p, sha, 6);
    p = put_bytes(p, spa, 4);
    p = put_bytes(p, tha, 6);
    put_bytes(p, tpa, 4);
    return ETH_MIN_FRAME;
}

uint32_t announce_rarp(const uint8_t mac[6], uint8_t *out)
{
    static const uint8_t zero_ip[4];
    return arp_frame(out, ETHERTYPE_RARP, RARP_REQUEST, mac, zero_ip, mac, zero_ip, mac);
}

uint32_t announce_garp(const uint8_t mac[6], const uint8_t ip[4], uint8_t *out)
{
    static const uint8_t zero_mac[6];
    return arp_frame(out, ETHERTYPE_ARP, ARP_REQUEST, mac, ip, zero_mac, ip, mac);
}

static uint16_t fold(uint32_t sum)
{
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}

static uint32_t sum16(const uint8_t *p, size_t n, uint32_t sum)
{
    for (size_t i = 0; i + 1 < n; i += 2)
        sum += (uint32_t)p[i] << 8 | p[i + 1];
    if (n & 1)
        sum += (uint32_t)p[n - 1] << 8;
    return sum;
}

uint32_t announce_na(const uint8_t mac[6], const uint8_t ip[16], uint8_t *out)
{
    enum { ICMP_LEN = 32 }; /* NA header 24 + target link-layer option 8 */
    uint8_t *p = put_eth(out, all_nodes_mac, mac, ETHERTYPE_IPV6);
    uint8_t *ip6 = p;
    *p++ = 0x60;
    *p++ = 0;
    *p++ = 0;
    *p++ = 0;
    p = put16(p, ICMP_LEN);
    *p++ = 58;  /* ICMPv6 */
    *p++ = 255; /* hop limit, as neighbour discovery requires */
    p = put_bytes(p, ip, 16);
    p = put_bytes(p, all_nodes_ip, 16);
    uint8_t *icmp = p;
    *p++ = ICMPV6_NA;
    *p++ = 0;
    p = put16(p, 0); /* checksum, below */
    *p++ = NA_FLAG_OVERRIDE;
    *p++ = 0;
    *p++ = 0;
    *p++ = 0;
    p = put_bytes(p, ip, 16);
    *p++ = ND_OPT_TARGET_LLADDR;
    *p++ = 1; /* in units of 8 bytes */
    p = put_bytes(p, mac, 6);
    uint32_t sum = sum16(ip6 + 8, 32, 0) + ICMP_LEN + 58;
    sum = sum16(icmp, ICMP_LEN, sum);
    put16(icmp + 2, fold(sum));
    return (uint32_t)(p - out);
}

void announce_init(struct announce *a, const uint8_t mac[6])
{
    memset(a, 0, sizeof(*a));
    memcpy(a->mac, mac, 6);
}

static bool known(const uint8_t *table, unsigned n, size_t width, const uint8_t *addr)
{
    for (unsigned i = 0; i < n; i++)
        if (memcmp(table + i * width, addr, width) == 0)
            return true;
    return false;
}

static void remember(struct announce *a, bool v6, const uint8_t *addr)
{
    static const uint8_t zero[16];
    size_t width = v6 ? 16 : 4;
    uint8_t *table = v6 ? &a->ipv6[0][0] : &a->ipv4[0][0];
    unsigned *n = v6 ? &a->n_ipv6 : &a->n_ipv4;
    if (memcmp(addr, zero, width) == 0 || (v6 && addr[0] == 0xff) || known(table, *n, width, addr))
        return;
    if (*n == ANNOUNCE_MAX_ADDRS) {
        a->addrs_dropped++;
        return;
    }
    memcpy(table + (*n)++ * width, addr, width);
}

void announce_learn(struct announce *a, const struct pkt_view *v)
{
    if (v->status != PARSE_OK || (v->key.family != FAMILY_IPV4 && v->key.family != FAMILY_IPV6))
        return;
    const uint8_t *sender = v->key.addr[v->dir_swapped ? 1 : 0];
    if (v->key.family == FAMILY_IPV4)
        remember(a, false, sender + 12); /* stored IPv4-mapped */
    else
        remember(a, true, sender);
}

void announce_start(struct announce *a, uint64_t now_ns)
{
    a->rounds_done = 0;
    a->next_ns = now_ns ? now_ns : 1;
}

unsigned announce_due(struct announce *a, uint64_t now_ns, struct announce_frame out[ANNOUNCE_MAX_FRAMES])
{
    if (!a->next_ns || now_ns < a->next_ns)
        return 0;
    unsigned n = 0;
    out[n].len = announce_rarp(a->mac, out[n].bytes);
    n++;
    for (unsigned i = 0; i < a->n_ipv4; i++, n++)
        out[n].len = announce_garp(a->mac, a->ipv4[i], out[n].bytes);
    for (unsigned i = 0; i < a->n_ipv6; i++, n++)
        out[n].len = announce_na(a->mac, a->ipv6[i], out[n].bytes);
    a->frames_sent += n;
    a->rounds_done++;
    a->next_ns = a->rounds_done == ANNOUNCE_ROUNDS
                     ? 0
                     : now_ns + FIRST_DELAY_NS + (uint64_t)(a->rounds_done - 1) * STEP_NS;
    return n;
}
