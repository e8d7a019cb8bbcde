/*
 * pcap_trace.c — a PVM/SVM pcap pair as chardev records, indexed (see pcap_trace.h).
 *
 * The files are read by colo-proxy's own pcap port (libpcap underneath); every
 * header field read here is bounds-checked against the captured length.
 */
#include "pcap_trace.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "colo/pcap_port.h"

#define RECORD_HEADER 4
#define ETH_HEADER 14

struct frame {
    uint64_t ts_ns;
    uint32_t order; /* position in its file: ties keep file order */
    uint8_t side;
    const struct pcap_record *rec;
};

struct pvm_key {
    uint64_t hash;
    uint32_t ord;
};

static uint64_t fnv(uint64_t h, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

/* Addresses, protocol and ports of an IPv4/IPv6 frame (VLAN tags skipped); else its EtherType. */
static uint64_t conn_key(const uint8_t *f, uint32_t len)
{
    uint64_t h = 0xcbf29ce484222325ull;
    uint32_t off = 12;
    while (off + 4 <= len && ((f[off] == 0x81 && f[off + 1] == 0x00) || (f[off] == 0x88 && f[off + 1] == 0xa8)))
        off += 4;
    if (off + 2 > len)
        return h;
    uint16_t type = (uint16_t)(f[off] << 8 | f[off + 1]);
    const uint8_t *ip = f + off + 2;
    uint32_t room = len - off - 2;
    uint32_t addrs_at, addrs_len, l4_at, proto;
    if (type == 0x0800 && room >= 20) {
        addrs_at = 12, addrs_len = 8, proto = ip[9], l4_at = (uint32_t)(ip[0] & 0x0f) * 4;
        if ((ip[6] & 0x1f) || ip[7]) /* a fragment past the first: no ports */
            l4_at = room;
    } else if (type == 0x86dd && room >= 40) {
        addrs_at = 8, addrs_len = 32, proto = ip[6], l4_at = 40;
    } else {
        return fnv(h, f + off, 2);
    }
    h = fnv(h, ip + addrs_at, addrs_len);
    h = fnv(h, (const uint8_t *)&proto, 1);
    if ((proto == 6 || proto == 17) && l4_at + 4 <= room)
        h = fnv(h, ip + l4_at, 4);
    return h;
}

/* What identifies a released frame: its length, its headers and its last bytes. */
static uint64_t content_hash(const uint8_t *f, uint32_t len)
{
    uint64_t h = fnv(0xcbf29ce484222325ull, (const uint8_t *)&len, sizeof(len));
    h = fnv(h, f, len < 80 ? len : 80);
    return len > 80 ? fnv(h, f + len - 8, 8) : h;
}

static int by_time(const void *a, const void *b)
{
    const struct frame *x = a, *y = b;
    if (x->ts_ns != y->ts_ns)
        return x->ts_ns < y->ts_ns ? -1 : 1;
    if (x->side != y->side)
        return (int)x->side - (int)y->side;
    return x->order < y->order ? -1 : x->order > y->order;
}

static int by_key(const void *a, const void *b)
{
    const struct pvm_key *x = a, *y = b;
    if (x->hash != y->hash)
        return x->hash < y->hash ? -1 : 1;
    return x->ord < y->ord ? -1 : x->ord > y->ord;
}

/* Pass `pass` of an IPv4 frame: other addresses (second and third octets), so other connections. */
static void shift_ipv4(uint8_t *frame, uint32_t len, unsigned pass)
{
    if (len < ETH_HEADER + 20 || frame[12] != 0x08 || frame[13] != 0x00)
        return;
    for (int addr = 12; addr <= 16; addr += 4) {
        frame[ETH_HEADER + addr + 1] = (uint8_t)(frame[ETH_HEADER + addr + 1] + (pass >> 8));
        frame[ETH_HEADER + addr + 2] = (uint8_t)(frame[ETH_HEADER + addr + 2] + pass);
    }
}

static uint8_t *record_bytes(const uint8_t *frame, uint32_t len, unsigned loop)
{
    uint8_t *r = malloc(RECORD_HEADER + (size_t)len);
    if (!r)
        return NULL;
    r[0] = (uint8_t)(len >> 24);
    r[1] = (uint8_t)(len >> 16);
    r[2] = (uint8_t)(len >> 8);
    r[3] = (uint8_t)len;
    memcpy(r + RECORD_HEADER, frame, len);
    shift_ipv4(r + RECORD_HEADER, len, loop);
    return r;
}

struct key_slot {
    uint64_t key;
    size_t record;
};

static int by_slot(const void *a, const void *b)
{
    const struct key_slot *x = a, *y = b;
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    return x->record < y->record ? -1 : x->record > y->record;
}

/* Numbers the connections; returns the per-record PVM/SVM position in its connection. */
static uint32_t *number_connections(struct trace *t)
{
    struct key_slot *slots = malloc(t->count * sizeof(*slots));
    uint32_t *pos = malloc(t->count * sizeof(*pos));
    if (!slots || !pos) {
        free(slots);
        free(pos);
        return NULL;
    }
    for (size_t i = 0; i < t->count; i++) {
        slots[i].key = conn_key(t->records[i].bytes + RECORD_HEADER, t->records[i].len - RECORD_HEADER);
        slots[i].record = i;
    }
    qsort(slots, t->count, sizeof(*slots), by_slot);
    uint32_t seen[2] = { 0, 0 };
    for (size_t i = 0; i < t->count; i++) {
        if (i == 0 || slots[i].key != slots[i - 1].key) {
            t->conns++;
            seen[0] = seen[1] = 0;
        }
        struct trace_record *r = &t->records[slots[i].record];
        r->conn = t->conns - 1;
        pos[slots[i].record] = seen[r->side]++;
    }
    free(slots);
    return pos;
}

/* Marks the SVM records that differ from the PVM record at the same place in their connection. */
static int mark_divergent(struct trace *t, const uint32_t *pos)
{
    size_t *first = calloc((size_t)t->conns + 1, sizeof(*first));
    size_t *by_conn = malloc((t->pvm_count ? t->pvm_count : 1) * sizeof(*by_conn));
    if (!first || !by_conn) {
        free(first);
        free(by_conn);
        return -1;
    }
    for (size_t i = 0; i < t->count; i++)
        first[t->records[i].conn + 1] += t->records[i].side == 0;
    for (uint32_t c = 0; c < t->conns; c++)
        first[c + 1] += first[c];
    for (size_t i = 0; i < t->count; i++)
        if (t->records[i].side == 0)
            by_conn[first[t->records[i].conn] + pos[i]] = i;
    for (size_t i = 0; i < t->count; i++) {
        struct trace_record *r = &t->records[i];
        if (r->side != 1)
            continue;
        size_t at = first[r->conn] + pos[i];
        const struct trace_record *twin = at < first[r->conn + 1] ? &t->records[by_conn[at]] : NULL;
        r->divergent = !twin || twin->len != r->len || memcmp(twin->bytes, r->bytes, r->len) != 0;
        r->twin_ord = twin ? twin->pvm_ord : TRACE_NO_TWIN;
    }
    free(first);
    free(by_conn);
    return 0;
}

static int index_pvm(struct trace *t)
{
    size_t n = t->pvm_count ? t->pvm_count : 1;
    t->pvm_records = malloc(n * sizeof(*t->pvm_records));
    t->pvm_keys = malloc(n * sizeof(*t->pvm_keys));
    t->matched = calloc(n, 1);
    if (!t->pvm_records || !t->pvm_keys || !t->matched)
        return -1;
    uint32_t ord = 0;
    for (size_t i = 0; i < t->count; i++) {
        struct trace_record *r = &t->records[i];
        if (r->side != 0)
            continue;
        r->pvm_ord = ord;
        t->pvm_records[ord] = i;
        t->pvm_keys[ord].hash = content_hash(r->bytes + RECORD_HEADER, r->len - RECORD_HEADER);
        t->pvm_keys[ord].ord = ord;
        ord++;
    }
    qsort(t->pvm_keys, t->pvm_count, sizeof(*t->pvm_keys), by_key);
    uint32_t *pos = number_connections(t);
    int rc = pos ? mark_divergent(t, pos) : -1;
    free(pos);
    return rc;
}

static int render(struct trace *t, struct frame *f, size_t n, unsigned first_pass, unsigned loops)
{
    size_t total = n * loops;
    t->records = calloc(total ? total : 1, sizeof(*t->records));
    if (!t->records)
        return -1;
    for (unsigned loop = 0; loop < loops; loop++) {
        for (size_t i = 0; i < n; i++) {
            struct trace_record *r = &t->records[t->count];
            r->side = f[i].side;
            r->len = RECORD_HEADER + f[i].rec->len;
            r->bytes = record_bytes(f[i].rec->data, f[i].rec->len, first_pass + loop);
            if (!r->bytes)
                return -1;
            t->count++;
            t->pvm_count += r->side == 0;
        }
    }
    return 0;
}

int trace_load(struct trace *t, const char *pvm_pcap, const char *svm_pcap, unsigned first_pass, unsigned loops)
{
    memset(t, 0, sizeof(*t));
    struct pcap_trace side[2];
    const char *path[2] = { pvm_pcap, svm_pcap };
    char err[256];
    memset(side, 0, sizeof(side));
    for (int s = 0; s < 2; s++) {
        if (pcap_trace_load(path[s], &side[s], err, sizeof(err)) != 0) {
            fprintf(stderr, "pcap_trace: %s\n", err);
            pcap_trace_free(&side[0]);
            return -1;
        }
    }
    size_t n = side[0].count + side[1].count;
    struct frame *f = malloc((n ? n : 1) * sizeof(*f));
    int rc = f ? 0 : -1;
    for (size_t i = 0, k = 0; f && i < 2; i++)
        for (size_t j = 0; j < side[i].count; j++, k++)
            f[k] = (struct frame){ side[i].records[j].ts_ns, (uint32_t)j, (uint8_t)i, &side[i].records[j] };
    if (f) {
        qsort(f, n, sizeof(*f), by_time);
        rc = render(t, f, n, first_pass, loops);
    }
    if (rc == 0)
        rc = index_pvm(t);
    if (rc != 0) {
        fprintf(stderr, "pcap_trace: out of memory for %s and %s, %u passes\n", pvm_pcap, svm_pcap, loops);
        trace_free(t);
    }
    free(f);
    pcap_trace_free(&side[0]);
    pcap_trace_free(&side[1]);
    return rc;
}

int64_t trace_match(struct trace *t, const uint8_t *frame, uint32_t len)
{
    struct pvm_key probe = { content_hash(frame, len), 0 };
    size_t lo = 0, hi = t->pvm_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (by_key(&t->pvm_keys[mid], &probe) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t i = lo; i < t->pvm_count && t->pvm_keys[i].hash == probe.hash; i++) {
        uint32_t ord = t->pvm_keys[i].ord;
        const struct trace_record *r = trace_pvm(t, ord);
        if (!t->matched[ord] && r->len == RECORD_HEADER + len && memcmp(r->bytes + RECORD_HEADER, frame, len) == 0) {
            t->matched[ord] = 1;
            return ord;
        }
    }
    return -1;
}

const struct trace_record *trace_pvm(const struct trace *t, uint32_t ord)
{
    return &t->records[t->pvm_records[ord]];
}

void trace_free(struct trace *t)
{
    for (size_t i = 0; t->records && i < t->count; i++)
        free(t->records[i].bytes);
    free(t->records);
    free(t->pvm_records);
    free(t->pvm_keys);
    free(t->matched);
    memset(t, 0, sizeof(*t));
}
