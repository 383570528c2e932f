"""Loading libgoroutine and declaring the C functions the package calls.

Where the library comes from, in order: the ``GOROUTINE_LIBRARY`` environment variable
(a path), the copy bundled inside this package by ``pip install`` (``_native/``), then
``libgoroutine.so.0`` from the system (a ``make install`` / pkg-config install).

Calls that may park a goroutine are ``gr_py_*`` functions reached through
``ctypes.PyDLL`` (the GIL held): the runtime releases the GIL itself around the park,
after checking that parking is safe there. ``gr_py_run`` goes through ``ctypes.CDLL``,
which releases the GIL and saves the calling thread state for the whole call.
"""

from __future__ import annotations

import ctypes
import os
import sys
import sysconfig

from ctypes import POINTER, c_char_p, c_int, c_int64, c_size_t, c_ssize_t, c_void_p, py_object

SUPPORTED = ((3, 11), (3, 13))


def check_interpreter() -> None:
    """Refuses interpreters this design cannot host, with a clear ImportError."""
    impl = sys.implementation.name
    if impl != "cpython":
        raise ImportError(f"goroutine needs CPython; this is {impl}")
    v = sys.version_info[:2]
    if not (SUPPORTED[0] <= v <= SUPPORTED[1]):
        raise ImportError(
            "goroutine supports CPython %d.%d to %d.%d; this is %d.%d "
            "(3.14 checks the C stack pointer against the OS thread's stack, "
            "which goroutine stacks are not)" % (SUPPORTED[0] + SUPPORTED[1] + v)
            if v > SUPPORTED[1]
            else "goroutine supports CPython %d.%d to %d.%d; this is %d.%d" % (SUPPORTED[0] + SUPPORTED[1] + v)
        )
    if sysconfig.get_config_var("Py_GIL_DISABLED"):
        raise ImportError("goroutine does not support free-threaded CPython builds (it relies on the GIL)")
    if v == (3, 11) and hasattr(sys, "gettotalrefcount"):
        raise ImportError(
            "goroutine cannot run on a debug build of CPython 3.11: its C-stack and "
            "thread-state checks reject goroutine stacks; use a release build"
        )
    if not sys.platform.startswith("linux"):
        raise ImportError("goroutine supports Linux only")


def _candidates() -> list[tuple[str, str]]:
    env = os.environ.get("GOROUTINE_LIBRARY")
    if env:
        return [(env, "GOROUTINE_LIBRARY")]
    here = os.path.dirname(os.path.abspath(__file__))
    return [
        (os.path.join(here, "_native", "libgoroutine.so"), "the copy bundled with the package"),
        ("libgoroutine.so.0", "the system library"),
    ]


def load() -> tuple[ctypes.CDLL, ctypes.PyDLL, str]:
    errors = []
    for path, what in _candidates():
        if os.sep in path and not os.path.exists(path):
            errors.append(f"{what}: {path} does not exist")
            continue
        try:
            cdll = ctypes.CDLL(path)
            pydll = ctypes.PyDLL(path)
        except OSError as e:
            errors.append(f"{what}: {e}")
            continue
        if not hasattr(pydll, "gr_py_init"):
            errors.append(f"{what}: {path} has no Python support (gr_py_init); too old?")
            continue
        return cdll, pydll, path
    raise ImportError(
        "goroutine: cannot load libgoroutine (" + "; ".join(errors) + "). Install the "
        "package with pip (which builds and bundles it), or set GOROUTINE_LIBRARY to "
        "the path of libgoroutine.so"
    )


check_interpreter()
cdll, pydll, path = load()


def _fn(dll, name, restype, *argtypes):
    f = getattr(dll, name)
    f.restype = restype
    f.argtypes = list(argtypes)
    return f


class PyApi(ctypes.Structure):
    _fields_ = [
        ("size", c_size_t),
        ("interp", c_void_p),
        ("thread_state_new", c_void_p),
        ("eval_restore_thread", c_void_p),
        ("eval_save_thread", c_void_p),
        ("thread_state_clear", c_void_p),
        ("thread_state_delete", c_void_p),
        ("object_call_object", c_void_p),
        ("incref", c_void_p),
        ("decref", c_void_p),
        ("err_write_unraisable", c_void_p),
        ("err_set_object", c_void_p),
        ("bytes_from_string_and_size", c_void_p),
        ("long_from_long", c_void_p),
        ("cfunction_new_ex", c_void_p),
        ("none", c_void_p),
        ("exc_closed", c_void_p),
        ("exc_context", c_void_p),
    ]


class PyCase(ctypes.Structure):
    _fields_ = [("chan", c_void_p), ("op", c_int), ("closed", c_int), ("obj", c_void_p)]


SEND = 1
RECV = 2
READ = 1
WRITE = 2


def init(exc_closed: type, exc_context: type) -> None:
    api = ctypes.pythonapi
    get_interp = api.PyInterpreterState_Get
    get_interp.restype = c_void_p
    get_interp.argtypes = []

    def addr(name):
        return ctypes.cast(getattr(api, name), c_void_p).value

    table = PyApi(
        ctypes.sizeof(PyApi),
        get_interp(),
        addr("PyThreadState_New"),
        addr("PyEval_RestoreThread"),
        addr("PyEval_SaveThread"),
        addr("PyThreadState_Clear"),
        addr("PyThreadState_Delete"),
        addr("PyObject_CallObject"),
        addr("Py_IncRef"),
        addr("Py_DecRef"),
        addr("PyErr_WriteUnraisable"),
        addr("PyErr_SetObject"),
        addr("PyBytes_FromStringAndSize"),
        addr("PyLong_FromLong"),
        addr("PyCFunction_NewEx"),
        id(None),
        id(exc_closed),
        id(exc_context),
    )
    rc = _fn(pydll, "gr_py_init", c_int, POINTER(PyApi))(ctypes.byref(table))
    if rc != 0:
        raise ImportError(f"goroutine: gr_py_init failed ({strerror(rc)})")
    _init_builtins()


builtin = None  # set by init: the runtime's builtins


def _init_builtins() -> None:
    global builtin
    get = _fn(pydll, "gr_py_builtin", py_object, c_int)
    builtin = {"yield_": get(0), "self_id": get(1)}


_strerror = _fn(pydll, "gr_strerror", c_char_p, c_int)


def strerror(rc: int) -> str:
    return _strerror(rc).decode()


# Through CDLL: releases the GIL and saves this thread's state for the whole call.
run = _fn(cdll, "gr_py_run", c_int, c_void_p, c_int64)

# Through PyDLL (GIL held). The gr_py_* ones that park release it themselves.
home_new = _fn(pydll, "gr_py_home_new", c_void_p)
home_alive = _fn(pydll, "gr_py_home_alive", c_size_t, c_void_p)
spawn = _fn(pydll, "gr_py_spawn", c_ssize_t, c_void_p, py_object, c_char_p)
task_id = _fn(pydll, "gr_py_task_id", c_int64, c_void_p)
task_done = _fn(pydll, "gr_py_task_done", c_int, c_void_p)
join = _fn(pydll, "gr_py_join", c_int, c_void_p, c_int64)
task_result = _fn(pydll, "gr_py_task_result", py_object, c_void_p)
task_release = _fn(pydll, "gr_py_task_release", c_int, c_void_p)
yield_ = _fn(pydll, "gr_py_yield", c_int)
sleep = _fn(pydll, "gr_py_sleep", c_int, c_int64)
block_io = _fn(pydll, "gr_py_block_io", c_int, c_int, c_int, c_int64)
chan_new = _fn(pydll, "gr_chan_new", c_void_p, c_size_t, c_size_t)
chan_send = _fn(pydll, "gr_py_chan_send", c_int, c_void_p, py_object, c_int)
chan_recv = _fn(pydll, "gr_py_chan_recv", py_object, c_void_p, c_int, py_object)
chan_close = _fn(pydll, "gr_chan_close", c_int, c_void_p)
chan_len = _fn(pydll, "gr_chan_len", c_size_t, c_void_p)
chan_cap = _fn(pydll, "gr_chan_cap", c_size_t, c_void_p)
chan_free = _fn(pydll, "gr_py_chan_free", c_int, c_void_p)
select = _fn(pydll, "gr_py_select", c_int, POINTER(PyCase), c_size_t, c_int64)
steal = _fn(pydll, "gr_py_steal", py_object, c_void_p)
wg_new = _fn(pydll, "gr_wg_new", c_void_p)
wg_add = _fn(pydll, "gr_wg_add", c_int, c_void_p, c_int64)
wg_wait = _fn(pydll, "gr_py_wg_wait", c_int, c_void_p)
wg_free = _fn(pydll, "gr_wg_free", c_int, c_void_p)
mutex_new = _fn(pydll, "gr_mutex_new", c_void_p)
mutex_lock = _fn(pydll, "gr_py_mutex_lock", c_int, c_void_p)
mutex_trylock = _fn(pydll, "gr_mutex_trylock", c_int, c_void_p)
mutex_unlock = _fn(pydll, "gr_mutex_unlock", c_int, c_void_p)
mutex_free = _fn(pydll, "gr_mutex_free", c_int, c_void_p)
self_id = _fn(pydll, "gr_self", c_int64)
recv = _fn(pydll, "gr_py_recv", py_object, c_int, c_size_t)
send = _fn(pydll, "gr_py_send", c_ssize_t, c_int, c_char_p, c_size_t, c_int)
close_fd = _fn(pydll, "gr_close", c_int, c_int)
write_unraisable = _fn(pydll, "gr_py_write_unraisable", c_int, py_object, py_object, py_object)
version = _fn(pydll, "gr_version", c_char_p)().decode()
