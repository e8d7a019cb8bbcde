/*
 * epoch_marker.h — the secondary's word that its SVM resumed, in line with its output.
 *
 * Every COLO checkpoint stops and restarts a vhost-user NIC: when the SVM's port comes
 * up again, the SVM runs from the new checkpoint. The secondary colo-proxy then sends
 * one marker frame on the link, in the same FIFO as the SVM's output, before any frame
 * the SVM sent after resuming: ethertype 0x88B6 (IEEE 802 local experimental 2), the
 * magic "COLOEP", version 1, the epoch number (one more per resume) and how long the
 * SVM's port was down. On the primary, every SVM frame belongs to the epoch of the
 * last marker before it on the link, so a checkpoint can tell the SVM's output from
 * before its resume (stale) from what came after (to be compared). Marker frames are
 * taken off the link before any compare stage: they never reach a client or a VM.
 *
 * Pure logic over bytes: the pipeline owns the ports.
 */
#ifndef COLO_EPOCH_MARKER_H
#define COLO_EPOCH_MARKER_H

#include <stdbool.h>
#include <stdint.h>

#define EPOCH_MARKER_ETHERTYPE 0x88b6
#define EPOCH_MARKER_FRAME_LEN 60

struct epoch_marker {
    uint32_t epoch;        /* the epoch that begins with this marker */
    uint32_t down_us;      /* how long the SVM's port was down before it (saturates) */
};

/* Is this frame a marker (to be consumed by epoch_marker_read)? */
bool epoch_marker_is_frame(const uint8_t *frame, uint32_t len);

/* Writes a marker (EPOCH_MARKER_FRAME_LEN bytes). */
void epoch_marker_write(uint8_t frame[EPOCH_MARKER_FRAME_LEN], const struct epoch_marker *m);

/* Reads a marker; false when it is truncated, foreign or of another version. */
bool epoch_marker_read(const uint8_t *frame, uint32_t len, struct epoch_marker *m);

#endif
