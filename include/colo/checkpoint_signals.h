/*
 * checkpoint_signals.h — what the ports say about checkpoints, beside what QMP says.
 *
 * With vhost-user NICs every COLO checkpoint stops and restarts the VM's port on both
 * hosts: the PVM's port goes down when the checkpoint begins and comes up a few ms
 * after QMP's RESUME; the SVM's comes up when the SVM resumed, before the primary's
 * RESUME. So a VM port that goes down, after it was up once, is a checkpoint
 * beginning, and its coming up again the VM resuming. `struct link_watch` keeps each
 * port's up/down history; `struct checkpoint_signals` pairs the VM port's in-band
 * signal with QMP's STOP→RESUME of the same checkpoint for the status, and on the
 * primary keeps the SVM's epochs (epoch_marker.h): which of the SVM's output a
 * checkpoint makes stale.
 *
 * Epochs on the primary are its own count of markers received, so a secondary that
 * restarts its numbering cannot make new output look old; the marker's own number
 * only tells of gaps. A checkpoint's stale epochs are those seen when it began (the
 * latest begin signal: the PVM's port going down, or QMP's STOP); without a begin
 * signal, every epoch seen at its end. Without markers there are no epochs: every
 * SVM frame held is stale at a checkpoint, as before.
 *
 * Pure logic over times (ns, the caller's monotonic clock); the pipeline owns the ports.
 */
#ifndef COLO_CHECKPOINT_SIGNALS_H
#define COLO_CHECKPOINT_SIGNALS_H

#include <stdbool.h>
#include <stdint.h>

#include "colo/epoch_marker.h"

struct link_watch {
    bool up, ever_up;
    uint64_t since_ns;                   /* when the present state began */
    uint64_t downs;                      /* up -> down transitions */
    uint64_t down_ns_total, down_ns_longest, last_down_ns; /* finished down periods after the first up */
};

void link_watch_init(struct link_watch *w, bool up, uint64_t now_ns);
/* True when the state changed; a finished down period is in last_down_ns. */
bool link_watch_update(struct link_watch *w, bool up, uint64_t now_ns);
/* How long the port has been down, counted only once it was up before; 0 when up. */
uint64_t link_watch_down_ns(const struct link_watch *w, uint64_t now_ns);

struct checkpoint_signals {
    /* in band: the VM's port (the PVM's on the primary, the SVM's on the secondary) */
    uint64_t port_began, port_ended;     /* went down / came up again, after it was up once */
    uint64_t last_port_down_ns, last_up_at_ns;
    /* QMP (this host's QEMU) */
    uint64_t qmp_began, qmp_done;        /* STOPs, and checkpoint-done messages carrying STOP→RESUME */
    uint64_t last_qmp_ns, last_qmp_at_ns;
    /* the last checkpoint both saw (within a second of each other) */
    bool paired;
    int64_t down_minus_qmp_ns;           /* port down time less QMP's STOP→RESUME */
    int64_t up_minus_resume_ns;          /* the port came up this long after QMP's RESUME reached us */
    /* the SVM's epochs: markers sent (secondary) or received (primary) */
    uint32_t epoch;                      /* primary: markers received; secondary: the last sent */
    uint32_t remote_epoch;               /* primary: the number in the last marker */
    uint64_t markers, marker_gaps, markers_malformed;
    uint64_t last_svm_down_us;           /* primary: the SVM's port down time, from the last marker */
    uint64_t last_marker_at_ns;
    int64_t svm_ahead_ns;                /* primary: the SVM resumed (its marker came) this long before a checkpoint's end */
    uint32_t last_stale_through;         /* primary: the epochs the last checkpoint made stale */
    bool open;                           /* primary: a checkpoint began and has not ended */
    uint64_t open_at_ns;
    uint32_t stale_at_begin;
};

/* The VM's port changed (after link_watch_update said so): down begins a checkpoint, up ends its in-band part. */
void checkpoint_signals_port(struct checkpoint_signals *s, const struct link_watch *w, uint64_t now_ns);

/* QMP's STOP: a checkpoint began. */
void checkpoint_signals_qmp_stop(struct checkpoint_signals *s, uint64_t now_ns);

/*
 * A checkpoint completed; qmp_ns is QEMU's STOP→RESUME (0: the word did not come from
 * QMP). True, with the epoch through which SVM output is stale, when the secondary
 * marks epochs; false when it never did (every held SVM frame is stale).
 */
bool checkpoint_signals_done(struct checkpoint_signals *s, uint64_t qmp_ns, uint64_t now_ns,
                             uint32_t *stale_through);

/* Primary: a marker arrived; returns the epoch the frames after it belong to. */
uint32_t checkpoint_signals_marker(struct checkpoint_signals *s, const struct epoch_marker *m, uint64_t now_ns);

/* Secondary: the SVM resumed; fills the marker to send. */
void checkpoint_signals_next_epoch(struct checkpoint_signals *s, uint64_t down_ns, struct epoch_marker *out);

#endif
