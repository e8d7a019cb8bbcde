/*
 * test_track.c — the connection table: lookup, states, expiry, bounds, 1M entries.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    return conn_lookup_or_create(t, &k, flow_key_hash(&k), now);
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
    assert_null(conn_lookup(t, &k, flow_key_hash(&k)));
    assert_int_equal(conn_table_stats(t)->in_use, 2);
    conn_table_destroy(t);
}

static void test_vlan_is_part_of_the_key(void **state)
{
    (void)state;
    struct conn_table *t = table(16);
    struct flow_key k = key_for(1), k2 = k;
    k2.vlan = 10;
    struct conn *a = conn_lookup_or_create(t, &k, flow_key_hash(&k), 1);
    struct conn *b = conn_lookup_or_create(t, &k2, flow_key_hash(&k2), 1);
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
    assert_non_null(conn_lookup(t, &k, flow_key_hash(&k)));
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
    assert_null(conn_lookup(t, &k3, flow_key_hash(&k3)));   /* the closed one went */
    assert_non_null(conn_lookup(t, &k2, flow_key_hash(&k2)));
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
        struct conn *c = conn_lookup(t, &k, flow_key_hash(&k));
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
    for (uint32_t i = 0; i < n; i += 997) {
        struct flow_key k = key_for(i);
        struct conn *c = conn_lookup(t, &k, flow_key_hash(&k));
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
        cmocka_unit_test(test_one_million_concurrent_connections),
    };
    return cmocka_run_group_tests_name("track", tests, NULL, NULL);
}
