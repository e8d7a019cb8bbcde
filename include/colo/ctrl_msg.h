/*
 * ctrl_msg.h — the small messages between the control thread and the data plane.
 *
 * They travel by value over two single-producer single-consumer rte_rings (one
 * each way); nothing else is shared. A statistics request carries a pointer to
 * a buffer the control thread owns; the data plane fills it and answers
 * STATS_READY with the same pointer, so the buffer is never touched by both.
 */
#ifndef COLO_CTRL_MSG_H
#define COLO_CTRL_MSG_H

#include <stdint.h>

enum ctrl_msg_type {
    /* control -> data plane */
    MSG_CHECKPOINT_DONE = 1, /* arg: QEMU's STOP→RESUME in µs when QMP said so, else 0 */
    MSG_SHUTDOWN,
    MSG_STATS_REQUEST,
    MSG_DIVERGENCE_DONE,    /* the capture lent with MSG_DIVERGENCE is free again */
    MSG_RELOAD,             /* ptr: a pipeline_reload to apply; answered with MSG_RELOAD_DONE */
    MSG_CHECKPOINT_BEGAN,   /* QMP's STOP: a checkpoint began */
    /* data plane -> control */
    MSG_CHECKPOINT_REQUEST, /* arg: enum checkpoint_reason */
    MSG_STATS_READY,
    MSG_STOPPED,
    MSG_PEER_STATE,         /* arg: enum heartbeat_state of the peer colo-proxy */
    MSG_PRIMARY_ALONE,      /* the primary stopped comparing: tell QEMU x-colo-lost-heartbeat */
    MSG_TAKEOVER,           /* the secondary serves the clients now (arg: enum failover_reason):
                               tell QEMU x-colo-lost-heartbeat */
    MSG_TAKEOVER_GUARDED,   /* the link is lost but the primary still speaks on the client side */
    MSG_DIVERGENCE,         /* ptr: a divergence_capture to log and write, then hand back */
    MSG_RELOAD_DONE,        /* ptr: the pipeline_reload, applied (its rules maybe pending a checkpoint) */
    MSG_VM_DEAD,            /* arg: enum port_role of the VM's port, down longer than --vm-down-ms */
};

struct ctrl_msg {
    uint32_t type;
    uint32_t arg;
    void *ptr;
};

#define CTRL_RING_SIZE 1024

#endif
