/*
 * sleep, usleep, nanosleep, clock_nanosleep: on a goroutine, gr_sleep (a timer; the
 * thread runs other goroutines meanwhile). Argument checks and results are libc's:
 * EINVAL for a bad timespec, clock_nanosleep's error number as its return value.
 * An absolute clock_nanosleep sleeps until the clock reads the time asked for
 * (measured when the call starts); CPU-time clocks and unknown ones go to libc.
 * A sleep that the goroutine's context ends (gr_ctx) fails as one that a signal
 * interrupted, with the context's error in place of EINTR: ECANCELED, or ETIMEDOUT
 * for a deadline (the time not slept in `rem`, and sleep's return value).
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

/* gr_sleep(ns): 0, or the context's errno value with the time not slept in *left. */
static int sleep_ns(int64_t ns, int64_t *left)
{
    int64_t deadline = hook_deadline(ns);
    int e = hook_ctx_err(gr_sleep(ns));
    if (e)
        *left = hook_left(deadline);
    return e;
}

EXPORT unsigned sleep(unsigned s)
{
    HOOK_ENTER();
    if (!on_goroutine())
        return real.sleep(s);
    int64_t left;
    int e = sleep_ns((int64_t)s * 1000000000, &left);
    if (!e)
        return 0;
    hook_set_errno(e);
    return (unsigned)((left + 999999999) / 1000000000);
}

EXPORT int usleep(useconds_t us)
{
    HOOK_ENTER();
    if (!on_goroutine())
        return real.usleep(us);
    int64_t left;
    int e = sleep_ns((int64_t)us * 1000, &left);
    return e ? (int)hook_fail(e) : 0;
}

static void ns_ts(int64_t ns, struct timespec *ts)
{
    ts->tv_sec = (time_t)(ns / 1000000000);
    ts->tv_nsec = (long)(ns % 1000000000);
}

EXPORT int nanosleep(const struct timespec *req, struct timespec *rem)
{
    HOOK_ENTER();
    if (!on_goroutine() || !req)
        return real.nanosleep(req, rem);
    if (!valid(req))
        return (int)hook_fail(EINVAL);
    int64_t left;
    int e = sleep_ns(ts_ns(req), &left);
    if (!e)
        return 0;
    if (rem)
        ns_ts(left, rem);
    return (int)hook_fail(e);
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
    int64_t left;
    int e = sleep_ns(ns, &left);
    if (e && rem && !(flags & TIMER_ABSTIME))
        ns_ts(left, rem);
    return e;
}
