"""Timers and tickers (Go's ``time.Timer`` and ``time.Ticker``) on the runtime's timer
heap: ``gr.Timer(seconds)``, ``gr.Ticker(seconds)``, each with a ``.chan`` to receive
from (``recv()``, or ``recv_case()`` in ``gr.select``) and ``stop()`` / ``reset()``.

A firing sends its time, in ``time.monotonic_ns()`` units, on a one-slot channel; a
tick is dropped while one is unread. Once ``stop()`` or ``reset()`` has returned, no
value from before is received (Go 1.23's rule). The channel carries integers, not
Python objects, so it is its own class (``TimerChan``); ``gr.select`` takes its cases
beside those of ``gr.Chan``.
"""

from __future__ import annotations

from ctypes import c_int, c_int64, c_void_p
from typing import Iterator, Optional, Tuple

from . import _lib

_new = _lib._fn(_lib.pydll, "gr_timer_new", c_void_p, c_int64, c_int64)
_chan = _lib._fn(_lib.pydll, "gr_timer_chan", c_void_p, c_void_p)
_stop = _lib._fn(_lib.pydll, "gr_timer_stop", c_int, c_void_p)
_reset = _lib._fn(_lib.pydll, "gr_timer_reset", c_int, c_void_p, c_int64, c_int64)
_free = _lib._fn(_lib.pydll, "gr_timer_free", c_int, c_void_p)
_len = _lib._fn(_lib.pydll, "gr_chan_len", c_int64, c_void_p)

#: A select case's op: receive an int64_t from a timer's channel (the select builtin's
#: RECV_INT64, src/cpython/chan.rs).
RECV_INT64 = 0x100 | _lib.RECV

_NS = 1_000_000_000


def _delay_ns(seconds: float) -> int:
    return max(0, int(seconds * _NS))


def _period_ns(seconds: float) -> int:
    if not seconds > 0:
        raise ValueError("a ticker's period must be > 0 seconds")
    return max(1, int(seconds * _NS))


class TimerChan:
    """A timer's channel: receives the monotonic time (ns) of each firing. Owned by its
    timer, which it keeps alive."""

    __slots__ = ("_c", "_timer")

    def __init__(self, timer: "Timer", c: int) -> None:
        self._timer = timer
        self._c = c

    def recv(self) -> int:
        """Waits for the next firing and returns its time (``time.monotonic_ns()``
        units)."""
        from . import select  # the package's select: one case, no timeout

        return select([self.recv_case()])[1]

    def try_recv(self) -> Tuple[Optional[int], bool]:
        """``(time, True)`` if a firing is waiting to be received, else
        ``(None, False)``."""
        from . import select

        r = select([self.recv_case()], timeout=0)
        return (None, False) if r is None else (r[1], True)

    def recv_case(self) -> "object":
        """A receive case for ``gr.select``; the value is the firing's time."""
        from . import _Case

        return _Case(self, RECV_INT64, None)

    def __iter__(self) -> Iterator[int]:
        """The firings, for ever (a stopped timer's loop waits for a reset)."""
        while True:
            yield self.recv()

    def __len__(self) -> int:
        """Firings waiting to be received (0 or 1)."""
        return _len(self._c)

    @property
    def cap(self) -> int:
        return 1

    def __repr__(self) -> str:
        return f"<TimerChan len={len(self)}>"


class Timer:
    """Go's ``time.Timer``: fires once, ``seconds`` from now (<= 0: at once); the time
    of the firing arrives on ``chan``. No thread per timer."""

    __slots__ = ("_t", "chan", "__weakref__")

    def __init__(self, seconds: float) -> None:
        self._start(_delay_ns(seconds), 0)

    def _start(self, ns: int, period_ns: int) -> None:
        self._t = None
        t = _new(ns, period_ns)
        if not t:
            raise MemoryError("cannot create a timer")
        self._t = t
        self.chan = TimerChan(self, _chan(t))

    def stop(self) -> bool:
        """Stops it: True if that prevented a firing from being received (it was
        pending, or its value was still unread and is now dropped), False if it had
        fired and been received already (or was stopped)."""
        return _stop(self._t) == 1

    def reset(self, seconds: float) -> bool:
        """Stops it (the result is ``stop()``'s) and arms it to fire ``seconds`` from
        now."""
        return _reset(self._t, _delay_ns(seconds), 0) == 1

    def __del__(self) -> None:
        t = getattr(self, "_t", None)  # unset when __init__ raised
        if t:
            self._t = None
            _free(t)  # -EBUSY (someone still waits on the channel): left allocated

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.chan!r}>"


class Ticker(Timer):
    """Go's ``time.Ticker``: fires every ``seconds``, the first time ``seconds`` from
    now; a tick is dropped while the previous one is unread (a slow reader gets the
    latest it had room for, not a backlog)."""

    __slots__ = ()

    def __init__(self, seconds: float) -> None:
        p = _period_ns(seconds)
        self._start(p, p)

    def reset(self, seconds: float) -> bool:  # type: ignore[override]
        """Stops it and ticks every ``seconds`` from now on; True if a tick was
        pending or unread."""
        p = _period_ns(seconds)
        rc = _reset(self._t, p, p)
        if rc < 0:
            raise OSError(-rc, _lib.strerror(rc))
        return rc == 1

