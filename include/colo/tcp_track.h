/*
 * tcp_track.h — the connection table.
 *
 * Every flow the proxy compares has one `struct conn`, found by its normalised
 * flow key (both directions meet; VLAN IDs are part of the key). The table is
 * allocated once at start for `max_conns` entries and never grows: memory is
 * bounded and known. Entries carry the protocol state (handshake, established,
 * closing, closed), the last activity time, and the compare engine's per-
 * connection stream state (`struct conn_stream`, owned by compare.c).
 *
 * Expiry: each connection expires after a state-dependent quiet time (closed
 * ones quickly, established ones after the idle timeout). A lazy timer wheel
 * with one-second slots finds them in O(expired) work; a connection that still
 * holds packets is never expired, only re-armed.
 *
 * When the table is full, a new flow evicts the connection nearest its expiry
 * that is not busy (for the compare engine: holds no PVM packets) (closed connections first in practice, then the
 * longest idle). If every candidate holds packets, creation fails and the
 * caller applies its overflow policy; the table is never wiped.
 *
 * Lookups hash the key with the table's own secret key (conn_hash), so clients
 * cannot choose tuples that collide, and no key is ever probed for past
 * CONN_PROBE_LIMIT slots: a creation that finds no room there fails the same
 * way as in a full table (counted in `probe_full` too).
 */
#ifndef COLO_TCP_TRACK_H
#define COLO_TCP_TRACK_H

#include <stdbool.h>
#include <stdint.h>

#include "colo/pkt.h"

enum conn_state {
    CONN_MIDSTREAM = 0, /* first packet seen was not a SYN (e.g. after a restart) */
    CONN_HANDSHAKE,
    CONN_ESTABLISHED,
    CONN_CLOSING,       /* a FIN was seen */
    CONN_CLOSED,        /* FINs both ways, or a RST */
    CONN_STATE_COUNT
};

/* Per-connection compare state; fields are owned by compare.c. */
struct conn_stream {
    struct colo_pkt *pvm_head, *pvm_tail; /* held PVM packets, arrival order */
    struct colo_pkt *pvm_cmp;  /* first PVM packet not yet fully verified */
    struct colo_pkt *svm_head, *svm_tail; /* SVM packets awaiting compare */
    uint32_t cmp_seq;      /* TCP: next stream position (PVM space) to verify;
                              datagrams: how many have matched */
    uint32_t pvm_next;     /* TCP: end of the furthest PVM segment seen */
    uint32_t pvm_max_ack;  /* TCP: true maxima of the ack fields, per side */
    uint32_t svm_max_ack;
    uint32_t stream_base;  /* TCP: PVM ISN + 1, or the first PVM seq seen */
    uint32_t pvm_syn_ack;  /* TCP: ack fields of each side's latest SYN(-ACK): */
    uint32_t svm_syn_ack;  /* equal when both answer the same client SYN */
    uint32_t pvm_rst_seq;  /* TCP: where the PVM's RST sits (CMPF_PVM_RST) */
    uint16_t pvm_count, svm_count;
    uint16_t flags;        /* CMPF_* in compare_internal.h */
};

/* Per-connection secondary-side rewriting state; fields are owned by seq_rewrite.c. */
struct conn_rewrite {
    struct colo_pkt *held_head, *held_tail; /* peer segments that came before the SVM's SYN-ACK */
    uint32_t seq_offset;    /* SVM ISN - PVM ISN */
    uint32_t ts_offset;     /* SVM TSval - PVM TSval */
    uint32_t svm_isn;
    uint32_t svm_syn_tsval;
    uint32_t epoch;         /* offsets are valid only in the rewriter's current epoch */
    uint8_t held_count;
    uint8_t flags;          /* RWF_* in seq_rewrite.c */
};

struct conn {
    struct flow_key key;
    uint32_t free_next;     /* free-list link while unused */
    uint32_t wheel_prev, wheel_next;
    uint32_t last_active_s;
    uint8_t state;          /* enum conn_state */
    uint8_t guest_is_1;     /* the guest (PVM/SVM sender) is key endpoint 1 */
    uint8_t fin_dirs;       /* bit 0: guest sent FIN, bit 1: peer sent FIN */
    uint8_t in_use;
    uint16_t wheel_slot;    /* the expiry slot this entry is filed under */
    union {                 /* the role's state: compare (primary) or rewrite (secondary) */
        struct conn_stream stream;
        struct conn_rewrite rewrite;
    };
};

struct conn_timeouts {
    uint32_t handshake_s;
    uint32_t tcp_established_s;
    uint32_t closing_s;
    uint32_t closed_s;
    uint32_t datagram_s;    /* UDP, ICMP and everything else */
};

/* A key's entry is never more than this many slots past its home slot. */
#define CONN_PROBE_LIMIT 32u

struct conn_table_stats {
    uint64_t created, expired, evicted, create_failed;
    uint64_t probe_full;         /* of create_failed: no empty slot within CONN_PROBE_LIMIT of the key's home */
    uint32_t in_use, in_use_max; /* now, and the most at once */
};

/* Called before a connection is removed, so its owner can free what it holds. */
typedef void (*conn_evict_fn)(void *ctx, struct conn *conn);
/* True while a connection holds something that must not be lost (it is then never removed). */
typedef bool (*conn_busy_fn)(const struct conn *conn);

struct conn_table;

/* Allocates room for max_conns (at most 2^29) connections and draws the hash key; NULL on failure. */
struct conn_table *conn_table_create(uint32_t max_conns, const struct conn_timeouts *timeouts,
                                     conn_busy_fn busy, conn_evict_fn on_evict, void *ctx);
void conn_table_destroy(struct conn_table *t);

void conn_timeouts_default(struct conn_timeouts *t);

/* The key's hash in this table: SipHash-1-3 under the table's random 128-bit key. */
uint32_t conn_hash(const struct conn_table *t, const struct flow_key *key);

/*
 * Tests and benchmarks only (no option reaches it): replaces the table's random
 * hash key with a known one, so that colliding keys can be crafted. Refused
 * (false) once the table holds a connection.
 */
bool conn_table_set_hash_key(struct conn_table *t, const uint64_t key[2]);

struct conn *conn_lookup(struct conn_table *t, const struct flow_key *key, uint32_t hash);

/* Finds or creates; NULL only when the table is full of busy connections. */
struct conn *conn_lookup_or_create(struct conn_table *t, const struct flow_key *key,
                                   uint32_t hash, uint32_t now_s);

/*
 * Batched lookups over a burst, in two passes so the cache misses overlap:
 * first prefetch every key's slots, then (once those have arrived) the entry
 * whose hash matches, then look up.
 */
void conn_prefetch_slots(const struct conn_table *t, uint32_t hash);
void conn_prefetch_entry(const struct conn_table *t, uint32_t hash);

/* Records activity and TCP flags seen in one direction. */
void conn_observe_tcp(struct conn_table *t, struct conn *c, uint8_t tcp_flags, bool from_guest,
                      uint32_t now_s);
void conn_observe(struct conn *c, uint32_t now_s);

/* Expires quiet connections up to now_s; at most `budget` entries are examined. */
void conn_table_expire(struct conn_table *t, uint32_t now_s, uint32_t budget);

uint32_t conn_id(const struct conn_table *t, const struct conn *c);
struct conn *conn_by_id(struct conn_table *t, uint32_t id);

/* Calls fn for every connection in use (for flushes and shutdown). */
void conn_table_foreach(struct conn_table *t, void (*fn)(void *ctx, struct conn *c), void *ctx);

const struct conn_table_stats *conn_table_stats(const struct conn_table *t);

/* Bytes of table memory per connection (entry plus its share of lookup slots). */
double conn_table_bytes_per_conn(const struct conn_table *t);

const char *conn_state_name(enum conn_state s);

#endif
