/*
 * fuzz_pcap.c — libFuzzer target: loading a pcap file (classic or pcapng, via
 * libpcap) as replay and the benchmarks do, from any bytes.
 *
 * The bytes are written to an anonymous memory file and loaded by path.
 * Invariants: a load either fails with a one-line reason or gives records whose
 * bytes all lie inside the loaded blob (each byte is read, so ASan sees any
 * overread) with captured length <= wire length or a capture cut short, and
 * timestamps that never go backwards within a file are not required (pcaps may
 * be unsorted): only bounds are (PCAP_TS_NS_MAX, whatever the seconds field).
 * A loaded file is then replayed against itself: that must finish (the
 * fuzzer's timeout catches a replay that steps through a timestamp gap) and
 * release every frame.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "colo/pcap_port.h"
#include "colo/replay.h"
#include "fuzz_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void replay_against_itself(const char *path, size_t frames)
{
    struct replay_options opt;
    replay_options_default(&opt);
    opt.primary_path = opt.secondary_path = path;
    opt.compare.max_conns = 64; /* small: the table is allocated on every input */
    struct replay_result res;
    char err[256];
    FUZZ_CHECK(replay_run(&opt, &res, err, sizeof(err)) == 0);
    uint64_t released = 0;
    for (int k = 0; k < RELEASE_REASON_COUNT; k++)
        released += res.stats.released[k];
    FUZZ_CHECK(released == frames);
    replay_result_free(&res);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = memfd_create("fuzz.pcap", 0);
    FUZZ_CHECK(fd >= 0);
    FUZZ_CHECK(write(fd, data, size) == (ssize_t)size);
    char path[64], err[256] = "";
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    struct pcap_trace t;
    memset(&t, 0, sizeof(t));
    if (pcap_trace_load(path, &t, err, sizeof(err)) == 0) {
        uint64_t sum = 0;
        for (size_t i = 0; i < t.count; i++) {
            const struct pcap_record *r = &t.records[i];
            FUZZ_CHECK(r->ts_ns <= PCAP_TS_NS_MAX);
            for (uint32_t b = 0; b < r->len; b++)
                sum += r->data[b];
        }
        FUZZ_CHECK(sum != UINT64_MAX);
        replay_against_itself(path, t.count);
    } else {
        FUZZ_CHECK(err[0] != 0 && memchr(err, '\n', sizeof(err)) == NULL);
    }
    pcap_trace_free(&t);
    close(fd);
    return 0;
}
