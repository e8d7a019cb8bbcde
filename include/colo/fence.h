/*
 * fence.h — runs the operator's --fence-command: the way to stop a primary that
 * may still be alive when no witness is configured.
 *
 * The command runs as `/bin/sh -c COMMAND` in a process group of its own, stdin
 * from /dev/null, stdout and stderr those of colo-proxy. Success means exit
 * status 0 within the timeout, and nothing else: a non-zero status, a signal,
 * or the timeout (the whole group is then killed) is failure, and the caller
 * must not take over on it. The control thread never blocks: the child's exit
 * is watched through a pidfd on the caller's libevent base, the timeout by a
 * timer on the same base.
 */
#ifndef COLO_FENCE_H
#define COLO_FENCE_H

#include <stddef.h>
#include <stdint.h>

struct event_base;

enum fence_result {
    FENCE_STOPPED,   /* exit 0 within the timeout: the primary is reported stopped */
    FENCE_FAILED,    /* a non-zero exit status, or killed by a signal */
    FENCE_TIMED_OUT, /* still running at the timeout: its process group was killed */
};

/* Called once, on the base's thread, when the command is over; wait_status as waitpid gives it. */
typedef void (*fence_done_fn)(void *ctx, enum fence_result result, int wait_status);

struct fence_run;

/* Starts `command`; NULL with a one-line reason when it cannot be started or watched. */
struct fence_run *fence_start(struct event_base *base, const char *command, uint32_t timeout_ms,
                              fence_done_fn done, void *ctx, char *err, size_t errlen);

/* After `done`, or to give up on a command still running (its process group is killed and reaped). */
void fence_free(struct fence_run *r);

const char *fence_result_name(enum fence_result r);

#endif
