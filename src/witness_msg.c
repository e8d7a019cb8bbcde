/*
 * witness_msg.c — encodes and checks the witness protocol's fixed-size,
 * HMAC-SHA256-authenticated messages (format in witness_msg.h). Nothing here
 * keeps state: replay rules belong to the receivers (witness.c, lease.c).
 */
#include "colo/witness_msg.h"

#include <glib.h>
#include <string.h>

#include "colo/byte_order.h"

static const uint8_t MAGIC[4] = { 'C', 'L', 'W', 'T' };
#define VERSION 1
#define MAC_LEN 32

const char *witness_reject_name(enum witness_reject r)
{
    static const char *const names[WITNESS_REJECT_COUNT] = { "ok", "length", "magic", "mac", "type", "replay", "full", "not-ours" };
    return r < WITNESS_REJECT_COUNT ? names[r] : "unknown";
}

static void mac_of(const uint8_t *body, const uint8_t *key, size_t key_len, uint8_t mac[MAC_LEN])
{
    GHmac *h = g_hmac_new(G_CHECKSUM_SHA256, key, key_len);
    g_hmac_update(h, body, WITNESS_MAC_OFFSET);
    gsize n = MAC_LEN;
    g_hmac_get_digest(h, mac, &n);
    g_hmac_unref(h);
}

void witness_msg_encode(const struct witness_msg *m, const uint8_t *key, size_t key_len,
                        uint8_t out[WITNESS_MSG_LEN])
{
    memset(out, 0, WITNESS_MSG_LEN);
    memcpy(out, MAGIC, sizeof(MAGIC));
    out[4] = VERSION;
    out[5] = m->type;
    put_be64(out + 8, m->pair_id);
    put_be64(out + 16, m->sender_id);
    put_be64(out + 24, m->counter);
    put_be32(out + 32, m->lease_ms);
    put_be32(out + 36, m->wait_ms);
    put_be64(out + 40, m->holder_id);
    mac_of(out, key, key_len, out + WITNESS_MAC_OFFSET);
}

static bool same_mac(const uint8_t *a, const uint8_t *b)
{
    uint8_t diff = 0;
    for (int i = 0; i < MAC_LEN; i++)
        diff |= a[i] ^ b[i];
    return diff == 0;
}

enum witness_reject witness_msg_decode(const uint8_t *buf, size_t len, const uint8_t *key, size_t key_len,
                                       struct witness_msg *m)
{
    if (len != WITNESS_MSG_LEN)
        return WITNESS_REJECT_LENGTH;
    if (memcmp(buf, MAGIC, sizeof(MAGIC)) != 0 || buf[4] != VERSION || buf[6] || buf[7])
        return WITNESS_REJECT_MAGIC;
    uint8_t mac[MAC_LEN];
    mac_of(buf, key, key_len, mac);
    if (!same_mac(mac, buf + WITNESS_MAC_OFFSET))
        return WITNESS_REJECT_MAC;
    if (buf[5] < WITNESS_ACQUIRE || buf[5] > WITNESS_DENY)
        return WITNESS_REJECT_TYPE;
    m->type = buf[5];
    m->pair_id = get_be64(buf + 8);
    m->sender_id = get_be64(buf + 16);
    m->counter = get_be64(buf + 24);
    m->lease_ms = get_be32(buf + 32);
    m->wait_ms = get_be32(buf + 36);
    m->holder_id = get_be64(buf + 40);
    return WITNESS_OK;
}

enum witness_reject witness_reply_check(const uint8_t *buf, size_t len, const uint8_t *key, size_t key_len,
                                        uint64_t pair_id, uint64_t self_id, struct witness_msg *m)
{
    struct witness_msg r;
    enum witness_reject why = witness_msg_decode(buf, len, key, key_len, &r);
    if (why != WITNESS_OK)
        return why;
    if (r.type != WITNESS_GRANT && r.type != WITNESS_DENY)
        return WITNESS_REJECT_TYPE;
    if (r.pair_id != pair_id || r.sender_id != self_id)
        return WITNESS_REJECT_NOT_OURS;
    *m = r;
    return WITNESS_OK;
}
