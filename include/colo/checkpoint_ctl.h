/*
 * checkpoint_ctl.h — the control channel to QEMU: ask for a checkpoint, learn
 * that it is done, learn of failover. This is the QMP (KVM) flavour.
 *
 * QEMU has no "checkpoint now" command; on a COLO primary in the `colo` state,
 * `migrate-set-parameters {"x-checkpoint-delay": N}` wakes the checkpoint
 * thread at once (and re-arms the periodic timer to now + N, so N is the
 * configured period). A checkpoint shows as the events STOP then RESUME; any
 * RESUME after a STOP completes one, requested or periodic. COLO_EXIT means
 * COLO ended (failover). Requests are sent only while `query-colo-status` says
 * the primary is in COLO; one is in flight at a time and further ones coalesce
 * into it. The connection is re-established with exponential back-off.
 *
 * Runs on a libevent base (the control thread's); never blocks.
 */
#ifndef COLO_CHECKPOINT_CTL_H
#define COLO_CHECKPOINT_CTL_H

#include <stdbool.h>

#include "colo/latency_hist.h"
#include <stddef.h>
#include <stdint.h>

struct event_base;

struct checkpoint_ctl_ops {
    void (*checkpoint_done)(void *ctx);          /* RESUME after STOP */
    void (*failover)(void *ctx, const char *why); /* COLO_EXIT */
    void (*log)(void *ctx, const char *line);    /* one-line state changes */
    /* query-colo-status says "primary" where its previous answer did not: a COLO session
     * began (or was found running on connecting). May be NULL. */
    void (*colo_started)(void *ctx);
    /* STOP: a checkpoint began (the VM stopped). May be NULL. */
    void (*checkpoint_began)(void *ctx);
};

struct checkpoint_ctl_config {
    const char *qmp;            /* "unix:/path" or "tcp:host:port" */
    uint32_t period_ms;         /* re-applied as x-checkpoint-delay (QEMU's default 20000) */
    uint32_t status_poll_ms;    /* how often COLO status is asked while not in COLO */
    uint32_t reconnect_max_ms;  /* back-off ceiling */
};

struct checkpoint_ctl_stats {
    uint64_t connects, disconnects, requests_sent, requests_coalesced, requests_before_colo;
    uint64_t checkpoints_seen, errors;
    bool connected, in_colo;
    struct latency_hist stopped; /* each checkpoint as QEMU ran it: STOP to RESUME */
    uint64_t last_stopped_ns;    /* the last one's STOP to RESUME (set before checkpoint_done is called) */
};

struct checkpoint_ctl;

void checkpoint_ctl_config_default(struct checkpoint_ctl_config *cfg);

struct checkpoint_ctl *checkpoint_ctl_start(struct event_base *base,
                                            const struct checkpoint_ctl_config *cfg,
                                            const struct checkpoint_ctl_ops *ops, void *ctx,
                                            char *err, size_t errlen);
void checkpoint_ctl_free(struct checkpoint_ctl *c);

/* Ask for a checkpoint now (coalesced with one in flight). */
void checkpoint_ctl_request(struct checkpoint_ctl *c);

/* Tell QEMU the peer is gone (x-colo-lost-heartbeat): COLO ends, this side carries on. */
void checkpoint_ctl_lost_heartbeat(struct checkpoint_ctl *c);

/* Is qmp a valid QMP address (unix:PATH or tcp:HOST:PORT)? -1 with why. */
int checkpoint_ctl_check_address(const char *qmp, char *err, size_t errlen);

const struct checkpoint_ctl_stats *checkpoint_ctl_stats(const struct checkpoint_ctl *c);

#endif
