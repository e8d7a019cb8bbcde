/*
 * chardev_endpoint.h — one of QEMU's chardev sockets, from colo-proxy's side.
 *
 * An endpoint is spelled as QEMU spells a socket chardev: "tcp:HOST:PORT" or
 * "unix:PATH" to connect (retried every 200 ms until the peer is there, and again
 * after it goes away), with ",server" to listen (a peer that reconnects replaces
 * the old one). Records use QEMU's framing (chardev_codec.h). Input is read up to
 * 128 KiB per system call and handed out record by record; output is an ordered
 * record queue (record_buf.h) written with vectored I/O, kept while no peer is
 * connected, and given to a new peer in whole records only.
 *
 * A peer that sends a bad length, garbage or a record over QEMU's limit is
 * disconnected with one log line; the other endpoints never notice.
 */
#ifndef COLO_CHARDEV_ENDPOINT_H
#define COLO_CHARDEV_ENDPOINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "colo/chardev_codec.h"
#include "colo/log.h"
#include "colo/record_buf.h"

struct event_base;
struct event;
struct evconnlistener;
struct chardev_endpoint;

struct chardev_endpoint_ops {
    /* A whole record: `len` bytes, the first `vnet_len` of them the vnet header. */
    void (*record)(void *ctx, struct chardev_endpoint *ep, const uint8_t *bytes, uint32_t len,
                   uint32_t vnet_len);
    /* After each batch of records read from this endpoint (flush what they released). */
    void (*after_batch)(void *ctx, struct chardev_endpoint *ep);
    /* The output queue fell to a quarter of the high-water mark (may be NULL). */
    void (*drained)(void *ctx, struct chardev_endpoint *ep);
};

struct chardev_endpoint_stats {
    uint64_t records_in, connects, bad_peers;
};

struct chardev_endpoint {
    const char *name; /* the option that named it, for log lines */
    char spec[256];
    bool server;
    struct sockaddr_storage addr;
    int addr_len;
    struct event_base *base;
    struct evconnlistener *listener;
    int fd; /* -1: no peer */
    bool connecting, paused;
    struct event *rd, *wr, *retry;
    struct chardev_decoder decoder;
    uint8_t *read_buf;
    struct record_pool *pool;
    struct record_queue out;
    size_t high_water;
    const struct chardev_endpoint_ops *ops;
    void *ctx;
    struct chardev_endpoint_stats stats;
    struct log_retry retry_log; /* a peer it connects to and cannot reach yet */
};

/* Listens or starts connecting. 0, or -1 with a one-line reason in err. */
int chardev_endpoint_open(struct chardev_endpoint *ep, struct event_base *base, const char *name,
                          const char *spec, bool vnet_hdr, struct record_pool *pool,
                          size_t high_water, const struct chardev_endpoint_ops *ops, void *ctx,
                          char *err, size_t errlen);
/* Closes the socket and listener; queued output goes back to the pool. Safe twice. */
void chardev_endpoint_close(struct chardev_endpoint *ep);

/*
 * Is spec a valid endpoint ("tcp:HOST:PORT" or "unix:PATH", ",server" or
 * ",server=on|off" optional), and can a unix socket it listens on be created
 * (cli_check_path)? -1 with why.
 */
int chardev_endpoint_check_spec(const char *name, const char *spec, char *err, size_t errlen);
/* Appends "primary_in listens on unix:/p, outdev connects to tcp:..." to a start line; NULL specs skipped. */
typedef struct _GString GString;
void chardev_endpoints_describe(const char *const *names, const char *const *specs, int n, GString *line);
bool chardev_endpoint_connected(const struct chardev_endpoint *ep);
/* Stops or resumes reading (backpressure from another endpoint's output). */
void chardev_endpoint_pause(struct chardev_endpoint *ep, bool paused);
/* Queues a record for the peer; `vnet_hdr` says whether its header carries the vnet field. */
void chardev_endpoint_queue(struct chardev_endpoint *ep, struct sock_record *rec, bool vnet_hdr);
/* Writes what the peer takes now; arms a write event only while it pushes back. */
void chardev_endpoint_flush(struct chardev_endpoint *ep);
/* True while the output queue is above its high-water mark. */
bool chardev_endpoint_backed_up(const struct chardev_endpoint *ep);

#endif
