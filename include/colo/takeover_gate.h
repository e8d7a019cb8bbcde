/*
 * takeover_gate.h — when the secondary may take over, by what guards against
 * two primaries: the witness's lease, else the operator's fence command, else
 * nothing but today's rule (said loudly).
 *
 *   witness  the detector suspects the primary -> ask for the lease
 *            (lease_client_want_takeover) -> take over once it is granted.
 *            Once asked, there is no way back: a granted lease means the
 *            primary has lost its own and is deposed, so the secondary must serve.
 *   fence    suspects -> run the fence command -> take over once it reports the
 *            primary stopped (exit 0 in time). A failed run is tried again every
 *            `fence_retry_ms` while the suspicion lasts; a stopped primary is
 *            taken over from even if its heartbeats had come back meanwhile.
 *   none     suspects -> take over (the split-brain rule of docs/failover.md
 *            still applies); takeover_gate_warning says why that is unsafe.
 *
 * Pure logic stepped with an explicit now: the caller runs the detector, the
 * lease client and the fence runner, and does what each step returns.
 */
#ifndef COLO_TAKEOVER_GATE_H
#define COLO_TAKEOVER_GATE_H

#include <stdbool.h>
#include <stdint.h>

enum takeover_guard { TAKEOVER_GUARD_WITNESS, TAKEOVER_GUARD_FENCE, TAKEOVER_GUARD_NONE };

enum takeover_action {
    TAKEOVER_NOTHING,
    TAKEOVER_ASK_LEASE, /* call lease_client_want_takeover */
    TAKEOVER_RUN_FENCE, /* start the fence command (fence_start); report with takeover_gate_fence_done */
    TAKEOVER_NOW,       /* switch the data path: once */
};

enum takeover_gate_state { GATE_WATCHING, GATE_ASKING, GATE_FENCING, GATE_FENCE_FAILED, GATE_TAKEN };

struct takeover_gate {
    enum takeover_guard guard;
    enum takeover_gate_state state;
    uint32_t fence_retry_ms;
    uint64_t retry_at_ns;
    bool go; /* the lease was granted or the fence reported the primary stopped */
    uint64_t fence_runs, fence_failures;
};

void takeover_gate_init(struct takeover_gate *g, enum takeover_guard guard, uint32_t fence_retry_ms);

/* Per poll, with the detector's verdict (phi over threshold, or the primary said it is stopping). */
enum takeover_action takeover_gate_step(struct takeover_gate *g, bool primary_suspected, uint64_t now_ns);

/* The lease client says this host holds the lease. */
void takeover_gate_lease_granted(struct takeover_gate *g);

/* The fence command is over: stopped is true only for exit 0 within its timeout. */
void takeover_gate_fence_done(struct takeover_gate *g, bool stopped, uint64_t now_ns);

/* For the log at start and for status: NULL unless nothing guards against two primaries. */
const char *takeover_gate_warning(const struct takeover_gate *g);

const char *takeover_gate_state_name(enum takeover_gate_state s);

#endif
