/*
 * pkt_parse.h — the bounds-checked frame parser.
 *
 * One call turns a frame into a `struct pkt_view`: Ethernet with up to two VLAN
 * tags (802.1Q, 802.1ad/QinQ), IPv4 with options and fragments, IPv6 with its
 * extension header chain and fragment header, TCP with options, UDP, ICMP,
 * ICMPv6 and ARP. The parser never reads a byte at or past `len`. A frame it
 * cannot parse completely gets a non-OK status saying why; the view is then still
 * usable as an "other" frame compared whole, so nothing malformed is ever lost.
 */
#ifndef COLO_PKT_PARSE_H
#define COLO_PKT_PARSE_H

#include "colo/pkt.h"

enum parse_status pkt_parse(const uint8_t *frame, uint32_t len, struct pkt_view *view);

/* A short stable name for a parse status, for logs and reports. */
const char *parse_status_name(enum parse_status status);

/* Formats "proto src:port > dst:port vlan N"; `swapped` says the sender is endpoint 1. */
void flow_key_format(const struct flow_key *key, bool swapped, char *buf, unsigned size);

#endif
