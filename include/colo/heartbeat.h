/*
 * heartbeat.h — liveness of the peer colo-proxy, over the link port.
 *
 * Each side sends a small frame every `interval` on the link: ethertype 0x88B5
 * (IEEE 802 local experimental), the magic "COLOHB", the sender's role, a
 * sequence number and its send time, and an echo of the last heartbeat it
 * received (so the sender of that one learns the round-trip time). The peer is
 * declared down after `misses` intervals without one, or at once when the link
 * port reports no carrier. Heartbeat frames are taken off the link before any
 * compare or rewrite stage: they never reach a VM or a client.
 *
 * Pure logic over bytes and times: the pipeline owns the port and the clock.
 */
#ifndef COLO_HEARTBEAT_H
#define COLO_HEARTBEAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HEARTBEAT_ETHERTYPE 0x88b5
#define HEARTBEAT_FRAME_LEN 60

enum heartbeat_state { PEER_UNKNOWN, PEER_UP, PEER_DOWN };

struct heartbeat {
    uint64_t interval_ns;
    uint32_t misses;
    uint8_t role;            /* 0 primary, 1 secondary */
    enum heartbeat_state state;
    uint64_t next_send_ns, last_heard_ns;
    uint32_t seq;
    uint32_t echo_seq;       /* the peer's last heartbeat, echoed in ours */
    uint64_t echo_ts;
    uint64_t rtt_ns;
    uint64_t sent, received, malformed, went_down, came_up;
};

void heartbeat_init(struct heartbeat *hb, uint8_t role, uint32_t interval_ms, uint32_t misses);

/* Is this frame a heartbeat (to be consumed by heartbeat_receive)? */
bool heartbeat_is_frame(const uint8_t *frame, uint32_t len);

/* Takes a heartbeat frame in; false when it is malformed (counted). */
bool heartbeat_receive(struct heartbeat *hb, const uint8_t *frame, uint32_t len, uint64_t now_ns);

/* When a heartbeat is due, writes it (HEARTBEAT_FRAME_LEN bytes) and returns true. */
bool heartbeat_due(struct heartbeat *hb, uint8_t frame[HEARTBEAT_FRAME_LEN], uint64_t now_ns);

/* Advances the state: misses and carrier. Returns true when the state changed. */
bool heartbeat_check(struct heartbeat *hb, bool carrier, uint64_t now_ns);

const char *heartbeat_state_name(enum heartbeat_state s);

#endif
