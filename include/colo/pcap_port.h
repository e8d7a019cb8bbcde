/*
 * pcap_port.h — pcap files as a port: load a whole trace into memory, or dump
 * frames to a file.
 *
 * A loaded trace is one contiguous blob plus an index of records, so replay and
 * benchmarks never touch the file system in their timed parts. Timestamps are
 * kept in nanoseconds. Only Ethernet captures (DLT_EN10MB) are accepted; frames
 * may carry a virtio-net header in front of the Ethernet header, which the
 * caller skips (the record keeps it, so it is passed through on release).
 */
#ifndef COLO_PCAP_PORT_H
#define COLO_PCAP_PORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PCAP_TS_NS_MAX (UINT32_MAX * 1000000000ull + 999999999ull)

struct pcap_record {
    uint64_t ts_ns;        /* <= PCAP_TS_NS_MAX: unsigned 32-bit seconds, the fraction under one */
    uint32_t len;       /* bytes captured (a truncated capture is used as it is) */
    uint32_t orig_len;  /* length on the wire */
    uint8_t *data;      /* into the trace's blob; writable, for in-place rewriting */
};

struct pcap_trace {
    struct pcap_record *records;
    size_t count;
    uint8_t *blob;
};

/* 0 on success; otherwise -1 with a one-line reason in err. */
int pcap_trace_load(const char *path, struct pcap_trace *trace, char *err, size_t errlen);
void pcap_trace_free(struct pcap_trace *trace);

struct pcap_sink;

struct pcap_sink *pcap_sink_open(const char *path, char *err, size_t errlen);
void pcap_sink_write(struct pcap_sink *sink, uint64_t ts_ns, const uint8_t *data, uint32_t len);
void pcap_sink_close(struct pcap_sink *sink);

/*
 * Could the first hdr_len bytes of a record be a virtio-net header in front of a
 * frame of frame_len bytes? Checks its first VNET_HDR_CHECKED bytes (flags,
 * gso_type, hdr_len, gso_size, csum_start, csum_offset, little-endian): known
 * flags and GSO types only, a GSO size exactly when GSO is on, a checksum
 * position inside the frame when one is asked for and none otherwise. A capture
 * without such headers fails on most frames (a MAC address is no flags byte).
 * Shorter headers cannot be checked: true.
 */
#define VNET_HDR_CHECKED 10
bool vnet_hdr_plausible(const uint8_t *hdr, uint32_t hdr_len, uint32_t frame_len);

#endif
