/*
 * fuzz_witness.c — libFuzzer target: the witness's message parser and grant
 * rules as an attacker on its UDP port, and a lease holder beside it, both
 * driven by a little program: raw datagrams, well-signed requests (so the rules
 * past the HMAC are reached) with a byte maybe flipped, replays, time passing,
 * and the holder's own requests and replies.
 *
 * Invariants: every datagram is counted once (taken or rejected by one reason);
 * there is a reply exactly when one was taken, and it is an authentic GRANT or
 * DENY for that request; nothing is granted during the witness's quiet start;
 * a pair's lease never passes to another holder before the last one's lease and
 * margin are over, unless it was released; a holder that may release is the
 * pair's holder at the witness, within the lease the witness gave it.
 */
#include <string.h>

#include "colo/lease.h"
#include "colo/witness.h"
#include "fuzz_input.h"

#define MS 1000000ull
#define PAIRS 6
#define LEASE 120
#define HOLDER_PAIR 1
#define HOLDER_ID 1

static const uint8_t key[32] = "fuzzing key, thirty-two bytes!!";

struct state {
    struct witness *w;
    uint64_t now, fed;
    uint8_t last[WITNESS_MSG_LEN];
    bool have_last;
    uint64_t holder[PAIRS], granted_at[PAIRS];
    bool released[PAIRS];
    struct lease lease;
};

static void check_reply(struct state *s, const struct witness_msg *req, const uint8_t *out)
{
    struct witness_msg r;
    FUZZ_CHECK(witness_reply_check(out, WITNESS_MSG_LEN, key, sizeof(key), req->pair_id, req->sender_id, &r) ==
               WITNESS_OK);
    FUZZ_CHECK(r.counter == req->counter);
    if (r.type != WITNESS_GRANT || req->pair_id >= PAIRS)
        return;
    FUZZ_CHECK(s->now >= witness_grants_from_ns(s->w));
    FUZZ_CHECK(r.holder_id == req->sender_id && r.lease_ms == LEASE);
    uint64_t p = req->pair_id, prev = s->holder[p];
    if (prev && prev != r.holder_id && !s->released[p])
        FUZZ_CHECK(s->now >= s->granted_at[p] + LEASE * MS + lease_margin_ns(LEASE));
    s->holder[p] = r.holder_id;
    s->granted_at[p] = s->now;
    s->released[p] = false;
}

/* Hands one datagram to the witness; its reply, if any, in out. */
static enum witness_reject feed(struct state *s, const uint8_t *bytes, size_t len, uint8_t out[WITNESS_MSG_LEN])
{
    struct witness_outcome o;
    const struct witness_stats *st = witness_stats(s->w);
    uint64_t rejected_before = 0, rejected_after = 0;
    for (int i = 0; i < WITNESS_REJECT_COUNT; i++)
        rejected_before += st->rejected[i];
    enum witness_reject why = witness_handle(s->w, bytes, len, s->now, out, &o);
    s->fed++;
    for (int i = 0; i < WITNESS_REJECT_COUNT; i++)
        rejected_after += st->rejected[i];
    FUZZ_CHECK(st->received == s->fed);
    FUZZ_CHECK(rejected_after == rejected_before + (why != WITNESS_OK));
    FUZZ_CHECK(o.reply == (why == WITNESS_OK));
    if (why != WITNESS_OK)
        return why;
    struct witness_msg req;
    FUZZ_CHECK(witness_msg_decode(bytes, len, key, sizeof(key), &req) == WITNESS_OK);
    if (req.type == WITNESS_RELEASE && o.holder_changed && req.pair_id < PAIRS)
        s->released[req.pair_id] = true;
    check_reply(s, &req, out);
    memcpy(s->last, bytes, WITNESS_MSG_LEN);
    s->have_last = true;
    return why;
}

/* Senders are even: the lease holder (HOLDER_ID, odd) is never impersonated, as only a key holder could. */
static void signed_request(struct state *s, struct fuzz_input *in)
{
    struct witness_msg m = { .type = take_u8(in) % 6, .pair_id = take_u8(in) % PAIRS,
                             .sender_id = (take_u8(in) % 8) * 2, .counter = take_u16(in) };
    uint8_t bytes[WITNESS_MSG_LEN], out[WITNESS_MSG_LEN];
    witness_msg_encode(&m, key, sizeof(key), bytes);
    uint8_t flip = take_u8(in);
    if (flip < WITNESS_MSG_LEN)
        bytes[flip] ^= (uint8_t)(take_u8(in) | 1);
    feed(s, bytes, sizeof(bytes), out);
}

static void raw_datagram(struct state *s, struct fuzz_input *in)
{
    size_t got;
    const uint8_t *bytes = take_bytes(in, take_u8(in), &got);
    uint8_t copy[256], out[WITNESS_MSG_LEN];
    memcpy(copy, bytes, got);
    feed(s, copy, got, out);
}

/* The lease holder asks when due; its reply (maybe mutated) goes back to it. */
static void holder_turn(struct state *s, struct fuzz_input *in)
{
    struct witness_msg m, r;
    uint8_t bytes[WITNESS_MSG_LEN], out[WITNESS_MSG_LEN];
    if (lease_request_due(&s->lease, s->now, &m)) {
        witness_msg_encode(&m, key, sizeof(key), bytes);
        if (feed(s, bytes, sizeof(bytes), out) == WITNESS_OK) {
            uint8_t flip = take_u8(in);
            if (flip < WITNESS_MSG_LEN)
                out[flip] ^= 0x10;
            if (witness_reply_check(out, sizeof(out), key, sizeof(key), HOLDER_PAIR, HOLDER_ID, &r) == WITNESS_OK)
                lease_on_reply(&s->lease, &r, s->now);
        }
    }
    if (take_u8(in) == 0x5a)
        lease_want_takeover(&s->lease, s->now);
    if (lease_may_release(&s->lease, s->now)) {
        FUZZ_CHECK(s->holder[HOLDER_PAIR] == HOLDER_ID && !s->released[HOLDER_PAIR]);
        FUZZ_CHECK(s->now < s->granted_at[HOLDER_PAIR] + LEASE * MS);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct state s;
    memset(&s, 0, sizeof(s));
    struct witness_config cfg = { .lease_ms = LEASE, .max_pairs = 4, .max_senders = 8 };
    s.now = 1000 * MS;
    s.w = witness_create(&cfg, key, sizeof(key), s.now);
    FUZZ_CHECK(s.w != NULL);
    struct lease_config lc = { .pair_id = HOLDER_PAIR, .self_id = HOLDER_ID };
    lease_init(&s.lease, &lc, size && data[0] & 1 ? LEASE_SECONDARY : LEASE_PRIMARY, 1);
    struct fuzz_input in = { data, size };
    while (in.left) {
        uint8_t out[WITNESS_MSG_LEN];
        switch (take_u8(&in) % 5) {
        case 0: raw_datagram(&s, &in); break;
        case 1: signed_request(&s, &in); break;
        case 2: s.now += (uint64_t)take_u16(&in) * 10000; break;
        case 3: if (s.have_last) feed(&s, s.last, sizeof(s.last), out); break;
        default: holder_turn(&s, &in); break;
        }
    }
    witness_destroy(s.w);
    return 0;
}
