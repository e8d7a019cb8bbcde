/*
 * log.h — where colo-proxy's daemons write what they say, and how much.
 *
 * Messages go through GLib's structured logging (domain "colo-proxy") to one
 * target: stderr (the default: "colo-proxy CMD: MESSAGE" lines, "warning: " or
 * "error: " before the message at those levels, as systemd and tests read them),
 * the systemd journal (with PRIORITY and the message's fields), or a file (with
 * an ISO time and the level; reopened by
 * log_reopen, so SIGHUP after logrotate works). Messages below the level
 * (error, warning, info, debug; default info) are dropped. Safe from any thread.
 */
#ifndef COLO_LOG_H
#define COLO_LOG_H

#include <stddef.h>
#include <stdint.h>

enum log_level { LOG_ERROR, LOG_WARNING, LOG_INFO, LOG_DEBUG };

/* Names the command in every line ("colo-proxy CMD: ..."); NULL: "colo-proxy: ...". */
void log_set_command(const char *command);
/* "colo-proxy CMD": how every message of this process starts, log lines and option errors alike. */
const char *log_who(void);

/* "stderr", "journal" or "file:PATH"; -1 with a one-line reason (nothing changes). */
int log_set_target(const char *target, char *err, size_t errlen);
/* "error", "warning", "info" or "debug"; -1 with a one-line reason. */
int log_set_level(const char *level, char *err, size_t errlen);
/* Reopens a file target (after logrotate moved it); the other targets need nothing. */
void log_reopen(void);

/* A libevent signal callback for SIGHUP: reopens the log and says so. */
void log_on_sighup(int sig, short what, void *arg);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * A peer that cannot be reached yet (QMP, a chardev socket): its first failure is
 * a warning, then at most one every LOG_RETRY_EVERY_S with the count, so a
 * daemon waiting for QEMU says so without flooding its log.
 */
#define LOG_RETRY_EVERY_S 30
struct log_retry {
    uint64_t failures, next_ns;
};
void log_retry_failed(struct log_retry *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The peer came up: the failures before it (for the "up" line), and the count starts again. */
uint64_t log_retry_up(struct log_retry *r);

#endif
