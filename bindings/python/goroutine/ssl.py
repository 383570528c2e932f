"""TLS sockets that park the calling goroutine instead of blocking its thread.

``goroutine.ssl.SSLSocket`` is an ``ssl.SSLSocket`` over a ``goroutine.socket.socket``:
the descriptor stays non-blocking, so OpenSSL reports "want read" / "want write"
instead of waiting, and the handshake, ``read``, ``write`` (and so ``recv``,
``recv_into``, ``send``, ``sendall``, ``makefile``) and ``unwrap`` park in the
runtime's netpoller until the socket is ready, then go on. Its descriptor is adopted
(as a ``goroutine.socket.socket``'s is): registered with epoll from its first wait
until it is closed, so a want-read costs no ``epoll_ctl``. Timeouts
(``settimeout``) raise ``TimeoutError`` as with the standard library; with a
timeout of 0 the want-read / want-write errors reach the caller, as they do there.

``goroutine.monkey.patch_ssl()`` makes it the class every ``SSLContext.wrap_socket``
returns (``SSLContext.sslsocket_class``), so ``https://`` in urllib, http.client,
requests... parks. Instances come only from ``wrap_socket``, as with the standard
class. ``ssl.SSLSocket`` itself is left in place: ``isinstance`` checks against it
still hold (this class derives from it), and its ``_create`` names it.
"""

from __future__ import annotations

import ssl as _std
import time as _time
from typing import Any, Callable, Optional

from . import socket as _gsocket
from .socket import _READ, _WRITE, _adopt_fd, _ss, _wait

__all__ = ["SSLSocket"]


class SSLSocket(_std.SSLSocket, _gsocket.socket):
    """``ssl.SSLSocket`` for goroutines (see the module docs)."""

    @classmethod
    def _create(cls, sock: Any, *args: Any, **kwargs: Any) -> Any:
        self = super()._create(sock, *args, **kwargs)
        # The standard _create runs goroutine.socket's __init__ on the new object,
        # which adopts the fd, then detaches `sock`, which disowns it again (the
        # same fd). Adopted once more, it stays in the netpoller's epoll set between
        # waits, as a plain goroutine socket's does: no epoll_ctl per want-read.
        _adopt_fd(_ss.fileno(self))
        return self

    def _retry(self, op: Callable[..., Any], *args: Any, timeout: Optional[float] = None) -> Any:
        """``op(*args)``, parking on want-read / want-write until it completes."""
        t = self._gr_timeout if timeout is None else timeout
        if t == 0.0:
            return op(*args)
        deadline = None if t is None or t < 0 else _time.monotonic() + t
        fd = self.fileno()
        while True:
            try:
                return op(*args)
            except _std.SSLWantReadError:
                _wait(fd, _READ, deadline)
            except _std.SSLWantWriteError:
                _wait(fd, _WRITE, deadline)

    def read(self, len: int = 1024, buffer: Any = None) -> Any:
        return self._retry(_std.SSLSocket.read, self, len, buffer)

    def write(self, data: Any) -> int:
        return self._retry(_std.SSLSocket.write, self, data)

    def send(self, data: Any, flags: int = 0) -> int:
        return self._retry(_std.SSLSocket.send, self, data, flags)

    def do_handshake(self, block: bool = False) -> None:
        self._check_connected()
        # block=True: wait even on a non-blocking socket (as the standard class does)
        self._retry(self._sslobj.do_handshake, timeout=-1.0 if block and self._gr_timeout == 0.0 else None)

    def unwrap(self) -> Any:
        return self._retry(_std.SSLSocket.unwrap, self)
