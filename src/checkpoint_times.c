/*
 * checkpoint_times.c — reading recorded checkpoint times (plain pairs or a QMP log).
 *
 * Owns: parsing the file and the array it returns (the caller frees it). The
 * QMP form goes through the same stream parser as the live QMP channel.
 */
#include "colo/checkpoint_times.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "colo/qmp_parser.h"

struct collector {
    struct recorded_checkpoint *items;
    size_t count, cap;
    bool oom;
    bool stopped;
    uint64_t stop_ns;
};

static void add(struct collector *c, uint64_t begin, uint64_t end)
{
    if (c->count == c->cap) {
        size_t n = c->cap ? c->cap * 2 : 64;
        struct recorded_checkpoint *p = realloc(c->items, n * sizeof(*p));
        if (!p) {
            c->oom = true;
            return;
        }
        c->items = p;
        c->cap = n;
    }
    c->items[c->count++] = (struct recorded_checkpoint){ begin, end };
}

static uint64_t event_time_ns(const struct qmp_message *m)
{
    const char *s = qmp_get(m, "timestamp.seconds"), *us = qmp_get(m, "timestamp.microseconds");
    return s && us ? strtoull(s, NULL, 10) * 1000000000ull + strtoull(us, NULL, 10) * 1000ull : 0;
}

static void on_qmp(void *ctx, const struct qmp_message *m)
{
    struct collector *c = ctx;
    const char *ev = qmp_get(m, "event");
    if (!ev)
        return;
    if (strcmp(ev, "STOP") == 0) {
        c->stopped = true;
        c->stop_ns = event_time_ns(m);
    } else if (strcmp(ev, "RESUME") == 0 && c->stopped) {
        c->stopped = false;
        add(c, c->stop_ns, event_time_ns(m));
    }
}

static int load_qmp_log(FILE *f, const char *path, struct collector *c, char *err, size_t errlen)
{
    struct qmp_parser p;
    qmp_parser_init(&p);
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0) {
        if (qmp_parser_feed(&p, buf, n, on_qmp, c) != 0) {
            snprintf(err, errlen, "%s: not a QMP event log (it starts with '{' but is not QMP)", path);
            return -1;
        }
    }
    return 0;
}

static int load_pairs(FILE *f, const char *path, struct collector *c, char *err, size_t errlen)
{
    char line[256];
    size_t lineno = 0;
    while (fgets(line, sizeof(line), f)) {
        lineno++;
        char *hash = strchr(line, '#');
        if (hash)
            *hash = '\0';
        double begin, end;
        char extra;
        int n = sscanf(line, "%lf %lf %c", &begin, &end, &extra);
        if (n <= 0)
            continue;
        if (n != 2 || begin < 0 || end < begin) {
            snprintf(err, errlen, "%s:%zu: expected '<begin-seconds> <end-seconds>' with end >= begin",
                     path, lineno);
            return -1;
        }
        add(c, (uint64_t)(begin * 1e9), (uint64_t)(end * 1e9));
    }
    return 0;
}

static int by_end(const void *a, const void *b)
{
    const struct recorded_checkpoint *x = a, *y = b;
    return x->end_ns < y->end_ns ? -1 : x->end_ns > y->end_ns;
}

int checkpoint_times_load(const char *path, struct recorded_checkpoint **out, size_t *count,
                          char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "cannot read checkpoint times '%s': %s", path, strerror(errno));
        return -1;
    }
    int ch;
    while ((ch = fgetc(f)) != EOF && isspace(ch))
        ;
    if (ch != EOF)
        ungetc(ch, f);
    struct collector c = { 0 };
    int rc = ch == '{' ? load_qmp_log(f, path, &c, err, errlen) : load_pairs(f, path, &c, err, errlen);
    fclose(f);
    if (rc == 0 && c.oom) {
        snprintf(err, errlen, "out of memory reading '%s'", path);
        rc = -1;
    }
    if (rc != 0) {
        free(c.items);
        return -1;
    }
    qsort(c.items, c.count, sizeof(*c.items), by_end);
    *out = c.items;
    *count = c.count;
    return 0;
}
