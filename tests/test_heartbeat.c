/*
 * test_heartbeat.c — heartbeat frames, round-trip time, and failure detection.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "colo/heartbeat.h"

#define MS 1000000ull

static void test_two_sides_see_each_other_and_measure_rtt(void **state)
{
    (void)state;
    struct heartbeat p, s;
    heartbeat_init(&p, 0, 20, 4);
    heartbeat_init(&s, 1, 20, 4);
    uint8_t f[HEARTBEAT_FRAME_LEN];
    uint64_t t = 1000 * MS;
    for (int i = 0; i < 10; i++, t += 20 * MS) {
        if (heartbeat_due(&p, f, t)) {
            assert_true(heartbeat_is_frame(f, sizeof(f)));
            assert_true(heartbeat_receive(&s, f, sizeof(f), t + 1 * MS)); /* 1 ms one way */
        }
        if (heartbeat_due(&s, f, t + 5 * MS))
            assert_true(heartbeat_receive(&p, f, sizeof(f), t + 6 * MS));
        heartbeat_check(&p, true, t + 6 * MS);
        heartbeat_check(&s, true, t + 6 * MS);
    }
    assert_int_equal(p.state, PEER_UP);
    assert_int_equal(s.state, PEER_UP);
    /* p's heartbeat left at t, reached s at t+1; s answered at t+5 (held 4 ms); back at t+6. */
    assert_int_equal(p.rtt_ns, 2 * MS);
    assert_int_equal(p.sent, 10);
    assert_int_equal(s.received, 10);
}

static void test_peer_declared_down_after_misses_and_up_again(void **state)
{
    (void)state;
    struct heartbeat p, s;
    heartbeat_init(&p, 0, 20, 4);
    heartbeat_init(&s, 1, 20, 4);
    uint8_t f[HEARTBEAT_FRAME_LEN];
    heartbeat_due(&s, f, 0);
    heartbeat_receive(&p, f, sizeof(f), 1 * MS);
    assert_true(heartbeat_check(&p, true, 1 * MS));
    assert_int_equal(p.state, PEER_UP);
    assert_false(heartbeat_check(&p, true, 81 * MS)); /* 80 ms silent: 4 intervals, still up */
    assert_true(heartbeat_check(&p, true, 82 * MS));  /* one more: down */
    assert_int_equal(p.state, PEER_DOWN);
    assert_int_equal(p.went_down, 1);
    heartbeat_due(&s, f, 90 * MS);
    heartbeat_receive(&p, f, sizeof(f), 91 * MS);
    assert_true(heartbeat_check(&p, true, 91 * MS));
    assert_int_equal(p.state, PEER_UP);
}

static void test_lost_carrier_is_immediate(void **state)
{
    (void)state;
    struct heartbeat p, s;
    heartbeat_init(&p, 0, 20, 4);
    heartbeat_init(&s, 1, 20, 4);
    uint8_t f[HEARTBEAT_FRAME_LEN];
    heartbeat_due(&s, f, 0);
    heartbeat_receive(&p, f, sizeof(f), 0);
    heartbeat_check(&p, true, 0);
    assert_true(heartbeat_check(&p, false, 1 * MS));
    assert_int_equal(p.state, PEER_DOWN);
}

static void test_own_truncated_and_foreign_frames_rejected(void **state)
{
    (void)state;
    struct heartbeat p;
    heartbeat_init(&p, 0, 20, 4);
    uint8_t f[HEARTBEAT_FRAME_LEN];
    heartbeat_due(&p, f, 0);
    assert_false(heartbeat_receive(&p, f, sizeof(f), 1)); /* our own, looped back */
    struct heartbeat s;
    heartbeat_init(&s, 1, 20, 4);
    heartbeat_due(&s, f, 0);
    assert_false(heartbeat_receive(&p, f, 30, 1)); /* truncated */
    f[14] = 'X';
    assert_false(heartbeat_receive(&p, f, sizeof(f), 1)); /* not our magic */
    assert_int_equal(p.malformed, 3);
    assert_int_equal(p.received, 0);
    uint8_t ip[20] = { [12] = 0x08, [13] = 0x00 };
    assert_false(heartbeat_is_frame(ip, sizeof(ip)));
    assert_false(heartbeat_is_frame(ip, 10));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_sides_see_each_other_and_measure_rtt),
        cmocka_unit_test(test_peer_declared_down_after_misses_and_up_again),
        cmocka_unit_test(test_lost_carrier_is_immediate),
        cmocka_unit_test(test_own_truncated_and_foreign_frames_rejected),
    };
    return cmocka_run_group_tests_name("heartbeat", tests, NULL, NULL);
}
