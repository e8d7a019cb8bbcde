/*
 * log.h — where colo-proxy's daemons write what they say, and how much.
 *
 * Messages go through GLib's structured logging (domain "colo-proxy") to one
 * target: stderr (the default: "colo-proxy: MESSAGE" lines, as systemd and
 * tests read them), the systemd journal (with PRIORITY and the message's
 * fields), or a file (with an ISO time and the level; reopened by
 * log_reopen, so SIGHUP after logrotate works). Messages below the level
 * (error, warning, info, debug; default info) are dropped. Safe from any thread.
 */
#ifndef COLO_LOG_H
#define COLO_LOG_H

#include <stddef.h>

enum log_level { LOG_ERROR, LOG_WARNING, LOG_INFO, LOG_DEBUG };

/* "stderr", "journal" or "file:PATH"; -1 with a one-line reason (nothing changes). */
int log_set_target(const char *target, char *err, size_t errlen);
/* "error", "warning", "info" or "debug"; -1 with a one-line reason. */
int log_set_level(const char *level, char *err, size_t errlen);
/* Reopens a file target (after logrotate moved it); the other targets need nothing. */
void log_reopen(void);

/* A libevent signal callback for SIGHUP: reopens the log and says so. */
void log_on_sighup(int sig, short what, void *arg);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
