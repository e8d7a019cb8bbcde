/*
 * pcap_trace.c — a recorded PVM/SVM pair as chardev records (see pcap_trace.h).
 *
 * Trusts nothing in the files: every length is checked against what was read.
 */
#include "pcap_trace.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PCAP_MAGIC_US 0xa1b2c3d4u
#define PCAP_MAGIC_NS 0xa1b23c4du
#define LINKTYPE_ETHERNET 1
#define MAX_FRAME 65535u
#define RECORD_HEADER 4

struct frame {
    double t;
    uint8_t side;
    uint32_t len;
    uint8_t *bytes;
};

static uint32_t u32(const uint8_t *p, int swap)
{
    uint32_t v = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    return swap ? __builtin_bswap32(v) : v;
}

/* Appends the file's frames to `f`; returns the new count, or -1. */
static long read_pcap(const char *path, uint8_t side, struct frame **f, long n, long *cap)
{
    FILE *in = fopen(path, "rb");
    uint8_t gh[24], rh[16];
    if (!in || fread(gh, 1, sizeof(gh), in) != sizeof(gh)) {
        fprintf(stderr, "pcap_trace: cannot read %s\n", path);
        if (in)
            fclose(in);
        return -1;
    }
    uint32_t magic = u32(gh, 0);
    int swap = magic == __builtin_bswap32(PCAP_MAGIC_US) || magic == __builtin_bswap32(PCAP_MAGIC_NS);
    double tick = (u32(gh, swap) == PCAP_MAGIC_NS) ? 1e-9 : 1e-6;
    if ((u32(gh, swap) != PCAP_MAGIC_US && u32(gh, swap) != PCAP_MAGIC_NS) || u32(gh + 20, swap) != LINKTYPE_ETHERNET) {
        fprintf(stderr, "pcap_trace: %s is not a classic Ethernet pcap\n", path);
        fclose(in);
        return -1;
    }
    while (fread(rh, 1, sizeof(rh), in) == sizeof(rh)) {
        uint32_t len = u32(rh + 8, swap);
        if (len > MAX_FRAME) {
            fprintf(stderr, "pcap_trace: %s: a frame of %u bytes; stopping there\n", path, len);
            break;
        }
        if (n == *cap) {
            *cap = *cap ? *cap * 2 : 4096;
            *f = realloc(*f, (size_t)*cap * sizeof(**f));
        }
        struct frame *fr = &(*f)[n];
        fr->bytes = malloc(len ? len : 1);
        if (fread(fr->bytes, 1, len, in) != len) {
            free(fr->bytes);
            break;
        }
        fr->t = (double)u32(rh, swap) + (double)u32(rh + 4, swap) * tick;
        fr->side = side;
        fr->len = len;
        n++;
    }
    fclose(in);
    return n;
}

static int by_time(const void *a, const void *b)
{
    const struct frame *x = a, *y = b;
    if (x->t != y->t)
        return x->t < y->t ? -1 : 1;
    return (int)x->side - (int)y->side;
}

/* Pass `loop` of an IPv4 frame: other addresses, so other connections. */
static void shift_ipv4(uint8_t *frame, uint32_t len, unsigned loop)
{
    if (len < 14 + 20 || frame[12] != 0x08 || frame[13] != 0x00)
        return;
    frame[14 + 12 + 2] = (uint8_t)(frame[14 + 12 + 2] + loop);
    frame[14 + 16 + 2] = (uint8_t)(frame[14 + 16 + 2] + loop);
}

int trace_load(struct trace *t, const char *pvm_pcap, const char *svm_pcap, unsigned loops)
{
    memset(t, 0, sizeof(*t));
    struct frame *f = NULL;
    long cap = 0, n = read_pcap(pvm_pcap, 0, &f, 0, &cap);
    if (n >= 0)
        n = read_pcap(svm_pcap, 1, &f, n, &cap);
    if (n < 0) {
        free(f);
        return -1;
    }
    qsort(f, (size_t)n, sizeof(*f), by_time);
    t->records = calloc((size_t)n * loops, sizeof(*t->records));
    for (unsigned loop = 0; loop < loops; loop++) {
        for (long i = 0; i < n; i++) {
            struct trace_record *r = &t->records[t->count++];
            r->side = f[i].side;
            r->len = RECORD_HEADER + f[i].len;
            r->bytes = malloc(r->len);
            r->bytes[0] = (uint8_t)(f[i].len >> 24);
            r->bytes[1] = (uint8_t)(f[i].len >> 16);
            r->bytes[2] = (uint8_t)(f[i].len >> 8);
            r->bytes[3] = (uint8_t)f[i].len;
            memcpy(r->bytes + RECORD_HEADER, f[i].bytes, f[i].len);
            shift_ipv4(r->bytes + RECORD_HEADER, f[i].len, loop);
            t->pvm_count += r->side == 0;
        }
    }
    for (long i = 0; i < n; i++)
        free(f[i].bytes);
    free(f);
    return 0;
}

void trace_free(struct trace *t)
{
    for (size_t i = 0; i < t->count; i++)
        free(t->records[i].bytes);
    free(t->records);
    memset(t, 0, sizeof(*t));
}
