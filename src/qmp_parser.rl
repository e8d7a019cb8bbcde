/*
 * qmp_parser.rl — the ragel machine behind qmp_parser.h.
 *
 * One deterministic machine over the bytes of the stream; its state (`cs`) and
 * the small container stack persist between calls, so reads may split the
 * stream anywhere. Numbers and literals end on the byte after them (ragel's
 * leaving actions), which also works across reads. `**` (longest-match star)
 * keeps a number or literal going rather than starting a new token.
 * Must never: write past a fixed buffer (every copy is bounded), recurse, or
 * allocate.
 */
#include "colo/qmp_parser.h"

#include <stdio.h>
#include <string.h>

static void str_push(struct qmp_parser *s, unsigned char c)
{
    if (s->str_len + 1 < sizeof(s->str))
        s->str[s->str_len++] = (char)c;
}

static void str_push_utf8(struct qmp_parser *s, uint32_t cp)
{
    if (cp < 0x80) {
        str_push(s, (unsigned char)cp);
    } else if (cp < 0x800) {
        str_push(s, (unsigned char)(0xc0 | cp >> 6));
        str_push(s, (unsigned char)(0x80 | (cp & 0x3f)));
    } else if (cp < 0x10000) {
        str_push(s, (unsigned char)(0xe0 | cp >> 12));
        str_push(s, (unsigned char)(0x80 | (cp >> 6 & 0x3f)));
        str_push(s, (unsigned char)(0x80 | (cp & 0x3f)));
    } else {
        str_push(s, (unsigned char)(0xf0 | cp >> 18));
        str_push(s, (unsigned char)(0x80 | (cp >> 12 & 0x3f)));
        str_push(s, (unsigned char)(0x80 | (cp >> 6 & 0x3f)));
        str_push(s, (unsigned char)(0x80 | (cp & 0x3f)));
    }
}

/* A \uXXXX escape: pairs surrogates, replaces lone ones with U+FFFD. */
static void unicode_escape(struct qmp_parser *s)
{
    uint32_t u = s->u;
    if (u >= 0xd800 && u < 0xdc00) {
        if (s->high_surrogate)
            str_push_utf8(s, 0xfffd);
        s->high_surrogate = u;
        return;
    }
    if (u >= 0xdc00 && u < 0xe000) {
        str_push_utf8(s, s->high_surrogate ? 0x10000 + ((s->high_surrogate - 0xd800) << 10) + (u - 0xdc00)
                                           : 0xfffd);
        s->high_surrogate = 0;
        return;
    }
    if (s->high_surrogate)
        str_push_utf8(s, 0xfffd);
    s->high_surrogate = 0;
    str_push_utf8(s, u);
}

static unsigned hex_value(unsigned char c)
{
    return c <= '9' ? (unsigned)(c - '0') : (unsigned)((c | 0x20) - 'a' + 10);
}

static unsigned char control_escape(unsigned char c)
{
    switch (c) {
    case 'b': return '\b';
    case 'f': return '\f';
    case 'n': return '\n';
    case 'r': return '\r';
    default: return '\t';
    }
}

/* Copies a string, cut to the destination (keys longer than QMP_MAX_PATH are cut). */
static void copy_cut(char *dst, size_t size, const char *src)
{
    size_t n = strnlen(src, size - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static void record(struct qmp_parser *s, const char *value)
{
    struct qmp_message *m = &s->msg;
    if (s->depth < 1 || s->depth > 2 || !s->is_object[s->depth] || m->nfields == QMP_MAX_FIELDS)
        return;
    struct qmp_field *f = &m->fields[m->nfields++];
    if (s->depth == 1)
        copy_cut(f->path, sizeof(f->path), s->key[1]);
    else
        snprintf(f->path, sizeof(f->path), "%.31s.%.31s", s->key[1], s->key[2]);
    copy_cut(f->value, sizeof(f->value), value);
}

static void end_string(struct qmp_parser *s)
{
    if (s->high_surrogate)
        str_push_utf8(s, 0xfffd);
    s->high_surrogate = 0;
    s->str[s->str_len] = '\0';
    if (s->expect_key && s->depth >= 1 && s->is_object[s->depth]) {
        if (s->depth <= 2)
            copy_cut(s->key[s->depth], sizeof(s->key[0]), s->str);
        if (s->depth == 1 && s->msg.ntop < 8)
            copy_cut(s->msg.top_keys[s->msg.ntop++], QMP_MAX_PATH, s->str);
        s->expect_key = false;
        return;
    }
    record(s, s->str);
}

static void end_scalar(struct qmp_parser *s)
{
    s->str[s->str_len] = '\0';
    record(s, s->str);
}

/* Returns false when the structure is wrong or too deep. */
static bool open_container(struct qmp_parser *s, bool object)
{
    if (s->depth == QMP_MAX_DEPTH || (s->depth == 0 && !object))
        return false;
    s->depth++;
    s->is_object[s->depth] = object;
    s->expect_key = object;
    return true;
}

/* A closer must match its opener; closing the top-level object ends a message. */
static bool close_container(struct qmp_parser *s, bool object, qmp_message_fn fn, void *ctx)
{
    if (s->depth == 0 || s->is_object[s->depth] != object)
        return false;
    if (--s->depth == 0) {
        fn(ctx, &s->msg);
        memset(&s->msg, 0, sizeof(s->msg));
        s->message_bytes = 0;
    }
    s->expect_key = false;
    return true;
}

%%{
    machine qmp;
    alphtype unsigned char;

    action str_start { s->str_len = 0; s->high_surrogate = 0; }
    action str_char { str_push(s, fc); }
    action esc_plain { str_push(s, fc); }
    action esc_control { str_push(s, control_escape(fc)); }
    action u_start { s->u = 0; }
    action u_digit { s->u = s->u * 16 + hex_value(fc); }
    action u_end { unicode_escape(s); }
    action str_end { end_string(s); }
    action scalar_start { s->str_len = 0; }
    action scalar_char { str_push(s, fc); }
    action scalar_end { end_scalar(s); }
    action obj_open { if (!open_container(s, true)) { s->failed = true; fbreak; } }
    action arr_open { if (!open_container(s, false)) { s->failed = true; fbreak; } }
    action close_object { if (!close_container(s, true, fn, ctx)) { s->failed = true; fbreak; } }
    action close_array { if (!close_container(s, false, fn, ctx)) { s->failed = true; fbreak; } }
    action comma { s->expect_key = s->depth >= 1 && s->is_object[s->depth]; }
    action top_level_scalar { if (s->depth == 0) { s->failed = true; fbreak; } }

    unicode = 'u' @u_start ( xdigit $u_digit ){4} @u_end;
    escape = '\\' ( ["\\/] @esc_plain | [bfnrt] @esc_control | unicode );
    plain = ( any - ( '"' | '\\' | 0..31 | 127 ) ) @str_char;
    string = '"' @str_start ( plain | escape )* '"' @str_end;
    number = ( '-'? digit+ ( '.' digit+ )? ( [eE] [+\-]? digit+ )? ) >top_level_scalar
             >scalar_start $scalar_char %scalar_end;
    literal = ( 'true' | 'false' | 'null' ) >top_level_scalar >scalar_start $scalar_char %scalar_end;
    ws = [ \t\r\n];
    token = string | number | literal | '{' @obj_open | '}' @close_object | '[' @arr_open
          | ']' @close_array
          | ':' | ',' @comma;
    main := ( ws | token )**;
}%%

%% write data nofinal noentry;

void qmp_parser_init(struct qmp_parser *s)
{
    int cs;
    memset(s, 0, sizeof(*s));
    %% write init;
    s->cs = cs;
}

int qmp_parser_feed(struct qmp_parser *s, const char *data, size_t n, qmp_message_fn fn, void *ctx)
{
    const unsigned char *p = (const unsigned char *)data, *pe = p + n;
    const unsigned char *eof = NULL; /* a stream has no end: numbers end on the next byte */
    int cs = s->cs;
    s->message_bytes += n;
    %% write exec;
    s->cs = cs;
    if (s->failed || cs == qmp_error || s->message_bytes > QMP_MAX_MESSAGE) {
        qmp_parser_init(s);
        return -1;
    }
    return 0;
}

const char *qmp_get(const struct qmp_message *m, const char *path)
{
    for (unsigned i = 0; i < m->nfields; i++) {
        if (strcmp(m->fields[i].path, path) == 0)
            return m->fields[i].value;
    }
    return NULL;
}

enum qmp_kind qmp_message_kind(const struct qmp_message *m)
{
    for (unsigned i = 0; i < m->ntop; i++) {
        if (strcmp(m->top_keys[i], "QMP") == 0)
            return QMP_GREETING;
        if (strcmp(m->top_keys[i], "return") == 0)
            return QMP_RETURN;
        if (strcmp(m->top_keys[i], "error") == 0)
            return QMP_ERROR;
        if (strcmp(m->top_keys[i], "event") == 0)
            return QMP_EVENT;
    }
    return QMP_UNKNOWN;
}
