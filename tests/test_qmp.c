/*
 * test_qmp.c — the QMP stream parser on QEMU's real message shapes, split
 * every way, with escapes and UTF-8, and on malformed streams.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "colo/qmp_parser.h"

#define MAX_MSGS 16

struct got {
    int n;
    struct qmp_message m[MAX_MSGS];
};

static void keep(void *ctx, const struct qmp_message *m)
{
    struct got *g = ctx;
    assert_true(g->n < MAX_MSGS);
    g->m[g->n++] = *m;
}

static const char stream[] =
    "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 22, \"minor\": 2, \"major\": 7}, "
    "\"package\": \"Debian 1:7.2+dfsg-7+deb12u12\"}, \"capabilities\": [\"oob\"]}}\r\n"
    "{\"return\": {}, \"id\": 1}\r\n"
    "{\"timestamp\": {\"seconds\": 1700000000, \"microseconds\": 123456}, \"event\": \"STOP\"}\r\n"
    "{\"return\": {\"status\": \"colo\", \"total-time\": 1234, \"ram\": {\"total\": 1, \"transferred\": 2}}, \"id\": \"q-7\"}"
    "{\"event\": \"RESUME\", \"timestamp\": {\"seconds\": 1700000000, \"microseconds\": 223456}}"
    "{\"error\": {\"class\": \"GenericError\", \"desc\": \"caf\\u00e9 \\ud83d\\ude00 \\\"q\\\" \\\\ \\n\"}, \"id\": 5}\n"
    "{\"event\": \"COLO_EXIT\", \"data\": {\"mode\": \"primary\", \"reason\": \"error\"}, "
    "\"timestamp\": {\"seconds\": -1, \"microseconds\": 0.5e3}}\n"
    "{\"return\": {\"mode\": \"primary\", \"last-mode\": \"none\", \"reason\": \"none\"}, \"id\": 9, "
    "\"ok\": true, \"nothing\": null, \"raw\": \"\xc3\xa9t\xc3\xa9\"}";

static void check_messages(const struct got *g)
{
    assert_int_equal(g->n, 8);
    assert_int_equal(qmp_message_kind(&g->m[0]), QMP_GREETING);
    assert_int_equal(qmp_message_kind(&g->m[1]), QMP_RETURN);
    assert_string_equal(qmp_get(&g->m[1], "id"), "1");
    assert_int_equal(qmp_message_kind(&g->m[2]), QMP_EVENT);
    assert_string_equal(qmp_get(&g->m[2], "event"), "STOP");
    assert_string_equal(qmp_get(&g->m[2], "timestamp.seconds"), "1700000000");
    assert_string_equal(qmp_get(&g->m[3], "return.status"), "colo");
    assert_string_equal(qmp_get(&g->m[3], "id"), "q-7");
    assert_null(qmp_get(&g->m[3], "return.ram")); /* deeper than two levels: skipped */
    assert_string_equal(qmp_get(&g->m[4], "event"), "RESUME");
    assert_int_equal(qmp_message_kind(&g->m[5]), QMP_ERROR);
    assert_string_equal(qmp_get(&g->m[5], "error.class"), "GenericError");
    assert_string_equal(qmp_get(&g->m[5], "error.desc"), "caf\xc3\xa9 \xf0\x9f\x98\x80 \"q\" \\ \n");
    assert_string_equal(qmp_get(&g->m[6], "event"), "COLO_EXIT");
    assert_string_equal(qmp_get(&g->m[6], "data.reason"), "error");
    assert_string_equal(qmp_get(&g->m[6], "timestamp.microseconds"), "0.5e3");
    assert_string_equal(qmp_get(&g->m[7], "return.mode"), "primary");
    assert_string_equal(qmp_get(&g->m[7], "ok"), "true");
    assert_string_equal(qmp_get(&g->m[7], "nothing"), "null");
    assert_string_equal(qmp_get(&g->m[7], "raw"), "\xc3\xa9t\xc3\xa9");
}

static void test_whole_stream_in_one_read(void **state)
{
    (void)state;
    struct qmp_parser p;
    qmp_parser_init(&p);
    struct got g = { 0 };
    assert_int_equal(qmp_parser_feed(&p, stream, strlen(stream), keep, &g), 0);
    check_messages(&g);
}

static void test_every_split_point(void **state)
{
    (void)state;
    size_t n = strlen(stream);
    for (size_t chunk = 1; chunk <= 64; chunk++) {
        struct qmp_parser p;
        qmp_parser_init(&p);
        struct got g = { 0 };
        for (size_t off = 0; off < n; off += chunk)
            assert_int_equal(qmp_parser_feed(&p, stream + off, n - off < chunk ? n - off : chunk, keep, &g), 0);
        check_messages(&g);
    }
}

static void test_malformed_input_resets_and_recovers(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "{\"a\": ]", "[1, 2]", "42", "{\"a\": tru}", "{\"a\": \"\\x\"}", "}", "{\"a\" \x01}",
    };
    for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct qmp_parser p;
        qmp_parser_init(&p);
        struct got g = { 0 };
        assert_int_equal(qmp_parser_feed(&p, bad[i], strlen(bad[i]), keep, &g), -1);
        const char ok[] = "{\"event\": \"STOP\"}";
        assert_int_equal(qmp_parser_feed(&p, ok, strlen(ok), keep, &g), 0);
        assert_int_equal(g.n, 1);
        assert_string_equal(qmp_get(&g.m[0], "event"), "STOP");
    }
}

static void test_nesting_and_size_are_bounded(void **state)
{
    (void)state;
    char deep[200];
    size_t k = 0;
    deep[k++] = '{';
    deep[k++] = '"';
    deep[k++] = 'a';
    deep[k++] = '"';
    deep[k++] = ':';
    for (int i = 0; i < 40; i++)
        deep[k++] = '[';
    struct qmp_parser p;
    qmp_parser_init(&p);
    struct got g = { 0 };
    assert_int_equal(qmp_parser_feed(&p, deep, k, keep, &g), -1);
    char *big = malloc(QMP_MAX_MESSAGE + 100);
    memset(big, ' ', QMP_MAX_MESSAGE + 100);
    memcpy(big, "{\"a\": \"", 7);
    memset(big + 7, 'x', QMP_MAX_MESSAGE);
    assert_int_equal(qmp_parser_feed(&p, big, QMP_MAX_MESSAGE + 100, keep, &g), -1);
    free(big);
    const char long_key[] = "{\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\": 1}";
    assert_int_equal(qmp_parser_feed(&p, long_key, strlen(long_key), keep, &g), 0);
    assert_int_equal(g.n, 1);
}

static void test_random_bytes_never_crash(void **state)
{
    (void)state;
    srand(11);
    struct qmp_parser p;
    qmp_parser_init(&p);
    struct got g = { 0 };
    char buf[512];
    for (int round = 0; round < 20000; round++) {
        size_t n = (size_t)rand() % sizeof(buf);
        for (size_t i = 0; i < n; i++)
            buf[i] = "{}[]\":,\\u0123456789abcdeftruefalsnl -.eE"[rand() % 41];
        g.n = 0;
        qmp_parser_feed(&p, buf, n, keep, &g);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_whole_stream_in_one_read),
        cmocka_unit_test(test_every_split_point),
        cmocka_unit_test(test_malformed_input_resets_and_recovers),
        cmocka_unit_test(test_nesting_and_size_are_bounded),
        cmocka_unit_test(test_random_bytes_never_crash),
    };
    return cmocka_run_group_tests_name("qmp", tests, NULL, NULL);
}
