"""Waiting for file descriptors from goroutines: what goroutine.monkey puts in
``select`` (``select``, ``poll``, ``epoll``) and ``selectors`` (``patch_select``).

Each call first asks the real one without waiting (which also checks the arguments
and decides what is ready, exactly as before); when nothing is, the goroutine parks
in the runtime's netpoller (``gr_py_block_io``) and asks again once woken. One fd
waiting for reading and/or writing parks on that fd itself. Anything else (several
fds, priority data) registers the fds, with their exact events, in a short-lived
epoll instance of its own and parks on that: its fd turns readable when one of them
is ready. An epoll object (and so the default selector, ``EpollSelector``) parks on
its own fd. Outside goroutines every call is the original one.
"""

from __future__ import annotations

import errno as _errno
import select as _select
import selectors as _selectors
import time as _time
from typing import Any, Callable, Iterable, List, Optional, Tuple

from . import ContextError, _check_context, _lib, _ns, self_id

_real_select = _select.select
_real_poll = _select.poll
_real_epoll = _select.epoll
_monotonic = _time.monotonic
_READ = _lib.READ
_WRITE = _lib.WRITE
_EPOLLIN = _select.EPOLLIN
_EPOLLOUT = _select.EPOLLOUT
# Events that a wait on the fd itself (READ and/or WRITE) covers exactly: errors and
# hang-ups wake both directions.
_PLAIN_EVENTS = _EPOLLIN | _EPOLLOUT | _select.EPOLLERR | _select.EPOLLHUP


def _deadline(timeout: Optional[float]) -> Optional[float]:
    return None if timeout is None else _monotonic() + timeout


def _park_fd(fd: int, events: int, deadline: Optional[float]) -> bool:
    """Parks until ``fd`` is ready for ``events`` (READ/WRITE): True, or False at the
    deadline. An fd that is closed or bad counts as ready (the caller's next call
    reports it). ContextError where parking is refused; the goroutine's context
    error (gr.Cancelled, gr.DeadlineExceeded) once that is cancelled."""
    ns = -1 if deadline is None else max(0, _ns(deadline - _monotonic()))
    rc = _lib.block_io(fd, events, ns)
    if rc < 0:
        _check_context(rc)
    if rc == -_errno.ETIMEDOUT:
        return False
    if rc == -_errno.EPERM:
        raise ContextError()
    return True


def _sleep_until(deadline: Optional[float]) -> bool:
    from . import sleep

    while deadline is None:
        sleep(3600.0)
    left = deadline - _monotonic()
    if left > 0:
        sleep(left)
    return False


def park_fds(spec: Iterable[Tuple[int, int]], deadline: Optional[float]) -> bool:
    """Parks until one of ``spec`` ((fd, epoll event mask) pairs; an fd may come
    more than once) may be ready: True, or False at the deadline."""
    events: dict = {}
    for fd, ev in spec:
        events[fd] = events.get(fd, 0) | ev
    if not events:
        return _sleep_until(deadline)
    if len(events) == 1:
        ((fd, ev),) = events.items()
        if ev & (_EPOLLIN | _EPOLLOUT) and not ev & ~_PLAIN_EVENTS:
            return _park_fd(fd, (_READ if ev & _EPOLLIN else 0) | (_WRITE if ev & _EPOLLOUT else 0), deadline)
    with _real_epoll(len(events)) as ep:
        for fd, ev in events.items():
            try:
                ep.register(fd, ev)
            except OSError:
                return True  # a bad fd (or a regular file): let the caller's call say
        return _park_fd(ep.fileno(), _READ, deadline)


def _retry(ask: Callable[[], Any], spec: Callable[[], List[Tuple[int, int]]], deadline: Optional[float], blocking: Callable[[Optional[float]], Any]) -> Any:
    """Parks on ``spec()`` and asks again until ``ask()`` (a call that does not wait)
    returns something true or the deadline passes. ``blocking(timeout)`` is the
    original waiting call, for where parking is refused."""
    while True:
        try:
            woke = park_fds(spec(), deadline)
        except ContextError:
            return blocking(None if deadline is None else max(0.0, deadline - _monotonic()))
        r = ask()
        if r or not woke:
            return r


def _timeout_seconds(timeout: Any, what: str) -> Optional[float]:
    if timeout is None:
        return None
    try:
        return float(timeout)
    except (TypeError, ValueError):
        raise TypeError("timeout must be %s or None" % what) from None


# ---------------------------------------------------------------------------------
# select.select


def _fileno(obj: Any) -> int:
    return obj if isinstance(obj, int) else obj.fileno()


def select(rlist: Any, wlist: Any, xlist: Any, timeout: Optional[float] = None) -> Tuple[list, list, list]:
    """``select.select`` (see the module docs)."""
    if self_id() == 0:
        return _real_select(rlist, wlist, xlist, timeout)
    seconds = _timeout_seconds(timeout, "a float")
    if seconds is not None and seconds < 0:
        raise ValueError("timeout must be non-negative")
    rlist, wlist, xlist = list(rlist), list(wlist), list(xlist)
    r = _real_select(rlist, wlist, xlist, 0)
    if r[0] or r[1] or r[2] or seconds == 0:
        return r

    def ask() -> Tuple[list, list, list]:
        r = _real_select(rlist, wlist, xlist, 0)
        return r if (r[0] or r[1] or r[2]) else None  # type: ignore[return-value]

    def spec() -> List[Tuple[int, int]]:
        return (
            [(_fileno(o), _EPOLLIN) for o in rlist]
            + [(_fileno(o), _EPOLLOUT) for o in wlist]
            + [(_fileno(o), _select.EPOLLPRI) for o in xlist]
        )

    got = _retry(ask, spec, _deadline(seconds), lambda t: _real_select(rlist, wlist, xlist, t))
    return got or ([], [], [])


# ---------------------------------------------------------------------------------
# select.poll and select.epoll (neither real type can be subclassed: wrappers)


def _poll_deadline(timeout_ms: Any) -> Tuple[bool, Optional[float]]:
    """(no wait, deadline) for a poll timeout in milliseconds (None or < 0: none)."""
    if timeout_ms is None:
        return False, None
    ms = _timeout_seconds(timeout_ms, "an integer")
    assert ms is not None
    if ms < 0:
        return False, None
    return ms == 0, _monotonic() + ms / 1000.0


class poll:
    """``select.poll()`` (see the module docs)."""

    __slots__ = ("_poll", "_events")

    def __init__(self) -> None:
        self._poll = _real_poll()
        self._events: dict = {}

    def register(self, fd: Any, eventmask: int = _select.POLLIN | _select.POLLPRI | _select.POLLOUT) -> None:
        self._poll.register(fd, eventmask)
        self._events[_fileno(fd)] = eventmask

    def modify(self, fd: Any, eventmask: int) -> None:
        self._poll.modify(fd, eventmask)
        self._events[_fileno(fd)] = eventmask

    def unregister(self, fd: Any) -> None:
        self._poll.unregister(fd)
        self._events.pop(_fileno(fd), None)

    def poll(self, timeout: Any = None) -> list:
        p = self._poll
        if self_id() == 0:
            return p.poll(timeout)
        now, deadline = _poll_deadline(timeout)
        r = p.poll(0)
        if r or now:
            return r
        # poll(2) and epoll share their event bits on Linux.
        return _retry(
            lambda: p.poll(0),
            lambda: list(self._events.items()),
            deadline,
            lambda t: p.poll(None if t is None else t * 1000.0),
        )


class epoll:
    """``select.epoll`` (see the module docs)."""

    __slots__ = ("_ep", "__weakref__")

    def __init__(self, sizehint: int = -1, flags: int = 0, _ep: Any = None) -> None:
        self._ep = _real_epoll(sizehint, flags) if _ep is None else _ep

    @classmethod
    def fromfd(cls, fd: int) -> "epoll":
        return cls(_ep=_real_epoll.fromfd(fd))

    @property
    def closed(self) -> bool:
        return self._ep.closed

    def close(self) -> None:
        self._ep.close()

    def fileno(self) -> int:
        return self._ep.fileno()

    def register(self, fd: Any, eventmask: int = _select.EPOLLIN | _select.EPOLLPRI | _select.EPOLLOUT) -> None:
        self._ep.register(fd, eventmask)

    def modify(self, fd: Any, eventmask: int) -> None:
        self._ep.modify(fd, eventmask)

    def unregister(self, fd: Any) -> None:
        self._ep.unregister(fd)

    def poll(self, timeout: Any = None, maxevents: int = -1) -> list:
        ep = self._ep
        if self_id() == 0:
            return ep.poll(timeout, maxevents)
        seconds = _timeout_seconds(timeout, "a float")
        if seconds is not None and seconds < 0:
            seconds = None
        r = ep.poll(0, maxevents)
        if r or seconds == 0:
            return r
        fd = ep.fileno()
        return _retry(lambda: ep.poll(0, maxevents), lambda: [(fd, _EPOLLIN)], _deadline(seconds), lambda t: ep.poll(t, maxevents))

    def __enter__(self) -> "epoll":
        if self._ep.closed:
            raise ValueError("I/O operation on closed epoll object")
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return "<%s.%s fd=%d>" % (type(self).__module__, type(self).__qualname__, self._ep.fileno())


# ---------------------------------------------------------------------------------
# selectors (their select methods are wrapped in place, so every selector class and
# every instance, made before patching or after, parks)


def selector_select(original: Callable[..., list]) -> Callable[..., list]:
    """A ``select`` method for a selector class, around the class's ``original``."""

    def select(self: Any, timeout: Optional[float] = None) -> list:
        if self_id() == 0 or (timeout is not None and timeout <= 0):
            return original(self, timeout)
        ready = original(self, 0)
        if ready:
            return ready
        if isinstance(self, _selectors.EpollSelector):
            fd = self.fileno()

            def spec() -> List[Tuple[int, int]]:
                return [(fd, _EPOLLIN)]

        else:

            def spec() -> List[Tuple[int, int]]:
                # EVENT_READ / EVENT_WRITE
                return [
                    (k.fd, (_EPOLLIN if k.events & 1 else 0) | (_EPOLLOUT if k.events & 2 else 0))
                    for k in self.get_map().values()
                ]

        return _retry(lambda: original(self, 0), spec, _deadline(timeout), lambda t: original(self, t))

    select.__doc__ = original.__doc__
    select.__wrapped__ = original  # type: ignore[attr-defined]
    return select


def selector_classes() -> List[type]:
    """The classes of ``selectors`` that define their own ``select``."""
    found = {}
    for c in vars(_selectors).values():
        if isinstance(c, type) and "select" in vars(c) and c is not _selectors.BaseSelector:
            found[c] = None
    return list(found)
