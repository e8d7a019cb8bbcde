/*
 * lease.c — a lease holder's state machine (lease.h: the rules and why they
 * are safe). Owns the outstanding requests and the holder's deadline; knows
 * nothing of sockets, keys or clocks.
 */
#include "colo/lease.h"

#include <string.h>

#define NS_PER_MS 1000000ull

uint64_t lease_margin_ns(uint32_t lease_ms)
{
    return (uint64_t)lease_ms * NS_PER_MS * LEASE_DRIFT_PERMILLE / 1000 + LEASE_MARGIN_FIXED_MS * NS_PER_MS;
}

const char *lease_state_name(enum lease_state s)
{
    static const char *const names[] = { "standby", "acquiring", "held", "expired", "deposed", "released" };
    return s <= LEASE_RELEASED ? names[s] : "unknown";
}

void lease_init(struct lease *l, const struct lease_config *cfg, enum lease_role role, uint64_t first_counter)
{
    memset(l, 0, sizeof(*l));
    l->cfg = *cfg;
    if (!l->cfg.retry_ms)
        l->cfg.retry_ms = LEASE_RETRY_MS_DEFAULT;
    l->role = role;
    l->state = role == LEASE_PRIMARY ? LEASE_ACQUIRING : LEASE_STANDBY;
    l->next_counter = first_counter ? first_counter : 1;
}

void lease_want_takeover(struct lease *l, uint64_t now_ns)
{
    if (l->state != LEASE_STANDBY)
        return;
    l->state = LEASE_ACQUIRING;
    l->next_send_ns = now_ns;
}

static bool asking(const struct lease *l)
{
    return l->state == LEASE_ACQUIRING || l->state == LEASE_HELD || l->state == LEASE_EXPIRED;
}

/* A quarter of the granted lease while holding: three renewals may be lost before the deadline nears. */
static uint64_t ask_interval_ns(const struct lease *l)
{
    if (l->state == LEASE_HELD && l->granted_ms >= 4)
        return (uint64_t)l->granted_ms / 4 * NS_PER_MS;
    return (uint64_t)l->cfg.retry_ms * NS_PER_MS;
}

static void fill_request(struct lease *l, uint8_t type, struct witness_msg *out)
{
    memset(out, 0, sizeof(*out));
    out->type = type;
    out->pair_id = l->cfg.pair_id;
    out->sender_id = l->cfg.self_id;
    out->counter = l->next_counter++;
}

bool lease_request_due(struct lease *l, uint64_t now_ns, struct witness_msg *out)
{
    lease_step(l, now_ns);
    if (!asking(l) || now_ns < l->next_send_ns)
        return false;
    fill_request(l, WITNESS_ACQUIRE, out);
    l->outstanding[l->outstanding_next].counter = out->counter;
    l->outstanding[l->outstanding_next].sent_ns = now_ns;
    l->outstanding_next = (l->outstanding_next + 1) % LEASE_OUTSTANDING;
    l->next_send_ns = now_ns + ask_interval_ns(l);
    l->requests++;
    return true;
}

/* The send time of the outstanding request `counter`, forgotten once answered; false if none. */
static bool take_outstanding(struct lease *l, uint64_t counter, uint64_t *sent_ns)
{
    for (int i = 0; i < LEASE_OUTSTANDING; i++) {
        if (l->outstanding[i].counter == counter && counter != 0) {
            *sent_ns = l->outstanding[i].sent_ns;
            l->outstanding[i].counter = 0;
            return true;
        }
    }
    return false;
}

static void on_grant(struct lease *l, const struct witness_msg *r, uint64_t sent_ns, uint64_t now_ns)
{
    l->grants++;
    uint64_t lease_ns = (uint64_t)r->lease_ms * NS_PER_MS, margin = lease_margin_ns(r->lease_ms);
    if (lease_ns <= margin || r->holder_id != l->cfg.self_id)
        return; /* too short to be of use: held output stays held */
    uint64_t until = sent_ns + lease_ns - margin;
    if (until > l->valid_until_ns)
        l->valid_until_ns = until;
    l->granted_ms = r->lease_ms;
    if (l->valid_until_ns > now_ns) {
        if (l->state != LEASE_HELD)
            l->next_send_ns = sent_ns + (uint64_t)r->lease_ms / 4 * NS_PER_MS;
        l->state = LEASE_HELD;
        l->ever_held = true;
    }
}

static void on_deny(struct lease *l, const struct witness_msg *r)
{
    l->denials++;
    l->other_holder = r->holder_id;
    l->other_wait_ms = r->wait_ms;
    bool someone_else = r->holder_id != 0 && r->holder_id != l->cfg.self_id;
    if (someone_else && (l->role == LEASE_PRIMARY || l->ever_held)) {
        l->state = LEASE_DEPOSED;
        l->valid_until_ns = 0;
    }
}

bool lease_on_reply(struct lease *l, const struct witness_msg *r, uint64_t now_ns)
{
    uint64_t sent_ns;
    if (!asking(l) || !take_outstanding(l, r->counter, &sent_ns)) {
        l->stale_replies++;
        return false;
    }
    if (r->type == WITNESS_GRANT)
        on_grant(l, r, sent_ns, now_ns);
    else
        on_deny(l, r);
    lease_step(l, now_ns);
    return true;
}

bool lease_step(struct lease *l, uint64_t now_ns)
{
    if (l->state != LEASE_HELD || now_ns < l->valid_until_ns)
        return false;
    l->state = LEASE_EXPIRED;
    l->expirations++;
    l->next_send_ns = now_ns;
    return true;
}

bool lease_may_release(const struct lease *l, uint64_t now_ns)
{
    return l->state == LEASE_HELD && now_ns < l->valid_until_ns;
}

bool lease_release(struct lease *l, struct witness_msg *out)
{
    bool tell = l->ever_held && l->state != LEASE_DEPOSED && l->state != LEASE_RELEASED;
    l->state = LEASE_RELEASED;
    l->valid_until_ns = 0;
    if (tell)
        fill_request(l, WITNESS_RELEASE, out);
    return tell;
}
