/*
 * hash_flood.c — the connection table under tuples crafted to collide.
 *
 * For each table size (1,000, 65,536 and 1,000,000 connections, or those named)
 * a table is filled half way with random IPv4 flows (the bystanders, which stay
 * established), then each set of tuples in turn is inserted, looked up, closed
 * and expired, leaving the table as it was for the next:
 *
 *   random     IPv6 clients with random addresses and ports;
 *   old-hash   IPv6 clients whose keys all have the same 32-bit hash under the
 *              old unseeded hash (a copy of it is kept here, only to craft them:
 *              the client picks the 64 bits of its interface ID, and that hash
 *              is invertible word by word);
 *   known-key  IPv6 clients whose keys share the low 12 bits of their hash
 *              under the table's key, which the bench sets through the
 *              test-only hook conn_table_set_hash_key (what an attacker who has
 *              learnt the key would send).
 *
 * Every key is the parser's own: each set's template frame is built and parsed,
 * and crafted keys are checked to be what parsing their frame gives. Times are
 * per operation on one core, the keyed hash included: insert (lookup, then
 * create or be refused), lookup of the set, and lookup of the bystanders after
 * the set went in; in CPU time, each the fastest of seven rounds over the
 * sets, lookups repeated for at least 30 ms each time, so that other load on
 * the machine shows less. It
 * prints each crafted set's cost over the random set's. It reports; it asserts
 * nothing but its own crafting.
 *
 *   hash_flood [--tuples N] [CONNS...]
 * (sets of a quarter of the table, at most N tuples: 16384 unless given)
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "colo/pkt_parse.h"
#include "colo/tcp_track.h"
#include "frame_builder.h"

#define MAX_SET 16384u
#define BYSTANDER_SAMPLE 16384u
#define MIN_TIMED_S 0.03
#define REPEATS 7
#define KNOWN_HOME_BITS 0xfffu

enum flood_set { SET_RANDOM, SET_OLD_HASH, SET_KNOWN_KEY, SET_COUNT };
static const char *const set_names[SET_COUNT] = { "random", "old-hash", "known-key" };
static const uint64_t known_key[2] = { 0x243f6a8885a308d3ull, 0x13198a2e03707344ull };

struct figures {
    double insert_ns, lookup_ns, bystander_ns;
    uint32_t refused;
};

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* This thread's CPU time: the machine may be busy with other work, and time spent off the CPU is not the table's. */
static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- the old unseeded hash, kept only to craft its collisions ---- */

#define OLD_MUL 0xff51afd7ed558ccdull
#define OLD_MUL_INV 0x4f74430c22a54005ull /* OLD_MUL * OLD_MUL_INV = 1 mod 2^64 */
#define OLD_IV 0x9e3779b97f4a7c15ull
#define KEY_WORDS (sizeof(struct flow_key) / 8)

static uint64_t old_step(uint64_t h, uint64_t w)
{
    h ^= w;
    h *= OLD_MUL;
    return h ^ (h >> 32);
}

/* The state before old_step(., w) that leads to h. */
static uint64_t old_unstep(uint64_t h, uint64_t w)
{
    h ^= h >> 32;
    return (h * OLD_MUL_INV) ^ w;
}

static uint32_t old_fold(uint64_t h)
{
    return (uint32_t)(h ^ (h >> 29));
}

static uint32_t old_hash(const struct flow_key *key)
{
    uint64_t w[KEY_WORDS];
    memcpy(w, key, sizeof(w));
    uint64_t h = OLD_IV;
    for (unsigned i = 0; i < KEY_WORDS; i++)
        h = old_step(h, w[i]);
    return old_fold(h);
}

/* A final state whose fold is `target`, its upper half free: fold's low 32 bits are L ^ L >> 29 ^ U << 3. */
static uint64_t old_state_folding_to(uint32_t target, uint32_t upper)
{
    uint32_t x = target ^ (upper << 3);
    uint32_t low = x ^ (x >> 29);
    return (uint64_t)upper << 32 | low;
}

/* ---- keys, as the parser makes them ---- */

static struct flow_key parsed_key(const struct frame_spec *s)
{
    uint8_t buf[256];
    struct pkt_view v;
    size_t len = frame_build(s, buf, sizeof(buf));
    if (!len || pkt_parse(buf, (uint32_t)len, &v) != PARSE_OK) {
        fprintf(stderr, "hash_flood: could not build a template frame\n");
        exit(1);
    }
    return v.key;
}

/* A client's SYN to the guest's port 443: client 2001:db8:1::/64 with interface ID `iid` and port `port`. */
static struct frame_spec client6(uint64_t iid, uint16_t port)
{
    struct frame_spec s = frame_guest_tcp(1, 0, TCPF_SYN, NULL, 0);
    static const uint8_t client_net[8] = { 0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0 };
    static const uint8_t guest[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 };
    s.family = 6;
    memcpy(s.src, client_net, 8);
    memcpy(s.src + 8, &iid, 8); /* the bytes the key's second word holds */
    memcpy(s.dst, guest, 16);
    s.sport = port;
    s.dport = 443;
    return s;
}

static struct flow_key client6_key(const struct flow_key *template, uint64_t iid)
{
    struct flow_key k = *template;
    memcpy(k.addr[0] + 8, &iid, 8);
    return k;
}

/* Checks that a key made by patching the template is what the parser gives for its frame. */
static void check_as_parsed(const struct flow_key *k, uint64_t iid, uint16_t port)
{
    struct frame_spec s = client6(iid, port);
    struct flow_key parsed = parsed_key(&s);
    if (memcmp(&parsed, k, sizeof(*k)) != 0) {
        fprintf(stderr, "hash_flood: a crafted key is not what the parser makes of its frame\n");
        exit(1);
    }
}

static void random_set(struct flow_key *out, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        uint64_t iid = rng();
        uint16_t port = (uint16_t)(1024 + rng() % 60000);
        struct frame_spec s = client6(iid, port);
        out[i] = parsed_key(&s);
    }
}

/* Keys with one and the same old hash: each client port's template, its interface ID solved for. */
static void old_hash_set(struct flow_key *out, uint32_t n)
{
    const uint32_t target = 0x5eed0000u;
    for (uint32_t i = 0; i < n; i++) {
        uint16_t port = (uint16_t)(1024 + i % 60000);
        struct frame_spec s = client6(0, port);
        struct flow_key k = parsed_key(&s);
        uint64_t w[KEY_WORDS];
        memcpy(w, &k, sizeof(w));
        uint64_t h = old_state_folding_to(target, (uint32_t)(i / 60000) << 16 | (uint32_t)(rng() & 0xffff));
        for (unsigned j = KEY_WORDS - 1; j > 1; j--)
            h = old_unstep(h, w[j]);
        uint64_t iid = old_unstep(h, 0) ^ old_step(OLD_IV, w[0]);
        out[i] = client6_key(&k, iid);
        if (old_hash(&out[i]) != target) {
            fprintf(stderr, "hash_flood: crafting against the old hash failed\n");
            exit(1);
        }
        if (i < 16)
            check_as_parsed(&out[i], iid, port);
    }
}

/* Keys whose hash under the known key has zeros in its low bits: one home slot in any table up to 4096 slots. */
static void known_key_set(const struct conn_table *t, struct flow_key *out, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        uint16_t port = (uint16_t)(1024 + i % 60000);
        struct frame_spec s = client6(0, port);
        struct flow_key template = parsed_key(&s);
        uint64_t iid;
        do {
            iid = rng();
            out[i] = client6_key(&template, iid);
        } while (conn_hash(t, &out[i]) & KNOWN_HOME_BITS);
        if (i < 16)
            check_as_parsed(&out[i], iid, port);
    }
}

static void bystander_set(struct flow_key *out, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        struct frame_spec s = frame_guest_tcp(1, 0, TCPF_SYN, NULL, 0);
        uint32_t a = (uint32_t)rng();
        s.dst[0] = 10;
        s.dst[1] = (uint8_t)(a >> 16);
        s.dst[2] = (uint8_t)(a >> 8);
        s.dst[3] = (uint8_t)a;
        s.dport = (uint16_t)(1024 + rng() % 60000);
        out[i] = parsed_key(&s);
    }
}

/* ---- timing ---- */

static struct conn_table *table_with_known_key(uint32_t conns)
{
    struct conn_timeouts to;
    conn_timeouts_default(&to);
    struct conn_table *t = conn_table_create(conns, &to, NULL, NULL, NULL);
    if (!t || !conn_table_set_hash_key(t, known_key)) {
        fprintf(stderr, "hash_flood: cannot allocate a table of %u connections\n", conns);
        exit(1);
    }
    return t;
}

static double time_inserts(struct conn_table *t, const struct flow_key *keys, uint32_t n, uint32_t now,
                           uint32_t *refused)
{
    *refused = 0;
    double t0 = now_s();
    for (uint32_t i = 0; i < n; i++) {
        if (!conn_lookup_or_create(t, &keys[i], conn_hash(t, &keys[i]), now))
            (*refused)++;
    }
    return (now_s() - t0) * 1e9 / n;
}

static volatile uint64_t found_sink; /* so the lookups are not optimised away */

/* Looks every key up, round after round, for at least MIN_TIMED_S; ns per lookup. */
static double time_lookups(struct conn_table *t, const struct flow_key *keys, uint32_t n)
{
    uint64_t done = 0, found = 0;
    double t0 = now_s(), t1;
    do {
        for (uint32_t i = 0; i < n; i++)
            found += conn_lookup(t, &keys[i], conn_hash(t, &keys[i])) != NULL;
        done += n;
        t1 = now_s();
    } while (t1 - t0 < MIN_TIMED_S);
    found_sink = found;
    return (t1 - t0) * 1e9 / (double)done;
}

/* Closes every connection of the set that went in, and expires them: the table holds the bystanders again. */
static void remove_set(struct conn_table *t, const struct flow_key *set, uint32_t n, uint32_t *now,
                       uint32_t in_use_before)
{
    struct conn_timeouts to;
    conn_timeouts_default(&to);
    for (uint32_t i = 0; i < n; i++) {
        struct conn *c = conn_lookup(t, &set[i], conn_hash(t, &set[i]));
        if (c)
            conn_observe_tcp(t, c, TCPF_RST, true, *now);
    }
    *now += to.closed_s;
    conn_table_expire(t, *now, UINT32_MAX);
    (*now)++;
    if (conn_table_stats(t)->in_use != in_use_before) {
        fprintf(stderr, "hash_flood: the set did not leave the table\n");
        exit(1);
    }
}

/* The set goes in, is looked up, the bystanders are looked up, and the set leaves again. */
static struct figures measure_set(struct conn_table *t, const struct flow_key *set, uint32_t ntuples,
                                  const struct flow_key *bystanders, uint32_t nbystanders, uint32_t *now)
{
    struct figures f;
    uint32_t in_use_before = conn_table_stats(t)->in_use;
    f.insert_ns = time_inserts(t, set, ntuples, *now, &f.refused);
    f.lookup_ns = time_lookups(t, set, ntuples);
    f.bystander_ns = time_lookups(t, bystanders, nbystanders < BYSTANDER_SAMPLE ? nbystanders : BYSTANDER_SAMPLE);
    remove_set(t, set, ntuples, now, in_use_before);
    return f;
}

static double fastest(double a, double b)
{
    return a < b ? a : b;
}

static void run_size(uint32_t conns, uint32_t tuples_opt)
{
    uint32_t nbystanders = conns / 2, now = 1;
    uint32_t most = tuples_opt ? tuples_opt : MAX_SET;
    uint32_t ntuples = conns / 4 < most ? conns / 4 : most; /* the bystanders and the set fit: no eviction */
    if (!ntuples) {
        fprintf(stderr, "colo-proxy hash_flood: a table of %u connections is too small; give 4 or more\n", conns);
        exit(2);
    }
    struct conn_table *t = table_with_known_key(conns);
    struct flow_key *bystanders = calloc(nbystanders ? nbystanders : 1, sizeof(*bystanders));
    struct flow_key *sets[SET_COUNT];
    for (int s = 0; s < SET_COUNT; s++)
        sets[s] = calloc(ntuples, sizeof(struct flow_key));
    if (!bystanders || !sets[0] || !sets[1] || !sets[2])
        exit(1);
    bystander_set(bystanders, nbystanders);
    random_set(sets[SET_RANDOM], ntuples);
    old_hash_set(sets[SET_OLD_HASH], ntuples);
    known_key_set(t, sets[SET_KNOWN_KEY], ntuples);
    for (uint32_t i = 0; i < nbystanders; i++) {
        struct conn *c = conn_lookup_or_create(t, &bystanders[i], conn_hash(t, &bystanders[i]), now);
        if (c)
            conn_observe_tcp(t, c, TCPF_ACK, true, now); /* established: they stay while the sets come and go */
    }
    struct figures f[SET_COUNT];
    for (int r = 0; r < REPEATS; r++) {
        for (int s = 0; s < SET_COUNT; s++) {
            struct figures m = measure_set(t, sets[s], ntuples, bystanders, nbystanders, &now);
            if (r == 0) {
                f[s] = m;
                continue;
            }
            f[s].insert_ns = fastest(f[s].insert_ns, m.insert_ns);
            f[s].lookup_ns = fastest(f[s].lookup_ns, m.lookup_ns);
            f[s].bystander_ns = fastest(f[s].bystander_ns, m.bystander_ns);
        }
    }
    for (int s = 0; s < SET_COUNT; s++)
        printf("%-9u %-10s %7u %8u %10.1f %10.1f %13.1f %7.2f %7.2f %10.2f\n", conns, set_names[s], ntuples,
               f[s].refused, f[s].insert_ns, f[s].lookup_ns, f[s].bystander_ns, f[s].insert_ns / f[0].insert_ns,
               f[s].lookup_ns / f[0].lookup_ns, f[s].bystander_ns / f[0].bystander_ns);
    fflush(stdout);
    for (int s = 0; s < SET_COUNT; s++)
        free(sets[s]);
    free(bystanders);
    conn_table_destroy(t);
}

static uint32_t parse_count(const char *what, const char *s)
{
    char *end;
    unsigned long v = strtoul(s, &end, 10);
    if (*s < '0' || *s > '9' || *end || v < 1 || v > (1ul << 30)) {
        fprintf(stderr, "colo-proxy hash_flood: %s '%s' is not a whole number from 1 to 2^30\n", what, s);
        exit(2);
    }
    return (uint32_t)v;
}

int main(int argc, char **argv)
{
    uint32_t tuples = 0, sizes[16], nsizes = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--tuples") == 0 && i + 1 < argc)
            tuples = parse_count("--tuples", argv[++i]);
        else if (nsizes < 16)
            sizes[nsizes++] = parse_count("connections", argv[i]);
    }
    if (!nsizes) {
        sizes[nsizes++] = 1000;
        sizes[nsizes++] = 65536;
        sizes[nsizes++] = 1000000;
    }
    printf("hash flood: half-full tables, each set in turn in and out again; CPU ns per operation, keyed hash "
           "included, fastest of %d; ratios are the set's over the random set's (insert, lookup, bystander lookup)\n",
           REPEATS);
    printf("%-9s %-10s %7s %8s %10s %10s %13s %7s %7s %10s\n", "conns", "set", "tuples", "refused", "insert_ns",
           "lookup_ns", "bystander_ns", "ins_x", "look_x", "bystand_x");
    for (uint32_t i = 0; i < nsizes; i++)
        run_size(sizes[i], tuples);
    return 0;
}
