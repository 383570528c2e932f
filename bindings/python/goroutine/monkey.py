"""Make the standard library park goroutines instead of blocking their thread.

Every Python goroutine of a ``gr.run`` runs on the thread that called it, so a
blocking call (``time.sleep``, a socket read, a lock held by another goroutine...)
would stop them all. ``patch_all()`` replaces the blocking parts of the standard
library with versions that park only the calling goroutine, so that programs and
libraries written for threads (requests, urllib, redis-py, psycopg...) run
concurrently in goroutines unchanged, as gevent's monkey patching does for
greenlets::

    import goroutine.monkey; goroutine.monkey.patch_all()   # first, before other imports
    import goroutine as gr, requests

    def main():
        gs = [gr.go(requests.get, "http://127.0.0.1:8000/") for _ in range(100)]
        return [g.join().status_code for g in gs]

    print(gr.run(main))

or, for a whole script: ``python -m goroutine script.py [args]``.

What each ``patch_*`` replaces (all are idempotent; ``patch_all`` calls them all):

- ``patch_socket``: ``socket.socket`` (the class), ``create_connection``,
  ``socketpair``, ``fromfd`` -> ``goroutine.socket``'s;
- ``patch_dns``: ``getaddrinfo``, ``gethostbyname``, ``gethostbyname_ex``,
  ``gethostbyaddr``, ``getnameinfo`` -> lookups on a helper thread;
- ``patch_ssl``: ``ssl.SSLContext.sslsocket_class`` -> ``goroutine.ssl.SSLSocket``;
- ``patch_time``: ``time.sleep``;
- ``patch_select``: ``select.select``, ``select.poll``, ``select.epoll``, and the
  ``select`` method of every ``selectors`` class (in place);
- ``patch_threading``: ``_thread``'s and ``threading``'s locks, thread start,
  ``get_ident``, ``current_thread`` (so ``Lock``, ``RLock``, ``Condition``,
  ``Semaphore``, ``Event``, ``Barrier``, ``Timer``, ``Thread``, ``queue`` and
  ``concurrent.futures`` park goroutines, and a ``Thread`` started in a goroutine is a
  goroutine), and ``queue.SimpleQueue``;
- ``patch_subprocess``: ``subprocess.Popen``'s waits (in place);
- ``patch_os``: ``os.read``, ``os.write``, ``os.waitpid``, ``os.wait``.

The replacements behave as the originals outside goroutines (before ``gr.run``, on
other threads), and inside them keep their documented behaviour (arguments,
timeouts, exceptions, return values). Details are in the modules that implement
them: ``goroutine.socket``, ``goroutine.ssl``, ``goroutine._fdwait``,
``goroutine._threads``, ``goroutine._process``.

Patch before importing the modules that use these: a module imported earlier that
took its own copy (``from socket import socket``, ``from time import sleep``) keeps
the original; ``MonkeyPatchWarning`` names such copies. C extensions that do their
own blocking I/O (libpq inside psycopg2, hiredis) are not reached by any of this;
the C hook layer (``LD_PRELOAD=libgoroutine_hook.so``) covers them.
"""

from __future__ import annotations

import errno as _errno
import sys
import time as _time_module
import warnings
from typing import Any, Dict, List, Set, Tuple

from . import _error, _lib, _ns, self_id

__all__ = [
    "patch_all", "patch_socket", "patch_dns", "patch_ssl", "patch_time", "patch_select",
    "patch_threading", "patch_subprocess", "patch_os", "is_patched", "get_original",
    "MonkeyPatchWarning",
]

AREAS = ("socket", "dns", "ssl", "time", "select", "threading", "subprocess", "os")


class MonkeyPatchWarning(RuntimeWarning):
    """Something imported or started before patching keeps blocking its thread."""


_MISSING = object()
# (owner's name, attribute) -> the original: every replacement made.
_saved: Dict[Tuple[str, str], Any] = {}
_areas: Set[str] = set()
# Copies already warned about (module, name).
_warned: Set[Tuple[str, str]] = set()
# Inside patch_all: the warnings wait until everything is patched.
_batch = [0]

# Copies in already imported modules that are harmless: ssl.SSLSocket derives
# from socket.socket (the base class is what it names); subprocess's _waitpid only
# polls (WNOHANG); reprlib keys its recursion guard on the thread id (a repr does not
# park); tempfile's and functools' (3.11) locks are made at import or re-entrant;
# threading's _CRLock is used only by the RLock that patch_threading replaces.
_HARMLESS = {
    ("ssl", "socket"), ("subprocess", "_waitpid"), ("reprlib", "get_ident"),
    ("tempfile", "_allocate_lock"), ("functools", "RLock"), ("threading", "_CRLock"),
}


def _owner_name(owner: Any) -> str:
    if isinstance(owner, type):
        return owner.__module__ + "." + owner.__qualname__
    return owner.__name__


def _replace(owner: Any, attr: str, value: Any) -> None:
    key = (_owner_name(owner), attr)
    if key not in _saved:
        if isinstance(owner, type):
            _saved[key] = owner.__dict__.get(attr, _MISSING)
        else:
            _saved[key] = getattr(owner, attr, _MISSING)
    setattr(owner, attr, value)


def get_original(owner: str, attr: str) -> Any:
    """What ``owner.attr`` was before patching (``owner``: a module name such as
    ``"socket"``, or a class as ``"selectors.EpollSelector"``); the current value
    when it was not patched."""
    if (owner, attr) not in _saved:
        mod_name, _, cls = owner.rpartition(".") if owner not in sys.modules else (owner, "", "")
        obj = sys.modules[mod_name]
        return getattr(getattr(obj, cls) if cls else obj, attr)
    original = _saved[(owner, attr)]
    if original is _MISSING:
        raise AttributeError(f"{owner}.{attr} did not exist before patching")
    return original


def is_patched(name: str) -> bool:
    """True when ``name`` is patched: an area (``"socket"``, ``"dns"``, ``"ssl"``,
    ``"time"``, ``"select"``, ``"threading"``, ``"subprocess"``, ``"os"``) or one
    attribute (``"time.sleep"``, ``"selectors.EpollSelector.select"``)."""
    if name in AREAS:
        return name in _areas
    owner, _, attr = name.rpartition(".")
    return (owner, attr) in _saved


def _area(name: str) -> bool:
    """Marks an area patched; False if it already was."""
    if name in _areas:
        return False
    _areas.add(name)
    return True


def _done() -> None:
    if not _batch[0]:
        _warn_about_copies()


def _warn_about_copies() -> None:
    """Warns about module globals that still are an original (see the module docs)."""
    originals: Dict[int, Tuple[str, Any]] = {}
    for (owner, attr), original in _saved.items():
        if original is not _MISSING and callable(original):
            originals[id(original)] = (f"{owner}.{attr}", original)
    hits: List[str] = []
    for mod_name, mod in list(sys.modules.items()):
        if mod is None or mod_name == "goroutine" or mod_name.startswith("goroutine."):
            continue
        if not str(getattr(mod, "__file__", "")).endswith(".py"):
            continue  # a C module: it holds the implementation, not a copy
        d = getattr(mod, "__dict__", None)
        if not isinstance(d, dict):
            continue
        for name, value in list(d.items()):
            what, original = originals.get(id(value), (None, None))
            if what is None or value is not original:
                continue
            if (mod_name, name) in _HARMLESS or (mod_name, name) in _warned:
                continue
            if getattr(value, "__module__", None) == mod_name:
                continue  # where it is defined, not a copy
            _warned.add((mod_name, name))
            hits.append(f"{mod_name}.{name} (the original {what})")
    if hits:
        warnings.warn(
            MonkeyPatchWarning(
                "goroutine.monkey: these were imported before patching and keep the blocking "
                "originals (their calls block every goroutine of the thread): "
                + ", ".join(sorted(hits))
                + ". Patch first: call goroutine.monkey.patch_all() before importing other modules."
            ),
            stacklevel=4,  # the caller of patch_*()
        )


# ---------------------------------------------------------------------------------
# the areas


_real_sleep = _time_module.sleep


def patch_time() -> None:
    """``time.sleep`` parks the calling goroutine."""
    if _area("time"):
        import time

        _replace(time, "sleep", _sleep)
    _done()


def _sleep_seconds(secs: Any) -> Any:
    if isinstance(secs, (int, float)):
        return secs
    if hasattr(secs, "__index__"):
        return secs.__index__()
    if hasattr(secs, "__float__") and not isinstance(secs, (str, bytes)):
        return float(secs)
    raise TypeError("'%s' object cannot be interpreted as an integer" % type(secs).__name__)


def _sleep(secs: float) -> None:
    """``time.sleep``: parks the calling goroutine (``gr.sleep``); blocks the thread
    outside goroutines, as always."""
    if self_id() == 0:
        return _real_sleep(secs)
    secs = _sleep_seconds(secs)
    if secs != secs or secs < 0:  # NaN and negatives: the original's errors
        return _real_sleep(secs)
    rc = _lib.sleep(_ns(secs) if secs > 0 else 0)
    if rc == -_errno.EPERM:
        return _real_sleep(secs)
    if rc:
        raise _error(rc)
    return None


def patch_socket() -> None:
    """``socket.socket``, ``create_connection``, ``socketpair`` and ``fromfd`` make
    goroutine sockets (``goroutine.socket``)."""
    if _area("socket"):
        import socket

        from . import socket as gsocket

        for name in ("socket", "create_connection", "socketpair", "fromfd"):
            _replace(socket, name, getattr(gsocket, name))
        ssl = sys.modules.get("ssl")
        if ssl is not None:  # ssl took create_connection (get_server_certificate)
            _replace(ssl, "create_connection", gsocket.create_connection)
    _done()


def patch_dns() -> None:
    """Name lookups (``getaddrinfo``, ``gethostbyname``, ``gethostbyname_ex``,
    ``gethostbyaddr``, ``getnameinfo``) run on a helper thread in goroutines."""
    if _area("dns"):
        import socket

        from . import socket as gsocket

        for name in gsocket._DNS:
            _replace(socket, name, getattr(gsocket, name))
    _done()


def patch_ssl() -> None:
    """``SSLContext.wrap_socket`` returns ``goroutine.ssl.SSLSocket``: handshake,
    reads, writes and unwrap park."""
    if _area("ssl"):
        import ssl

        from .ssl import SSLSocket

        _replace(ssl.SSLContext, "sslsocket_class", SSLSocket)
    _done()


def patch_select() -> None:
    """``select.select``, ``select.poll``, ``select.epoll`` and the selectors park."""
    if _area("select"):
        import select

        from . import _fdwait

        for name in ("select", "poll", "epoll"):
            _replace(select, name, getattr(_fdwait, name))
        for cls in _fdwait.selector_classes():
            _replace(cls, "select", _fdwait.selector_select(cls.__dict__["select"]))
    _done()


def patch_threading() -> None:
    """Locks, threads and thread ids of ``_thread`` and ``threading`` work with
    goroutines (see the module docs), and ``queue.SimpleQueue`` is the Python one
    (over ``threading``)."""
    if _area("threading"):
        import _thread
        import queue
        import threading

        from . import _threads as t

        if threading.active_count() > 1:
            others = [th.name for th in threading.enumerate() if th is not threading.current_thread()]
            warnings.warn(
                MonkeyPatchWarning(
                    "goroutine.monkey.patch_threading: %d other thread(s) run already (%s): "
                    "they stay OS threads, and the locks and queues made before patching are "
                    "the originals, which block a goroutine's whole thread" % (len(others), ", ".join(others))
                ),
                stacklevel=2,
            )
        for name, value in (
            ("allocate_lock", t.Lock), ("allocate", t.Lock), ("LockType", t.Lock), ("RLock", t.RLock),
            ("get_ident", t.get_ident), ("start_new_thread", t.start_new_thread),
            ("start_new", t.start_new_thread),
            ("start_joinable_thread", getattr(t, "start_joinable_thread", None)),
        ):
            if value is not None and hasattr(_thread, name):
                _replace(_thread, name, value)
        for name, value in (
            ("Lock", t.Lock), ("_allocate_lock", t.Lock), ("_LockType", t.Lock), ("RLock", t.RLock),
            ("get_ident", t.get_ident), ("current_thread", t.current_thread),
            ("_start_new_thread", t.start_new_thread),
            ("_set_sentinel", getattr(t, "_set_sentinel", None)),
            ("_shutdown", getattr(t, "_shutdown", None)),
            ("_start_joinable_thread", getattr(t, "start_joinable_thread", None)),
            ("_ThreadHandle", getattr(t, "_ThreadHandle", None)),
        ):
            if value is not None and hasattr(threading, name):
                _replace(threading, name, value)
        _replace(queue, "SimpleQueue", queue._PySimpleQueue)  # type: ignore[attr-defined]
        # concurrent.futures' thread pools, when imported before patching, hold their
        # module lock (a real one then) while a new worker thread starts, which parks
        # now: the next goroutine to submit would block the thread for good. The lock
        # is used only through that global name, so a free one is swapped.
        cft = sys.modules.get("concurrent.futures.thread")
        lock = getattr(cft, "_global_shutdown_lock", None)
        if type(lock) is type(t._real_lock()) and not lock.locked():
            _replace(cft, "_global_shutdown_lock", t.Lock())
    _done()


def patch_subprocess() -> None:
    """``subprocess.Popen``'s waits park: pipes through a parking selector, the exit
    through a pidfd (so ``wait``, ``communicate``, ``run``, ``call``,
    ``check_output``...)."""
    if _area("subprocess"):
        import subprocess

        from . import _process

        _replace(subprocess.Popen, "_wait", _process.popen_wait)
        _replace(subprocess.Popen, "communicate", _process.popen_communicate)
        _replace(subprocess, "_PopenSelector", _process.PopenSelector)
    _done()


def patch_os() -> None:
    """``os.read``, ``os.write``, ``os.waitpid`` and ``os.wait`` park."""
    if _area("os"):
        import os

        from . import _process

        for name in ("read", "write", "waitpid", "wait"):
            _replace(os, name, getattr(_process, name))
    _done()


def patch_all(
    socket: bool = True,
    dns: bool = True,
    ssl: bool = True,
    time: bool = True,
    select: bool = True,
    threading: bool = True,
    subprocess: bool = True,
    os: bool = True,
) -> None:
    """Patches every area (those given False are left alone). Call it first, before
    importing the modules that use them. Calling it again patches what was left."""
    _batch[0] += 1
    try:
        for flag, fn in (
            (os, patch_os), (time, patch_time), (threading, patch_threading), (socket, patch_socket),
            (dns, patch_dns), (select, patch_select), (ssl, patch_ssl), (subprocess, patch_subprocess),
        ):
            if flag:
                fn()
    finally:
        _batch[0] -= 1
    _done()

