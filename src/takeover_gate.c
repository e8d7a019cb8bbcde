/*
 * takeover_gate.c — the secondary's takeover decision per guard (takeover_gate.h).
 * Owns only its state; the lease, the fence command and the detector are the caller's.
 */
#include "colo/takeover_gate.h"

#include <string.h>

#define NS_PER_MS 1000000ull

void takeover_gate_init(struct takeover_gate *g, enum takeover_guard guard, uint32_t fence_retry_ms)
{
    memset(g, 0, sizeof(*g));
    g->guard = guard;
    g->fence_retry_ms = fence_retry_ms;
}

const char *takeover_gate_state_name(enum takeover_gate_state s)
{
    static const char *const names[] = { "watching", "asking-witness", "fencing", "fence-failed", "taken-over" };
    return s <= GATE_TAKEN ? names[s] : "unknown";
}

const char *takeover_gate_warning(const struct takeover_gate *g)
{
    return g->guard == TAKEOVER_GUARD_NONE
               ? "neither a witness nor a fence command is configured: a primary that stalls longer than the "
                 "detection time can be taken over while alive, and two VMs then answer the same clients; "
                 "run 'colo-proxy witness' on a third host, or give a fence command"
               : NULL;
}

static enum takeover_action start_fence(struct takeover_gate *g)
{
    g->state = GATE_FENCING;
    g->fence_runs++;
    return TAKEOVER_RUN_FENCE;
}

static enum takeover_action on_suspicion(struct takeover_gate *g)
{
    switch (g->guard) {
    case TAKEOVER_GUARD_WITNESS: g->state = GATE_ASKING; return TAKEOVER_ASK_LEASE;
    case TAKEOVER_GUARD_FENCE: return start_fence(g);
    default: g->state = GATE_TAKEN; return TAKEOVER_NOW;
    }
}

enum takeover_action takeover_gate_step(struct takeover_gate *g, bool primary_suspected, uint64_t now_ns)
{
    if (g->go && g->state != GATE_TAKEN) {
        g->state = GATE_TAKEN;
        return TAKEOVER_NOW;
    }
    switch (g->state) {
    case GATE_WATCHING:
        return primary_suspected ? on_suspicion(g) : TAKEOVER_NOTHING;
    case GATE_FENCE_FAILED:
        if (!primary_suspected)
            g->state = GATE_WATCHING;
        else if (now_ns >= g->retry_at_ns)
            return start_fence(g);
        return TAKEOVER_NOTHING;
    default:
        return TAKEOVER_NOTHING;
    }
}

void takeover_gate_lease_granted(struct takeover_gate *g)
{
    if (g->state == GATE_ASKING)
        g->go = true;
}

void takeover_gate_fence_done(struct takeover_gate *g, bool stopped, uint64_t now_ns)
{
    if (g->state != GATE_FENCING)
        return;
    if (stopped) {
        g->go = true;
        return;
    }
    g->fence_failures++;
    g->state = GATE_FENCE_FAILED;
    g->retry_at_ns = now_ns + (uint64_t)g->fence_retry_ms * NS_PER_MS;
}
