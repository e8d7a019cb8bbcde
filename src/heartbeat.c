/*
 * heartbeat.c — building, reading and judging heartbeat frames.
 *
 * Frame: broadcast destination, source 02:00:00:c0:10:0<role>, ethertype
 * 0x88B5, then "COLOHB", role, version 1, be32 seq, be64 send time, be32 echoed
 * seq, be64 echoed send time, zero padding to 60 bytes. Times are the sender's
 * own clock: only the sender compares them. Then be64 hold: how long the echoed
 * heartbeat waited before this one was sent, so RTT = now - echoed time - hold.
 * Must never: read past the frame; trust the role or times beyond arithmetic.
 */
#include "colo/heartbeat.h"

#include <string.h>

#include "colo/byte_order.h"

#define MAGIC "COLOHB"
#define MAGIC_LEN 6
#define VERSION 1
#define BODY 14
#define BODY_LEN (MAGIC_LEN + 2 + 4 + 8 + 4 + 8 + 8)

void heartbeat_init(struct heartbeat *hb, uint8_t role, uint32_t interval_ms, uint32_t misses)
{
    memset(hb, 0, sizeof(*hb));
    hb->role = role;
    hb->interval_ns = (uint64_t)interval_ms * 1000000ull;
    hb->misses = misses ? misses : 1;
}

bool heartbeat_is_frame(const uint8_t *f, uint32_t len)
{
    return len >= 14 && f[12] == (HEARTBEAT_ETHERTYPE >> 8) && f[13] == (HEARTBEAT_ETHERTYPE & 0xff);
}

bool heartbeat_receive(struct heartbeat *hb, const uint8_t *f, uint32_t len, uint64_t now)
{
    const uint8_t *b = f + BODY;
    if (len < BODY + BODY_LEN || memcmp(b, MAGIC, MAGIC_LEN) != 0 || b[7] != VERSION ||
        b[6] == hb->role) {
        hb->malformed++; /* not ours, a newer version, or our own frame looped back */
        return false;
    }
    hb->received++;
    hb->last_heard_ns = now;
    hb->echo_seq = get_be32(b + 8);
    hb->echo_ts = get_be64(b + 12);
    uint64_t echoed = get_be64(b + 24), held = get_be64(b + 32);
    if (get_be32(b + 20) != 0 && echoed && echoed + held <= now)
        hb->rtt_ns = now - echoed - held;
    return true;
}

bool heartbeat_due(struct heartbeat *hb, uint8_t f[HEARTBEAT_FRAME_LEN], uint64_t now)
{
    if (now < hb->next_send_ns)
        return false;
    hb->next_send_ns = now + hb->interval_ns;
    memset(f, 0, HEARTBEAT_FRAME_LEN);
    memset(f, 0xff, 6);
    const uint8_t src[6] = { 0x02, 0x00, 0x00, 0xc0, 0x10, hb->role };
    memcpy(f + 6, src, 6);
    f[12] = HEARTBEAT_ETHERTYPE >> 8;
    f[13] = HEARTBEAT_ETHERTYPE & 0xff;
    uint8_t *b = f + BODY;
    memcpy(b, MAGIC, MAGIC_LEN);
    b[6] = hb->role;
    b[7] = VERSION;
    put_be32(b + 8, ++hb->seq);
    put_be64(b + 12, now);
    put_be32(b + 20, hb->echo_seq);
    put_be64(b + 24, hb->echo_ts);
    put_be64(b + 32, hb->last_heard_ns && hb->last_heard_ns <= now ? now - hb->last_heard_ns : 0);
    hb->sent++;
    return true;
}

bool heartbeat_check(struct heartbeat *hb, bool carrier, uint64_t now)
{
    enum heartbeat_state was = hb->state;
    bool heard_recently = hb->last_heard_ns && now - hb->last_heard_ns <= hb->interval_ns * hb->misses;
    if (!carrier || (hb->state == PEER_UP && !heard_recently))
        hb->state = PEER_DOWN;
    else if (heard_recently)
        hb->state = PEER_UP;
    if (hb->state == was)
        return false;
    hb->went_down += hb->state == PEER_DOWN;
    hb->came_up += hb->state == PEER_UP;
    return true;
}

const char *heartbeat_state_name(enum heartbeat_state s)
{
    return s == PEER_UP ? "up" : s == PEER_DOWN ? "down" : "unknown";
}
