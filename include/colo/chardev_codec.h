/*
 * chardev_codec.h — QEMU's chardev record framing, as filter-mirror,
 * filter-redirector and colo-compare speak it on their sockets:
 *
 *     be32 len | [be32 vnet_hdr_len, only with vnet_hdr_support=on] | len bytes
 *
 * where the len bytes are the vnet header (vnet_hdr_len bytes) then the
 * Ethernet frame. QEMU gives up on an input for good on a record over 69632
 * bytes; so does the decoder, which the caller must then disconnect.
 *
 * The decoder is incremental (any split of the byte stream gives the same
 * records) and hands out records in place when they lie whole in the input,
 * copying only those that straddle two reads. Notify_dev words (Xen COLO) use
 * the same framing.
 */
#ifndef COLO_CHARDEV_CODEC_H
#define COLO_CHARDEV_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CHARDEV_MAX_RECORD 69632u /* QEMU's NET_BUFSIZE: 4096 + 65536 */

enum chardev_error {
    CHARDEV_OK = 0,
    CHARDEV_RECORD_TOO_LONG, /* len over CHARDEV_MAX_RECORD */
    CHARDEV_BAD_VNET_LEN,    /* vnet_hdr_len over len */
};

struct chardev_decoder {
    bool vnet_hdr;
    uint8_t header[8];
    uint32_t header_have;
    uint32_t len, vnet_len;
    uint32_t body_have;
    uint8_t *body;            /* CHARDEV_MAX_RECORD bytes, for records split across reads */
    enum chardev_error error; /* sticky: the stream is unusable after an error */
    uint64_t records;
};

/* Called for each whole record: vnet header then frame, `len` bytes in all. */
typedef void (*chardev_record_fn)(void *ctx, const uint8_t *record, uint32_t len,
                                  uint32_t vnet_len);

int chardev_decoder_init(struct chardev_decoder *d, bool vnet_hdr);
void chardev_decoder_free(struct chardev_decoder *d);

/* Forgets any half-read record and a past error: for a new peer's stream. */
void chardev_decoder_reset(struct chardev_decoder *d);

/* Feeds bytes; returns CHARDEV_OK or the (sticky) error after which the peer must go. */
enum chardev_error chardev_decoder_feed(struct chardev_decoder *d, const uint8_t *data, size_t n,
                                        chardev_record_fn fn, void *ctx);

/* Writes the record header for `len` bytes (vnet header included); returns its size. */
size_t chardev_encode_header(uint8_t out[8], uint32_t len, uint32_t vnet_len, bool vnet_hdr);

const char *chardev_error_name(enum chardev_error e);

#endif
