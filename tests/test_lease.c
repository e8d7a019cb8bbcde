/*
 * test_lease.c — a lease holder's state machine, and the pair's safety: with
 * clocks that drift, replies that are late or lost, and a primary that stalls,
 * the primary and the secondary never both may release at one instant.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "colo/lease.h"
#include "colo/witness.h"

#define MS 1000000ull
#define PAIR 7
#define P_ID 0x1111
#define S_ID 0x2222

static struct lease_config config(uint64_t self)
{
    return (struct lease_config){ .pair_id = PAIR, .self_id = self, .retry_ms = 10 };
}

static struct witness_msg reply_to(const struct witness_msg *req, uint8_t type, uint32_t lease_ms, uint64_t holder)
{
    return (struct witness_msg){ .type = type, .pair_id = req->pair_id, .sender_id = req->sender_id,
                                 .counter = req->counter, .lease_ms = lease_ms, .holder_id = holder };
}

static void test_validity_counts_from_the_request_not_the_reply(void **state)
{
    (void)state;
    struct lease l;
    struct lease_config c = config(P_ID);
    lease_init(&l, &c, LEASE_PRIMARY, 1);
    struct witness_msg req;
    assert_false(lease_may_release(&l, 0));
    assert_true(lease_request_due(&l, 1000 * MS, &req));
    assert_int_equal(req.type, WITNESS_ACQUIRE);
    assert_int_equal(req.counter, 1);
    struct witness_msg grant = reply_to(&req, WITNESS_GRANT, 120, P_ID);
    assert_true(lease_on_reply(&l, &grant, 1100 * MS)); /* a reply 100 ms late */
    uint64_t deadline = 1000 * MS + 120 * MS - lease_margin_ns(120);
    assert_int_equal(l.valid_until_ns, deadline); /* 1108.8 ms, not 1208.8 */
    assert_true(lease_may_release(&l, deadline - 1));
    assert_false(lease_may_release(&l, deadline));
    assert_false(lease_on_reply(&l, &grant, 1101 * MS)); /* the same reply again is stale */
    assert_int_equal(l.stale_replies, 1);
}

static void test_renews_every_quarter_lease_and_holds_output_when_it_cannot(void **state)
{
    (void)state;
    struct lease l;
    struct lease_config c = config(P_ID);
    lease_init(&l, &c, LEASE_PRIMARY, 1);
    struct witness_msg req;
    uint64_t t = 1000 * MS;
    assert_true(lease_request_due(&l, t, &req));
    struct witness_msg grant = reply_to(&req, WITNESS_GRANT, 120, P_ID);
    assert_true(lease_on_reply(&l, &grant, t + 1 * MS));
    assert_int_equal(l.state, LEASE_HELD);
    assert_false(lease_request_due(&l, t + 29 * MS, &req));
    assert_true(lease_request_due(&l, t + 30 * MS, &req)); /* lost, as are the next two */
    assert_true(lease_request_due(&l, t + 60 * MS, &req));
    assert_true(lease_request_due(&l, t + 90 * MS, &req));
    uint64_t deadline = t + 120 * MS - lease_margin_ns(120);
    assert_false(lease_step(&l, deadline - 1));
    assert_true(lease_step(&l, deadline));
    assert_int_equal(l.state, LEASE_EXPIRED);
    assert_false(lease_may_release(&l, deadline));
    assert_int_equal(l.expirations, 1);
    assert_true(lease_request_due(&l, deadline, &req)); /* while expired: every retry_ms */
    assert_false(lease_request_due(&l, deadline + 9 * MS, &req));
    assert_true(lease_request_due(&l, deadline + 10 * MS, &req));
    grant = reply_to(&req, WITNESS_GRANT, 120, P_ID);
    assert_true(lease_on_reply(&l, &grant, deadline + 11 * MS));
    assert_int_equal(l.state, LEASE_HELD); /* the held output may go out again */
    assert_true(lease_may_release(&l, deadline + 11 * MS));
}

static void test_a_late_reply_to_an_older_request_still_counts_from_its_own_send(void **state)
{
    (void)state;
    struct lease l;
    struct lease_config c = config(P_ID);
    lease_init(&l, &c, LEASE_PRIMARY, 5);
    struct witness_msg first, second;
    assert_true(lease_request_due(&l, 0, &first));
    assert_true(lease_request_due(&l, 10 * MS, &second));
    struct witness_msg g2 = reply_to(&second, WITNESS_GRANT, 120, P_ID), g1 = reply_to(&first, WITNESS_GRANT, 120, P_ID);
    assert_true(lease_on_reply(&l, &g2, 11 * MS));
    assert_true(lease_on_reply(&l, &g1, 12 * MS)); /* older: does not shorten, does not lengthen */
    assert_int_equal(l.valid_until_ns, 10 * MS + 120 * MS - lease_margin_ns(120));
}

static void test_a_grant_shorter_than_its_margin_gives_nothing(void **state)
{
    (void)state;
    struct lease l;
    struct lease_config c = config(P_ID);
    lease_init(&l, &c, LEASE_PRIMARY, 1);
    struct witness_msg req;
    assert_true(lease_request_due(&l, 0, &req));
    struct witness_msg grant = reply_to(&req, WITNESS_GRANT, 10, P_ID); /* 10 ms < 10.1 ms margin */
    assert_true(lease_on_reply(&l, &grant, 1 * MS));
    assert_false(lease_may_release(&l, 1 * MS));
    assert_int_equal(l.state, LEASE_ACQUIRING);
}

static void test_primary_told_of_another_holder_is_deposed_for_good(void **state)
{
    (void)state;
    struct lease l;
    struct lease_config c = config(P_ID);
    lease_init(&l, &c, LEASE_PRIMARY, 1);
    struct witness_msg req;
    assert_true(lease_request_due(&l, 0, &req));
    struct witness_msg quiet = reply_to(&req, WITNESS_DENY, 0, 0); /* a restarted witness: nobody holds it */
    assert_true(lease_on_reply(&l, &quiet, 1 * MS));
    assert_int_equal(l.state, LEASE_ACQUIRING);
    assert_true(lease_request_due(&l, 10 * MS, &req));
    struct witness_msg other = reply_to(&req, WITNESS_DENY, 0, S_ID);
    assert_true(lease_on_reply(&l, &other, 11 * MS));
    assert_int_equal(l.state, LEASE_DEPOSED);
    assert_false(lease_request_due(&l, 1000 * MS, &req));
    assert_false(lease_may_release(&l, 1000 * MS));
}

static void test_secondary_asks_only_when_it_wants_to_take_over_and_waits_through_denials(void **state)
{
    (void)state;
    struct lease l;
    struct lease_config c = config(S_ID);
    lease_init(&l, &c, LEASE_SECONDARY, 1);
    struct witness_msg req;
    assert_false(lease_request_due(&l, 1000 * MS, &req));
    lease_want_takeover(&l, 1000 * MS);
    assert_true(lease_request_due(&l, 1000 * MS, &req));
    struct witness_msg deny = reply_to(&req, WITNESS_DENY, 0, P_ID);
    assert_true(lease_on_reply(&l, &deny, 1001 * MS));
    assert_int_equal(l.state, LEASE_ACQUIRING); /* the primary's lease has not ended: ask again */
    assert_int_equal(l.other_holder, P_ID);
    assert_true(lease_request_due(&l, 1010 * MS, &req));
    struct witness_msg grant = reply_to(&req, WITNESS_GRANT, 120, S_ID);
    assert_true(lease_on_reply(&l, &grant, 1011 * MS));
    assert_int_equal(l.state, LEASE_HELD);
    assert_true(lease_may_release(&l, 1011 * MS));
}

static void test_release_tells_the_witness_once_and_ends_the_lease(void **state)
{
    (void)state;
    struct lease l;
    struct lease_config c = config(P_ID);
    lease_init(&l, &c, LEASE_PRIMARY, 1);
    struct witness_msg req, rel;
    assert_false(lease_release(&l, &rel)); /* never held: nothing to give back */
    lease_init(&l, &c, LEASE_PRIMARY, 1);
    assert_true(lease_request_due(&l, 0, &req));
    struct witness_msg grant = reply_to(&req, WITNESS_GRANT, 120, P_ID);
    assert_true(lease_on_reply(&l, &grant, 1 * MS));
    assert_true(lease_release(&l, &rel));
    assert_int_equal(rel.type, WITNESS_RELEASE);
    assert_true(rel.counter > req.counter);
    assert_false(lease_may_release(&l, 2 * MS));
    assert_false(lease_request_due(&l, 100 * MS, &req));
    assert_false(lease_release(&l, &rel));
}

/* ---- the pair against a real witness, in simulated real time ---- */

#define TICK (MS / 4)
#define IN_FLIGHT 256

enum node { NODE_P, NODE_S, NODE_W, NODES };

struct datagram {
    uint64_t at;
    enum node to, from;
    uint8_t bytes[WITNESS_MSG_LEN];
};

struct sim {
    uint64_t seed;
    double rate[NODES];        /* each clock's rate error */
    uint64_t offset[NODES];
    struct datagram q[IN_FLIGHT];
    int queued;
    uint64_t stall_until;      /* the primary does nothing until then */
    uint8_t key[32];
};

static uint64_t rnd(struct sim *s)
{
    s->seed ^= s->seed << 13;
    s->seed ^= s->seed >> 7;
    s->seed ^= s->seed << 17;
    return s->seed;
}

static uint64_t local(const struct sim *s, enum node n, uint64_t real)
{
    return s->offset[n] + (uint64_t)((double)real * (1.0 + s->rate[n]));
}

static void send_dgram(struct sim *s, uint64_t real, enum node from, enum node to, const uint8_t *bytes)
{
    if (rnd(s) % 100 < 5 || s->queued == IN_FLIGHT)
        return; /* lost */
    struct datagram *d = &s->q[s->queued++];
    d->at = real + 100000 + rnd(s) % (8 * MS); /* 0.1 to 8 ms one way */
    d->from = from;
    d->to = to;
    memcpy(d->bytes, bytes, WITNESS_MSG_LEN);
}

static void holder_send(struct sim *s, struct lease *l, enum node n, uint64_t real)
{
    struct witness_msg m;
    uint8_t b[WITNESS_MSG_LEN];
    if (lease_request_due(l, local(s, n, real), &m)) {
        witness_msg_encode(&m, s->key, sizeof(s->key), b);
        send_dgram(s, real, n, NODE_W, b);
    }
}

static void deliver(struct sim *s, struct witness *w, struct lease *holders[2], uint64_t real)
{
    for (int i = 0; i < s->queued;) {
        struct datagram d = s->q[i];
        if (d.at > real || (d.to == NODE_P && real < s->stall_until)) {
            i++;
            continue;
        }
        s->q[i] = s->q[--s->queued];
        if (d.to == NODE_W) {
            uint8_t out[WITNESS_MSG_LEN];
            struct witness_outcome o;
            if (witness_handle(w, d.bytes, sizeof(d.bytes), local(s, NODE_W, real), out, &o) == WITNESS_OK &&
                o.reply)
                send_dgram(s, real, NODE_W, d.from, out);
        } else {
            struct lease *l = holders[d.to];
            struct witness_msg r;
            if (witness_reply_check(d.bytes, sizeof(d.bytes), s->key, sizeof(s->key), PAIR, l->cfg.self_id, &r) ==
                WITNESS_OK)
                lease_on_reply(l, &r, local(s, d.to, real));
        }
    }
}

struct sim_result {
    bool took_over;
    uint64_t p_last_release, s_first_release; /* real ns; 0: never */
    uint64_t overlap_ticks;
};

/* Five simulated seconds; the secondary wants to take over from 300 ms on (a detector that is wrong). */
static struct sim_result simulate(uint64_t seed)
{
    struct sim s = { .seed = seed * 2654435761u + 1 };
    for (int n = 0; n < NODES; n++) {
        s.rate[n] = ((double)(rnd(&s) % 5001) - 2500) / 1e6; /* within ±0.25 % */
        s.offset[n] = (rnd(&s) % 1000) * MS;
    }
    for (int i = 0; i < 32; i++)
        s.key[i] = (uint8_t)rnd(&s);
    struct witness_config wc = { .lease_ms = 120 };
    struct witness *w = witness_create(&wc, s.key, sizeof(s.key), local(&s, NODE_W, 0));
    struct lease p, sec;
    struct lease_config pc = config(P_ID), sc = config(S_ID);
    lease_init(&p, &pc, LEASE_PRIMARY, 1);
    lease_init(&sec, &sc, LEASE_SECONDARY, 1);
    struct lease *holders[2] = { &p, &sec };
    struct sim_result r = { 0 };
    for (uint64_t real = 0; real < 5000 * MS; real += TICK) {
        if (real >= s.stall_until && rnd(&s) % 4000 == 0)
            s.stall_until = real + (50 + rnd(&s) % 250) * MS; /* a stall of 50 to 300 ms */
        if (real == 300 * MS)
            lease_want_takeover(&sec, local(&s, NODE_S, real));
        deliver(&s, w, holders, real);
        bool p_runs = real >= s.stall_until;
        if (p_runs)
            holder_send(&s, &p, NODE_P, real);
        holder_send(&s, &sec, NODE_S, real);
        bool p_rel = p_runs && lease_may_release(&p, local(&s, NODE_P, real));
        bool s_rel = lease_may_release(&sec, local(&s, NODE_S, real));
        if (p_rel)
            r.p_last_release = real;
        if (s_rel && !r.s_first_release)
            r.s_first_release = real;
        r.overlap_ticks += p_rel && s_rel;
    }
    r.took_over = r.s_first_release != 0;
    witness_destroy(w);
    return r;
}

static void test_never_two_holders_with_drift_loss_delay_and_stalls(void **state)
{
    (void)state;
    int takeovers = 0;
    uint64_t min_gap = UINT64_MAX;
    for (uint64_t seed = 1; seed <= 300; seed++) {
        struct sim_result r = simulate(seed);
        assert_int_equal(r.overlap_ticks, 0);
        if (r.took_over) {
            takeovers++;
            assert_true(r.s_first_release > r.p_last_release);
            if (r.p_last_release && r.s_first_release - r.p_last_release < min_gap)
                min_gap = r.s_first_release - r.p_last_release;
        }
    }
    printf("lease: 300 simulated runs (clocks within ±0.25 %%, 5 %% loss, 0.1-8 ms delay, 50-300 ms stalls): "
           "%d takeovers, no overlap; shortest real time from the primary's last release to the secondary's "
           "first: %.2f ms\n", takeovers, (double)min_gap / MS);
    assert_true(takeovers > 0); /* the runs did test a handover */
    assert_true(min_gap >= 10 * MS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_validity_counts_from_the_request_not_the_reply),
        cmocka_unit_test(test_renews_every_quarter_lease_and_holds_output_when_it_cannot),
        cmocka_unit_test(test_a_late_reply_to_an_older_request_still_counts_from_its_own_send),
        cmocka_unit_test(test_a_grant_shorter_than_its_margin_gives_nothing),
        cmocka_unit_test(test_primary_told_of_another_holder_is_deposed_for_good),
        cmocka_unit_test(test_secondary_asks_only_when_it_wants_to_take_over_and_waits_through_denials),
        cmocka_unit_test(test_release_tells_the_witness_once_and_ends_the_lease),
        cmocka_unit_test(test_never_two_holders_with_drift_loss_delay_and_stalls),
    };
    return cmocka_run_group_tests_name("lease", tests, NULL, NULL);
}
