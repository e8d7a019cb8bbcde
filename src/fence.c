/*
 * fence.c — one run of the operator's fence command (fence.h): spawned with
 * posix_spawn (safe from a threaded process), watched by a pidfd and a timer on
 * the caller's libevent base, reaped exactly once. Owns the child until it is
 * reaped; never waits for it on the caller's thread except to reap a child it
 * has just killed in fence_free.
 */
#define _GNU_SOURCE
#include "colo/fence.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <glib.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

struct fence_run {
    pid_t pid;
    int pidfd;
    bool timed_out, reaped;
    struct event *exited, *timeout;
    fence_done_fn done;
    void *ctx;
};

const char *fence_result_name(enum fence_result r)
{
    static const char *const names[] = { "stopped", "failed", "timed-out" };
    return r <= FENCE_TIMED_OUT ? names[r] : "unknown";
}

static void on_exit_ready(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct fence_run *r = arg;
    int status = 0;
    if (waitpid(r->pid, &status, WNOHANG) != r->pid)
        return;
    r->reaped = true;
    event_del(r->timeout);
    event_del(r->exited);
    enum fence_result result = r->timed_out ? FENCE_TIMED_OUT
                               : WIFEXITED(status) && WEXITSTATUS(status) == 0 ? FENCE_STOPPED
                                                                               : FENCE_FAILED;
    r->done(r->ctx, result, status);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct fence_run *r = arg;
    r->timed_out = true;
    kill(-r->pid, SIGKILL); /* the group: sh and whatever it started; reaped when the pidfd says so */
}

static pid_t spawn_in_own_group(const char *command, char *err, size_t errlen)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t none;
    sigemptyset(&none);
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawnattr_init(&attr);
    posix_spawnattr_setpgroup(&attr, 0);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK);
    char *argv[] = { "sh", "-c", (char *)command, NULL };
    pid_t pid;
    int rc = posix_spawn(&pid, "/bin/sh", &fa, &attr, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (rc != 0) {
        snprintf(err, errlen, "cannot run the fence command '%s': %s", command, strerror(rc));
        return -1;
    }
    return pid;
}

struct fence_run *fence_start(struct event_base *base, const char *command, uint32_t timeout_ms,
                              fence_done_fn done, void *ctx, char *err, size_t errlen)
{
    pid_t pid = spawn_in_own_group(command, err, errlen);
    if (pid < 0)
        return NULL;
    int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (pidfd < 0) {
        snprintf(err, errlen, "cannot watch the fence command (pidfd_open: %s); Linux 5.3 or later is needed",
                 strerror(errno));
        kill(-pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return NULL;
    }
    struct fence_run *r = g_new0(struct fence_run, 1);
    r->pid = pid;
    r->pidfd = pidfd;
    r->done = done;
    r->ctx = ctx;
    r->exited = event_new(base, pidfd, EV_READ | EV_PERSIST, on_exit_ready, r);
    r->timeout = evtimer_new(base, on_timeout, r);
    struct timeval tv = { timeout_ms / 1000, (suseconds_t)(timeout_ms % 1000) * 1000 };
    event_add(r->exited, NULL);
    evtimer_add(r->timeout, &tv);
    return r;
}

void fence_free(struct fence_run *r)
{
    if (!r)
        return;
    if (!r->reaped) {
        kill(-r->pid, SIGKILL);
        waitpid(r->pid, NULL, 0);
    }
    event_free(r->exited);
    event_free(r->timeout);
    close(r->pidfd);
    g_free(r);
}
