/*
 * tcp_track.c — the bounded connection table: lookup, creation, state, expiry.
 *
 * Owns: the array of `struct conn` (allocated once), the lookup slots (open
 * addressing with linear probing at load <= 1/4; each slot keeps the full
 * hash so a lookup mostly reads one line of slots and exactly one entry), the
 * table's hash key, the free list, and the expiry wheel. Connection indices
 * start at 1 so that 0 can mean "none" in every link.
 *
 * Flooding: clients choose their flow keys, so the slot a key lands in must not
 * be theirs to choose. Keys are hashed with SipHash-1-3 under a 128-bit key
 * drawn from getrandom() for each table: without that key, which keys collide
 * cannot be computed or learnt, so crafted tuples spread like random ones.
 * And no key's probe runs longer than CONN_PROBE_LIMIT slots: an insert finding
 * no empty slot within it fails like a full table (the caller's overflow
 * policy: for the compare engine an orphan and a checkpoint, never a drop), and
 * a lookup stops there. So even someone who learns the key (reading the
 * process's memory) can make lookups cost at most CONN_PROBE_LIMIT slots, and
 * can make creations in the windows they fill fail, as filling the table would.
 * At load <= 1/4, random keys overflow the limit far too rarely to measure.
 *
 * The expiry wheel is lazy: a connection is filed under the second it would
 * expire if it stayed quiet; activity only updates `last_active_s`. When its
 * slot comes round, the entry is either expired or re-filed under its real
 * deadline. So the per-packet cost is a store, and expiry work is proportional
 * to what is due. A walk behind by more than a lap starts one lap back: a lap
 * visits every slot, and each entry is judged by its own deadline, so the
 * seconds skipped hold nothing else and a gap of any length costs one lap.
 * Must never: remove a connection its owner says is busy,
 * allocate after creation, or probe past CONN_PROBE_LIMIT slots.
 */
#include "colo/tcp_track.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>

#define WHEEL_SLOTS 4096u /* seconds; longer timeouts are re-filed as they come round */
#define EVICT_PROBE_LIMIT 64
#define SLOTS_PER_CONN 4u /* load <= 1/4 */
#define MAX_CONNS_LIMIT (1u << 29) /* so that the slot count fits 32 bits */
#define SLOT_GROUP 8u /* slots tested at once: a cache line's worth */
#define SCALAR_SLOTS 2u /* slots read one by one before groups are tested */
_Static_assert(CONN_PROBE_LIMIT % SLOT_GROUP == 0, "the probe window is whole groups");

struct slot {
    uint32_t id;   /* connection index; 0 = empty */
    uint32_t hash; /* full hash: the entry is read only when this matches */
};

struct conn_table {
    struct conn *conns;      /* [0] unused */
    size_t conns_bytes;
    struct slot *slots;      /* open addressing, linear probing, load <= 1/4; the last home's
                                window runs CONN_PROBE_LIMIT - 1 slots past slot_mask: no wrap */
    size_t slots_bytes;
    uint32_t slot_mask;      /* home slots: hash & slot_mask */
    uint32_t slot_count;     /* slot_mask + CONN_PROBE_LIMIT */
    uint64_t hash_key[2];    /* SipHash key, random per table */
    uint32_t max_conns;
    uint32_t free_head;
    uint32_t wheel[WHEEL_SLOTS];
    uint32_t wheel_now_s;    /* every slot before this second has been processed */
    bool wheel_started;
    struct conn_timeouts timeouts;
    conn_busy_fn busy;
    conn_evict_fn on_evict;
    void *ctx;
    struct conn_table_stats stats;
};

void conn_timeouts_default(struct conn_timeouts *t)
{
    t->handshake_s = 60;
    t->tcp_established_s = 3600;
    t->closing_s = 120;
    t->closed_s = 10;
    t->datagram_s = 180;
}

static uint32_t round_up_pow2(uint32_t v)
{
    uint32_t p = 1;
    while (p < v && p < (1u << 31))
        p <<= 1;
    return p;
}

/* 16 bytes from the kernel's random pool (it blocks only before the pool is first seeded, at early boot). */
static int random_hash_key(uint64_t key[2])
{
    uint8_t *p = (uint8_t *)key;
    size_t got = 0;
    while (got < 2 * sizeof(uint64_t)) {
        ssize_t n = getrandom(p + got, 2 * sizeof(uint64_t) - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        got += (size_t)n;
    }
    return 0;
}

/*
 * Zeroed memory for the big arrays, on huge pages where the kernel offers them:
 * lookups are random over the whole table, and 4 KiB pages make them TLB-bound.
 */
static void *table_memory(size_t bytes)
{
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    madvise(p, bytes, MADV_HUGEPAGE);
    return p;
}

static void table_memory_free(void *p, size_t bytes)
{
    if (p)
        munmap(p, bytes);
}

struct conn_table *conn_table_create(uint32_t max_conns, const struct conn_timeouts *timeouts,
                                     conn_busy_fn busy, conn_evict_fn on_evict, void *ctx)
{
    if (max_conns == 0 || max_conns > MAX_CONNS_LIMIT)
        return NULL;
    struct conn_table *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    uint32_t nslots = round_up_pow2(max_conns) * SLOTS_PER_CONN;
    t->conns_bytes = ((size_t)max_conns + 1) * sizeof(struct conn);
    t->slots_bytes = ((size_t)nslots + CONN_PROBE_LIMIT - 1) * sizeof(struct slot);
    t->conns = table_memory(t->conns_bytes);
    t->slots = table_memory(t->slots_bytes);
    if (!t->conns || !t->slots || random_hash_key(t->hash_key) != 0) {
        conn_table_destroy(t);
        return NULL;
    }
    t->slot_mask = nslots - 1;
    t->slot_count = nslots + CONN_PROBE_LIMIT - 1;
    t->max_conns = max_conns;
    for (uint32_t i = 1; i <= max_conns; i++)
        t->conns[i].free_next = i < max_conns ? i + 1 : 0;
    t->free_head = 1;
    t->timeouts = *timeouts;
    t->busy = busy;
    t->on_evict = on_evict;
    t->ctx = ctx;
    return t;
}

void conn_table_destroy(struct conn_table *t)
{
    if (!t)
        return;
    table_memory_free(t->conns, t->conns_bytes);
    table_memory_free(t->slots, t->slots_bytes);
    free(t);
}

#define ROTL64(x, b) (((x) << (b)) | ((x) >> (64 - (b))))

static inline void sip_round(uint64_t v[4])
{
    v[0] += v[1];
    v[1] = ROTL64(v[1], 13) ^ v[0];
    v[0] = ROTL64(v[0], 32);
    v[2] += v[3];
    v[3] = ROTL64(v[3], 16) ^ v[2];
    v[0] += v[3];
    v[3] = ROTL64(v[3], 21) ^ v[0];
    v[2] += v[1];
    v[1] = ROTL64(v[1], 17) ^ v[2];
    v[2] = ROTL64(v[2], 32);
}

static inline void sip_absorb(uint64_t v[4], uint64_t m)
{
    v[3] ^= m;
    sip_round(v);
    v[0] ^= m;
}

#define KEY_WORDS (sizeof(struct flow_key) / 8)

/*
 * The words hashed for a key: all six, or for IPv4 three (the parser writes
 * IPv4 addresses as ::ffff:a.b.c.d, so their first 12 bytes say nothing): the
 * two addresses, then ports and VLANs, then the rest. The word count is part of
 * SipHash's input, so a three-word message never equals a six-word one.
 */
static unsigned key_words(const struct flow_key *key, uint64_t w[KEY_WORDS])
{
    if (key->family != FAMILY_IPV4) {
        memcpy(w, key, sizeof(*key));
        return KEY_WORDS;
    }
    uint32_t a0, a1;
    memcpy(&a0, &key->addr[0][12], 4);
    memcpy(&a1, &key->addr[1][12], 4);
    w[0] = (uint64_t)a1 << 32 | a0;
    memcpy(&w[1], (const uint8_t *)key + offsetof(struct flow_key, port), 8);
    memcpy(&w[2], (const uint8_t *)key + offsetof(struct flow_key, ethertype), 8);
    return 3;
}

_Static_assert(offsetof(struct flow_key, port) == 32 && offsetof(struct flow_key, vlan) == 36 &&
               offsetof(struct flow_key, ethertype) == 40, "ports and VLANs are the fifth word, the rest the sixth");

/* SipHash-1-3 of the key's words (host order: its bytes, on little-endian hosts), folded to 32 bits. */
uint32_t conn_hash(const struct conn_table *t, const struct flow_key *key)
{
    uint64_t w[KEY_WORDS];
    unsigned n = key_words(key, w);
    uint64_t v[4] = {
        t->hash_key[0] ^ 0x736f6d6570736575ull, t->hash_key[1] ^ 0x646f72616e646f6dull,
        t->hash_key[0] ^ 0x6c7967656e657261ull, t->hash_key[1] ^ 0x7465646279746573ull,
    };
    for (unsigned i = 0; i < n; i++)
        sip_absorb(v, w[i]);
    sip_absorb(v, (uint64_t)(n * 8) << 56);
    v[2] ^= 0xff;
    sip_round(v);
    sip_round(v);
    sip_round(v);
    uint64_t h = v[0] ^ v[1] ^ v[2] ^ v[3];
    return (uint32_t)(h ^ (h >> 32));
}

bool conn_table_set_hash_key(struct conn_table *t, const uint64_t key[2])
{
    if (t->stats.in_use)
        return false;
    t->hash_key[0] = key[0];
    t->hash_key[1] = key[1];
    return true;
}

_Static_assert(sizeof(struct flow_key) % 8 == 0, "flow_key is hashed as 64-bit words");

uint32_t conn_id(const struct conn_table *t, const struct conn *c)
{
    return (uint32_t)(c - t->conns);
}

struct conn *conn_by_id(struct conn_table *t, uint32_t id)
{
    return id && id <= t->max_conns && t->conns[id].in_use ? &t->conns[id] : NULL;
}

void conn_prefetch_slots(const struct conn_table *t, uint32_t hash)
{
    __builtin_prefetch(&t->slots[hash & t->slot_mask]);
}

/* The CONN_PROBE_LIMIT slots where a key of this hash may be: they never wrap round. */
static const struct slot *window(const struct conn_table *t, uint32_t hash)
{
    return &t->slots[hash & t->slot_mask];
}

/*
 * Does this group of slots hold an empty one, or one with this hash when
 * `hash` is not NULL? Without early exits, so that a full window of other keys
 * is skipped a group at a time (the compiler makes it a few vector compares).
 */
static bool group_may_stop(const struct slot *g, const uint32_t *hash)
{
    bool stop = false;
    for (unsigned i = 0; i < SLOT_GROUP; i++)
        stop |= (g[i].id == 0) | (hash && g[i].hash == *hash);
    return stop;
}

/*
 * The next slot of the window worth reading, from slot i on: the first
 * SCALAR_SLOTS are read one by one (a probe run mostly ends there, and reading
 * a whole group would often touch a second cache line); after them, groups
 * with neither an empty slot nor this hash are skipped whole.
 */
static unsigned next_slot(const struct slot *w, unsigned i, const uint32_t *hash)
{
    while (i < CONN_PROBE_LIMIT && (i == SCALAR_SLOTS || (i && i % SLOT_GROUP == 0))) {
        unsigned group = i - i % SLOT_GROUP;
        if (group_may_stop(w + group, hash))
            break;
        i = group + SLOT_GROUP;
    }
    return i;
}

/* The slot of the entry with this hash (and this key, unless key is NULL), or NULL. */
static const struct slot *find_slot(const struct conn_table *t, const struct flow_key *key, uint32_t hash)
{
    const struct slot *w = window(t, hash);
    for (unsigned i = 0; (i = next_slot(w, i, &hash)) < CONN_PROBE_LIMIT; i++) {
        if (!w[i].id)
            return NULL;
        if (w[i].hash == hash && (!key || memcmp(&t->conns[w[i].id].key, key, sizeof(*key)) == 0))
            return &w[i];
    }
    return NULL;
}

void conn_prefetch_entry(const struct conn_table *t, uint32_t hash)
{
    const struct slot *sl = find_slot(t, NULL, hash);
    if (!sl)
        return;
    const char *p = (const char *)&t->conns[sl->id];
    for (size_t off = 0; off < sizeof(struct conn); off += 64)
        __builtin_prefetch(p + off);
}

struct conn *conn_lookup(struct conn_table *t, const struct flow_key *key, uint32_t hash)
{
    const struct slot *sl = find_slot(t, key, hash);
    return sl ? &t->conns[sl->id] : NULL;
}

static uint32_t timeout_for(const struct conn_table *t, const struct conn *c)
{
    if (c->key.proto != 6 || c->key.fragment)
        return t->timeouts.datagram_s;
    switch (c->state) {
    case CONN_HANDSHAKE: return t->timeouts.handshake_s;
    case CONN_CLOSING: return t->timeouts.closing_s;
    case CONN_CLOSED: return t->timeouts.closed_s;
    default: return t->timeouts.tcp_established_s;
    }
}

static void wheel_insert(struct conn_table *t, uint32_t id, uint32_t due_s)
{
    if ((int32_t)(due_s - t->wheel_now_s) < 0)
        due_s = t->wheel_now_s;
    uint32_t *head = &t->wheel[due_s % WHEEL_SLOTS];
    struct conn *c = &t->conns[id];
    c->wheel_slot = (uint16_t)(due_s % WHEEL_SLOTS);
    c->wheel_prev = 0;
    c->wheel_next = *head;
    if (*head)
        t->conns[*head].wheel_prev = id;
    *head = id;
}

static void wheel_remove(struct conn_table *t, uint32_t id)
{
    struct conn *c = &t->conns[id];
    if (c->wheel_prev)
        t->conns[c->wheel_prev].wheel_next = c->wheel_next;
    else
        t->wheel[c->wheel_slot] = c->wheel_next;
    if (c->wheel_next)
        t->conns[c->wheel_next].wheel_prev = c->wheel_prev;
}

/* The first empty slot within CONN_PROBE_LIMIT of the hash's home slot, or NULL. */
static struct slot *free_slot(struct conn_table *t, uint32_t hash)
{
    struct slot *w = &t->slots[hash & t->slot_mask];
    for (unsigned i = 0; (i = next_slot(w, i, NULL)) < CONN_PROBE_LIMIT; i++) {
        if (!w[i].id)
            return &w[i];
    }
    return NULL;
}

/*
 * Removes a slot by shifting later entries of its probe run back: no
 * tombstones. An entry only ever moves nearer its home slot, so every entry
 * stays within CONN_PROBE_LIMIT of its home. An entry at j may fill the hole
 * unless its home is in (hole, j]; one CONN_PROBE_LIMIT or more past the hole
 * has its home after the hole, and so has every one beyond it: the shift stops.
 */
static void slot_remove(struct conn_table *t, uint32_t id)
{
    uint32_t home = conn_hash(t, &t->conns[id].key) & t->slot_mask;
    uint32_t hole = home;
    while (t->slots[hole].id != id) {
        if (!t->slots[hole].id || hole - home == CONN_PROBE_LIMIT - 1)
            return;
        hole++;
    }
    for (uint32_t j = hole + 1; j - hole < CONN_PROBE_LIMIT && j < t->slot_count && t->slots[j].id; j++) {
        uint32_t j_home = t->slots[j].hash & t->slot_mask;
        if (hole < j_home && j_home <= j)
            continue;
        t->slots[hole] = t->slots[j];
        hole = j;
    }
    t->slots[hole] = (struct slot){ 0, 0 };
}

static void conn_free(struct conn_table *t, uint32_t id)
{
    struct conn *c = &t->conns[id];
    if (t->on_evict)
        t->on_evict(t->ctx, c);
    wheel_remove(t, id);
    slot_remove(t, id);
    memset(c, 0, sizeof(*c));
    c->free_next = t->free_head;
    t->free_head = id;
    t->stats.in_use--;
}

static bool conn_busy(const struct conn_table *t, const struct conn *c)
{
    return t->busy && t->busy(c);
}

/* Evicts the idle connection nearest its expiry, probing a bounded number. */
static bool evict_one(struct conn_table *t)
{
    uint32_t probes = 0;
    for (uint32_t s = 0; s < WHEEL_SLOTS && probes < EVICT_PROBE_LIMIT; s++) {
        uint32_t slot = (t->wheel_now_s + s) % WHEEL_SLOTS;
        for (uint32_t id = t->wheel[slot]; id && probes < EVICT_PROBE_LIMIT; probes++) {
            uint32_t next = t->conns[id].wheel_next;
            if (!conn_busy(t, &t->conns[id])) {
                conn_free(t, id);
                t->stats.evicted++;
                return true;
            }
            id = next;
        }
    }
    return false;
}

struct conn *conn_lookup_or_create(struct conn_table *t, const struct flow_key *key,
                                   uint32_t hash, uint32_t now_s)
{
    struct conn *c = conn_lookup(t, key, hash);
    if (c)
        return c;
    if (!t->wheel_started) {
        t->wheel_now_s = now_s;
        t->wheel_started = true;
    }
    if (!free_slot(t, hash)) {
        t->stats.probe_full++;
        t->stats.create_failed++;
        return NULL;
    }
    if (!t->free_head && !evict_one(t)) {
        t->stats.create_failed++;
        return NULL;
    }
    struct slot *slot = free_slot(t, hash); /* eviction only empties slots, but may move this key's first empty one nearer */
    uint32_t id = t->free_head;
    c = &t->conns[id];
    t->free_head = c->free_next;
    memset(c, 0, sizeof(*c));
    c->key = *key;
    c->in_use = 1;
    c->last_active_s = now_s;
    *slot = (struct slot){ .id = id, .hash = hash };
    wheel_insert(t, id, now_s + timeout_for(t, c));
    t->stats.created++;
    if (++t->stats.in_use > t->stats.in_use_max)
        t->stats.in_use_max = t->stats.in_use;
    return c;
}

void conn_observe(struct conn *c, uint32_t now_s)
{
    c->last_active_s = now_s;
    if (c->state == CONN_MIDSTREAM)
        c->state = CONN_ESTABLISHED;
}

/* Closing and closed connections expire sooner: file them under their new deadline. */
static void enter_state(struct conn_table *t, struct conn *c, enum conn_state s)
{
    if (c->state == s)
        return;
    c->state = (uint8_t)s;
    uint32_t id = conn_id(t, c);
    wheel_remove(t, id);
    wheel_insert(t, id, c->last_active_s + timeout_for(t, c));
}

void conn_observe_tcp(struct conn_table *t, struct conn *c, uint8_t flags, bool from_guest,
                      uint32_t now_s)
{
    c->last_active_s = now_s;
    if (flags & TCPF_RST) {
        enter_state(t, c, CONN_CLOSED);
        return;
    }
    if (flags & TCPF_FIN) {
        c->fin_dirs |= from_guest ? 1 : 2;
        enter_state(t, c, c->fin_dirs == 3 ? CONN_CLOSED : CONN_CLOSING);
        return;
    }
    if (flags & TCPF_SYN) {
        if (c->state != CONN_HANDSHAKE) { /* a first SYN, or a reused port */
            c->fin_dirs = 0;
            enter_state(t, c, CONN_HANDSHAKE);
        }
        return;
    }
    if (c->state == CONN_HANDSHAKE || c->state == CONN_MIDSTREAM)
        c->state = CONN_ESTABLISHED;
}

void conn_table_expire(struct conn_table *t, uint32_t now_s, uint32_t budget)
{
    if (!t->wheel_started)
        return;
    if ((int32_t)(now_s - t->wheel_now_s) >= (int32_t)WHEEL_SLOTS)
        t->wheel_now_s = now_s - (WHEEL_SLOTS - 1);
    while ((int32_t)(now_s - t->wheel_now_s) >= 0 && budget) {
        uint32_t slot = t->wheel_now_s % WHEEL_SLOTS;
        uint32_t id = t->wheel[slot];
        if (!id) {
            t->wheel_now_s++;
            continue;
        }
        budget--;
        struct conn *c = &t->conns[id];
        uint32_t due = c->last_active_s + timeout_for(t, c);
        if ((int32_t)(due - now_s) <= 0 && !conn_busy(t, c)) {
            conn_free(t, id);
            t->stats.expired++;
        } else {
            wheel_remove(t, id);
            uint32_t later = (int32_t)(due - now_s) > 0 ? due : now_s + 1;
            if (later % WHEEL_SLOTS == slot)
                later++; /* a full lap away: file it in the next slot instead */
            wheel_insert(t, id, later);
        }
    }
}

void conn_table_foreach(struct conn_table *t, void (*fn)(void *ctx, struct conn *c), void *ctx)
{
    for (uint32_t i = 1; i <= t->max_conns; i++) {
        if (t->conns[i].in_use)
            fn(ctx, &t->conns[i]);
    }
}

const struct conn_table_stats *conn_table_stats(const struct conn_table *t)
{
    return &t->stats;
}

double conn_table_bytes_per_conn(const struct conn_table *t)
{
    double bytes = (double)sizeof(struct conn) * (t->max_conns + 1) +
                   (double)sizeof(struct slot) * t->slot_count;
    return bytes / t->max_conns;
}

const char *conn_state_name(enum conn_state s)
{
    static const char *const names[CONN_STATE_COUNT] = {
        "midstream", "handshake", "established", "closing", "closed",
    };
    return (unsigned)s < CONN_STATE_COUNT ? names[s] : "unknown";
}
