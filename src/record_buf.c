/*
 * record_buf.c — socket mode's record memory and ordered output.
 *
 * Owns: the slot pools (chunks of fixed slots on a free list per size, never returned to
 * the system while the proxy runs) and the output queue's vectored writes.
 * Must never: hand out a slot too small for its record, reorder the queue, or
 * send part of a record to a peer that did not get its beginning.
 */
#include "colo/record_buf.h"

#include "colo/pkt_parse.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#define SLOTS_PER_CHUNK 256
#define WRITE_IOV 128
#define STAGE_BYTES (256u << 10)
#define COALESCE_BYTES 512u
#define VNET_NEEDS_CSUM 0x01 /* virtio_net_hdr.flags: the L4 checksum is left to offload */

static const uint32_t class_bytes[RECORD_CLASS_MALLOC] = { RECORD_SMALL_BYTES, RECORD_SLOT_BYTES };

static size_t slot_size(int size_class)
{
    size_t s = sizeof(struct sock_record) + class_bytes[size_class];
    return (s + 63) & ~(size_t)63;
}

static int grow(struct record_pool *p, int size_class)
{
    if (p->nchunks == p->chunks_cap) {
        size_t cap = p->chunks_cap ? p->chunks_cap * 2 : 16;
        uint8_t **chunks = realloc(p->chunks, cap * sizeof(*chunks));
        if (!chunks)
            return -1;
        p->chunks = chunks;
        p->chunks_cap = cap;
    }
    size_t size = slot_size(size_class);
    uint8_t *chunk = aligned_alloc(64, size * SLOTS_PER_CHUNK);
    if (!chunk)
        return -1;
    p->chunks[p->nchunks++] = chunk;
    for (size_t i = 0; i < SLOTS_PER_CHUNK; i++) {
        void **slot = (void **)(chunk + i * size);
        *slot = p->free_list[size_class];
        p->free_list[size_class] = slot;
    }
    return 0;
}

struct sock_record *record_get(struct record_pool *p, uint32_t len)
{
    struct sock_record *r;
    int size_class = len <= RECORD_SMALL_BYTES  ? RECORD_CLASS_SMALL
                     : len <= RECORD_SLOT_BYTES ? RECORD_CLASS_FULL
                                                : RECORD_CLASS_MALLOC;
    if (size_class == RECORD_CLASS_MALLOC) {
        r = malloc(sizeof(*r) + len);
        if (!r)
            return NULL;
    } else {
        if (!p->free_list[size_class] && grow(p, size_class) != 0)
            return NULL;
        void **slot = p->free_list[size_class];
        p->free_list[size_class] = *slot;
        r = (struct sock_record *)slot;
    }
    r->size_class = (uint8_t)size_class;
    p->in_use++;
    r->next = NULL;
    r->len = len;
    r->vnet_len = 0;
    r->header_len = 0;
    return r;
}

void record_put(struct record_pool *p, struct sock_record *r)
{
    p->in_use--;
    if (r->size_class == RECORD_CLASS_MALLOC) {
        free(r);
        return;
    }
    void **slot = (void **)r;
    *slot = p->free_list[r->size_class];
    p->free_list[r->size_class] = slot;
}

struct sock_record *record_packet(struct record_pool *p, const uint8_t *bytes, uint32_t len, uint32_t vnet_len)
{
    struct sock_record *rec = record_get(p, len);
    if (!rec)
        return NULL;
    memset(&rec->pkt, 0, sizeof(rec->pkt));
    rec->vnet_len = vnet_len;
    memcpy(rec->data, bytes, len);
    rec->pkt.frame = rec->data + vnet_len;
    rec->pkt.frame_len = len - vnet_len;
    rec->pkt.owner = rec;
    rec->pkt.csum_partial = vnet_len && (rec->data[0] & VNET_NEEDS_CSUM);
    pkt_parse(rec->pkt.frame, rec->pkt.frame_len, &rec->pkt.view);
    return rec;
}

void record_pool_free(struct record_pool *p)
{
    for (size_t i = 0; i < p->nchunks; i++)
        free(p->chunks[i]);
    free(p->chunks);
    p->chunks = NULL;
    p->nchunks = p->chunks_cap = 0;
    for (int c = 0; c < RECORD_CLASS_MALLOC; c++)
        p->free_list[c] = NULL;
}

void record_queue_push(struct record_queue *q, struct sock_record *r)
{
    r->next = NULL;
    if (q->tail)
        q->tail->next = r;
    else
        q->head = r;
    q->tail = r;
    q->bytes += r->header_len + (size_t)r->len;
    q->count++;
}

static size_t record_total(const struct sock_record *r)
{
    return r->header_len + (size_t)r->len;
}

static void add_bytes(struct iovec *iov, int *n, uint8_t *stage, size_t *staged, const uint8_t *p, size_t len)
{
    if (len <= COALESCE_BYTES && *staged + len <= STAGE_BYTES) {
        uint8_t *dst = stage + *staged;
        memcpy(dst, p, len);
        *staged += len;
        if (*n && (uint8_t *)iov[*n - 1].iov_base + iov[*n - 1].iov_len == dst) {
            iov[*n - 1].iov_len += len;
            return;
        }
        iov[(*n)++] = (struct iovec){ dst, len };
        return;
    }
    iov[(*n)++] = (struct iovec){ (void *)p, len };
}

/*
 * The iovecs of the queue from its head, skipping what the head already sent.
 * Small pieces are copied into one staging run (the kernel copies a long run far
 * faster than many short iovecs); large frames are written from their slots.
 */
static int gather(struct record_queue *q, struct iovec *iov)
{
    int n = 0;
    size_t staged = 0;
    uint32_t skip = q->head_sent;
    for (struct sock_record *r = q->head; r && n + 2 <= WRITE_IOV && staged + COALESCE_BYTES <= STAGE_BYTES;
         r = r->next, skip = 0) {
        if (skip < r->header_len)
            add_bytes(iov, &n, q->stage, &staged, r->header + skip, r->header_len - skip);
        uint32_t data_skip = skip > r->header_len ? skip - r->header_len : 0;
        if (r->len > data_skip)
            add_bytes(iov, &n, q->stage, &staged, r->data + data_skip, r->len - data_skip);
    }
    return n;
}

/* Retires `n` written bytes from the head of the queue. */
static void consume(struct record_queue *q, size_t n, struct record_pool *pool)
{
    q->bytes -= n;
    while (n) {
        struct sock_record *r = q->head;
        size_t left = record_total(r) - q->head_sent;
        if (n < left) {
            q->head_sent += (uint32_t)n;
            return;
        }
        n -= left;
        q->head = r->next;
        if (!q->head)
            q->tail = NULL;
        q->head_sent = 0;
        q->count--;
        record_put(pool, r);
    }
}

enum record_write_status record_queue_write(struct record_queue *q, int fd, struct record_pool *pool)
{
    struct iovec iov[WRITE_IOV];
    if (!q->stage && !(q->stage = malloc(STAGE_BYTES)))
        return RECORD_WRITE_ERROR;
    while (q->head) {
        int n = gather(q, iov);
        ssize_t w = writev(fd, iov, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return errno == EAGAIN || errno == EWOULDBLOCK ? RECORD_WRITE_AGAIN : RECORD_WRITE_ERROR;
        }
        consume(q, (size_t)w, pool);
    }
    return RECORD_WRITE_DONE;
}

void record_queue_restart(struct record_queue *q)
{
    q->bytes += q->head_sent;
    q->head_sent = 0;
}

void record_queue_clear(struct record_queue *q, struct record_pool *pool)
{
    while (q->head) {
        struct sock_record *r = q->head;
        q->head = r->next;
        record_put(pool, r);
    }
    q->tail = NULL;
    q->head_sent = 0;
    q->bytes = 0;
    q->count = 0;
    free(q->stage);
    q->stage = NULL;
}
