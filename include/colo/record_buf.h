/*
 * record_buf.h — chardev records in memory for socket mode: where each record
 * lives (pools of fixed slots in two sizes, malloc only for the rare record over
 * the larger) and
 * the ordered output queue written with vectored I/O.
 *
 * A record carries its packet handle for the compare engine, its encoded chardev
 * header, and its bytes (vnet header + frame). The output queue sends whole
 * records in order; a partial write resumes where it stopped, and after the peer
 * changes, `record_queue_restart` makes the record that was cut off go again in
 * full, so a new peer only ever sees whole records.
 */
#ifndef COLO_RECORD_BUF_H
#define COLO_RECORD_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "colo/pkt.h"

/* Two slot sizes: small frames (ACKs, requests) and full-size ones with a vnet header. */
#define RECORD_SMALL_BYTES 256u
#define RECORD_SLOT_BYTES 2048u
enum { RECORD_CLASS_SMALL, RECORD_CLASS_FULL, RECORD_CLASS_MALLOC };

struct sock_record {
    struct colo_pkt pkt;
    struct sock_record *next; /* in an output queue */
    uint32_t len, vnet_len;   /* bytes in data: the vnet header, then the frame */
    uint8_t header[8];
    uint8_t header_len;
    uint8_t size_class;
    uint8_t data[];
};

struct record_pool {
    void *free_list[RECORD_CLASS_MALLOC];
    uint8_t **chunks;
    size_t nchunks, chunks_cap;
    size_t in_use;
};

/* A record with room for `len` bytes; NULL when memory runs out. */
struct sock_record *record_get(struct record_pool *p, uint32_t len);
void record_put(struct record_pool *p, struct sock_record *r);
/*
 * A record holding a copy of `len` bytes read from a chardev socket (the first
 * `vnet_len` the vnet header), its packet handle set up and parsed; NULL when
 * memory runs out.
 */
struct sock_record *record_packet(struct record_pool *p, const uint8_t *bytes, uint32_t len,
                                  uint32_t vnet_len);
void record_pool_free(struct record_pool *p);

struct record_queue {
    struct sock_record *head, *tail;
    uint32_t head_sent; /* bytes of the head record (header first) already written */
    size_t bytes;       /* unsent bytes, headers included */
    uint64_t count;
    uint8_t *stage;     /* where small records are gathered for one write */
};

enum record_write_status { RECORD_WRITE_DONE, RECORD_WRITE_AGAIN, RECORD_WRITE_ERROR };

/* Appends a record whose header is already encoded. */
void record_queue_push(struct record_queue *q, struct sock_record *r);
/* Writes as much as the socket takes; sent records go back to the pool. */
enum record_write_status record_queue_write(struct record_queue *q, int fd, struct record_pool *pool);
/* The peer changed: a record cut off mid-way is sent again whole. */
void record_queue_restart(struct record_queue *q);
/* Empties the queue (records back to the pool) and frees its staging buffer. */
void record_queue_clear(struct record_queue *q, struct record_pool *pool);

#endif
