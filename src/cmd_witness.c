/*
 * cmd_witness.c — `colo-proxy witness`: the lease grantor (witness.h) on a UDP
 * socket, for a third host that both colo-proxies of a pair can reach.
 *
 *   colo-proxy witness --listen ADDR:PORT --key-file FILE [--lease-ms N]
 *
 * Owns the socket, the clock (CLOCK_MONOTONIC) and the log; every rule is in
 * witness.c. Datagrams that are not taken are counted by reason; the first is
 * logged with its source, then at most one such line every 10 s. SIGUSR1 logs
 * every counter; SIGHUP reopens a log file; SIGINT or SIGTERM stops it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <glib.h>
#include <inttypes.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "colo/cli.h"
#include "colo/lease.h"
#include "colo/log.h"
#include "colo/witness.h"

#define REJECT_LOG_EVERY_NS (10 * 1000000000ull)
#define BURST 64

enum { OPT_LISTEN = 700, OPT_KEY_FILE, OPT_LEASE_MS, OPT_HELP };

struct witness_cli {
    const char *listen, *key_file;
    uint32_t lease_ms;
};

struct witness_daemon {
    struct witness *w;
    int fd;
    struct event_base *base;
    uint64_t next_reject_log_ns;
};

static void witness_usage(FILE *out)
{
    fputs("usage: colo-proxy witness --listen ADDR:PORT --key-file FILE [options]\n"
          "  the lease grantor of docs/failover.md, for a host other than the pair's two\n"
          "  --listen ADDR:PORT          UDP address to serve on (IPv6 as [ADDR]:PORT; port 0: any free one)\n"
          "  --key-file FILE             the shared key, 16 to 256 bytes (the pair's proxies use the same)\n"
          "  --lease-ms N                the lease's length (default 120)\n"
          CLI_COMMON_HELP,
          out);
}

static int apply_option(void *ctx, int c, const char *arg)
{
    struct witness_cli *o = ctx;
    switch (c) {
    case OPT_LISTEN: o->listen = arg; return 0;
    case OPT_KEY_FILE: o->key_file = arg; return 0;
    case OPT_LEASE_MS: return cli_parse_u32("lease-ms", arg, 20, &o->lease_ms);
    case OPT_HELP: return CLI_HELP;
    default: return -1;
    }
}

static uint64_t monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int check_witness(const struct witness_cli *o, uint8_t key[WITNESS_KEY_MAX], size_t *key_len,
                         struct sockaddr_storage *ss, unsigned *ss_len, char *err, size_t errlen)
{
    if (!o->listen || !o->key_file) {
        snprintf(err, errlen, "give --listen ADDR:PORT and --key-file FILE");
        return -1;
    }
    return cli_parse_udp_addr("listen", o->listen, ss, ss_len, err, errlen) != 0 ||
                   cli_read_key_file("key-file", o->key_file, key, key_len, err, errlen) != 0
               ? -1
               : 0;
}

static void warn_if_key_readable(const char *path)
{
    struct stat st;
    if (stat(path, &st) == 0 && (st.st_mode & 077))
        log_msg(LOG_WARNING, "--key-file '%s' can be read by others (mode %03o): whoever reads it can grant "
                "leases; chmod 600 it", path, (unsigned)(st.st_mode & 0777));
}

static void address_text(const struct sockaddr_storage *ss, socklen_t len, char *out, size_t outlen)
{
    char host[INET6_ADDRSTRLEN] = "?", port[8] = "?";
    getnameinfo((const struct sockaddr *)ss, len, host, sizeof(host), port, sizeof(port),
                NI_NUMERICHOST | NI_NUMERICSERV);
    snprintf(out, outlen, ss->ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host, port);
}

static void append_rejects(GString *line, const struct witness_stats *st)
{
    for (int r = WITNESS_REJECT_LENGTH; r < WITNESS_REJECT_COUNT; r++)
        g_string_append_printf(line, "%s %s %" PRIu64, r == WITNESS_REJECT_LENGTH ? "" : ",",
                               witness_reject_name((enum witness_reject)r), st->rejected[r]);
}

static void log_reject(struct witness_daemon *d, enum witness_reject why, const struct sockaddr_storage *from,
                       socklen_t from_len, uint64_t now_ns)
{
    if (now_ns < d->next_reject_log_ns)
        return;
    d->next_reject_log_ns = now_ns + REJECT_LOG_EVERY_NS;
    char addr[INET6_ADDRSTRLEN + 10];
    address_text(from, from_len, addr, sizeof(addr));
    g_autoptr(GString) line = g_string_new(NULL);
    g_string_printf(line, "rejected a datagram from %s (%s); rejected so far:", addr, witness_reject_name(why));
    append_rejects(line, witness_stats(d->w));
    g_string_append(line, " (at most one such line every 10 s)");
    log_msg(LOG_WARNING, "%s", line->str);
}

static void log_holder_change(const struct witness_outcome *o)
{
    if (o->new_holder)
        log_msg(LOG_INFO, "pair %" PRIu64 ": lease granted to holder %016" PRIx64 " (was %016" PRIx64 ")",
                o->pair_id, o->new_holder, o->old_holder);
    else
        log_msg(LOG_INFO, "pair %" PRIu64 ": holder %016" PRIx64 " released its lease", o->pair_id, o->old_holder);
}

static void handle_one(struct witness_daemon *d, const uint8_t *buf, size_t len,
                       const struct sockaddr_storage *from, socklen_t from_len)
{
    uint8_t out[WITNESS_MSG_LEN];
    struct witness_outcome o;
    uint64_t now = monotonic_ns();
    enum witness_reject why = witness_handle(d->w, buf, len, now, out, &o);
    if (why != WITNESS_OK) {
        log_reject(d, why, from, from_len, now);
        return;
    }
    if (o.holder_changed)
        log_holder_change(&o);
    if (o.reply && sendto(d->fd, out, sizeof(out), MSG_DONTWAIT, (const struct sockaddr *)from, from_len) < 0)
        log_msg(LOG_DEBUG, "reply not sent: %s", strerror(errno));
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct witness_daemon *d = arg;
    uint8_t buf[WITNESS_MSG_LEN + 1]; /* one byte more: a longer datagram shows as too long, not as a message */
    for (int i = 0; i < BURST; i++) {
        struct sockaddr_storage from;
        socklen_t from_len = sizeof(from);
        ssize_t n = recvfrom(fd, buf, sizeof(buf), MSG_DONTWAIT | MSG_TRUNC, (struct sockaddr *)&from, &from_len);
        if (n < 0)
            return;
        handle_one(d, buf, (size_t)n > sizeof(buf) ? sizeof(buf) : (size_t)n, &from, from_len);
    }
}

static void log_stats(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    const struct witness_stats *st = witness_stats(((struct witness_daemon *)arg)->w);
    g_autoptr(GString) line = g_string_new(NULL);
    g_string_printf(line, "stats: received %" PRIu64 ", granted %" PRIu64 ", denied %" PRIu64 ", released %" PRIu64
                    ", holder changes %" PRIu64 "; rejected:", st->received, st->granted, st->denied, st->released,
                    st->holder_changes);
    append_rejects(line, st);
    log_msg(LOG_INFO, "%s", line->str);
}

static void on_stop(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    log_msg(LOG_INFO, "stopping on signal %d", (int)sig);
    event_base_loopexit(((struct witness_daemon *)arg)->base, NULL);
}

static int open_socket(const struct sockaddr_storage *ss, socklen_t len, const char *text, char *err, size_t errlen)
{
    int fd = socket(ss->ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (const struct sockaddr *)ss, len) != 0) {
        snprintf(err, errlen, "cannot listen on udp %s: %s (is another witness on that port, or the address "
                 "not this host's?)", text, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

static int serve(struct witness_daemon *d, const char *listen_text, const struct witness_cli *o)
{
    struct sockaddr_storage bound;
    socklen_t bound_len = sizeof(bound);
    char addr[INET6_ADDRSTRLEN + 10];
    getsockname(d->fd, (struct sockaddr *)&bound, &bound_len);
    address_text(&bound, bound_len, addr, sizeof(addr));
    uint32_t lease = witness_lease_ms(d->w);
    log_msg(LOG_INFO, "listening on udp %s (--listen %s); lease %u ms, drift margin %.1f ms; granting from %.1f ms "
            "after start (a lease granted before a restart has ended by then)", addr, listen_text, lease,
            (double)lease_margin_ns(lease) / 1e6, (double)(lease * 1000000ull + lease_margin_ns(lease)) / 1e6);
    warn_if_key_readable(o->key_file);
    struct event *events[] = {
        event_new(d->base, d->fd, EV_READ | EV_PERSIST, on_readable, d),
        evsignal_new(d->base, SIGINT, on_stop, d),
        evsignal_new(d->base, SIGTERM, on_stop, d),
        evsignal_new(d->base, SIGUSR1, log_stats, d),
        evsignal_new(d->base, SIGHUP, log_on_sighup, NULL),
    };
    for (size_t i = 0; i < G_N_ELEMENTS(events); i++)
        event_add(events[i], NULL);
    int rc = event_base_dispatch(d->base) < 0 ? 1 : 0;
    log_stats(0, 0, d);
    for (size_t i = 0; i < G_N_ELEMENTS(events); i++)
        event_free(events[i]);
    return rc;
}

static int run_witness(const struct witness_cli *o, const uint8_t *key, size_t key_len,
                       const struct sockaddr_storage *ss, socklen_t ss_len)
{
    char err[512];
    struct witness_daemon d = { .fd = open_socket(ss, ss_len, o->listen, err, sizeof(err)) };
    if (d.fd < 0) {
        fprintf(stderr, "%s: %s\n", log_who(), err);
        return 2;
    }
    struct witness_config cfg = { .lease_ms = o->lease_ms };
    d.w = witness_create(&cfg, key, key_len, monotonic_ns());
    d.base = event_base_new();
    int rc = serve(&d, o->listen, o);
    event_base_free(d.base);
    witness_destroy(d.w);
    close(d.fd);
    return rc;
}

int cmd_witness(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "listen", required_argument, NULL, OPT_LISTEN },
        { "key-file", required_argument, NULL, OPT_KEY_FILE },
        { "lease-ms", required_argument, NULL, OPT_LEASE_MS },
        { "help", no_argument, NULL, OPT_HELP },
        CLI_COMMON_LONGOPTS,
        { NULL, 0, NULL, 0 },
    };
    static const struct cli_spec spec = { "witness", "h", longopts, NULL, apply_option, false };
    struct witness_cli o = { .lease_ms = WITNESS_LEASE_MS_DEFAULT };
    struct cli_parsed parsed;
    uint8_t key[WITNESS_KEY_MAX];
    size_t key_len = 0;
    struct sockaddr_storage ss;
    unsigned ss_len = 0;
    char err[512];
    int rc = 2;
    if (cli_parse(&spec, argc, argv, &o, &parsed) != 0) {
        cli_usage_hint("witness");
    } else if (parsed.help) {
        witness_usage(stdout);
        rc = 0;
    } else if (parsed.check) {
        rc = cli_report_check("witness", &parsed, check_witness(&o, key, &key_len, &ss, &ss_len, err, sizeof(err)),
                              err);
    } else if (check_witness(&o, key, &key_len, &ss, &ss_len, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s: %s\n", log_who(), err);
    } else {
        rc = run_witness(&o, key, key_len, &ss, ss_len);
    }
    memset(key, 0, sizeof(key));
    cli_parsed_free(&parsed);
    return rc;
}
