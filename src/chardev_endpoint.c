/*
 * chardev_endpoint.c — a chardev socket: listen or connect, read records, write records.
 *
 * Owns: the endpoint's listener or reconnect timer, its current socket and
 * events, its record decoder and read buffer, and its output queue. Sockets
 * are read straight into a 128 KiB buffer (not libevent's 4 KB per call); output
 * is written at once when asked and a write event is armed only while the
 * socket pushes back. Must never: read past a bad record (the peer is dropped),
 * send a new peer part of a record, or lose queued output when a peer goes.
 */
#include "colo/chardev_endpoint.h"
#include "colo/cli.h"
#include "colo/log.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <glib.h>

#define RECONNECT_MS 200
#define PEERLESS_WARN_S 5 /* a listening endpoint without a peer this long says so (then log_retry's pace) */
/*
 * One read of up to 128 KiB per wakeup and input: the PVM and SVM streams are
 * read in turn, so neither runs far ahead of the other (megabytes of small PVM
 * records ahead fill per-connection queues, max_queue_size, and ask for
 * checkpoints nobody needs); 128 KiB still moves ~90 full-size frames a call.
 */
#define READ_BYTES (128u << 10)
#define READS_PER_WAKEUP 1

static void drop_peer(struct chardev_endpoint *ep);
static void unreachable(struct chardev_endpoint *ep, int err);

bool chardev_endpoint_connected(const struct chardev_endpoint *ep)
{
    return ep->fd >= 0 && !ep->connecting;
}

bool chardev_endpoint_backed_up(const struct chardev_endpoint *ep)
{
    return ep->out.bytes > ep->high_water;
}

void chardev_endpoint_flush(struct chardev_endpoint *ep)
{
    if (!chardev_endpoint_connected(ep))
        return;
    enum record_write_status st = record_queue_write(&ep->out, ep->fd, ep->pool);
    if (st == RECORD_WRITE_ERROR) {
        log_msg(LOG_INFO, "%s peer %s went away (%s)", ep->name, ep->spec, strerror(errno));
        drop_peer(ep);
        return;
    }
    if (st == RECORD_WRITE_AGAIN)
        event_add(ep->wr, NULL);
    else
        event_del(ep->wr);
    if (ep->ops->drained && ep->out.bytes <= ep->high_water / 4)
        ep->ops->drained(ep->ctx, ep);
}

void chardev_endpoint_queue(struct chardev_endpoint *ep, struct sock_record *rec, bool vnet_hdr)
{
    rec->header_len = (uint8_t)chardev_encode_header(rec->header, rec->len, rec->vnet_len, vnet_hdr);
    record_queue_push(&ep->out, rec);
}

void chardev_endpoint_pause(struct chardev_endpoint *ep, bool paused)
{
    if (paused == ep->paused)
        return;
    ep->paused = paused;
    if (!chardev_endpoint_connected(ep))
        return;
    if (paused)
        event_del(ep->rd);
    else
        event_add(ep->rd, NULL);
}

static void on_record(void *ctx, const uint8_t *bytes, uint32_t len, uint32_t vnet_len)
{
    struct chardev_endpoint *ep = ctx;
    ep->stats.records_in++;
    ep->ops->record(ep->ctx, ep, bytes, len, vnet_len);
}

/* Reads a few large chunks and decodes them; false when the peer is gone or bad. */
static bool read_batch(struct chardev_endpoint *ep)
{
    if (!ep->read_buf && !(ep->read_buf = malloc(READ_BYTES))) {
        log_msg(LOG_WARNING, "out of memory for %s's read buffer", ep->name);
        return false;
    }
    for (int i = 0; i < READS_PER_WAKEUP; i++) {
        ssize_t n = read(ep->fd, ep->read_buf, READ_BYTES);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return true;
        if (n <= 0) {
            log_msg(LOG_INFO, "%s peer %s went away", ep->name, ep->spec);
            return false;
        }
        enum chardev_error e = chardev_decoder_feed(&ep->decoder, ep->read_buf, (size_t)n, on_record, ep);
        if (e != CHARDEV_OK) {
            log_msg(LOG_WARNING, "%s peer sent a bad record (%s); disconnecting it", ep->name,
                    chardev_error_name(e));
            ep->stats.bad_peers++;
            return false;
        }
        if (ep->paused || (size_t)n < READ_BYTES)
            return true;
    }
    return true;
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct chardev_endpoint *ep = arg;
    bool alive = read_batch(ep);
    if (!alive)
        drop_peer(ep);
    ep->ops->after_batch(ep->ctx, ep);
}

static void attach_connected(struct chardev_endpoint *ep)
{
    ep->connecting = false;
    ep->stats.connects++;
    if (ep->addr.ss_family != AF_UNIX) {
        int one = 1;
        setsockopt(ep->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    uint64_t failed = log_retry_up(&ep->retry_log);
    if (ep->server)
        event_del(ep->retry);
    if (failed && ep->server)
        log_msg(LOG_INFO, "%s connected to %s, after %llu warning%s that no peer had", ep->name, ep->spec,
                (unsigned long long)failed, failed == 1 ? "" : "s");
    else if (failed)
        log_msg(LOG_INFO, "%s connected to %s after %llu failed attempt%s", ep->name, ep->spec,
                (unsigned long long)failed, failed == 1 ? "" : "s");
    else
        log_msg(LOG_INFO, "%s connected to %s", ep->name, ep->spec);
    if (!ep->paused)
        event_add(ep->rd, NULL);
    record_queue_restart(&ep->out); /* what waited goes first, whole records only */
    chardev_endpoint_flush(ep);
}

static void on_writable(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct chardev_endpoint *ep = arg;
    if (ep->connecting) {
        int err = 0;
        socklen_t len = sizeof(err);
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err)
            unreachable(ep, err);
        else
            attach_connected(ep);
        return;
    }
    chardev_endpoint_flush(ep);
}

/* Gives a socket (connected, or with a connect in progress) to the endpoint. */
static void attach_socket(struct chardev_endpoint *ep, evutil_socket_t fd, bool connecting)
{
    ep->fd = fd;
    ep->connecting = connecting;
    ep->rd = event_new(ep->base, fd, EV_READ | EV_PERSIST, on_readable, ep);
    ep->wr = event_new(ep->base, fd, EV_WRITE | EV_PERSIST, on_writable, ep);
    chardev_decoder_reset(&ep->decoder); /* a new peer's stream: nothing of the old one's half record */
    if (connecting)
        event_add(ep->wr, NULL);
    else
        attach_connected(ep);
}

/* A client tries again soon; a server checks again later that a peer came. */
static void arm_retry(struct chardev_endpoint *ep)
{
    struct timeval tv = { ep->server ? PEERLESS_WARN_S : 0, ep->server ? 0 : RECONNECT_MS * 1000 };
    event_add(ep->retry, &tv);
}

static void peerless(evutil_socket_t unused, short what, void *arg)
{
    (void)unused;
    (void)what;
    struct chardev_endpoint *ep = arg;
    if (ep->fd >= 0)
        return;
    log_retry_failed(&ep->retry_log, "%s: no peer has connected to %s (QEMU's chardev connects here)", ep->name,
                     ep->spec);
    arm_retry(ep);
}

static void close_socket(struct chardev_endpoint *ep)
{
    if (ep->fd < 0)
        return;
    event_free(ep->rd);
    event_free(ep->wr);
    ep->rd = ep->wr = NULL;
    evutil_closesocket(ep->fd);
    ep->fd = -1;
    ep->connecting = false;
}

static void drop_peer(struct chardev_endpoint *ep)
{
    close_socket(ep);
    chardev_decoder_reset(&ep->decoder);
    arm_retry(ep);
}

/* A connect that failed: said (rate-limited), and tried again. */
static void unreachable(struct chardev_endpoint *ep, int err)
{
    log_retry_failed(&ep->retry_log, "%s: cannot reach %s: %s; retrying every %d ms", ep->name, ep->spec,
                     strerror(err), RECONNECT_MS);
    drop_peer(ep);
}

static void try_connect(evutil_socket_t unused, short what, void *arg)
{
    (void)unused;
    (void)what;
    struct chardev_endpoint *ep = arg;
    evutil_socket_t fd = socket(ep->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        unreachable(ep, errno);
        return;
    }
    if (connect(fd, (struct sockaddr *)&ep->addr, (socklen_t)ep->addr_len) == 0) {
        attach_socket(ep, fd, false);
    } else if (errno == EINPROGRESS) {
        attach_socket(ep, fd, true);
    } else {
        int err = errno;
        evutil_closesocket(fd);
        unreachable(ep, err);
    }
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len, void *arg)
{
    (void)l;
    (void)sa;
    (void)len;
    struct chardev_endpoint *ep = arg;
    if (ep->fd >= 0) {
        log_msg(LOG_INFO, "%s: a new peer replaces the old one", ep->name);
        close_socket(ep);
    }
    evutil_make_socket_nonblocking(fd);
    attach_socket(ep, fd, false);
}

/* "tcp:HOST:PORT[,server[=on|off]]" or "unix:PATH[,server[=on|off]]". */
static int parse_spec(struct chardev_endpoint *ep, const char *spec, char *err, size_t errlen)
{
    if (strlen(spec) >= sizeof(ep->spec)) {
        snprintf(err, errlen, "--%s is too long", ep->name);
        return -1;
    }
    strcpy(ep->spec, spec);
    char *server = strstr(ep->spec, ",server");
    int on = !server ? 0 : server[7] == '\0' ? 1 : server[7] == '=' ? cli_on_off_value(server + 8) : -1;
    if (server && on < 0) {
        snprintf(err, errlen, "--%s '%s': write ,server (or ,server=on) to listen, ,server=off or nothing to "
                 "connect", ep->name, spec);
        return -1;
    }
    if (server) {
        *server = '\0';
        ep->server = on == 1;
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
    snprintf(err, errlen, "--%s '%s': use tcp:HOST:PORT or unix:PATH, with ,server to listen", ep->name, spec);
    return -1;
}

int chardev_endpoint_check_spec(const char *name, const char *spec, char *err, size_t errlen)
{
    struct chardev_endpoint probe = { .name = name };
    if (parse_spec(&probe, spec, err, errlen) != 0)
        return -1;
    if (probe.server && probe.addr.ss_family == AF_UNIX)
        return cli_check_path(name, ((struct sockaddr_un *)&probe.addr)->sun_path, CLI_PATH_CREATE, err, errlen);
    return 0;
}

void chardev_endpoints_describe(const char *const *names, const char *const *specs, int n, GString *line)
{
    bool first = true;
    for (int i = 0; i < n; i++) {
        struct chardev_endpoint probe = { .name = names[i] };
        char err[8];
        if (!specs[i] || parse_spec(&probe, specs[i], err, sizeof(err)) != 0)
            continue;
        g_string_append_printf(line, "%s%s %s %s", first ? "" : ", ", names[i],
                               probe.server ? "listens on" : "connects to", probe.spec);
        first = false;
    }
}

int chardev_endpoint_open(struct chardev_endpoint *ep, struct event_base *base, const char *name,
                          const char *spec, bool vnet_hdr, struct record_pool *pool,
                          size_t high_water, const struct chardev_endpoint_ops *ops, void *ctx,
                          char *err, size_t errlen)
{
    memset(ep, 0, sizeof(*ep));
    ep->fd = -1;
    ep->name = name;
    ep->base = base;
    ep->pool = pool;
    ep->high_water = high_water;
    ep->ops = ops;
    ep->ctx = ctx;
    if (parse_spec(ep, spec, err, errlen) != 0 || chardev_decoder_init(&ep->decoder, vnet_hdr) != 0)
        return -1;
    ep->retry = evtimer_new(base, ep->server ? peerless : try_connect, ep);
    if (!ep->server) {
        event_active(ep->retry, EV_TIMEOUT, 0);
        return 0;
    }
    arm_retry(ep);
    if (ep->addr.ss_family == AF_UNIX)
        unlink(((struct sockaddr_un *)&ep->addr)->sun_path);
    ep->listener = evconnlistener_new_bind(base, on_accept, ep, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 4,
                                           (struct sockaddr *)&ep->addr, ep->addr_len);
    if (!ep->listener) {
        snprintf(err, errlen, "cannot listen for --%s on %s: %s", name, ep->spec, strerror(errno));
        return -1;
    }
    return 0;
}

void chardev_endpoint_close(struct chardev_endpoint *ep)
{
    close_socket(ep);
    if (ep->listener)
        evconnlistener_free(ep->listener);
    if (ep->retry)
        event_free(ep->retry);
    ep->listener = NULL;
    ep->retry = NULL;
    if (ep->pool)
        record_queue_clear(&ep->out, ep->pool);
    chardev_decoder_free(&ep->decoder);
    free(ep->read_buf);
    ep->read_buf = NULL;
}
