/*
 * control.h — the control thread: a libevent loop beside the data plane.
 *
 * It serves the operators' control socket and metrics endpoint (ops_server.h:
 * status, status json, metrics), with these line commands besides:
 *   checkpoint-done   a checkpoint completed: flush (primary) / reset offsets (secondary)
 *   stats             one line of JSON: counters per port and per reason (tests read it)
 *   shutdown          drain by the shutdown policy and exit
 * and it writes events to every connected client, one line each:
 *   event checkpoint-request <reason>
 * It reaches the data plane only through the pipeline's two rings. The QEMU
 * channels (QMP, notify_dev) will live in this thread too (checkpoint_ctl).
 */
#ifndef COLO_CONTROL_H
#define COLO_CONTROL_H

#include <stddef.h>

struct rte_ring;
struct control;

struct checkpoint_ctl_config;
struct ops_server_config;
struct pipeline_reload;

struct control_config {
    const struct ops_server_config *ops;     /* may name no socket and no endpoint */
    const struct checkpoint_ctl_config *qmp; /* NULL: no QEMU channel (requests reach socket clients only) */
    const char *divergence_reports;          /* a directory for the data plane's captures; NULL: log only */
    /*
     * On SIGHUP, after the log is reopened (may be NULL): re-reads the configuration
     * into out and the report directory; 0 to apply it, -1 (said in the log) to keep
     * the running one. The data plane gets out through its ring.
     */
    int (*reload)(void *ctx, struct pipeline_reload *out, const char **divergence_reports);
    void *reload_ctx;
};

/* Starts the thread; NULL with a reason in err. */
struct control *control_start(const struct control_config *cfg, struct rte_ring *to_dp, struct rte_ring *from_dp,
                              char *err, size_t errlen);

/* Waits for the data plane's STOPPED message to be seen, then joins the thread. */
void control_stop(struct control *c);

#endif
