/*
 * dpdk_port.h — DPDK ethdev ports as the pipeline uses them.
 *
 * A port is named by role on the command line and bound to any DPDK port: a
 * PCI device or a vdev (net_vhost, net_tap, net_af_packet, net_af_xdp,
 * net_memif, net_ring, net_pcap), by its device name or its port id. One RX and
 * one TX queue per port: the pipeline runs to completion on one lcore.
 *
 * Transmit never loses silently: `struct port_txq` keeps, in order, whatever
 * the driver did not take, and retries it on the next flush. The pipeline asks
 * for `port_txq_room` before receiving what it will send there, so the FIFO
 * never overflows (backpressure reaches the input port instead).
 */
#ifndef COLO_DPDK_PORT_H
#define COLO_DPDK_PORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct rte_mbuf;
struct rte_mempool;

struct port_txq {
    uint16_t port_id;
    uint32_t cap, head, count;  /* a ring of pending mbufs */
    struct rte_mbuf **fifo;
    uint64_t sent, partial_bursts;
};

/* Finds a port by device name (e.g. "net_af_packet0") or number. */
int dpdk_port_resolve(const char *name_or_id, uint16_t *port_id, char *err, size_t errlen);

/* Configures one RX and one TX queue, starts the port, enables promiscuous mode. */
int dpdk_port_start(uint16_t port_id, struct rte_mempool *pool, char *err, size_t errlen);

bool dpdk_port_link_up(uint16_t port_id);

int port_txq_init(struct port_txq *q, uint16_t port_id, uint32_t cap);
void port_txq_free(struct port_txq *q);
uint32_t port_txq_room(const struct port_txq *q);
/* False only when the FIFO is full (the caller checked room, so: a bug). */
bool port_txq_push(struct port_txq *q, struct rte_mbuf *m);
/* Hands the driver what it will take; the rest stays queued, in order. */
void port_txq_flush(struct port_txq *q);
/* Frees what is still queued (shutdown); returns how many. */
uint32_t port_txq_discard(struct port_txq *q);

#endif
