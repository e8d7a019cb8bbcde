/*
 * frame_builder.h — builds well-formed test frames (Ethernet, VLAN, IPv4/IPv6,
 * TCP/UDP/ICMP, ARP, fragments) byte by byte, for unit tests and benchmarks.
 * Checksums are left zero: colo-proxy never reads them.
 */
#ifndef COLO_TEST_FRAME_BUILDER_H
#define COLO_TEST_FRAME_BUILDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct frame_spec {
    int family;               /* 4 or 6 */
    uint8_t src[16], dst[16]; /* IPv4 uses the first four bytes */
    uint16_t sport, dport;
    uint8_t proto;            /* 6, 17, 1, 58, or any other */
    uint32_t seq, ack;
    uint8_t tcp_flags;
    bool tcp_timestamp;       /* add a 12-byte timestamp option block */
    uint32_t tsval, tsecr;
    const uint8_t *tcp_options; /* raw options instead (length a multiple of 4) */
    uint8_t tcp_options_len;
    const void *payload;
    uint32_t len;
    uint16_t vlan[2];
    int nvlan;
    uint16_t ip_id;
    uint8_t ttl;
    uint16_t frag_off;        /* in 8-byte units */
    bool more_frags;
    bool fragment;            /* IPv6: add a fragment header */
    uint32_t eth_pad;         /* bytes of Ethernet padding after the IP packet */
    uint8_t pad_byte;
};

/* Returns the frame length, or 0 when it does not fit in cap. */
size_t frame_build(const struct frame_spec *spec, uint8_t *buf, size_t cap);

/* Sets the IPv4 header checksum and the full TCP/UDP checksum of a built frame. */
void frame_fill_checksums(uint8_t *frame, size_t len);

/* True when the frame's TCP checksum verifies (IPv4 or IPv6, untagged). */
bool frame_tcp_checksum_ok(const uint8_t *frame, size_t len);

/* A spec for guest 10.0.0.2:80 -> client 10.0.0.1:40000 over IPv4/TCP. */
struct frame_spec frame_guest_tcp(uint32_t seq, uint32_t ack, uint8_t flags, const void *payload,
                                  uint32_t len);

/* Turns a spec around: the sender becomes the receiver (addresses and ports swap). */
void frame_spec_reverse(struct frame_spec *spec);

/* An ARP request (sender, target are IPv4 addresses as 4 bytes). */
size_t frame_build_arp(const uint8_t sender[4], const uint8_t target[4], uint8_t *buf, size_t cap);

#endif
