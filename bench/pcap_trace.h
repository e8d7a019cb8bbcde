/*
 * pcap_trace.h — a PVM/SVM pcap pair as chardev records, for the load generator.
 *
 * Loads two pcap files (libpcap: classic or pcapng, Ethernet), merges their frames
 * by time (the PVM's first at equal times, file order within a side) and renders
 * them as chardev records, `loops` times over: pass k (numbered from first_pass)
 * moves every IPv4 frame to other addresses (the second and third octets of
 * source and destination plus k), so each pass is new connections to the proxy,
 * not retransmissions; 65536 passes before addresses repeat.
 * Frames of other kinds repeat as they are.
 *
 * It also indexes the trace for checking what comes back: which connection each
 * record belongs to, which SVM records differ from their PVM twin (the same
 * connection, the same position in it), and which PVM record a released frame is.
 */
#ifndef COLO_BENCH_PCAP_TRACE_H
#define COLO_BENCH_PCAP_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct trace_record {
    uint8_t side;      /* 0: PVM (primary_in), 1: SVM (secondary_in) */
    bool divergent;    /* SVM: differs from the PVM record at its place in the connection */
    uint32_t conn;     /* connection number (addresses, protocol, ports) */
    uint32_t pvm_ord;  /* PVM: its number among the PVM records */
    uint32_t twin_ord; /* SVM: pvm_ord of its twin, or TRACE_NO_TWIN */
    uint32_t len;      /* bytes in `bytes`, record header included */
    uint8_t *bytes;    /* the chardev record: be32 length, then the frame */
};

#define TRACE_NO_TWIN UINT32_MAX

struct pvm_key;

struct trace {
    struct trace_record *records;
    size_t count, pvm_count;
    uint32_t conns;
    size_t *pvm_records;      /* record index of each PVM record, by pvm_ord */
    struct pvm_key *pvm_keys; /* PVM records by content, for trace_match */
    uint8_t *matched;         /* per PVM record: already seen on outdev */
};

/* 0, or -1 with a line on stderr naming the file. */
int trace_load(struct trace *t, const char *pvm_pcap, const char *svm_pcap, unsigned first_pass, unsigned loops);
void trace_free(struct trace *t);

/* The PVM record (by pvm_ord) a released frame is, first unmatched one first; -1 if none. */
int64_t trace_match(struct trace *t, const uint8_t *frame, uint32_t len);

/* The record of PVM number `ord`. */
const struct trace_record *trace_pvm(const struct trace *t, uint32_t ord);

#endif
