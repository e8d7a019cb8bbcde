/*
 * pcap_trace.h — a recorded PVM/SVM pair as chardev records, for the load generator.
 *
 * Reads two classic pcap files (Ethernet), merges their frames by time (the PVM's
 * first at equal times) and renders them as chardev records, `loops` times over:
 * each pass moves every IPv4 frame to other addresses (the third octet of source
 * and destination plus the pass number), so each pass is new connections to the
 * proxy, not retransmissions. Frames of other kinds repeat as they are.
 */
#ifndef COLO_BENCH_PCAP_TRACE_H
#define COLO_BENCH_PCAP_TRACE_H

#include <stddef.h>
#include <stdint.h>

struct trace_record {
    uint8_t side;   /* 0: PVM (primary_in), 1: SVM (secondary_in) */
    uint32_t len;   /* bytes in `bytes`, record header included */
    uint8_t *bytes; /* the chardev record: be32 length, then the frame */
};

struct trace {
    struct trace_record *records;
    size_t count, pvm_count;
};

/* 0, or -1 with a line on stderr naming the file. */
int trace_load(struct trace *t, const char *pvm_pcap, const char *svm_pcap, unsigned loops);
void trace_free(struct trace *t);

#endif
