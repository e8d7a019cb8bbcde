/*
 * LD_PRELOAD workaround for QEMU 7.2 COLO under TCG (docs/qemu-faults.md: the primary's deadlock).
 *
 * The primary's COLO thread saves RAM without QEMU's global lock; under TCG that
 * path reaches run_on_cpu(), which waits on a condition variable with the global
 * mutex it does not own. glibc then hands the thread the mutex on wake-up and it
 * later blocks on itself, freezing QEMU at its first checkpoint.
 *
 * This pthread_cond_wait notices a caller that does not own the mutex and instead
 * takes it, waits for at most one millisecond, and gives it back, so the caller
 * returns in the state it came in. Callers re-check their condition in a loop, so
 * a spurious return is safe. Owned waits go straight to glibc. Used only by the
 * real-guest test (tests/guest); QEMU itself is not patched.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#define FOREIGN_WAIT_NS 1000000L

typedef int (*cond_wait_fn)(pthread_cond_t *, pthread_mutex_t *);

static cond_wait_fn glibc_cond_wait(void)
{
    static cond_wait_fn real;
    if (!real) {
        real = (cond_wait_fn)dlvsym(RTLD_NEXT, "pthread_cond_wait", "GLIBC_2.3.2");
        if (!real)
            real = (cond_wait_fn)dlsym(RTLD_NEXT, "pthread_cond_wait");
    }
    return real;
}

/* glibc records the owner's thread id in every locked default or error-checking mutex. */
static int caller_owns(const pthread_mutex_t *mutex)
{
    return mutex->__data.__owner == gettid();
}

static int wait_briefly_without_ownership(pthread_cond_t *cond, pthread_mutex_t *mutex)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_nsec += FOREIGN_WAIT_NS;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(mutex);
    pthread_cond_timedwait(cond, mutex, &until);
    pthread_mutex_unlock(mutex);
    return 0;
}

int pthread_cond_wait(pthread_cond_t *cond, pthread_mutex_t *mutex)
{
    if (!caller_owns(mutex))
        return wait_briefly_without_ownership(cond, mutex);
    return glibc_cond_wait()(cond, mutex);
}
