/*
 * test_operator.c — the pieces behind what operators see: latency quantiles,
 * the three renderings of a metric set, divergence hints and the report limit,
 * and the config file's translation into option words.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>

#include <cmocka.h>
#include <glib.h>

#include "colo/bypass.h"
#include "colo/cli.h"
#include "colo/config_file.h"
#include "colo/divergence_explain.h"
#include "colo/divergence_report.h"
#include "colo/latency_hist.h"
#include "colo/metrics.h"
#include "colo/pcap_port.h"

static void test_latency_quantiles_within_an_eighth(void **state)
{
    (void)state;
    static struct latency_hist h;
    memset(&h, 0, sizeof(h));
    for (uint64_t v = 1; v <= 100000; v++)
        latency_hist_record(&h, v * 1000); /* 1 us .. 100 ms, uniform */
    double want[] = { 0.5, 0.99, 0.999 };
    for (int i = 0; i < 3; i++) {
        double exact = want[i] * 100000 * 1000, got = (double)latency_hist_quantile(&h, want[i]);
        assert_true(got >= exact * 0.99 && got <= exact * 1.13);
    }
    assert_int_equal(latency_hist_quantile(&h, 1.0), 100000 * 1000);
    assert_int_equal(h.count, 100000);
}

static void test_latency_empty_and_huge_values(void **state)
{
    (void)state;
    static struct latency_hist h;
    memset(&h, 0, sizeof(h));
    assert_int_equal(latency_hist_quantile(&h, 0.5), 0);
    latency_hist_record(&h, 0);
    latency_hist_record(&h, UINT64_MAX / 2);
    assert_int_equal(latency_hist_quantile(&h, 0.5), 0);
    assert_int_equal(latency_hist_quantile(&h, 1.0), UINT64_MAX / 2);
}

static struct metric_set *sample_set(void)
{
    struct metric_set *m = metric_set_new();
    metric_info(m, "role", "What it is", "role", "compare");
    metric_counter(m, "checkpoint_requests", "Asked", "reason", "divergence", 3);
    metric_gauge(m, "held_packets", "Held now", NULL, NULL, 7);
    metric_counter(m, "checkpoint_requests", "Asked", "reason", "timeout", 1);
    metric_gauge(m, "port_link_up", "Up", "port", "we\"ird\\", 1);
    static struct latency_hist h;
    memset(&h, 0, sizeof(h));
    latency_hist_record(&h, 2000);
    metric_latency(m, "hold_latency_seconds", "Held for", &h);
    return m;
}

static void test_prometheus_groups_families_and_escapes(void **state)
{
    (void)state;
    struct metric_set *m = sample_set();
    char *t = metric_set_prometheus(m);
    assert_non_null(strstr(t, "# TYPE colo_proxy_checkpoint_requests_total counter\n"
                              "colo_proxy_checkpoint_requests_total{reason=\"divergence\"} 3\n"
                              "colo_proxy_checkpoint_requests_total{reason=\"timeout\"} 1\n"));
    assert_non_null(strstr(t, "colo_proxy_role{role=\"compare\"} 1\n"));
    assert_non_null(strstr(t, "colo_proxy_port_link_up{port=\"we\\\"ird\\\\\"} 1\n"));
    assert_non_null(strstr(t, "# TYPE colo_proxy_hold_latency_seconds summary\n"));
    assert_non_null(strstr(t, "colo_proxy_hold_latency_seconds_count 1\n"));
    assert_null(strstr(strstr(t, "timeout") , "checkpoint_requests_total{"));
    g_free(t);
    metric_set_free(m);
}

static void test_json_and_table_agree_with_prometheus(void **state)
{
    (void)state;
    struct metric_set *m = sample_set();
    char *j = metric_set_json(m), *t = metric_set_table(m);
    assert_non_null(strstr(j, "\"role\":\"compare\""));
    assert_non_null(strstr(j, "\"checkpoint_requests\":{\"divergence\":3,\"timeout\":1}"));
    assert_non_null(strstr(j, "\"held_packets\":7"));
    assert_non_null(strstr(j, "\"port_link_up\":{\"we\\\"ird\\\\\":1}"));
    assert_non_null(strstr(j, "\"hold_latency_seconds\":{\"p50_s\":"));
    assert_non_null(strstr(t, "checkpoint_requests              divergence 3, timeout 1\n"));
    assert_non_null(strstr(t, "role                             compare\n"));
    g_free(j);
    g_free(t);
    metric_set_free(m);
}

static const char *hint_for(const char *pvm, const char *svm)
{
    size_t at = 0;
    while (pvm[at] && pvm[at] == svm[at])
        at++;
    return divergence_hint(DIV_PAYLOAD, (const uint8_t *)pvm, strlen(pvm), at, (const uint8_t *)svm,
                           strlen(svm), at);
}

static void test_hint_http_date_header(void **state)
{
    (void)state;
    const char *h = hint_for("HTTP/1.0 200 OK\r\nDate: Thu, 03 Dec 2026 10:00:01 GMT\r\n",
                             "HTTP/1.0 200 OK\r\nDate: Thu, 03 Dec 2026 10:00:02 GMT\r\n");
    assert_non_null(h);
    assert_non_null(strstr(h, "Date:"));
}

static void test_hint_digits_are_a_number(void **state)
{
    (void)state;
    const char *h = hint_for("{\"id\": 1733220001, \"ok\": true}", "{\"id\": 1733220987, \"ok\": true}");
    assert_non_null(h);
    assert_non_null(strstr(h, "a number differs"));
}

static void test_hint_random_bytes(void **state)
{
    (void)state;
    const char pvm[] = "token=\x8f\x13\xa0\xfe\x01\x99\x42\xc3\xd4\x10\x77\x88\xe1\x02\x9a\xbb";
    const char svm[] = "token=\x11\xee\x05\x7c\xaa\x31\x90\x0d\x66\xf2\x13\x5e\x07\xc8\x4b\x2d";
    const char *h = divergence_hint(DIV_PAYLOAD, (const uint8_t *)pvm, sizeof(pvm) - 1, 6, (const uint8_t *)svm,
                                    sizeof(svm) - 1, 6);
    assert_non_null(h);
    assert_non_null(strstr(h, "random"));
}

static void test_hint_none_for_an_ordinary_text_change(void **state)
{
    (void)state;
    assert_null(hint_for("hello world, this is the primary speaking", "hello world, that is the primary speaking"));
}

static void test_hint_fin_and_rst_kinds(void **state)
{
    (void)state;
    assert_non_null(strstr(divergence_hint(DIV_RST, NULL, 0, 0, NULL, 0, 0), "reset"));
    assert_non_null(strstr(divergence_hint(DIV_FIN_VS_DATA, NULL, 0, 0, NULL, 0, 0), "ended the stream"));
}

static void test_limiter_counts_what_it_suppresses(void **state)
{
    (void)state;
    struct divergence_limiter l = { .per_minute = 3 };
    uint64_t t = 5000000000ull;
    int allowed = 0;
    for (int i = 0; i < 10; i++)
        allowed += divergence_limiter_allow(&l, t + (uint64_t)i);
    assert_int_equal(allowed, 3);
    assert_int_equal(l.suppressed, 7);
    assert_true(divergence_limiter_allow(&l, t + 61000000000ull)); /* a new minute */
}

static char *write_conf(const char *text)
{
    char *path = g_strdup("/tmp/colo-test-conf-XXXXXX");
    int fd = g_mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

static const struct option opts[] = {
    { "compare_timeout", required_argument, NULL, 1 },
    { "vnet_hdr_support", no_argument, NULL, 2 },
    { "vnet-hdr", optional_argument, NULL, 3 },
    { "help", no_argument, NULL, 4 },
    { NULL, 0, NULL, 0 },
};

static void test_config_keys_become_option_words_in_order(void **state)
{
    (void)state;
    char *path = write_conf("[compare]\ncompare_timeout = 250\nvnet_hdr_support = true\nvnet-hdr = 10\n"
                            "[other]\nwhatever = 1\n");
    char err[256];
    char **w = config_file_words(path, "compare", opts, NULL, err, sizeof(err));
    assert_non_null(w);
    assert_string_equal(w[0], "--compare_timeout=250");
    assert_string_equal(w[1], "--vnet_hdr_support");
    assert_string_equal(w[2], "--vnet-hdr=10");
    assert_null(w[3]);
    g_strfreev(w);
    unlink(path);
    g_free(path);
}

static void test_config_refuses_what_is_not_an_option(void **state)
{
    (void)state;
    static const char *const extra[] = { "eal", NULL };
    const struct { const char *text, *want; } cases[] = {
        { "[compare]\ncompare_timeot = 1\n", "did you mean 'compare_timeout'" },
        { "[compare]\nhelp = true\n", "unknown key 'help'" },
        { "[compare]\nvnet_hdr_support = perhaps\n", "write true or false" },
        { "[run]\neal = -l 1\n", "no [compare] group" },
        { "[compare]\ncompare_timeout = 1\\n2\n", "holds a control character" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *path = write_conf(cases[i].text);
        char err[256] = "";
        char **w = config_file_words(path, "compare", opts, extra, err, sizeof(err));
        assert_null(w);
        assert_non_null(strstr(err, cases[i].want));
        unlink(path);
        g_free(path);
    }
    char *path = write_conf("[compare]\neal = -l 1\nvnet_hdr_support = off\n");
    char err[256];
    char **w = config_file_words(path, "compare", opts, extra, err, sizeof(err));
    assert_non_null(w);
    assert_null(w[0]); /* eal is the caller's; a false flag (off, as QEMU writes it) is no word */
    g_strfreev(w);
    unlink(path);
    g_free(path);
}

static struct pkt_view view_v4(uint8_t proto, const char *guest, uint16_t gport, const char *peer, uint16_t pport,
                                bool swapped)
{
    struct pkt_view v;
    memset(&v, 0, sizeof(v));
    v.key.family = FAMILY_IPV4;
    v.key.proto = proto;
    v.dir_swapped = swapped;
    int g = swapped ? 1 : 0;
    assert_int_equal(inet_pton(AF_INET, guest, v.key.addr[g]), 1);
    assert_int_equal(inet_pton(AF_INET, peer, v.key.addr[1 - g]), 1);
    v.key.port[g] = gport;
    v.key.port[1 - g] = pport;
    return v;
}

static void test_bypass_matches_guest_and_peer_by_direction(void **state)
{
    (void)state;
    struct bypass_rules r = { .count = 0 };
    char err[256];
    assert_int_equal(bypass_rules_add(&r, "proto=udp,guest_port=123; proto=tcp,peer=10.1.0.0/16,guest_port=80",
                                      err, sizeof(err)), 0);
    assert_int_equal(r.count, 2);
    assert_string_equal(r.rule[1].text, "proto=tcp,peer=10.1.0.0/16,guest_port=80");
    for (int swapped = 0; swapped < 2; swapped++) {
        struct pkt_view ntp = view_v4(17, "192.168.0.5", 123, "10.9.9.9", 40000, swapped);
        struct pkt_view web = view_v4(6, "192.168.0.5", 80, "10.1.200.3", 50000, swapped);
        struct pkt_view web_far = view_v4(6, "192.168.0.5", 80, "10.2.0.3", 50000, swapped);
        struct pkt_view reversed = view_v4(6, "10.1.200.3", 50000, "192.168.0.5", 80, swapped);
        assert_int_equal(bypass_match(&r, &ntp), 0);
        assert_int_equal(bypass_match(&r, &web), 1);
        assert_int_equal(bypass_match(&r, &web_far), -1);
        assert_int_equal(bypass_match(&r, &reversed), -1); /* the guest is the sender, port 80 is not its */
    }
}

static void test_bypass_ipv6_prefix_and_errors(void **state)
{
    (void)state;
    struct bypass_rules r = { .count = 0 };
    char err[256];
    assert_int_equal(bypass_rules_add(&r, "guest=fd00:1::/32", err, sizeof(err)), 0);
    struct pkt_view v;
    memset(&v, 0, sizeof(v));
    v.key.family = FAMILY_IPV6;
    assert_int_equal(inet_pton(AF_INET6, "fd00:1:ffff::7", v.key.addr[0]), 1);
    assert_int_equal(bypass_match(&r, &v), 0);
    assert_int_equal(inet_pton(AF_INET6, "fd00:2::7", v.key.addr[0]), 1);
    assert_int_equal(bypass_match(&r, &v), -1);
    v.key.family = FAMILY_IPV4; /* an IPv6 rule never matches IPv4 */
    assert_int_equal(bypass_match(&r, &v), -1);
    const struct { const char *rule, *want; } bad[] = {
        { "proto=sctpx", "proto='sctpx' is not valid" },
        { "guest_port=70000", "guest_port='70000'" },
        { "peer=10.0.0.0/33", "peer='10.0.0.0/33'" },
        { "port=80", "bypass key 'port' is unknown" },
        { "tcp", "is not KEY=VALUE" },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct bypass_rules one = { .count = 0 };
        assert_int_equal(bypass_rules_add(&one, bad[i].rule, err, sizeof(err)), -1);
        assert_non_null(strstr(err, bad[i].want));
    }
}

static void test_unknown_options_get_the_nearest_one(void **state)
{
    (void)state;
    assert_string_equal(config_file_nearest_option("compare-timeout", opts, NULL), "compare_timeout");
    assert_string_equal(config_file_nearest_option("hlp", opts, NULL), "help");
    static const char *const skip[] = { "help", NULL };
    assert_null(config_file_nearest_option("hlp", opts, skip)); /* help is no config key */
    assert_null(config_file_nearest_option("frobnicate", opts, NULL));
}

static void test_flags_take_on_and_off(void **state)
{
    (void)state;
    const char *on[] = { "on", "true", "yes" }, *off[] = { "off", "false", "no" };
    for (int i = 0; i < 3; i++) {
        assert_int_equal(cli_on_off_value(on[i]), 1);
        assert_int_equal(cli_on_off_value(off[i]), 0);
    }
    assert_int_equal(cli_on_off_value("On"), -1);
    assert_int_equal(cli_on_off_value("1"), -1);
    bool v = false;
    assert_int_equal(cli_parse_on_off("vnet_hdr_support", NULL, &v), 0); /* given alone */
    assert_true(v);
    assert_int_equal(cli_parse_on_off("vnet_hdr_support", "off", &v), 0);
    assert_false(v);
    assert_int_equal(cli_parse_on_off("vnet_hdr_support", "maybe", &v), -1);
}

static void test_path_checks_name_the_option_and_the_fix(void **state)
{
    (void)state;
    char err[512];
    assert_int_equal(cli_check_path("control", "/nonexistent-colo/ctl", CLI_PATH_CREATE, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "--control '/nonexistent-colo/ctl': '/nonexistent-colo' does not exist"));
    assert_non_null(strstr(err, "mkdir -p '/nonexistent-colo'"));
    assert_int_equal(cli_check_path("reports", "/nonexistent-colo", CLI_PATH_DIR, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "--reports '/nonexistent-colo'"));
    assert_int_equal(cli_check_path("reports", "/etc/hostname", CLI_PATH_DIR, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "is no directory"));
    assert_int_equal(cli_check_path(NULL, "/nonexistent-colo.pcap", CLI_PATH_READ, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "'/nonexistent-colo.pcap': cannot read it: No such file"));
    assert_int_equal(cli_check_path("checkpoint-times", "/tmp", CLI_PATH_READ, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "it is a directory"));
    char *dir = g_dir_make_tmp("colo-path-XXXXXX", NULL);
    assert_non_null(dir);
    g_autofree char *sock = g_build_filename(dir, "ctl", NULL);
    assert_int_equal(cli_check_path("control", sock, CLI_PATH_CREATE, err, sizeof(err)), 0);
    assert_int_equal(cli_check_path("reports", dir, CLI_PATH_DIR, err, sizeof(err)), 0);
    rmdir(dir);
    g_free(dir);
}

static void test_vnet_headers_are_checked_against_the_frame(void **state)
{
    (void)state;
    uint8_t h[12] = { 0 };
    assert_true(vnet_hdr_plausible(h, 12, 60)); /* nothing asked: QEMU's usual header */
    h[0] = 1;                                   /* NEEDS_CSUM: start 34, offset 16 (TCP) */
    h[6] = 34;
    h[8] = 16;
    assert_true(vnet_hdr_plausible(h, 12, 60));
    assert_false(vnet_hdr_plausible(h, 12, 40)); /* the checksum would lie past the frame */
    h[1] = 1;                                    /* GSO TCPv4 needs a segment size */
    assert_false(vnet_hdr_plausible(h, 12, 60));
    h[4] = 0xa8, h[5] = 0x05;                    /* 1448, little-endian */
    assert_true(vnet_hdr_plausible(h, 12, 60));
    const uint8_t mac_first[12] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 0x52, 0x54, 0x00, 0xab, 0xcd, 0xef };
    assert_false(vnet_hdr_plausible(mac_first, 12, 60)); /* a capture without headers: a MAC is no flags byte */
    const uint8_t no_csum_but_position[10] = { 0, 0, 0, 0, 0, 0, 34, 0, 16, 0 };
    assert_false(vnet_hdr_plausible(no_csum_but_position, 10, 60));
    assert_true(vnet_hdr_plausible(mac_first, 4, 60)); /* too short to check */
}

static void test_differing_bytes_are_marked(void **state)
{
    (void)state;
    bool differs[4] = { true, false, false, true };
    char hex[13], text[5];
    divergence_marks(differs, 4, hex, text);
    assert_string_equal(hex, "^^       ^^ ");
    assert_string_equal(text, "^  ^");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_latency_quantiles_within_an_eighth),
        cmocka_unit_test(test_latency_empty_and_huge_values),
        cmocka_unit_test(test_prometheus_groups_families_and_escapes),
        cmocka_unit_test(test_json_and_table_agree_with_prometheus),
        cmocka_unit_test(test_hint_http_date_header),
        cmocka_unit_test(test_hint_digits_are_a_number),
        cmocka_unit_test(test_hint_random_bytes),
        cmocka_unit_test(test_hint_none_for_an_ordinary_text_change),
        cmocka_unit_test(test_hint_fin_and_rst_kinds),
        cmocka_unit_test(test_limiter_counts_what_it_suppresses),
        cmocka_unit_test(test_config_keys_become_option_words_in_order),
        cmocka_unit_test(test_config_refuses_what_is_not_an_option),
        cmocka_unit_test(test_bypass_matches_guest_and_peer_by_direction),
        cmocka_unit_test(test_bypass_ipv6_prefix_and_errors),
        cmocka_unit_test(test_unknown_options_get_the_nearest_one),
        cmocka_unit_test(test_flags_take_on_and_off),
        cmocka_unit_test(test_path_checks_name_the_option_and_the_fix),
        cmocka_unit_test(test_vnet_headers_are_checked_against_the_frame),
        cmocka_unit_test(test_differing_bytes_are_marked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
