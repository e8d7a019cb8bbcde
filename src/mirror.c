/*
 * mirror.c — zero-copy duplication of client ingress for the secondary.
 *
 * Owns: the decision which client frames the SVM must see, and the clone.
 * A failed clone is counted, never fatal: the SVM then misses one frame, which
 * the compare catches (divergence or timeout, then a checkpoint); the PVM's
 * frame is never held back for it.
 */
#include "colo/mirror.h"

#include <rte_ether.h>
#include <rte_mbuf.h>

bool mirror_frame_is_for_vm(const struct rte_mbuf *m, const struct rte_ether_addr *vm_mac)
{
    if (!vm_mac || rte_pktmbuf_data_len(m) < RTE_ETHER_HDR_LEN)
        return true;
    const struct rte_ether_hdr *eth = rte_pktmbuf_mtod(m, const struct rte_ether_hdr *);
    return rte_is_multicast_ether_addr(&eth->dst_addr) ||
           rte_is_same_ether_addr(&eth->dst_addr, vm_mac);
}

struct rte_mbuf *mirror_clone(struct rte_mbuf *m, struct rte_mempool *clone_pool,
                              struct mirror_stats *stats)
{
    struct rte_mbuf *copy = rte_pktmbuf_clone(m, clone_pool);
    if (copy)
        stats->mirrored++;
    else
        stats->clone_failed++;
    return copy;
}
