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

/*
 * Starts the thread. ops may name no socket and no endpoint; qmp may be
 * NULL (no QEMU channel: checkpoint requests only reach socket clients).
 * NULL with a reason in err.
 */
struct control *control_start(const struct ops_server_config *ops, const struct checkpoint_ctl_config *qmp,
                              struct rte_ring *to_dp, struct rte_ring *from_dp, char *err,
                              size_t errlen);

/* Waits for the data plane's STOPPED message to be seen, then joins the thread. */
void control_stop(struct control *c);

#endif
