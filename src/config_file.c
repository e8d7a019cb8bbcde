/*
 * config_file.c — reading a group of the configuration file into option words.
 *
 * Owns nothing past a call: each call loads the file anew (a reload is a new
 * call). Unknown keys are errors, with the nearest known key suggested, since a
 * misspelt knob silently left at its default is the worst kind of mistake for a
 * daemon that runs for months.
 */
#include "colo/config_file.h"

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "colo/cli.h"

#define SUGGEST_MAX_DISTANCE 3

static GKeyFile *loaded(GKeyFile *kf, bool ok, GError *e, const char *name, char *err, size_t errlen)
{
    if (ok)
        return kf;
    snprintf(err, errlen, "config '%s': %s", name, e->message);
    g_error_free(e);
    g_key_file_free(kf);
    return NULL;
}

static GKeyFile *load(const char *path, char *err, size_t errlen)
{
    GKeyFile *kf = g_key_file_new();
    GError *e = NULL;
    bool ok = g_key_file_load_from_file(kf, path, G_KEY_FILE_NONE, &e);
    return loaded(kf, ok, e, path, err, errlen);
}

static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64)
        return SIZE_MAX;
    size_t row[65];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (row[j] + 1 < best)
                best = row[j] + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

static bool listed(const char *key, const char *const *list)
{
    for (; list && *list; list++)
        if (strcmp(*list, key) == 0)
            return true;
    return false;
}

/* Keys that steer the reading itself, never taken from a file. */
static const char *const not_in_file[] = { "config", "check", "help", NULL };

const char *config_file_nearest_option(const char *key, const struct option *longopts, const char *const *skip)
{
    const char *best = NULL;
    size_t best_d = SUGGEST_MAX_DISTANCE + 1;
    for (const struct option *o = longopts; o->name; o++) {
        if (listed(o->name, skip))
            continue;
        size_t d = edit_distance(key, o->name);
        if (d < best_d)
            best = o->name, best_d = d;
    }
    return best;
}

static const struct option *find_option(const char *key, const struct option *longopts)
{
    for (const struct option *o = longopts; o->name; o++)
        if (strcmp(o->name, key) == 0)
            return o;
    return NULL;
}

static int key_to_word(GKeyFile *kf, const char *path, const char *group, const char *key,
                       const struct option *o, GPtrArray *words, char *err, size_t errlen)
{
    GError *bad = NULL;
    g_autofree char *value = g_key_file_get_string(kf, group, key, &bad);
    if (!value) {
        snprintf(err, errlen, "config '%s' [%s]: the value of %s is not UTF-8 text: %s", path, group, key,
                 bad ? bad->message : "unreadable");
        g_clear_error(&bad);
        return -1;
    }
    for (const char *c = value; *c; c++) {
        if ((unsigned char)*c < 0x20) {
            snprintf(err, errlen, "config '%s' [%s]: the value of %s holds a control character (an escaped "
                     "line break or tab?): write it plainly on one line", path, group, key);
            return -1;
        }
    }
    if (o->has_arg == no_argument) {
        GError *e = NULL;
        int on = g_key_file_get_boolean(kf, group, key, &e);
        if (e) {
            g_error_free(e);
            on = cli_on_off_value(value); /* QEMU's on and off, as on the command line */
        }
        if (on < 0) {
            snprintf(err, errlen, "config '%s' [%s]: %s = '%s' is a flag: write true or false (or on or off)", path,
                     group, key, value);
            return -1;
        }
        if (on)
            g_ptr_array_add(words, g_strdup_printf("--%s", key));
        return 0;
    }
    if (o->has_arg == optional_argument && (!*value || strcmp(value, "true") == 0))
        g_ptr_array_add(words, g_strdup_printf("--%s", key));
    else
        g_ptr_array_add(words, g_strdup_printf("--%s=%s", key, value));
    return 0;
}

/* Takes kf. */
static char **words_of(GKeyFile *kf, const char *path, const char *group, const struct option *longopts,
                       const char *const *extra, char *err, size_t errlen)
{
    if (!g_key_file_has_group(kf, group)) {
        snprintf(err, errlen, "config '%s' has no [%s] group: put the options of 'colo-proxy %s' there", path,
                 group, group);
        g_key_file_free(kf);
        return NULL;
    }
    gsize n = 0;
    char **keys = g_key_file_get_keys(kf, group, &n, NULL);
    GPtrArray *words = g_ptr_array_new();
    int rc = 0;
    for (gsize i = 0; i < n && rc == 0; i++) {
        const struct option *o = listed(keys[i], not_in_file) ? NULL : find_option(keys[i], longopts);
        if (listed(keys[i], extra))
            continue;
        if (!o) {
            const char *near = config_file_nearest_option(keys[i], longopts, not_in_file);
            snprintf(err, errlen, "config '%s' [%s]: unknown key '%s'%s%s%s; the keys are the long options of "
                     "'colo-proxy %s --help'", path, group, keys[i], near ? " (did you mean '" : "",
                     near ? near : "", near ? "'?)" : "", group);
            rc = -1;
            break;
        }
        rc = key_to_word(kf, path, group, keys[i], o, words, err, errlen);
    }
    g_strfreev(keys);
    g_key_file_free(kf);
    g_ptr_array_add(words, NULL);
    char **out = (char **)g_ptr_array_free(words, FALSE);
    if (rc != 0) {
        g_strfreev(out);
        return NULL;
    }
    return out;
}

char **config_file_words(const char *path, const char *group, const struct option *longopts,
                         const char *const *extra, char *err, size_t errlen)
{
    GKeyFile *kf = load(path, err, errlen);
    return kf ? words_of(kf, path, group, longopts, extra, err, errlen) : NULL;
}

char **config_file_words_from_data(const char *data, size_t len, const char *name, const char *group,
                                   const struct option *longopts, const char *const *extra, char *err,
                                   size_t errlen)
{
    GKeyFile *kf = g_key_file_new();
    GError *e = NULL;
    bool ok = g_key_file_load_from_data(kf, data, len, G_KEY_FILE_NONE, &e);
    kf = loaded(kf, ok, e, name, err, errlen);
    return kf ? words_of(kf, name, group, longopts, extra, err, errlen) : NULL;
}

char *config_file_string(const char *path, const char *group, const char *key)
{
    char err[16];
    GKeyFile *kf = load(path, err, sizeof(err));
    if (!kf)
        return NULL;
    char *value = g_key_file_get_string(kf, group, key, NULL);
    g_key_file_free(kf);
    return value;
}
