/*
 * fuzz_settings.c — libFuzzer target: what operators write, beyond single option
 * values — a configuration file's text, bypass rules, and the label text that
 * then reaches the metrics renderings.
 *
 * The input is three NUL-separated parts: a config file, a bypass rule text, and a
 * frame's key (bytes). Invariants: a config file either fails with a message or
 * yields words that are each "--NAME" (a flag, or an optional value left out) or
 * "--NAME=VALUE" for an option of the table, VALUE holding no line break, at most
 * one word per key; bypass rules either fail with a message naming why, leaving
 * the rules as they were, or are each within their bounds (count, prefix lengths,
 * text), parse the same twice, and match a frame only by an index below their
 * count; the Prometheus text of metrics labelled with any rule text has every
 * line a comment or one sample, and the JSON holds no raw control character.
 */
#include <getopt.h>
#include <glib.h>
#include <string.h>

#include "colo/bypass.h"
#include "colo/config_file.h"
#include "colo/metrics.h"
#include "fuzz_input.h"

static const struct option options[] = {
    { "primary_in", required_argument, NULL, 1 },
    { "compare_timeout", required_argument, NULL, 2 },
    { "vnet_hdr_support", no_argument, NULL, 3 },
    { "vnet-hdr", optional_argument, NULL, 4 },
    { "bypass", required_argument, NULL, 5 },
    { "help", no_argument, NULL, 6 },
    { NULL, 0, NULL, 0 },
};

static const struct option *option_named(const char *name, size_t len)
{
    for (const struct option *o = options; o->name; o++)
        if (strlen(o->name) == len && memcmp(o->name, name, len) == 0)
            return o;
    return NULL;
}

static void check_config(const char *text, size_t len)
{
    static const char *const extra[] = { "eal", NULL };
    char err[512] = "";
    char **words = config_file_words_from_data(text, len, "fuzz.conf", "compare", options, extra, err, sizeof(err));
    if (!words) {
        FUZZ_CHECK(err[0] != '\0');
        return;
    }
    for (char **w = words; *w; w++) {
        FUZZ_CHECK(strncmp(*w, "--", 2) == 0);
        const char *name = *w + 2, *eq = strchr(name, '=');
        const struct option *o = option_named(name, eq ? (size_t)(eq - name) : strlen(name));
        FUZZ_CHECK(o && strcmp(o->name, "help") != 0);
        FUZZ_CHECK(eq ? o->has_arg != no_argument : o->has_arg != required_argument);
        FUZZ_CHECK(!strchr(*w, '\n'));
    }
    g_strfreev(words);
}

static void check_prometheus(const struct bypass_rules *r)
{
    struct metric_set *m = metric_set_new();
    for (unsigned i = 0; i < r->count; i++)
        metric_counter(m, "bypass_packets", "Frames left uncompared", "rule", r->rule[i].text, i);
    metric_info(m, "role", "What it is", "role", r->count ? r->rule[0].text : "none");
    char *prom = metric_set_prometheus(m), *json = metric_set_json(m);
    for (char *line = prom; *line;) {
        char *nl = strchr(line, '\n');
        FUZZ_CHECK(nl);
        FUZZ_CHECK(line[0] == '#' || strncmp(line, "colo_proxy_", 11) == 0);
        line = nl + 1;
    }
    for (const char *c = json; *c; c++)
        FUZZ_CHECK((unsigned char)*c >= 0x20 || (*c == '\n' && c[1] == '\0'));
    g_free(prom);
    g_free(json);
    metric_set_free(m);
}

static void check_bypass(const char *text, struct fuzz_input *frame)
{
    struct bypass_rules r = { .count = 0 }, again = { .count = 0 };
    char err[256] = "";
    int rc = bypass_rules_add(&r, text, err, sizeof(err));
    if (rc != 0) {
        FUZZ_CHECK(err[0] != '\0');
        return;
    }
    FUZZ_CHECK(bypass_rules_add(&again, text, err, sizeof(err)) == 0 && again.count == r.count);
    FUZZ_CHECK(memcmp(&again, &r, sizeof(r)) == 0);
    FUZZ_CHECK(r.count <= BYPASS_MAX_RULES);
    for (unsigned i = 0; i < r.count; i++) {
        const struct bypass_rule *rule = &r.rule[i];
        FUZZ_CHECK(memchr(rule->text, '\0', sizeof(rule->text)));
        FUZZ_CHECK(rule->guest.prefix <= (rule->guest.family == FAMILY_IPV4 ? 32 : 128));
        FUZZ_CHECK(rule->peer.prefix <= (rule->peer.family == FAMILY_IPV4 ? 32 : 128));
    }
    struct pkt_view v;
    memset(&v, 0, sizeof(v));
    size_t got;
    const uint8_t *key = take_bytes(frame, sizeof(v.key), &got);
    memcpy(&v.key, key, got);
    v.dir_swapped = take_u8(frame) & 1;
    int hit = bypass_match(&r, &v);
    FUZZ_CHECK(hit == -1 || (hit >= 0 && (unsigned)hit < r.count));
    check_prometheus(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 2);
    memcpy(text, data, size);
    text[size] = text[size + 1] = 0;
    size_t config_len = strlen(text);
    check_config(text, config_len);
    const char *rules = text + config_len + 1; /* "" when the input ends first */
    size_t frame_at = config_len + 1 + strlen(rules) + 1;
    struct fuzz_input frame = { (const uint8_t *)text + frame_at, frame_at < size ? size - frame_at : 0 };
    check_bypass(rules, &frame);
    free(text);
    return 0;
}
