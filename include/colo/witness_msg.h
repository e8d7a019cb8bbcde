/*
 * witness_msg.h — the witness protocol's one message format, both ways.
 *
 * A lease holder (a colo-proxy) asks the witness for its pair's lease with an
 * ACQUIRE (also how it renews) or gives it up with a RELEASE; the witness
 * answers GRANT or DENY. Every message is WITNESS_MSG_LEN bytes, big-endian:
 *
 *   0  magic "CLWT"      4  version (1)    5  type    6  2 bytes zero
 *   8  pair id           16 sender id      24 counter
 *   32 lease ms (GRANT: its length)        36 wait ms (DENY: until the holder's lease ends at the witness)
 *   40 holder id (replies: who holds the lease now; 0: nobody)
 *   48 HMAC-SHA256 of bytes 0..47 under the pair's shared key
 *
 * The sender id names one running holder (a colo-proxy draws a random one at
 * start); the counter rises with every request of that sender, and a reply
 * carries the counter of the request it answers. The witness drops a request
 * whose counter is not above the last one it took from that sender (a replay);
 * a holder takes a reply only for a request it still has outstanding.
 *
 * Pure: no I/O, no clock. Every byte handed to witness_msg_decode is untrusted.
 */
#ifndef COLO_WITNESS_MSG_H
#define COLO_WITNESS_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WITNESS_MSG_LEN 80
#define WITNESS_MAC_OFFSET 48
#define WITNESS_KEY_MIN 16  /* bytes: a shorter shared key is refused */
#define WITNESS_KEY_MAX 256

enum witness_msg_type {
    WITNESS_ACQUIRE = 1, /* holder -> witness: grant me the lease, or renew it */
    WITNESS_RELEASE = 2, /* holder -> witness: I stop now (SIGTERM, COLO_EXIT, carrier lost) */
    WITNESS_GRANT = 3,   /* witness -> holder: yours for lease_ms from when you sent the request */
    WITNESS_DENY = 4,    /* witness -> holder: another holds it (or the witness has just started) */
};

struct witness_msg {
    uint8_t type;
    uint64_t pair_id, sender_id, counter;
    uint32_t lease_ms, wait_ms;
    uint64_t holder_id;
};

/* Why a datagram was not taken: each has its own counter where messages are received. */
enum witness_reject {
    WITNESS_OK = 0,
    WITNESS_REJECT_LENGTH,  /* not exactly WITNESS_MSG_LEN bytes */
    WITNESS_REJECT_MAGIC,   /* not "CLWT" version 1 with zero padding */
    WITNESS_REJECT_MAC,     /* the HMAC does not match: another key, or forged */
    WITNESS_REJECT_TYPE,    /* authentic, but a type the receiver does not take */
    WITNESS_REJECT_REPLAY,  /* authentic, but its counter is not new */
    WITNESS_REJECT_FULL,    /* authentic, but the receiver's tables are full */
    WITNESS_REJECT_NOT_OURS, /* authentic reply, but for another pair or holder */
    WITNESS_REJECT_COUNT
};

const char *witness_reject_name(enum witness_reject r);

/* Writes `m` with its HMAC under `key` into out. */
void witness_msg_encode(const struct witness_msg *m, const uint8_t *key, size_t key_len,
                        uint8_t out[WITNESS_MSG_LEN]);

/*
 * Reads `len` untrusted bytes: WITNESS_OK and `m` filled when they are one
 * well-formed message whose HMAC under `key` matches (compared in constant time);
 * otherwise the reason, and `m` untouched.
 */
enum witness_reject witness_msg_decode(const uint8_t *buf, size_t len, const uint8_t *key, size_t key_len,
                                       struct witness_msg *m);

/*
 * The holder's side: a reply from the witness for this pair and this holder?
 * WITNESS_OK and `m` filled (a GRANT or a DENY; lease_on_reply then matches its
 * counter to an outstanding request), or the reason it is not taken.
 */
enum witness_reject witness_reply_check(const uint8_t *buf, size_t len, const uint8_t *key, size_t key_len,
                                        uint64_t pair_id, uint64_t self_id, struct witness_msg *m);

#endif
