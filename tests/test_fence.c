/*
 * test_fence.c — the fence command runner: success is exit 0 within the
 * timeout and nothing else; a command past its timeout is killed with all it
 * started; the caller's event loop never blocks on it.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "colo/fence.h"

struct outcome {
    bool done;
    enum fence_result result;
    int status;
    struct event_base *base;
    unsigned ticks; /* the loop's own timer kept running while the command did */
};

static void on_done(void *ctx, enum fence_result result, int status)
{
    struct outcome *o = ctx;
    o->done = true;
    o->result = result;
    o->status = status;
    event_base_loopbreak(o->base);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    ((struct outcome *)arg)->ticks++;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Runs `command` to its end on a fresh loop (at most 20 s); returns how long it took. */
static double run(const char *command, uint32_t timeout_ms, struct outcome *o)
{
    memset(o, 0, sizeof(*o));
    o->base = event_base_new();
    struct event *tick = event_new(o->base, -1, EV_PERSIST, on_tick, o);
    struct timeval every = { 0, 10000 }, limit = { 20, 0 };
    event_add(tick, &every);
    char err[256] = "";
    double t0 = now_s();
    struct fence_run *r = fence_start(o->base, command, timeout_ms, on_done, o, err, sizeof(err));
    assert_non_null(r);
    event_base_loopexit(o->base, &limit);
    event_base_dispatch(o->base);
    double took = now_s() - t0;
    assert_true(o->done);
    printf("fence: '%s' over after %.3f s, %u loop ticks meanwhile\n", command, took, o->ticks);
    fence_free(r);
    event_free(tick);
    event_base_free(o->base);
    return took;
}

static void test_true_reports_the_primary_stopped(void **state)
{
    (void)state;
    struct outcome o;
    run("/bin/true", 2000, &o);
    assert_int_equal(o.result, FENCE_STOPPED);
    assert_true(WIFEXITED(o.status) && WEXITSTATUS(o.status) == 0);
}

static void test_false_and_a_missing_command_fail(void **state)
{
    (void)state;
    struct outcome o;
    run("/bin/false", 2000, &o);
    assert_int_equal(o.result, FENCE_FAILED);
    run("/nonexistent/fence-it", 2000, &o);
    assert_int_equal(o.result, FENCE_FAILED);
    assert_int_equal(WEXITSTATUS(o.status), 127);
    run("kill -9 $$", 2000, &o);
    assert_int_equal(o.result, FENCE_FAILED);
    assert_true(WIFSIGNALED(o.status));
}

static void test_a_command_past_its_timeout_is_killed_with_its_children(void **state)
{
    (void)state;
    char pidfile[] = "/tmp/colo-fence-test-XXXXXX";
    int fd = mkstemp(pidfile);
    assert_true(fd >= 0);
    close(fd);
    char command[256];
    snprintf(command, sizeof(command), "echo $$ > %s; sleep 30 & sleep 30", pidfile);
    struct outcome o;
    double took = run(command, 300, &o);
    assert_int_equal(o.result, FENCE_TIMED_OUT);
    assert_true(took >= 0.29 && took < 5); /* libevent's coarse monotonic clock may fire a few ms early */
    assert_true(o.ticks >= 3); /* the loop went on ticking while the command ran (30 when the host is idle) */
    FILE *f = fopen(pidfile, "r");
    int group = 0;
    assert_non_null(f);
    assert_int_equal(fscanf(f, "%d", &group), 1);
    fclose(f);
    unlink(pidfile);
    assert_true(group > 1);
    /* The background sleep was in the command's group: it is gone too (a killed process may take a moment). */
    double deadline = now_s() + 5;
    while (kill(-group, 0) == 0 && now_s() < deadline)
        usleep(10000);
    assert_int_equal(kill(-group, 0), -1);
    assert_int_equal(errno, ESRCH);
}

static void test_a_quick_success_is_reported_before_its_timeout(void **state)
{
    (void)state;
    struct outcome o;
    double took = run("sleep 0.1", 5000, &o);
    assert_int_equal(o.result, FENCE_STOPPED);
    assert_true(took < 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_true_reports_the_primary_stopped),
        cmocka_unit_test(test_false_and_a_missing_command_fail),
        cmocka_unit_test(test_a_command_past_its_timeout_is_killed_with_its_children),
        cmocka_unit_test(test_a_quick_success_is_reported_before_its_timeout),
    };
    return cmocka_run_group_tests_name("fence", tests, NULL, NULL);
}
