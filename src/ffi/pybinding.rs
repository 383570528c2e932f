//! Header section "Python": the exports the Python binding (`bindings/python`) calls
//! through ctypes. C programs have no use for them. See `src/cpython/` for the design.
//!
//! Conventions: a `PyObject *` is passed as `void *`. Functions marked "GIL held" are
//! called through `ctypes.PyDLL`; the ones that may park release the GIL themselves
//! around the park (and refuse with -EPERM where parking would corrupt CPython's
//! state). Functions returning an object return a new reference, or NULL with a
//! Python exception set (as `ctypes.py_object` return values expect).

use std::ffi::{c_char, c_int, c_void};
use std::panic::AssertUnwindSafe;

use super::boundary;
use super::context::gr_ctx;
use super::sync::gr_chan;
use crate::cpython::{self, Api, PyHome};
use crate::runtime::context::Ctx;
use crate::sync::chan::Chan;
use crate::sync::mutex::Mutex;
use crate::sync::waitgroup::WaitGroup;

/// What the runtime needs of the running interpreter: `sizeof(PyObject)` and the
/// addresses of C-API functions and objects, filled by the binding from
/// `ctypes.pythonapi` and handed over once with gr_py_init. Every field must be set.
/// Each field's comment names the function (called with the signature CPython
/// gives it) or the object.
#[repr(C)]
#[allow(non_camel_case_types)]
pub struct gr_py_api {
    /// sizeof(gr_py_api), checked by gr_py_init.
    pub size: usize,
    /// `object.__basicsize__` (sizeof(PyObject)): 16 in the builds supported.
    pub object_size: usize,
    /// `sys.hexversion` of the running interpreter.
    pub version: usize,
    /// `PyInterpreterState_Get()` of the interpreter the goroutines run in.
    pub interp: *mut c_void,
    /// `PyThreadState_New`.
    pub thread_state_new: *mut c_void,
    /// `PyEval_RestoreThread`.
    pub restore_thread: *mut c_void,
    /// `PyEval_SaveThread`.
    pub save_thread: *mut c_void,
    /// `PyThreadState_Clear`.
    pub thread_state_clear: *mut c_void,
    /// `PyThreadState_Delete`.
    pub thread_state_delete: *mut c_void,
    /// `PyObject_Call`.
    pub call: *mut c_void,
    /// `Py_IncRef`.
    pub incref: *mut c_void,
    /// `Py_DecRef`.
    pub decref: *mut c_void,
    /// `PyErr_WriteUnraisable`.
    pub write_unraisable: *mut c_void,
    /// `PyErr_SetObject`.
    pub set_object: *mut c_void,
    /// `PyErr_SetString`.
    pub set_string: *mut c_void,
    /// `PyErr_Occurred`.
    pub err_occurred: *mut c_void,
    /// `PyErr_Fetch`.
    pub err_fetch: *mut c_void,
    /// `PyErr_Restore`.
    pub err_restore: *mut c_void,
    /// `PyErr_NormalizeException`.
    pub err_normalize: *mut c_void,
    /// `PyException_SetTraceback`.
    pub exception_set_traceback: *mut c_void,
    /// `PyErr_GivenExceptionMatches`.
    pub given_exception_matches: *mut c_void,
    /// `PyBytes_FromStringAndSize`.
    pub bytes_from: *mut c_void,
    /// `PyLong_FromLong`.
    pub long_from: *mut c_void,
    /// `PyBool_FromLong`.
    pub bool_from: *mut c_void,
    /// `PyLong_FromSsize_t`.
    pub long_from_ssize: *mut c_void,
    /// `PyLong_FromUnsignedLongLong`.
    pub long_from_u64: *mut c_void,
    /// `PyLong_AsLong`.
    pub long_as_long: *mut c_void,
    /// `PyLong_AsUnsignedLongLong`.
    pub long_as_u64: *mut c_void,
    /// `PyFloat_AsDouble`.
    pub float_as_double: *mut c_void,
    /// `PyObject_IsTrue`.
    pub object_is_true: *mut c_void,
    /// `PyCallable_Check`.
    pub callable_check: *mut c_void,
    /// `PyTuple_Size`.
    pub tuple_size: *mut c_void,
    /// `PyTuple_Pack`.
    pub tuple_pack: *mut c_void,
    /// `PyTuple_GetSlice`.
    pub tuple_get_slice: *mut c_void,
    /// `PyTuple_GetItem`.
    pub tuple_get_item: *mut c_void,
    /// `PyUnicode_CompareWithASCIIString`.
    pub unicode_eq_ascii: *mut c_void,
    /// `PyDict_Copy`.
    pub dict_copy: *mut c_void,
    /// `PyDict_Size`.
    pub dict_size: *mut c_void,
    /// `PyContext_CopyCurrent`.
    pub context_copy_current: *mut c_void,
    /// `PyContext_Enter`.
    pub context_enter: *mut c_void,
    /// `PyContext_Exit`.
    pub context_exit: *mut c_void,
    /// `PyObject_GetBuffer`.
    pub get_buffer: *mut c_void,
    /// `PyBuffer_Release`.
    pub release_buffer: *mut c_void,
    /// `PyType_FromSpec`.
    pub type_from_spec: *mut c_void,
    /// `PyType_GenericAlloc`.
    pub type_generic_alloc: *mut c_void,
    /// `PyType_GetSlot`.
    pub type_get_slot: *mut c_void,
    /// `PyObject_ClearWeakRefs`.
    pub clear_weakrefs: *mut c_void,
    /// `PyUnicode_FromFormat`.
    pub unicode_from_format: *mut c_void,
    /// `Py_GenericAlias`.
    pub generic_alias: *mut c_void,
    /// `PyCFunction_NewEx`.
    pub cfunction_new: *mut c_void,
    /// `PyThread_allocate_lock`.
    pub lock_allocate: *mut c_void,
    /// `PyThread_acquire_lock_timed`.
    pub lock_acquire_timed: *mut c_void,
    /// `PyThread_release_lock`.
    pub lock_release: *mut c_void,
    /// `PyThread_free_lock`.
    pub lock_free: *mut c_void,
    /// `PyErr_CheckSignals`.
    pub check_signals: *mut c_void,
    /// `PyThreadState_Swap`.
    pub thread_state_swap: *mut c_void,
    /// `None`.
    pub none: *mut c_void,
    /// The binding's exception type for a receive from a closed, drained channel.
    pub exc_closed: *mut c_void,
    /// The binding's exception type for a park that is refused (Python entered from C on an M:N goroutine, or a ctypes callback on 3.11).
    pub exc_context: *mut c_void,
    /// `KeyboardInterrupt`.
    pub exc_keyboard_interrupt: *mut c_void,
    /// `SystemExit`.
    pub exc_system_exit: *mut c_void,
    /// `TypeError`.
    pub exc_type_error: *mut c_void,
    /// `ValueError`.
    pub exc_value_error: *mut c_void,
    /// `RuntimeError`.
    pub exc_runtime_error: *mut c_void,
    /// The binding's function (rc, kind) -> exception instance, for the errors the builtins raise.
    pub hook_error: *mut c_void,
    /// The binding's go(fn, *args, **kw) for callers that are not goroutines of a home.
    pub hook_go: *mut c_void,
}

/// A field of the binding's table as the type the runtime's table gives it.
///
/// # Safety
/// `T` is a pointer-sized type (a function or object pointer) and `p` a valid value
/// of it.
unsafe fn from_address<T: Copy>(p: *mut c_void) -> T {
    const { assert!(core::mem::size_of::<T>() == core::mem::size_of::<*mut c_void>()) };
    // SAFETY: our contract; the sizes match (checked at compile time above).
    unsafe { core::mem::transmute_copy(&p) }
}

/// The runtime's table from the binding's: None when a field is NULL.
///
/// # Safety
/// Every field of `a` is NULL or what its comment says.
unsafe fn load_api(a: &gr_py_api) -> Option<Api> {
    macro_rules! table {
        ($($f:ident),* $(,)?) => {
            Api {
                $($f: {
                    if a.$f.is_null() {
                        return None;
                    }
                    // SAFETY: our contract: the address of the function (with the
                    // signature the field's type gives) or object the field names.
                    unsafe { from_address(a.$f) }
                },)*
                carry_gil: cpython::swap_keeps_gil(a.version),
            }
        };
    }
    Some(table!(
        interp,
        thread_state_new,
        restore_thread,
        save_thread,
        thread_state_clear,
        thread_state_delete,
        call,
        incref,
        decref,
        write_unraisable,
        set_object,
        set_string,
        err_occurred,
        err_fetch,
        err_restore,
        err_normalize,
        exception_set_traceback,
        given_exception_matches,
        bytes_from,
        long_from,
        bool_from,
        long_from_ssize,
        long_from_u64,
        long_as_long,
        long_as_u64,
        float_as_double,
        object_is_true,
        callable_check,
        tuple_size,
        tuple_pack,
        tuple_get_slice,
        tuple_get_item,
        unicode_eq_ascii,
        dict_copy,
        dict_size,
        context_copy_current,
        context_enter,
        context_exit,
        get_buffer,
        release_buffer,
        type_from_spec,
        type_generic_alloc,
        type_get_slot,
        clear_weakrefs,
        unicode_from_format,
        generic_alias,
        cfunction_new,
        lock_allocate,
        lock_acquire_timed,
        lock_release,
        lock_free,
        check_signals,
        thread_state_swap,
        none,
        exc_closed,
        exc_context,
        exc_keyboard_interrupt,
        exc_system_exit,
        exc_type_error,
        exc_value_error,
        exc_runtime_error,
        hook_error,
        hook_go,
    ))
}

/// A home: the OS thread that calls gr_py_run and the Python goroutines pinned to it.
#[allow(non_camel_case_types)]
pub struct gr_py_home {
    _opaque: [u8; 0],
}

/// The home behind a handle, or None for NULL.
///
/// # Safety
/// `h` is NULL or a live home from gr_py_home_new, which outlives every use of the
/// returned reference.
#[inline(always)]
unsafe fn home_of<'a>(h: *const gr_py_home) -> Option<&'a PyHome> {
    // SAFETY: our contract: a non-null handle is a live PyHome (boxed by PyHome::new).
    unsafe { (h as *const PyHome).as_ref() }
}

/// A channel of `PyObject *` (8-byte elements), or None.
///
/// # Safety
/// `c` is NULL or a live channel from gr_chan_new, which outlives every use of the
/// returned reference.
#[inline(always)]
unsafe fn pychan<'a>(c: *const gr_chan) -> Option<&'a Chan> {
    // SAFETY: our contract: a non-null handle is a live channel (a Chan boxed by
    // gr_chan_new).
    unsafe { cpython::chan::of_handle(c as *const c_void) }
}

/// Hands the runtime the CPython API table (copied) and makes the builtins
/// (gr_py_builtin). Returns 0 (also when called again for the same interpreter),
/// -EINVAL (NULL, wrong size, an unsupported object size, a NULL field), -EALREADY
/// (already initialised for another interpreter), -ENOMEM (a builtin could not be
/// made: a Python exception is set). GIL held. Never parks.
///
/// # Safety
/// The GIL is held; `api` is NULL or points to a readable gr_py_api whose fields are
/// the running interpreter's functions and objects, as each field's comment says.
#[no_mangle]
pub unsafe extern "C" fn gr_py_init(api: *const gr_py_api) -> c_int {
    boundary("gr_py_init", || {
        // SAFETY: a non-null api points to a readable gr_py_api (our contract).
        let Some(a) = (unsafe { api.as_ref() }) else {
            return -libc::EINVAL;
        };
        if a.size != core::mem::size_of::<gr_py_api>() || a.object_size != cpython::OBJECT_HEAD_SIZE
        {
            return -libc::EINVAL;
        }
        // SAFETY: the fields are what their comments say (our contract).
        let Some(table) = (unsafe { load_api(a) }) else {
            return -libc::EINVAL;
        };
        // SAFETY: the GIL is held, and the entries are the running interpreter's
        // (our contract), each checked non-null.
        unsafe { cpython::install(table) }
    })
}

/// A new reference to a builtin function or type the runtime made for the binding
/// (src/cpython/mod.rs lists them by name: "go", "Goroutine", "sock_recv", "Lock",
/// ...). NULL with an exception set for an unknown name or NULL; NULL without one
/// before gr_py_init. GIL held. Never parks.
///
/// # Safety
/// The GIL is held; `name` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn gr_py_builtin(name: *const c_char) -> *mut c_void {
    boundary("gr_py_builtin", || {
        if name.is_null() || cpython::api().is_none() {
            if cpython::api().is_some() {
                // SAFETY: the GIL is held (our contract).
                unsafe { cpython::raise(-libc::EINVAL) };
            }
            return core::ptr::null_mut();
        }
        // SAFETY: the GIL is held and name a C string (our contract).
        unsafe {
            let f = cpython::builtin(core::ffi::CStr::from_ptr(name).to_bytes());
            if f.is_null() {
                cpython::raise(-libc::EINVAL);
            }
            f
        }
    })
}

/// Creates a home. NULL when out of memory. Never parks. Plain threads: yes.
#[no_mangle]
pub extern "C" fn gr_py_home_new() -> *mut gr_py_home {
    boundary("gr_py_home_new", || PyHome::new() as *mut gr_py_home)
}

/// Frees a home. Returns 0, -EBUSY (goroutines of it are alive: nothing is freed),
/// -EINVAL (NULL). Never parks.
///
/// # Safety
/// `h` is NULL or a home from gr_py_home_new that has not been freed. If this call
/// frees it, no other call on it is running then and none starts later.
#[no_mangle]
pub unsafe extern "C" fn gr_py_home_free(h: *mut gr_py_home) -> c_int {
    boundary("gr_py_home_free", || {
        if h.is_null() {
            return -libc::EINVAL;
        }
        // SAFETY: h is a live home from gr_py_home_new (our contract), not used again
        // if it is freed.
        unsafe { PyHome::free(h as *mut PyHome) }
    })
}

/// Number of the home's goroutines alive (0 for NULL). Never parks.
///
/// # Safety
/// `h` is NULL or a home from gr_py_home_new that has not been freed.
#[no_mangle]
pub unsafe extern "C" fn gr_py_home_alive(h: *const gr_py_home) -> usize {
    // SAFETY: h is NULL or a live home (our contract).
    unsafe { home_of(h) }.map_or(0, |h| h.alive())
}

/// Runs the home's goroutines on the calling thread for up to `slice_ns` (negative:
/// until none is left). Returns 0 when none is left, 1 when the slice ended (call
/// again, after letting the interpreter run signal handlers), -EDEADLK when every
/// goroutine is blocked for ever, -EBUSY (called from a goroutine, or while another
/// thread runs this home), -EINVAL (NULL, or no gr_py_init). Called through
/// `ctypes.CDLL` (the GIL released, the caller's thread state saved). Never parks:
/// plain threads only (while every goroutine of the home waits, the thread blocks).
///
/// # Safety
/// `h` is NULL or a home from gr_py_home_new that has not been freed.
#[no_mangle]
pub unsafe extern "C" fn gr_py_run(h: *mut gr_py_home, slice_ns: i64) -> c_int {
    boundary(
        "gr_py_run",
        AssertUnwindSafe(|| {
            // SAFETY: h is NULL or a live home (our contract).
            let Some(h) = (unsafe { home_of(h) }) else {
                return -libc::EINVAL;
            };
            if cpython::api().is_none() {
                return -libc::EINVAL;
            }
            h.run(slice_ns)
        }),
    )
}

/// Daemons of home `h` alive: goroutines started with GR_PY_SPAWN_DAEMON that have
/// not ended (0 for NULL). Never parks.
///
/// # Safety
/// `h` is NULL or a home from gr_py_home_new that has not been freed.
#[no_mangle]
pub unsafe extern "C" fn gr_py_home_daemons(h: *const gr_py_home) -> usize {
    // SAFETY: h is NULL or a live home (our contract).
    unsafe { home_of(h) }.map_or(0, |h| h.daemons())
}

/// The KeyboardInterrupt or SystemExit that ended a goroutine of home `h` (the first
/// one since the last call), which the caller takes over; a new reference to `None`
/// when there is none. NULL with an exception set for NULL. GIL held. Never parks.
///
/// # Safety
/// The GIL is held; `h` is NULL or a home from gr_py_home_new that has not been freed.
#[no_mangle]
pub unsafe extern "C" fn gr_py_home_take_fatal(h: *mut gr_py_home) -> *mut c_void {
    boundary("gr_py_home_take_fatal", || {
        let Some(api) = cpython::api() else {
            return core::ptr::null_mut();
        };
        // SAFETY: h is NULL or a live home, and the GIL is held (our contract).
        unsafe {
            let Some(h) = home_of(h) else {
                cpython::raise(-libc::EINVAL);
                return core::ptr::null_mut();
            };
            let e = h.take_fatal();
            if e.is_null() {
                (api.incref)(api.none);
                api.none
            } else {
                e
            }
        }
    })
}

/// gr_py_spawn flag: a daemon goroutine (gr.run does not wait for it).
pub const GR_PY_SPAWN_DAEMON: c_int = cpython::SPAWN_DAEMON as c_int;
/// gr_py_spawn flag: the goroutine gr.run starts, which stands for its thread.
pub const GR_PY_SPAWN_MAIN: c_int = cpython::SPAWN_MAIN as c_int;

/// Starts a Python goroutine on home `h` that calls `func(*args, **kw)` in a copy of
/// the caller's `contextvars` context, bound to `ctx` (it takes its own reference;
/// NULL: the calling goroutine's context, as gr_spawn); `flags` is 0 or
/// GR_PY_SPAWN_* values. The function and arguments stay referenced until the
/// goroutine ends. `name` (may be NULL) is copied. Returns its `Goroutine` handle (a new reference), or NULL with an
/// exception set (NULL arguments, no gr_py_init, out of memory). The goroutine runs
/// when the home's thread is in gr_py_run. GIL held. Never parks.
///
/// # Safety
/// The GIL is held; `h` is NULL or a home from gr_py_home_new that has not been freed;
/// `func` is NULL or a live object; `args` NULL or a tuple; `kw` NULL or a dict;
/// `name` NULL or a NUL-terminated string; `ctx` NULL or a context the caller holds
/// a reference to.
#[no_mangle]
pub unsafe extern "C" fn gr_py_spawn(
    h: *mut gr_py_home,
    func: *mut c_void,
    args: *mut c_void,
    kw: *mut c_void,
    name: *const c_char,
    flags: c_int,
    ctx: *mut gr_ctx,
) -> *mut c_void {
    boundary("gr_py_spawn", || {
        let Some(api) = cpython::api() else {
            return core::ptr::null_mut();
        };
        if h.is_null()
            || func.is_null()
            || args.is_null()
            || flags & !(GR_PY_SPAWN_DAEMON | GR_PY_SPAWN_MAIN) != 0
        {
            // SAFETY: the GIL is held (our contract).
            unsafe { cpython::raise(-libc::EINVAL) };
            return core::ptr::null_mut();
        }
        // SAFETY: our contract: the GIL is held, the home (non-null here) is live, the
        // objects live and of the types spawn takes; spawn takes over the references
        // given to it, so the caller's are duplicated first. An empty kw dict is
        // passed as none.
        unsafe {
            (api.incref)(args);
            let kw = if kw.is_null() || (api.dict_size)(kw) == 0 {
                core::ptr::null_mut()
            } else {
                (api.dict_copy)(kw)
            };
            let bind = (!ctx.is_null()).then_some(ctx as *const Ctx);
            cpython::spawn(h as *const PyHome, func, args, kw, name, flags as u32, bind)
        }
    })
}

/// Frees a channel of `PyObject *`, dropping the references of values still
/// buffered. Returns 0, -EBUSY (somebody waits on it: nothing is freed), -EINVAL.
/// GIL held. Never parks.
///
/// # Safety
/// The GIL is held; `c` is NULL or a channel from gr_chan_new that has not been freed,
/// and if its elements are 8 bytes, every value in it is a `PyObject *` sent by the
/// binding's `chan_send` or `select` builtins. If this call frees it, no other call on it is
/// running then (a call parked in it makes this one free nothing) and none starts
/// later.
#[no_mangle]
pub unsafe extern "C" fn gr_py_chan_free(c: *mut gr_chan) -> c_int {
    boundary(
        "gr_py_chan_free",
        AssertUnwindSafe(|| {
            // SAFETY: c is NULL or a live channel (our contract).
            let (Some(ch), Some(api)) = (unsafe { pychan(c) }, cpython::api()) else {
                return -libc::EINVAL;
            };
            if ch.has_waiters() {
                return -libc::EBUSY;
            }
            loop {
                let mut obj: *mut c_void = core::ptr::null_mut();
                // SAFETY: an 8-byte slot for a channel of 8-byte elements.
                if unsafe { ch.recv(&mut obj as *mut *mut c_void as *mut u8, false) } != 0 {
                    break;
                }
                // SAFETY: the GIL is held, and a buffered value is a PyObject* whose
                // reference is ours now (our contract).
                unsafe { (api.decref)(obj) };
            }
            // SAFETY: a live channel boxed by gr_chan_new that nobody waits on, and
            // the caller does not use it again (our contract).
            drop(unsafe { Box::from_raw(c as *mut Chan) });
            0
        }),
    )
}

/// gr_wg_wait for Python code: 0, -EPERM, -EINVAL. GIL held; released while waiting.
///
/// # Safety
/// The GIL is held; `wg` is NULL or a wait group from gr_wg_new that has not been
/// freed.
#[no_mangle]
pub unsafe extern "C" fn gr_py_wg_wait(wg: *mut super::sync::gr_wg) -> c_int {
    boundary(
        "gr_py_wg_wait",
        AssertUnwindSafe(|| {
            // SAFETY: a non-null wg is a live wait group boxed by gr_wg_new (our
            // contract).
            let Some(w) = (unsafe { (wg as *const WaitGroup).as_ref() }) else {
                return -libc::EINVAL;
            };
            // SAFETY: the GIL is held (our contract).
            unsafe { cpython::parked(|| w.wait()) }.unwrap_or_else(|e| e)
        }),
    )
}

/// gr_mutex_lock for Python code: 0, -EPERM, -EINVAL. GIL held; released while
/// waiting.
///
/// # Safety
/// The GIL is held; `m` is NULL or a mutex from gr_mutex_new that has not been freed.
#[no_mangle]
pub unsafe extern "C" fn gr_py_mutex_lock(m: *mut super::sync::gr_mutex) -> c_int {
    boundary(
        "gr_py_mutex_lock",
        AssertUnwindSafe(|| {
            // SAFETY: a non-null m is a live mutex boxed by gr_mutex_new (our
            // contract).
            let Some(mx) = (unsafe { (m as *const Mutex).as_ref() }) else {
                return -libc::EINVAL;
            };
            // SAFETY: the GIL is held (our contract).
            unsafe { cpython::parked(|| mx.lock()) }.unwrap_or_else(|e| e)
        }),
    )
}

/// Reports `value` (an exception instance of type `typ`) through sys.unraisablehook
/// as raised in `obj` ("Exception ignored in: obj"). Returns 0 or -EINVAL. GIL held.
/// Never parks.
///
/// # Safety
/// The GIL is held; `typ` and `value` are NULL or live objects (`value` an instance of
/// `typ`); `obj` is NULL or a live object.
#[no_mangle]
pub unsafe extern "C" fn gr_py_write_unraisable(
    typ: *mut c_void,
    value: *mut c_void,
    obj: *mut c_void,
) -> c_int {
    boundary("gr_py_write_unraisable", || {
        let Some(api) = cpython::api() else {
            return -libc::EINVAL;
        };
        if typ.is_null() || value.is_null() {
            return -libc::EINVAL;
        }
        // SAFETY: the GIL is held and the objects are live (our contract), typ and
        // value non-null here; WriteUnraisable clears the error it reports.
        unsafe {
            (api.set_object)(typ, value);
            (api.write_unraisable)(obj);
        }
        0
    })
}
