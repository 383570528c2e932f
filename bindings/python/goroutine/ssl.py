"""TLS sockets that park the calling goroutine instead of blocking its thread.

``goroutine.ssl.SSLSocket`` is an ``ssl.SSLSocket`` over a ``goroutine.socket.socket``:
the descriptor stays non-blocking, so OpenSSL reports "want read" / "want write"
instead of waiting, and the handshake, ``read``, ``write`` (and so ``recv``,
``recv_into``, ``send``, ``sendall``, ``makefile``) and ``unwrap`` park in the
runtime's netpoller until the socket is ready, then go on. Timeouts
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
from .socket import _READ, _WRITE, _wait

__all__ = ["SSLSocket"]


class SSLSocket(_std.SSLSocket, _gsocket.socket):
    """``ssl.SSLSocket`` for goroutines (see the module docs)."""

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
