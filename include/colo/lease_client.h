/*
 * lease_client.h — a colo-proxy's side of the witness, on the control thread:
 * the UDP socket to `colo-proxy witness`, the key, and the lease state machine
 * (lease.h) stepped by a libevent timer on CLOCK_MONOTONIC.
 *
 * Every change of the lease's state or deadline is handed to `changed`; the
 * control thread passes the deadline on to the data plane, which releases only
 * while CLOCK_MONOTONIC is below the last deadline it was given. A delayed
 * hand-over can only shorten what the data plane believes, never lengthen it.
 */
#ifndef COLO_LEASE_CLIENT_H
#define COLO_LEASE_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "colo/lease.h"

struct event_base;

struct lease_client_config {
    const char *witness;      /* ADDR:PORT of the witness, numeric */
    const uint8_t *key;       /* the shared key (cli_read_key_file), copied */
    size_t key_len;
    uint64_t pair_id;         /* the same on both proxies of a pair, and unique per witness */
    enum lease_role role;
};

struct lease_client_stats {
    uint64_t sent, send_errors, replies, replies_rejected;
};

/* state and deadline (CLOCK_MONOTONIC ns; 0: none) after every change of either. */
typedef void (*lease_client_fn)(void *ctx, enum lease_state state, uint64_t valid_until_ns);

struct lease_client;

/* Starts asking at once (a primary) or when told to take over (a secondary); NULL with a one-line reason. */
struct lease_client *lease_client_create(struct event_base *base, const struct lease_client_config *cfg,
                                         lease_client_fn changed, void *ctx, char *err, size_t errlen);

/* The secondary's detector says the primary is gone: ask for the lease until it is granted. */
void lease_client_want_takeover(struct lease_client *c);

/* This host is stopping and its output has stopped: tell the witness at once. Never holds the lease again. */
void lease_client_release(struct lease_client *c);

const struct lease *lease_client_lease(const struct lease_client *c);
const struct lease_client_stats *lease_client_stats(const struct lease_client *c);

void lease_client_free(struct lease_client *c);

/* CLOCK_MONOTONIC in ns: the clock of every deadline above. */
uint64_t lease_client_now_ns(void);

#endif
