/*
 * test_signals.c — epoch marker frames, port up/down history, and checkpoints as the
 * VM's port and QMP see them (pairing, and which SVM epochs a checkpoint makes stale).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "colo/checkpoint_signals.h"
#include "colo/epoch_marker.h"
#include "colo/heartbeat.h"

#define MS 1000000ull

static void test_marker_round_trip_and_is_not_a_heartbeat(void **state)
{
    (void)state;
    uint8_t f[EPOCH_MARKER_FRAME_LEN];
    struct epoch_marker in = { .epoch = 0x01020304, .down_us = 51234 }, out;
    epoch_marker_write(f, &in);
    assert_true(epoch_marker_is_frame(f, sizeof(f)));
    assert_false(heartbeat_is_frame(f, sizeof(f)));
    assert_true(epoch_marker_read(f, sizeof(f), &out));
    assert_int_equal(out.epoch, in.epoch);
    assert_int_equal(out.down_us, in.down_us);
}

static void test_truncated_foreign_and_newer_markers_rejected(void **state)
{
    (void)state;
    uint8_t f[EPOCH_MARKER_FRAME_LEN];
    struct epoch_marker m = { 7, 9 }, out;
    epoch_marker_write(f, &m);
    assert_false(epoch_marker_read(f, 14 + 15, &out)); /* one byte short of the body */
    assert_false(epoch_marker_read(f, 10, &out));
    assert_false(epoch_marker_is_frame(f, 13));
    f[14 + 6] = 2; /* another version */
    assert_false(epoch_marker_read(f, sizeof(f), &out));
    epoch_marker_write(f, &m);
    f[14] = 'X';
    assert_false(epoch_marker_read(f, sizeof(f), &out));
}

static void test_link_watch_counts_down_periods_only_after_the_first_up(void **state)
{
    (void)state;
    struct link_watch w;
    link_watch_init(&w, false, 0);
    assert_int_equal(link_watch_down_ns(&w, 5000 * MS), 0); /* never up: not a down period */
    assert_true(link_watch_update(&w, true, 6000 * MS));
    assert_int_equal(w.downs, 0);
    assert_int_equal(w.down_ns_total, 0);
    assert_false(link_watch_update(&w, true, 6001 * MS));
    assert_true(link_watch_update(&w, false, 7000 * MS));
    assert_int_equal(link_watch_down_ns(&w, 7040 * MS), 40 * MS);
    assert_true(link_watch_update(&w, true, 7090 * MS));
    assert_true(link_watch_update(&w, false, 8000 * MS));
    assert_true(link_watch_update(&w, true, 8030 * MS));
    assert_int_equal(w.downs, 2);
    assert_int_equal(w.last_down_ns, 30 * MS);
    assert_int_equal(w.down_ns_longest, 90 * MS);
    assert_int_equal(w.down_ns_total, 120 * MS);
    assert_int_equal(link_watch_down_ns(&w, 9000 * MS), 0);
}

/* The PVM's port down at t, QMP's RESUME (STOP→RESUME qmp_ms) at t + qmp_ms, the port up 3 ms later. */
static void primary_checkpoint(struct checkpoint_signals *s, struct link_watch *w, uint64_t t, uint64_t qmp_ms,
                               bool *legacy, uint32_t *stale)
{
    link_watch_update(w, false, t);
    checkpoint_signals_port(s, w, t);
    *legacy = !checkpoint_signals_done(s, qmp_ms * MS, t + qmp_ms * MS, stale);
    link_watch_update(w, true, t + (qmp_ms + 3) * MS);
    checkpoint_signals_port(s, w, t + (qmp_ms + 3) * MS);
}

static void test_without_markers_every_checkpoint_is_legacy(void **state)
{
    (void)state;
    struct checkpoint_signals s;
    struct link_watch w;
    memset(&s, 0, sizeof(s));
    link_watch_init(&w, true, 0);
    bool legacy = false;
    uint32_t stale = 99;
    primary_checkpoint(&s, &w, 1000 * MS, 50, &legacy, &stale);
    assert_true(legacy);
    assert_int_equal(stale, 99);
    assert_int_equal(s.port_began, 1);
    assert_int_equal(s.port_ended, 1);
    assert_true(s.paired);
    assert_int_equal(s.down_minus_qmp_ns, 3 * MS);
    assert_int_equal(s.up_minus_resume_ns, 3 * MS);
}

static void test_stale_epochs_are_those_seen_when_the_checkpoint_began(void **state)
{
    (void)state;
    struct checkpoint_signals s;
    struct link_watch w;
    memset(&s, 0, sizeof(s));
    link_watch_init(&w, true, 0);
    struct epoch_marker m = { 1, 0 };
    assert_int_equal(checkpoint_signals_marker(&s, &m, 10 * MS), 1); /* the SVM's first start */
    /* Checkpoint: the PVM's port goes down, the SVM resumes (marker 2), then QMP's RESUME. */
    link_watch_update(&w, false, 1000 * MS);
    checkpoint_signals_port(&s, &w, 1000 * MS);
    m = (struct epoch_marker){ 2, 45000 };
    assert_int_equal(checkpoint_signals_marker(&s, &m, 1040 * MS), 2);
    uint32_t stale = 0;
    assert_true(checkpoint_signals_done(&s, 48 * MS, 1048 * MS, &stale));
    assert_int_equal(stale, 1); /* epoch 2 (after the SVM's resume) is not stale */
    assert_int_equal(s.svm_ahead_ns, 8 * MS);
    assert_int_equal(s.last_svm_down_us, 45000);
    /* A checkpoint-done with no begin signal (e.g. from the control socket): everything seen so far. */
    assert_true(checkpoint_signals_done(&s, 0, 2000 * MS, &stale));
    assert_int_equal(stale, 2);
    assert_int_equal(s.qmp_done, 1);
}

static void test_a_restarted_secondary_numbering_cannot_look_old(void **state)
{
    (void)state;
    struct checkpoint_signals s;
    memset(&s, 0, sizeof(s));
    struct epoch_marker m = { 40, 0 };
    checkpoint_signals_marker(&s, &m, 1);
    m.epoch = 41;
    checkpoint_signals_marker(&s, &m, 2);
    assert_int_equal(s.marker_gaps, 0);
    m.epoch = 1; /* a new secondary run */
    assert_int_equal(checkpoint_signals_marker(&s, &m, 3), 3);
    assert_int_equal(s.marker_gaps, 1);
}

static void test_secondary_numbers_its_epochs_and_pairs_with_its_qmp(void **state)
{
    (void)state;
    struct checkpoint_signals s;
    struct link_watch w;
    memset(&s, 0, sizeof(s));
    link_watch_init(&w, false, 0);
    struct epoch_marker m;
    link_watch_update(&w, true, 5000 * MS); /* the SVM starts: not the end of a checkpoint */
    checkpoint_signals_port(&s, &w, 5000 * MS);
    checkpoint_signals_next_epoch(&s, 0, &m);
    assert_int_equal(m.epoch, 1);
    assert_int_equal(s.port_ended, 0);
    link_watch_update(&w, false, 6000 * MS);
    checkpoint_signals_port(&s, &w, 6000 * MS);
    link_watch_update(&w, true, 6050 * MS);
    checkpoint_signals_port(&s, &w, 6050 * MS);
    checkpoint_signals_next_epoch(&s, w.last_down_ns, &m);
    assert_int_equal(m.epoch, 2);
    assert_int_equal(m.down_us, 50000);
    uint32_t stale;
    checkpoint_signals_done(&s, 47 * MS, 6052 * MS, &stale); /* the secondary QEMU's RESUME, 2 ms later */
    assert_true(s.paired);
    assert_int_equal(s.down_minus_qmp_ns, 3 * MS);
    assert_int_equal(s.up_minus_resume_ns, -2 * (int64_t)MS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_marker_round_trip_and_is_not_a_heartbeat),
        cmocka_unit_test(test_truncated_foreign_and_newer_markers_rejected),
        cmocka_unit_test(test_link_watch_counts_down_periods_only_after_the_first_up),
        cmocka_unit_test(test_without_markers_every_checkpoint_is_legacy),
        cmocka_unit_test(test_stale_epochs_are_those_seen_when_the_checkpoint_began),
        cmocka_unit_test(test_a_restarted_secondary_numbering_cannot_look_old),
        cmocka_unit_test(test_secondary_numbers_its_epochs_and_pairs_with_its_qmp),
    };
    return cmocka_run_group_tests_name("signals", tests, NULL, NULL);
}
