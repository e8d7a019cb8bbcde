/*
 * metrics.c — the metric set and its three renderings (Prometheus, JSON, table).
 *
 * Samples are kept in the order they were added; a family is the run of samples
 * sharing a name, and renderings walk families in order of first appearance, so a
 * family's samples may be added apart and still come out together. The set is
 * built off the fast path (a snapshot per request), so it may allocate freely.
 */
#include "colo/metrics.h"

#include <glib.h>
#include <inttypes.h>
#include <stdbool.h>
#include <string.h>

enum metric_type { METRIC_COUNTER, METRIC_GAUGE, METRIC_INFO, METRIC_SUMMARY };

#define SUMMARY_QUANTILES 4
static const double summary_q[SUMMARY_QUANTILES] = { 0.5, 0.9, 0.99, 0.999 };
static const char *const summary_q_name[SUMMARY_QUANTILES] = { "p50", "p90", "p99", "p99.9" };

struct metric_sample {
    enum metric_type type;
    char *name, *help, *label, *label_value;
    double value;
    double quantile_s[SUMMARY_QUANTILES], sum_s; /* summaries; value holds the count */
};

struct metric_set {
    GArray *samples;
};

static void sample_clear(gpointer p)
{
    struct metric_sample *s = p;
    g_free(s->name);
    g_free(s->help);
    g_free(s->label);
    g_free(s->label_value);
}

struct metric_set *metric_set_new(void)
{
    struct metric_set *m = g_new0(struct metric_set, 1);
    m->samples = g_array_new(FALSE, TRUE, sizeof(struct metric_sample));
    g_array_set_clear_func(m->samples, sample_clear);
    return m;
}

void metric_set_free(struct metric_set *m)
{
    if (!m)
        return;
    g_array_free(m->samples, TRUE);
    g_free(m);
}

static struct metric_sample *add(struct metric_set *m, enum metric_type type, const char *name,
                                 const char *help, const char *label, const char *label_value, double value)
{
    struct metric_sample s = {
        .type = type, .name = g_strdup(name), .help = g_strdup(help),
        .label = label ? g_strdup(label) : NULL, .label_value = label ? g_strdup(label_value) : NULL,
        .value = value,
    };
    g_array_append_val(m->samples, s);
    return &g_array_index(m->samples, struct metric_sample, m->samples->len - 1);
}

void metric_counter(struct metric_set *m, const char *name, const char *help, const char *label,
                    const char *label_value, uint64_t value)
{
    add(m, METRIC_COUNTER, name, help, label, label_value, (double)value);
}

void metric_gauge(struct metric_set *m, const char *name, const char *help, const char *label,
                  const char *label_value, double value)
{
    add(m, METRIC_GAUGE, name, help, label, label_value, value);
}

void metric_info(struct metric_set *m, const char *name, const char *help, const char *label, const char *value)
{
    add(m, METRIC_INFO, name, help, label, value, 1);
}

void metric_latency(struct metric_set *m, const char *name, const char *help, const struct latency_hist *h)
{
    struct metric_sample *s = add(m, METRIC_SUMMARY, name, help, NULL, NULL, (double)h->count);
    for (int i = 0; i < SUMMARY_QUANTILES; i++)
        s->quantile_s[i] = (double)latency_hist_quantile(h, summary_q[i]) / 1e9;
    s->sum_s = (double)h->sum_ns / 1e9;
}

/* ---- walking families ---- */

static const struct metric_sample *sample_at(const struct metric_set *m, guint i)
{
    return &g_array_index(m->samples, struct metric_sample, i);
}

/* Is sample i the first of its family? */
static bool family_starts_at(const struct metric_set *m, guint i)
{
    for (guint j = 0; j < i; j++)
        if (strcmp(sample_at(m, j)->name, sample_at(m, i)->name) == 0)
            return false;
    return true;
}

typedef void (*family_fn)(const struct metric_set *m, guint first, GString *out, bool first_family);

static void each_family(const struct metric_set *m, GString *out, family_fn fn)
{
    bool first_family = true;
    for (guint i = 0; i < m->samples->len; i++) {
        if (!family_starts_at(m, i))
            continue;
        fn(m, i, out, first_family);
        first_family = false;
    }
}

static bool same_family(const struct metric_set *m, guint first, guint i)
{
    return strcmp(sample_at(m, i)->name, sample_at(m, first)->name) == 0;
}

static void append_number(GString *out, double v)
{
    if (v == (double)(int64_t)v && v < 9e15 && v > -9e15)
        g_string_append_printf(out, "%" PRId64, (int64_t)v);
    else
        g_string_append_printf(out, "%.9g", v);
}

/* ---- Prometheus text exposition ---- */

static void prom_escape(GString *out, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\' || *s == '"')
            g_string_append_c(out, '\\');
        if (*s == '\n')
            g_string_append(out, "\\n");
        else
            g_string_append_c(out, *s);
    }
}

static void prom_family(const struct metric_set *m, guint first, GString *out, bool first_family)
{
    (void)first_family;
    static const char *const type_name[] = { "counter", "gauge", "gauge", "summary" };
    const struct metric_sample *f = sample_at(m, first);
    const char *suffix = f->type == METRIC_COUNTER ? "_total" : "";
    g_string_append_printf(out, "# HELP colo_proxy_%s%s %s\n# TYPE colo_proxy_%s%s %s\n", f->name, suffix,
                           f->help, f->name, suffix, type_name[f->type]);
    for (guint i = first; i < m->samples->len; i++) {
        const struct metric_sample *s = sample_at(m, i);
        if (!same_family(m, first, i))
            continue;
        if (s->type == METRIC_SUMMARY) {
            for (int q = 0; q < SUMMARY_QUANTILES; q++) {
                g_string_append_printf(out, "colo_proxy_%s{quantile=\"%g\"} ", s->name, summary_q[q]);
                append_number(out, s->quantile_s[q]);
                g_string_append_c(out, '\n');
            }
            g_string_append_printf(out, "colo_proxy_%s_sum %.9g\ncolo_proxy_%s_count ", s->name, s->sum_s, s->name);
        } else if (s->label) {
            g_string_append_printf(out, "colo_proxy_%s%s{%s=\"", s->name, suffix, s->label);
            prom_escape(out, s->label_value);
            g_string_append(out, "\"} ");
        } else {
            g_string_append_printf(out, "colo_proxy_%s%s ", s->name, suffix);
        }
        append_number(out, s->value);
        g_string_append_c(out, '\n');
    }
}

char *metric_set_prometheus(const struct metric_set *m)
{
    GString *out = g_string_new(NULL);
    each_family(m, out, prom_family);
    return g_string_free(out, FALSE);
}

/* ---- JSON ---- */

static void json_string(GString *out, const char *s)
{
    g_string_append_c(out, '"');
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            g_string_append_printf(out, "\\%c", ch);
        else if (ch < 0x20)
            g_string_append_printf(out, "\\u%04x", ch);
        else
            g_string_append_c(out, (char)ch);
    }
    g_string_append_c(out, '"');
}

static void json_summary(GString *out, const struct metric_sample *s)
{
    g_string_append(out, "{");
    for (int q = 0; q < SUMMARY_QUANTILES; q++) {
        g_string_append_printf(out, "\"%s_s\":", summary_q_name[q]);
        append_number(out, s->quantile_s[q]);
        g_string_append_c(out, ',');
    }
    g_string_append(out, "\"count\":");
    append_number(out, s->value);
    g_string_append_printf(out, ",\"sum_s\":%.9g}", s->sum_s);
}

static void json_family(const struct metric_set *m, guint first, GString *out, bool first_family)
{
    const struct metric_sample *f = sample_at(m, first);
    g_string_append_printf(out, "%s\"%s\":", first_family ? "" : ",", f->name);
    if (f->type == METRIC_SUMMARY) {
        json_summary(out, f);
        return;
    }
    if (f->type == METRIC_INFO) {
        json_string(out, f->label_value);
        return;
    }
    if (!f->label) {
        append_number(out, f->value);
        return;
    }
    g_string_append_c(out, '{');
    bool first_sample = true;
    for (guint i = first; i < m->samples->len; i++) {
        const struct metric_sample *s = sample_at(m, i);
        if (!same_family(m, first, i))
            continue;
        if (!first_sample)
            g_string_append_c(out, ',');
        json_string(out, s->label_value);
        g_string_append_c(out, ':');
        append_number(out, s->value);
        first_sample = false;
    }
    g_string_append_c(out, '}');
}

char *metric_set_json(const struct metric_set *m)
{
    GString *out = g_string_new("{");
    each_family(m, out, json_family);
    g_string_append(out, "}\n");
    return g_string_free(out, FALSE);
}

/* ---- the human table ---- */

static void table_seconds(GString *out, double s)
{
    if (s < 1e-3)
        g_string_append_printf(out, "%.1f us", s * 1e6);
    else if (s < 1)
        g_string_append_printf(out, "%.2f ms", s * 1e3);
    else
        g_string_append_printf(out, "%.3f s", s);
}

static void table_family(const struct metric_set *m, guint first, GString *out, bool first_family)
{
    (void)first_family;
    const struct metric_sample *f = sample_at(m, first);
    g_string_append_printf(out, "%-32s ", f->name);
    if (f->type == METRIC_SUMMARY) {
        for (int q = 0; q < SUMMARY_QUANTILES; q++) {
            g_string_append_printf(out, "%s ", summary_q_name[q]);
            table_seconds(out, f->quantile_s[q]);
            g_string_append(out, ", ");
        }
        g_string_append(out, "count ");
        append_number(out, f->value);
    } else if (!f->label) {
        append_number(out, f->value);
    } else {
        bool first_sample = true;
        for (guint i = first; i < m->samples->len; i++) {
            const struct metric_sample *s = sample_at(m, i);
            if (!same_family(m, first, i))
                continue;
            g_string_append(out, first_sample ? "" : ", ");
            g_string_append(out, s->label_value);
            if (s->type != METRIC_INFO) {
                g_string_append_c(out, ' ');
                append_number(out, s->value);
            }
            first_sample = false;
        }
    }
    g_string_append_c(out, '\n');
}

char *metric_set_table(const struct metric_set *m)
{
    GString *out = g_string_new(NULL);
    each_family(m, out, table_family);
    return g_string_free(out, FALSE);
}
