/*
 * pcap_port.c — reading pcap traces into memory and writing released frames.
 *
 * Owns: the libpcap handles and the loaded blob. Reads with nanosecond
 * precision (libpcap scales microsecond files). Never trusts a record: lengths
 * come from libpcap's header and are used only to copy that many bytes. Also
 * whether a record can start with a virtio-net header (vnet_hdr_plausible).
 *
 * Timestamps: the file's seconds field is an unsigned 32-bit count (libpcap
 * hands it over sign-extended, so 0xffffffff would read as -1 and anything past
 * 2038-01-19 03:14:07 as negative); the fraction is clamped to under a second.
 * So every record's time is at most 2^32 s, and never wraps a 64-bit clock.
 */
#include "colo/pcap_port.h"

#include <pcap/pcap.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SNAPLEN_MAX 262144

struct pcap_sink {
    pcap_t *dead;
    pcap_dumper_t *dumper;
};

static int grow(struct pcap_trace *t, size_t *cap_recs, size_t *blob_len, size_t *blob_cap,
                size_t need)
{
    if (t->count == *cap_recs) {
        size_t n = *cap_recs ? *cap_recs * 2 : 1024;
        struct pcap_record *r = realloc(t->records, n * sizeof(*r));
        if (!r)
            return -1;
        t->records = r;
        *cap_recs = n;
    }
    if (*blob_len + need > *blob_cap || !t->blob) { /* a blob even for empty records: offsets need a base */
        size_t n = *blob_cap ? *blob_cap * 2 : 1 << 20;
        while (n < *blob_len + need)
            n *= 2;
        uint8_t *b = realloc(t->blob, n);
        if (!b)
            return -1;
        t->blob = b;
        *blob_cap = n;
    }
    return 0;
}

/* The record's time in ns: unsigned 32-bit seconds, the fraction (ns, as opened) kept under a second. */
static uint64_t record_ns(const struct timeval *ts)
{
    uint64_t frac = ts->tv_usec < 0 ? 0 : (uint64_t)ts->tv_usec;
    if (frac > PCAP_TS_NS_MAX % 1000000000ull)
        frac = PCAP_TS_NS_MAX % 1000000000ull;
    return (uint64_t)(uint32_t)ts->tv_sec * 1000000000ull + frac;
}

int pcap_trace_load(const char *path, struct pcap_trace *t, char *err, size_t errlen)
{
    char pe[PCAP_ERRBUF_SIZE];
    memset(t, 0, sizeof(*t));
    pcap_t *p = pcap_open_offline_with_tstamp_precision(path, PCAP_TSTAMP_PRECISION_NANO, pe);
    if (!p) {
        snprintf(err, errlen, "cannot read pcap '%s': %s", path, pe);
        return -1;
    }
    if (pcap_datalink(p) != DLT_EN10MB) {
        snprintf(err, errlen, "pcap '%s' has link type %s; colo-proxy needs Ethernet (EN10MB) captures",
                 path, pcap_datalink_val_to_name(pcap_datalink(p)));
        pcap_close(p);
        return -1;
    }
    size_t cap_recs = 0, blob_len = 0, blob_cap = 0;
    struct pcap_pkthdr *h;
    const u_char *data;
    int rc;
    /* Offsets first: the blob may move while it grows. */
    while ((rc = pcap_next_ex(p, &h, &data)) == 1) {
        if (grow(t, &cap_recs, &blob_len, &blob_cap, h->caplen) != 0) {
            snprintf(err, errlen, "out of memory loading pcap '%s'", path);
            pcap_close(p);
            pcap_trace_free(t);
            return -1;
        }
        memcpy(t->blob + blob_len, data, h->caplen);
        t->records[t->count++] = (struct pcap_record){
            .ts_ns = record_ns(&h->ts),
            .len = h->caplen,
            .orig_len = h->len,
            .data = (uint8_t *)(uintptr_t)blob_len,
        };
        blob_len += h->caplen;
    }
    if (rc == -1) {
        snprintf(err, errlen, "pcap '%s' is damaged after %zu records: %s", path, t->count,
                 pcap_geterr(p));
        pcap_close(p);
        pcap_trace_free(t);
        return -1;
    }
    pcap_close(p);
    for (size_t i = 0; i < t->count; i++)
        t->records[i].data = t->blob + (uintptr_t)t->records[i].data;
    return 0;
}

void pcap_trace_free(struct pcap_trace *t)
{
    free(t->records);
    free(t->blob);
    memset(t, 0, sizeof(*t));
}

struct pcap_sink *pcap_sink_open(const char *path, char *err, size_t errlen)
{
    struct pcap_sink *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->dead = pcap_open_dead_with_tstamp_precision(DLT_EN10MB, SNAPLEN_MAX,
                                                   PCAP_TSTAMP_PRECISION_NANO);
    s->dumper = s->dead ? pcap_dump_open(s->dead, path) : NULL;
    if (!s->dumper) {
        snprintf(err, errlen, "cannot write pcap '%s': %s", path,
                 s->dead ? pcap_geterr(s->dead) : "libpcap failed");
        pcap_sink_close(s);
        return NULL;
    }
    return s;
}

void pcap_sink_write(struct pcap_sink *s, uint64_t ts_ns, const uint8_t *data, uint32_t len)
{
    struct pcap_pkthdr h = {
        .ts = { .tv_sec = (time_t)(ts_ns / 1000000000ull),
                .tv_usec = (suseconds_t)(ts_ns % 1000000000ull) },
        .caplen = len,
        .len = len,
    };
    pcap_dump((u_char *)s->dumper, &h, data);
}

void pcap_sink_close(struct pcap_sink *s)
{
    if (!s)
        return;
    if (s->dumper)
        pcap_dump_close(s->dumper);
    if (s->dead)
        pcap_close(s->dead);
    free(s);
}

static uint16_t le16(const uint8_t *b)
{
    return (uint16_t)(b[0] | b[1] << 8);
}

bool vnet_hdr_plausible(const uint8_t *hdr, uint32_t hdr_len, uint32_t frame_len)
{
    enum { NEEDS_CSUM = 1, KNOWN_FLAGS = 7, GSO_ECN = 0x80, GSO_UDP = 3, GSO_UDP_L4 = 5 };
    if (hdr_len < VNET_HDR_CHECKED)
        return true; /* nothing to check */
    uint8_t flags = hdr[0], gso = hdr[1] & (uint8_t)~GSO_ECN;
    uint16_t gso_hdr_len = le16(hdr + 2), gso_size = le16(hdr + 4), csum_start = le16(hdr + 6),
             csum_offset = le16(hdr + 8);
    if ((flags & ~KNOWN_FLAGS) || gso == 2 || gso > GSO_UDP_L4 || gso_hdr_len > frame_len)
        return false;
    if ((gso == 0) != (gso_size == 0))
        return false;
    if (flags & NEEDS_CSUM)
        return (uint32_t)csum_start + csum_offset + 2 <= frame_len;
    return csum_start == 0 && csum_offset == 0;
}
