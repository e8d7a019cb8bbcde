/*
 * log.c — the log target and level, behind GLib's structured logging.
 *
 * One writer function serves every target; a mutex covers the file target's
 * stream so a reopen (SIGHUP, on the control thread) never races a write from
 * the data plane. If the journal cannot be reached, a message goes to stderr
 * rather than nowhere. Also the pace of "still cannot reach it" warnings
 * (log_retry), so every daemon says the same once, then every 30 s.
 */
#include "colo/log.h"

#include <errno.h>
#include <glib.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define LOG_DOMAIN "colo-proxy"

enum log_target_kind { TARGET_STDERR, TARGET_JOURNAL, TARGET_FILE };

static struct {
    GMutex lock;
    enum log_target_kind kind;
    enum log_level level;
    char *path;
    FILE *file;
    bool writer_set;
    char who[48]; /* "colo-proxy CMD", every line's prefix */
} log_state = { .kind = TARGET_STDERR, .level = LOG_INFO, .who = "colo-proxy" };

static const char *const level_names[] = { "error", "warning", "info", "debug" };
/* On stderr, where no level is written otherwise, errors and warnings say what they are. */
static const char *const level_marks[] = { "error: ", "warning: ", "", "" };

static enum log_level level_of(GLogLevelFlags flags)
{
    if (flags & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL))
        return LOG_ERROR;
    if (flags & G_LOG_LEVEL_WARNING)
        return LOG_WARNING;
    if (flags & (G_LOG_LEVEL_MESSAGE | G_LOG_LEVEL_INFO))
        return LOG_INFO;
    return LOG_DEBUG;
}

static const char *message_of(const GLogField *fields, gsize n)
{
    for (gsize i = 0; i < n; i++)
        if (strcmp(fields[i].key, "MESSAGE") == 0)
            return fields[i].value;
    return "";
}

static void write_file_line(enum log_level level, const char *msg)
{
    g_autoptr(GDateTime) now = g_date_time_new_now_utc();
    g_autofree char *when = g_date_time_format(now, "%Y-%m-%dT%H:%M:%S");
    fprintf(log_state.file, "%s.%03dZ %s %s: %s\n", when, g_date_time_get_microsecond(now) / 1000,
            level_names[level], log_state.who, msg);
    fflush(log_state.file);
}

static GLogWriterOutput writer(GLogLevelFlags flags, const GLogField *fields, gsize n, gpointer data)
{
    enum log_level level = level_of(flags);
    if (level > log_state.level)
        return G_LOG_WRITER_HANDLED;
    if (log_state.kind == TARGET_JOURNAL && g_log_writer_journald(flags, fields, n, data) == G_LOG_WRITER_HANDLED)
        return G_LOG_WRITER_HANDLED;
    const char *msg = message_of(fields, n);
    g_mutex_lock(&log_state.lock);
    if (log_state.kind == TARGET_FILE && log_state.file)
        write_file_line(level, msg);
    else
        fprintf(stderr, "%s: %s%s\n", log_state.who, level_marks[level], msg);
    g_mutex_unlock(&log_state.lock);
    return G_LOG_WRITER_HANDLED;
}

static void install_writer(void)
{
    if (!log_state.writer_set) {
        g_log_set_writer_func(writer, NULL, NULL);
        log_state.writer_set = true;
    }
}

void log_set_command(const char *command)
{
    snprintf(log_state.who, sizeof(log_state.who), "colo-proxy%s%s", command ? " " : "", command ? command : "");
}

const char *log_who(void)
{
    return log_state.who;
}

int log_set_target(const char *target, char *err, size_t errlen)
{
    install_writer();
    if (strcmp(target, "stderr") == 0 || strcmp(target, "journal") == 0) {
        g_mutex_lock(&log_state.lock);
        log_state.kind = target[0] == 's' ? TARGET_STDERR : TARGET_JOURNAL;
        g_mutex_unlock(&log_state.lock);
        return 0;
    }
    if (strncmp(target, "file:", 5) != 0 || !target[5]) {
        snprintf(err, errlen, "--log '%s': use stderr, journal or file:PATH", target);
        return -1;
    }
    FILE *f = fopen(target + 5, "a");
    if (!f) {
        snprintf(err, errlen, "--log '%s': cannot open '%s' for appending: %s", target, target + 5, strerror(errno));
        return -1;
    }
    g_mutex_lock(&log_state.lock);
    if (log_state.file)
        fclose(log_state.file);
    g_free(log_state.path);
    log_state.file = f;
    log_state.path = g_strdup(target + 5);
    log_state.kind = TARGET_FILE;
    g_mutex_unlock(&log_state.lock);
    return 0;
}

int log_set_level(const char *level, char *err, size_t errlen)
{
    for (int i = 0; i <= LOG_DEBUG; i++) {
        if (strcmp(level, level_names[i]) == 0) {
            install_writer();
            log_state.level = (enum log_level)i;
            return 0;
        }
    }
    snprintf(err, errlen, "--log-level '%s': use error, warning, info or debug", level);
    return -1;
}

void log_reopen(void)
{
    g_mutex_lock(&log_state.lock);
    if (log_state.kind == TARGET_FILE) {
        FILE *f = fopen(log_state.path, "a");
        if (f) {
            fclose(log_state.file);
            log_state.file = f;
        }
    }
    g_mutex_unlock(&log_state.lock);
}

void log_on_sighup(int sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    (void)arg;
    log_reopen();
    log_msg(LOG_INFO, "SIGHUP: log reopened");
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    static const GLogLevelFlags flags[] = { G_LOG_LEVEL_CRITICAL, G_LOG_LEVEL_WARNING, G_LOG_LEVEL_INFO,
                                            G_LOG_LEVEL_DEBUG };
    if (level > log_state.level)
        return;
    install_writer();
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    static const char *const priority[] = { "3", "4", "6", "7" }; /* syslog's err, warning, info, debug */
    const GLogField fields[] = {
        { "MESSAGE", msg, -1 },
        { "PRIORITY", priority[level], -1 },
        { "GLIB_DOMAIN", LOG_DOMAIN, -1 },
        { "SYSLOG_IDENTIFIER", LOG_DOMAIN, -1 },
    };
    g_log_structured_array(flags[level], fields, G_N_ELEMENTS(fields));
}

static uint64_t monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void log_retry_failed(struct log_retry *r, const char *fmt, ...)
{
    uint64_t now = monotonic_ns();
    r->failures++;
    if (r->failures > 1 && now < r->next_ns)
        return;
    r->next_ns = now + LOG_RETRY_EVERY_S * 1000000000ull;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    log_msg(LOG_WARNING, "%s (%llu time%s so far; said again in %d s unless it comes up)", msg,
            (unsigned long long)r->failures, r->failures == 1 ? "" : "s", LOG_RETRY_EVERY_S);
}

uint64_t log_retry_up(struct log_retry *r)
{
    uint64_t failed = r->failures;
    r->failures = 0;
    r->next_ns = 0;
    return failed;
}
