/*
 * pipeline.h — the data plane: one run-to-completion poll loop per host.
 *
 * primary:   client port ──► PVM port, and mirrored (zero-copy) ──► link port
 *            PVM port ──► compare (PVM side)      link port ──► compare (SVM side)
 *            compare releases ──► client port
 *            once the secondary is declared dead (heartbeat): everything held is
 *            released in order, and from then on PVM port ──► client port, unmirrored
 * secondary: link port ──► rewrite (ack + offset) ──► SVM port
 *            SVM port  ──► rewrite (seq - offset) ──► link port
 *
 * The VM's port (PVM or SVM) going down and up is a checkpoint, not a failure (a
 * vhost-user NIC restarts at every one): frames for it wait in its TX queue, in
 * order and bounded, and leave when it is up again; every compare and TCP state is
 * kept. When the SVM's port comes up, the secondary sends an epoch marker on the
 * link before the SVM's new output (epoch_marker.h, checkpoint_signals.h). A VM
 * port down longer than vm_down_ms, after it was up once, is a dead VM: that host
 * falls silent for good so its peer acts as if the host died.
 *
 * The loop receives bursts, runs the stages, transmits (losslessly, see
 * dpdk_port.h) and runs the timers, once per iteration, with one timestamp per
 * iteration. It talks to the control thread only through two rings of
 * `struct ctrl_msg`. Each mbuf carries its `struct colo_pkt` handle in its
 * private area, so nothing is allocated per packet.
 */
#ifndef COLO_PIPELINE_H
#define COLO_PIPELINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "colo/checkpoint_signals.h"
#include "colo/compare.h"
#include "colo/heartbeat.h"
#include "colo/mirror.h"
#include "colo/seq_rewrite.h"

struct rte_ring;

enum colo_role { ROLE_PRIMARY, ROLE_SECONDARY };

enum shutdown_policy {
    SHUTDOWN_RELEASE,    /* release every held PVM packet at once */
    SHUTDOWN_CHECKPOINT, /* ask for a checkpoint, wait for it (bounded), then release */
};

enum port_role { PORT_CLIENT, PORT_PVM, PORT_LINK, PORT_SVM, PORT_ROLE_COUNT };

struct pipeline_config {
    enum colo_role role;
    const char *port_name[PORT_ROLE_COUNT]; /* the ones the role uses */
    struct colo_compare_config compare;     /* primary */
    uint32_t rewrite_max_conns;             /* secondary */
    uint32_t nb_mbufs;
    uint32_t idle_sleep_us;                 /* 0: busy-poll (production); >0: share a core */
    enum shutdown_policy shutdown_policy;
    uint32_t shutdown_timeout_ms;
    bool vm_mac_set;
    uint8_t vm_mac[6];
    uint32_t heartbeat_ms;                  /* 0: no heartbeat on the link */
    uint32_t heartbeat_misses;
    bool client_heartbeat;                  /* primary: heartbeats on the client side too (split-brain guard) */
    uint32_t divergence_reports_per_minute; /* primary: divergences captured for the log and reports; 0: all */
    uint32_t vm_down_ms;                    /* the VM's port down this long (after it was up): a dead VM; 0: never */
};

/* Why this side stopped running COLO. */
enum failover_reason { FAILOVER_NONE, FAILOVER_HEARTBEAT, FAILOVER_CARRIER };

struct failover_info {
    enum failover_reason reason;
    uint64_t at_unix_ms;         /* when it was decided */
    uint64_t silent_ms;          /* how long the peer had been silent then */
};

struct port_stats {
    uint64_t rx, tx, tx_pending, tx_partial_bursts;
    bool in_use, link_up;
    struct link_watch watch;        /* up/down history, from the first up */
    uint64_t down_now_ns;           /* the present down period (in a snapshot) */
    uint64_t held_while_down;       /* frames queued for it while its link was down */
    uint64_t held_while_down_max;   /* most frames waiting for it at once while it was down */
    uint64_t held_back;             /* polls whose input waited: its queue was at its bound while down */
};

struct pipeline_stats {
    enum colo_role role;
    struct port_stats ports[PORT_ROLE_COUNT];
    struct mirror_stats mirror;
    uint64_t pvm_not_from_vm, link_not_from_vm;
    struct colo_compare_stats compare;
    struct conn_table_stats conns;  /* primary: the compare engine's connection table */
    uint32_t conns_max;
    struct bypass_rules bypass;     /* primary: the rules in effect, whose counts are compare.bypass_hits */
    struct seq_rewriter_stats rewrite;
    uint64_t iterations, idle_iterations;
    uint64_t control_ring_full;
    uint64_t shutdown_released, shutdown_unsent;
    struct heartbeat heartbeat;
    bool alone;             /* primary: the secondary was lost; PVM output passes straight */
    uint64_t passed_alone;  /* PVM frames passed straight through since */
    bool taken_over;        /* secondary: the primary was lost; the SVM serves the clients */
    struct failover_info failover;
    struct heartbeat client_side;   /* secondary: the primary's heartbeats seen on the client side */
    uint64_t takeover_guarded;      /* secondary: takeovers held back because the primary still speaks */
    uint64_t client_ignored;        /* secondary: client-side frames before a takeover (not ours to serve) */
    uint64_t announce_frames;       /* secondary: RARP/GARP/NA sent after the takeover */
    uint64_t divergence_reports_suppressed; /* primary: over the per-minute limit, or the capture still busy */
    uint32_t announce_ipv4, announce_ipv6;
    enum port_role vm_port;         /* PORT_PVM (primary) or PORT_SVM (secondary) */
    struct checkpoint_signals signals; /* checkpoints as the VM's port and QMP saw them; SVM epochs */
    bool vm_dead;                   /* the VM's port stayed down longer than vm_down_ms: this side is silent */
    uint64_t vm_dead_dropped;       /* frames dropped since (arriving, or queued for the dead VM) */
    uint64_t vm_dead_unreleased;    /* primary: PVM frames held when the PVM died, never released */
};

/* What a reload (SIGHUP) may change while the data plane runs; lent to it with MSG_RELOAD. */
struct pipeline_reload {
    struct bypass_rules bypass;             /* primary: applied once nothing is held */
    uint32_t divergence_reports_per_minute;
};

struct pipeline;

void pipeline_config_default(struct pipeline_config *cfg);

/* What can be checked before EAL starts (the ports a role needs are named); -1 with why. */
int pipeline_check_config(const struct pipeline_config *cfg, char *err, size_t errlen);

/* EAL must be initialised. NULL with a one-line reason in err. */
struct pipeline *pipeline_create(const struct pipeline_config *cfg, char *err, size_t errlen);
void pipeline_destroy(struct pipeline *p);

struct rte_ring *pipeline_ring_to_dataplane(struct pipeline *p);
struct rte_ring *pipeline_ring_from_dataplane(struct pipeline *p);

/* Polls on the calling lcore until stopped; drains by the shutdown policy. */
void pipeline_run(struct pipeline *p);

/*
 * One iteration of the loop (control, stages, transmit, timers); returns the
 * frames received. pipeline_run is this in a loop; tests step it directly.
 */
unsigned pipeline_poll_once(struct pipeline *p);

/* A statistics snapshot, from the thread that runs the loop. */
void pipeline_stats_snapshot(struct pipeline *p, struct pipeline_stats *out);

/* Async-signal-safe: asks every running pipeline to stop. */
void pipeline_request_stop(void);

/* Asks this pipeline to stop, from the thread that runs it (tests, embedding). */
void pipeline_stop(struct pipeline *p);

const char *port_role_name(enum port_role r);
const char *failover_reason_name(enum failover_reason r);
const char *role_name(enum colo_role r);

#endif
