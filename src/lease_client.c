/*
 * lease_client.c — the holder's I/O shell (lease_client.h): one connected UDP
 * socket, one timer at the next request or deadline, the key. Every rule is in
 * lease.c; every byte from the socket goes through witness_reply_check first.
 */
#include "colo/lease_client.h"

#include <errno.h>
#include <event2/event.h>
#include <glib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "colo/cli.h"

#define BURST 16

struct lease_client {
    struct lease lease;
    uint8_t key[WITNESS_KEY_MAX];
    size_t key_len;
    int fd;
    struct event *readable, *timer;
    lease_client_fn changed;
    void *ctx;
    enum lease_state told_state;
    uint64_t told_until;
    struct lease_client_stats stats;
};

uint64_t lease_client_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void tell_if_changed(struct lease_client *c)
{
    if (c->lease.state == c->told_state && c->lease.valid_until_ns == c->told_until)
        return;
    c->told_state = c->lease.state;
    c->told_until = c->lease.valid_until_ns;
    c->changed(c->ctx, c->told_state, c->told_until);
}

static void send_msg(struct lease_client *c, const struct witness_msg *m)
{
    uint8_t bytes[WITNESS_MSG_LEN];
    witness_msg_encode(m, c->key, c->key_len, bytes);
    if (send(c->fd, bytes, sizeof(bytes), MSG_DONTWAIT) == (ssize_t)sizeof(bytes))
        c->stats.sent++;
    else
        c->stats.send_errors++; /* the lease runs out on its own: nothing else to do */
}

/* The next moment something is due: a request, or the deadline of a held lease. */
static void arm_timer(struct lease_client *c, uint64_t now)
{
    const struct lease *l = &c->lease;
    if (l->state == LEASE_STANDBY || l->state == LEASE_DEPOSED || l->state == LEASE_RELEASED)
        return;
    uint64_t at = l->next_send_ns;
    if (l->state == LEASE_HELD && l->valid_until_ns < at)
        at = l->valid_until_ns;
    uint64_t wait = at > now ? at - now : 0;
    struct timeval tv = { (time_t)(wait / 1000000000ull), (suseconds_t)(wait % 1000000000ull / 1000) };
    evtimer_add(c->timer, &tv);
}

static void step(struct lease_client *c)
{
    uint64_t now = lease_client_now_ns();
    struct witness_msg m;
    if (lease_request_due(&c->lease, now, &m))
        send_msg(c, &m);
    tell_if_changed(c);
    arm_timer(c, now);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    step(arg);
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct lease_client *c = arg;
    uint8_t buf[WITNESS_MSG_LEN + 1];
    for (int i = 0; i < BURST; i++) {
        ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n < 0)
            break;
        struct witness_msg r;
        if (witness_reply_check(buf, (size_t)n, c->key, c->key_len, c->lease.cfg.pair_id, c->lease.cfg.self_id, &r) !=
            WITNESS_OK) {
            c->stats.replies_rejected++;
            continue;
        }
        c->stats.replies++;
        lease_on_reply(&c->lease, &r, lease_client_now_ns());
    }
    step(c);
}

static int connect_witness(const char *addr, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    unsigned len = 0;
    if (cli_parse_udp_addr("witness", addr, &ss, &len, err, errlen) != 0)
        return -1;
    int fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&ss, len) != 0) {
        snprintf(err, errlen, "cannot reach the witness at %s: %s", addr, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

/* A random holder id, never 0: a restarted proxy is a new holder, with counters from 1. */
static uint64_t random_self_id(void)
{
    uint64_t id = 0;
    while (id == 0)
        if (getrandom(&id, sizeof(id), 0) != sizeof(id))
            id = g_random_int() | (uint64_t)g_random_int() << 32;
    return id;
}

struct lease_client *lease_client_create(struct event_base *base, const struct lease_client_config *cfg,
                                         lease_client_fn changed, void *ctx, char *err, size_t errlen)
{
    if (cfg->key_len < WITNESS_KEY_MIN || cfg->key_len > WITNESS_KEY_MAX) {
        snprintf(err, errlen, "the witness key must be %d to %d bytes", WITNESS_KEY_MIN, WITNESS_KEY_MAX);
        return NULL;
    }
    int fd = connect_witness(cfg->witness, err, errlen);
    if (fd < 0)
        return NULL;
    struct lease_client *c = g_new0(struct lease_client, 1);
    struct lease_config lc = { .pair_id = cfg->pair_id, .self_id = random_self_id() };
    lease_init(&c->lease, &lc, cfg->role, 1);
    memcpy(c->key, cfg->key, cfg->key_len);
    c->key_len = cfg->key_len;
    c->fd = fd;
    c->changed = changed;
    c->ctx = ctx;
    c->told_state = c->lease.state;
    c->readable = event_new(base, fd, EV_READ | EV_PERSIST, on_readable, c);
    c->timer = evtimer_new(base, on_timer, c);
    event_add(c->readable, NULL);
    step(c);
    return c;
}

void lease_client_want_takeover(struct lease_client *c)
{
    lease_want_takeover(&c->lease, lease_client_now_ns());
    step(c);
}

void lease_client_release(struct lease_client *c)
{
    struct witness_msg m;
    if (lease_release(&c->lease, &m))
        send_msg(c, &m);
    evtimer_del(c->timer);
    tell_if_changed(c);
}

const struct lease *lease_client_lease(const struct lease_client *c)
{
    return &c->lease;
}

const struct lease_client_stats *lease_client_stats(const struct lease_client *c)
{
    return &c->stats;
}

void lease_client_free(struct lease_client *c)
{
    if (!c)
        return;
    event_free(c->readable);
    event_free(c->timer);
    close(c->fd);
    memset(c->key, 0, sizeof(c->key));
    g_free(c);
}
