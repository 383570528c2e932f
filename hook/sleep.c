/*
 * sleep, usleep, nanosleep, clock_nanosleep: on a goroutine, gr_sleep (a timer; the
 * thread runs other goroutines meanwhile). Argument checks and results are libc's:
 * EINVAL for a bad timespec, clock_nanosleep's error number as its return value.
 * An absolute clock_nanosleep sleeps until the clock reads the time asked for
 * (measured when the call starts); CPU-time clocks and unknown ones go to libc.
 */
#include "hook.h"

#include <errno.h>

static int valid(const struct timespec *ts)
{
    return ts->tv_sec >= 0 && ts->tv_nsec >= 0 && ts->tv_nsec < 1000000000;
}

static int64_t ts_ns(const struct timespec *ts)
{
    return ts->tv_sec > INT64_MAX / 1000000000 - 1 ? INT64_MAX
                                                   : (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec;
}

EXPORT unsigned sleep(unsigned s)
{
    HOOK_ENTER();
    if (!on_goroutine())
        return real.sleep(s);
    gr_sleep((int64_t)s * 1000000000);
    return 0;
}

EXPORT int usleep(useconds_t us)
{
    HOOK_ENTER();
    if (!on_goroutine())
        return real.usleep(us);
    gr_sleep((int64_t)us * 1000);
    return 0;
}

EXPORT int nanosleep(const struct timespec *req, struct timespec *rem)
{
    HOOK_ENTER();
    if (!on_goroutine() || !req)
        return real.nanosleep(req, rem);
    if (!valid(req))
        return (int)hook_fail(EINVAL);
    gr_sleep(ts_ns(req));
    return 0;
}

EXPORT int clock_nanosleep(clockid_t clock, int flags, const struct timespec *req,
                           struct timespec *rem)
{
    HOOK_ENTER();
    int known = clock == CLOCK_REALTIME || clock == CLOCK_MONOTONIC || clock == CLOCK_BOOTTIME ||
                clock == CLOCK_TAI;
    if (!on_goroutine() || !req || !known)
        return real.clock_nanosleep(clock, flags, req, rem);
    if (!valid(req))
        return EINVAL;
    int64_t ns = ts_ns(req);
    if (flags & TIMER_ABSTIME) {
        struct timespec now;
        if (clock_gettime(clock, &now) < 0)
            return EINVAL;
        ns -= ts_ns(&now);
        if (ns <= 0)
            return 0;
    }
    gr_sleep(ns);
    return 0;
}
