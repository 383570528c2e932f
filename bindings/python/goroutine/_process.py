"""File descriptors and child processes from goroutines: what goroutine.monkey puts
in ``os`` (``read``, ``write``, ``waitpid``, ``wait``; ``patch_os``) and in
``subprocess.Popen`` (``patch_subprocess``).

- ``os.read`` / ``os.write`` on a blocking fd park until the fd is ready, then make
  the real call, which then does not block: a read returns what is there; a write
  larger than ``PIPE_BUF`` to a pipe or socket goes ``PIPE_BUF`` bytes at a time,
  each once the fd is writable (a pipe with room takes that much without blocking),
  and returns when all is written, as a blocking write does. The fd's flags are left
  alone (they are shared with other processes). A non-blocking fd gets the real call
  at once (EAGAIN stays EAGAIN).
- A child's exit is waited for on a pidfd in the netpoller (``os.pidfd_open``), then
  the real ``waitpid`` reaps it without blocking. Waits for stops (``WUNTRACED``,
  ``WCONTINUED``) and for any child (pid <= 0) poll with ``WNOHANG`` and sleeps of
  1 to 50 ms instead (no fd tells those).
- ``Popen.wait`` / ``communicate`` (and so ``run``, ``call``, ``check_output``): the
  pipes go through a selector that parks (``_fdwait``), the exit through the pidfd.
  ``communicate()`` without a timeout would read a single pipe with a blocking
  ``read()``; in goroutines it takes the selector path instead.

Outside goroutines every call is the original one.
"""

from __future__ import annotations

import errno as _errno
import os as _os
import selectors as _selectors
import stat as _stat
import subprocess as _subprocess
from typing import Any, Optional, Tuple

from . import _check_context, _lib, _ns, self_id
from . import sleep as _gr_sleep
from ._fdwait import selector_select

_real_read = _os.read
_real_write = _os.write
_real_waitpid = _os.waitpid
_real_wait = _os.wait
_PIPE_BUF = 4096  # select.PIPE_BUF on Linux
_READ = _lib.READ
_WRITE = _lib.WRITE


def _park(fd: int, events: int, timeout_ns: int = -1) -> int:
    """block_io; errors (a bad fd, parking refused) are left to the real call, but
    for the goroutine's context error (gr.Cancelled, gr.DeadlineExceeded), raised."""
    rc = _lib.block_io(fd, events, timeout_ns)
    if rc < 0:
        _check_context(rc)
    return rc


def _blocking(fd: int) -> bool:
    try:
        return _os.get_blocking(fd)
    except OSError:
        return False  # a bad fd: the real call reports it


def read(fd: int, n: int) -> bytes:
    """``os.read`` (see the module docs)."""
    if self_id() != 0 and _blocking(fd):
        _park(fd, _READ)
    return _real_read(fd, n)


def write(fd: int, data: Any) -> int:
    """``os.write`` (see the module docs)."""
    if self_id() == 0 or not _blocking(fd):
        return _real_write(fd, data)
    with memoryview(data) as view:
        n = view.nbytes
        mode = _os.fstat(fd).st_mode if n > _PIPE_BUF else 0
        if not (_stat.S_ISFIFO(mode) or _stat.S_ISSOCK(mode)):
            _park(fd, _WRITE)
            return _real_write(fd, data)
        with view.cast("B") as b:
            done = 0
            while done < n:
                _park(fd, _WRITE)
                done += _real_write(fd, b[done : done + _PIPE_BUF])
            return done


# ---------------------------------------------------------------------------------
# child processes


def wait_exit(pid: int, timeout: Optional[float]) -> Optional[bool]:
    """Parks until process ``pid`` has exited: True (or when it is gone already),
    False after ``timeout`` seconds, None when no pidfd can be had (nothing waited)."""
    try:
        pidfd = _os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    except (OSError, AttributeError):
        return None
    try:
        rc = _park(pidfd, _READ, _ns(timeout))
    finally:
        _lib.close_fd(pidfd)  # drops its netpoller registration too
    if rc == -_errno.EPERM:
        return None
    return rc != -_errno.ETIMEDOUT


def _waitpid_polling(pid: int, options: int) -> Tuple[int, int]:
    delay = 0.001
    while True:
        r = _real_waitpid(pid, options | _os.WNOHANG)
        if r[0] != 0:
            return r
        _gr_sleep(delay)
        delay = min(delay * 2, 0.05)


def waitpid(pid: int, options: int) -> Tuple[int, int]:
    """``os.waitpid`` (see the module docs)."""
    if self_id() == 0 or options & _os.WNOHANG:
        return _real_waitpid(pid, options)
    if pid <= 0 or options & (_os.WUNTRACED | _os.WCONTINUED):
        return _waitpid_polling(pid, options)
    r = _real_waitpid(pid, options | _os.WNOHANG)  # not a child: ChildProcessError now
    if r[0] != 0:
        return r
    if wait_exit(pid, None) is None:
        return _waitpid_polling(pid, options)
    return _real_waitpid(pid, options)


def wait() -> Tuple[int, int]:
    """``os.wait`` (see the module docs)."""
    if self_id() == 0:
        return _real_wait()
    return _waitpid_polling(-1, 0)


# ---------------------------------------------------------------------------------
# subprocess.Popen (methods installed in place by patch_subprocess)

_popen_wait = _subprocess.Popen._wait  # type: ignore[attr-defined]
_popen_communicate = _subprocess.Popen.communicate
# communicate()'s "no timeout" in goroutines (see the module docs): far enough that
# it never fires, near enough for a nanosecond timeout.
_NO_TIMEOUT = 1e9


def popen_wait(self: Any, timeout: Optional[float]) -> Optional[int]:
    """``Popen._wait``: in goroutines, the exit through a pidfd."""
    if self.returncode is not None or self_id() == 0 or (timeout is not None and timeout <= 0):
        return _popen_wait(self, timeout)
    exited = wait_exit(self.pid, timeout)
    if exited is None:  # no pidfd: the stdlib's own polling (its time.sleep may park)
        return _popen_wait(self, _NO_TIMEOUT if timeout is None else timeout)
    if not exited:
        raise _subprocess.TimeoutExpired(self.args, timeout)
    return _popen_wait(self, None)  # reaps it: it has exited


def popen_communicate(self: Any, input: Any = None, timeout: Optional[float] = None) -> Tuple[Any, Any]:
    """``Popen.communicate``: in goroutines, a single pipe goes through the selector."""
    if (
        timeout is None
        and self_id() != 0
        and not self._communication_started
        and [self.stdin, self.stdout, self.stderr].count(None) == 2
    ):
        timeout = _NO_TIMEOUT
    return _popen_communicate(self, input, timeout)


class PopenSelector(_selectors.PollSelector):
    """``subprocess._PopenSelector`` (a PollSelector) whose ``select`` parks."""

    select = selector_select(getattr(_selectors.PollSelector.select, "__wrapped__", _selectors.PollSelector.select))
