/*
 * epoch_marker.c — building and reading the secondary's epoch marker frames.
 *
 * Frame: broadcast destination, source 02:00:00:c0:10:01 (the secondary, as for
 * heartbeats), ethertype 0x88B6, then "COLOEP", version 1, a zero byte, be32
 * epoch, be32 down time in microseconds, zero padding to 60 bytes.
 * Must never: read past the frame.
 */
#include "colo/epoch_marker.h"

#include <string.h>

#include "colo/byte_order.h"

#define MAGIC "COLOEP"
#define MAGIC_LEN 6
#define VERSION 1
#define BODY 14
#define BODY_LEN (MAGIC_LEN + 2 + 4 + 4)

bool epoch_marker_is_frame(const uint8_t *f, uint32_t len)
{
    return len >= 14 && f[12] == (EPOCH_MARKER_ETHERTYPE >> 8) && f[13] == (EPOCH_MARKER_ETHERTYPE & 0xff);
}

void epoch_marker_write(uint8_t f[EPOCH_MARKER_FRAME_LEN], const struct epoch_marker *m)
{
    static const uint8_t src[6] = { 0x02, 0x00, 0x00, 0xc0, 0x10, 0x01 };
    memset(f, 0, EPOCH_MARKER_FRAME_LEN);
    memset(f, 0xff, 6);
    memcpy(f + 6, src, 6);
    f[12] = EPOCH_MARKER_ETHERTYPE >> 8;
    f[13] = EPOCH_MARKER_ETHERTYPE & 0xff;
    uint8_t *b = f + BODY;
    memcpy(b, MAGIC, MAGIC_LEN);
    b[6] = VERSION;
    put_be32(b + 8, m->epoch);
    put_be32(b + 12, m->down_us);
}

bool epoch_marker_read(const uint8_t *f, uint32_t len, struct epoch_marker *m)
{
    const uint8_t *b = f + BODY;
    if (len < BODY + BODY_LEN || !epoch_marker_is_frame(f, len) || memcmp(b, MAGIC, MAGIC_LEN) != 0 ||
        b[6] != VERSION)
        return false;
    m->epoch = get_be32(b + 8);
    m->down_us = get_be32(b + 12);
    return true;
}
