/*
 * witness.h — the lease grantor behind `colo-proxy witness`: test-and-set of
 * one lease per pair, in the spirit of VMware FT's test-and-set on shared
 * storage and of Chubby's and etcd's leases.
 *
 * For each pair (a 64-bit id the operator names) the witness remembers one
 * holder and when its lease ends on the witness's clock. An ACQUIRE is granted
 * (lease_ms from now) when nobody holds the pair's lease, when its sender holds
 * it already (a renewal), or when the holder's lease ended at least
 * lease_margin(lease_ms) ago (lease.h: why that margin makes two holders
 * impossible). Otherwise it is denied, naming the holder and how long the
 * witness will still refuse. A RELEASE from the holder frees the lease at once.
 * A witness that has just started knows no holders, so it grants nothing for
 * lease_ms + lease_margin(lease_ms): any lease it granted before a restart has
 * ended by then.
 *
 * Only authenticated messages (witness_msg.h) touch the tables, and each
 * sender's counter must rise (replays are dropped). The tables are fixed in
 * size: a new sender or pair takes the place of the one heard from least
 * recently that holds nothing, and is refused when every place is in use.
 *
 * Pure logic stepped with an explicit now; the UDP socket lives in cmd_witness.c.
 */
#ifndef COLO_WITNESS_H
#define COLO_WITNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "colo/witness_msg.h"

#define WITNESS_LEASE_MS_DEFAULT 120
#define WITNESS_PAIRS_DEFAULT 256
#define WITNESS_SENDERS_DEFAULT 1024

struct witness_config {
    uint32_t lease_ms;    /* the lease's length; 0: WITNESS_LEASE_MS_DEFAULT */
    uint32_t max_pairs;   /* 0: WITNESS_PAIRS_DEFAULT */
    uint32_t max_senders; /* 0: WITNESS_SENDERS_DEFAULT */
};

/* What one message did, for the log: the holder of a pair changed. */
struct witness_outcome {
    bool reply;            /* `out` holds a reply to send back to the sender's address */
    bool holder_changed;
    uint64_t pair_id, old_holder, new_holder;
};

struct witness_stats {
    uint64_t received, granted, denied, released, holder_changes;
    uint64_t rejected[WITNESS_REJECT_COUNT];
};

struct witness;

/* Key bytes are copied. NULL when the key is shorter than WITNESS_KEY_MIN or longer than WITNESS_KEY_MAX. */
struct witness *witness_create(const struct witness_config *cfg, const uint8_t *key, size_t key_len,
                               uint64_t now_ns);
void witness_destroy(struct witness *w);

/* Takes one datagram of `len` untrusted bytes: WITNESS_OK, or why it was dropped (counted). */
enum witness_reject witness_handle(struct witness *w, const uint8_t *in, size_t len, uint64_t now_ns,
                                   uint8_t out[WITNESS_MSG_LEN], struct witness_outcome *outcome);

const struct witness_stats *witness_stats(const struct witness *w);
uint32_t witness_lease_ms(const struct witness *w);
/* When the witness starts granting (its start + lease + margin). */
uint64_t witness_grants_from_ns(const struct witness *w);

#endif
