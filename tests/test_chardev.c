/*
 * test_chardev.c — QEMU chardev record framing: any split of the stream gives
 * the same records; hostile headers end the stream with a named error.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "colo/chardev_codec.h"

#define MAX_RECS 64

struct sink {
    uint32_t n;
    uint32_t len[MAX_RECS], vnet[MAX_RECS];
    uint8_t first[MAX_RECS], last[MAX_RECS];
};

static void collect(void *ctx, const uint8_t *rec, uint32_t len, uint32_t vnet_len)
{
    struct sink *s = ctx;
    assert_true(s->n < MAX_RECS);
    s->len[s->n] = len;
    s->vnet[s->n] = vnet_len;
    s->first[s->n] = len ? rec[0] : 0;
    s->last[s->n] = len ? rec[len - 1] : 0;
    s->n++;
}

/* A stream of records of the given lengths; byte values identify the record. */
static size_t make_stream(uint8_t *out, const uint32_t *lens, int n, bool vnet)
{
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        off += chardev_encode_header(out + off, lens[i], vnet ? (lens[i] >= 12 ? 12 : 0) : 0, vnet);
        for (uint32_t b = 0; b < lens[i]; b++)
            out[off + b] = (uint8_t)(i * 16 + (b == lens[i] - 1));
        off += lens[i];
    }
    return off;
}

static void check_split(const uint8_t *stream, size_t size, const uint32_t *lens, int n, bool vnet,
                        size_t chunk)
{
    struct chardev_decoder d;
    assert_int_equal(chardev_decoder_init(&d, vnet), 0);
    struct sink s = { 0 };
    for (size_t off = 0; off < size; off += chunk) {
        size_t take = size - off < chunk ? size - off : chunk;
        assert_int_equal(chardev_decoder_feed(&d, stream + off, take, collect, &s), CHARDEV_OK);
    }
    assert_int_equal(s.n, n);
    for (int i = 0; i < n; i++) {
        assert_int_equal(s.len[i], lens[i]);
        assert_int_equal(s.vnet[i], vnet && lens[i] >= 12 ? 12 : 0);
        if (lens[i]) {
            assert_int_equal(s.first[i], (uint8_t)(i * 16 + (lens[i] == 1)));
            assert_int_equal(s.last[i], (uint8_t)(i * 16 + 1));
        }
    }
    chardev_decoder_free(&d);
}

static void test_any_split_gives_the_same_records(void **state)
{
    (void)state;
    static const uint32_t lens[] = { 60, 1514, 0, 1, 4000, 64, CHARDEV_MAX_RECORD, 14 };
    const int n = (int)(sizeof(lens) / sizeof(lens[0]));
    uint8_t *stream = malloc(200000);
    for (int vnet = 0; vnet < 2; vnet++) {
        size_t size = make_stream(stream, lens, n, vnet);
        static const size_t chunks[] = { 1, 3, 4, 5, 7, 8, 100, 4096, 65536, 1 << 20 };
        for (unsigned c = 0; c < sizeof(chunks) / sizeof(chunks[0]); c++)
            check_split(stream, size, lens, n, vnet, chunks[c]);
    }
    free(stream);
}

static void test_record_over_the_limit_ends_the_stream(void **state)
{
    (void)state;
    struct chardev_decoder d;
    chardev_decoder_init(&d, false);
    uint8_t hdr[8];
    chardev_encode_header(hdr, CHARDEV_MAX_RECORD + 1, 0, false);
    struct sink s = { 0 };
    assert_int_equal(chardev_decoder_feed(&d, hdr, 4, collect, &s), CHARDEV_RECORD_TOO_LONG);
    uint8_t more[16] = { 0 };
    assert_int_equal(chardev_decoder_feed(&d, more, sizeof(more), collect, &s), CHARDEV_RECORD_TOO_LONG);
    assert_int_equal(s.n, 0);
    assert_string_equal(chardev_error_name(CHARDEV_RECORD_TOO_LONG), "record longer than 69632 bytes");
    chardev_decoder_free(&d);
}

static void test_vnet_header_longer_than_record_rejected(void **state)
{
    (void)state;
    struct chardev_decoder d;
    chardev_decoder_init(&d, true);
    uint8_t hdr[8];
    chardev_encode_header(hdr, 10, 12, true);
    struct sink s = { 0 };
    assert_int_equal(chardev_decoder_feed(&d, hdr, 8, collect, &s), CHARDEV_BAD_VNET_LEN);
    chardev_decoder_free(&d);
}

static void test_garbage_never_overflows(void **state)
{
    (void)state;
    srand(5);
    uint8_t *junk = malloc(1 << 20);
    for (int round = 0; round < 50; round++) {
        for (int i = 0; i < 1 << 20; i++)
            junk[i] = (uint8_t)rand();
        struct chardev_decoder d;
        chardev_decoder_init(&d, round % 2);
        struct sink s = { 0 };
        size_t off = 0;
        while (off < (1u << 20) && s.n < MAX_RECS - 1) {
            size_t take = 1 + (size_t)rand() % 9000;
            if (take > (1u << 20) - off)
                take = (1u << 20) - off;
            if (chardev_decoder_feed(&d, junk + off, take, collect, &s) != CHARDEV_OK)
                break;
            off += take;
        }
        chardev_decoder_free(&d);
    }
    free(junk);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_any_split_gives_the_same_records),
        cmocka_unit_test(test_record_over_the_limit_ends_the_stream),
        cmocka_unit_test(test_vnet_header_longer_than_record_rejected),
        cmocka_unit_test(test_garbage_never_overflows),
    };
    return cmocka_run_group_tests_name("chardev", tests, NULL, NULL);
}
