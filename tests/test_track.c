/*
 * test_track.c — the connection table: lookup, states, expiry, bounds, 1M entries,
 * the keyed hash and the probe limit under colliding keys.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "colo/tcp_track.h"

static struct flow_key key_for(uint32_t n)
{
    struct flow_key k;
    memset(&k, 0, sizeof(k));
    k.family = FAMILY_IPV4;
    k.proto = 6;
    k.addr[0][10] = k.addr[0][11] = 0xff;
    k.addr[0][12] = 10;
    k.addr[0][15] = 1;
    k.addr[1][10] = k.addr[1][11] = 0xff;
    k.addr[1][12] = 10;
    k.addr[1][13] = (uint8_t)(n >> 16);
    k.addr[1][14] = (uint8_t)(n >> 8);
    k.addr[1][15] = (uint8_t)n;
    k.port[0] = 80;
    k.port[1] = (uint16_t)(1024 + n % 50000);
    return k;
}

static int evictions;

static void count_evict(void *ctx, struct conn *c)
{
    (void)ctx;
    (void)c;
    evictions++;
}

static bool holds_packets(const struct conn *c)
{
    return c->stream.pvm_count != 0;
}

static struct conn_table *table(uint32_t n)
{
    struct conn_timeouts t;
    conn_timeouts_default(&t);
    evictions = 0;
    return conn_table_create(n, &t, holds_packets, count_evict, NULL);
}

static struct conn *add(struct conn_table *t, uint32_t n, uint32_t now)
{
    struct flow_key k = key_for(n);
    return conn_lookup_or_create(t, &k, conn_hash(t, &k), now);
}

static void test_lookup_finds_what_was_created(void **state)
{
    (void)state;
    struct conn_table *t = table(128);
    struct conn *a = add(t, 1, 100), *b = add(t, 2, 100);
    assert_non_null(a);
    assert_non_null(b);
    assert_ptr_not_equal(a, b);
    assert_ptr_equal(add(t, 1, 101), a);
    struct flow_key k = key_for(3);
    assert_null(conn_lookup(t, &k, conn_hash(t, &k)));
    assert_int_equal(conn_table_stats(t)->in_use, 2);
    conn_table_destroy(t);
}

static void test_vlan_is_part_of_the_key(void **state)
{
    (void)state;
    struct conn_table *t = table(16);
    struct flow_key k = key_for(1), k2 = k;
    k2.vlan = 10;
    struct conn *a = conn_lookup_or_create(t, &k, conn_hash(t, &k), 1);
    struct conn *b = conn_lookup_or_create(t, &k2, conn_hash(t, &k2), 1);
    assert_ptr_not_equal(a, b);
    conn_table_destroy(t);
}

static void test_tcp_state_transitions(void **state)
{
    (void)state;
    struct conn_table *t = table(16);
    struct conn *c = add(t, 1, 10);
    assert_int_equal(c->state, CONN_MIDSTREAM);
    conn_observe_tcp(t, c, TCPF_SYN | TCPF_ACK, true, 10);
    assert_int_equal(c->state, CONN_HANDSHAKE);
    conn_observe_tcp(t, c, TCPF_ACK, false, 10);
    assert_int_equal(c->state, CONN_ESTABLISHED);
    conn_observe_tcp(t, c, TCPF_FIN | TCPF_ACK, true, 11);
    assert_int_equal(c->state, CONN_CLOSING);
    conn_observe_tcp(t, c, TCPF_FIN | TCPF_ACK, false, 11);
    assert_int_equal(c->state, CONN_CLOSED);
    struct conn *d = add(t, 2, 12);
    conn_observe_tcp(t, d, TCPF_RST, true, 12);
    assert_int_equal(d->state, CONN_CLOSED);
    assert_string_equal(conn_state_name(CONN_CLOSED), "closed");
    conn_table_destroy(t);
}

static void test_closed_expire_before_established(void **state)
{
    (void)state;
    struct conn_table *t = table(16);
    struct conn *open = add(t, 1, 100);
    conn_observe_tcp(t, open, TCPF_ACK, true, 100);
    struct conn *closed = add(t, 2, 100);
    conn_observe_tcp(t, closed, TCPF_RST, true, 100);
    conn_table_expire(t, 109, 1000);
    assert_int_equal(conn_table_stats(t)->expired, 0);
    conn_table_expire(t, 110, 1000);
    assert_int_equal(conn_table_stats(t)->expired, 1);
    struct flow_key k = key_for(1);
    assert_non_null(conn_lookup(t, &k, conn_hash(t, &k)));
    conn_table_expire(t, 100 + 3599, 100000);
    assert_int_equal(conn_table_stats(t)->expired, 1);
    conn_table_expire(t, 100 + 3600, 100000);
    assert_int_equal(conn_table_stats(t)->expired, 2);
    assert_int_equal(evictions, 2);
    conn_table_destroy(t);
}

static void test_activity_postpones_expiry(void **state)
{
    (void)state;
    struct conn_table *t = table(16);
    struct conn *c = add(t, 1, 0);
    conn_observe_tcp(t, c, TCPF_ACK, true, 0);
    conn_observe_tcp(t, c, TCPF_ACK, true, 3000);
    conn_table_expire(t, 3600, 100000);
    assert_int_equal(conn_table_stats(t)->expired, 0);
    conn_table_expire(t, 6600, 100000);
    assert_int_equal(conn_table_stats(t)->expired, 1);
    conn_table_destroy(t);
}

static void test_connection_holding_packets_never_expires(void **state)
{
    (void)state;
    struct conn_table *t = table(16);
    struct conn *c = add(t, 1, 0);
    conn_observe_tcp(t, c, TCPF_RST, true, 0);
    c->stream.pvm_count = 1;
    conn_table_expire(t, 100000, 100000);
    assert_int_equal(conn_table_stats(t)->expired, 0);
    c->stream.pvm_count = 0;
    conn_table_expire(t, 100001, 100000);
    assert_int_equal(conn_table_stats(t)->expired, 1);
    conn_table_destroy(t);
}

static void test_full_table_evicts_closed_first_never_busy(void **state)
{
    (void)state;
    struct conn_table *t = table(4);
    struct conn *c[4];
    for (uint32_t i = 0; i < 4; i++) {
        c[i] = add(t, i, 50);
        conn_observe_tcp(t, c[i], TCPF_ACK, true, 50);
        c[i]->stream.pvm_count = 1;
    }
    assert_null(add(t, 99, 51)); /* every entry holds packets: no room, no wipe */
    assert_int_equal(conn_table_stats(t)->create_failed, 1);
    assert_int_equal(conn_table_stats(t)->in_use, 4);
    c[2]->stream.pvm_count = 0;
    c[3]->stream.pvm_count = 0;
    conn_observe_tcp(t, c[3], TCPF_RST, true, 51);
    assert_non_null(add(t, 100, 52));
    struct flow_key k3 = key_for(3), k2 = key_for(2);
    assert_null(conn_lookup(t, &k3, conn_hash(t, &k3)));   /* the closed one went */
    assert_non_null(conn_lookup(t, &k2, conn_hash(t, &k2)));
    assert_int_equal(conn_table_stats(t)->evicted, 1);
    assert_int_equal(conn_table_stats(t)->in_use_max, 4); /* an eviction makes room: never 5 at once */
    conn_table_destroy(t);
}

static void test_removal_keeps_every_other_entry_findable(void **state)
{
    (void)state;
    const uint32_t n = 512;
    struct conn_table *t = table(n);
    for (uint32_t i = 0; i < n; i++) {
        struct conn *c = add(t, i, 100);
        /* Every third connection closes, so expiry removes it from the middle of probe runs. */
        conn_observe_tcp(t, c, i % 3 == 0 ? TCPF_RST : TCPF_ACK, true, 100);
    }
    conn_table_expire(t, 110, 100000);
    assert_int_equal(conn_table_stats(t)->expired, (n + 2) / 3);
    for (uint32_t i = 0; i < n; i++) {
        struct flow_key k = key_for(i);
        struct conn *c = conn_lookup(t, &k, conn_hash(t, &k));
        if (i % 3 == 0) {
            assert_null(c);
        } else {
            assert_non_null(c);
            assert_memory_equal(&c->key, &k, sizeof(k));
        }
    }
    for (uint32_t i = 0; i < n; i += 3) /* the freed entries are reusable */
        assert_non_null(add(t, n + i, 111));
    assert_int_equal(conn_table_stats(t)->in_use, n);
    conn_table_destroy(t);
}

static const uint64_t known_hash_key[2] = { 0x0706050403020100ull, 0x0f0e0d0c0b0a0908ull };

/* Low bits of the hash every crafted key shares: the same home slot in any table of up to 4096 slots. */
#define HOME_BITS 0xfffu

/*
 * Keys key_for(n), n = *next, *next + 1, ..., whose hash under the table's key
 * has `home` in its low bits: what an attacker who knows the key would send.
 */
static uint32_t craft_colliding(struct conn_table *t, uint32_t home, uint32_t *next, uint32_t count,
                                uint32_t *out)
{
    uint32_t found = 0;
    for (uint32_t n = *next; found < count && n < *next + (1u << 24); n++) {
        struct flow_key k = key_for(n);
        if ((conn_hash(t, &k) & HOME_BITS) == home)
            out[found++] = n;
    }
    *next = found ? out[found - 1] + 1 : *next;
    return found;
}

static void test_hash_is_siphash_1_3_under_the_table_key(void **state)
{
    (void)state;
    struct conn_table *t = table(16);
    assert_true(conn_table_set_hash_key(t, known_hash_key));
    /* The key's words are those of the bytes 00..2f read little-endian, on any host. */
    uint64_t w[sizeof(struct flow_key) / 8] = { 0 };
    for (unsigned i = 0; i < sizeof(w); i++)
        w[i / 8] |= (uint64_t)i << (8 * (i % 8));
    struct flow_key k;
    memcpy(&k, w, sizeof(k));
    /* SipHash-1-3, key 00..0f, message 00..2f: 0x9f3143f8df074c46, folded to 32 bits. */
    assert_int_equal(conn_hash(t, &k), 0x40360fbeu);
    conn_table_destroy(t);
}

static void test_ipv4_key_hashes_its_addresses_ports_and_rest(void **state)
{
    (void)state;
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    struct conn_table *t = table(16);
    assert_true(conn_table_set_hash_key(t, known_hash_key));
    struct flow_key k;
    memset(&k, 0, sizeof(k));
    k.family = FAMILY_IPV4;
    k.proto = 6;
    k.ethertype = 0x0800;
    const uint8_t a[2][4] = { { 10, 0, 0, 1 }, { 10, 0, 0, 2 } };
    for (int i = 0; i < 2; i++) {
        k.addr[i][10] = k.addr[i][11] = 0xff;
        memcpy(&k.addr[i][12], a[i], 4);
    }
    k.port[0] = 80;
    k.port[1] = 40000;
    /* SipHash-1-3, key 00..0f, of the 24 bytes 0a000001 0a000002, ports and VLANs, then the rest: 0x29254b1d521fa177. */
    assert_int_equal(conn_hash(t, &k), 0x7b3aea6au);
    conn_table_destroy(t);
#else
    skip(); /* the expected value is for little-endian hosts, where ports are stored as in the message */
#endif
}

static void key_hashes(struct conn_table *t, uint32_t *h, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        struct flow_key k = key_for(i);
        h[i] = conn_hash(t, &k);
    }
}

static void test_tables_and_processes_draw_their_own_hash_keys(void **state)
{
    (void)state;
    enum { N = 8 };
    uint32_t a[N], b[N], child[N];
    struct conn_table *t1 = table(16), *t2 = table(16);
    key_hashes(t1, a, N);
    key_hashes(t2, b, N);
    assert_memory_not_equal(a, b, sizeof(a)); /* equal by chance: 2^-256 */
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct conn_table *mine = table(16);
        uint32_t h[N];
        key_hashes(mine, h, N);
        _exit(write(fds[1], h, sizeof(h)) == (ssize_t)sizeof(h) ? 0 : 1);
    }
    close(fds[1]);
    assert_int_equal(read(fds[0], child, sizeof(child)), (ssize_t)sizeof(child));
    close(fds[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_memory_not_equal(a, child, sizeof(a));
    assert_memory_not_equal(b, child, sizeof(b));
    conn_table_destroy(t1);
    conn_table_destroy(t2);
}

static void test_known_key_refused_once_connections_exist(void **state)
{
    (void)state;
    struct conn_table *t = table(16);
    assert_non_null(add(t, 1, 1));
    assert_false(conn_table_set_hash_key(t, known_hash_key));
    conn_table_destroy(t);
}

static void test_probe_limit_turns_colliding_keys_away_like_a_full_table(void **state)
{
    (void)state;
    const uint32_t extra = 8, n = CONN_PROBE_LIMIT + extra;
    struct conn_table *t = table(1024); /* 4096 slots at most, so HOME_BITS is the home slot */
    assert_true(conn_table_set_hash_key(t, known_hash_key));
    uint32_t keys[CONN_PROBE_LIMIT + 8], next = 0;
    assert_int_equal(craft_colliding(t, 77, &next, n, keys), n);
    for (uint32_t i = 0; i < n; i++) {
        struct conn *c = add(t, keys[i], 1);
        if (i < CONN_PROBE_LIMIT)
            assert_non_null(c);
        else
            assert_null(c); /* the table is far from full: only this key's probe window is */
    }
    const struct conn_table_stats *st = conn_table_stats(t);
    assert_int_equal(st->in_use, CONN_PROBE_LIMIT);
    assert_int_equal(st->probe_full, extra);
    assert_int_equal(st->create_failed, extra);
    assert_int_equal(st->evicted, 0); /* no bystander pays for it */
    for (uint32_t i = 0; i < n; i++) {
        struct flow_key k = key_for(keys[i]);
        struct conn *c = conn_lookup(t, &k, conn_hash(t, &k));
        if (i < CONN_PROBE_LIMIT) {
            assert_non_null(c);
            assert_memory_equal(&c->key, &k, sizeof(k));
        } else {
            assert_null(c);
        }
    }
    uint32_t elsewhere;
    assert_int_equal(craft_colliding(t, 2000, &next, 1, &elsewhere), 1);
    assert_non_null(add(t, elsewhere, 1)); /* a key with another home still gets in */
    conn_table_destroy(t);
}

static void test_removal_under_the_probe_limit_keeps_every_entry_findable(void **state)
{
    (void)state;
    struct conn_table *t = table(1024);
    assert_true(conn_table_set_hash_key(t, known_hash_key));
    /* Two homes a few slots apart: their runs merge, so removals shift entries of both. */
    uint32_t a[CONN_PROBE_LIMIT], b[8], next = 0;
    assert_int_equal(craft_colliding(t, 200, &next, CONN_PROBE_LIMIT, a), CONN_PROBE_LIMIT);
    assert_int_equal(craft_colliding(t, 203, &next, 8, b), 8);
    uint64_t closed = 0;
    for (uint32_t i = 0; i < CONN_PROBE_LIMIT; i++) {
        struct conn *c = add(t, a[i], 100);
        assert_non_null(c);
        conn_observe_tcp(t, c, i % 3 == 1 ? TCPF_RST : TCPF_ACK, true, 100); /* every third one closes */
        closed += i % 3 == 1;
    }
    for (uint32_t i = 0; i < 8; i++) /* home 203 is inside home 200's full run: 3 slots short of the limit */
        assert_true((add(t, b[i], 100) != NULL) == (i < 3));
    conn_table_expire(t, 110, 100000); /* the closed ones leave from the middle of the run */
    assert_int_equal(conn_table_stats(t)->expired, closed);
    for (uint32_t i = 0; i < CONN_PROBE_LIMIT; i++) {
        struct flow_key k = key_for(a[i]);
        struct conn *c = conn_lookup(t, &k, conn_hash(t, &k));
        assert_true((c != NULL) == (i % 3 != 1));
        if (c)
            assert_memory_equal(&c->key, &k, sizeof(k));
    }
    for (uint32_t i = 0; i < 3; i++) {
        struct flow_key k = key_for(b[i]);
        assert_non_null(conn_lookup(t, &k, conn_hash(t, &k)));
    }
    for (uint32_t i = 3; i < 8; i++) /* the room made lets the turned-away keys in, up to the limit */
        assert_non_null(add(t, b[i], 111));
    conn_table_destroy(t);
}

static void test_one_million_concurrent_connections(void **state)
{
    (void)state;
    const uint32_t n = 1000000;
    struct conn_table *t = table(n);
    assert_non_null(t);
    for (uint32_t i = 0; i < n; i++)
        assert_non_null(add(t, i, 1));
    assert_int_equal(conn_table_stats(t)->in_use, n);
    assert_int_equal(conn_table_stats(t)->evicted, 0);
    assert_int_equal(conn_table_stats(t)->probe_full, 0); /* random keys at load <= 1/4 never fill a window */
    for (uint32_t i = 0; i < n; i += 997) {
        struct flow_key k = key_for(i);
        struct conn *c = conn_lookup(t, &k, conn_hash(t, &k));
        assert_non_null(c);
        assert_memory_equal(&c->key, &k, sizeof(k));
    }
    double bpc = conn_table_bytes_per_conn(t);
    print_message("connection table: %u connections, %.1f bytes per connection (struct conn %zu)\n", n,
           bpc, sizeof(struct conn));
    assert_true(bpc <= 256.0);
    conn_table_destroy(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lookup_finds_what_was_created),
        cmocka_unit_test(test_vlan_is_part_of_the_key),
        cmocka_unit_test(test_tcp_state_transitions),
        cmocka_unit_test(test_closed_expire_before_established),
        cmocka_unit_test(test_activity_postpones_expiry),
        cmocka_unit_test(test_connection_holding_packets_never_expires),
        cmocka_unit_test(test_full_table_evicts_closed_first_never_busy),
        cmocka_unit_test(test_removal_keeps_every_other_entry_findable),
        cmocka_unit_test(test_hash_is_siphash_1_3_under_the_table_key),
        cmocka_unit_test(test_ipv4_key_hashes_its_addresses_ports_and_rest),
        cmocka_unit_test(test_tables_and_processes_draw_their_own_hash_keys),
        cmocka_unit_test(test_known_key_refused_once_connections_exist),
        cmocka_unit_test(test_probe_limit_turns_colliding_keys_away_like_a_full_table),
        cmocka_unit_test(test_removal_under_the_probe_limit_keeps_every_entry_findable),
        cmocka_unit_test(test_one_million_concurrent_connections),
    };
    return cmocka_run_group_tests_name("track", tests, NULL, NULL);
}
