"""Go-style goroutines, channels and sockets for Python, on libgoroutine.

    import goroutine as gr

    def worker(ch, n):
        for i in range(n):
            ch.send(i)
        ch.close()

    def main():
        ch = gr.Chan()
        gr.go(worker, ch, 10)
        return sum(ch)

    print(gr.run(main))   # 45

Every goroutine started by ``gr.run`` (and by ``gr.go`` inside it) runs on the OS thread
that called ``gr.run``, with its own C stack and its own Python thread state
(``threading.local`` and ``contextvars`` are per goroutine). A goroutine runs until it
parks (``yield_``, ``sleep``, a channel operation, a socket wait, a join...), then the
next one runs; C goroutines of the same process keep running M:N on the runtime's
worker threads.
"""

from __future__ import annotations

# Imported first, on purpose: the first import of threading inside a goroutine's
# thread state would make that state the "main thread" of threading._shutdown (3.12).
import threading

import _thread
import errno as _errno
import os
import queue as _queue
import sys
from typing import Any, Callable, Generic, Iterator, Optional, Sequence, Tuple, TypeVar, Union

from . import _lib

__all__ = [
    "run", "go", "Goroutine", "yield_", "sleep", "self_id", "Chan", "ChanClosed", "select",
    "WaitGroup", "Mutex", "wait_readable", "wait_writable", "blocking", "Deadlock",
    "ContextError", "socket",
    "Timer", "Ticker", "RWMutex", "Cond", "Semaphore",
    "Group", "cancel_scope", "timeout", "CancelScope", "Cancelled", "DeadlineExceeded",
]

__version__ = _lib.version

T = TypeVar("T")

#: How long ``run`` lets goroutines run before it returns to the calling thread's own
#: state (where CPython runs signal handlers), in nanoseconds.
SLICE_NS = 50_000_000
#: The same while daemon goroutines are alive: ``run`` looks between slices whether
#: only they are left, so this bounds how long it lingers after the last other one.
DAEMON_SLICE_NS = 10_000_000


class Deadlock(RuntimeError):
    """Every goroutine is blocked for ever (raised by ``run``): each waits on
    something only another goroutine could end, and no other thread of the process
    is running (one that is might still wake a goroutine, so while it lives, no
    deadlock is reported)."""

    def __init__(self, *args: object) -> None:
        super().__init__(*(args or ("all goroutines are asleep - deadlock!",)))


class ChanClosed(Exception):
    """A send on a closed channel, a receive from a closed and drained one, or a
    second close. Raised by ``select`` with ``index`` set to the case that fired."""

    index: Optional[int] = None

    def __init__(self, *args: object) -> None:
        super().__init__(*(args or ("channel closed",)))


class ContextError(RuntimeError):
    """A goroutine operation that may park was called where parking would corrupt the
    interpreter: inside a ctypes callback on CPython 3.11 (the callback runs on the
    OS thread's own thread state, not the goroutine's), or from Python code called by
    a C (M:N) goroutine."""

    def __init__(self, *args: object) -> None:
        super().__init__(*(args or (
            "cannot park here: this Python code runs inside a C callback (CPython 3.11 runs "
            "ctypes callbacks on the thread's own state, not the goroutine's) or on a C "
            "goroutine; park only from the goroutine's own Python code",)))


class Cancelled(BaseException):
    """Raised by a parking call (``sleep``, a channel operation, ``join``, a socket or
    fd wait, a patched ``time.sleep``, socket or lock...) of a goroutine whose cancel
    scope or group is cancelled: ``CancelScope.cancel()``, ``Group.cancel()``, or a
    failed member of its ``Group``. A BaseException, as trio's ``Cancelled`` and
    asyncio's ``CancelledError``, so that ``except Exception`` does not swallow it;
    the scope that was cancelled does, when it is left."""

    def __init__(self, *args: object) -> None:
        super().__init__(*(args or ("cancelled",)))


class DeadlineExceeded(TimeoutError):
    """Raised by a parking call inside ``with gr.timeout(seconds):`` once its deadline
    (or an enclosing one) has passed: Go's ``context.DeadlineExceeded``, a
    ``TimeoutError`` (so ``socket.timeout`` too)."""

    def __init__(self, *args: object) -> None:
        super().__init__(*(args or (_errno.ETIMEDOUT, "deadline exceeded")))


def _context_error(rc: int) -> Optional[BaseException]:
    """The exception for ``rc`` when it is the calling goroutine's context error
    (-ECANCELED: ``Cancelled``, -ETIMEDOUT: ``DeadlineExceeded``), else None (a
    timeout of the call itself, an fd closed while waiting)."""
    if rc != -_errno.ECANCELED and rc != -_errno.ETIMEDOUT:
        return None
    c = _lib.ctx_current()
    if not c or _lib.ctx_err(c) != rc:
        return None
    return Cancelled() if rc == -_errno.ECANCELED else DeadlineExceeded()


def _check_context(rc: int) -> None:
    """Raises the context's exception if ``rc`` is the calling goroutine's context
    error: for calls that take -ETIMEDOUT (or -ECANCELED) as an ordinary result."""
    e = _context_error(rc)
    if e is not None:
        raise e


# The originals, taken before goroutine.monkey can replace them: the package itself
# needs OS threads and OS thread ids.
_get_ident = _thread.get_ident
_start_new_thread = _thread.start_new_thread

_EMPTY = object()
_NS = 1_000_000_000


def _ns(seconds: Optional[float]) -> int:
    if seconds is None:
        return -1
    if seconds <= 0:
        return 0
    return max(1, int(seconds * _NS))


def _error(rc: int, what: str = "") -> BaseException:
    e = _context_error(rc)
    if e is not None:
        return e
    if rc == -_errno.EPERM:
        return ContextError()
    if rc == -_errno.EPIPE:
        return ChanClosed()
    if rc == -_errno.ETIMEDOUT:
        return TimeoutError(_errno.ETIMEDOUT, "timed out")
    if rc == -_errno.EDEADLK:
        return Deadlock(what or "deadlock")
    if rc == -_errno.ENOMEM:
        return MemoryError(what or "out of memory")
    if rc == -_errno.ECANCELED:
        return OSError(_errno.EBADF, "file descriptor closed while waiting")
    return OSError(-rc, "%s%s" % (what + ": " if what else "", _lib.strerror(rc)))


def _sock_error(rc: int) -> BaseException:
    """The exception of a failed socket operation, as the standard socket raises it."""
    e = _context_error(rc)
    if e is not None:
        return e
    if rc == -_errno.EPERM:
        return ContextError()
    if rc == -_errno.ETIMEDOUT:
        return TimeoutError("timed out")
    if rc == -_errno.ECANCELED:
        return OSError(_errno.EBADF, "file descriptor closed while waiting")
    if rc == -_errno.ENOMEM:
        return MemoryError()
    return OSError(-rc, os.strerror(-rc))


_NEGATIVE_TIMEOUT = (
    "timeout value must be positive" if sys.version_info < (3, 13) else "timeout value must be a non-negative number"
)


def _exception(rc: int, kind: int) -> BaseException:
    """The exception a builtin of the runtime raises for ``rc``, by ``kind`` (see
    RAISE_* in src/cpython/mod.rs): 0 general, 1 socket, 2 join, 3 a lock's timeout."""
    if kind == 1:
        return _sock_error(rc)
    if kind == 2:
        if rc == -_errno.EDEADLK:
            return RuntimeError("a goroutine cannot join itself")
        return _error(rc, "join")
    if kind == 3:
        if rc == -_errno.ENOTSUP:
            return ValueError("can't specify a timeout for a non-blocking call")
        if rc == -_errno.ERANGE:
            return OverflowError("timeout value is too large")
        return ValueError(_NEGATIVE_TIMEOUT)
    return _error(rc)


# ---------------------------------------------------------------------------------
# homes, run, go


class _Home:
    __slots__ = ("ptr", "running")

    def __init__(self) -> None:
        ptr = _lib.home_new()
        if not ptr:
            raise MemoryError("cannot create a goroutine home")
        self.ptr = ptr
        self.running = False


# The home of each thread inside run(), by thread ident (go() looks it up there: a
# goroutine has its own thread state, so a threading.local would not see it).
_homes: dict = {}
_homes_lock = threading.Lock()
# A thread's home is reused by its later run() calls: kept in the runner's own
# thread-local storage, so it dies with the thread (its thread-state cache is bound to
# that OS thread, and thread idents are reused).
_runner = threading.local()


def _report(e: BaseException, where: object) -> None:
    """An exception nobody will join: through sys.unraisablehook."""
    try:
        _lib.write_unraisable(type(e), e, where)
    except Exception:  # pragma: no cover - the hook itself failed
        pass


def _spawn(home: _Home, fn: Callable[..., Any], args: tuple, kw: dict, name: Optional[bytes] = None, flags: int = 0) -> "Goroutine":
    if not callable(fn):
        raise TypeError(f"{fn!r} is not callable")
    return _lib.spawn(home.ptr, fn, args, kw, name, flags, None)


def _go_outside(fn: Callable[..., Any], *args: Any, **kw: Any) -> "Goroutine":
    """``go`` where the caller is not a goroutine of a home (the runtime's ``go``
    calls it): the home of the thread inside ``run``, or an error."""
    return _spawn(_running_home("gr.go()"), fn, args, kw)


_lib.init(ChanClosed, ContextError, _exception, _go_outside)

#: A running (or finished) goroutine, returned by ``go``: ``join(timeout=None)``
#: returns its value or re-raises its exception (TimeoutError after ``timeout``
#: seconds; the goroutine goes on), ``done()``, ``id``. A type of the runtime.
Goroutine = _lib.builtin["Goroutine"]

#: ``go(fn, *args, **kw)``: starts ``fn(*args, **kw)`` as a goroutine on this thread's
#: ``run`` and returns its handle. The function and its arguments stay referenced
#: until it ends. Its body runs in a copy of the caller's ``contextvars`` context.
#: A builtin of the runtime (one call per spawn).
go = _lib.builtin["go"]


def _running_home(what: str) -> _Home:
    home = _homes.get(_get_ident())
    if home is None or not home.running:
        raise RuntimeError(what + " must be called inside gr.run() (from a goroutine or its thread)")
    return home


def _go_daemon(fn: Callable[..., Any], *args: Any) -> "Goroutine":
    """Starts a goroutine that run() does not wait for: once every other goroutine
    of the run has ended, run() returns and leaves it behind (as the interpreter
    leaves daemon threads at exit). For threading.Thread(daemon=True) in goroutines."""
    return _spawn(_running_home("a daemon goroutine"), fn, args, {}, None, _lib.SPAWN_DAEMON)


def run(main: Callable[..., T], *args: Any, **kw: Any) -> T:
    """Runs ``main(*args, **kw)`` as a goroutine on the calling thread, with every
    goroutine it starts, and returns its value (or re-raises its exception) once all
    of them have finished (but for the goroutines of daemon threads, left behind:
    see goroutine.monkey). Raises ``Deadlock`` when all are blocked for ever.
    Ctrl-C raises KeyboardInterrupt here (goroutines still alive are abandoned)."""
    ident = _get_ident()
    with _homes_lock:
        if ident in _homes:
            raise RuntimeError("gr.run() is already running on this thread (called from a goroutine?)")
        home = getattr(_runner, "home", None)
        if home is None:
            home = _runner.home = _Home()
        _homes[ident] = home
        home.running = True
    finished = False
    ptr = home.ptr
    try:
        g = _spawn(home, main, args, kw, b"main", _lib.SPAWN_MAIN)
        while True:
            daemons = _lib.home_daemons(ptr)
            rc = _lib.run(ptr, SLICE_NS if not daemons else DAEMON_SLICE_NS)
            fatal = _lib.home_take_fatal(ptr)
            if fatal is not None:
                raise fatal
            if rc == 0:
                finished = True
                break
            daemons = _lib.home_daemons(ptr)
            if daemons and _lib.home_alive(ptr) <= daemons:
                break  # only daemon goroutines are left: they are left behind
            if rc == 1:
                continue  # signal handlers run here, in this thread's own state
            if rc == -_errno.EDEADLK:
                raise Deadlock()
            raise _error(rc, "gr.run")
        return g.join()
    finally:
        home.running = False
        _lib.home_take_fatal(ptr)  # dropped: raised above, or the run ended otherwise
        with _homes_lock:
            del _homes[ident]
        if not finished and _lib.home_alive(ptr):
            # Goroutines are left behind (parked for ever, or abandoned by Ctrl-C):
            # the home keeps them; the next run() on this thread gets a new one.
            _runner.home = None


# ---------------------------------------------------------------------------------
# scheduling


#: ``yield_()``: lets the other runnable goroutines run; returns when this one's turn
#: comes. A builtin of the runtime.
yield_ = _lib.builtin["yield_"]

#: ``self_id()``: the calling goroutine's id, or 0 outside goroutines. A builtin of
#: the runtime.
self_id = _lib.builtin["self_id"]


def sleep(seconds: float) -> None:
    """Parks this goroutine for at least ``seconds`` (<= 0: just yields)."""
    rc = _lib.sleep(_ns(seconds) if seconds > 0 else 0)
    if rc:
        raise _error(rc)


# ---------------------------------------------------------------------------------
# channels and select


class _Case(tuple):
    """A case of ``select``: the tuple ``(handle, op, value, chan)`` that the runtime's
    select builtin reads as it is (``chan`` keeps the channel, and so its handle,
    alive)."""

    __slots__ = ()

    def __new__(cls, chan: Any, op: int, value: Any) -> "_Case":
        return tuple.__new__(cls, (chan._c, op, value, chan))

    @property
    def chan(self) -> Any:
        return self[3]

    @property
    def op(self) -> int:
        return self[1]

    @property
    def value(self) -> Any:
        return self[2]

    def __repr__(self) -> str:
        return f"<{'send' if self.op == _lib.SEND else 'recv'} case on {self.chan!r}>"


class Chan(Generic[T]):
    """A channel of Python objects (Go's ``chan``). ``capacity`` 0: unbuffered (a send
    waits for a receiver)."""

    __slots__ = ("_c", "__weakref__")

    def __init__(self, capacity: int = 0) -> None:
        self._c = None
        if capacity < 0:
            raise ValueError("capacity must be >= 0")
        c = _lib.chan_new(8, capacity)
        if not c:
            raise MemoryError("cannot allocate a channel")
        self._c = c

    def send(self, value: T) -> None:
        """Sends ``value``, waiting for room or a receiver. ChanClosed if closed."""
        rc = _lib.chan_send(self._c, value, 1)
        if rc:
            raise _error(rc)

    def recv(self) -> T:
        """Receives a value, waiting for one. ChanClosed once closed and drained."""
        return _lib.chan_recv(self._c, 1, None)

    def try_send(self, value: T) -> bool:
        """Sends without waiting: False when it would wait. ChanClosed if closed."""
        rc = _lib.chan_send(self._c, value, 0)
        if rc == 0:
            return True
        if rc == -_errno.EAGAIN:
            return False
        raise _error(rc)

    def try_recv(self) -> Tuple[Optional[T], bool]:
        """Receives without waiting: ``(value, True)``, or ``(None, False)`` when
        nothing is ready. ChanClosed once closed and drained."""
        v = _lib.chan_recv(self._c, 0, _EMPTY)
        if v is _EMPTY:
            return None, False
        return v, True

    def close(self) -> None:
        """Closes the channel: receivers get the buffered values, then ChanClosed.
        ChanClosed if it was already closed."""
        rc = _lib.chan_close(self._c)
        if rc:
            raise ChanClosed("close of closed channel") if rc == -_errno.EPIPE else _error(rc)

    def __iter__(self) -> Iterator[T]:
        """Receives until the channel is closed and drained."""
        recv = _lib.chan_recv
        c = self._c
        while True:
            try:
                yield recv(c, 1, None)
            except ChanClosed:
                return

    def __len__(self) -> int:
        """Values buffered now."""
        return _lib.chan_len(self._c)

    @property
    def cap(self) -> int:
        return _lib.chan_cap(self._c)

    def recv_case(self) -> _Case:
        """A receive case for ``select``."""
        return _Case(self, _lib.RECV, None)

    def send_case(self, value: T) -> _Case:
        """A case for ``select`` that sends ``value``."""
        return _Case(self, _lib.SEND, value)

    def __repr__(self) -> str:
        return f"<Chan cap={self.cap} len={len(self)}>"

    def __del__(self) -> None:
        c = self._c
        if c:
            self._c = None
            _lib.chan_free(c)  # -EBUSY (someone still waits): left allocated


def select(cases: Sequence[_Case], timeout: Optional[float] = None) -> Optional[Tuple[int, Any]]:
    """Waits until one of the cases can proceed, performs it and returns ``(index,
    value)`` (value: what a receive got; None for a send). Several ready: one at
    random. ``timeout`` seconds (0: just try): None when nothing was ready in time.
    A case that fires on a closed channel raises ChanClosed with ``index`` set."""
    cases = tuple(cases)
    for c in cases:
        if c.__class__ is not _Case:  # the builtin trusts a case's channel handle
            raise TypeError("select cases come from recv_case() and send_case()")
    r = _lib.select(cases, _ns(timeout))
    if r.__class__ is tuple:  # (index, closed, value received or None)
        if r[1]:
            e = ChanClosed()
            e.index = r[0]
            raise e
        return r[0], r[2]
    rc = r
    n = len(cases)
    if rc == -_errno.ETIMEDOUT or rc == -_errno.EAGAIN:
        _check_context(rc)
        return None
    if rc == -_errno.EINVAL and n == 0:
        raise ValueError("select() with no cases needs a timeout")
    raise _error(rc, "select")


# ---------------------------------------------------------------------------------
# wait groups and mutexes


class WaitGroup:
    """Go's ``sync.WaitGroup``: ``add(n)``, ``done()``, ``wait()``."""

    __slots__ = ("_w",)

    def __init__(self) -> None:
        self._w = None
        w = _lib.wg_new()
        if not w:
            raise MemoryError("cannot allocate a wait group")
        self._w = w

    def add(self, delta: int = 1) -> None:
        if _lib.wg_add(self._w, delta):
            raise ValueError("WaitGroup counter would go negative")

    def done(self) -> None:
        if _lib.wg_add(self._w, -1):
            raise ValueError("WaitGroup.done() called more times than add()")

    def wait(self) -> None:
        rc = _lib.wg_wait(self._w)
        if rc:
            raise _error(rc)

    def __del__(self) -> None:
        w = self._w
        if w:
            self._w = None
            _lib.wg_free(w)


class Mutex:
    """A mutex that parks goroutines (Go's ``sync.Mutex``); a context manager. Not
    recursive; any goroutine or thread may unlock it."""

    __slots__ = ("_m",)

    def __init__(self) -> None:
        self._m = None
        m = _lib.mutex_new()
        if not m:
            raise MemoryError("cannot allocate a mutex")
        self._m = m

    def lock(self) -> None:
        rc = _lib.mutex_lock(self._m)
        if rc:
            raise _error(rc)

    def try_lock(self) -> bool:
        return _lib.mutex_trylock(self._m) == 0

    def unlock(self) -> None:
        if _lib.mutex_unlock(self._m):
            raise RuntimeError("unlock of unlocked Mutex")

    def __enter__(self) -> "Mutex":
        self.lock()
        return self

    def __exit__(self, *exc: object) -> None:
        self.unlock()

    def __del__(self) -> None:
        m = self._m
        if m:
            self._m = None
            _lib.mutex_free(m)


# ---------------------------------------------------------------------------------
# file descriptors and blocking calls

FileLike = Union[int, Any]


def _fileno(fd: FileLike) -> int:
    return fd if isinstance(fd, int) else fd.fileno()


def _wait_fd(fd: FileLike, events: int, timeout: Optional[float]) -> bool:
    rc = _lib.block_io(_fileno(fd), events, _ns(timeout))
    if rc > 0:
        return True
    if rc == -_errno.ETIMEDOUT:
        _check_context(rc)
        return False
    raise _error(rc)


def wait_readable(fd: FileLike, timeout: Optional[float] = None) -> bool:
    """Parks until ``fd`` (an int or an object with ``fileno()``) is readable (or has
    an error or hang-up): True; False after ``timeout`` seconds."""
    return _wait_fd(fd, _lib.READ, timeout)


def wait_writable(fd: FileLike, timeout: Optional[float] = None) -> bool:
    """Parks until ``fd`` is writable (or has an error): True; False after
    ``timeout`` seconds."""
    return _wait_fd(fd, _lib.WRITE, timeout)


class _Pool:
    """Helper threads for ``blocking``. They never call into the runtime: a finished
    job writes the waiting goroutine's eventfd, on which the goroutine waits in the
    netpoller (so a pending blocking call never looks like a deadlock)."""

    MAX_THREADS = 64

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.jobs: "_queue.SimpleQueue[list]" = _queue.SimpleQueue()
        self.idle = 0
        self.threads = 0

    def submit(self, job: list) -> None:
        with self.lock:
            if self.idle > 0:
                self.idle -= 1
                start = False
            else:
                start = self.threads < self.MAX_THREADS
                if start:
                    self.threads += 1
        if start:
            # Not threading.Thread.start(): it would block the whole home thread until
            # the new thread has started.
            _start_new_thread(self._worker, ())
        self.jobs.put(job)

    def _worker(self) -> None:
        while True:
            job = self.jobs.get()
            fn, args, kw, efd = job[0], job[1], job[2], job[5]
            try:
                job[3] = fn(*args, **kw)
                job[4] = None
            except BaseException as e:  # noqa: B036 - handed to the goroutine
                job[4] = e
            job[0] = job[1] = job[2] = None
            with self.lock:
                self.idle += 1
                if job[5] is not None:  # None: the goroutine was cancelled and left
                    os.eventfd_write(efd, 1)


_pool = _Pool()


def blocking(fn: Callable[..., T], *args: Any, **kw: Any) -> T:
    """Runs ``fn(*args, **kw)``, a call that blocks its thread (a blocking library
    call, ``time.sleep``, a DNS lookup...), on a helper thread; only the calling
    goroutine waits. Returns its value or re-raises its exception. Outside goroutines
    it simply calls ``fn``."""
    if self_id() == 0:
        return fn(*args, **kw)
    efd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
    # A poll that does not wait: fails (ContextError) where parking is refused,
    # before the job is handed out.
    rc = _lib.block_io(efd, _lib.READ, 0)
    if rc != -_errno.ETIMEDOUT:
        _lib.close_fd(efd)
        raise _error(rc)
    job = [fn, args, kw, None, None, efd]
    _pool.submit(job)
    while True:
        rc = _lib.block_io(efd, _lib.READ, -1)
        if rc < 0:
            # The goroutine's context is cancelled (nothing else closes efd): the
            # call goes on without it; its helper no longer writes to efd once
            # job[5] is cleared under the pool's lock.
            with _pool.lock:
                job[5] = None
            _lib.close_fd(efd)
            raise _error(rc)
        try:
            os.eventfd_read(efd)
            break
        except BlockingIOError:
            continue
    _lib.close_fd(efd)
    if job[4] is not None:
        e, job[4] = job[4], None
        raise e
    return job[3]


from . import socket  # noqa: E402  (gr.socket)
from ._sync import Cond, RWMutex, Semaphore  # noqa: E402
from ._timer import Ticker, Timer  # noqa: E402
from ._scope import CancelScope, Group, cancel_scope, timeout  # noqa: E402
