/*
 * test_witness.c — the witness protocol's codec and the lease grantor's rules:
 * authentication, replays, one holder per pair, expiry plus margin, release,
 * a restarted witness's quiet period, full tables.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "colo/lease.h"
#include "colo/witness.h"
#include "colo/witness_msg.h"

#define MS 1000000ull
#define LEASE 120
#define PAIR 7
#define A 0xa1
#define B 0xb2
#define C 0xc3

static uint8_t key[32];

static int setup_key(void **state)
{
    (void)state;
    for (int i = 0; i < 32; i++)
        key[i] = (uint8_t)i;
    return 0;
}

static void request(uint8_t type, uint64_t pair, uint64_t sender, uint64_t counter, uint8_t out[WITNESS_MSG_LEN])
{
    struct witness_msg m = { .type = type, .pair_id = pair, .sender_id = sender, .counter = counter };
    witness_msg_encode(&m, key, sizeof(key), out);
}

/* Sends one request; returns the reason, and the decoded reply in r when there is one. */
static enum witness_reject ask(struct witness *w, uint8_t type, uint64_t pair, uint64_t sender, uint64_t counter,
                               uint64_t now, struct witness_msg *r)
{
    uint8_t in[WITNESS_MSG_LEN], out[WITNESS_MSG_LEN];
    struct witness_outcome o;
    request(type, pair, sender, counter, in);
    enum witness_reject why = witness_handle(w, in, sizeof(in), now, out, &o);
    assert_int_equal(o.reply, why == WITNESS_OK);
    if (why == WITNESS_OK)
        assert_int_equal(witness_reply_check(out, sizeof(out), key, sizeof(key), pair, sender, r), WITNESS_OK);
    return why;
}

/* A witness that started long ago: its quiet period is over at t = 1 s. */
static struct witness *started_witness(uint32_t pairs, uint32_t senders)
{
    struct witness_config cfg = { .lease_ms = LEASE, .max_pairs = pairs, .max_senders = senders };
    struct witness *w = witness_create(&cfg, key, sizeof(key), 0);
    assert_non_null(w);
    assert_true(witness_grants_from_ns(w) < 1000 * MS);
    return w;
}

static void test_encoding_matches_hmac_sha256_of_the_documented_layout(void **state)
{
    (void)state;
    /* HMAC-SHA256 of the 48-byte header under key 00..1f, computed independently (Python's hmac). */
    static const uint8_t expected[32] = { 0xbb, 0xaf, 0x24, 0xad, 0x74, 0x96, 0x18, 0x9c, 0x10, 0x6c, 0x48,
                                          0x86, 0x4e, 0x8f, 0xc8, 0x94, 0xe2, 0x90, 0x7e, 0xdb, 0xda, 0x43,
                                          0xbf, 0x90, 0xb0, 0xb5, 0x91, 0x35, 0x8e, 0xae, 0x58, 0x13 };
    uint8_t buf[WITNESS_MSG_LEN];
    request(WITNESS_ACQUIRE, 7, 0x1122334455667788ull, 42, buf);
    assert_memory_equal(buf, "CLWT\x01\x01\x00\x00", 8);
    assert_memory_equal(buf + 16, "\x11\x22\x33\x44\x55\x66\x77\x88", 8);
    assert_int_equal(buf[31], 42);
    assert_memory_equal(buf + WITNESS_MAC_OFFSET, expected, sizeof(expected));
    struct witness_msg m;
    assert_int_equal(witness_msg_decode(buf, sizeof(buf), key, sizeof(key), &m), WITNESS_OK);
    assert_int_equal(m.type, WITNESS_ACQUIRE);
    assert_int_equal(m.pair_id, 7);
    assert_int_equal(m.sender_id, 0x1122334455667788ull);
    assert_int_equal(m.counter, 42);
}

static void test_every_flipped_bit_and_every_wrong_length_is_rejected(void **state)
{
    (void)state;
    uint8_t good[WITNESS_MSG_LEN], buf[WITNESS_MSG_LEN + 1];
    request(WITNESS_ACQUIRE, PAIR, A, 1, good);
    struct witness_msg m;
    for (int bit = 0; bit < WITNESS_MSG_LEN * 8; bit++) {
        memcpy(buf, good, sizeof(good));
        buf[bit / 8] ^= (uint8_t)(1 << (bit % 8));
        enum witness_reject why = witness_msg_decode(buf, WITNESS_MSG_LEN, key, sizeof(key), &m);
        assert_true(why == WITNESS_REJECT_MAC || why == WITNESS_REJECT_MAGIC);
    }
    memcpy(buf, good, sizeof(good));
    for (size_t len = 0; len <= sizeof(buf); len++)
        if (len != WITNESS_MSG_LEN)
            assert_int_equal(witness_msg_decode(buf, len, key, sizeof(key), &m), WITNESS_REJECT_LENGTH);
    uint8_t other[32] = { 1 };
    assert_int_equal(witness_msg_decode(good, sizeof(good), other, sizeof(other), &m), WITNESS_REJECT_MAC);
}

static void test_a_reply_is_taken_only_by_its_pair_and_holder(void **state)
{
    (void)state;
    uint8_t buf[WITNESS_MSG_LEN];
    struct witness_msg m;
    request(WITNESS_ACQUIRE, PAIR, A, 1, buf); /* a request reflected back is no reply */
    assert_int_equal(witness_reply_check(buf, sizeof(buf), key, sizeof(key), PAIR, A, &m), WITNESS_REJECT_TYPE);
    request(WITNESS_GRANT, PAIR, A, 1, buf);
    assert_int_equal(witness_reply_check(buf, sizeof(buf), key, sizeof(key), PAIR + 1, A, &m),
                     WITNESS_REJECT_NOT_OURS);
    assert_int_equal(witness_reply_check(buf, sizeof(buf), key, sizeof(key), PAIR, B, &m), WITNESS_REJECT_NOT_OURS);
    assert_int_equal(witness_reply_check(buf, sizeof(buf), key, sizeof(key), PAIR, A, &m), WITNESS_OK);
}

static void test_a_restarted_witness_grants_nothing_for_lease_plus_margin(void **state)
{
    (void)state;
    uint64_t start = 5000 * MS, quiet = LEASE * MS + lease_margin_ns(LEASE);
    struct witness_config cfg = { .lease_ms = LEASE };
    struct witness *w = witness_create(&cfg, key, sizeof(key), start);
    struct witness_msg r;
    assert_int_equal(ask(w, WITNESS_ACQUIRE, PAIR, A, 1, start + quiet - 1, &r), WITNESS_OK);
    assert_int_equal(r.type, WITNESS_DENY);
    assert_int_equal(r.holder_id, 0);
    assert_int_equal(r.wait_ms, 1);
    assert_int_equal(ask(w, WITNESS_ACQUIRE, PAIR, A, 2, start + quiet, &r), WITNESS_OK);
    assert_int_equal(r.type, WITNESS_GRANT);
    assert_int_equal(r.lease_ms, LEASE);
    witness_destroy(w);
}

static void test_one_holder_until_its_lease_and_margin_are_over(void **state)
{
    (void)state;
    struct witness *w = started_witness(0, 0);
    struct witness_msg r;
    uint64_t t = 1000 * MS, margin = lease_margin_ns(LEASE);
    assert_int_equal(margin, 11200000); /* 1 % of 120 ms + 10 ms */
    assert_int_equal(ask(w, WITNESS_ACQUIRE, PAIR, A, 1, t, &r), WITNESS_OK);
    assert_int_equal(r.type, WITNESS_GRANT);
    assert_int_equal(r.holder_id, A);
    assert_int_equal(ask(w, WITNESS_ACQUIRE, PAIR, B, 1, t + 1 * MS, &r), WITNESS_OK);
    assert_int_equal(r.type, WITNESS_DENY);
    assert_int_equal(r.holder_id, A);
    assert_int_equal(r.wait_ms, LEASE - 1 + 12); /* 130.2 ms, rounded up */
    assert_int_equal(ask(w, WITNESS_ACQUIRE, PAIR, A, 2, t + 30 * MS, &r), WITNESS_OK); /* renewal */
    assert_int_equal(r.type, WITNESS_GRANT);
    uint64_t over = t + 30 * MS + LEASE * MS + margin;
    assert_int_equal(ask(w, WITNESS_ACQUIRE, PAIR, B, 2, over - 1, &r), WITNESS_OK);
    assert_int_equal(r.type, WITNESS_DENY);
    assert_int_equal(ask(w, WITNESS_ACQUIRE, PAIR, B, 3, over, &r), WITNESS_OK);
    assert_int_equal(r.type, WITNESS_GRANT);
    assert_int_equal(r.holder_id, B);
    assert_int_equal(ask(w, WITNESS_ACQUIRE, PAIR, A, 3, over + 1, &r), WITNESS_OK); /* no way back for A */
    assert_int_equal(r.type, WITNESS_DENY);
    assert_int_equal(r.holder_id, B);
    assert_int_equal(ask(w, WITNESS_ACQUIRE, PAIR + 1, A, 1, over + 1, &r), WITNESS_OK); /* another pair */
    assert_int_equal(r.type, WITNESS_GRANT);
    assert_int_equal(witness_stats(w)->holder_changes, 3);
    witness_destroy(w);
}

static void test_replayed_and_old_counters_are_rejected_without_reply(void **state)
{
    (void)state;
    struct witness *w = started_witness(0, 0);
    uint8_t in[WITNESS_MSG_LEN], out[WITNESS_MSG_LEN];
    struct witness_outcome o;
    struct witness_msg r;
    uint64_t t = 1000 * MS;
    request(WITNESS_ACQUIRE, PAIR, A, 10, in);
    assert_int_equal(witness_handle(w, in, sizeof(in), t, out, &o), WITNESS_OK);
    assert_int_equal(witness_handle(w, in, sizeof(in), t + 1, out, &o), WITNESS_REJECT_REPLAY);
    assert_false(o.reply);
    assert_int_equal(ask(w, WITNESS_ACQUIRE, PAIR, A, 9, t + 2, &r), WITNESS_REJECT_REPLAY);
    assert_int_equal(ask(w, WITNESS_RELEASE, PAIR, A, 10, t + 3, &r), WITNESS_REJECT_REPLAY);
    assert_int_equal(ask(w, WITNESS_ACQUIRE, PAIR, A, 11, t + 4, &r), WITNESS_OK);
    assert_int_equal(witness_stats(w)->rejected[WITNESS_REJECT_REPLAY], 3);
    assert_int_equal(witness_stats(w)->granted, 2);
    assert_int_equal(ask(w, WITNESS_GRANT, PAIR, A, 12, t + 5, &r), WITNESS_REJECT_TYPE); /* replies are not taken */
    assert_int_equal(ask(w, WITNESS_ACQUIRE, PAIR, 0, 1, t + 5, &r), WITNESS_REJECT_NOT_OURS); /* sender 0 is nobody */
    witness_destroy(w);
}

static void test_release_frees_the_lease_at_once_and_only_from_its_holder(void **state)
{
    (void)state;
    struct witness *w = started_witness(0, 0);
    struct witness_msg r;
    uint64_t t = 1000 * MS;
    assert_int_equal(ask(w, WITNESS_ACQUIRE, PAIR, A, 1, t, &r), WITNESS_OK);
    assert_int_equal(ask(w, WITNESS_RELEASE, PAIR, B, 1, t + 1 * MS, &r), WITNESS_OK); /* not B's to give */
    assert_int_equal(ask(w, WITNESS_ACQUIRE, PAIR, B, 2, t + 2 * MS, &r), WITNESS_OK);
    assert_int_equal(r.type, WITNESS_DENY);
    assert_int_equal(ask(w, WITNESS_RELEASE, PAIR, A, 2, t + 3 * MS, &r), WITNESS_OK);
    assert_int_equal(r.holder_id, 0);
    assert_int_equal(ask(w, WITNESS_ACQUIRE, PAIR, B, 3, t + 4 * MS, &r), WITNESS_OK);
    assert_int_equal(r.type, WITNESS_GRANT);
    assert_int_equal(witness_stats(w)->released, 1);
    witness_destroy(w);
}

static void test_full_tables_refuse_newcomers_but_never_evict_a_holder(void **state)
{
    (void)state;
    struct witness *w = started_witness(2, 2);
    struct witness_msg r;
    uint64_t t = 1000 * MS;
    assert_int_equal(ask(w, WITNESS_ACQUIRE, 1, A, 1, t, &r), WITNESS_OK);
    assert_int_equal(ask(w, WITNESS_ACQUIRE, 2, B, 1, t, &r), WITNESS_OK);
    assert_int_equal(ask(w, WITNESS_ACQUIRE, 3, C, 1, t + 1 * MS, &r), WITNESS_REJECT_FULL);
    assert_int_equal(ask(w, WITNESS_ACQUIRE, 1, C, 1, t + 1 * MS, &r), WITNESS_REJECT_FULL);
    /* A's counter is still known: its old request stays a replay. */
    assert_int_equal(ask(w, WITNESS_ACQUIRE, 1, A, 1, t + 2 * MS, &r), WITNESS_REJECT_REPLAY);
    uint64_t over = t + LEASE * MS + lease_margin_ns(LEASE);
    assert_int_equal(ask(w, WITNESS_ACQUIRE, 3, C, 2, over, &r), WITNESS_OK);
    assert_int_equal(r.type, WITNESS_GRANT);
    assert_int_equal(witness_stats(w)->rejected[WITNESS_REJECT_FULL], 2);
    witness_destroy(w);
}

static void test_short_keys_are_refused(void **state)
{
    (void)state;
    struct witness_config cfg = { 0 };
    assert_null(witness_create(&cfg, key, WITNESS_KEY_MIN - 1, 0));
    struct witness *w = witness_create(&cfg, key, WITNESS_KEY_MIN, 0);
    assert_non_null(w);
    assert_int_equal(witness_lease_ms(w), WITNESS_LEASE_MS_DEFAULT);
    witness_destroy(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encoding_matches_hmac_sha256_of_the_documented_layout),
        cmocka_unit_test(test_every_flipped_bit_and_every_wrong_length_is_rejected),
        cmocka_unit_test(test_a_reply_is_taken_only_by_its_pair_and_holder),
        cmocka_unit_test(test_a_restarted_witness_grants_nothing_for_lease_plus_margin),
        cmocka_unit_test(test_one_holder_until_its_lease_and_margin_are_over),
        cmocka_unit_test(test_replayed_and_old_counters_are_rejected_without_reply),
        cmocka_unit_test(test_release_frees_the_lease_at_once_and_only_from_its_holder),
        cmocka_unit_test(test_full_tables_refuse_newcomers_but_never_evict_a_holder),
        cmocka_unit_test(test_short_keys_are_refused),
    };
    return cmocka_run_group_tests_name("witness", tests, setup_key, NULL);
}
