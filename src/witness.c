/*
 * witness.c — the lease grantor's tables and rules (witness.h). Owns one
 * entry per pair (holder, expiry) and one per sender (last counter); never
 * reads a clock or a socket, and never trusts a byte before its HMAC matched.
 */
#include "colo/witness.h"

#include <glib.h>
#include <string.h>

#include "colo/lease.h"

#define NS_PER_MS 1000000ull

struct pair_entry {
    uint64_t pair_id, holder_id, expires_ns, last_seen_ns;
    bool used;
};

struct sender_entry {
    uint64_t pair_id, sender_id, last_counter, last_seen_ns;
    uint64_t holds_until_ns; /* its lease and margin end then: its entry is kept till then */
    bool used;
};

struct witness {
    struct witness_config cfg;
    uint8_t key[WITNESS_KEY_MAX];
    size_t key_len;
    uint64_t lease_ns, margin_ns, grants_from_ns;
    struct pair_entry *pairs;
    struct sender_entry *senders;
    struct witness_stats stats;
};

struct witness *witness_create(const struct witness_config *cfg, const uint8_t *key, size_t key_len,
                               uint64_t now_ns)
{
    if (key_len < WITNESS_KEY_MIN || key_len > WITNESS_KEY_MAX)
        return NULL;
    struct witness *w = g_new0(struct witness, 1);
    w->cfg = *cfg;
    if (!w->cfg.lease_ms)
        w->cfg.lease_ms = WITNESS_LEASE_MS_DEFAULT;
    if (!w->cfg.max_pairs)
        w->cfg.max_pairs = WITNESS_PAIRS_DEFAULT;
    if (!w->cfg.max_senders)
        w->cfg.max_senders = WITNESS_SENDERS_DEFAULT;
    memcpy(w->key, key, key_len);
    w->key_len = key_len;
    w->lease_ns = (uint64_t)w->cfg.lease_ms * NS_PER_MS;
    w->margin_ns = lease_margin_ns(w->cfg.lease_ms);
    w->grants_from_ns = now_ns + w->lease_ns + w->margin_ns;
    w->pairs = g_new0(struct pair_entry, w->cfg.max_pairs);
    w->senders = g_new0(struct sender_entry, w->cfg.max_senders);
    return w;
}

void witness_destroy(struct witness *w)
{
    if (!w)
        return;
    g_free(w->pairs);
    g_free(w->senders);
    memset(w->key, 0, sizeof(w->key));
    g_free(w);
}

const struct witness_stats *witness_stats(const struct witness *w)
{
    return &w->stats;
}

uint32_t witness_lease_ms(const struct witness *w)
{
    return w->cfg.lease_ms;
}

uint64_t witness_grants_from_ns(const struct witness *w)
{
    return w->grants_from_ns;
}

/* Is the pair's lease free to grant to someone other than its holder at now? */
static bool lease_over(const struct witness *w, const struct pair_entry *p, uint64_t now_ns)
{
    return p->holder_id == 0 || now_ns >= p->expires_ns + w->margin_ns;
}

static struct pair_entry *pair_find_or_add(struct witness *w, uint64_t pair_id, uint64_t now_ns)
{
    struct pair_entry *free_slot = NULL;
    for (uint32_t i = 0; i < w->cfg.max_pairs; i++) {
        struct pair_entry *p = &w->pairs[i];
        if (p->used && p->pair_id == pair_id)
            return p;
        bool evictable = !p->used || lease_over(w, p, now_ns);
        if (evictable && (!free_slot || !p->used || (free_slot->used && p->last_seen_ns < free_slot->last_seen_ns)))
            free_slot = p;
    }
    if (free_slot)
        *free_slot = (struct pair_entry){ .pair_id = pair_id, .used = true };
    return free_slot;
}

static struct sender_entry *sender_find_or_add(struct witness *w, uint64_t pair_id, uint64_t sender_id,
                                               uint64_t now_ns)
{
    struct sender_entry *free_slot = NULL;
    for (uint32_t i = 0; i < w->cfg.max_senders; i++) {
        struct sender_entry *s = &w->senders[i];
        if (s->used && s->pair_id == pair_id && s->sender_id == sender_id)
            return s;
        if (!s->used && (!free_slot || free_slot->used))
            free_slot = s;
        else if (s->used && (!free_slot || (free_slot->used && s->last_seen_ns < free_slot->last_seen_ns)) &&
                 now_ns >= s->holds_until_ns) /* a holder's counter is what stops replays of its requests */
            free_slot = s;
    }
    if (free_slot)
        *free_slot = (struct sender_entry){ .pair_id = pair_id, .sender_id = sender_id, .used = true };
    return free_slot;
}

static uint32_t ms_until(uint64_t when_ns, uint64_t now_ns)
{
    return when_ns > now_ns ? (uint32_t)((when_ns - now_ns + NS_PER_MS - 1) / NS_PER_MS) : 0;
}

static void reply(struct witness *w, const struct witness_msg *req, uint8_t type, const struct pair_entry *p,
                  uint32_t wait_ms, uint8_t out[WITNESS_MSG_LEN])
{
    struct witness_msg r = {
        .type = type,
        .pair_id = req->pair_id,
        .sender_id = req->sender_id,
        .counter = req->counter,
        .lease_ms = type == WITNESS_GRANT ? w->cfg.lease_ms : 0,
        .wait_ms = wait_ms,
        .holder_id = p ? p->holder_id : 0,
    };
    witness_msg_encode(&r, w->key, w->key_len, out);
}

static void set_holder(struct witness *w, struct pair_entry *p, uint64_t holder, struct witness_outcome *o)
{
    if (p->holder_id != holder) {
        o->holder_changed = true;
        o->old_holder = p->holder_id;
        o->new_holder = holder;
        w->stats.holder_changes++;
    }
    p->holder_id = holder;
}

static void acquire(struct witness *w, const struct witness_msg *req, struct pair_entry *p, struct sender_entry *s,
                    uint64_t now_ns, uint8_t out[WITNESS_MSG_LEN], struct witness_outcome *o)
{
    if (now_ns < w->grants_from_ns) {
        w->stats.denied++;
        reply(w, req, WITNESS_DENY, NULL, ms_until(w->grants_from_ns, now_ns), out);
    } else if (p->holder_id == req->sender_id || lease_over(w, p, now_ns)) {
        set_holder(w, p, req->sender_id, o);
        p->expires_ns = now_ns + w->lease_ns;
        s->holds_until_ns = p->expires_ns + w->margin_ns;
        w->stats.granted++;
        reply(w, req, WITNESS_GRANT, p, 0, out);
    } else {
        w->stats.denied++;
        reply(w, req, WITNESS_DENY, p, ms_until(p->expires_ns + w->margin_ns, now_ns), out);
    }
}

static void release(struct witness *w, const struct witness_msg *req, struct pair_entry *p, struct sender_entry *s,
                    uint8_t out[WITNESS_MSG_LEN], struct witness_outcome *o)
{
    if (p->holder_id == req->sender_id) {
        set_holder(w, p, 0, o);
        p->expires_ns = 0;
        s->holds_until_ns = 0;
        w->stats.released++;
    }
    reply(w, req, WITNESS_DENY, p, 0, out);
}

static enum witness_reject reject(struct witness *w, enum witness_reject why)
{
    w->stats.rejected[why]++;
    return why;
}

enum witness_reject witness_handle(struct witness *w, const uint8_t *in, size_t len, uint64_t now_ns,
                                   uint8_t out[WITNESS_MSG_LEN], struct witness_outcome *o)
{
    memset(o, 0, sizeof(*o));
    w->stats.received++;
    struct witness_msg req;
    enum witness_reject why = witness_msg_decode(in, len, w->key, w->key_len, &req);
    if (why != WITNESS_OK)
        return reject(w, why);
    if (req.type != WITNESS_ACQUIRE && req.type != WITNESS_RELEASE)
        return reject(w, WITNESS_REJECT_TYPE);
    if (req.sender_id == 0)
        return reject(w, WITNESS_REJECT_NOT_OURS);
    struct sender_entry *s = sender_find_or_add(w, req.pair_id, req.sender_id, now_ns);
    if (!s)
        return reject(w, WITNESS_REJECT_FULL);
    if (req.counter <= s->last_counter)
        return reject(w, WITNESS_REJECT_REPLAY);
    struct pair_entry *p = pair_find_or_add(w, req.pair_id, now_ns);
    if (!p)
        return reject(w, WITNESS_REJECT_FULL);
    s->last_counter = req.counter;
    s->last_seen_ns = p->last_seen_ns = now_ns;
    o->pair_id = req.pair_id;
    if (req.type == WITNESS_ACQUIRE)
        acquire(w, &req, p, s, now_ns, out, o);
    else
        release(w, &req, p, s, out, o);
    o->reply = true;
    return WITNESS_OK;
}
