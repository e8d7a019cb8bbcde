/*
 * test_lease_client.c — the holder's I/O shell against a witness on a real UDP
 * socket on 127.0.0.1 (the grantor of witness.h on the same libevent loop):
 * a primary acquires and renews, a secondary asks only once told to take over
 * and is refused while the primary holds, a release hands the lease over at
 * once, and a silent witness makes the holder stop releasing at its deadline.
 */
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "colo/lease_client.h"
#include "colo/witness.h"

#define MS 1000000ull

static const uint8_t key[32] = "a shared key for the test only.";

struct fake_witness {
    struct witness *w;
    int fd;
    bool mute;
    char addr[32];
};

static void on_datagram(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct fake_witness *f = arg;
    uint8_t in[128], out[WITNESS_MSG_LEN];
    struct sockaddr_storage from;
    socklen_t len = sizeof(from);
    ssize_t n = recvfrom(fd, in, sizeof(in), 0, (struct sockaddr *)&from, &len);
    struct witness_outcome o;
    if (n >= 0 && !f->mute && witness_handle(f->w, in, (size_t)n, lease_client_now_ns(), out, &o) == WITNESS_OK)
        sendto(fd, out, sizeof(out), 0, (struct sockaddr *)&from, len);
}

static struct event *start_witness(struct event_base *base, struct fake_witness *f)
{
    struct witness_config cfg = { .lease_ms = 120 };
    f->w = witness_create(&cfg, key, sizeof(key), lease_client_now_ns() - 1000 * MS); /* past its quiet start */
    f->fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof(a);
    assert_int_equal(bind(f->fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(f->fd, (struct sockaddr *)&a, &len), 0);
    snprintf(f->addr, sizeof(f->addr), "127.0.0.1:%u", ntohs(a.sin_port));
    struct event *e = event_new(base, f->fd, EV_READ | EV_PERSIST, on_datagram, f);
    event_add(e, NULL);
    return e;
}

struct seen {
    enum lease_state state;
    uint64_t until, at, changes;
};

static void on_change(void *ctx, enum lease_state state, uint64_t until)
{
    struct seen *s = ctx;
    s->state = state;
    s->until = until;
    s->at = lease_client_now_ns();
    s->changes++;
}

/* Runs the loop until *state == want or 5 s pass; true when it got there. */
static bool run_until(struct event_base *base, const struct seen *s, enum lease_state want)
{
    uint64_t deadline = lease_client_now_ns() + 5000 * MS;
    while (s->state != want && lease_client_now_ns() < deadline)
        event_base_loop(base, EVLOOP_ONCE);
    return s->state == want;
}

static void run_for(struct event_base *base, uint64_t ns)
{
    uint64_t end = lease_client_now_ns() + ns;
    struct timeval tv = { 0, 1000 };
    while (lease_client_now_ns() < end) {
        event_base_loopexit(base, &tv);
        event_base_dispatch(base);
    }
}

static struct lease_client *client(struct event_base *base, const struct fake_witness *f, uint64_t pair,
                                   enum lease_role role, struct seen *s)
{
    char err[256] = "";
    struct lease_client_config cfg = { f->addr, key, sizeof(key), pair, role };
    struct lease_client *c = lease_client_create(base, &cfg, on_change, s, err, sizeof(err));
    if (!c)
        fail_msg("%s", err);
    return c;
}

static void test_primary_holds_secondary_waits_release_hands_over(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    struct fake_witness f = { 0 };
    struct event *we = start_witness(base, &f);
    struct seen ps = { 0 }, ss = { 0 };
    struct lease_client *p = client(base, &f, 1, LEASE_PRIMARY, &ps);
    struct lease_client *s = client(base, &f, 1, LEASE_SECONDARY, &ss);
    assert_true(run_until(base, &ps, LEASE_HELD));
    assert_true(ps.until > ps.at);
    run_for(base, 200 * MS); /* longer than a lease: only renewals keep it */
    assert_int_equal(ps.state, LEASE_HELD);
    assert_true(lease_client_lease(p)->grants >= 5);
    assert_int_equal(lease_client_stats(s)->sent, 0); /* standby asks for nothing */
    lease_client_want_takeover(s);
    for (int i = 0; i < 500 && lease_client_lease(s)->denials < 3; i++)
        run_for(base, 10 * MS);
    assert_int_equal(ss.state, LEASE_ACQUIRING);
    assert_true(lease_client_lease(s)->denials >= 3);
    assert_int_equal(lease_client_lease(s)->other_holder, lease_client_lease(p)->cfg.self_id);
    assert_int_equal(ps.state, LEASE_HELD);
    uint64_t released = lease_client_now_ns();
    lease_client_release(p);
    assert_int_equal(ps.state, LEASE_RELEASED);
    assert_int_equal(ps.until, 0);
    assert_true(run_until(base, &ss, LEASE_HELD));
    printf("lease_client: the secondary held the lease %.1f ms after the primary's release\n",
           (double)(ss.at - released) / MS);
    assert_true(ss.at - released < 1000 * MS); /* a few ms on an idle host: no wait for the lease to run out */
    assert_int_equal(witness_stats(f.w)->released, 1); /* the witness freed it on the release, not at expiry */
    assert_int_equal(lease_client_stats(s)->replies_rejected, 0);
    lease_client_free(p);
    lease_client_free(s);
    event_free(we);
    witness_destroy(f.w);
    close(f.fd);
    event_base_free(base);
}

static void test_a_silent_witness_stops_the_holder_at_its_deadline(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    struct fake_witness f = { 0 };
    struct event *we = start_witness(base, &f);
    struct seen ps = { 0 };
    struct lease_client *p = client(base, &f, 2, LEASE_PRIMARY, &ps);
    assert_true(run_until(base, &ps, LEASE_HELD));
    f.mute = true;
    uint64_t muted = lease_client_now_ns(), deadline = ps.until;
    assert_true(deadline - muted <= 120 * MS - lease_margin_ns(120)); /* counted from a request sent before now */
    assert_true(run_until(base, &ps, LEASE_EXPIRED));
    assert_true(ps.at >= deadline);
    assert_true(ps.at - deadline < 1000 * MS); /* 1 ms or so on an idle host */
    assert_false(lease_may_release(lease_client_lease(p), ps.at));
    uint64_t sent = lease_client_stats(p)->sent;
    for (int i = 0; i < 500 && lease_client_stats(p)->sent < sent + 3; i++)
        run_for(base, 10 * MS);
    assert_true(lease_client_stats(p)->sent >= sent + 3); /* still asking, every 10 ms */
    f.mute = false;
    assert_true(run_until(base, &ps, LEASE_HELD)); /* the held output may go out again */
    lease_client_free(p);
    event_free(we);
    witness_destroy(f.w);
    close(f.fd);
    event_base_free(base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_primary_holds_secondary_waits_release_hands_over),
        cmocka_unit_test(test_a_silent_witness_stops_the_holder_at_its_deadline),
    };
    return cmocka_run_group_tests_name("lease_client", tests, NULL, NULL);
}
