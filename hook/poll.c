/*
 * poll, ppoll, select, pselect, epoll_wait, epoll_pwait (and __poll_chk,
 * __ppoll_chk for _FORTIFY_SOURCE).
 *
 * poll and ppoll are gr_poll: a poll(2) that parks the goroutine. One fd (what
 * hiredis, libpq and libcurl mostly wait on) and several fds take the same path: a
 * node on each fd's netpoller lists under one waiter, with no system call beyond the
 * two poll(2)s (src/runtime/netpoll.rs, `poll`; a temporary epoll set per call was
 * the alternative, at 3 + n system calls per wait). Whatever wakes the goroutine,
 * poll(2) itself decides what is reported, so return sets and timeouts are poll(2)'s.
 *
 * select and pselect are built on it: the fd sets become pollfds (POLLIN for read,
 * POLLOUT for write, POLLPRI for except), and the answer is mapped back the way the
 * kernel's select does (a hang-up or error counts as readable, an error as
 * writable, an fd that is not open fails the call with EBADF). select updates its
 * timeout to the time not slept, as Linux's does.
 *
 * epoll_wait parks on the epoll fd's own readability (an epoll fd is readable while
 * it has events) and then collects the events with a zero timeout.
 *
 * A signal mask given to ppoll, pselect or epoll_pwait is not applied while the
 * goroutine is parked: it has no thread then (docs/guide.md lists this).
 */
#include "hook.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int64_t ms_to_ns(int ms)
{
    return ms < 0 ? -1 : (int64_t)ms * 1000000;
}

static int ts_to_ns(const struct timespec *ts, int64_t *ns)
{
    if (!ts) {
        *ns = -1;
        return 0;
    }
    if (ts->tv_sec < 0 || ts->tv_nsec < 0 || ts->tv_nsec >= 1000000000)
        return -1;
    *ns = ts->tv_sec > INT64_MAX / 1000000000 - 1 ? INT64_MAX
                                                  : (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec;
    return 0;
}

static int poll_ns(struct pollfd *fds, nfds_t n, int64_t ns)
{
    int r = gr_poll(fds, n, ns);
    return r < 0 ? (int)hook_fail(-r) : r;
}

EXPORT int poll(struct pollfd *fds, nfds_t n, int timeout)
{
    HOOK_ENTER();
    if (!on_goroutine())
        return real.poll(fds, n, timeout);
    return poll_ns(fds, n, ms_to_ns(timeout));
}

EXPORT int ppoll(struct pollfd *fds, nfds_t n, const struct timespec *ts, const sigset_t *mask)
{
    HOOK_ENTER();
    int64_t ns;
    if (!on_goroutine())
        return real.ppoll(fds, n, ts, mask);
    if (ts_to_ns(ts, &ns) < 0)
        return (int)hook_fail(EINVAL);
    return poll_ns(fds, n, ns);
}

extern void __chk_fail(void) __attribute__((noreturn));

EXPORT int __poll_chk(struct pollfd *fds, nfds_t n, int timeout, size_t fdslen)
{
    if (fdslen / sizeof *fds < n)
        __chk_fail();
    return poll(fds, n, timeout);
}

EXPORT int __ppoll_chk(struct pollfd *fds, nfds_t n, const struct timespec *ts,
                       const sigset_t *mask, size_t fdslen)
{
    if (fdslen / sizeof *fds < n)
        __chk_fail();
    return ppoll(fds, n, ts, mask);
}

/* ---------------------------------------------------------------- select */

#define POLLIN_SET (POLLIN | POLLRDNORM | POLLRDBAND | POLLHUP | POLLERR)
#define POLLOUT_SET (POLLOUT | POLLWRNORM | POLLWRBAND | POLLERR)
#define POLLEX_SET (POLLPRI)

/* select over gr_poll; ns < 0 waits for ever. Returns the ready count or -errno. */
static int select_ns(int nfds, fd_set *rd, fd_set *wr, fd_set *ex, int64_t ns)
{
    if (nfds < 0)
        return -EINVAL;
    struct pollfd small[64], *p = small;
    int cnt = 0;
    for (int fd = 0; fd < nfds; fd++) {
        short ev = (short)((rd && FD_ISSET(fd, rd) ? POLLIN : 0) |
                           (wr && FD_ISSET(fd, wr) ? POLLOUT : 0) |
                           (ex && FD_ISSET(fd, ex) ? POLLPRI : 0));
        if (!ev)
            continue;
        if (cnt == 64 && p == small) {
            if (!(p = malloc(sizeof *p * (size_t)nfds)))
                return -ENOMEM;
            memcpy(p, small, sizeof small);
        }
        p[cnt].fd = fd;
        p[cnt].events = ev;
        p[cnt].revents = 0;
        cnt++;
    }
    int r = gr_poll(p, (size_t)cnt, ns);
    if (r >= 0) {
        for (int i = 0; i < cnt; i++) {
            if (p[i].revents & POLLNVAL) {
                r = -EBADF;
                break;
            }
        }
    }
    if (r >= 0) {
        int ready = 0;
        for (int i = 0; i < cnt; i++) {
            int fd = p[i].fd;
            short rev = p[i].revents, ev = p[i].events;
            if (rd && FD_ISSET(fd, rd) && !(rev & POLLIN_SET))
                FD_CLR(fd, rd);
            if (wr && FD_ISSET(fd, wr) && !(rev & POLLOUT_SET))
                FD_CLR(fd, wr);
            if (ex && FD_ISSET(fd, ex) && !(rev & POLLEX_SET))
                FD_CLR(fd, ex);
            ready += (rd && (ev & POLLIN) && FD_ISSET(fd, rd)) +
                     (wr && (ev & POLLOUT) && FD_ISSET(fd, wr)) +
                     (ex && (ev & POLLPRI) && FD_ISSET(fd, ex));
        }
        r = ready;
    }
    if (p != small)
        free(p);
    return r;
}

EXPORT int select(int nfds, fd_set *rd, fd_set *wr, fd_set *ex, struct timeval *tv)
{
    HOOK_ENTER();
    if (!on_goroutine())
        return real.select(nfds, rd, wr, ex, tv);
    int64_t ns = -1;
    if (tv) {
        if (tv->tv_sec < 0 || tv->tv_usec < 0)
            return (int)hook_fail(EINVAL);
        ns = (int64_t)tv->tv_sec * 1000000000 + (int64_t)tv->tv_usec * 1000;
    }
    int64_t deadline = hook_deadline(ns);
    int r = select_ns(nfds, rd, wr, ex, ns);
    if (tv) {
        int64_t left = hook_left(deadline);
        tv->tv_sec = left / 1000000000;
        tv->tv_usec = (left % 1000000000) / 1000;
    }
    return r < 0 ? (int)hook_fail(-r) : r;
}

EXPORT int pselect(int nfds, fd_set *rd, fd_set *wr, fd_set *ex, const struct timespec *ts,
                   const sigset_t *mask)
{
    HOOK_ENTER();
    int64_t ns;
    if (!on_goroutine())
        return real.pselect(nfds, rd, wr, ex, ts, mask);
    if (ts_to_ns(ts, &ns) < 0)
        return (int)hook_fail(EINVAL);
    int r = select_ns(nfds, rd, wr, ex, ns);
    return r < 0 ? (int)hook_fail(-r) : r;
}

/* ---------------------------------------------------------------- epoll */

static int epoll_ns(int ep, struct epoll_event *evs, int max, int64_t ns)
{
    int r = real.epoll_wait(ep, evs, max, 0);
    if (r != 0 || ns == 0)
        return r;
    int64_t deadline = hook_deadline(ns);
    for (;;) {
        int err = hook_wait_edge(ep, GR_READ, deadline);
        if (err == EAGAIN) /* the timeout */
            return real.epoll_wait(ep, evs, max, 0);
        if (err)
            return (int)hook_fail(err);
        if ((r = real.epoll_wait(ep, evs, max, 0)) != 0)
            return r;
    }
}

EXPORT int epoll_wait(int ep, struct epoll_event *evs, int max, int timeout)
{
    HOOK_ENTER();
    if (!on_goroutine())
        return real.epoll_wait(ep, evs, max, timeout);
    return epoll_ns(ep, evs, max, ms_to_ns(timeout));
}

EXPORT int epoll_pwait(int ep, struct epoll_event *evs, int max, int timeout, const sigset_t *mask)
{
    HOOK_ENTER();
    if (!on_goroutine())
        return real.epoll_pwait(ep, evs, max, timeout, mask);
    return epoll_ns(ep, evs, max, ms_to_ns(timeout));
}
