/*
 * checkpoint_ctl.c — the QMP client that asks QEMU for checkpoints.
 *
 * Owns: the QMP connection (libevent bufferevent), its parser, the session
 * state (greeting, capabilities, ready), whether the primary is in COLO, the
 * one request in flight, and the reconnect back-off. Command ids are
 * "cap", "status-N" and "ckpt-N"; replies are matched by them, and events
 * interleaved with replies are handled as they come. Must never: send a
 * checkpoint request outside COLO or while one is in flight; block.
 */
#include "colo/checkpoint_ctl.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/util.h>

#include "colo/log.h"
#include "colo/qmp_parser.h"

#define REQUEST_TIMEOUT_MS 3000
#define BACKOFF_START_MS 100

enum session { SESSION_DOWN, SESSION_GREETING, SESSION_CAPABILITIES, SESSION_READY };

struct checkpoint_ctl {
    struct event_base *base;
    struct checkpoint_ctl_config cfg;
    char qmp[256];
    struct checkpoint_ctl_ops ops;
    void *ctx;
    struct bufferevent *bev;
    struct event *reconnect_timer, *status_timer, *request_timer;
    uint32_t backoff_ms;
    struct qmp_parser parser;
    enum session session;
    bool stopped, request_pending, request_in_flight;
    bool status_said_colo;           /* the last query-colo-status answer (events leave it alone) */
    uint64_t stopped_at_ns;          /* the last STOP, for the checkpoint's duration */
    uint64_t next_id;
    struct checkpoint_ctl_stats stats;
    struct log_retry retry_log;      /* QEMU not reachable yet: said now and then, not every back-off */
};

void checkpoint_ctl_config_default(struct checkpoint_ctl_config *cfg)
{
    cfg->qmp = NULL;
    cfg->period_ms = 20000;
    cfg->status_poll_ms = 500;
    cfg->reconnect_max_ms = 5000;
}

static void say(struct checkpoint_ctl *c, const char *fmt, const char *arg)
{
    char line[512];
    snprintf(line, sizeof(line), fmt, arg);
    if (c->ops.log)
        c->ops.log(c->ctx, line);
}

static uint64_t monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void arm(struct event *ev, uint32_t ms)
{
    struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
    event_add(ev, &tv);
}

static void send_command(struct checkpoint_ctl *c, const char *json)
{
    if (c->bev)
        evbuffer_add_printf(bufferevent_get_output(c->bev), "%s\r\n", json);
}

static void query_status(struct checkpoint_ctl *c)
{
    char cmd[96];
    snprintf(cmd, sizeof(cmd), "{\"execute\": \"query-colo-status\", \"id\": \"status-%" PRIu64 "\"}",
             c->next_id++);
    send_command(c, cmd);
}

static void send_request(struct checkpoint_ctl *c)
{
    char cmd[192];
    snprintf(cmd, sizeof(cmd),
             "{\"execute\": \"migrate-set-parameters\", \"arguments\": {\"x-checkpoint-delay\": %u}, "
             "\"id\": \"ckpt-%" PRIu64 "\"}",
             c->cfg.period_ms, c->next_id++);
    send_command(c, cmd);
    c->request_pending = false;
    c->request_in_flight = true;
    c->stats.requests_sent++;
    arm(c->request_timer, REQUEST_TIMEOUT_MS);
}

static void maybe_send_request(struct checkpoint_ctl *c)
{
    if (c->request_pending && !c->request_in_flight && c->session == SESSION_READY && c->stats.in_colo)
        send_request(c);
}

/* ---- messages ---- */

static void on_return(struct checkpoint_ctl *c, const struct qmp_message *m)
{
    const char *id = qmp_get(m, "id");
    if (!id)
        return;
    if (strcmp(id, "cap") == 0) {
        c->session = SESSION_READY;
        c->backoff_ms = BACKOFF_START_MS;
        uint64_t failed = log_retry_up(&c->retry_log);
        char line[384];
        int n = snprintf(line, sizeof(line), "qmp: connected to %s", c->qmp);
        if (failed && n > 0 && (size_t)n < sizeof(line))
            snprintf(line + n, sizeof(line) - (size_t)n, " after %llu failed attempts", (unsigned long long)failed);
        say(c, "%s", line);
        query_status(c);
    } else if (strncmp(id, "status-", 7) == 0) {
        const char *mode = qmp_get(m, "return.mode");
        bool colo = mode && strcmp(mode, "primary") == 0;
        if (colo != c->stats.in_colo)
            say(c, "qmp: COLO mode is now %s", mode ? mode : "unknown");
        c->stats.in_colo = colo;
        bool started = colo && !c->status_said_colo;
        c->status_said_colo = colo;
        if (started && c->ops.colo_started)
            c->ops.colo_started(c->ctx);
        if (colo)
            maybe_send_request(c);
        else
            arm(c->status_timer, c->cfg.status_poll_ms);
    }
}

static void on_error(struct checkpoint_ctl *c, const struct qmp_message *m)
{
    const char *id = qmp_get(m, "id"), *desc = qmp_get(m, "error.desc");
    c->stats.errors++;
    say(c, "qmp: QEMU refused a command: %s", desc ? desc : "(no description)");
    if (id && strncmp(id, "ckpt-", 5) == 0)
        c->request_in_flight = false;
    if (id && strncmp(id, "status-", 7) == 0)
        arm(c->status_timer, c->cfg.status_poll_ms);
}

static void on_event(struct checkpoint_ctl *c, const struct qmp_message *m)
{
    const char *ev = qmp_get(m, "event");
    if (!ev)
        return;
    if (strcmp(ev, "STOP") == 0) {
        c->stopped = true;
        c->stopped_at_ns = monotonic_ns();
        if (c->ops.checkpoint_began)
            c->ops.checkpoint_began(c->ctx);
    } else if (strcmp(ev, "RESUME") == 0 && c->stopped) {
        c->stopped = false;
        c->stats.last_stopped_ns = monotonic_ns() - c->stopped_at_ns;
        latency_hist_record(&c->stats.stopped, c->stats.last_stopped_ns);
        c->request_in_flight = false;
        c->stats.checkpoints_seen++;
        event_del(c->request_timer);
        c->ops.checkpoint_done(c->ctx);
        maybe_send_request(c);
    } else if (strcmp(ev, "COLO_EXIT") == 0) {
        const char *why = qmp_get(m, "data.reason");
        c->stats.in_colo = false;
        c->request_in_flight = false;
        say(c, "qmp: COLO_EXIT (%s)", why ? why : "?");
        arm(c->status_timer, c->cfg.status_poll_ms); /* to learn when a new COLO session begins */
        c->ops.failover(c->ctx, why ? why : "unknown");
    }
}

static void on_message(void *arg, const struct qmp_message *m)
{
    struct checkpoint_ctl *c = arg;
    switch (qmp_message_kind(m)) {
    case QMP_GREETING:
        c->session = SESSION_CAPABILITIES;
        send_command(c, "{\"execute\": \"qmp_capabilities\", \"id\": \"cap\"}");
        break;
    case QMP_RETURN: on_return(c, m); break;
    case QMP_ERROR: on_error(c, m); break;
    case QMP_EVENT: on_event(c, m); break;
    default: break;
    }
}

/* ---- connection ---- */

static void schedule_reconnect(struct checkpoint_ctl *c);

static void unreachable(struct checkpoint_ctl *c, int err)
{
    log_retry_failed(&c->retry_log, "qmp: cannot reach QEMU's monitor at %s: %s; retrying", c->qmp, strerror(err));
    schedule_reconnect(c);
}

static void schedule_reconnect(struct checkpoint_ctl *c)
{
    arm(c->reconnect_timer, c->backoff_ms);
    c->backoff_ms = c->backoff_ms * 2 > c->cfg.reconnect_max_ms ? c->cfg.reconnect_max_ms
                                                                : c->backoff_ms * 2;
}

static void drop_connection(struct checkpoint_ctl *c)
{
    if (c->bev) {
        bufferevent_free(c->bev);
        c->bev = NULL;
    }
    if (c->stats.connected) {
        c->stats.disconnects++;
        say(c, "qmp: lost the connection to %s; reconnecting", c->qmp);
    }
    c->stats.connected = false;
    c->stats.in_colo = false;
    c->session = SESSION_DOWN;
    c->stopped = false;
    if (c->request_in_flight) { /* it may never complete: ask again once back */
        c->request_in_flight = false;
        c->request_pending = true;
    }
    event_del(c->status_timer);
    event_del(c->request_timer);
    schedule_reconnect(c);
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct checkpoint_ctl *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    char buf[4096];
    int n;
    while ((n = evbuffer_remove(in, buf, sizeof(buf))) > 0) {
        if (qmp_parser_feed(&c->parser, buf, (size_t)n, on_message, c) != 0) {
            say(c, "qmp: %s sent something that is not QMP; reconnecting", c->qmp);
            drop_connection(c);
            return;
        }
        if (!c->bev)
            return;
    }
}

static void on_bev_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    struct checkpoint_ctl *c = arg;
    if (what & BEV_EVENT_CONNECTED) {
        c->stats.connects++;
        c->stats.connected = true;
        c->session = SESSION_GREETING;
        qmp_parser_init(&c->parser);
    } else if ((what & BEV_EVENT_ERROR) && !c->stats.connected) {
        int err = EVUTIL_SOCKET_ERROR();
        bufferevent_free(c->bev);
        c->bev = NULL;
        unreachable(c, err);
    } else if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
        drop_connection(c);
    }
}

static int parse_address(const char *qmp, struct sockaddr_storage *ss, int *len)
{
    memset(ss, 0, sizeof(*ss));
    if (strncmp(qmp, "unix:", 5) == 0) {
        struct sockaddr_un *sun = (struct sockaddr_un *)ss;
        if (strlen(qmp + 5) >= sizeof(sun->sun_path))
            return -1;
        sun->sun_family = AF_UNIX;
        strcpy(sun->sun_path, qmp + 5);
        *len = (int)sizeof(*sun);
        return 0;
    }
    if (strncmp(qmp, "tcp:", 4) == 0) {
        *len = (int)sizeof(*ss);
        return evutil_parse_sockaddr_port(qmp + 4, (struct sockaddr *)ss, len);
    }
    return -1;
}

static void connect_now(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct checkpoint_ctl *c = arg;
    struct sockaddr_storage ss;
    int len;
    parse_address(c->qmp, &ss, &len);
    c->bev = bufferevent_socket_new(c->base, -1, BEV_OPT_CLOSE_ON_FREE);
    bufferevent_setcb(c->bev, on_read, NULL, on_bev_event, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    if (bufferevent_socket_connect(c->bev, (struct sockaddr *)&ss, len) != 0) {
        int err = errno;
        bufferevent_free(c->bev);
        c->bev = NULL;
        unreachable(c, err);
    }
}

static void on_status_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct checkpoint_ctl *c = arg;
    if (c->session == SESSION_READY)
        query_status(c);
}

static void on_request_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct checkpoint_ctl *c = arg;
    if (!c->request_in_flight)
        return;
    say(c, "qmp: no checkpoint followed a request to %s; asking for COLO status", c->qmp);
    c->request_in_flight = false;
    c->request_pending = true;
    query_status(c);
}

int checkpoint_ctl_check_address(const char *qmp, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    int len;
    if (!qmp || strlen(qmp) >= sizeof(((struct checkpoint_ctl *)0)->qmp) || parse_address(qmp, &ss, &len) != 0) {
        snprintf(err, errlen, "--qmp '%s': use unix:/path/to/socket or tcp:HOST:PORT", qmp ? qmp : "");
        return -1;
    }
    return 0;
}

struct checkpoint_ctl *checkpoint_ctl_start(struct event_base *base,
                                            const struct checkpoint_ctl_config *cfg,
                                            const struct checkpoint_ctl_ops *ops, void *ctx,
                                            char *err, size_t errlen)
{
    if (checkpoint_ctl_check_address(cfg->qmp, err, errlen) != 0)
        return NULL;
    struct checkpoint_ctl *c = calloc(1, sizeof(*c));
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->base = base;
    c->cfg = *cfg;
    strcpy(c->qmp, cfg->qmp);
    c->cfg.qmp = c->qmp;
    c->ops = *ops;
    c->ctx = ctx;
    c->backoff_ms = BACKOFF_START_MS;
    c->reconnect_timer = evtimer_new(base, connect_now, c);
    c->status_timer = evtimer_new(base, on_status_timer, c);
    c->request_timer = evtimer_new(base, on_request_timeout, c);
    qmp_parser_init(&c->parser);
    arm(c->reconnect_timer, 0);
    return c;
}

void checkpoint_ctl_free(struct checkpoint_ctl *c)
{
    if (!c)
        return;
    if (c->bev)
        bufferevent_free(c->bev);
    event_free(c->reconnect_timer);
    event_free(c->status_timer);
    event_free(c->request_timer);
    free(c);
}

void checkpoint_ctl_request(struct checkpoint_ctl *c)
{
    if (c->request_in_flight) {
        c->stats.requests_coalesced++;
        return;
    }
    if (!c->stats.in_colo)
        c->stats.requests_before_colo++;
    c->request_pending = true;
    maybe_send_request(c);
}

void checkpoint_ctl_lost_heartbeat(struct checkpoint_ctl *c)
{
    c->request_pending = false; /* no checkpoint without a secondary */
    if (c->session != SESSION_READY) {
        say(c, "qmp: cannot tell %s of the lost secondary: not connected", c->qmp);
        return;
    }
    send_command(c, "{\"execute\": \"x-colo-lost-heartbeat\", \"id\": \"lost\"}");
    say(c, "qmp: told %s x-colo-lost-heartbeat", c->qmp);
}

const struct checkpoint_ctl_stats *checkpoint_ctl_stats(const struct checkpoint_ctl *c)
{
    return &c->stats;
}
