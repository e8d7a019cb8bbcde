/*
 * test_clocks.c — replay on captures with extreme timestamps finishes, and in
 * time that does not grow with the capture's span.
 *
 * Each case writes a classic microsecond pcap pair byte by byte (so any
 * seconds field can be written, including 0xffffffff and values past
 * 2038-01-19 03:14:07), replays it under an alarm, and checks that every PVM
 * frame was released and that the replay took well under the bound.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "colo/replay.h"
#include "frame_builder.h"

#define REPLAY_BOUND_MS 200 /* generous for ASan; stepping through a day of 1 ms scans took 800 ms */
#define ALARM_S 20           /* a replay that steps through the span never returns: fail instead */

struct stamped_frame {
    uint32_t sec, usec;
    uint32_t seq;
};

static void put32(FILE *f, uint32_t v)
{
    fwrite(&v, sizeof(v), 1, f); /* host order: the magic says which */
}

static void write_pcap(const char *path, const struct stamped_frame *frames, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    put32(f, 0xa1b2c3d4);
    put32(f, 0x00040002); /* version 2.4 */
    put32(f, 0);
    put32(f, 0);
    put32(f, 65535);
    put32(f, 1);          /* Ethernet */
    for (size_t i = 0; i < n; i++) {
        uint8_t buf[256];
        struct frame_spec s = frame_guest_tcp(frames[i].seq, 1, 0x18, "hello", 5);
        size_t len = frame_build(&s, buf, sizeof(buf));
        assert_true(len > 0);
        put32(f, frames[i].sec);
        put32(f, frames[i].usec);
        put32(f, (uint32_t)len);
        put32(f, (uint32_t)len);
        fwrite(buf, 1, len, f);
    }
    assert_int_equal(fclose(f), 0);
}

static uint64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The same frames on both sides: every PVM frame must come out, matched or not. */
static void replay_both_sides(const struct stamped_frame *frames, size_t n, uint32_t scan_cycle_ms)
{
    char pv[] = "/tmp/colo-clocks-pvm-XXXXXX", sv[] = "/tmp/colo-clocks-svm-XXXXXX";
    int fp = mkstemp(pv), fs = mkstemp(sv);
    assert_true(fp >= 0 && fs >= 0);
    close(fp);
    close(fs);
    write_pcap(pv, frames, n);
    write_pcap(sv, frames, n);
    struct replay_options opt;
    replay_options_default(&opt);
    opt.primary_path = pv;
    opt.secondary_path = sv;
    if (scan_cycle_ms)
        opt.compare.expired_scan_cycle_ms = scan_cycle_ms;
    struct replay_result res;
    char err[512];
    alarm(ALARM_S);
    uint64_t t0 = monotonic_ms();
    int rc = replay_run(&opt, &res, err, sizeof(err));
    uint64_t took = monotonic_ms() - t0;
    alarm(0);
    if (rc != 0)
        fail_msg("%s", err);
    uint64_t released = 0;
    for (int k = 0; k < RELEASE_REASON_COUNT; k++)
        released += res.stats.released[k];
    assert_int_equal(released, n);
    if (took > REPLAY_BOUND_MS)
        fail_msg("replay of %zu frames took %llu ms", n, (unsigned long long)took);
    replay_result_free(&res);
    unlink(pv);
    unlink(sv);
}

static void test_seconds_field_all_ones(void **state)
{
    (void)state;
    const struct stamped_frame f[] = { { 1000, 0, 1 }, { 0xffffffffu, 999999, 6 } };
    replay_both_sides(f, 2, 0);
}

static void test_capture_crossing_2038(void **state)
{
    (void)state;
    const struct stamped_frame f[] = { { 0x7fffffffu, 999999, 1 }, { 0x80000000u, 0, 6 }, { 0x80000001u, 0, 11 } };
    replay_both_sides(f, 3, 0);
}

static void test_frames_a_century_apart(void **state)
{
    (void)state;
    const struct stamped_frame f[] = { { 0, 0, 1 }, { 3155760000u, 0, 6 } }; /* 100 years of 365.25 days */
    replay_both_sides(f, 2, 0);
}

static void test_a_day_gap_with_a_one_ms_scan_cycle(void **state)
{
    (void)state;
    const struct stamped_frame f[] = { { 1700000000u, 0, 1 }, { 1700086400u, 0, 6 } };
    replay_both_sides(f, 2, 1);
}

static void test_frames_out_of_order_and_at_the_ends(void **state)
{
    (void)state;
    const struct stamped_frame f[] = {
        { 0xffffffffu, 0, 1 }, { 0, 0, 6 }, { 0x80000000u, 500000, 11 }, { 0xffffffffu, 999999, 16 },
    };
    replay_both_sides(f, 4, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seconds_field_all_ones),
        cmocka_unit_test(test_capture_crossing_2038),
        cmocka_unit_test(test_frames_a_century_apart),
        cmocka_unit_test(test_a_day_gap_with_a_one_ms_scan_cycle),
        cmocka_unit_test(test_frames_out_of_order_and_at_the_ends),
    };
    return cmocka_run_group_tests_name("clocks", tests, NULL, NULL);
}
