/*
 * pkt_parse.c — bounds-checked parsing of Ethernet/VLAN/IPv4/IPv6/TCP/UDP/ICMP/ARP.
 *
 * Owns: turning untrusted frame bytes into a `struct pkt_view` (offsets, flow key,
 * TCP sequence fields). Every read is preceded by a length check against the
 * frame or against the end of the IP packet, whichever is nearer; Ethernet padding
 * after the IP packet is never treated as payload. Must never: read past `len`,
 * allocate, or keep state between calls.
 *
 * On a malformed frame the view still describes something safe to compare: the
 * key falls back to the innermost ethertype and the payload to the rest of the
 * frame, and the status names the defect so the caller can count it.
 */
#include "colo/pkt_parse.h"

#include <stdio.h>
#include <string.h>

#include "colo/byte_order.h"

#define ETH_HDR_LEN 14
#define VLAN_TAG_LEN 4
#define MAX_VLAN_TAGS 2
#define IPV4_MIN_HDR 20
#define IPV6_HDR_LEN 40
#define TCP_MIN_HDR 20
#define UDP_HDR_LEN 8
#define ICMP_MIN_HDR 4
#define ICMP_ECHO_HDR 8
#define ARP_FIXED_LEN 8
#define IPV6_MAX_EXT_HDRS 8

enum {
    ETHERTYPE_IPV4 = 0x0800,
    ETHERTYPE_ARP = 0x0806,
    ETHERTYPE_VLAN = 0x8100,
    ETHERTYPE_QINQ = 0x88a8,
    ETHERTYPE_QINQ_OLD = 0x9100,
    ETHERTYPE_IPV6 = 0x86dd,
};

enum {
    IPPROTO_HOPOPTS_ = 0, IPPROTO_ICMP_ = 1, IPPROTO_TCP_ = 6, IPPROTO_UDP_ = 17,
    IPPROTO_ROUTING_ = 43, IPPROTO_FRAGMENT_ = 44, IPPROTO_AH_ = 51,
    IPPROTO_ICMPV6_ = 58, IPPROTO_NONE_ = 59, IPPROTO_DSTOPTS_ = 60,
    IPPROTO_MOBILITY_ = 135,
};

static void set_ipv4_mapped(uint8_t dst[16], const uint8_t *v4)
{
    memset(dst, 0, 10);
    dst[10] = 0xff;
    dst[11] = 0xff;
    memcpy(dst + 12, v4, 4);
}

/* Orders the two endpoints so both directions of a flow produce the same key. */
static void normalise_key(struct pkt_view *v)
{
    struct flow_key *k = &v->key;
    int c = memcmp(k->addr[0], k->addr[1], 16);
    if (c > 0 || (c == 0 && k->port[0] > k->port[1])) {
        uint8_t tmp[16];
        memcpy(tmp, k->addr[0], 16);
        memcpy(k->addr[0], k->addr[1], 16);
        memcpy(k->addr[1], tmp, 16);
        uint16_t p = k->port[0];
        k->port[0] = k->port[1];
        k->port[1] = p;
        v->dir_swapped = true;
    }
}

/* Falls back to "compare the rest of the frame" after a defect at `off`. */
static enum parse_status fail(struct pkt_view *v, uint32_t len, enum parse_status st)
{
    v->key.proto = 0;
    v->key.family = FAMILY_OTHER;
    v->key.fragment = 0;
    v->key.port[0] = v->key.port[1] = 0;
    memset(v->key.addr, 0, sizeof(v->key.addr));
    v->dir_swapped = false;
    v->is_fragment = false;
    v->tcp_flags = 0;
    if (v->l3_off > len)
        v->l3_off = len;
    v->l4_off = v->payload_off = v->l3_off;
    v->payload_len = len - v->l3_off;
    v->l3_end = len;
    v->status = (uint8_t)st;
    return st;
}

static bool is_icmp_echo(uint8_t proto, uint8_t type)
{
    if (proto == IPPROTO_ICMP_)
        return type == 0 || type == 8;
    return type == 128 || type == 129;
}

/* Transport header at v->l4_off, bounded by v->l3_end. */
static enum parse_status parse_l4(const uint8_t *f, uint32_t len, struct pkt_view *v)
{
    uint32_t off = v->l4_off, avail = v->l3_end - off;
    v->payload_off = off;
    v->payload_len = avail;
    if (v->is_fragment) {
        v->key.fragment = 1;
        return PARSE_OK;
    }
    switch (v->key.proto) {
    case IPPROTO_TCP_: {
        if (avail < TCP_MIN_HDR)
            return fail(v, len, PARSE_TRUNC_L4);
        uint32_t hl = (uint32_t)(f[off + 12] >> 4) * 4;
        if (hl < TCP_MIN_HDR || hl > avail)
            return fail(v, len, PARSE_BAD_TCP_HDRLEN);
        v->key.port[0] = get_be16(f + off);
        v->key.port[1] = get_be16(f + off + 2);
        v->tcp_seq = get_be32(f + off + 4);
        v->tcp_ack = get_be32(f + off + 8);
        v->tcp_flags = f[off + 13] & 0x3f;
        v->payload_off = off + hl;
        v->payload_len = avail - hl;
        return PARSE_OK;
    }
    case IPPROTO_UDP_:
        if (avail < UDP_HDR_LEN)
            return fail(v, len, PARSE_TRUNC_L4);
        v->key.port[0] = get_be16(f + off);
        v->key.port[1] = get_be16(f + off + 2);
        v->payload_off = off + UDP_HDR_LEN;
        v->payload_len = avail - UDP_HDR_LEN;
        return PARSE_OK;
    case IPPROTO_ICMP_:
    case IPPROTO_ICMPV6_:
        if (avail < ICMP_MIN_HDR)
            return fail(v, len, PARSE_TRUNC_L4);
        /* Echo id keys each ping session as its own flow, in both directions. */
        if (is_icmp_echo(v->key.proto, f[off]) && avail >= ICMP_ECHO_HDR)
            v->key.port[0] = v->key.port[1] = get_be16(f + off + 4);
        v->payload_off = off + ICMP_MIN_HDR;
        v->payload_len = avail - ICMP_MIN_HDR;
        return PARSE_OK;
    default:
        return PARSE_OK;
    }
}

static enum parse_status parse_ipv4(const uint8_t *f, uint32_t len, struct pkt_view *v)
{
    uint32_t off = v->l3_off;
    if (len - off < IPV4_MIN_HDR)
        return fail(v, len, PARSE_TRUNC_L3);
    if (f[off] >> 4 != 4)
        return fail(v, len, PARSE_BAD_IP_VERSION);
    uint32_t ihl = (uint32_t)(f[off] & 0x0f) * 4;
    uint32_t total = get_be16(f + off + 2);
    if (total > len - off)
        return fail(v, len, PARSE_BAD_IP_LEN);
    if (ihl < IPV4_MIN_HDR || ihl > total)
        return fail(v, len, PARSE_BAD_IP_HDRLEN);
    uint16_t frag = get_be16(f + off + 6);
    v->more_frags = (frag & 0x2000) != 0;
    v->frag_off = frag & 0x1fff;
    v->is_fragment = v->more_frags || v->frag_off != 0;
    v->key.family = FAMILY_IPV4;
    v->key.proto = f[off + 9];
    set_ipv4_mapped(v->key.addr[0], f + off + 12);
    set_ipv4_mapped(v->key.addr[1], f + off + 16);
    v->l3_end = off + total;
    v->l4_off = off + ihl;
    return parse_l4(f, len, v);
}

static bool is_ipv6_ext_hdr(uint8_t nh)
{
    return nh == IPPROTO_HOPOPTS_ || nh == IPPROTO_ROUTING_ || nh == IPPROTO_FRAGMENT_ ||
           nh == IPPROTO_AH_ || nh == IPPROTO_DSTOPTS_ || nh == IPPROTO_MOBILITY_;
}

static enum parse_status parse_ipv6(const uint8_t *f, uint32_t len, struct pkt_view *v)
{
    uint32_t off = v->l3_off;
    if (len - off < IPV6_HDR_LEN)
        return fail(v, len, PARSE_TRUNC_L3);
    if (f[off] >> 4 != 6)
        return fail(v, len, PARSE_BAD_IP_VERSION);
    uint32_t plen = get_be16(f + off + 4);
    if (plen > len - off - IPV6_HDR_LEN)
        return fail(v, len, PARSE_BAD_IP_LEN);
    v->key.family = FAMILY_IPV6;
    memcpy(v->key.addr[0], f + off + 8, 16);
    memcpy(v->key.addr[1], f + off + 24, 16);
    v->l3_end = off + IPV6_HDR_LEN + plen;
    uint8_t nh = f[off + 6];
    uint32_t p = off + IPV6_HDR_LEN;
    for (int i = 0; is_ipv6_ext_hdr(nh); i++) {
        if (i == IPV6_MAX_EXT_HDRS || v->l3_end - p < 8)
            return fail(v, len, PARSE_BAD_EXT_HDR);
        uint32_t hl;
        if (nh == IPPROTO_FRAGMENT_) {
            uint16_t fo = get_be16(f + p + 2);
            v->frag_off = fo >> 3;
            v->more_frags = (fo & 1) != 0;
            v->is_fragment = v->more_frags || v->frag_off != 0;
            hl = 8;
        } else if (nh == IPPROTO_AH_) {
            hl = ((uint32_t)f[p + 1] + 2) * 4;
        } else {
            hl = ((uint32_t)f[p + 1] + 1) * 8;
        }
        if (hl > v->l3_end - p)
            return fail(v, len, PARSE_BAD_EXT_HDR);
        nh = f[p];
        p += hl;
        if (v->is_fragment && v->frag_off != 0)
            break; /* later fragments carry no further headers */
    }
    v->key.proto = nh;
    v->l4_off = p;
    return parse_l4(f, len, v);
}

static enum parse_status parse_arp(const uint8_t *f, uint32_t len, struct pkt_view *v)
{
    uint32_t off = v->l3_off;
    if (len - off < ARP_FIXED_LEN)
        return fail(v, len, PARSE_TRUNC_ARP);
    uint32_t hlen = f[off + 4], plen = f[off + 5];
    uint32_t body = ARP_FIXED_LEN + 2 * (hlen + plen);
    if (len - off < body)
        return fail(v, len, PARSE_TRUNC_ARP);
    v->l3_end = off + body;
    v->l4_off = v->payload_off = off;
    v->payload_len = body;
    /* Key ARP by its protocol addresses so each resolution is its own flow. */
    if (plen == 4) {
        set_ipv4_mapped(v->key.addr[0], f + off + ARP_FIXED_LEN + hlen);
        set_ipv4_mapped(v->key.addr[1], f + off + ARP_FIXED_LEN + 2 * hlen + plen);
    }
    return PARSE_OK;
}

static enum parse_status parse_l2(const uint8_t *f, uint32_t len, struct pkt_view *v)
{
    if (len < ETH_HDR_LEN)
        return fail(v, len, PARSE_TRUNC_L2);
    uint32_t off = 12;
    uint16_t type = get_be16(f + off);
    int tags = 0;
    while (type == ETHERTYPE_VLAN || type == ETHERTYPE_QINQ || type == ETHERTYPE_QINQ_OLD) {
        if (tags == MAX_VLAN_TAGS) {
            v->l3_off = off + 2;
            return fail(v, len, PARSE_TOO_MANY_VLANS);
        }
        if (len - off < 2 + VLAN_TAG_LEN) {
            v->l3_off = len;
            return fail(v, len, PARSE_TRUNC_L2);
        }
        v->key.vlan = v->key.vlan << 12 | (get_be16(f + off + 2) & 0x0fff);
        off += VLAN_TAG_LEN;
        type = get_be16(f + off);
        tags++;
    }
    v->key.ethertype = type;
    v->l3_off = off + 2;
    return PARSE_OK;
}

enum parse_status pkt_parse(const uint8_t *frame, uint32_t len, struct pkt_view *v)
{
    memset(v, 0, sizeof(*v));
    enum parse_status st = parse_l2(frame, len, v);
    if (st != PARSE_OK)
        return st;
    switch (v->key.ethertype) {
    case ETHERTYPE_IPV4:
        st = parse_ipv4(frame, len, v);
        break;
    case ETHERTYPE_IPV6:
        st = parse_ipv6(frame, len, v);
        break;
    case ETHERTYPE_ARP:
        st = parse_arp(frame, len, v);
        break;
    default:
        v->l4_off = v->payload_off = v->l3_off;
        v->payload_len = len - v->l3_off;
        v->l3_end = len;
        break;
    }
    if (st == PARSE_OK)
        normalise_key(v);
    return st;
}

const char *parse_status_name(enum parse_status status)
{
    static const char *const names[PARSE_STATUS_COUNT] = {
        [PARSE_OK] = "ok",
        [PARSE_TRUNC_L2] = "truncated_l2",
        [PARSE_TOO_MANY_VLANS] = "too_many_vlans",
        [PARSE_TRUNC_L3] = "truncated_l3",
        [PARSE_BAD_IP_VERSION] = "bad_ip_version",
        [PARSE_BAD_IP_HDRLEN] = "bad_ip_header_length",
        [PARSE_BAD_IP_LEN] = "bad_ip_total_length",
        [PARSE_BAD_EXT_HDR] = "bad_ipv6_extension_header",
        [PARSE_TRUNC_L4] = "truncated_l4",
        [PARSE_BAD_TCP_HDRLEN] = "bad_tcp_header_length",
        [PARSE_TRUNC_ARP] = "truncated_arp",
    };
    return (unsigned)status < PARSE_STATUS_COUNT ? names[status] : "unknown";
}

static void format_addr(const struct flow_key *k, int i, char *buf, unsigned size)
{
    const uint8_t *a = k->addr[i];
    if (k->family == FAMILY_IPV6) {
        snprintf(buf, size, "[%x:%x:%x:%x:%x:%x:%x:%x]", get_be16(a), get_be16(a + 2), get_be16(a + 4),
                 get_be16(a + 6), get_be16(a + 8), get_be16(a + 10), get_be16(a + 12), get_be16(a + 14));
    } else {
        snprintf(buf, size, "%u.%u.%u.%u", a[12], a[13], a[14], a[15]);
    }
}

void flow_key_format(const struct flow_key *k, bool swapped, char *buf, unsigned size)
{
    char a[48], b[48], vlan[24] = "";
    int s = swapped ? 1 : 0;
    format_addr(k, s, a, sizeof(a));
    format_addr(k, !s, b, sizeof(b));
    if (k->vlan)
        snprintf(vlan, sizeof(vlan), " vlan %u", k->vlan);
    const char *proto = k->proto == IPPROTO_TCP_ ? "tcp"
                        : k->proto == IPPROTO_UDP_ ? "udp"
                        : k->proto == IPPROTO_ICMP_ ? "icmp"
                        : k->proto == IPPROTO_ICMPV6_ ? "icmp6" : NULL;
    if (k->family == FAMILY_OTHER) {
        snprintf(buf, size, "ethertype 0x%04x %s > %s%s", k->ethertype, a, b, vlan);
    } else if (k->fragment) {
        snprintf(buf, size, "ip-fragments proto %u %s > %s%s", k->proto, a, b, vlan);
    } else if (proto) {
        snprintf(buf, size, "%s %s:%u > %s:%u%s", proto, a, k->port[s], b, k->port[!s], vlan);
    } else {
        snprintf(buf, size, "ip proto %u %s > %s%s", k->proto, a, b, vlan);
    }
}
