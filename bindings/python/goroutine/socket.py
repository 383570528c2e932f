"""Sockets that park the calling goroutine instead of blocking its thread.

``gr.socket.socket`` is a ``socket.socket`` whose ``accept``, ``connect``, ``recv``,
``recv_into``, ``recvfrom``, ``send``, ``sendall`` and ``sendto`` wait in the runtime's
netpoller (epoll): other goroutines run meanwhile. Timeouts (``settimeout``) work as
with the standard library: ``TimeoutError`` (``socket.timeout``) after the time has
passed, and a timeout of 0 makes the socket non-blocking. Name lookups
(``getaddrinfo``, ``gethostbyname``, ``gethostbyname_ex``, ``gethostbyaddr``,
``getnameinfo``) run on a helper thread (``gr.blocking``) unless the host is a
numeric address. The other names of the standard ``socket`` module (constants,
``gethostname``...) are re-exported here.

Outside goroutines (a plain thread) the same calls simply block that thread.

The runtime keeps a socket's descriptor in its epoll set from its first wait until
it is closed (``gr_io_adopt``), so a wait costs no ``epoll_ctl``, and a ``recv`` after
one that got less than it asked on a TCP socket waits for the next data before asking
the kernel: a request and its reply cost one ``recv`` and one ``send``. That needs
every close to go through the runtime: ``close()`` does, a socket dropped unclosed is
closed by this class's finalizer (with the usual ``ResourceWarning``), and
``detach()`` hands the descriptor back to ordinary use. Close a socket's descriptor
with ``os.close`` only after ``detach()``, as with the standard class.
"""

from __future__ import annotations

import errno as _errno
import os as _os
import socket as _std
import time as _time
import warnings as _warnings
from socket import (  # noqa: F401  (re-exported for convenience and type checkers)
    AF_INET,
    AF_INET6,
    AF_UNIX,
    IPPROTO_TCP,
    SO_REUSEADDR,
    SOCK_DGRAM,
    SOCK_STREAM,
    SOL_SOCKET,
    TCP_NODELAY,
)
from typing import Any, Optional, Tuple

from . import DeadlineExceeded, _lib

_ss = _std.socket  # the C-level socket type the standard class derives from
_recv = _lib.builtin["sock_recv"]
_recv_into = _lib.builtin["sock_recv_into"]
_send = _lib.builtin["sock_send"]
_sendall = _lib.builtin["sock_sendall"]
_block_io = _lib.builtin["block_io"]
_wait_edge = _lib.builtin["wait_edge"]
_close_fd = _lib.builtin["close_fd"]
_adopt_fd = _lib.builtin["adopt_fd"]
_disown_fd = _lib.builtin["disown_fd"]
_READ = _lib.READ
_WRITE = _lib.WRITE
_NS = 1_000_000_000
_GLOBAL_DEFAULT_TIMEOUT = _std._GLOBAL_DEFAULT_TIMEOUT  # type: ignore[attr-defined]

_DNS = ("getaddrinfo", "gethostbyname", "gethostbyname_ex", "gethostbyaddr", "getnameinfo")
_OVERRIDDEN = {"socket", "SocketType", "create_connection", "socketpair", "fromfd", *_DNS}
globals().update({n: getattr(_std, n) for n in _std.__all__ if n not in _OVERRIDDEN and n not in globals()})
# The standard module's own, taken now: goroutine.monkey may replace them there later.
_real = {n: getattr(_std, n) for n in _OVERRIDDEN}

__all__ = sorted(set(_std.__all__) | {"socket", "create_connection", "socketpair", *_DNS})


def _raise_rc(rc: int) -> None:
    from . import _sock_error

    raise _sock_error(rc)


def _wait(fd: int, events: int, deadline: Optional[float], wait: Any = _wait_edge) -> None:
    """After a call on ``fd`` said EAGAIN: parks until its next readiness edge in
    ``events`` (the caller tries again, and waits again if it still says EAGAIN), or
    raises TimeoutError at the deadline. ``wait=_block_io``: until poll(2) says it is
    ready (where an edge alone would not do)."""
    if deadline is None:
        ns = -1
    else:
        left = deadline - _time.monotonic()
        if left <= 0:
            raise TimeoutError("timed out")
        ns = max(1, int(left * _NS))
    rc = wait(fd, events, ns)
    if rc > 0:
        return
    _raise_rc(rc)  # the context's error, or TimeoutError("timed out"), or...


class socket(_std.socket):
    """A ``socket.socket`` for goroutines (see the module docs)."""

    __slots__ = ("_gr_timeout",)

    def __init__(self, family: int = -1, type: int = -1, proto: int = -1, fileno: Optional[int] = None) -> None:
        super().__init__(family, type, proto, fileno)
        self._gr_timeout: Optional[float] = _std.getdefaulttimeout()
        _ss.setblocking(self, False)
        # Every close of this fd goes through _real_close or __del__ (close_fd), so
        # the netpoller keeps it registered between waits: no epoll_ctl per wait.
        _adopt_fd(_ss.fileno(self))

    # -- timeouts: kept here; the descriptor itself is always non-blocking

    def settimeout(self, value: Optional[float]) -> None:
        if value is not None:
            value = float(value)
            if value < 0:
                raise ValueError("Timeout value out of range")
        self._gr_timeout = value

    def gettimeout(self) -> Optional[float]:
        return self._gr_timeout

    def setblocking(self, flag: bool) -> None:
        self._gr_timeout = None if flag else 0.0

    def getblocking(self) -> bool:
        return self._gr_timeout != 0.0

    def _io(self, op: Any, events: int, *args: Any) -> Any:
        t = self._gr_timeout
        if t == 0.0:
            return op(self, *args)
        deadline = None if t is None else _time.monotonic() + t
        while True:
            try:
                return op(self, *args)
            except BlockingIOError:
                pass
            _wait(self.fileno(), events, deadline)

    # -- receiving and sending: runtime builtins (see src/cpython/io.rs), which
    # take the timeout as it is kept here

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        return _recv(self.fileno(), bufsize, flags, self._gr_timeout)

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        return _recv_into(self.fileno(), buffer, nbytes, flags, self._gr_timeout)

    def recvfrom(self, bufsize: int, flags: int = 0) -> Tuple[bytes, Any]:
        return self._io(_ss.recvfrom, _READ, bufsize, flags)

    def recvfrom_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> Tuple[int, Any]:
        return self._io(_ss.recvfrom_into, _READ, buffer, nbytes, flags)

    def send(self, data: Any, flags: int = 0) -> int:
        return _send(self.fileno(), data, flags, self._gr_timeout)

    def sendall(self, data: Any, flags: int = 0) -> None:
        return _sendall(self.fileno(), data, flags, self._gr_timeout)

    def sendto(self, data: Any, *args: Any) -> int:
        return self._io(_ss.sendto, _WRITE, data, *args)

    # -- connections

    def accept(self) -> Tuple["socket", Any]:
        fd, addr = self._io(_ss._accept, _READ)  # type: ignore[attr-defined]
        # This module's class, as the standard one makes a socket.socket (a subclass,
        # such as ssl.SSLSocket, wraps it itself).
        sock = socket(self.family, self.type, self.proto, fileno=fd)
        return sock, addr

    def connect_ex(self, address: Any) -> int:
        err = _ss.connect_ex(self, address)
        t = self._gr_timeout
        if err in (0, _errno.EISCONN) or t == 0.0:
            return 0 if err == _errno.EISCONN else err
        if err not in (_errno.EINPROGRESS, _errno.EAGAIN, _errno.EALREADY, _errno.EINTR):
            return err
        deadline = None if t is None else _time.monotonic() + t
        try:
            # poll(2)'s word, not an edge's: SO_ERROR is read right after
            _wait(self.fileno(), _WRITE, deadline, _block_io)
        except DeadlineExceeded:
            raise  # the goroutine's context, not the socket's timeout
        except TimeoutError:
            return _errno.ETIMEDOUT
        return self.getsockopt(_std.SOL_SOCKET, _std.SO_ERROR)

    def connect(self, address: Any) -> None:
        if self._gr_timeout == 0.0:
            return _ss.connect(self, address)
        err = self.connect_ex(address)
        if err == _errno.ETIMEDOUT and self._gr_timeout is not None:
            raise TimeoutError("timed out")
        if err:
            raise OSError(err, _os.strerror(err))
        return None

    # -- closing: wake goroutines waiting on the fd, drop its netpoller registration.
    # The fd is adopted (__init__): each way it can leave this object goes through
    # the runtime, or a later file under its number could wait unwatched.

    def _real_close(self, _ss: Any = _std.socket) -> None:
        if _ss.fileno(self) >= 0:
            fd = _ss.detach(self)
            _close_fd(fd)
        else:
            _ss.close(self)

    def detach(self) -> int:
        fd = _ss.fileno(self)
        if fd >= 0:
            _disown_fd(fd)  # its next owner may close it with close(2)
        return super().detach()

    def __del__(self, _ss: Any = _std.socket, _close_fd: Any = _close_fd, _warn: Any = _warnings.warn) -> None:
        # Replaces the C type's finalizer, which would close(2) the fd: a socket
        # dropped unclosed is closed here, after the standard ResourceWarning.
        if _ss.fileno(self) >= 0:
            try:
                _warn(f"unclosed {self!r}", ResourceWarning, stacklevel=2, source=self)
            finally:
                _close_fd(_ss.detach(self))

    def __repr__(self) -> str:
        return super().__repr__().replace("<socket.socket", "<goroutine.socket.socket", 1)


SocketType = socket


def _lookup(local: bool, fn: Any, *args: Any) -> Any:
    """``fn(*args)``, a name lookup, through ``gr.blocking`` (it may block on DNS)
    unless it needs no name service (``local``)."""
    if local:
        return fn(*args)
    from . import blocking

    return blocking(fn, *args)


def getaddrinfo(host: Any, port: Any, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0) -> list:
    """``socket.getaddrinfo`` (see the module docs)."""
    return _lookup(host is None or _is_numeric(host), _real["getaddrinfo"], host, port, family, type, proto, flags)


def gethostbyname(hostname: str) -> str:
    """``socket.gethostbyname`` (see the module docs)."""
    return _lookup(_is_numeric(hostname), _real["gethostbyname"], hostname)


def gethostbyname_ex(hostname: str) -> Tuple[str, list, list]:
    """``socket.gethostbyname_ex`` (see the module docs)."""
    return _lookup(False, _real["gethostbyname_ex"], hostname)


def gethostbyaddr(ip_address: str) -> Tuple[str, list, list]:
    """``socket.gethostbyaddr`` (a reverse lookup: always on a helper thread)."""
    return _lookup(False, _real["gethostbyaddr"], ip_address)


def getnameinfo(sockaddr: Tuple[Any, ...], flags: int) -> Tuple[str, str]:
    """``socket.getnameinfo`` (on a helper thread unless both parts are asked numeric)."""
    numeric = _std.NI_NUMERICHOST | _std.NI_NUMERICSERV
    return _lookup(flags & numeric == numeric, _real["getnameinfo"], sockaddr, flags)


def _is_numeric(host: Any) -> bool:
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if not isinstance(host, str):
        return False  # the real call reports the type
    for fam in (_std.AF_INET, _std.AF_INET6):
        try:
            _std.inet_pton(fam, host)
            return True
        except (OSError, ValueError):
            pass
    return False


def create_connection(
    address: Tuple[Any, Any],
    timeout: Any = _GLOBAL_DEFAULT_TIMEOUT,
    source_address: Optional[Tuple[Any, int]] = None,
) -> socket:
    """Like ``socket.create_connection``, returning a goroutine socket."""
    host, port = address
    err: Optional[BaseException] = None
    for af, socktype, proto, _canon, sa in getaddrinfo(host, port, 0, _std.SOCK_STREAM):
        sock = None
        try:
            sock = socket(af, socktype, proto)
            if timeout is not _GLOBAL_DEFAULT_TIMEOUT:
                sock.settimeout(timeout)
            if source_address:
                sock.bind(source_address)
            sock.connect(sa)
            return sock
        except OSError as e:
            err = e
            if sock is not None:
                sock.close()
    if err is not None:
        raise err
    raise OSError("getaddrinfo returns an empty list")


def socketpair(family: int = _std.AF_UNIX, type: int = _std.SOCK_STREAM, proto: int = 0) -> Tuple[socket, socket]:
    """Like ``socket.socketpair``, returning goroutine sockets."""
    a, b = _real["socketpair"](family, type, proto)
    return (socket(a.family, a.type, a.proto, a.detach()), socket(b.family, b.type, b.proto, b.detach()))


def fromfd(fd: int, family: int, type: int, proto: int = 0) -> socket:
    """Like ``socket.fromfd`` (duplicates ``fd``), returning a goroutine socket."""
    return socket(family, type, proto, _os.dup(fd))
