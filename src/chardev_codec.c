/*
 * chardev_codec.c — incremental decoding and encoding of QEMU chardev records.
 *
 * Owns: the header/body state machine and the one reassembly buffer. Never
 * trusts a length: both are checked before a byte of the body is stored, and
 * the reassembly buffer is exactly the largest record QEMU itself accepts.
 */
#include "colo/chardev_codec.h"

#include <stdlib.h>
#include <string.h>

#include "colo/byte_order.h"

int chardev_decoder_init(struct chardev_decoder *d, bool vnet_hdr)
{
    memset(d, 0, sizeof(*d));
    d->vnet_hdr = vnet_hdr;
    d->body = malloc(CHARDEV_MAX_RECORD);
    return d->body ? 0 : -1;
}

void chardev_decoder_reset(struct chardev_decoder *d)
{
    d->header_have = 0;
    d->body_have = 0;
    d->error = CHARDEV_OK;
}

void chardev_decoder_free(struct chardev_decoder *d)
{
    free(d->body);
    d->body = NULL;
}

static uint32_t header_size(const struct chardev_decoder *d)
{
    return d->vnet_hdr ? 8 : 4;
}

/* A whole header arrived: check it. */
static enum chardev_error take_header(struct chardev_decoder *d)
{
    d->len = get_be32(d->header);
    d->vnet_len = d->vnet_hdr ? get_be32(d->header + 4) : 0;
    if (d->len > CHARDEV_MAX_RECORD)
        return CHARDEV_RECORD_TOO_LONG;
    if (d->vnet_len > d->len)
        return CHARDEV_BAD_VNET_LEN;
    d->body_have = 0;
    return CHARDEV_OK;
}

static void emit(struct chardev_decoder *d, const uint8_t *rec, chardev_record_fn fn, void *ctx)
{
    d->records++;
    d->header_have = 0;
    fn(ctx, rec, d->len, d->vnet_len);
}

enum chardev_error chardev_decoder_feed(struct chardev_decoder *d, const uint8_t *p, size_t n,
                                        chardev_record_fn fn, void *ctx)
{
    const uint8_t *end = p + n;
    while (!d->error && p < end) {
        uint32_t hs = header_size(d);
        if (d->header_have < hs) {
            uint32_t take = (uint32_t)(end - p) < hs - d->header_have ? (uint32_t)(end - p)
                                                                     : hs - d->header_have;
            memcpy(d->header + d->header_have, p, take);
            d->header_have += take;
            p += take;
            if (d->header_have == hs && (d->error = take_header(d)) != CHARDEV_OK)
                break;
            if (d->header_have == hs && d->len == 0)
                emit(d, d->body, fn, ctx);
            continue;
        }
        uint32_t need = d->len - d->body_have;
        if (d->body_have == 0 && (size_t)(end - p) >= need) {
            emit(d, p, fn, ctx); /* whole in the input: no copy */
            p += need;
            continue;
        }
        uint32_t take = (size_t)(end - p) < need ? (uint32_t)(end - p) : need;
        memcpy(d->body + d->body_have, p, take);
        d->body_have += take;
        p += take;
        if (d->body_have == d->len)
            emit(d, d->body, fn, ctx);
    }
    return d->error;
}

size_t chardev_encode_header(uint8_t out[8], uint32_t len, uint32_t vnet_len, bool vnet_hdr)
{
    put_be32(out, len);
    if (!vnet_hdr)
        return 4;
    put_be32(out + 4, vnet_len);
    return 8;
}

const char *chardev_error_name(enum chardev_error e)
{
    switch (e) {
    case CHARDEV_OK: return "ok";
    case CHARDEV_RECORD_TOO_LONG: return "record longer than 69632 bytes";
    case CHARDEV_BAD_VNET_LEN: return "vnet header longer than its record";
    default: return "unknown";
    }
}
