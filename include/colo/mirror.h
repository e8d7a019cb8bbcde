/*
 * mirror.h — duplicating client ingress toward the secondary.
 *
 * A mirrored frame is an indirect mbuf that references the original's data
 * (rte_pktmbuf_clone): no payload is copied, and the data is freed when both
 * the PVM port and the link port are done with it. Frames not addressed to the
 * VM (when its MAC is configured) are not mirrored.
 */
#ifndef COLO_MIRROR_H
#define COLO_MIRROR_H

#include <stdbool.h>
#include <stdint.h>

struct rte_mbuf;
struct rte_mempool;
struct rte_ether_addr;

struct mirror_stats {
    uint64_t mirrored, clone_failed, not_for_vm;
};

/* Is this frame for the VM: its MAC, broadcast or multicast (NULL vm_mac: all are)? */
bool mirror_frame_is_for_vm(const struct rte_mbuf *m, const struct rte_ether_addr *vm_mac);

/* A zero-copy duplicate for the link, or NULL (counted) when the clone pool is empty. */
struct rte_mbuf *mirror_clone(struct rte_mbuf *m, struct rte_mempool *clone_pool,
                              struct mirror_stats *stats);

#endif
