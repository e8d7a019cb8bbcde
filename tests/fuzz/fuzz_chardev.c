/*
 * fuzz_chardev.c — libFuzzer target: QEMU's chardev record framing, with and
 * without the vnet field, fed in pieces the input chooses.
 *
 * The first byte picks the mode and a piece size; the rest is the stream.
 * Invariants: every record delivered fits the limit and its vnet length fits the
 * record; splitting the stream anywhere delivers the same records (count, lengths
 * and a hash of the bytes) and ends in the same error as feeding it whole; after
 * an error nothing more is delivered; after a reset (a new peer), the rest of the
 * stream decodes exactly as it would with a fresh decoder, whatever half record
 * or error the old stream left behind.
 */
#include <string.h>

#include "colo/chardev_codec.h"
#include "fuzz_input.h"

struct seen {
    uint64_t records, hash;
    bool errored;
};

static void on_record(void *ctx, const uint8_t *record, uint32_t len, uint32_t vnet_len)
{
    struct seen *s = ctx;
    FUZZ_CHECK(!s->errored);
    FUZZ_CHECK(len <= CHARDEV_MAX_RECORD && vnet_len <= len);
    s->records++;
    s->hash = (s->hash ^ len ^ (uint64_t)vnet_len << 32) * 0x100000001b3ull;
    for (uint32_t i = 0; i < len; i++)
        s->hash = (s->hash ^ record[i]) * 0x100000001b3ull;
}

static enum chardev_error feed_into(struct chardev_decoder *d, const uint8_t *data, size_t size, size_t piece,
                                    struct seen *s)
{
    enum chardev_error err = CHARDEV_OK;
    for (size_t off = 0; off < size; off += piece) {
        size_t n = size - off < piece ? size - off : piece;
        uint8_t *copy = malloc(n); /* exactly n bytes: ASan sees an overread */
        memcpy(copy, data + off, n);
        err = chardev_decoder_feed(d, copy, n, on_record, s);
        free(copy);
        if (err != CHARDEV_OK)
            s->errored = true;
    }
    return err;
}

static enum chardev_error feed(bool vnet, const uint8_t *data, size_t size, size_t piece, struct seen *s)
{
    struct chardev_decoder d;
    FUZZ_CHECK(chardev_decoder_init(&d, vnet) == 0);
    enum chardev_error err = feed_into(&d, data, size, piece, s);
    FUZZ_CHECK(d.records == s->records);
    chardev_decoder_free(&d);
    return err;
}

/* The old peer sends `cut` bytes and goes; a new one sends the rest. */
static void check_reset(bool vnet, const uint8_t *data, size_t size, size_t cut, size_t piece)
{
    struct seen old = { 0, 0xcbf29ce484222325ull, false }, after = old, fresh = old;
    struct chardev_decoder d;
    FUZZ_CHECK(chardev_decoder_init(&d, vnet) == 0);
    feed_into(&d, data, cut, piece, &old);
    chardev_decoder_reset(&d);
    enum chardev_error a = feed_into(&d, data + cut, size - cut, piece, &after);
    chardev_decoder_free(&d);
    enum chardev_error b = feed(vnet, data + cut, size - cut, piece, &fresh);
    FUZZ_CHECK(a == b && after.records == fresh.records && after.hash == fresh.hash);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 300000)
        return 0;
    bool vnet = data[0] & 1;
    size_t piece = 1 + (data[0] >> 1) % 64;
    struct seen whole = { 0, 0xcbf29ce484222325ull, false }, split = whole;
    enum chardev_error a = feed(vnet, data + 1, size - 1, size, &whole);
    enum chardev_error b = feed(vnet, data + 1, size - 1, piece, &split);
    FUZZ_CHECK(a == b && whole.records == split.records && whole.hash == split.hash);
    if (size > 2)
        check_reset(vnet, data + 2, size - 2, (size_t)data[1] * (size - 2) / 256, piece);
    return 0;
}
