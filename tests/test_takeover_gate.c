/*
 * test_takeover_gate.c — the secondary takes over only through its guard: the
 * witness's lease, the fence command's success, or (with neither) the detector
 * alone, said with a warning.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "colo/takeover_gate.h"

#define MS 1000000ull

static void test_witness_takes_over_only_once_the_lease_is_granted(void **state)
{
    (void)state;
    struct takeover_gate g;
    takeover_gate_init(&g, TAKEOVER_GUARD_WITNESS, 0);
    assert_null(takeover_gate_warning(&g));
    assert_int_equal(takeover_gate_step(&g, false, 0), TAKEOVER_NOTHING);
    assert_int_equal(takeover_gate_step(&g, true, 1 * MS), TAKEOVER_ASK_LEASE);
    assert_int_equal(takeover_gate_step(&g, true, 2 * MS), TAKEOVER_NOTHING); /* asked once */
    assert_int_equal(takeover_gate_step(&g, false, 3 * MS), TAKEOVER_NOTHING); /* heartbeats back: still asking */
    takeover_gate_lease_granted(&g);
    assert_int_equal(takeover_gate_step(&g, false, 4 * MS), TAKEOVER_NOW); /* the primary is deposed: serve */
    assert_int_equal(takeover_gate_step(&g, true, 5 * MS), TAKEOVER_NOTHING);
    assert_int_equal(g.state, GATE_TAKEN);
}

static void test_a_lease_not_asked_for_takes_nothing_over(void **state)
{
    (void)state;
    struct takeover_gate g;
    takeover_gate_init(&g, TAKEOVER_GUARD_WITNESS, 0);
    takeover_gate_lease_granted(&g);
    assert_int_equal(takeover_gate_step(&g, false, 1 * MS), TAKEOVER_NOTHING);
}

static void test_fence_takes_over_only_after_success_and_retries_failures(void **state)
{
    (void)state;
    struct takeover_gate g;
    takeover_gate_init(&g, TAKEOVER_GUARD_FENCE, 1000);
    assert_null(takeover_gate_warning(&g));
    assert_int_equal(takeover_gate_step(&g, true, 0), TAKEOVER_RUN_FENCE);
    assert_int_equal(takeover_gate_step(&g, true, 1 * MS), TAKEOVER_NOTHING); /* running */
    takeover_gate_fence_done(&g, false, 100 * MS);
    assert_int_equal(takeover_gate_step(&g, true, 1099 * MS), TAKEOVER_NOTHING);
    assert_int_equal(takeover_gate_step(&g, true, 1100 * MS), TAKEOVER_RUN_FENCE);
    takeover_gate_fence_done(&g, true, 1200 * MS);
    assert_int_equal(takeover_gate_step(&g, false, 1201 * MS), TAKEOVER_NOW); /* stopped by us: serve */
    assert_int_equal(g.fence_runs, 2);
    assert_int_equal(g.fence_failures, 1);
}

static void test_fence_failure_then_heartbeats_back_is_no_takeover(void **state)
{
    (void)state;
    struct takeover_gate g;
    takeover_gate_init(&g, TAKEOVER_GUARD_FENCE, 1000);
    assert_int_equal(takeover_gate_step(&g, true, 0), TAKEOVER_RUN_FENCE);
    takeover_gate_fence_done(&g, false, 10 * MS);
    assert_int_equal(takeover_gate_step(&g, false, 20 * MS), TAKEOVER_NOTHING);
    assert_int_equal(g.state, GATE_WATCHING);
    takeover_gate_fence_done(&g, true, 30 * MS); /* a result nobody waits for any more */
    assert_int_equal(takeover_gate_step(&g, false, 40 * MS), TAKEOVER_NOTHING);
}

static void test_without_a_guard_the_detector_decides_and_a_warning_says_so(void **state)
{
    (void)state;
    struct takeover_gate g;
    takeover_gate_init(&g, TAKEOVER_GUARD_NONE, 0);
    assert_non_null(takeover_gate_warning(&g));
    assert_int_equal(takeover_gate_step(&g, false, 0), TAKEOVER_NOTHING);
    assert_int_equal(takeover_gate_step(&g, true, 1 * MS), TAKEOVER_NOW);
    assert_int_equal(takeover_gate_step(&g, true, 2 * MS), TAKEOVER_NOTHING);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_witness_takes_over_only_once_the_lease_is_granted),
        cmocka_unit_test(test_a_lease_not_asked_for_takes_nothing_over),
        cmocka_unit_test(test_fence_takes_over_only_after_success_and_retries_failures),
        cmocka_unit_test(test_fence_failure_then_heartbeats_back_is_no_takeover),
        cmocka_unit_test(test_without_a_guard_the_detector_decides_and_a_warning_says_so),
    };
    return cmocka_run_group_tests_name("takeover_gate", tests, NULL, NULL);
}
