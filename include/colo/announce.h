/*
 * announce.h — telling the network where the VM is now, after a takeover.
 *
 * When the secondary takes over, switches still send the VM's traffic to the
 * primary's port until they see the VM's MAC on the secondary's. As QEMU does
 * after live migration, colo-proxy announces the VM a few times with back-off:
 * a RARP for its MAC (QEMU's own announcement), a gratuitous ARP for each IPv4
 * address and an unsolicited neighbour advertisement (override flag, to all
 * nodes) for each IPv6 address. The addresses are learned from what the VM
 * sends (the sender address of its IPv4 and IPv6 frames), so nothing needs
 * configuring. Rounds: at once, then after 50, 150, 250, 350 ms (QEMU's
 * announce-initial 50 ms, step 100 ms), five in all.
 *
 * Pure logic over bytes and times: the pipeline owns the port and the clock.
 */
#ifndef COLO_ANNOUNCE_H
#define COLO_ANNOUNCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "colo/pkt.h"

#define ANNOUNCE_MAX_ADDRS 8
#define ANNOUNCE_ROUNDS 5
#define ANNOUNCE_FRAME_MAX 86 /* the neighbour advertisement, the largest */
#define ANNOUNCE_MAX_FRAMES (1 + 2 * ANNOUNCE_MAX_ADDRS)

struct announce {
    uint8_t mac[6];
    uint8_t ipv4[ANNOUNCE_MAX_ADDRS][4];
    uint8_t ipv6[ANNOUNCE_MAX_ADDRS][16];
    unsigned n_ipv4, n_ipv6;
    uint64_t addrs_dropped;  /* addresses beyond the table, not announced */
    unsigned rounds_done;
    uint64_t next_ns;        /* 0: not announcing */
    uint64_t frames_sent;
};

struct announce_frame {
    uint8_t bytes[ANNOUNCE_FRAME_MAX];
    uint32_t len;
};

void announce_init(struct announce *a, const uint8_t mac[6]);
/* Learns the sender address of a frame the VM sent (its view, from pkt_parse). */
void announce_learn(struct announce *a, const struct pkt_view *v);
/* Starts the rounds now. */
void announce_start(struct announce *a, uint64_t now_ns);
/* When a round is due, writes its frames and returns how many (0: nothing due). */
unsigned announce_due(struct announce *a, uint64_t now_ns, struct announce_frame out[ANNOUNCE_MAX_FRAMES]);

/* One frame each, exposed for tests. Each returns the frame length. */
uint32_t announce_rarp(const uint8_t mac[6], uint8_t *out);
uint32_t announce_garp(const uint8_t mac[6], const uint8_t ip[4], uint8_t *out);
uint32_t announce_na(const uint8_t mac[6], const uint8_t ip[16], uint8_t *out);

#endif
