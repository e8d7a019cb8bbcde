/*
 * make_trace.c — writes the PVM/SVM pcap pair of one benchmark scenario.
 *
 *   make_trace PAYLOAD PACKETS FLOWS PVM.pcap SVM.pcap [--batch B] [--diverge-every N]
 *
 * PACKETS TCP segments from the guest (10.0.0.2:80) to FLOWS clients
 * (10.0.0.1, ports 10000 + flow), round-robin, PAYLOAD bytes each, in
 * sequence within each flow; the SVM file holds the same segments. Timestamps
 * interleave the two files in batches of B records (64 unless told; 1 for paced
 * latency runs: each PVM record, then its twin). With --diverge-every N, every
 * Nth SVM segment differs from its twin in its first payload byte.
 * bench/run writes its scenarios with it; any pair of pcaps replays the same way.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "colo/pcap_port.h"
#include "colo/pkt.h"
#include "frame_builder.h"

#define US 1000ull

static void usage(void)
{
    fprintf(stderr, "usage: make_trace PAYLOAD PACKETS FLOWS PVM.pcap SVM.pcap [--batch B] [--diverge-every N]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    if (argc < 6 || (argc - 6) % 2)
        usage();
    uint32_t payload = (uint32_t)atoi(argv[1]), packets = (uint32_t)atoi(argv[2]), flows = (uint32_t)atoi(argv[3]);
    uint32_t batch = 64, diverge_every = 0;
    for (int a = 6; a < argc; a += 2) {
        if (strcmp(argv[a], "--batch") == 0)
            batch = (uint32_t)atoi(argv[a + 1]);
        else if (strcmp(argv[a], "--diverge-every") == 0)
            diverge_every = (uint32_t)atoi(argv[a + 1]);
        else
            usage();
    }
    if (payload < 1 || payload > 1460 || !flows || !batch)
        usage();
    char err[256];
    struct pcap_sink *side[2] = { pcap_sink_open(argv[4], err, sizeof(err)), NULL };
    if (side[0])
        side[1] = pcap_sink_open(argv[5], err, sizeof(err));
    if (!side[0] || !side[1]) {
        fprintf(stderr, "make_trace: %s\n", err);
        return 1;
    }
    static uint8_t data[1460], frame[2048];
    memset(data, 'p', sizeof(data));
    for (uint32_t i = 0; i < packets; i++) {
        struct frame_spec s = frame_guest_tcp(1000 + (i / flows) * payload, 1, TCPF_ACK | TCPF_PSH, data, payload);
        s.dport = (uint16_t)(10000 + i % flows);
        size_t len = frame_build(&s, frame, sizeof(frame));
        uint64_t at = (uint64_t)(i / batch) * 2 * batch * US + (i % batch) * US;
        pcap_sink_write(side[0], at, frame, (uint32_t)len);
        if (diverge_every && i % diverge_every == diverge_every - 1)
            frame[len - payload] ^= 0xff;
        pcap_sink_write(side[1], at + batch * US, frame, (uint32_t)len);
    }
    pcap_sink_close(side[0]);
    pcap_sink_close(side[1]);
    return 0;
}
