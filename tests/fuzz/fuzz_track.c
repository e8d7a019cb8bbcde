/*
 * fuzz_track.c — libFuzzer target: the connection table driven with keys the
 * input chooses, against a reference model of which connections it holds.
 *
 * The input is a little program (fuzz_input.h): the table's size (1 to 64
 * connections) and its hash key come first, as if the attacker knew the key;
 * then each step creates or looks up a key (from raw input bytes, or crafted
 * by the harness to share its low hash bits with a home the input names, so
 * probe windows fill and overflow), marks a connection busy or idle, feeds it
 * TCP flags, or moves the clock and expires with a budget. Removal happens
 * through expiry and eviction, as in the proxy.
 *
 * Invariants, checked after every step: a key the model holds is found, as
 * itself, and a key it does not hold is not; the table's in-use count equals
 * the model's, never above capacity, and equals created − expired − evicted; a
 * busy connection is never removed; a creation fails only as a full table
 * (create_failed) or a full probe window (probe_full, never while fewer than
 * CONN_PROBE_LIMIT connections exist), and a window overflow in a table with
 * room is never a capacity failure.
 */
#include <string.h>

#include "colo/tcp_track.h"
#include "fuzz_input.h"

#define POOL 64
#define MAX_STEPS 512

struct model {
    struct conn_table *t;
    struct flow_key keys[POOL];
    bool held[POOL];
    unsigned nkeys, nheld;
    uint32_t max_conns;
    uint32_t now;
};

static struct model *current; /* the eviction callback's way back to the model */

static int key_index(const struct model *m, const struct flow_key *k)
{
    for (unsigned i = 0; i < m->nkeys; i++)
        if (memcmp(&m->keys[i], k, sizeof(*k)) == 0)
            return (int)i;
    return -1;
}

static bool busy(const struct conn *c)
{
    return c->stream.pvm_count != 0;
}

static void on_remove(void *ctx, struct conn *c)
{
    struct model *m = ctx;
    FUZZ_CHECK(m == current);
    FUZZ_CHECK(!busy(c));
    int i = key_index(m, &c->key);
    FUZZ_CHECK(i >= 0 && m->held[i]);
    m->held[i] = false;
    m->nheld--;
}

/* A key from the input's bytes: few of them, so that the same keys come back. */
static struct flow_key raw_key(struct fuzz_input *in)
{
    struct flow_key k;
    memset(&k, 0, sizeof(k));
    k.family = FAMILY_IPV4;
    k.proto = take_u8(in) & 1 ? 6 : 17;
    k.addr[0][10] = k.addr[0][11] = k.addr[1][10] = k.addr[1][11] = 0xff;
    k.addr[0][15] = take_u8(in);
    k.addr[1][15] = take_u8(in);
    k.port[0] = take_u16(in);
    return k;
}

/* A key whose hash shares its low 8 bits with `home`: the same home slot in every table here (<= 256 slots). */
static struct flow_key crafted_key(const struct model *m, struct fuzz_input *in)
{
    uint8_t home = take_u8(in);
    struct flow_key k = raw_key(in);
    uint32_t n = take_u16(in);
    do {
        n++;
        memcpy(&k.addr[1][12], &n, 3);
    } while ((conn_hash(m->t, &k) & 0xff) != home);
    return k;
}

static int pool_add(struct model *m, const struct flow_key *k)
{
    int i = key_index(m, k);
    if (i >= 0 || m->nkeys == POOL)
        return i >= 0 ? i : (int)(k->port[0] % m->nkeys);
    m->keys[m->nkeys] = *k;
    return (int)m->nkeys++;
}

static void check_all(const struct model *m)
{
    const struct conn_table_stats *st = conn_table_stats(m->t);
    FUZZ_CHECK(st->in_use == m->nheld);
    FUZZ_CHECK(st->in_use <= m->max_conns);
    FUZZ_CHECK(st->created - st->expired - st->evicted == st->in_use);
    FUZZ_CHECK(st->probe_full <= st->create_failed);
    for (unsigned i = 0; i < m->nkeys; i++) {
        struct conn *c = conn_lookup(m->t, &m->keys[i], conn_hash(m->t, &m->keys[i]));
        FUZZ_CHECK((c != NULL) == m->held[i]);
        if (c)
            FUZZ_CHECK(memcmp(&c->key, &m->keys[i], sizeof(c->key)) == 0 && c->in_use);
    }
}

static void create(struct model *m, int i)
{
    const struct conn_table_stats *st = conn_table_stats(m->t);
    uint64_t failed = st->create_failed, probe_full = st->probe_full;
    uint32_t before = m->nheld;
    struct conn *c = conn_lookup_or_create(m->t, &m->keys[i], conn_hash(m->t, &m->keys[i]), m->now);
    if (m->held[i]) {
        FUZZ_CHECK(c && st->create_failed == failed);
        return;
    }
    if (c) {
        FUZZ_CHECK(memcmp(&c->key, &m->keys[i], sizeof(c->key)) == 0);
        FUZZ_CHECK(c->stream.pvm_count == 0 && c->state == CONN_MIDSTREAM);
        m->held[i] = true;
        m->nheld++;
        return;
    }
    FUZZ_CHECK(st->create_failed == failed + 1);
    if (st->probe_full == probe_full + 1)
        FUZZ_CHECK(before >= CONN_PROBE_LIMIT);
    else
        FUZZ_CHECK(st->probe_full == probe_full && before == m->max_conns); /* full, every candidate busy */
}

static struct conn *held_conn(struct model *m, struct fuzz_input *in)
{
    if (!m->nkeys)
        return NULL;
    unsigned i = take_u8(in) % m->nkeys;
    return m->held[i] ? conn_lookup(m->t, &m->keys[i], conn_hash(m->t, &m->keys[i])) : NULL;
}

static void step(struct model *m, struct fuzz_input *in)
{
    uint8_t op = take_u8(in);
    switch (op % 6) {
    case 0: {
        struct flow_key k = raw_key(in);
        create(m, pool_add(m, &k));
        break;
    }
    case 1: {
        struct flow_key k = crafted_key(m, in);
        create(m, pool_add(m, &k));
        break;
    }
    case 2:
        if (m->nkeys)
            create(m, (int)(take_u8(in) % m->nkeys));
        break;
    case 3: {
        struct conn *c = held_conn(m, in);
        if (c)
            c->stream.pvm_count = (uint16_t)(take_u8(in) & 1);
        break;
    }
    case 4: {
        struct conn *c = held_conn(m, in);
        uint8_t flags = take_u8(in);
        if (c)
            conn_observe_tcp(m->t, c, flags, flags & 0x80, m->now);
        break;
    }
    default: {
        uint8_t jump = take_u8(in);
        m->now += jump < 200 ? jump : (uint32_t)jump * 60;
        conn_table_expire(m->t, m->now, take_u8(in) + 1u);
        break;
    }
    }
    check_all(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_input in = { data, size };
    static struct model m;
    memset(&m, 0, sizeof(m));
    m.max_conns = take_u8(&in) % 64 + 1;
    struct conn_timeouts to = { .handshake_s = 20, .tcp_established_s = 600, .closing_s = 30, .closed_s = 5,
                                .datagram_s = 60 };
    m.t = conn_table_create(m.max_conns, &to, busy, on_remove, &m);
    FUZZ_CHECK(m.t);
    uint64_t key[2] = { (uint64_t)take_u32(&in) << 32 | take_u32(&in), (uint64_t)take_u32(&in) << 32 | take_u32(&in) };
    FUZZ_CHECK(conn_table_set_hash_key(m.t, key));
    current = &m;
    m.now = 1000;
    for (unsigned n = 0; n < MAX_STEPS && in.left; n++)
        step(&m, &in);
    conn_table_destroy(m.t);
    current = NULL;
    return 0;
}
