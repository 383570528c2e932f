"""Loading libgoroutine and declaring the C functions the package calls.

Where the library comes from, in order: the ``GOROUTINE_LIBRARY`` environment variable
(a path), the copy bundled inside this package by ``pip install`` (``_native/``), then
``SYSTEM_LIBRARY`` from the system (a ``make install`` / pkg-config install).

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

from ctypes import POINTER, c_char_p, c_int, c_int64, c_size_t, c_void_p, py_object

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


# The soname of the library ABI that the declarations below are written for
# (build.rs: libgoroutine.so.MAJOR, or libgoroutine.so.0.MINOR while MAJOR is 0, when
# a new minor version may change the ABI). tests/test_package.py checks it against the
# library's own soname.
SYSTEM_LIBRARY = "libgoroutine.so.0.2"


def _candidates() -> list[tuple[str, str]]:
    env = os.environ.get("GOROUTINE_LIBRARY")
    if env:
        return [(env, "GOROUTINE_LIBRARY")]
    here = os.path.dirname(os.path.abspath(__file__))
    return [
        (os.path.join(here, "_native", "libgoroutine.so"), "the copy bundled with the package"),
        (SYSTEM_LIBRARY, "the system library"),
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


# The C-API functions and objects gr_py_init takes, in the order of gr_py_api
# (include/goroutine.h): (field, what ctypes.pythonapi calls it). The objects are
# added by init.
_FUNCTIONS = [
    ("thread_state_new", "PyThreadState_New"),
    ("restore_thread", "PyEval_RestoreThread"),
    ("save_thread", "PyEval_SaveThread"),
    ("thread_state_clear", "PyThreadState_Clear"),
    ("thread_state_delete", "PyThreadState_Delete"),
    ("call", "PyObject_Call"),
    ("incref", "Py_IncRef"),
    ("decref", "Py_DecRef"),
    ("write_unraisable", "PyErr_WriteUnraisable"),
    ("set_object", "PyErr_SetObject"),
    ("set_string", "PyErr_SetString"),
    ("err_occurred", "PyErr_Occurred"),
    ("err_fetch", "PyErr_Fetch"),
    ("err_restore", "PyErr_Restore"),
    ("err_normalize", "PyErr_NormalizeException"),
    ("exception_set_traceback", "PyException_SetTraceback"),
    ("given_exception_matches", "PyErr_GivenExceptionMatches"),
    ("bytes_from", "PyBytes_FromStringAndSize"),
    ("long_from", "PyLong_FromLong"),
    ("bool_from", "PyBool_FromLong"),
    ("long_from_ssize", "PyLong_FromSsize_t"),
    ("long_from_u64", "PyLong_FromUnsignedLongLong"),
    ("long_as_long", "PyLong_AsLong"),
    ("long_as_u64", "PyLong_AsUnsignedLongLong"),
    ("float_as_double", "PyFloat_AsDouble"),
    ("object_is_true", "PyObject_IsTrue"),
    ("callable_check", "PyCallable_Check"),
    ("tuple_size", "PyTuple_Size"),
    ("tuple_pack", "PyTuple_Pack"),
    ("tuple_get_slice", "PyTuple_GetSlice"),
    ("tuple_get_item", "PyTuple_GetItem"),
    ("unicode_eq_ascii", "PyUnicode_CompareWithASCIIString"),
    ("dict_copy", "PyDict_Copy"),
    ("dict_size", "PyDict_Size"),
    ("context_copy_current", "PyContext_CopyCurrent"),
    ("context_enter", "PyContext_Enter"),
    ("context_exit", "PyContext_Exit"),
    ("get_buffer", "PyObject_GetBuffer"),
    ("release_buffer", "PyBuffer_Release"),
    ("type_from_spec", "PyType_FromSpec"),
    ("type_generic_alloc", "PyType_GenericAlloc"),
    ("type_get_slot", "PyType_GetSlot"),
    ("clear_weakrefs", "PyObject_ClearWeakRefs"),
    ("unicode_from_format", "PyUnicode_FromFormat"),
    ("generic_alias", "Py_GenericAlias"),
    ("cfunction_new", "PyCFunction_NewEx"),
    ("lock_allocate", "PyThread_allocate_lock"),
    ("lock_acquire_timed", "PyThread_acquire_lock_timed"),
    ("lock_release", "PyThread_release_lock"),
    ("lock_free", "PyThread_free_lock"),
    ("check_signals", "PyErr_CheckSignals"),
    ("thread_state_swap", "PyThreadState_Swap"),
]
_OBJECTS = [
    "none", "exc_closed", "exc_context", "exc_keyboard_interrupt", "exc_system_exit",
    "exc_type_error", "exc_value_error", "exc_runtime_error", "hook_error", "hook_go",
]


class PyApi(ctypes.Structure):
    _fields_ = (
        [("size", c_size_t), ("object_size", c_size_t), ("version", c_size_t), ("interp", c_void_p)]
        + [(name, c_void_p) for name, _ in _FUNCTIONS]
        + [(name, c_void_p) for name in _OBJECTS]
    )


SEND = 1
RECV = 2
READ = 1
WRITE = 2


def init(exc_closed: type, exc_context: type, hook_error, hook_go) -> None:
    """Hands the runtime the interpreter's C API (gr_py_init) and takes its builtins.
    ``hook_error(rc, kind)`` makes the exception a builtin raises;
    ``hook_go(fn, *args, **kw)`` is ``go`` for callers outside goroutines."""
    global builtin
    api = ctypes.pythonapi
    get_interp = api.PyInterpreterState_Get
    get_interp.restype = c_void_p
    get_interp.argtypes = []
    table = PyApi(
        ctypes.sizeof(PyApi),
        object.__basicsize__,
        sys.hexversion,
        get_interp(),
        *[ctypes.cast(getattr(api, name), c_void_p).value for _, name in _FUNCTIONS],
        *[id(o) for o in (None, exc_closed, exc_context, KeyboardInterrupt, SystemExit, TypeError,
                          ValueError, RuntimeError, hook_error, hook_go)],
    )
    rc = _fn(pydll, "gr_py_init", c_int, POINTER(PyApi))(ctypes.byref(table))
    if rc == -22 and object.__basicsize__ != 16:
        raise ImportError("goroutine supports the standard (non-debug) builds of CPython only")
    if rc != 0:
        raise ImportError(f"goroutine: gr_py_init failed ({strerror(rc)})")
    get = _fn(pydll, "gr_py_builtin", py_object, c_char_p)
    builtin = {name: get(name.encode()) for name in BUILTINS}
    # The ones with the contract of the C calls they stand for (an int result; for
    # chan_recv, the object).
    global sleep, block_io, close_fd, chan_send, chan_recv, select
    sleep, block_io, close_fd = builtin["sleep"], builtin["block_io"], builtin["close_fd"]
    chan_send, chan_recv, select = builtin["chan_send"], builtin["chan_recv"], builtin["select"]


#: The runtime's builtin functions and types (src/cpython/), taken by init.
BUILTINS = (
    "yield_", "self_id", "sleep", "block_io", "wait_edge", "close_fd", "adopt_fd", "disown_fd", "go", "Goroutine",
    "sock_recv",
    "sock_recv_into", "sock_send", "sock_sendall", "Lock", "RLock", "get_ident", "chan_send", "chan_recv",
    "select",
)
builtin: dict = {}
# Set by init: gr_py_sleep, gr_block_io and gr_close as builtins, and the channel
# builtins (src/cpython/chan.rs).
sleep = block_io = close_fd = chan_send = chan_recv = select = None

SPAWN_DAEMON = 1
SPAWN_MAIN = 2


_strerror = _fn(pydll, "gr_strerror", c_char_p, c_int)


def strerror(rc: int) -> str:
    return _strerror(rc).decode()


# Through CDLL: releases the GIL and saves this thread's state for the whole call.
run = _fn(cdll, "gr_py_run", c_int, c_void_p, c_int64)

# Through PyDLL (GIL held). The gr_py_* ones that park release it themselves.
home_new = _fn(pydll, "gr_py_home_new", c_void_p)
home_alive = _fn(pydll, "gr_py_home_alive", c_size_t, c_void_p)
home_daemons = _fn(pydll, "gr_py_home_daemons", c_size_t, c_void_p)
home_take_fatal = _fn(pydll, "gr_py_home_take_fatal", py_object, c_void_p)
spawn = _fn(pydll, "gr_py_spawn", py_object, c_void_p, py_object, py_object, py_object, c_char_p, c_int, c_void_p)
chan_new = _fn(pydll, "gr_chan_new", c_void_p, c_size_t, c_size_t)
chan_close = _fn(pydll, "gr_chan_close", c_int, c_void_p)
chan_len = _fn(pydll, "gr_chan_len", c_size_t, c_void_p)
chan_cap = _fn(pydll, "gr_chan_cap", c_size_t, c_void_p)
chan_free = _fn(pydll, "gr_py_chan_free", c_int, c_void_p)
wg_new = _fn(pydll, "gr_wg_new", c_void_p)
wg_add = _fn(pydll, "gr_wg_add", c_int, c_void_p, c_int64)
wg_wait = _fn(pydll, "gr_py_wg_wait", c_int, c_void_p)
wg_free = _fn(pydll, "gr_wg_free", c_int, c_void_p)
mutex_new = _fn(pydll, "gr_mutex_new", c_void_p)
mutex_lock = _fn(pydll, "gr_py_mutex_lock", c_int, c_void_p)
mutex_trylock = _fn(pydll, "gr_mutex_trylock", c_int, c_void_p)
mutex_unlock = _fn(pydll, "gr_mutex_unlock", c_int, c_void_p)
mutex_free = _fn(pydll, "gr_mutex_free", c_int, c_void_p)
# Contexts (cancel scopes, timeouts, groups): none of these parks.
ctx_current = _fn(pydll, "gr_ctx_current", c_void_p)
ctx_new = _fn(pydll, "gr_ctx_new", c_void_p, c_void_p)
ctx_with_timeout = _fn(pydll, "gr_ctx_with_timeout", c_void_p, c_void_p, c_int64)
ctx_cancel = _fn(pydll, "gr_ctx_cancel", c_int, c_void_p)
ctx_err = _fn(pydll, "gr_ctx_err", c_int, c_void_p)
ctx_swap = _fn(pydll, "gr_ctx_swap", c_int, c_void_p, POINTER(c_void_p))
ctx_free = _fn(pydll, "gr_ctx_free", c_int, c_void_p)
write_unraisable = _fn(pydll, "gr_py_write_unraisable", c_int, py_object, py_object, py_object)
version = _fn(pydll, "gr_version", c_char_p)().decode()
