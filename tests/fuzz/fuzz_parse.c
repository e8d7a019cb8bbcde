/*
 * fuzz_parse.c — libFuzzer target: pkt_parse on any bytes.
 *
 * Invariants: every offset the parser reports lies inside the frame, the payload
 * ends inside it, a non-OK status never claims a payload, and parsing the same
 * bytes again gives the same view (the parser keeps no state).
 */
#include <string.h>

#include "colo/pkt_parse.h"
#include "fuzz_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 70000)
        return 0;
    uint8_t *frame = malloc(size ? size : 1); /* exactly `size` bytes: ASan sees any overread */
    memcpy(frame, data, size);
    struct pkt_view v, again;
    memset(&v, 0, sizeof(v));
    memset(&again, 0, sizeof(again));
    enum parse_status st = pkt_parse(frame, (uint32_t)size, &v);
    FUZZ_CHECK(st < PARSE_STATUS_COUNT);
    if (st == PARSE_OK) {
        FUZZ_CHECK(v.l3_off <= size && v.l4_off <= size && v.payload_off <= size);
        FUZZ_CHECK(v.payload_off + (uint64_t)v.payload_len <= size);
        FUZZ_CHECK(v.l3_off <= v.l4_off && v.l4_off <= v.payload_off);
        FUZZ_CHECK(v.l3_end <= size);
    }
    pkt_parse(frame, (uint32_t)size, &again);
    FUZZ_CHECK(memcmp(&v, &again, sizeof(v)) == 0);
    free(frame);
    return 0;
}
