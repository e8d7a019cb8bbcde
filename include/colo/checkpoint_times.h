/*
 * checkpoint_times.h — recorded checkpoint times for replay.
 *
 * Two forms, told apart by the first non-blank character of the file:
 *   - lines "<begin_seconds> <end_seconds>" on the pcap clock ('#' comments);
 *   - a QMP event log as a real pair's monitor printed it: every STOP followed by
 *     a RESUME is one checkpoint, from the events' "timestamp" fields
 *     (other messages are ignored).
 */
#ifndef COLO_CHECKPOINT_TIMES_H
#define COLO_CHECKPOINT_TIMES_H

#include <stddef.h>
#include <stdint.h>

struct recorded_checkpoint {
    uint64_t begin_ns, end_ns;
};

/* Sorted by end. 0, or -1 with a one-line reason naming the file (and line). */
int checkpoint_times_load(const char *path, struct recorded_checkpoint **out, size_t *count,
                          char *err, size_t errlen);

#endif
