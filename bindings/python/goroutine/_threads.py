"""Threads and locks for goroutines: what goroutine.monkey puts in ``_thread`` and
``threading`` (see ``monkey.patch_threading``).

- ``Lock``, ``RLock`` and ``get_ident`` are builtins of the runtime
  (src/cpython/lock.rs, where their behaviour is described): a lock's state is a
  real ``_thread`` lock, so an uncontended acquire/release costs what the real
  lock's does and a plain thread waits on it exactly as before (timeouts, signals);
  a goroutine that finds it taken parks until a release (by any thread or
  goroutine) wakes it. ``get_ident`` is a goroutine's id inside goroutines (the
  goroutine ``gr.run`` started stands for its thread and gets the thread's id), the
  thread's id elsewhere; an ``RLock``'s owner is that.
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
import threading as _threading
from typing import Any, Callable, Optional

from . import _get_ident, _go_daemon, _homes, _lib, _report, go, self_id

_real_lock = _thread.allocate_lock
_real_start_new_thread = _thread.start_new_thread
# Per goroutine (a thread state each): the dummy Thread of current_thread() and the
# 3.11/3.12 thread sentinel.
_local = _thread._local()

Lock = _lib.builtin["Lock"]
RLock = _lib.builtin["RLock"]
get_ident = _lib.builtin["get_ident"]


def _lock_repr(self: Any) -> str:
    return "<%s %s.%s object at %#x>" % (
        "locked" if self.locked() else "unlocked",
        type(self).__module__,
        type(self).__qualname__,
        id(self),
    )


def _rlock_repr(self: Any) -> str:
    return "<%s %s.%s object owner=%r count=%d at %#x>" % (
        "locked" if self.locked() else "unlocked",
        type(self).__module__,
        type(self).__qualname__,
        self._owner,
        self._count,
        id(self),
    )


Lock.__repr__ = _lock_repr
RLock.__repr__ = _rlock_repr


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
    if g == 0 or get_ident() != g:  # a thread, or the goroutine standing for one
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
