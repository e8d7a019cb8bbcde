/*
 * frame_builder.c — writes the frames frame_builder.h describes.
 */
#include "frame_builder.h"

#include <string.h>

static uint8_t *put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
    return p + 2;
}

static uint8_t *put32(uint8_t *p, uint32_t v)
{
    put16(p, (uint16_t)(v >> 16));
    return put16(p + 2, (uint16_t)v) ;
}

static size_t l4_header_len(const struct frame_spec *s)
{
    if (s->family == 4 ? (s->frag_off != 0) : (s->fragment && s->frag_off != 0))
        return 0;
    switch (s->proto) {
    case 6: return 20 + (s->tcp_options ? s->tcp_options_len : s->tcp_timestamp ? 12 : 0);
    case 17: return 8;
    case 1:
    case 58: return 8;
    default: return 0;
    }
}

static uint8_t *put_l4(const struct frame_spec *s, uint8_t *p, uint32_t l4_total)
{
    switch (s->proto) {
    case 6: {
        uint8_t hl = (uint8_t)l4_header_len(s);
        p = put16(p, s->sport);
        p = put16(p, s->dport);
        p = put32(p, s->seq);
        p = put32(p, s->ack);
        *p++ = (uint8_t)((hl / 4) << 4);
        *p++ = s->tcp_flags;
        p = put16(p, 65535);
        p = put32(p, 0); /* checksum, urgent */
        if (s->tcp_options) {
            memcpy(p, s->tcp_options, s->tcp_options_len);
            p += s->tcp_options_len;
        } else if (s->tcp_timestamp) {
            *p++ = 1;
            *p++ = 1;
            *p++ = 8;
            *p++ = 10;
            p = put32(p, s->tsval);
            p = put32(p, s->tsecr);
        }
        return p;
    }
    case 17:
        p = put16(p, s->sport);
        p = put16(p, s->dport);
        p = put16(p, (uint16_t)l4_total);
        return put16(p, 0);
    case 1:
    case 58:
        *p++ = s->family == 4 ? 0 : 129; /* echo reply */
        *p++ = 0;
        p = put16(p, 0);
        p = put16(p, s->sport); /* echo id */
        return put16(p, s->dport); /* echo sequence */
    default:
        return p;
    }
}

size_t frame_build(const struct frame_spec *s, uint8_t *buf, size_t cap)
{
    size_t l4h = l4_header_len(s);
    size_t ip_hdr = s->family == 4 ? 20 : 40 + (s->fragment ? 8 : 0);
    size_t total = 14 + 4 * (size_t)s->nvlan + ip_hdr + l4h + s->len + s->eth_pad;
    if (total > cap)
        return 0;
    uint8_t *p = buf;
    memcpy(p, "\x52\x54\x00\x00\x00\x01\x52\x54\x00\x00\x00\x02", 12);
    p += 12;
    for (int i = 0; i < s->nvlan; i++) {
        p = put16(p, i == 0 && s->nvlan == 2 ? 0x88a8 : 0x8100);
        p = put16(p, s->vlan[i]);
    }
    uint32_t l4_total = (uint32_t)(l4h + s->len);
    if (s->family == 4) {
        p = put16(p, 0x0800);
        *p++ = 0x45;
        *p++ = 0;
        p = put16(p, (uint16_t)(20 + l4_total));
        p = put16(p, s->ip_id);
        p = put16(p, (uint16_t)((s->more_frags ? 0x2000 : 0) | s->frag_off));
        *p++ = s->ttl ? s->ttl : 64;
        *p++ = s->proto;
        p = put16(p, 0);
        memcpy(p, s->src, 4);
        memcpy(p + 4, s->dst, 4);
        p += 8;
    } else {
        p = put16(p, 0x86dd);
        p = put32(p, 0x60000000);
        p = put16(p, (uint16_t)(l4_total + (s->fragment ? 8 : 0)));
        *p++ = s->fragment ? 44 : s->proto;
        *p++ = s->ttl ? s->ttl : 64;
        memcpy(p, s->src, 16);
        memcpy(p + 16, s->dst, 16);
        p += 32;
        if (s->fragment) {
            *p++ = s->proto;
            *p++ = 0;
            p = put16(p, (uint16_t)(s->frag_off << 3 | (s->more_frags ? 1 : 0)));
            p = put32(p, s->ip_id);
        }
    }
    if (l4h)
        p = put_l4(s, p, l4_total);
    if (s->len)
        memcpy(p, s->payload, s->len);
    p += s->len;
    memset(p, s->pad_byte, s->eth_pad);
    return total;
}

struct frame_spec frame_guest_tcp(uint32_t seq, uint32_t ack, uint8_t flags, const void *payload,
                                  uint32_t len)
{
    struct frame_spec s = {
        .family = 4,
        .src = { 10, 0, 0, 2 },
        .dst = { 10, 0, 0, 1 },
        .sport = 80,
        .dport = 40000,
        .proto = 6,
        .seq = seq,
        .ack = ack,
        .tcp_flags = flags,
        .payload = payload,
        .len = len,
    };
    return s;
}

void frame_spec_reverse(struct frame_spec *s)
{
    uint8_t a[16];
    memcpy(a, s->src, 16);
    memcpy(s->src, s->dst, 16);
    memcpy(s->dst, a, 16);
    uint16_t port = s->sport;
    s->sport = s->dport;
    s->dport = port;
}

size_t frame_build_arp(const uint8_t sender[4], const uint8_t target[4], uint8_t *buf, size_t cap)
{
    if (cap < 60)
        return 0;
    memset(buf, 0, 60);
    memcpy(buf, "\xff\xff\xff\xff\xff\xff\x52\x54\x00\x00\x00\x02\x08\x06", 14);
    uint8_t *p = buf + 14;
    p = put16(p, 1);
    p = put16(p, 0x0800);
    *p++ = 6;
    *p++ = 4;
    p = put16(p, 1);
    memcpy(p, "\x52\x54\x00\x00\x00\x02", 6);
    memcpy(p + 6, sender, 4);
    memcpy(p + 16, target, 4);
    return 60;
}

static uint32_t sum16(const uint8_t *p, size_t n, uint32_t sum)
{
    for (size_t i = 0; i + 1 < n; i += 2)
        sum += (uint32_t)(p[i] << 8 | p[i + 1]);
    if (n % 2)
        sum += (uint32_t)p[n - 1] << 8;
    return sum;
}

static uint16_t fold(uint32_t sum)
{
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}

/* Offsets of the IP header, the L4 header and the L4 end; false when not IPv4/IPv6. */
static bool l4_span(const uint8_t *f, size_t len, size_t *l3, size_t *l4, size_t *end, int *v)
{
    if (len < 34)
        return false;
    *l3 = 14;
    if (f[12] == 0x08 && f[13] == 0x00) {
        *v = 4;
        *l4 = 14 + (size_t)(f[14] & 15) * 4;
        *end = 14 + (size_t)(f[16] << 8 | f[17]);
    } else if (f[12] == 0x86 && f[13] == 0xdd && len >= 54) {
        *v = 6;
        *l4 = 54;
        *end = 54 + (size_t)(f[18] << 8 | f[19]);
    } else {
        return false;
    }
    return *end <= len && *l4 < *end;
}

static uint32_t pseudo_sum(const uint8_t *f, size_t l3, int v, uint8_t proto, size_t l4len)
{
    uint32_t sum = v == 4 ? sum16(f + l3 + 12, 8, 0) : sum16(f + l3 + 8, 32, 0);
    return sum + proto + (uint32_t)l4len;
}

void frame_fill_checksums(uint8_t *f, size_t len)
{
    size_t l3, l4, end;
    int v;
    if (!l4_span(f, len, &l3, &l4, &end, &v))
        return;
    uint8_t proto = v == 4 ? f[l3 + 9] : f[l3 + 6];
    if (v == 4) {
        f[l3 + 10] = f[l3 + 11] = 0;
        uint16_t c = fold(sum16(f + l3, l4 - l3, 0));
        f[l3 + 10] = (uint8_t)(c >> 8);
        f[l3 + 11] = (uint8_t)c;
    }
    size_t at = proto == 6 ? 16 : proto == 17 ? 6 : 0;
    if (!at || end - l4 < at + 2)
        return;
    f[l4 + at] = f[l4 + at + 1] = 0;
    uint16_t c = fold(sum16(f + l4, end - l4, pseudo_sum(f, l3, v, proto, end - l4)));
    f[l4 + at] = (uint8_t)(c >> 8);
    f[l4 + at + 1] = (uint8_t)c;
}

bool frame_tcp_checksum_ok(const uint8_t *f, size_t len)
{
    size_t l3, l4, end;
    int v;
    if (!l4_span(f, len, &l3, &l4, &end, &v))
        return false;
    return fold(sum16(f + l4, end - l4, pseudo_sum(f, l3, v, 6, end - l4))) == 0;
}
