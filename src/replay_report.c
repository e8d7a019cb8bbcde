/*
 * replay_report.c — the replay report, as text for people and JSON for tools.
 *
 * Owns: formatting only. The accounting line (PVM frames in = released) is
 * printed first because it is the property that must always hold.
 */
#include <inttypes.h>

#include "colo/divergence_explain.h"
#include "colo/replay.h"

#define CHECKPOINTS_LISTED 20

static uint64_t total_released(const struct colo_compare_stats *s)
{
    uint64_t n = 0;
    for (int i = 0; i < RELEASE_REASON_COUNT; i++)
        n += s->released[i];
    return n;
}

static uint64_t sum(const uint64_t *v, int n)
{
    uint64_t t = 0;
    for (int i = 0; i < n; i++)
        t += v[i];
    return t;
}

static void hex_column(FILE *out, const uint8_t *b, uint32_t n)
{
    for (uint32_t i = 0; i < DIVERGENCE_SHOW_BYTES; i++) {
        if (i < n)
            fprintf(out, "%02x ", b[i]);
        else
            fputs("   ", out);
    }
    fputs(" |", out);
    for (uint32_t i = 0; i < n; i++)
        fputc(b[i] >= 0x20 && b[i] < 0x7f ? b[i] : '.', out);
    fputs("|", out);
}

/* Under the two rows: "^^" under each byte that differs and '^' under its character, as explain marks them. */
static void marks_row(FILE *out, const struct replay_divergence *d)
{
    bool differs[DIVERGENCE_SHOW_BYTES];
    uint32_t both = d->pvm_shown < d->svm_shown ? d->pvm_shown : d->svm_shown;
    uint32_t any = d->pvm_shown > d->svm_shown ? d->pvm_shown : d->svm_shown;
    for (uint32_t i = 0; i < DIVERGENCE_SHOW_BYTES; i++)
        differs[i] = i < both ? d->pvm_bytes[i] != d->svm_bytes[i] : i < any;
    char hex[DIVERGENCE_SHOW_BYTES * 3 + 1], text[DIVERGENCE_SHOW_BYTES + 1];
    divergence_marks(differs, DIVERGENCE_SHOW_BYTES, hex, text);
    fprintf(out, "       %s  %s\n", hex, text);
}

static const char *kind_meaning(enum divergence_kind k)
{
    switch (k) {
    case DIV_PAYLOAD: return "the bytes differ";
    case DIV_FIN_VS_DATA: return "one side ends the stream (FIN) where the other sends data";
    case DIV_RST: return "one side resets the connection where the other closes or sends data";
    case DIV_DATAGRAM_LEN: return "the datagrams differ in length";
    default: return "";
    }
}

static double rel_s(const struct replay_result *res, uint64_t t)
{
    return t >= res->first_ns ? (double)(t - res->first_ns) / 1e9 : 0.0;
}

/* When each checkpoint was asked for and done, on the same clock as the divergences. */
static void checkpoints_text(const struct replay_result *res, const struct replay_options *opt, FILE *out)
{
    for (size_t i = 0; i < res->checkpoint_count && i < CHECKPOINTS_LISTED; i++) {
        const struct replay_checkpoint *c = &res->checkpoints[i];
        fprintf(out, "  checkpoint %zu: %s at %.6f s", i + 1, c->recorded ? "recorded, began" : "requested",
                rel_s(res, c->requested_ns));
        if (!c->recorded)
            fprintf(out, " (%s)", checkpoint_reason_name(c->reason));
        if (c->done_ns)
            fprintf(out, ", done at %.6f s (%.1f ms later%s)\n", rel_s(res, c->done_ns),
                    (double)(c->done_ns - c->requested_ns) / 1e6,
                    c->recorded || opt->checkpoint_ms == REPLAY_NO_MODEL ? "" : ", --checkpoint-ms");
        else
            fputs(", never done (no checkpoint completes it)\n", out);
    }
    if (res->checkpoint_count > CHECKPOINTS_LISTED)
        fprintf(out, "  ... %zu more (--json lists every one)\n", res->checkpoint_count - CHECKPOINTS_LISTED);
}

/* Where a person goes from here: the first divergence, explained. */
static void next_step(const struct replay_result *res, const struct replay_options *opt, FILE *out)
{
    if (!res->divergence_count)
        return;
    if (opt->reports_dir)
        fprintf(out, "\nnext: colo-proxy explain %s/divergence-1.txt (the bytes around it, and a likely cause)\n",
                opt->reports_dir);
    else
        fputs("\nnext: run again with --reports DIR, then colo-proxy explain DIR/divergence-1.txt (the bytes "
              "around it, and a likely cause)\n", out);
}

void replay_report_text(const struct replay_result *res, const struct replay_options *opt,
                        FILE *out)
{
    const struct colo_compare_stats *s = &res->stats;
    uint64_t released = total_released(s);
    fprintf(out, "colo-proxy replay: %s (PVM) vs %s (SVM)\n", opt->primary_path,
            opt->secondary_path);
    fprintf(out, "accounting: %zu PVM frames in, %" PRIu64 " released%s\n", res->pvm_frames,
            released, released == res->pvm_frames ? " (all)" : " — MISMATCH");
    fprintf(out, "  matched %" PRIu64 ", uncompared (pure ACK/retransmit) %" PRIu64
                 ", held then flushed by checkpoint %" PRIu64 ", forced at end %" PRIu64 ", bypassed %" PRIu64 "\n",
            s->released[RELEASE_MATCHED], s->released[RELEASE_UNCOMPARED],
            s->released[RELEASE_CHECKPOINT], s->released[RELEASE_FORCED], s->released[RELEASE_BYPASSED]);
    fprintf(out, "SVM frames: %zu in, %" PRIu64 " matched, %" PRIu64 " stale, %" PRIu64
                 " uncompared, %" PRIu64 " unmatched (dropped at a checkpoint or the end), %" PRIu64
                 " untracked\n",
            res->svm_frames, s->svm_matched, s->svm_stale, s->svm_uncompared, s->svm_flushed,
            s->svm_untracked);
    fprintf(out, "connections: %" PRIu64 " tracked; memory: %.0f bytes per connection of capacity "
                 "(--max-conns %u: table entry, lookup slots, checkpoint list)\n",
            res->conns_created, res->bytes_per_conn, opt->compare.max_conns);
    fprintf(out, "divergences: %" PRIu64 " (payload %" PRIu64 ", fin_vs_data %" PRIu64
                 ", rst %" PRIu64 ", datagram_length %" PRIu64 ")\n",
            sum(s->divergences, DIV_KIND_COUNT), s->divergences[DIV_PAYLOAD],
            s->divergences[DIV_FIN_VS_DATA], s->divergences[DIV_RST],
            s->divergences[DIV_DATAGRAM_LEN]);
    fprintf(out, "checkpoint requests: %" PRIu64 " (", sum(s->checkpoint_requests, CKPT_REASON_COUNT));
    for (int i = 0; i < CKPT_REASON_COUNT; i++)
        fprintf(out, "%s%s %" PRIu64, i ? ", " : "", checkpoint_reason_name((enum checkpoint_reason)i),
                s->checkpoint_requests[i]);
    fprintf(out, "); checkpoints done: %" PRIu64 "\n", s->checkpoints_done);
    uint64_t malformed = sum(s->malformed, PARSE_STATUS_COUNT);
    if (malformed)
        fprintf(out, "malformed frames (compared whole): %" PRIu64 "\n", malformed);
    if (res->bad_vnet_frames)
        fprintf(out, "malformed frames without a plausible virtio-net header (never compared; PVM ones released "
                     "as uncompared): %" PRIu64 "\n", res->bad_vnet_frames);
    checkpoints_text(res, opt, out);
    for (size_t i = 0; i < res->divergence_count; i++) {
        const struct replay_divergence *d = &res->divergences[i];
        fprintf(out, "\ndivergence %zu at %.6f s: %s\n  %s (%s), stream offset %" PRIu64
                     ", PVM frame %" PRIu64 ", SVM frame %" PRIu64 "\n",
                i + 1, rel_s(res, d->time_ns), d->flow, divergence_kind_name(d->kind),
                kind_meaning(d->kind), d->stream_offset, d->pvm_frame, d->svm_frame);
        if (!d->pvm_shown && !d->svm_shown)
            continue;
        fputs("  PVM: ", out);
        hex_column(out, d->pvm_bytes, d->pvm_shown);
        fputs("\n  SVM: ", out);
        hex_column(out, d->svm_bytes, d->svm_shown);
        fputc('\n', out);
        marks_row(out, d);
    }
    next_step(res, opt, out);
}

static void json_hex(FILE *out, const uint8_t *b, uint32_t n)
{
    fputc('"', out);
    for (uint32_t i = 0; i < n; i++)
        fprintf(out, "%02x", b[i]);
    fputc('"', out);
}

static void json_string(FILE *out, const char *s)
{
    fputc('"', out);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fprintf(out, "\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            fprintf(out, "\\u%04x", *s);
        else
            fputc(*s, out);
    }
    fputc('"', out);
}

static void json_counts(FILE *out, const char *name, const uint64_t *v, int n,
                        const char *(*label)(int))
{
    fprintf(out, "  \"%s\": {", name);
    for (int i = 0; i < n; i++)
        fprintf(out, "%s\"%s\": %" PRIu64, i ? ", " : "", label(i), v[i]);
    fputs("},\n", out);
}

static const char *release_label(int i) { return release_reason_name((enum release_reason)i); }
static const char *div_label(int i) { return divergence_kind_name((enum divergence_kind)i); }
static const char *ckpt_label(int i) { return checkpoint_reason_name((enum checkpoint_reason)i); }

void replay_report_json(const struct replay_result *res, const struct replay_options *opt,
                        FILE *out)
{
    const struct colo_compare_stats *s = &res->stats;
    fputs("{\n  \"primary\": ", out);
    json_string(out, opt->primary_path);
    fputs(",\n  \"secondary\": ", out);
    json_string(out, opt->secondary_path);
    fprintf(out, ",\n  \"pvm_frames\": %zu,\n  \"svm_frames\": %zu,\n  \"released\": %" PRIu64
                 ",\n  \"compared\": %" PRIu64 ",\n  \"held_then_flushed\": %" PRIu64 ",\n",
            res->pvm_frames, res->svm_frames, total_released(s), s->released[RELEASE_MATCHED],
            s->released[RELEASE_CHECKPOINT]);
    json_counts(out, "released_by_reason", s->released, RELEASE_REASON_COUNT, release_label);
    fprintf(out, "  \"svm\": {\"matched\": %" PRIu64 ", \"stale\": %" PRIu64
                 ", \"uncompared\": %" PRIu64 ", \"dropped_at_checkpoint\": %" PRIu64
                 ", \"untracked\": %" PRIu64 "},\n",
            s->svm_matched, s->svm_stale, s->svm_uncompared, s->svm_flushed, s->svm_untracked);
    fprintf(out, "  \"divergence_count\": %" PRIu64 ",\n", sum(s->divergences, DIV_KIND_COUNT));
    json_counts(out, "divergences_by_kind", s->divergences, DIV_KIND_COUNT, div_label);
    fprintf(out, "  \"checkpoint_requests\": %" PRIu64 ",\n",
            sum(s->checkpoint_requests, CKPT_REASON_COUNT));
    json_counts(out, "checkpoint_requests_by_reason", s->checkpoint_requests, CKPT_REASON_COUNT,
                ckpt_label);
    fprintf(out, "  \"malformed_vnet_hdr\": %" PRIu64 ",\n", res->bad_vnet_frames);
    fprintf(out, "  \"checkpoints_done\": %" PRIu64 ",\n  \"malformed\": %" PRIu64
                 ",\n  \"connections\": %" PRIu64 ",\n  \"bytes_per_connection\": %.1f,\n",
            s->checkpoints_done, sum(s->malformed, PARSE_STATUS_COUNT) + res->bad_vnet_frames, res->conns_created,
            res->bytes_per_conn);
    fputs("  \"divergences\": [", out);
    for (size_t i = 0; i < res->divergence_count; i++) {
        const struct replay_divergence *d = &res->divergences[i];
        fprintf(out, "%s\n    {\"time_s\": %.6f, \"flow\": ", i ? "," : "", rel_s(res, d->time_ns));
        json_string(out, d->flow);
        fprintf(out, ", \"kind\": \"%s\", \"stream_offset\": %" PRIu64 ", \"pvm_frame\": %" PRIu64
                     ", \"svm_frame\": %" PRIu64 ", \"pvm_bytes\": ",
                divergence_kind_name(d->kind), d->stream_offset, d->pvm_frame, d->svm_frame);
        json_hex(out, d->pvm_bytes, d->pvm_shown);
        fputs(", \"svm_bytes\": ", out);
        json_hex(out, d->svm_bytes, d->svm_shown);
        fputc('}', out);
    }
    fputs(res->divergence_count ? "\n  ],\n" : "],\n", out);
    fputs("  \"checkpoints\": [", out);
    for (size_t i = 0; i < res->checkpoint_count; i++) {
        const struct replay_checkpoint *c = &res->checkpoints[i];
        fprintf(out, "%s\n    {\"recorded\": %s, \"reason\": \"%s\", \"requested_s\": %.6f, \"done_s\": %.6f}",
                i ? "," : "", c->recorded ? "true" : "false",
                c->recorded ? "periodic" : checkpoint_reason_name(c->reason),
                rel_s(res, c->requested_ns), c->done_ns ? rel_s(res, c->done_ns) : -1.0);
    }
    fputs(res->checkpoint_count ? "\n  ]\n}\n" : "]\n}\n", out);
}
