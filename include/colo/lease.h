/*
 * lease.h — the lease that lets one colo-proxy of a pair release output to the
 * clients, held from the witness (witness.h, `colo-proxy witness`).
 *
 * Never two primaries. Whoever lets VM output reach the clients — the primary,
 * or the secondary after a takeover — must hold the pair's lease: it asks the
 * witness (ACQUIRE), and a GRANT makes the lease valid until
 *
 *     the time the REQUEST WAS SENT + lease_ms - lease_margin(lease_ms)
 *
 * on the holder's own clock. Counting from the send, not from the reply's
 * arrival, is what makes a slow or delayed reply harmless: the witness took the
 * request after it was sent, so the witness's expiry (its receive time +
 * lease_ms, on its clock) is later in real time than the holder's start point.
 * The witness grants the lease to another holder only once lease_ms +
 * lease_margin(lease_ms) have passed on its own clock since it last granted it.
 *
 * The safety argument. Let L be the lease, M = lease_margin(L) = 1 % of L +
 * 10 ms, and let no clock's rate be off by more than ρ = 0.25 % (Linux's
 * CLOCK_MONOTONIC is slewed by NTP by at most 0.05 %, and crystals are within
 * 0.01 %: ρ is five times what NTP may do). The holder stops releasing at most
 * (L - M)/(1 - ρ) ≤ L - M + 0.0026 L real time after it sent its request; the
 * witness's expiry is at least L/(1 + ρ) ≥ L - 0.0025 L real time after that
 * same send. Since M = 0.01 L + 10 ms, the holder's own deadline is always
 * earlier than the witness's expiry, by at least 10 ms + 0.0049 L: the time a
 * frame checked just before the deadline may still take to leave (one poll of
 * the data plane and its transmit queue). The witness then waits M more, on its
 * own clock, before it grants the lease to anyone else. A witness that restarts
 * has forgotten who held what: it grants nothing for L + M after its start.
 * The one residue: a holder that checks lease_may_release, then stalls for more
 * than those 10 ms before its transmit call, releases late — the data plane
 * therefore checks immediately before each transmit burst.
 *
 * What happens without the witness. A holder that cannot renew stops releasing
 * at its deadline (LEASE_EXPIRED): its output is held, not dropped, and goes out
 * once a renewal is granted. A secondary that cannot reach the witness never
 * takes over. Losing the witness therefore costs availability, never safety:
 * the pair stops serving rather than serving twice.
 *
 * No fail-back: a holder told that another holds the lease (DENY naming someone
 * else) is LEASE_DEPOSED for good, and one that gave the lease back
 * (lease_release, when it knows it is dying) is LEASE_RELEASED for good.
 *
 * Pure logic stepped with an explicit now: the caller owns the clock, the
 * socket and the key (witness_msg_encode / witness_reply_check).
 */
#ifndef COLO_LEASE_H
#define COLO_LEASE_H

#include <stdbool.h>
#include <stdint.h>

#include "colo/witness_msg.h"

#define LEASE_DRIFT_PERMILLE 10  /* 1 % of the lease ... */
#define LEASE_MARGIN_FIXED_MS 10 /* ... plus 10 ms */
#define LEASE_OUTSTANDING 8      /* requests remembered for their replies */
#define LEASE_RETRY_MS_DEFAULT 10

/* The drift margin of a lease of lease_ms, in ns: 1 % of it plus 10 ms. */
uint64_t lease_margin_ns(uint32_t lease_ms);

enum lease_role { LEASE_PRIMARY, LEASE_SECONDARY };

enum lease_state {
    LEASE_STANDBY,   /* secondary before a takeover: asks for nothing */
    LEASE_ACQUIRING, /* asking, never held it yet */
    LEASE_HELD,      /* valid until valid_until_ns: may release */
    LEASE_EXPIRED,   /* held it, could not renew in time: output held, still asking */
    LEASE_DEPOSED,   /* another holds it: never again */
    LEASE_RELEASED,  /* given back (this host is stopping): never again */
};

struct lease_config {
    uint64_t pair_id;  /* the pair, as the operator names it */
    uint64_t self_id;  /* this holder: random per process, never 0 */
    uint32_t retry_ms; /* while not holding: ask this often (default 10) */
};

struct lease {
    struct lease_config cfg;
    enum lease_role role;
    enum lease_state state;
    uint64_t next_counter;
    struct {
        uint64_t counter, sent_ns;
    } outstanding[LEASE_OUTSTANDING];
    uint32_t outstanding_next;
    uint64_t next_send_ns;
    uint64_t valid_until_ns;   /* 0: none */
    uint32_t granted_ms;       /* the last grant's length */
    uint64_t other_holder;     /* the holder a DENY named */
    uint32_t other_wait_ms;    /* how long the witness said it would still refuse */
    bool ever_held;
    uint64_t requests, grants, denials, stale_replies, expirations;
};

/* first_counter: above any counter this self_id has used (1 for a fresh random self_id). */
void lease_init(struct lease *l, const struct lease_config *cfg, enum lease_role role, uint64_t first_counter);

/* Secondary: the detector says the primary is gone; start asking for the lease. */
void lease_want_takeover(struct lease *l, uint64_t now_ns);

/* When a request is due, fills `out` (an ACQUIRE to encode and send now) and returns true. */
bool lease_request_due(struct lease *l, uint64_t now_ns, struct witness_msg *out);

/*
 * A verified reply (witness_reply_check said it is ours): extends the lease on a
 * GRANT, deposes on a DENY naming another holder. Returns false when it answers
 * no outstanding request (counted as stale, nothing changes).
 */
bool lease_on_reply(struct lease *l, const struct witness_msg *reply, uint64_t now_ns);

/* Moves HELD to EXPIRED at the deadline. Returns true when the state changed. */
bool lease_step(struct lease *l, uint64_t now_ns);

/* May this host let VM output reach the clients now? Check right before each transmit. */
bool lease_may_release(const struct lease *l, uint64_t now_ns);

/*
 * This host is stopping (SIGTERM, COLO_EXIT, carrier lost): call once output has
 * stopped; fills `out` (a RELEASE to send at once) and returns true when the
 * witness should hear it. The lease is never used again.
 */
bool lease_release(struct lease *l, struct witness_msg *out);

const char *lease_state_name(enum lease_state s);

#endif
