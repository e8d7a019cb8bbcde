/*
 * fuzz_qmp.c — libFuzzer target: the ragel QMP stream parser on any bytes, fed
 * whole and in pieces the input chooses.
 *
 * Invariants: every field path and value is a terminated string within its
 * bound; the message kind is one of the known ones; lookups of the fields QEMU's
 * COLO messages carry never read out of bounds; splitting the stream anywhere
 * yields the same messages and the same verdict as feeding it whole.
 */
#include <string.h>

#include "colo/qmp_parser.h"
#include "fuzz_input.h"

struct seen {
    uint64_t messages, hash;
};

static uint64_t mix(uint64_t h, const char *s)
{
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
    return (h ^ 0xff) * 0x100000001b3ull;
}

static void on_message(void *ctx, const struct qmp_message *m)
{
    struct seen *s = ctx;
    FUZZ_CHECK(m->nfields <= QMP_MAX_FIELDS && m->ntop <= 8);
    for (unsigned i = 0; i < m->nfields; i++) {
        FUZZ_CHECK(memchr(m->fields[i].path, 0, QMP_MAX_PATH) != NULL);
        FUZZ_CHECK(memchr(m->fields[i].value, 0, QMP_MAX_VALUE) != NULL);
        s->hash = mix(mix(s->hash, m->fields[i].path), m->fields[i].value);
    }
    for (unsigned i = 0; i < m->ntop; i++)
        FUZZ_CHECK(memchr(m->top_keys[i], 0, QMP_MAX_PATH) != NULL);
    FUZZ_CHECK(qmp_message_kind(m) <= QMP_UNKNOWN);
    static const char *const paths[] = { "event", "return.status", "return.mode", "error.class", "id",
                                         "data.reason", "return" };
    for (unsigned i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        const char *v = qmp_get(m, paths[i]);
        if (v)
            s->hash = mix(s->hash, v);
    }
    s->messages++;
}

static int feed(const char *data, size_t size, size_t piece, struct seen *s)
{
    struct qmp_parser *p = malloc(sizeof(*p));
    qmp_parser_init(p);
    int rc = 0;
    for (size_t off = 0; off < size && rc == 0; off += piece) {
        size_t n = size - off < piece ? size - off : piece;
        char *copy = malloc(n);
        memcpy(copy, data + off, n);
        rc = qmp_parser_feed(p, copy, n, on_message, s);
        free(copy);
    }
    free(p);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 100000)
        return 0;
    size_t piece = 1 + data[0] % 32;
    struct seen whole = { 0, 0xcbf29ce484222325ull }, split = whole;
    int a = feed((const char *)data + 1, size - 1, size, &whole);
    int b = feed((const char *)data + 1, size - 1, piece, &split);
    FUZZ_CHECK(a == b && whole.messages == split.messages && whole.hash == split.hash);
    return 0;
}
