"""The rest of Go's ``sync`` for goroutines: ``gr.RWMutex``, ``gr.Cond`` (on a
``gr.Mutex``) and ``gr.Semaphore`` (golang.org/x/sync's weighted semaphore, FIFO).
Their waits park the goroutine (a plain thread blocks) and release the GIL meanwhile,
like ``gr.Mutex``'s.
"""

from __future__ import annotations

import errno as _errno
from ctypes import c_int, c_int64, c_void_p
from typing import Optional

from . import _check_context, _lib

_fn, _py = _lib._fn, _lib.pydll

_rw_new = _fn(_py, "gr_rwmutex_new", c_void_p)
_rw_lock = _fn(_py, "gr_py_rwmutex_lock", c_int, c_void_p, c_int)
_rw_tryrlock = _fn(_py, "gr_rwmutex_tryrlock", c_int, c_void_p)
_rw_trylock = _fn(_py, "gr_rwmutex_trylock", c_int, c_void_p)
_rw_runlock = _fn(_py, "gr_rwmutex_runlock", c_int, c_void_p)
_rw_unlock = _fn(_py, "gr_rwmutex_unlock", c_int, c_void_p)
_rw_free = _fn(_py, "gr_rwmutex_free", c_int, c_void_p)

_cond_new = _fn(_py, "gr_cond_new", c_void_p, c_void_p)
_cond_wait = _fn(_py, "gr_py_cond_wait", c_int, c_void_p, c_int64)
_cond_signal = _fn(_py, "gr_cond_signal", c_int, c_void_p)
_cond_broadcast = _fn(_py, "gr_cond_broadcast", c_int, c_void_p)
_cond_free = _fn(_py, "gr_cond_free", c_int, c_void_p)

_sem_new = _fn(_py, "gr_sem_new", c_void_p, c_int64)
_sem_acquire = _fn(_py, "gr_py_sem_acquire", c_int, c_void_p, c_int64, c_int64)
_sem_try = _fn(_py, "gr_sem_try_acquire", c_int, c_void_p, c_int64)
_sem_release = _fn(_py, "gr_sem_release", c_int, c_void_p, c_int64)
_sem_free = _fn(_py, "gr_sem_free", c_int, c_void_p)

_NS = 1_000_000_000


def _ns(timeout: Optional[float]) -> int:
    if timeout is None:
        return -1
    return max(0, int(timeout * _NS))


def _raise(rc: int, what: str) -> None:
    """Turns a negative errno value into the package's exception."""
    from . import _error

    raise _error(rc, what)


class RWMutex:
    """Go's ``sync.RWMutex``: many readers at once, or one writer. A waiting writer
    holds back new readers, so readers cannot starve it. ``with m:`` takes the write
    lock; ``with m.reader:`` a read lock. Not recursive; any goroutine or thread may
    unlock."""

    __slots__ = ("_m", "reader")

    def __init__(self) -> None:
        self._m = None
        m = _rw_new()
        if not m:
            raise MemoryError("cannot allocate a RWMutex")
        self._m = m
        self.reader = _ReadLocker(self)

    def rlock(self) -> None:
        rc = _rw_lock(self._m, 0)
        if rc:
            _raise(rc, "RWMutex.rlock")

    def runlock(self) -> None:
        if _rw_runlock(self._m):
            raise RuntimeError("runlock of a RWMutex that is not read-locked")

    def lock(self) -> None:
        rc = _rw_lock(self._m, 1)
        if rc:
            _raise(rc, "RWMutex.lock")

    def unlock(self) -> None:
        if _rw_unlock(self._m):
            raise RuntimeError("unlock of a RWMutex that is not write-locked")

    def try_rlock(self) -> bool:
        return _rw_tryrlock(self._m) == 0

    def try_lock(self) -> bool:
        return _rw_trylock(self._m) == 0

    def __enter__(self) -> "RWMutex":
        self.lock()
        return self

    def __exit__(self, *exc: object) -> None:
        self.unlock()

    def __del__(self) -> None:
        m = self._m
        if m:
            self._m = None
            _rw_free(m)  # -EBUSY (held or waited on): left allocated


class _ReadLocker:
    """``RWMutex.reader``: the read side as a context manager (Go's ``RLocker``)."""

    __slots__ = ("_rw",)

    def __init__(self, rw: RWMutex) -> None:
        self._rw = rw

    def __enter__(self) -> RWMutex:
        self._rw.rlock()
        return self._rw

    def __exit__(self, *exc: object) -> None:
        self._rw.runlock()


class Cond:
    """Go's ``sync.Cond`` on a ``gr.Mutex``: ``wait()`` (with the mutex held) unlocks
    it, waits for ``signal()`` or ``broadcast()``, and locks it again. Check the
    condition in a loop around ``wait``."""

    __slots__ = ("_c", "mutex")

    def __init__(self, mutex) -> None:
        self._c = None
        self.mutex = mutex  # kept alive as long as the cond
        c = _cond_new(mutex._m)
        if not c:
            raise MemoryError("cannot allocate a Cond")
        self._c = c

    def wait(self, timeout: Optional[float] = None) -> bool:
        """True when signalled, False after ``timeout`` seconds; the mutex is held
        again either way. RuntimeError if the mutex is not locked."""
        rc = _cond_wait(self._c, _ns(timeout))
        if rc == 0:
            return True
        if rc == -_errno.ETIMEDOUT:
            _check_context(rc)
            return False
        if rc == -_errno.EPERM and self.mutex.try_lock():
            self.mutex.unlock()
            raise RuntimeError("Cond.wait() without the mutex locked")
        _raise(rc, "Cond.wait")
        return False  # not reached

    def signal(self) -> None:
        """Wakes the goroutine that has waited longest, if any."""
        _cond_signal(self._c)

    def broadcast(self) -> None:
        """Wakes every waiting goroutine."""
        _cond_broadcast(self._c)

    def __del__(self) -> None:
        c = self._c
        if c:
            self._c = None
            _cond_free(c)  # -EBUSY (someone waits): left allocated


class Semaphore:
    """golang.org/x/sync's weighted semaphore of ``n`` tokens: ``acquire(k)`` waits
    for ``k`` tokens in FIFO order (a big request is not passed by later small ones),
    ``release(k)`` gives them back. ``with sem:`` takes one token."""

    __slots__ = ("_s", "size")

    def __init__(self, n: int) -> None:
        self._s = None
        if n < 0:
            raise ValueError("a semaphore's size must be >= 0")
        s = _sem_new(n)
        if not s:
            raise MemoryError("cannot allocate a Semaphore")
        self._s = s
        self.size = n

    def acquire(self, n: int = 1, timeout: Optional[float] = None) -> bool:
        """Takes ``n`` tokens: True, or False after ``timeout`` seconds (nothing
        taken). ValueError when ``n`` is negative or more than the size."""
        rc = _sem_acquire(self._s, n, _ns(timeout))
        if rc == 0:
            return True
        if rc == -_errno.ETIMEDOUT:
            _check_context(rc)
            return False
        if rc == -_errno.EINVAL:
            raise ValueError("cannot acquire %d of a semaphore of %d" % (n, self.size))
        _raise(rc, "Semaphore.acquire")
        return False  # not reached

    def try_acquire(self, n: int = 1) -> bool:
        """Takes ``n`` tokens if they are free and nobody waits."""
        rc = _sem_try(self._s, n)
        if rc < 0:
            raise ValueError("cannot acquire %d tokens" % n)
        return rc == 1

    def release(self, n: int = 1) -> None:
        """Gives back ``n`` tokens. ValueError when more than are taken."""
        if _sem_release(self._s, n):
            raise ValueError("semaphore released more than held")

    def __enter__(self) -> "Semaphore":
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __del__(self) -> None:
        s = self._s
        if s:
            self._s = None
            _sem_free(s)  # -EBUSY (someone waits): left allocated
