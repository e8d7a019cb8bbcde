/*
 * socket_mode.c — the chardev-socket front end: endpoints, records in, releases out.
 *
 * Owns: the libevent base, the endpoints (listener or connector, the current
 * connection's socket and events, its record decoder, its output queue), the
 * record pool, the compare engine, the 1 ms timer and the QMP channel. Sockets
 * are read straight into one large buffer (up to READ_BYTES per system call, not
 * libevent's 4 KB), each record is copied once into a pooled slot, and released
 * records leave through outdev's queue with vectored writes, attempted at once
 * after each batch (a write event is armed only while the socket pushes back).
 * Must never: let a bad peer affect the other streams (it is disconnected with
 * one log line), drop or reorder a released frame, send a new outdev peer part
 * of a record, or read more input while outdev is backed up.
 */
#include "colo/socket_mode.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>

#include "colo/chardev_codec.h"
#include "colo/pkt_parse.h"
#include "colo/record_buf.h"

#define RECONNECT_MS 200
#define READ_BYTES (1u << 20)
#define READS_PER_WAKEUP 8
#define TICK_US 1000
#define DRAIN_LIMIT_S 5
#define VNET_NEEDS_CSUM 0x01

struct endpoint {
    struct socket_mode *sm;
    enum socket_role role;
    char spec[256];
    bool server;
    struct sockaddr_storage addr;
    int addr_len;
    struct evconnlistener *listener;
    evutil_socket_t fd;       /* -1: no peer */
    bool connecting;
    struct event *rd, *wr, *retry;
    struct chardev_decoder decoder;
    struct record_queue out;  /* outdev: released records; notify_dev: words */
};

struct socket_mode {
    struct socket_mode_config cfg;
    struct event_base *base;
    struct colo_compare *engine;
    struct endpoint ep[SOCK_ROLE_COUNT];
    struct record_pool pool;
    uint8_t *read_buf;
    uint64_t batch_now;        /* one clock reading per batch of records */
    struct event *tick, *sigint, *sigterm;
    struct checkpoint_ctl *qmp;
    bool inputs_paused;
    struct socket_mode_stats stats;
};

static const char *const role_names[SOCK_ROLE_COUNT] = { "primary_in", "secondary_in", "outdev",
                                                          "notify_dev" };

static const char WORD_INIT[] = "COLO_USERSPACE_PROXY_INIT";
static const char WORD_INIT_REPLY[] = "COLO_COMPARE_GET_XEN_INIT";
static const char WORD_DO_CHECKPOINT[] = "DO_CHECKPOINT";
static const char WORD_CHECKPOINT_DONE[] = "COLO_CHECKPOINT";

void socket_mode_config_default(struct socket_mode_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    colo_compare_config_default(&cfg->compare);
    cfg->compare.max_conns = 1u << 16;
    cfg->checkpoint_period_ms = 20000;
    cfg->outdev_high_water = 8u << 20;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- output ---- */

static void drop_peer(struct endpoint *ep);

static void set_inputs_paused(struct socket_mode *sm, bool paused)
{
    if (paused == sm->inputs_paused)
        return;
    sm->inputs_paused = paused;
    sm->stats.input_pauses += paused;
    for (int r = SOCK_PRIMARY_IN; r <= SOCK_SECONDARY_IN; r++) { /* notify_dev keeps reading */
        struct endpoint *ep = &sm->ep[r];
        if (ep->fd < 0 || ep->connecting)
            continue;
        if (paused)
            event_del(ep->rd);
        else
            event_add(ep->rd, NULL);
    }
}

/* Writes what the peer takes now; arms the write event only while it pushes back. */
static void flush_output(struct endpoint *ep)
{
    struct socket_mode *sm = ep->sm;
    if (ep->fd < 0 || ep->connecting)
        return;
    enum record_write_status st = record_queue_write(&ep->out, ep->fd, &sm->pool);
    if (st == RECORD_WRITE_ERROR) {
        fprintf(stderr, "colo-proxy: %s peer %s went away (%s)\n", role_names[ep->role], ep->spec,
                strerror(errno));
        drop_peer(ep);
        return;
    }
    if (st == RECORD_WRITE_AGAIN)
        event_add(ep->wr, NULL);
    else
        event_del(ep->wr);
    if (ep->role == SOCK_OUTDEV && sm->inputs_paused && ep->out.bytes <= sm->cfg.outdev_high_water / 4)
        set_inputs_paused(sm, false);
}

/* Releases made outside a read batch (a checkpoint's end, a timer) go out now. */
static void flush_released(struct socket_mode *sm)
{
    if (sm->ep[SOCK_OUTDEV].out.head)
        flush_output(&sm->ep[SOCK_OUTDEV]);
}

static void on_release(void *ctx, struct colo_pkt *pkt, enum release_reason why)
{
    (void)why;
    struct socket_mode *sm = ctx;
    struct sock_record *rec = pkt->owner;
    rec->header_len = (uint8_t)chardev_encode_header(rec->header, rec->len, rec->vnet_len,
                                                      sm->cfg.vnet_hdr_support);
    struct record_queue *out = &sm->ep[SOCK_OUTDEV].out;
    record_queue_push(out, rec);
    sm->stats.records_out++;
    sm->stats.bytes_out += rec->len;
    if (out->bytes > sm->cfg.outdev_high_water)
        set_inputs_paused(sm, true);
}

static void on_discard(void *ctx, struct colo_pkt *pkt)
{
    struct socket_mode *sm = ctx;
    record_put(&sm->pool, pkt->owner);
}

/* A notify_dev word: the framing, never the vnet field (QEMU writes none). */
static void send_word(struct socket_mode *sm, const char *word)
{
    struct endpoint *ep = &sm->ep[SOCK_NOTIFY_DEV];
    uint32_t len = (uint32_t)strlen(word);
    struct sock_record *rec = record_get(&sm->pool, len);
    if (!rec) {
        fprintf(stderr, "colo-proxy: out of memory for the notify_dev word %s\n", word);
        return;
    }
    memcpy(rec->data, word, len);
    rec->header_len = (uint8_t)chardev_encode_header(rec->header, len, 0, false);
    record_queue_push(&ep->out, rec);
    flush_output(ep);
}

static void on_request(void *ctx, enum checkpoint_reason why, uint64_t now)
{
    (void)now;
    struct socket_mode *sm = ctx;
    bool notify = sm->cfg.endpoint[SOCK_NOTIFY_DEV] != NULL;
    fprintf(stderr, "colo-proxy: checkpoint requested (%s)%s\n", checkpoint_reason_name(why),
            sm->qmp || notify ? "" : "; no --qmp or --notify_dev: only QEMU's periodic checkpoints complete it");
    if (sm->qmp)
        checkpoint_ctl_request(sm->qmp);
    if (notify)
        send_word(sm, WORD_DO_CHECKPOINT);
}

/* One line per divergence: which connection, where in its stream, what kind. */
static void on_divergence(void *ctx, const struct divergence *d)
{
    (void)ctx;
    char flow[128];
    flow_key_format(&d->conn->key, d->conn->guest_is_1, flow, sizeof(flow));
    fprintf(stderr, "colo-proxy: divergence (%s) on %s at stream offset %" PRIu64 "\n",
            divergence_kind_name(d->kind), flow, d->stream_offset);
}

static uint64_t sum(const uint64_t *v, int n)
{
    uint64_t total = 0;
    for (int i = 0; i < n; i++)
        total += v[i];
    return total;
}

/* The accounting at exit, one line: what came in, how each PVM record left, why checkpoints were asked. */
static void print_summary(const struct socket_mode *sm)
{
    const struct colo_compare_stats *s = colo_compare_stats(sm->engine);
    fprintf(stderr, "colo-proxy: summary: PVM records in %" PRIu64 ", released %" PRIu64
                    " (matched %" PRIu64 ", uncompared %" PRIu64 ", after checkpoint %" PRIu64
                    ", at exit %" PRIu64 "); SVM records in %" PRIu64 "; divergences %" PRIu64
                    "; checkpoint requests",
            sm->stats.records_in[SOCK_PRIMARY_IN], sum(s->released, RELEASE_REASON_COUNT),
            s->released[RELEASE_MATCHED], s->released[RELEASE_UNCOMPARED],
            s->released[RELEASE_CHECKPOINT], s->released[RELEASE_FORCED],
            sm->stats.records_in[SOCK_SECONDARY_IN], sum(s->divergences, DIV_KIND_COUNT));
    for (int i = 0; i < CKPT_REASON_COUNT; i++)
        fprintf(stderr, " %s %" PRIu64, checkpoint_reason_name((enum checkpoint_reason)i),
                s->checkpoint_requests[i]);
    fprintf(stderr, "; checkpoints done %" PRIu64 "\n", s->checkpoints_done);
}

static bool is_word(const uint8_t *bytes, uint32_t len, const char *word)
{
    return len == strlen(word) && memcmp(bytes, word, len) == 0;
}

static void on_notify_word(struct socket_mode *sm, const uint8_t *bytes, uint32_t len)
{
    if (is_word(bytes, len, WORD_INIT)) {
        send_word(sm, WORD_INIT_REPLY);
    } else if (is_word(bytes, len, WORD_CHECKPOINT_DONE)) {
        colo_compare_checkpoint_done(sm->engine, now_ns());
    } else {
        fprintf(stderr, "colo-proxy: notify_dev sent an unknown word of %u bytes; ignored\n", len);
    }
}

/* ---- input ---- */

static void on_record(void *ctx, const uint8_t *bytes, uint32_t len, uint32_t vnet_len)
{
    struct endpoint *ep = ctx;
    struct socket_mode *sm = ep->sm;
    if (ep->role == SOCK_NOTIFY_DEV) {
        on_notify_word(sm, bytes + vnet_len, len - vnet_len);
        return;
    }
    struct sock_record *rec = record_get(&sm->pool, len);
    if (!rec) {
        fprintf(stderr, "colo-proxy: out of memory for a %u-byte record from %s\n", len, role_names[ep->role]);
        return;
    }
    memset(&rec->pkt, 0, sizeof(rec->pkt));
    rec->vnet_len = vnet_len;
    memcpy(rec->data, bytes, len);
    rec->pkt.frame = rec->data + vnet_len;
    rec->pkt.frame_len = len - vnet_len;
    rec->pkt.owner = rec;
    rec->pkt.owner_index = sm->stats.records_in[ep->role]++;
    rec->pkt.csum_partial = vnet_len && (rec->data[0] & VNET_NEEDS_CSUM);
    pkt_parse(rec->pkt.frame, rec->pkt.frame_len, &rec->pkt.view);
    colo_compare_input(sm->engine, ep->role == SOCK_PRIMARY_IN ? SIDE_PVM : SIDE_SVM, &rec->pkt, sm->batch_now);
}

/* Reads a few large chunks and decodes them; false when the peer is gone or bad. */
static bool read_batch(struct endpoint *ep)
{
    struct socket_mode *sm = ep->sm;
    for (int i = 0; i < READS_PER_WAKEUP; i++) {
        ssize_t n = read(ep->fd, sm->read_buf, READ_BYTES);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return true;
        if (n <= 0) {
            fprintf(stderr, "colo-proxy: %s peer %s went away\n", role_names[ep->role], ep->spec);
            return false;
        }
        if (ep->role == SOCK_OUTDEV)
            continue; /* QEMU never writes here; whatever comes is ignored */
        sm->batch_now = now_ns();
        enum chardev_error e = chardev_decoder_feed(&ep->decoder, sm->read_buf, (size_t)n, on_record, ep);
        if (e != CHARDEV_OK) {
            fprintf(stderr, "colo-proxy: %s peer sent a bad record (%s); disconnecting it\n",
                    role_names[ep->role], chardev_error_name(e));
            sm->stats.bad_peers++;
            return false;
        }
        if (sm->inputs_paused && ep->role != SOCK_NOTIFY_DEV)
            return true;
        if ((size_t)n < READ_BYTES)
            return true;
    }
    return true;
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct endpoint *ep = arg;
    if (!read_batch(ep)) {
        drop_peer(ep);
        return;
    }
    flush_released(ep->sm);
}

static void attach_connected(struct endpoint *ep);

static void on_writable(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct endpoint *ep = arg;
    if (ep->connecting) {
        int err = 0;
        socklen_t len = sizeof(err);
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err) {
            drop_peer(ep);
            return;
        }
        attach_connected(ep);
        return;
    }
    flush_output(ep);
}

static void tune_socket(evutil_socket_t fd, int family)
{
    int one = 1;
    if (family != AF_UNIX)
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* Gives a socket (connected, or with a connect in progress) to an endpoint. */
static void attach_socket(struct endpoint *ep, evutil_socket_t fd, bool connecting)
{
    struct socket_mode *sm = ep->sm;
    ep->fd = fd;
    ep->connecting = connecting;
    ep->rd = event_new(sm->base, fd, EV_READ | EV_PERSIST, on_readable, ep);
    ep->wr = event_new(sm->base, fd, EV_WRITE | EV_PERSIST, on_writable, ep);
    ep->decoder.header_have = 0;
    ep->decoder.error = CHARDEV_OK;
    if (connecting)
        event_add(ep->wr, NULL);
    else
        attach_connected(ep);
}

static void attach_connected(struct endpoint *ep)
{
    struct socket_mode *sm = ep->sm;
    ep->connecting = false;
    sm->stats.connects[ep->role]++;
    tune_socket(ep->fd, ep->addr.ss_family);
    fprintf(stderr, "colo-proxy: %s connected to %s\n", role_names[ep->role], ep->spec);
    bool reads = !sm->inputs_paused || ep->role == SOCK_NOTIFY_DEV || ep->role == SOCK_OUTDEV;
    if (reads)
        event_add(ep->rd, NULL);
    record_queue_restart(&ep->out); /* what waited goes first, whole records only */
    flush_output(ep);
}

static void arm_retry(struct endpoint *ep)
{
    struct timeval tv = { 0, RECONNECT_MS * 1000 };
    event_add(ep->retry, &tv);
}

static void drop_peer(struct endpoint *ep)
{
    if (ep->fd >= 0) {
        event_free(ep->rd);
        event_free(ep->wr);
        ep->rd = ep->wr = NULL;
        evutil_closesocket(ep->fd);
        ep->fd = -1;
    }
    ep->connecting = false;
    ep->decoder.header_have = 0;
    ep->decoder.error = CHARDEV_OK;
    if (!ep->server)
        arm_retry(ep);
}

static void connect_endpoint(evutil_socket_t unused, short what, void *arg)
{
    (void)unused;
    (void)what;
    struct endpoint *ep = arg;
    evutil_socket_t fd = socket(ep->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        arm_retry(ep);
        return;
    }
    if (connect(fd, (struct sockaddr *)&ep->addr, (socklen_t)ep->addr_len) == 0) {
        attach_socket(ep, fd, false);
    } else if (errno == EINPROGRESS) {
        attach_socket(ep, fd, true);
    } else {
        evutil_closesocket(fd);
        arm_retry(ep);
    }
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len,
                      void *arg)
{
    (void)l;
    (void)sa;
    (void)len;
    struct endpoint *ep = arg;
    if (ep->fd >= 0) {
        fprintf(stderr, "colo-proxy: %s: a new peer replaces the old one\n", role_names[ep->role]);
        drop_peer(ep);
    }
    evutil_make_socket_nonblocking(fd);
    attach_socket(ep, fd, false);
}

/* "tcp:HOST:PORT[,server]" or "unix:PATH[,server]". */
static int parse_endpoint(struct endpoint *ep, const char *spec, char *err, size_t errlen)
{
    size_t n = strlen(spec);
    if (n >= sizeof(ep->spec)) {
        snprintf(err, errlen, "--%s is too long", role_names[ep->role]);
        return -1;
    }
    strcpy(ep->spec, spec);
    char *server = strstr(ep->spec, ",server");
    if (server && (strcmp(server, ",server") == 0 || strcmp(server, ",server=on") == 0)) {
        *server = '\0';
        ep->server = true;
    }
    memset(&ep->addr, 0, sizeof(ep->addr));
    if (strncmp(ep->spec, "unix:", 5) == 0 && strlen(ep->spec + 5) < sizeof(((struct sockaddr_un *)0)->sun_path)) {
        struct sockaddr_un *sun = (struct sockaddr_un *)&ep->addr;
        sun->sun_family = AF_UNIX;
        strcpy(sun->sun_path, ep->spec + 5);
        ep->addr_len = (int)sizeof(*sun);
        return 0;
    }
    ep->addr_len = (int)sizeof(ep->addr);
    if (strncmp(ep->spec, "tcp:", 4) == 0 &&
        evutil_parse_sockaddr_port(ep->spec + 4, (struct sockaddr *)&ep->addr, &ep->addr_len) == 0)
        return 0;
    snprintf(err, errlen, "--%s '%s': use tcp:HOST:PORT or unix:PATH, with ,server to listen",
             role_names[ep->role], spec);
    return -1;
}

static int open_endpoint(struct socket_mode *sm, enum socket_role role, char *err, size_t errlen)
{
    struct endpoint *ep = &sm->ep[role];
    ep->sm = sm;
    ep->role = role;
    if (!sm->cfg.endpoint[role] && role == SOCK_NOTIFY_DEV)
        return 0;
    if (!sm->cfg.endpoint[role]) {
        snprintf(err, errlen, "socket mode needs --%s (QEMU's colo-compare has it too)", role_names[role]);
        return -1;
    }
    if (parse_endpoint(ep, sm->cfg.endpoint[role], err, errlen) != 0 ||
        chardev_decoder_init(&ep->decoder, sm->cfg.vnet_hdr_support) != 0)
        return -1;
    ep->retry = evtimer_new(sm->base, connect_endpoint, ep);
    if (!ep->server) {
        event_active(ep->retry, EV_TIMEOUT, 0);
        return 0;
    }
    if (ep->addr.ss_family == AF_UNIX)
        unlink(((struct sockaddr_un *)&ep->addr)->sun_path);
    ep->listener = evconnlistener_new_bind(sm->base, on_accept, ep, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE,
                                           4, (struct sockaddr *)&ep->addr, ep->addr_len);
    if (!ep->listener) {
        snprintf(err, errlen, "cannot listen for --%s on %s: %s", role_names[role], ep->spec, strerror(errno));
        return -1;
    }
    return 0;
}

/* ---- timers, signals, QMP ---- */

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct socket_mode *sm = arg;
    colo_compare_tick(sm->engine, now_ns());
    flush_released(sm);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    struct socket_mode *sm = arg;
    fprintf(stderr, "colo-proxy: signal %d: releasing what is held and stopping\n", (int)sig);
    event_base_loopbreak(sm->base);
}

static void qmp_done(void *ctx)
{
    struct socket_mode *sm = ctx;
    colo_compare_checkpoint_done(sm->engine, now_ns());
    flush_released(sm);
}

static void qmp_failover(void *ctx, const char *why)
{
    (void)ctx;
    fprintf(stderr, "colo-proxy: COLO ended (%s)\n", why);
}

static void qmp_log(void *ctx, const char *line)
{
    (void)ctx;
    fprintf(stderr, "colo-proxy: %s\n", line);
}

struct socket_mode *socket_mode_create(const struct socket_mode_config *cfg, char *err, size_t errlen)
{
    struct socket_mode *sm = calloc(1, sizeof(*sm));
    if (sm)
        for (int r = 0; r < SOCK_ROLE_COUNT; r++)
            sm->ep[r].fd = -1;
    if (!sm || !(sm->base = event_base_new()) || !(sm->read_buf = malloc(READ_BYTES))) {
        snprintf(err, errlen, "cannot create the event loop");
        socket_mode_destroy(sm);
        return NULL;
    }
    sm->cfg = *cfg;
    static const struct colo_compare_ops ops = {
        .release = on_release, .discard = on_discard, .request_checkpoint = on_request,
        .divergence = on_divergence,
    };
    sm->engine = colo_compare_create(&cfg->compare, &ops, sm);
    if (!sm->engine) {
        snprintf(err, errlen, "cannot allocate the connection table; lower --max-conns");
        socket_mode_destroy(sm);
        return NULL;
    }
    for (int r = 0; r < SOCK_ROLE_COUNT; r++) {
        if (open_endpoint(sm, (enum socket_role)r, err, errlen) != 0) {
            socket_mode_destroy(sm);
            return NULL;
        }
    }
    if (cfg->qmp) {
        struct checkpoint_ctl_config q;
        checkpoint_ctl_config_default(&q);
        q.qmp = cfg->qmp;
        q.period_ms = cfg->checkpoint_period_ms;
        static const struct checkpoint_ctl_ops qops = { qmp_done, qmp_failover, qmp_log };
        if (!(sm->qmp = checkpoint_ctl_start(sm->base, &q, &qops, sm, err, errlen))) {
            socket_mode_destroy(sm);
            return NULL;
        }
    }
    struct timeval tick = { 0, TICK_US };
    sm->tick = event_new(sm->base, -1, EV_PERSIST, on_tick, sm);
    event_add(sm->tick, &tick);
    sm->sigint = evsignal_new(sm->base, SIGINT, on_signal, sm);
    sm->sigterm = evsignal_new(sm->base, SIGTERM, on_signal, sm);
    event_add(sm->sigint, NULL);
    event_add(sm->sigterm, NULL);
    return sm;
}

int socket_mode_run(struct socket_mode *sm)
{
    signal(SIGPIPE, SIG_IGN);
    event_base_dispatch(sm->base);
    colo_compare_release_all(sm->engine);
    /* Give outdev a bounded time to take the rest. */
    struct endpoint *out = &sm->ep[SOCK_OUTDEV];
    flush_output(out);
    time_t until = time(NULL) + DRAIN_LIMIT_S;
    while (out->fd >= 0 && out->out.head && time(NULL) < until)
        event_base_loop(sm->base, EVLOOP_ONCE);
    size_t left = out->out.bytes;
    if (left)
        fprintf(stderr, "colo-proxy: %zu bytes of released frames could not reach outdev before exit\n", left);
    print_summary(sm);
    return 0;
}

void socket_mode_destroy(struct socket_mode *sm)
{
    if (!sm)
        return;
    colo_compare_destroy(sm->engine); /* releases what it holds into the output, freed below */
    for (int r = 0; r < SOCK_ROLE_COUNT; r++) {
        struct endpoint *ep = &sm->ep[r];
        if (ep->fd >= 0) {
            event_free(ep->rd);
            event_free(ep->wr);
            evutil_closesocket(ep->fd);
        }
        record_queue_clear(&ep->out, &sm->pool);
        if (ep->listener)
            evconnlistener_free(ep->listener);
        if (ep->retry)
            event_free(ep->retry);
        chardev_decoder_free(&ep->decoder);
    }
    checkpoint_ctl_free(sm->qmp);
    if (sm->tick)
        event_free(sm->tick);
    if (sm->sigint)
        event_free(sm->sigint);
    if (sm->sigterm)
        event_free(sm->sigterm);
    record_pool_free(&sm->pool);
    free(sm->read_buf);
    if (sm->base)
        event_base_free(sm->base);
    free(sm);
}

const struct socket_mode_stats *socket_mode_stats(const struct socket_mode *sm)
{
    return &sm->stats;
}
