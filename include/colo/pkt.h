/*
 * pkt.h — the packet handle every stage of colo-proxy passes around.
 *
 * A `struct colo_pkt` describes one frame: where its bytes are, what the parser
 * found in it (offsets, flow key, TCP sequence numbers), and the links the compare
 * engine uses to queue it. It never owns the bytes: the port that produced the
 * packet does (an rte_mbuf in the DPDK pipeline, a buffer in pcap replay), and gets
 * the handle back through the engine's release/discard callbacks. Keeping the
 * handle separate from the buffer lets the engine run, be tested and be benchmarked
 * without DPDK, and lets the DPDK ports place the handle in the mbuf's private area
 * so nothing is allocated per packet.
 *
 * Invariants: `frame` points at the Ethernet header (after any vnet header, which
 * stays in front of it in the owner's buffer and is passed through untouched);
 * every offset in `view` is < `frame_len`; `payload_off + payload_len <= frame_len`.
 */
#ifndef COLO_PKT_H
#define COLO_PKT_H

#include <stdbool.h>
#include <stdint.h>

/* Which side of the COLO pair produced a packet. */
enum colo_side { SIDE_PVM = 0, SIDE_SVM = 1 };

/* Family of the flow key; also tells which rule set compares the packet. */
enum flow_family {
    FAMILY_OTHER = 0, /* non-IP frame: keyed by ethertype (+ ARP addresses) */
    FAMILY_IPV4 = 4,
    FAMILY_IPV6 = 6,
};

/*
 * A flow key normalised so that both directions of a connection meet: the lower
 * (address, port) endpoint always comes first. IPv4 addresses are stored as
 * IPv4-mapped IPv6 (::ffff:a.b.c.d) so one key serves both families.
 * `vlan` holds the outer and inner VLAN IDs (12 bits each), 0 when untagged.
 */
struct flow_key {
    uint8_t addr[2][16];
    uint16_t port[2];
    uint32_t vlan;
    uint16_t ethertype; /* innermost ethertype */
    uint8_t proto;      /* IP protocol, or 0 for non-IP */
    uint8_t family;     /* enum flow_family */
    uint8_t fragment;   /* 1: IP fragments of this host pair and protocol */
    uint8_t pad[3];     /* always zero, so keys compare and hash as bytes */
};

/* Why a frame could not be parsed completely; counted by the caller. */
enum parse_status {
    PARSE_OK = 0,
    PARSE_TRUNC_L2,      /* shorter than its Ethernet/VLAN headers */
    PARSE_TOO_MANY_VLANS,/* more than two tags */
    PARSE_TRUNC_L3,      /* IP header cut short */
    PARSE_BAD_IP_VERSION,
    PARSE_BAD_IP_HDRLEN, /* IHL < 5 or beyond the total length */
    PARSE_BAD_IP_LEN,    /* total/payload length beyond the frame */
    PARSE_BAD_EXT_HDR,   /* IPv6 extension header chain runs off the packet */
    PARSE_TRUNC_L4,      /* TCP/UDP/ICMP header cut short */
    PARSE_BAD_TCP_HDRLEN,
    PARSE_TRUNC_ARP,
    PARSE_STATUS_COUNT
};

/* TCP flags as on the wire. */
enum {
    TCPF_FIN = 0x01, TCPF_SYN = 0x02, TCPF_RST = 0x04,
    TCPF_PSH = 0x08, TCPF_ACK = 0x10, TCPF_URG = 0x20,
};

/* What the parser learned about a frame. Offsets are from the Ethernet header. */
struct pkt_view {
    struct flow_key key;
    uint32_t l3_off;      /* IP header (or ARP body, or non-IP payload) */
    uint32_t l4_off;      /* transport header; == payload_off when none */
    uint32_t payload_off; /* first byte after the transport header */
    uint32_t payload_len; /* bytes up to where the IP length says the packet ends */
    uint32_t l3_end;      /* end of the IP packet (padding after it is ignored) */
    uint32_t tcp_seq;
    uint32_t tcp_ack;
    uint16_t frag_off;    /* fragment offset in 8-byte units (IPv4 or IPv6) */
    uint8_t tcp_flags;
    uint8_t status;       /* enum parse_status */
    bool is_fragment;     /* a fragment: no transport header beyond the first */
    bool more_frags;
    bool dir_swapped;     /* the sender is key.addr[1]/port[1] */
};

struct colo_pkt {
    /* Queue links owned by the compare engine. */
    struct colo_pkt *next;      /* per-connection queue */
    struct colo_pkt *age_prev;  /* engine-wide list of held PVM packets, by age */
    struct colo_pkt *age_next;
    /* The frame. */
    uint8_t *frame;             /* writable: the secondary rewrites in place */
    uint32_t frame_len;
    uint32_t conn_id;           /* set by the engine while queued */
    uint32_t epoch;             /* SVM: the secondary's epoch it was sent in (compare.h); else 0 */
    uint8_t cmp_flags;          /* engine-private marks (e.g. matched) */
    bool csum_partial;          /* the L4 checksum is left to offload: never update it */
    uint64_t arrival_ns;
    struct pkt_view view;
    /* The owner's cookie: an mbuf, a replay record. Never touched by the engine. */
    void *owner;
    uint64_t owner_index;
};

#endif
