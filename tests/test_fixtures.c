/*
 * test_fixtures.c — end-to-end replay of the real-traffic pairs in pcap_fixtures/.
 *
 * For every pair: every PVM frame is released exactly once; within each flow
 * the release order is the PVM's order; the released pcap holds the PVM's
 * frames byte for byte in release order; and the divergences and checkpoint
 * requests are exactly those the pair was built to contain.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "colo/pcap_port.h"
#include "colo/pkt_parse.h"
#include "colo/replay.h"

struct expectation {
    const char *name;
    uint64_t divergences;
    enum divergence_kind kind;
    uint64_t requests;
    enum checkpoint_reason reason;
    bool all_matched_or_uncompared; /* nothing needed a checkpoint */
};

static const struct expectation pairs[] = {
    { "http-identical", 0, 0, 0, 0, true },
    { "http-resegmented", 0, 0, 0, 0, true },
    { "http-payload-differs", 1, DIV_PAYLOAD, 1, CKPT_DIVERGENCE, false },
    { "http-fin-vs-rst", 1, DIV_RST, 1, CKPT_DIVERGENCE, false },
    { "vlan-identical", 0, 0, 0, 0, true },
    { "ipv6-identical", 0, 0, 0, 0, true },
    { "udp-burst", 0, 0, 0, 0, true },
    { "fragments", 0, 0, 0, 0, true },
    { "secondary-silent", 0, 0, 1, CKPT_TIMEOUT, false },
    { "many-connections", 0, 0, 0, 0, true },
};

static void fixture_paths(const char *name, char *pvm, char *svm, size_t n)
{
    snprintf(pvm, n, "%s/%s-pvm.pcap", FIXTURE_DIR, name);
    snprintf(svm, n, "%s/%s-svm.pcap", FIXTURE_DIR, name);
}

static uint64_t sum(const uint64_t *v, int n)
{
    uint64_t t = 0;
    for (int i = 0; i < n; i++)
        t += v[i];
    return t;
}

/* Every frame once; per flow, increasing PVM order. */
static void assert_release_order(const struct replay_result *res, const struct pcap_trace *pvm,
                                 uint32_t vnet)
{
    assert_int_equal(res->released, pvm->count);
    struct flow_key *keys = calloc(pvm->count + 1, sizeof(*keys));
    uint8_t *seen = calloc(pvm->count + 1, 1);
    for (size_t i = 0; i < pvm->count; i++) {
        struct pkt_view v;
        const struct pcap_record *r = &pvm->records[i];
        uint32_t skip = r->len < vnet ? r->len : vnet;
        pkt_parse(r->data + skip, r->len - skip, &v);
        keys[i] = v.key;
    }
    for (size_t k = 0; k < res->released; k++) {
        uint32_t idx = res->release_order[k];
        assert_true(idx < pvm->count);
        assert_false(seen[idx]);
        seen[idx] = 1;
        for (size_t j = k + 1; j < res->released; j++) {
            uint32_t later = res->release_order[j];
            if (memcmp(&keys[later], &keys[idx], sizeof(keys[idx])) == 0)
                assert_true(later > idx);
        }
    }
    free(keys);
    free(seen);
}

static void assert_output_is_release_order(const char *out, const struct replay_result *res,
                                           const struct pcap_trace *pvm)
{
    struct pcap_trace got;
    char err[256];
    assert_int_equal(pcap_trace_load(out, &got, err, sizeof(err)), 0);
    assert_int_equal(got.count, res->released);
    for (size_t k = 0; k < got.count; k++) {
        const struct pcap_record *want = &pvm->records[res->release_order[k]];
        assert_int_equal(got.records[k].len, want->len);
        assert_memory_equal(got.records[k].data, want->data, want->len);
    }
    pcap_trace_free(&got);
}

static void check_pair(const struct expectation *e)
{
    char pvm_path[512], svm_path[512], out[] = "/tmp/colo-fixture-out-XXXXXX";
    fixture_paths(e->name, pvm_path, svm_path, sizeof(pvm_path));
    int fd = mkstemp(out);
    assert_true(fd >= 0);
    close(fd);
    struct replay_options opt;
    replay_options_default(&opt);
    opt.primary_path = pvm_path;
    opt.secondary_path = svm_path;
    opt.output_path = out;
    struct replay_result res;
    char err[512];
    int rc = replay_run(&opt, &res, err, sizeof(err));
    if (rc != 0)
        fail_msg("%s: %s", e->name, err);
    struct pcap_trace pvm;
    assert_int_equal(pcap_trace_load(pvm_path, &pvm, err, sizeof(err)), 0);
    assert_true(pvm.count > 0);
    assert_release_order(&res, &pvm, 0);
    assert_output_is_release_order(out, &res, &pvm);
    const struct colo_compare_stats *s = &res.stats;
    assert_int_equal(sum(s->released, RELEASE_REASON_COUNT), pvm.count);
    assert_int_equal(s->released[RELEASE_FORCED], 0);
    assert_int_equal(s->pvm_held, 0);
    assert_int_equal(sum(s->divergences, DIV_KIND_COUNT), e->divergences);
    if (e->divergences)
        assert_int_equal(s->divergences[e->kind], e->divergences);
    assert_int_equal(sum(s->checkpoint_requests, CKPT_REASON_COUNT), e->requests);
    if (e->requests)
        assert_int_equal(s->checkpoint_requests[e->reason], e->requests);
    if (e->all_matched_or_uncompared) {
        assert_int_equal(s->released[RELEASE_CHECKPOINT], 0);
        assert_true(s->released[RELEASE_MATCHED] > 0);
    }
    print_message("%-22s %5zu PVM frames: %5" PRIu64 " matched, %4" PRIu64 " uncompared, %3" PRIu64
                  " after checkpoint; %" PRIu64 " divergences, %" PRIu64 " requests\n",
                  e->name, pvm.count, s->released[RELEASE_MATCHED], s->released[RELEASE_UNCOMPARED],
                  s->released[RELEASE_CHECKPOINT], sum(s->divergences, DIV_KIND_COUNT),
                  sum(s->checkpoint_requests, CKPT_REASON_COUNT));
    pcap_trace_free(&pvm);
    replay_result_free(&res);
    unlink(out);
}

static void test_every_fixture_pair(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++)
        check_pair(&pairs[i]);
}

/* Writes a copy of a trace with a 12-byte virtio-net header in front of each frame. */
static void write_with_vnet(const char *in, const char *out)
{
    struct pcap_trace t;
    char err[256];
    assert_int_equal(pcap_trace_load(in, &t, err, sizeof(err)), 0);
    struct pcap_sink *sink = pcap_sink_open(out, err, sizeof(err));
    assert_non_null(sink);
    uint8_t buf[70000];
    for (size_t i = 0; i < t.count; i++) {
        memset(buf, 0, 12);
        buf[0] = 1; /* VIRTIO_NET_HDR_F_NEEDS_CSUM, as a PVM's frames mostly carry */
        memcpy(buf + 12, t.records[i].data, t.records[i].len);
        pcap_sink_write(sink, t.records[i].ts_ns, buf, t.records[i].len + 12);
    }
    pcap_sink_close(sink);
    pcap_trace_free(&t);
}

static void test_vnet_header_frames_compare_and_pass_through(void **state)
{
    (void)state;
    char pvm_path[512], svm_path[512];
    char pv[] = "/tmp/colo-vnet-pvm-XXXXXX", sv[] = "/tmp/colo-vnet-svm-XXXXXX";
    char out[] = "/tmp/colo-vnet-out-XXXXXX";
    close(mkstemp(pv));
    close(mkstemp(sv));
    close(mkstemp(out));
    fixture_paths("http-payload-differs", pvm_path, svm_path, sizeof(pvm_path));
    write_with_vnet(pvm_path, pv);
    write_with_vnet(svm_path, sv);
    struct replay_options opt;
    replay_options_default(&opt);
    opt.primary_path = pv;
    opt.secondary_path = sv;
    opt.output_path = out;
    opt.vnet_hdr_len = 12;
    struct replay_result res;
    char err[512];
    assert_int_equal(replay_run(&opt, &res, err, sizeof(err)), 0);
    assert_int_equal(sum(res.stats.divergences, DIV_KIND_COUNT), 1);
    struct pcap_trace pvm;
    assert_int_equal(pcap_trace_load(pv, &pvm, err, sizeof(err)), 0);
    assert_release_order(&res, &pvm, 12);
    assert_output_is_release_order(out, &res, &pvm);
    pcap_trace_free(&pvm);
    replay_result_free(&res);
    unlink(pv);
    unlink(sv);
    unlink(out);
}

/* A periodic checkpoint beginning 1 ms after the last frame and taking 90 ms, written by `write`. */
static void check_recorded_checkpoint(void (*write)(FILE *f, uint64_t begin_ns, uint64_t end_ns))
{
    char pvm_path[512], svm_path[512], times[] = "/tmp/colo-times-XXXXXX";
    fixture_paths("secondary-silent", pvm_path, svm_path, sizeof(pvm_path));
    struct pcap_trace pvm;
    char err[512];
    assert_int_equal(pcap_trace_load(pvm_path, &pvm, err, sizeof(err)), 0);
    uint64_t last = pvm.records[pvm.count - 1].ts_ns;
    int fd = mkstemp(times);
    FILE *f = fdopen(fd, "w");
    write(f, last + 1000000, last + 91000000);
    fclose(f);
    struct replay_options opt;
    replay_options_default(&opt);
    opt.primary_path = pvm_path;
    opt.secondary_path = svm_path;
    opt.checkpoint_times_path = times;
    opt.checkpoint_ms = REPLAY_NO_MODEL;
    struct replay_result res;
    if (replay_run(&opt, &res, err, sizeof(err)) != 0)
        fail_msg("%s", err);
    assert_int_equal(res.stats.released[RELEASE_CHECKPOINT], pvm.count);
    assert_int_equal(sum(res.stats.checkpoint_requests, CKPT_REASON_COUNT), 0);
    assert_int_equal(res.checkpoint_count, 1);
    assert_true(res.checkpoints[0].recorded);
    /* Seconds as doubles on the epoch clock keep microseconds, not nanoseconds. */
    int64_t drift = (int64_t)res.checkpoints[0].done_ns - (int64_t)(last + 91000000);
    assert_true(drift > -1000 && drift < 1000);
    pcap_trace_free(&pvm);
    replay_result_free(&res);
    unlink(times);
}

static void write_pairs(FILE *f, uint64_t begin, uint64_t end)
{
    fprintf(f, "# begin end\n%.9f %.9f\n", (double)begin / 1e9, (double)end / 1e9);
}

static void write_qmp_log(FILE *f, uint64_t begin, uint64_t end)
{
    fprintf(f, "{\"QMP\": {\"version\": {}, \"capabilities\": []}}\n{\"return\": {}}\n");
    fprintf(f, "{\"timestamp\": {\"seconds\": %llu, \"microseconds\": %llu}, \"event\": \"STOP\"}\n",
            (unsigned long long)(begin / 1000000000ull), (unsigned long long)(begin % 1000000000ull / 1000));
    fprintf(f, "{\"timestamp\": {\"seconds\": %llu, \"microseconds\": %llu}, \"event\": \"RESUME\"}\n",
            (unsigned long long)(end / 1000000000ull), (unsigned long long)(end % 1000000000ull / 1000));
}

static void test_recorded_checkpoints_flush_like_live_ones(void **state)
{
    (void)state;
    check_recorded_checkpoint(write_pairs);
}

static void test_recorded_qmp_event_log_flushes_like_live_checkpoints(void **state)
{
    (void)state;
    check_recorded_checkpoint(write_qmp_log);
}

static void test_garbage_frames_are_counted_and_accounted(void **state)
{
    (void)state;
    char pv[] = "/tmp/colo-junk-pvm-XXXXXX", sv[] = "/tmp/colo-junk-svm-XXXXXX";
    close(mkstemp(pv));
    close(mkstemp(sv));
    char err[256];
    srand(7);
    const char *paths[2] = { pv, sv };
    for (int side = 0; side < 2; side++) {
        struct pcap_sink *sink = pcap_sink_open(paths[side], err, sizeof(err));
        assert_non_null(sink);
        uint8_t buf[200];
        for (int i = 0; i < 2000; i++) {
            uint32_t len = (uint32_t)(rand() % 200);
            for (uint32_t b = 0; b < len; b++)
                buf[b] = (uint8_t)rand();
            if (len > 14 && i % 2) {
                buf[12] = 0x08; /* IPv4 ethertype with a random body */
                buf[13] = 0x00;
                buf[14] = (uint8_t)(0x40 | (buf[14] & 0x0f));
            }
            pcap_sink_write(sink, 1000000000ull + (uint64_t)i * 1000000, buf, len);
        }
        pcap_sink_close(sink);
    }
    struct replay_options opt;
    replay_options_default(&opt);
    opt.primary_path = pv;
    opt.secondary_path = sv;
    struct replay_result res;
    assert_int_equal(replay_run(&opt, &res, err, sizeof(err)), 0);
    assert_int_equal(sum(res.stats.released, RELEASE_REASON_COUNT), 2000);
    assert_true(sum(res.stats.malformed, PARSE_STATUS_COUNT) > 0);
    replay_result_free(&res);
    unlink(pv);
    unlink(sv);
}

static void test_unreadable_input_is_a_clear_error(void **state)
{
    (void)state;
    struct replay_options opt;
    replay_options_default(&opt);
    opt.primary_path = "/nonexistent/pvm.pcap";
    opt.secondary_path = "/nonexistent/svm.pcap";
    struct replay_result res;
    char err[512];
    assert_int_equal(replay_run(&opt, &res, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "/nonexistent/pvm.pcap"));
    replay_result_free(&res);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_fixture_pair),
        cmocka_unit_test(test_vnet_header_frames_compare_and_pass_through),
        cmocka_unit_test(test_recorded_checkpoints_flush_like_live_ones),
        cmocka_unit_test(test_recorded_qmp_event_log_flushes_like_live_checkpoints),
        cmocka_unit_test(test_garbage_frames_are_counted_and_accounted),
        cmocka_unit_test(test_unreadable_input_is_a_clear_error),
    };
    return cmocka_run_group_tests_name("fixtures", tests, NULL, NULL);
}
