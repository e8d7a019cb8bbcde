/*
 * socket_rewrite.h — colo-proxy in place of the secondary's filter-rewriter, on chardev sockets.
 *
 * On the secondary host QEMU normally runs filter-redirector f1 (client frames,
 * mirrored by the primary, into the SVM), filter-redirector f2 (SVM frames out to
 * the primary's compare) and filter-rewriter between them. Socket rewrite mode
 * takes the rewriter's place on the chardev path: the secondary QEMU keeps f1 and
 * f2 but points their chardevs at colo-proxy, and drops filter-rewriter.
 *
 *   mirror_in   the primary's filter-mirror server (COLO-FT's port 9003): client frames
 *   to_svm      where the secondary's f1 chardev connects: client frames, ack rewritten
 *   from_svm    where the secondary's f2 chardev connects: SVM frames
 *   to_primary  the primary's compare (its secondary_in, COLO-FT's 9004): SVM frames,
 *               seq rewritten into the PVM's space
 *
 * The rewriting is seq_rewrite.h's (filter-rewriter's, completed: active opens,
 * SACK, timestamps, IPv6, any IP header length). A checkpoint resets every offset;
 * with `qmp` (the secondary QEMU's monitor) it is learned from STOP then RESUME,
 * the moment the SVM has taken the PVM's state. Backpressure: a full to_svm queue
 * pauses mirror_in, a full to_primary queue pauses from_svm; nothing is dropped
 * but segments the rewriter gives up on (held over a second for a SYN-ACK that
 * never came), which are counted.
 *
 *   net_in      (optional) where a secondary filter-redirector (queue=tx, outdev) placed
 *               before f1 connects: frames from this host's network (the tap)
 *   net_out     (optional) where a secondary filter-redirector (queue=rx, indev) placed
 *               between f1 and f2 connects: frames for this host's network
 *
 * Takeover: when the secondary QEMU leaves COLO (QMP COLO_EXIT after
 * x-colo-lost-heartbeat: the SVM now serves the clients), the rewriter keeps
 * rewriting the connections it knows (seq_rewriter_failover) and, with net_in and
 * net_out, swaps its sides: client frames come from net_in instead of mirror_in,
 * SVM frames leave on net_out instead of to_primary. Before the takeover net_in's
 * frames are dropped (counted; the SVM gets the client's frames from the primary
 * only), after it mirror_in's. Only QMP's COLO_EXIT is taken as evidence: the
 * primary's sockets going quiet is not (the SVM serves only once QEMU says so).
 */
#ifndef COLO_SOCKET_REWRITE_H
#define COLO_SOCKET_REWRITE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum rewrite_role { RW_MIRROR_IN, RW_TO_SVM, RW_FROM_SVM, RW_TO_PRIMARY, RW_NET_IN, RW_NET_OUT, RW_ROLE_COUNT };

struct socket_rewrite_config {
    const char *endpoint[RW_ROLE_COUNT]; /* net_in and net_out may be NULL (both or neither) */
    bool vnet_hdr_support;
    const char *qmp;      /* the secondary QEMU's QMP; NULL: offsets never reset */
    uint32_t max_conns;
    size_t high_water;    /* pause the feeding input above this many queued output bytes */
    const char *control;      /* NULL: no control socket (ops_server.h) */
    const char *metrics_addr; /* NULL: no metrics endpoint */
};

struct socket_rewrite;

void socket_rewrite_config_default(struct socket_rewrite_config *cfg);
/* Would socket_rewrite_create accept cfg? Checks without opening anything; -1 with why. */
int socket_rewrite_check_config(const struct socket_rewrite_config *cfg, char *err, size_t errlen);

struct socket_rewrite *socket_rewrite_create(const struct socket_rewrite_config *cfg, char *err,
                                             size_t errlen);
/* Runs until SIGINT/SIGTERM; then gives queued frames a bounded time to leave. */
int socket_rewrite_run(struct socket_rewrite *sr);
void socket_rewrite_destroy(struct socket_rewrite *sr);

#endif
