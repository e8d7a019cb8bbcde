/*
 * divergence_explain.c — a divergence report, printed for a person, with hints.
 *
 * The hex view aligns the two sides on their first differing byte (their frames
 * may be cut differently) and shows the rows around it, offsets in the stream
 * for TCP and in the payload otherwise, in decimal like every other offset it
 * prints; every byte that differs in the view is marked. Hints are pattern checks on the bytes near the difference: an HTTP
 * header known to carry time or tokens, digits that differ (time, counters),
 * random-looking bytes (urandom, nonces); FIN and RST divergences have their own.
 */
#include "colo/divergence_explain.h"

#include <ctype.h>
#include <glib.h>
#include <inttypes.h>
#include <string.h>

#include "colo/pcap_port.h"
#include "colo/pkt_parse.h"

#define ROW 16
#define ROWS_BEFORE 2
#define ROWS_AFTER 3
#define RUN_SCAN 32
#define OFFSET_W 14 /* "payload offset" */

/* ---- hints ---- */

/* The line (of text) around at: [*start, *end). */
static void line_around(const uint8_t *b, size_t len, size_t at, size_t *start, size_t *end)
{
    size_t s = at, e = at;
    while (s > 0 && b[s - 1] != '\n')
        s--;
    while (e < len && b[e] != '\r' && b[e] != '\n')
        e++;
    *start = s;
    *end = e;
}

static bool line_starts_with(const uint8_t *b, size_t start, size_t end, const char *prefix)
{
    size_t n = strlen(prefix);
    return end - start >= n && g_ascii_strncasecmp((const char *)b + start, prefix, n) == 0;
}

/* How many bytes from the difference on differ (up to RUN_SCAN). */
static size_t differing_run(const uint8_t *pvm, size_t pvm_len, size_t pvm_at, const uint8_t *svm, size_t svm_len,
                            size_t svm_at)
{
    size_t n = 0, last = 0;
    while (n < RUN_SCAN && pvm_at + n < pvm_len && svm_at + n < svm_len) {
        if (pvm[pvm_at + n] != svm[svm_at + n])
            last = n + 1;
        n++;
    }
    return last;
}

static bool all_digits(const uint8_t *b, size_t len, size_t at, size_t run)
{
    for (size_t i = at; i < at + run && i < len; i++)
        if (!isdigit(b[i]) && b[i] != ':' && b[i] != '.' && b[i] != ' ')
            return false;
    return run > 0 && at < len && isdigit(b[at]);
}

static bool looks_random(const uint8_t *b, size_t len, size_t at, size_t run)
{
    size_t odd = 0, n = 0;
    for (size_t i = at; i < at + run && i < len; i++, n++)
        odd += !isalnum(b[i]) && b[i] != ' ';
    return n >= 8 && (odd * 4 >= n || run >= RUN_SCAN - 4);
}

static const char *http_header_hint(const uint8_t *pvm, size_t pvm_len, size_t pvm_at)
{
    static const struct { const char *header, *hint; } known[] = {
        { "Date:", "an HTTP Date: header: the two guests' clocks differ (a checkpoint brings them together; an "
                   "SVM clock running ahead makes it come back)" },
        { "Last-Modified:", "an HTTP Last-Modified: header: the file's time differs between the guests" },
        { "Expires:", "an HTTP Expires: header, computed from each guest's clock" },
        { "ETag:", "an HTTP ETag: header, made from file times or a random value on each guest" },
        { "Set-Cookie:", "an HTTP Set-Cookie: header: a session token each guest draws on its own" },
    };
    size_t start, end;
    line_around(pvm, pvm_len, pvm_at, &start, &end);
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (line_starts_with(pvm, start, end, known[i].header))
            return known[i].hint;
    return NULL;
}

const char *divergence_hint(enum divergence_kind kind, const uint8_t *pvm, size_t pvm_len, size_t pvm_at,
                            const uint8_t *svm, size_t svm_len, size_t svm_at)
{
    switch (kind) {
    case DIV_FIN_VS_DATA:
        return "one guest ended the stream here while the other sent more: their applications wrote "
               "different amounts (e.g. responses of different lengths)";
    case DIV_RST:
        return "one guest reset the connection where the other closed it or carried on: often a program that "
               "exits with unread input on one guest only";
    case DIV_DATAGRAM_LEN:
        return "datagrams of different lengths: the applications produced different messages";
    default:
        break;
    }
    if (pvm_at >= pvm_len || svm_at >= svm_len)
        return NULL;
    const char *header = http_header_hint(pvm, pvm_len, pvm_at);
    if (header)
        return header;
    size_t run = differing_run(pvm, pvm_len, pvm_at, svm, svm_len, svm_at);
    if (all_digits(pvm, pvm_len, pvm_at, run) && all_digits(svm, svm_len, svm_at, run))
        return "a number differs: a timestamp, counter or identifier that depends on time or on state the two "
               "guests do not share";
    if (looks_random(pvm, pvm_len, pvm_at, run) && looks_random(svm, svm_len, svm_at, run))
        return "random-looking bytes differ (/dev/urandom output, a nonce, a key or a token): they match only "
               "right after a checkpoint, when both guests hold the same generator state";
    return NULL;
}

/* ---- reading a report ---- */

struct report_side {
    struct pcap_trace trace;
    int64_t packet, byte;        /* the diverging packet and the frame offset of its first differing byte */
    const uint8_t *payload;      /* that packet's payload */
    size_t payload_len, at;      /* and the difference's offset in it */
};

struct report {
    GKeyFile *meta;
    char *connection, *kind_name;
    enum divergence_kind kind;
    uint64_t stream_offset, number;
    struct report_side side[2];
};

static char *base_of(const char *file)
{
    static const char *const suffixes[] = { "-pvm.pcap", "-svm.pcap", ".txt" };
    for (size_t i = 0; i < 3; i++)
        if (g_str_has_suffix(file, suffixes[i]))
            return g_strndup(file, strlen(file) - strlen(suffixes[i]));
    return NULL;
}

static enum divergence_kind kind_of(const char *name)
{
    for (int k = 0; k < DIV_KIND_COUNT; k++)
        if (strcmp(name, divergence_kind_name((enum divergence_kind)k)) == 0)
            return (enum divergence_kind)k;
    return DIV_PAYLOAD;
}

static int load_side(struct report *r, int s, const char *base, char *err, size_t errlen)
{
    static const char *const name[2] = { "pvm", "svm" };
    struct report_side *side = &r->side[s];
    g_autofree char *path = g_strdup_printf("%s-%s.pcap", base, name[s]);
    g_autofree char *packet_key = g_strdup_printf("%s_packet", name[s]);
    g_autofree char *byte_key = g_strdup_printf("%s_byte", name[s]);
    side->packet = g_key_file_get_int64(r->meta, "divergence", packet_key, NULL);
    side->byte = g_key_file_get_int64(r->meta, "divergence", byte_key, NULL);
    if (pcap_trace_load(path, &side->trace, err, errlen) != 0)
        return -1;
    if (side->packet < 0 || (size_t)side->packet >= side->trace.count)
        return 0; /* this side has no diverging packet (e.g. the SVM sent nothing) */
    const struct pcap_record *rec = &side->trace.records[side->packet];
    struct pkt_view v;
    pkt_parse(rec->data, rec->len, &v);
    if (v.payload_off > rec->len || side->byte < (int64_t)v.payload_off || side->byte > (int64_t)rec->len) {
        side->packet = -1;
        return 0;
    }
    side->payload = rec->data + v.payload_off;
    side->payload_len = v.payload_len <= rec->len - v.payload_off ? v.payload_len : rec->len - v.payload_off;
    side->at = (size_t)side->byte - v.payload_off;
    if (side->at > side->payload_len)
        side->packet = -1;
    return 0;
}

static void report_free(struct report *r)
{
    for (int s = 0; s < 2; s++)
        pcap_trace_free(&r->side[s].trace);
    g_free(r->connection);
    g_free(r->kind_name);
    if (r->meta)
        g_key_file_free(r->meta);
}

static int report_load(struct report *r, const char *file, char *err, size_t errlen)
{
    g_autofree char *base = base_of(file);
    if (!base) {
        snprintf(err, errlen, "'%s' is not a divergence report: give divergence-N.txt or one of its pcaps", file);
        return -1;
    }
    g_autofree char *meta = g_strdup_printf("%s.txt", base);
    r->meta = g_key_file_new();
    GError *e = NULL;
    if (!g_key_file_load_from_file(r->meta, meta, G_KEY_FILE_NONE, &e)) {
        snprintf(err, errlen, "cannot read the report '%s': %s", meta, e->message);
        g_error_free(e);
        return -1;
    }
    r->connection = g_key_file_get_string(r->meta, "divergence", "connection", NULL);
    r->kind_name = g_key_file_get_string(r->meta, "divergence", "kind", NULL);
    if (!r->connection || !r->kind_name) {
        snprintf(err, errlen, "'%s' is not a divergence report (no connection or kind in [divergence])", meta);
        return -1;
    }
    r->kind = kind_of(r->kind_name);
    r->stream_offset = g_key_file_get_uint64(r->meta, "divergence", "stream_offset", NULL);
    r->number = g_key_file_get_uint64(r->meta, "divergence", "number", NULL);
    for (int s = 0; s < 2; s++)
        if (load_side(r, s, base, err, errlen) != 0)
            return -1;
    return 0;
}

/* ---- printing ---- */

static bool has_bytes(const struct report_side *side, int64_t from)
{
    return side->payload && from + ROW > 0 && from < (int64_t)side->payload_len;
}

static void hex_cells(FILE *out, const struct report_side *side, int64_t from)
{
    for (int i = 0; i < ROW; i++) {
        int64_t at = from + i;
        if (side->payload && at >= 0 && (size_t)at < side->payload_len)
            fprintf(out, "%02x ", side->payload[at]);
        else
            fputs("   ", out);
    }
    fputc('|', out);
    for (int i = 0; i < ROW; i++) {
        int64_t at = from + i;
        bool in = side->payload && at >= 0 && (size_t)at < side->payload_len;
        fputc(in ? (isprint(side->payload[at]) ? side->payload[at] : '.') : ' ', out);
    }
    fputc('|', out);
}

static bool differs_at(const struct report *r, int64_t rel)
{
    const struct report_side *p = &r->side[0], *s = &r->side[1];
    int64_t a = (int64_t)p->at + rel, b = (int64_t)s->at + rel;
    bool in_p = p->payload && a >= 0 && (size_t)a < p->payload_len;
    bool in_s = s->payload && b >= 0 && (size_t)b < s->payload_len;
    if (!in_p || !in_s)
        return in_p != in_s && rel >= 0;
    return p->payload[a] != s->payload[b];
}

void divergence_marks(const bool *differs, int n, char *hex, char *text)
{
    for (int i = 0; i < n; i++) {
        memcpy(hex + i * 3, differs[i] ? "^^ " : "   ", 3);
        text[i] = differs[i] ? '^' : ' ';
    }
    hex[n * 3] = text[n] = '\0';
}

static void marker_line(FILE *out, const struct report *r, int64_t rel_row)
{
    bool differs[ROW], any = false;
    for (int i = 0; i < ROW; i++)
        any |= differs[i] = differs_at(r, rel_row + i);
    if (!any)
        return;
    char hex[ROW * 3 + 1], text[ROW + 1];
    divergence_marks(differs, ROW, hex, text);
    fprintf(out, "%*s %s %s  %s %s\n", OFFSET_W, "", hex, text, hex, text);
}

static void hex_view(FILE *out, const struct report *r)
{
    bool tcp = r->kind != DIV_DATAGRAM_LEN && strncmp(r->connection, "tcp", 3) == 0;
    int64_t first_row = -(int64_t)(r->side[0].at % ROW) - ROWS_BEFORE * ROW;
    fprintf(out, "%*s %-48s %-18s  %-48s %s\n", OFFSET_W, tcp ? "stream offset" : "payload offset", "PVM", "", "SVM",
            "");
    for (int row = 0; row < ROWS_BEFORE + ROWS_AFTER + 1; row++) {
        int64_t rel = first_row + row * ROW;
        int64_t pvm_from = (int64_t)r->side[0].at + rel;
        int64_t label = tcp ? (int64_t)r->stream_offset + rel : pvm_from;
        if (label < 0 || (!has_bytes(&r->side[0], pvm_from) && !has_bytes(&r->side[1], (int64_t)r->side[1].at + rel)))
            continue;
        fprintf(out, "%*" PRId64 " ", OFFSET_W, label);
        hex_cells(out, &r->side[0], pvm_from);
        fputs("  ", out);
        hex_cells(out, &r->side[1], (int64_t)r->side[1].at + rel);
        fputc('\n', out);
        marker_line(out, r, rel);
    }
}

static const char *plural(size_t n)
{
    return n == 1 ? "" : "s";
}

int divergence_explain(const char *file, FILE *out, char *err, size_t errlen)
{
    struct report r = { .meta = NULL };
    if (report_load(&r, file, err, errlen) != 0) {
        report_free(&r);
        return -1;
    }
    g_autofree char *when = g_key_file_get_string(r.meta, "divergence", "time", NULL);
    fprintf(out, "divergence %" PRIu64 " (%s) on %s\n", r.number, r.kind_name, r.connection);
    fprintf(out, "  at stream offset %" PRIu64 ", %s\n", r.stream_offset, when ? when : "time unknown");
    for (int s = 0; s < 2; s++) {
        const struct report_side *side = &r.side[s];
        fprintf(out, "  %s: %zu packet%s held", s ? "SVM" : "PVM", side->trace.count, plural(side->trace.count));
        if (side->payload)
            fprintf(out, "; packet %" PRId64 " differs at payload byte %zu of %zu byte%s", side->packet + 1,
                    side->at, side->payload_len, plural(side->payload_len));
        fputc('\n', out);
    }
    fputc('\n', out);
    if (r.side[0].payload || r.side[1].payload)
        hex_view(out, &r);
    const struct report_side *p = &r.side[0], *s = &r.side[1];
    const char *hint = divergence_hint(r.kind, p->payload, p->payload_len, p->at, s->payload, s->payload_len, s->at);
    fprintf(out, "\nhint: %s\n", hint ? hint : "no known cause; compare what the application sent on each guest");
    fprintf(out, "if this traffic is known to differ and does not matter, a bypass rule leaves it uncompared "
                 "(--bypass, see colo-proxy(8))\n");
    report_free(&r);
    return 0;
}
