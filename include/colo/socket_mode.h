/*
 * socket_mode.h — colo-proxy in place of QEMU's colo-compare, on its chardev sockets.
 *
 * The three roles of colo-compare: `primary_in` (every PVM frame, from the
 * primary's filter-mirror/redirector), `secondary_in` (every SVM frame, from the
 * secondary's filter-redirector, already seq-rewritten), and `outdev` (released
 * frames back to the primary QEMU). Each is an endpoint in QEMU's chardev
 * spelling: "tcp:HOST:PORT" or "unix:PATH" to connect (retried until the peer is
 * there), with ",server" to listen (and accept the peer again after it
 * reconnects). Records use QEMU's framing (chardev_codec.h), with the vnet
 * header length field when vnet_hdr_support is on.
 *
 * Socket mode runs its own libevent loop on one thread (no DPDK, no rings):
 * sockets are readiness-driven and read up to 128 KiB per system call, and the
 * compare semantics are the engine's, unchanged. Each record is copied once, into
 * a pooled slot (record_buf.h); released frames leave in order from that slot
 * through outdev's queue, written with vectored I/O; when `outdev` falls behind
 * (or is down), reading from both inputs pauses until it drains, so nothing is
 * dropped or reordered, and a new outdev peer gets whole records only. With a
 * QMP address, checkpoints are asked for and learned there (checkpoint_ctl.h).
 *
 * `notify_dev` (optional) is the Xen COLO frame's channel, in the same framing
 * carrying ASCII words: the frame's COLO_USERSPACE_PROXY_INIT is answered with
 * COLO_COMPARE_GET_XEN_INIT, a checkpoint is asked for with DO_CHECKPOINT, and
 * the frame's COLO_CHECKPOINT means it is done. As QEMU does, words are read
 * with the vnet length field when vnet_hdr_support is on and written without.
 *
 * Failover: on QMP's COLO_EXIT (the primary QEMU left COLO), or when secondary_in
 * has had no peer for secondary_lost_ms after it had one, compare goes "alone":
 * it releases everything it holds in arrival order and passes PVM frames straight
 * to outdev from then on, asking for no checkpoint. Only that evidence counts, so
 * the two VMs never both answer clients. When QMP shows the primary in COLO again
 * (a new secondary) with secondary_in connected, it compares again.
 */
#ifndef COLO_SOCKET_MODE_H
#define COLO_SOCKET_MODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "colo/checkpoint_ctl.h"
#include "colo/compare.h"

struct socket_mode;

enum socket_role { SOCK_PRIMARY_IN, SOCK_SECONDARY_IN, SOCK_OUTDEV, SOCK_NOTIFY_DEV, SOCK_ROLE_COUNT };

struct socket_mode_config {
    const char *endpoint[SOCK_ROLE_COUNT]; /* notify_dev may be NULL */
    bool vnet_hdr_support;
    struct colo_compare_config compare;
    const char *qmp;                /* NULL: no QEMU channel */
    uint32_t checkpoint_period_ms;
    uint32_t secondary_lost_ms;     /* secondary_in without a peer this long: failover; 0: never */
    size_t outdev_high_water;       /* pause inputs above this many queued output bytes */
    const char *divergence_reports; /* a directory for reports (divergence_report.h); NULL: none */
    uint32_t divergence_reports_per_minute; /* log lines and reports; 0: no limit */
    const char *control;            /* NULL: no control socket (ops_server.h) */
    const char *metrics_addr;       /* NULL: no metrics endpoint */
    /* On SIGHUP, after the log is reopened: re-reads the configuration (may be NULL). */
    void (*reload)(void *ctx, struct socket_mode *sm);
    void *reload_ctx;
};

struct socket_mode_stats {
    uint64_t records_in[SOCK_ROLE_COUNT], records_out, bytes_out;
    uint64_t input_pauses; /* connects and bad peers are counted per endpoint */
};

void socket_mode_config_default(struct socket_mode_config *cfg);

/* Would socket_mode_create accept cfg? Checks without opening anything; -1 with why. */
int socket_mode_check_config(const struct socket_mode_config *cfg, char *err, size_t errlen);

struct socket_mode *socket_mode_create(const struct socket_mode_config *cfg, char *err,
                                       size_t errlen);
/*
 * Applies what can change while running — the divergence report directory and
 * rate, the bypass rules — from fresh; the rest needs a restart. -1 with why
 * (nothing changes).
 */
int socket_mode_reload(struct socket_mode *sm, const struct socket_mode_config *fresh, char *err, size_t errlen);

/* Runs until SIGINT/SIGTERM; then releases what is held and drains outdev (bounded). */
int socket_mode_run(struct socket_mode *sm);
void socket_mode_destroy(struct socket_mode *sm);

const struct socket_mode_stats *socket_mode_stats(const struct socket_mode *sm);

#endif
