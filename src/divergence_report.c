/*
 * divergence_report.c — capturing a divergence and writing it as a report.
 *
 * Capture reads the connection's queues through the engine's public struct conn
 * (read only, while the engine is inside its divergence callback), so the
 * packets around the difference are the ones it was holding: the PVM's not yet
 * released, the SVM's not yet compared. The diverging packets always go in,
 * even when the queues are longer than a report keeps.
 */
#include "colo/divergence_report.h"

#include <errno.h>
#include <glib.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "colo/cli.h"
#include "colo/pcap_port.h"
#include "colo/pkt_parse.h"

#define NS_PER_MINUTE (60ull * 1000000000ull)

bool divergence_limiter_allow(struct divergence_limiter *l, uint64_t now_ns)
{
    if (!l->per_minute)
        return true;
    if (!l->window_start_ns || now_ns - l->window_start_ns >= NS_PER_MINUTE) {
        l->window_start_ns = now_ns ? now_ns : 1;
        l->in_window = 0;
    }
    if (l->in_window < l->per_minute) {
        l->in_window++;
        return true;
    }
    l->suppressed++;
    l->suppressed_unlogged++;
    return false;
}

static bool holds(const struct divergence_capture *cap, enum divcap_side side, const struct colo_pkt *p,
                  const uint8_t *const *starts)
{
    for (unsigned i = 0; i < cap->n_frames; i++)
        if (cap->frames[i].side == side && starts[i] == p->frame)
            return true;
    return false;
}

static void add_frame(struct divergence_capture *cap, enum divcap_side side, const struct colo_pkt *p,
                      bool diverging, uint64_t now_ns, uint64_t now_unix_ns, const uint8_t **starts)
{
    if (cap->n_frames == 2 * DIVCAP_FRAMES_PER_SIDE || DIVCAP_BLOB - cap->blob_used < p->frame_len)
        return;
    struct divcap_frame *f = &cap->frames[cap->n_frames];
    starts[cap->n_frames++] = p->frame;
    f->side = (uint8_t)side;
    f->diverging = diverging;
    f->off = cap->blob_used;
    f->len = p->frame_len;
    uint64_t age = now_ns > p->arrival_ns ? now_ns - p->arrival_ns : 0;
    f->ts_unix_ns = now_unix_ns > age ? now_unix_ns - age : 0;
    memcpy(cap->blob + f->off, p->frame, p->frame_len);
    cap->blob_used += p->frame_len;
}

/* One side: its queue up to the limit less one, then the diverging packet if it was not among them. */
static void add_side(struct divergence_capture *cap, enum divcap_side side, const struct colo_pkt *queue,
                     const struct colo_pkt *diverging, uint64_t now_ns, uint64_t now_unix_ns,
                     const uint8_t **starts)
{
    unsigned taken = 0;
    for (const struct colo_pkt *p = queue; p && taken < DIVCAP_FRAMES_PER_SIDE - 1; p = p->next, taken++)
        add_frame(cap, side, p, p == diverging, now_ns, now_unix_ns, starts);
    if (diverging && !holds(cap, side, diverging, starts))
        add_frame(cap, side, diverging, true, now_ns, now_unix_ns, starts);
}

void divergence_capture_fill(struct divergence_capture *cap, uint64_t number, const struct divergence *d,
                             uint64_t now_ns, uint64_t now_unix_ns)
{
    const uint8_t *starts[2 * DIVCAP_FRAMES_PER_SIDE];
    cap->number = number;
    cap->at_unix_ns = now_unix_ns;
    flow_key_format(&d->conn->key, d->conn->guest_is_1, cap->flow, sizeof(cap->flow));
    cap->kind = d->kind;
    cap->stream_offset = d->stream_offset;
    cap->n_frames = 0;
    cap->blob_used = 0;
    const struct colo_pkt *pkt[2] = { d->pvm_pkt, d->svm_pkt };
    const uint8_t *bytes[2] = { d->pvm_bytes, d->svm_bytes };
    for (int s = 0; s < 2; s++) {
        bool inside = pkt[s] && bytes[s] && bytes[s] >= pkt[s]->frame && bytes[s] <= pkt[s]->frame + pkt[s]->frame_len;
        cap->diff_at[s] = inside ? bytes[s] - pkt[s]->frame : -1;
    }
    add_side(cap, DIVCAP_PVM, d->conn->stream.pvm_head, d->pvm_pkt, now_ns, now_unix_ns, starts);
    add_side(cap, DIVCAP_SVM, d->conn->stream.svm_head, d->svm_pkt, now_ns, now_unix_ns, starts);
}

void divergence_capture_describe(const struct divergence_capture *cap, char *line, size_t len)
{
    snprintf(line, len, "divergence %" PRIu64 " (%s) on %s at stream offset %" PRIu64, cap->number,
             divergence_kind_name(cap->kind), cap->flow, cap->stream_offset);
}

static int write_side(const struct divergence_capture *cap, enum divcap_side side, const char *path,
                      int64_t *diverging_index, char *err, size_t errlen)
{
    struct pcap_sink *sink = pcap_sink_open(path, err, errlen);
    if (!sink)
        return -1;
    int64_t index = 0;
    *diverging_index = -1;
    for (unsigned i = 0; i < cap->n_frames; i++) {
        const struct divcap_frame *f = &cap->frames[i];
        if (f->side != side)
            continue;
        if (f->diverging)
            *diverging_index = index;
        pcap_sink_write(sink, f->ts_unix_ns, cap->blob + f->off, f->len);
        index++;
    }
    pcap_sink_close(sink);
    return 0;
}

static int write_files(const struct divergence_capture *cap, const char *dir, char *err, size_t errlen)
{
    static const char *const side_name[2] = { "pvm", "svm" };
    int64_t diverging[2];
    g_autofree char *base = g_strdup_printf("%s/divergence-%" PRIu64, dir, cap->number);
    GKeyFile *kf = g_key_file_new();
    const char *g = "divergence";
    g_key_file_set_uint64(kf, g, "number", cap->number);
    g_autoptr(GDateTime) at = g_date_time_new_from_unix_utc((gint64)(cap->at_unix_ns / 1000000000ull));
    g_autofree char *when = at ? g_date_time_format_iso8601(at) : g_strdup("unknown");
    g_key_file_set_string(kf, g, "time", when);
    g_key_file_set_string(kf, g, "connection", cap->flow);
    g_key_file_set_string(kf, g, "kind", divergence_kind_name(cap->kind));
    g_key_file_set_uint64(kf, g, "stream_offset", cap->stream_offset);
    int rc = 0;
    for (int s = 0; s < 2 && rc == 0; s++) {
        g_autofree char *path = g_strdup_printf("%s-%s.pcap", base, side_name[s]);
        rc = write_side(cap, (enum divcap_side)s, path, &diverging[s], err, errlen);
        g_autofree char *file_key = g_strdup_printf("%s_pcap", side_name[s]);
        g_autofree char *name = g_path_get_basename(path);
        g_key_file_set_string(kf, g, file_key, name);
        g_autofree char *packet_key = g_strdup_printf("%s_packet", side_name[s]);
        g_key_file_set_int64(kf, g, packet_key, diverging[s]);
        g_autofree char *byte_key = g_strdup_printf("%s_byte", side_name[s]);
        g_key_file_set_int64(kf, g, byte_key, diverging[s] >= 0 ? cap->diff_at[s] : -1);
    }
    g_autofree char *meta = g_strdup_printf("%s.txt", base);
    GError *e = NULL;
    if (rc == 0 && !g_key_file_save_to_file(kf, meta, &e)) {
        snprintf(err, errlen, "cannot write '%s': %s (check --divergence-reports)", meta, e->message);
        g_error_free(e);
        rc = -1;
    }
    g_key_file_free(kf);
    return rc;
}

/* Reports hold payload bytes: owner-only files. One thread writes reports, so the umask dance is safe. */
int divergence_capture_write(const struct divergence_capture *cap, const char *dir, char *err, size_t errlen)
{
    mode_t was = umask(077);
    int rc = write_files(cap, dir, err, errlen);
    umask(was);
    return rc;
}

void divergence_report_publish(const struct divergence_capture *cap, const char *dir,
                               struct divergence_report_stats *st, char *line, size_t len)
{
    char what[256], err[384] = "";
    divergence_capture_describe(cap, what, sizeof(what));
    st->reported++;
    if (!dir) {
        snprintf(line, len, "%s", what);
        return;
    }
    if (divergence_capture_write(cap, dir, err, sizeof(err)) != 0) {
        st->write_failed++;
        snprintf(line, len, "%s; no report: %s", what, err);
        return;
    }
    st->written++;
    snprintf(line, len, "%s; report %s/divergence-%" PRIu64 ".txt", what, dir, cap->number);
}

int divergence_report_check_dir(const char *dir, char *err, size_t errlen)
{
    return cli_check_path("divergence-reports", dir, CLI_PATH_DIR, err, errlen);
}
