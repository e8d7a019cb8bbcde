/*
 * dpdk_port.c — opening DPDK ports and transmitting without loss.
 *
 * Owns: port configuration (one queue pair, promiscuous) and the pending-TX
 * FIFOs. Must never: drop an mbuf a caller pushed, except in port_txq_discard
 * at shutdown, which says how many.
 */
#include "colo/dpdk_port.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_ethdev.h>
#include <rte_mbuf.h>

#define RX_DESC 1024
#define TX_DESC 1024
#define TX_BURST 64

int dpdk_port_resolve(const char *name, uint16_t *port_id, char *err, size_t errlen)
{
    if (rte_eth_dev_get_port_by_name(name, port_id) == 0)
        return 0;
    char *end;
    unsigned long id = strtoul(name, &end, 10);
    if (*name && !*end && id < RTE_MAX_ETHPORTS && rte_eth_dev_is_valid_port((uint16_t)id)) {
        *port_id = (uint16_t)id;
        return 0;
    }
    snprintf(err, errlen,
             "no DPDK port named '%s': add it with --vdev (e.g. --vdev=net_af_packet0,iface=eth0) "
             "or give a port number (%u ports exist)%s",
             name, rte_eth_dev_count_avail(),
             geteuid() == 0 ? "" : "; if its --vdev is there, its driver could not open the interface: without root, "
                                   "colo-proxy needs CAP_NET_RAW and CAP_NET_ADMIN (see docs/security.md)");
    return -1;
}

int dpdk_port_start(uint16_t port_id, struct rte_mempool *pool, char *err, size_t errlen)
{
    struct rte_eth_conf conf;
    memset(&conf, 0, sizeof(conf));
    struct rte_eth_dev_info info;
    int rc = rte_eth_dev_info_get(port_id, &info);
    if (rc != 0) {
        snprintf(err, errlen, "cannot query DPDK port %u: %s", port_id, rte_strerror(-rc));
        return -1;
    }
    uint16_t rxd = RX_DESC, txd = TX_DESC;
    rc = rte_eth_dev_configure(port_id, 1, 1, &conf);
    if (rc == 0)
        rc = rte_eth_dev_adjust_nb_rx_tx_desc(port_id, &rxd, &txd);
    if (rc == 0)
        rc = rte_eth_rx_queue_setup(port_id, 0, rxd, rte_eth_dev_socket_id(port_id), NULL, pool);
    if (rc == 0)
        rc = rte_eth_tx_queue_setup(port_id, 0, txd, rte_eth_dev_socket_id(port_id), NULL);
    if (rc == 0)
        rc = rte_eth_dev_start(port_id);
    if (rc != 0) {
        snprintf(err, errlen, "cannot start DPDK port %u (driver %s): %s%s", port_id,
                 info.driver_name ? info.driver_name : "?", rte_strerror(-rc),
                 rc == -EPERM ? " (run as root, or with CAP_NET_RAW and CAP_NET_ADMIN: see docs/security.md)" : "");
        return -1;
    }
    rte_eth_promiscuous_enable(port_id); /* not every driver can; the VM's MAC still arrives */
    return 0;
}

bool dpdk_port_link_up(uint16_t port_id)
{
    struct rte_eth_link link;
    return rte_eth_link_get_nowait(port_id, &link) == 0 && link.link_status == RTE_ETH_LINK_UP;
}

int port_txq_init(struct port_txq *q, uint16_t port_id, uint32_t cap)
{
    memset(q, 0, sizeof(*q));
    q->port_id = port_id;
    q->cap = cap;
    q->fifo = calloc(cap, sizeof(*q->fifo));
    return q->fifo ? 0 : -ENOMEM;
}

void port_txq_free(struct port_txq *q)
{
    free(q->fifo);
    q->fifo = NULL;
}

uint32_t port_txq_room(const struct port_txq *q)
{
    return q->cap - q->count;
}

bool port_txq_push(struct port_txq *q, struct rte_mbuf *m)
{
    if (q->count == q->cap)
        return false;
    q->fifo[(q->head + q->count) % q->cap] = m;
    q->count++;
    return true;
}

void port_txq_flush(struct port_txq *q)
{
    while (q->count) {
        uint32_t contiguous = q->cap - q->head;
        uint16_t n = (uint16_t)RTE_MIN(RTE_MIN(q->count, contiguous), (uint32_t)TX_BURST);
        uint16_t sent = rte_eth_tx_burst(q->port_id, 0, &q->fifo[q->head], n);
        q->head = (q->head + sent) % q->cap;
        q->count -= sent;
        q->sent += sent;
        if (sent < n) {
            q->partial_bursts++;
            return; /* the driver is full: the rest waits for the next flush */
        }
    }
}

uint32_t port_txq_discard(struct port_txq *q)
{
    uint32_t n = q->count;
    while (q->count) {
        rte_pktmbuf_free(q->fifo[q->head]);
        q->head = (q->head + 1) % q->cap;
        q->count--;
    }
    return n;
}
