"""Threads and locks for goroutines: what goroutine.monkey puts in ``_thread`` and
``threading`` (see ``monkey.patch_threading``).

- ``Lock``: the state is a real ``_thread`` lock, so an uncontended acquire/release
  is that lock's own (no call into the runtime) and a plain thread that waits blocks
  on it exactly as before (timeouts, signals). A goroutine that finds it taken queues
  a one-slot channel on the lock and parks on it; ``release`` hands a token to the
  first queued goroutine, which tries again. Any thread or goroutine may release.
  The park has a timeout (``_RECHECK``, renewed until the lock's own): an OS thread
  may release the lock or notify the condition, which the runtime cannot see, so a
  goroutine waiting here is never taken for deadlocked (``gr.Deadlock``); a real
  deadlock through these locks hangs, as it does with threads.
- ``RLock``: owner and count over a ``Lock``, the owner being ``get_ident()``.
- ``get_ident``: a goroutine's id inside goroutines (the goroutine ``gr.run`` started
  stands for its thread and gets the thread's id), the thread's id elsewhere.
- Starting a thread from a goroutine starts a goroutine instead
  (``start_new_thread``; on 3.11/3.12 ``threading`` then waits on the lock returned
  by ``_set_sentinel``, released when the goroutine ends; on 3.13 on a
  ``_ThreadHandle`` that is the real one for OS threads and a goroutine's otherwise).
  A daemon thread's goroutine is one ``gr.run`` does not wait for.
- ``current_thread``: the Thread object of a goroutine started as a thread; for other
  goroutines a dummy Thread kept in goroutine-local storage (not in
  ``threading._active``, so nothing is left behind when the goroutine ends).

``threading.local`` needs nothing: it is per Python thread state, and every
goroutine has its own.
"""

from __future__ import annotations

import _thread
import sys
import threading as _threading
import time as _time
from typing import Any, Callable, Optional

from . import Chan, ContextError, _get_ident, _go_daemon, _homes, _mains, _report, go, self_id
from . import select as _chan_select

_real_lock = _thread.allocate_lock
_real_start_new_thread = _thread.start_new_thread
_TIMEOUT_MAX = _thread.TIMEOUT_MAX
_monotonic = _time.monotonic
# Per goroutine (a thread state each): the dummy Thread of current_thread() and the
# 3.11/3.12 thread sentinel.
_local = _thread._local()

# See the module docs: keeps a timer armed while a goroutine waits on a lock.
_RECHECK = 1.0

_NEGATIVE_TIMEOUT = (
    "timeout value must be positive" if sys.version_info < (3, 13) else "timeout value must be a non-negative number"
)


def _check_timeout(blocking: bool, timeout: float) -> None:
    """The argument checks of _thread.lock.acquire, for a timeout other than -1."""
    if not blocking:
        raise ValueError("can't specify a timeout for a non-blocking call")
    if timeout < 0:
        raise ValueError(_NEGATIVE_TIMEOUT)
    if timeout > _TIMEOUT_MAX:
        raise OverflowError("timeout value is too large")


def get_ident() -> int:
    """``threading.get_ident`` (see the module docs)."""
    g = self_id()
    if g == 0 or g in _mains:
        return _get_ident()
    return g


class Lock:
    """``threading.Lock`` that parks goroutines (see the module docs)."""

    __slots__ = ("_lock", "_waiters", "__weakref__")

    def __init__(self) -> None:
        self._lock = _real_lock()
        self._waiters: list = []

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        if timeout != -1:
            _check_timeout(blocking, timeout)
        if self._lock.acquire(False):
            return True
        if not blocking or timeout == 0:
            return False
        if self_id() == 0:
            return self._lock.acquire(True, timeout)
        return self._park(timeout)

    def _park(self, timeout: float) -> bool:
        lock = self._lock
        waiters = self._waiters
        deadline = None if timeout < 0 else _monotonic() + timeout
        ch: Chan = Chan(1)
        try:
            while True:
                waiters.append(ch)
                if lock.acquire(False):
                    self._forget(ch)  # a token sent meanwhile is dropped with ch
                    return True
                if self._wait_token(ch, deadline):
                    continue
                if self._forget(ch):
                    return False
                # A release picked this goroutine as it timed out: take the lock if it
                # is still free; if not, its holder wakes the next one on release.
                return lock.acquire(False)
        except ContextError:
            # Parking is refused here (a ctypes callback on 3.11, a C goroutine):
            # block the thread, as the real lock would.
            self._forget(ch)
            left = -1 if deadline is None else max(0.0, deadline - _monotonic())
            return lock.acquire(True, left)
        except BaseException:
            self._forget(ch)
            raise

    @staticmethod
    def _wait_token(ch: Chan, deadline: Optional[float]) -> bool:
        """Parks until a release hands ``ch`` a token: True, or False at the deadline."""
        recv = [ch.recv_case()]
        while True:
            left = _RECHECK if deadline is None else min(_RECHECK, deadline - _monotonic())
            if left <= 0:
                return False
            if _chan_select(recv, left) is not None:
                return True

    def _forget(self, ch: Chan) -> bool:
        try:
            self._waiters.remove(ch)
            return True
        except ValueError:
            return False

    def release(self) -> None:
        self._lock.release()
        if self._waiters:
            try:
                ch = self._waiters.pop(0)
            except IndexError:
                return
            ch.try_send(None)

    def locked(self) -> bool:
        return self._lock.locked()

    def _at_fork_reinit(self) -> None:
        self._lock._at_fork_reinit()
        self._waiters = []

    __enter__ = acquire

    def __exit__(self, *exc: object) -> None:
        self.release()

    acquire_lock = acquire
    release_lock = release
    locked_lock = locked

    def __repr__(self) -> str:
        return "<%s %s.%s object at %#x>" % (
            "locked" if self.locked() else "unlocked",
            type(self).__module__,
            type(self).__qualname__,
            id(self),
        )


class RLock:
    """``threading.RLock`` over a goroutine ``Lock``; the owner is ``get_ident()``."""

    __slots__ = ("_block", "_owner", "_count", "__weakref__")

    def __init__(self) -> None:
        self._block = Lock()
        self._owner: Optional[int] = None
        self._count = 0

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        me = get_ident()
        if self._owner == me:
            if timeout != -1:
                _check_timeout(blocking, timeout)
            self._count += 1
            return True
        if not self._block.acquire(blocking, timeout):
            return False
        self._owner = me
        self._count = 1
        return True

    __enter__ = acquire

    def release(self) -> None:
        if self._owner != get_ident():
            raise RuntimeError("cannot release un-acquired lock")
        self._count -= 1
        if self._count == 0:
            self._owner = None
            self._block.release()

    def __exit__(self, *exc: object) -> None:
        self.release()

    def locked(self) -> bool:
        return self._block.locked()

    # For threading.Condition.
    def _is_owned(self) -> bool:
        return self._owner == get_ident()

    def _release_save(self) -> tuple:
        if self._count == 0:
            raise RuntimeError("cannot release un-acquired lock")
        state = (self._count, self._owner)
        self._count = 0
        self._owner = None
        self._block.release()
        return state

    def _acquire_restore(self, state: tuple) -> None:
        self._block.acquire()
        self._count, self._owner = state

    def _recursion_count(self) -> int:
        return self._count if self._owner == get_ident() else 0

    def _at_fork_reinit(self) -> None:
        self._block._at_fork_reinit()
        self._owner = None
        self._count = 0

    def __repr__(self) -> str:
        return "<%s %s.%s object owner=%r count=%d at %#x>" % (
            "locked" if self.locked() else "unlocked",
            type(self).__module__,
            type(self).__qualname__,
            self._owner,
            self._count,
            id(self),
        )


# ---------------------------------------------------------------------------------
# starting threads


class _Sentinel(Lock):
    """The lock threading (3.11/3.12) waits on to join a thread that is a goroutine:
    held while it runs, released when it ends."""

    __slots__ = ()


def _in_home() -> bool:
    """True in a goroutine of a running gr.run (one that may start goroutines)."""
    return self_id() != 0 and _get_ident() in _homes


def _thread_body(function: Callable[..., Any], args: tuple, kwargs: Optional[dict]) -> None:
    try:
        function(*args, **(kwargs or {}))
    except SystemExit:
        pass  # as in a thread: ends it quietly
    except Exception as e:
        _report(e, function)
    finally:
        sentinel = getattr(_local, "sentinel", None)
        if sentinel is not None:
            _local.sentinel = None
            sentinel.release()


def _spawn_thread(function: Callable[..., Any], args: tuple, kwargs: Optional[dict], daemon: bool):
    if daemon:
        return _go_daemon(_thread_body, function, args, kwargs)
    return go(_thread_body, function, args, kwargs)


def start_new_thread(function: Callable[..., Any], args: tuple, kwargs: Optional[dict] = None) -> int:
    """``_thread.start_new_thread``: a goroutine inside goroutines (a daemon one
    unless ``function`` is a non-daemon Thread's bootstrap), an OS thread elsewhere."""
    if not _in_home():
        if kwargs is None:
            return _real_start_new_thread(function, args)
        return _real_start_new_thread(function, args, kwargs)
    if not isinstance(args, tuple):
        raise TypeError("2nd arg must be a tuple")
    if kwargs is not None and not isinstance(kwargs, dict):
        raise TypeError("optional 3rd arg must be a dictionary")
    owner = getattr(function, "__self__", None)
    daemon = owner.daemon if isinstance(owner, _threading.Thread) else True
    return _spawn_thread(function, args, kwargs, daemon).id


if hasattr(_thread, "_set_sentinel"):  # 3.11, 3.12
    _real_set_sentinel = _thread._set_sentinel

    def _set_sentinel() -> Any:
        """``_thread._set_sentinel``: in a goroutine, a lock released when it ends."""
        if self_id() == 0:
            return _real_set_sentinel()
        lock = _Sentinel()
        _local.sentinel = lock
        return lock

    _real_shutdown = _threading._shutdown

    def _shutdown() -> None:
        """``threading._shutdown`` without the sentinels of goroutines: by the time the
        interpreter exits, gr.run has waited for the non-daemon ones, and the others
        were left behind with their run."""
        with _threading._shutdown_locks_lock:  # type: ignore[attr-defined]
            locks = _threading._shutdown_locks  # type: ignore[attr-defined]
            locks.difference_update([lk for lk in locks if isinstance(lk, _Sentinel)])
        _real_shutdown()


if hasattr(_thread, "start_joinable_thread"):  # 3.13
    _RealHandle = _thread._ThreadHandle
    _real_start_joinable_thread = _thread.start_joinable_thread

    class _ThreadHandle:
        """``threading``'s handle of a Thread (3.13): the real one while the thread is
        an OS thread, the goroutine once it was started as one."""

        __slots__ = ("_real", "_goroutine", "_done")

        def __init__(self) -> None:
            self._real = _RealHandle()
            self._goroutine: Any = None
            self._done = False

        @property
        def ident(self) -> int:
            g = self._goroutine
            return self._real.ident if g is None else g.id

        def join(self, timeout: Optional[float] = None) -> None:
            g = self._goroutine
            if g is None:
                return self._real.join(timeout)
            if self._done:
                return None
            try:
                g.join(timeout)
            except TimeoutError:
                pass
            return None

        def is_done(self) -> bool:
            g = self._goroutine
            if g is None:
                return self._real.is_done()
            return self._done or g.done()

        def _set_done(self) -> None:
            if self._goroutine is None:
                self._real._set_done()
            else:
                self._done = True

        def __repr__(self) -> str:
            return "<%s.%s object: ident=%d>" % (type(self).__module__, type(self).__qualname__, self.ident)

    def start_joinable_thread(function: Callable[[], Any], handle: Any = None, daemon: bool = True) -> Any:
        """``_thread.start_joinable_thread`` (3.13): a goroutine inside goroutines."""
        if not _in_home():
            if isinstance(handle, _ThreadHandle):
                _real_start_joinable_thread(function, handle=handle._real, daemon=daemon)
                return handle
            return _real_start_joinable_thread(function, handle=handle, daemon=daemon)
        if handle is None:
            handle = _ThreadHandle()
        elif not isinstance(handle, _ThreadHandle):
            raise TypeError("a goroutine thread needs a goroutine.monkey thread handle")
        handle._goroutine = _spawn_thread(function, (), None, daemon)
        return handle


_real_current_thread = _threading.current_thread


def current_thread() -> _threading.Thread:
    """``threading.current_thread`` (see the module docs)."""
    g = self_id()
    if g == 0 or g in _mains:
        return _real_current_thread()
    t = _threading._active.get(g)  # type: ignore[attr-defined]
    if t is not None:
        return t
    t = getattr(_local, "dummy", None)
    if t is None:
        t = _local.dummy = _dummy_thread(g)
    return t


def _dummy_thread(ident: int) -> _threading.Thread:
    t = _threading._DummyThread()  # type: ignore[attr-defined]
    active = _threading._active  # type: ignore[attr-defined]
    with _threading._active_limbo_lock:  # type: ignore[attr-defined]
        if active.get(t.ident) is t:
            del active[t.ident]
    t._ident = ident
    # Threads started from it inherit this: goroutines are waited for by gr.run, as
    # non-daemon threads are by the interpreter.
    t._daemonic = False
    return t
