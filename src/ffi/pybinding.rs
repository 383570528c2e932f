//! Header section "Python": the exports the Python binding (`bindings/python`) calls
//! through ctypes. C programs have no use for them. See `src/cpython.rs` for the design.
//!
//! Conventions: a `PyObject *` is passed as `void *`. Functions marked "GIL held" are
//! called through `ctypes.PyDLL`; the ones that may park release the GIL themselves
//! around the park (and refuse with -EPERM where parking would corrupt CPython's
//! state). Functions returning an object return a new reference, or NULL with a
//! Python exception set (as `ctypes.py_object` return values expect).

use std::ffi::{c_char, c_int, c_long, c_void};
use std::panic::AssertUnwindSafe;

use super::boundary;
use super::sync::gr_chan;
use crate::cpython::{self, Api, PyHome, Task};
use crate::runtime::{netpoll, park, sched};
use crate::sync::chan::Chan;
use crate::sync::mutex::Mutex;
use crate::sync::select::{self, Case};
use crate::sync::waitgroup::WaitGroup;

/// The CPython C-API entry points and objects the runtime needs, filled by the binding
/// from `ctypes.pythonapi` and handed over once with gr_py_init. Every field must be
/// set.
#[repr(C)]
#[allow(non_camel_case_types)]
pub struct gr_py_api {
    /// sizeof(gr_py_api), checked by gr_py_init.
    pub size: usize,
    /// `PyInterpreterState_Get()` of the interpreter the goroutines run in.
    pub interp: *mut c_void,
    pub thread_state_new: Option<unsafe extern "C" fn(*mut c_void) -> *mut c_void>,
    pub eval_restore_thread: Option<unsafe extern "C" fn(*mut c_void)>,
    pub eval_save_thread: Option<unsafe extern "C" fn() -> *mut c_void>,
    pub thread_state_clear: Option<unsafe extern "C" fn(*mut c_void)>,
    pub thread_state_delete: Option<unsafe extern "C" fn(*mut c_void)>,
    pub object_call_object: Option<unsafe extern "C" fn(*mut c_void, *mut c_void) -> *mut c_void>,
    pub incref: Option<unsafe extern "C" fn(*mut c_void)>,
    pub decref: Option<unsafe extern "C" fn(*mut c_void)>,
    pub err_write_unraisable: Option<unsafe extern "C" fn(*mut c_void)>,
    pub err_set_object: Option<unsafe extern "C" fn(*mut c_void, *mut c_void)>,
    pub bytes_from_string_and_size:
        Option<unsafe extern "C" fn(*const c_char, isize) -> *mut c_void>,
    pub long_from_long: Option<unsafe extern "C" fn(c_long) -> *mut c_void>,
    /// `PyCFunction_NewEx`, for the builtins of gr_py_builtin.
    pub cfunction_new_ex:
        Option<unsafe extern "C" fn(*mut c_void, *mut c_void, *mut c_void) -> *mut c_void>,
    /// `None`.
    pub none: *mut c_void,
    /// Exception type raised by a receive from a closed, drained channel.
    pub exc_closed: *mut c_void,
    /// Exception type raised when a park is refused (Python entered from C on an M:N
    /// goroutine, or inside a ctypes callback on 3.11).
    pub exc_context: *mut c_void,
}

/// A home: the OS thread that calls gr_py_run and the Python goroutines pinned to it.
#[allow(non_camel_case_types)]
pub struct gr_py_home {
    _opaque: [u8; 0],
}

/// One Python goroutine's record (its result, and what its joiners wait on).
#[allow(non_camel_case_types)]
pub struct gr_py_task {
    _opaque: [u8; 0],
}

/// One case of gr_py_select.
#[repr(C)]
#[allow(non_camel_case_types)]
pub struct gr_py_case {
    /// A channel made by gr_chan_new(8, ...) (its elements are `PyObject *`).
    pub chan: *mut gr_chan,
    /// GR_SEND or GR_RECV.
    pub op: c_int,
    /// Output: 1 for the case that fired because its channel is closed.
    pub closed: c_int,
    /// GR_SEND: the object to send (borrowed). GR_RECV, output: the received object
    /// (a new reference, to be taken with gr_py_steal) for the case that fired.
    pub obj: *mut c_void,
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

/// The task behind a handle, or None for NULL.
///
/// # Safety
/// `t` is NULL or a task from gr_py_spawn whose handle reference is not released,
/// which outlives every use of the returned reference.
#[inline(always)]
unsafe fn task_of<'a>(t: *const gr_py_task) -> Option<&'a Task> {
    // SAFETY: our contract: a non-null handle is a live Task (the handle holds one
    // of its references).
    unsafe { (t as *const Task).as_ref() }
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
    unsafe { (c as *const Chan).as_ref() }.filter(|ch| ch.elem_size() == 8)
}

/// Hands the runtime the CPython API table (copied). Returns 0 (also when called
/// again for the same interpreter), -EINVAL (NULL, wrong size, a NULL field),
/// -EALREADY (already initialised for another interpreter). GIL held. Never parks.
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
        if a.size != core::mem::size_of::<gr_py_api>()
            || a.interp.is_null()
            || a.exc_closed.is_null()
            || a.exc_context.is_null()
            || a.none.is_null()
        {
            return -libc::EINVAL;
        }
        let (
            Some(thread_state_new),
            Some(restore_thread),
            Some(save_thread),
            Some(thread_state_clear),
            Some(thread_state_delete),
            Some(call_object),
            Some(incref),
            Some(decref),
            Some(write_unraisable),
            Some(set_object),
            Some(bytes_from),
            Some(long_from),
            Some(cfunction_new),
        ) = (
            a.thread_state_new,
            a.eval_restore_thread,
            a.eval_save_thread,
            a.thread_state_clear,
            a.thread_state_delete,
            a.object_call_object,
            a.incref,
            a.decref,
            a.err_write_unraisable,
            a.err_set_object,
            a.bytes_from_string_and_size,
            a.long_from_long,
            a.cfunction_new_ex,
        )
        else {
            return -libc::EINVAL;
        };
        let table = Api {
            interp: a.interp,
            thread_state_new,
            restore_thread,
            save_thread,
            thread_state_clear,
            thread_state_delete,
            call_object,
            incref,
            decref,
            write_unraisable,
            set_object,
            // SAFETY: the same ABI: `const char *` and `const uint8_t *` are passed
            // alike, and the function only reads the bytes.
            bytes_from: unsafe {
                core::mem::transmute::<
                    unsafe extern "C" fn(*const c_char, isize) -> *mut c_void,
                    unsafe extern "C" fn(*const u8, isize) -> *mut c_void,
                >(bytes_from)
            },
            long_from,
            // SAFETY: the same ABI: a `PyMethodDef *` is passed as a plain pointer,
            // and MethodDef is PyMethodDef's layout (repr(C)).
            cfunction_new: unsafe {
                core::mem::transmute::<
                    unsafe extern "C" fn(*mut c_void, *mut c_void, *mut c_void) -> *mut c_void,
                    unsafe extern "C" fn(
                        *mut cpython::MethodDef,
                        *mut c_void,
                        *mut c_void,
                    ) -> *mut c_void,
                >(cfunction_new)
            },
            none: a.none,
            exc_closed: a.exc_closed,
            exc_context: a.exc_context,
        };
        // SAFETY: the GIL is held, and the entries are the running interpreter's
        // (our contract), each checked non-null above.
        unsafe { cpython::install(table) }
    })
}

/// A builtin function object implemented by the runtime (a new reference), for calls
/// too hot for ctypes: 0 = `yield_()` (gr_py_yield, raising the binding's exceptions),
/// 1 = `self_id()` (gr_self).
/// NULL with an exception for an unknown one or before gr_py_init. GIL held. Never
/// parks.
///
/// # Safety
/// The GIL is held.
#[no_mangle]
pub unsafe extern "C" fn gr_py_builtin(which: c_int) -> *mut c_void {
    boundary("gr_py_builtin", || {
        // SAFETY: the GIL is held (our contract).
        let f = unsafe { cpython::builtin(which) };
        if f.is_null() {
            // SAFETY: the GIL is held (our contract).
            unsafe { cpython::raise(-libc::EINVAL) };
        }
        f
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

/// Starts a Python goroutine on home `h` that calls `callable()` with no arguments;
/// the callable stays referenced until the goroutine ends, and its return value is
/// kept for gr_py_task_result. `name` (may be NULL) is copied. Returns the task
/// handle as a positive integer (release it with gr_py_task_release), or a negative
/// errno value: -EINVAL (NULL home/callable, no gr_py_init), -ENOMEM, -EAGAIN.
/// The goroutine runs when the home's thread is in gr_py_run. GIL held. Never parks.
///
/// # Safety
/// The GIL is held; `h` is NULL or a home from gr_py_home_new that has not been freed;
/// `callable` is NULL or a live object; `name` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn gr_py_spawn(
    h: *mut gr_py_home,
    callable: *mut c_void,
    name: *const c_char,
) -> isize {
    boundary("gr_py_spawn", || {
        if h.is_null() || callable.is_null() {
            return -libc::EINVAL as isize;
        }
        // SAFETY: our contract: the GIL is held, the home (non-null here) is live, the
        // callable (non-null here) a live object, name NULL or a C string.
        match unsafe { cpython::spawn(h as *const PyHome, callable, name) } {
            Ok(t) => t as isize,
            Err(e) => e as isize,
        }
    })
}

/// The goroutine id of a task (as gr_self() returns inside it), or -EINVAL for NULL.
/// Never parks.
///
/// # Safety
/// `t` is NULL or a task from gr_py_spawn that has not been released.
#[no_mangle]
pub unsafe extern "C" fn gr_py_task_id(t: *const gr_py_task) -> i64 {
    // SAFETY: t is NULL or a live task (our contract).
    unsafe { task_of(t) }.map_or(-libc::EINVAL as i64, |t| t.id())
}

/// 1 once the task's goroutine has ended, else 0 (also for NULL). Never parks.
///
/// # Safety
/// `t` is NULL or a task from gr_py_spawn that has not been released.
#[no_mangle]
pub unsafe extern "C" fn gr_py_task_done(t: *const gr_py_task) -> c_int {
    // SAFETY: t is NULL or a live task (our contract).
    unsafe { task_of(t) }.map_or(0, |t| t.finished() as c_int)
}

/// Waits until the task's goroutine has ended, at most `timeout_ns` (negative: for
/// ever). Returns 0, -ETIMEDOUT, -EDEADLK (a goroutine joining itself), -EPERM (may
/// not park here), -EINVAL (NULL). GIL held; releases it while waiting.
///
/// # Safety
/// The GIL is held; `t` is NULL or a task from gr_py_spawn that has not been released.
#[no_mangle]
pub unsafe extern "C" fn gr_py_join(t: *const gr_py_task, timeout_ns: i64) -> c_int {
    boundary(
        "gr_py_join",
        // SAFETY: t is NULL or a live task, and the GIL is held (our contract).
        AssertUnwindSafe(|| match unsafe { task_of(t) } {
            None => -libc::EINVAL,
            // SAFETY: the GIL is held (our contract).
            Some(t) => unsafe { t.join(timeout_ns) },
        }),
    )
}

/// The value the task's callable returned (a new reference), or NULL with an
/// exception set when the goroutine has not ended or its call failed. GIL held.
/// Never parks.
///
/// # Safety
/// The GIL is held; `t` is NULL or a task from gr_py_spawn that has not been released.
#[no_mangle]
pub unsafe extern "C" fn gr_py_task_result(t: *const gr_py_task) -> *mut c_void {
    boundary(
        "gr_py_task_result",
        AssertUnwindSafe(|| {
            let Some(api) = cpython::api() else {
                return core::ptr::null_mut();
            };
            // SAFETY: t is NULL or a live task (our contract).
            let r = unsafe { task_of(t) }.map_or(core::ptr::null_mut(), |t| t.result());
            // SAFETY: the GIL is held (our contract); a non-null r is kept alive by
            // the task, which the caller's handle keeps alive.
            unsafe {
                if r.is_null() {
                    cpython::raise(-libc::EINVAL);
                } else {
                    (api.incref)(r);
                }
            }
            r
        }),
    )
}

/// Drops the binding's reference to a task (the goroutine keeps its own until it
/// ends). Returns 0 or -EINVAL (NULL). GIL held. Never parks.
///
/// # Safety
/// The GIL is held; `t` is NULL or a task from gr_py_spawn that has not been released,
/// and the caller does not use it again.
#[no_mangle]
pub unsafe extern "C" fn gr_py_task_release(t: *mut gr_py_task) -> c_int {
    boundary("gr_py_task_release", || {
        if t.is_null() {
            return -libc::EINVAL;
        }
        // SAFETY: our contract: the GIL is held, and t (non-null here) is a task whose
        // handle reference the caller gives up.
        unsafe { cpython::release(t as *mut Task) };
        0
    })
}

/// gr_yield for Python code. Returns 0, -EPERM (refused), -EINVAL (no gr_py_init).
/// GIL held; released while switched out.
///
/// # Safety
/// The GIL is held.
#[no_mangle]
pub unsafe extern "C" fn gr_py_yield() -> c_int {
    boundary("gr_py_yield", || {
        // SAFETY: the GIL is held (our contract).
        unsafe { cpython::parked(sched::yield_now) }.map_or_else(|e| e, |_| 0)
    })
}

/// gr_sleep for Python code. Returns 0, -EPERM, -EINVAL. GIL held; released while
/// asleep.
///
/// # Safety
/// The GIL is held.
#[no_mangle]
pub unsafe extern "C" fn gr_py_sleep(ns: i64) -> c_int {
    boundary("gr_py_sleep", || {
        // SAFETY: the GIL is held (our contract).
        unsafe { cpython::parked(|| park::sleep(ns)) }.unwrap_or_else(|e| e)
    })
}

/// gr_block_io for Python code: the ready mask, or -ETIMEDOUT, -EBADF, -EINVAL,
/// -ECANCELED, -EPERM. GIL held; released while waiting.
///
/// # Safety
/// The GIL is held.
#[no_mangle]
pub unsafe extern "C" fn gr_py_block_io(fd: c_int, events: c_int, timeout_ns: i64) -> c_int {
    boundary("gr_py_block_io", || {
        // SAFETY: the GIL is held (our contract).
        unsafe { cpython::parked(|| netpoll::block_io(fd, events, timeout_ns)) }
            .unwrap_or_else(|e| e)
    })
}

/// Sends `obj` on a channel of `PyObject *` (made by gr_chan_new(8, cap)); the channel
/// takes a reference, which moves to the receiver. `block` = 0: never waits
/// (-EAGAIN when it would). Returns 0, -EPIPE (closed), -EAGAIN, -EPERM, -EINVAL
/// (NULL, or not an 8-byte channel). GIL held; released while waiting.
///
/// # Safety
/// The GIL is held; `c` is NULL or a channel from gr_chan_new that has not been freed,
/// and if its elements are 8 bytes, every value in it is a `PyObject *` sent by
/// gr_py_chan_send or gr_py_select; `obj` is NULL or a live object.
#[no_mangle]
pub unsafe extern "C" fn gr_py_chan_send(c: *mut gr_chan, obj: *mut c_void, block: c_int) -> c_int {
    boundary(
        "gr_py_chan_send",
        AssertUnwindSafe(|| {
            // SAFETY: c is NULL or a live channel (our contract).
            let (Some(ch), Some(api)) = (unsafe { pychan(c) }, cpython::api()) else {
                return -libc::EINVAL;
            };
            if obj.is_null() {
                return -libc::EINVAL;
            }
            // SAFETY: the GIL is held for the reference counts and for parked, and obj
            // is live (our contract); the element is the 8-byte pointer on our stack,
            // valid while we wait, for a channel of 8-byte elements.
            unsafe {
                (api.incref)(obj);
                let p = &obj as *const *mut c_void as *const u8;
                let rc = if block != 0 {
                    cpython::parked(|| ch.send(p, true)).unwrap_or_else(|e| e)
                } else {
                    ch.send(p, false)
                };
                if rc != 0 {
                    (api.decref)(obj);
                }
                rc
            }
        }),
    )
}

/// Receives an object from a channel of `PyObject *`: a new reference, or NULL with
/// the binding's exception set (closed and drained: its closed-channel exception;
/// refused: its context exception). `block` = 0: never waits; returns a new reference
/// to `empty` when nothing is ready. GIL held; released while waiting.
///
/// # Safety
/// The GIL is held; `c` is NULL or a channel from gr_chan_new that has not been freed,
/// and if its elements are 8 bytes, every value in it is a `PyObject *` sent by
/// gr_py_chan_send or gr_py_select; `empty` is NULL or a live object.
#[no_mangle]
pub unsafe extern "C" fn gr_py_chan_recv(
    c: *mut gr_chan,
    block: c_int,
    empty: *mut c_void,
) -> *mut c_void {
    boundary(
        "gr_py_chan_recv",
        AssertUnwindSafe(|| {
            let Some(api) = cpython::api() else {
                return core::ptr::null_mut();
            };
            // SAFETY: c is NULL or a live channel (our contract).
            let Some(ch) = (unsafe { pychan(c) }) else {
                // SAFETY: the GIL is held (our contract).
                unsafe { cpython::raise(-libc::EINVAL) };
                return core::ptr::null_mut();
            };
            let mut obj: *mut c_void = core::ptr::null_mut();
            let p = &mut obj as *mut *mut c_void as *mut u8;
            // SAFETY: the element is the 8-byte slot on our stack, for a channel of
            // 8-byte elements; the GIL is held for parked (our contract).
            let rc = unsafe {
                if block != 0 {
                    cpython::parked(|| ch.recv(p, true)).unwrap_or_else(|e| e)
                } else {
                    ch.recv(p, false)
                }
            };
            // SAFETY: the GIL is held (our contract); a received value is a PyObject*
            // carrying its sender's reference (our contract), and empty is live.
            unsafe {
                match rc {
                    0 => obj,
                    r if r == -libc::EAGAIN && !empty.is_null() => {
                        (api.incref)(empty);
                        empty
                    }
                    r => {
                        cpython::raise(r);
                        core::ptr::null_mut()
                    }
                }
            }
        }),
    )
}

/// Frees a channel of `PyObject *`, dropping the references of values still
/// buffered. Returns 0, -EBUSY (somebody waits on it: nothing is freed), -EINVAL.
/// GIL held. Never parks.
///
/// # Safety
/// The GIL is held; `c` is NULL or a channel from gr_chan_new that has not been freed,
/// and if its elements are 8 bytes, every value in it is a `PyObject *` sent by
/// gr_py_chan_send or gr_py_select. If this call frees it, no other call on it is
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

/// gr_select over channels of `PyObject *`. Send cases send `obj` (the channel takes
/// a reference only if that case fires); the receive case that fires stores a new
/// reference in its `obj` (take it with gr_py_steal). Returns the index that fired
/// (its `closed` set to 1 if it fired because its channel is closed: nothing was
/// sent or received), -EAGAIN (`timeout_ns` 0 and nothing ready), -ETIMEDOUT,
/// -EPERM, -EINVAL (as gr_select, or a channel that is not 8-byte). GIL held;
/// released while waiting.
///
/// # Safety
/// The GIL is held; `cases` is NULL or points to `n` writable gr_py_case values, each
/// with a channel as gr_py_chan_send takes it, and for GR_SEND an `obj` that is NULL or
/// a live object.
#[no_mangle]
pub unsafe extern "C" fn gr_py_select(cases: *mut gr_py_case, n: usize, timeout_ns: i64) -> c_int {
    boundary(
        "gr_py_select",
        AssertUnwindSafe(|| {
            let Some(api) = cpython::api() else {
                return -libc::EINVAL;
            };
            if n > 0 && cases.is_null() {
                return -libc::EINVAL;
            }
            let pcs: &mut [gr_py_case] = if n == 0 {
                &mut []
            } else {
                // SAFETY: a non-null `cases` points to n writable cases (our contract).
                unsafe { core::slice::from_raw_parts_mut(cases, n) }
            };
            let mut slots: Vec<*mut c_void> = vec![core::ptr::null_mut(); n];
            for (i, c) in pcs.iter().enumerate() {
                // SAFETY: each case's channel is NULL or live (our contract).
                if unsafe { pychan(c.chan) }.is_none() || (c.op == select::SEND && c.obj.is_null())
                {
                    return -libc::EINVAL;
                }
                if c.op == select::SEND {
                    slots[i] = c.obj;
                }
            }
            let mut cs: Vec<Case> = pcs
                .iter()
                .zip(slots.iter_mut())
                .map(|(c, s)| Case {
                    chan: c.chan as *mut Chan,
                    op: c.op,
                    elem: s as *mut *mut c_void as *mut u8,
                    closed: 0,
                })
                .collect();
            // SAFETY: the GIL is held and send objects are live (our contract); sends
            // carry a reference each while we wait. The channels are live with 8-byte
            // elements (checked above) and each elem is a slot of `slots`, alive
            // across the select.
            unsafe {
                for c in pcs.iter() {
                    if c.op == select::SEND {
                        (api.incref)(c.obj);
                    }
                }
                let rc =
                    cpython::parked(|| select::select(&mut cs, timeout_ns)).unwrap_or_else(|e| e);
                for (i, c) in pcs.iter_mut().enumerate() {
                    let fired = rc >= 0 && i == rc as usize;
                    c.closed = if fired { cs[i].closed } else { 0 };
                    if c.op == select::SEND {
                        if !fired || cs[i].closed != 0 {
                            (api.decref)(c.obj);
                        }
                    } else if fired && cs[i].closed == 0 {
                        c.obj = slots[i];
                    } else {
                        c.obj = core::ptr::null_mut();
                    }
                }
                rc
            }
        }),
    )
}

/// Returns `obj` as a new reference the caller takes over (for the `obj` of a
/// gr_py_case that received: ctypes' `py_object` result adopts it). NULL with an
/// exception for NULL. GIL held. Never parks.
///
/// # Safety
/// The GIL is held.
#[no_mangle]
pub unsafe extern "C" fn gr_py_steal(obj: *mut c_void) -> *mut c_void {
    if obj.is_null() {
        // SAFETY: the GIL is held (our contract).
        unsafe { cpython::raise(-libc::EINVAL) };
    }
    obj
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

/// Reads up to `n` bytes from `fd` (made non-blocking), parking until some arrive.
/// Returns a new `bytes` (empty at end of file), or a new `int` holding a negative
/// errno value (-ECANCELED when gr_close'd meanwhile, -EPERM when refused, ...).
/// GIL held; released while waiting.
///
/// # Safety
/// The GIL is held.
#[no_mangle]
pub unsafe extern "C" fn gr_py_recv(fd: c_int, n: usize) -> *mut c_void {
    boundary("gr_py_recv", || {
        let Some(api) = cpython::api() else {
            return core::ptr::null_mut();
        };
        let mut stack = [0u8; 4096];
        // Not zeroed: recv(65536) is the common call, and read(2) writes what it returns.
        let mut heap: Vec<u8> = Vec::new();
        let (p, len) = if n <= stack.len() {
            (stack.as_mut_ptr(), n)
        } else {
            let len = n.min(isize::MAX as usize / 2);
            heap.reserve_exact(len);
            (heap.as_mut_ptr(), len)
        };
        // SAFETY: the GIL is held (our contract); p is writable for len bytes (the
        // stack array, or the reserved capacity of heap), alive across the call.
        let r =
            unsafe { cpython::parked(|| netpoll::read(fd, p, len)) }.unwrap_or_else(|e| e as isize);
        // SAFETY: the GIL is held (our contract); p holds r bytes when r >= 0.
        unsafe {
            if r >= 0 {
                (api.bytes_from)(p, r)
            } else {
                (api.long_from)(r as c_long)
            }
        }
    })
}

/// Writes up to `n` bytes to `fd` (made non-blocking), parking while it would block;
/// `all` != 0: until all are written. Returns the byte count, or a negative errno
/// value (-EPIPE, -ECONNRESET, -EPERM, ...; with `all`, an error after a partial
/// write is returned too). GIL held (the buffer belongs to a Python object the caller
/// keeps alive); released while waiting.
///
/// # Safety
/// The GIL is held; `data` is NULL or points to `n` readable bytes, which stay valid
/// until the call returns.
#[no_mangle]
pub unsafe extern "C" fn gr_py_send(fd: c_int, data: *const c_void, n: usize, all: c_int) -> isize {
    boundary("gr_py_send", || {
        if data.is_null() && n > 0 {
            return -libc::EINVAL as isize;
        }
        let p = data as *const u8;
        let send = || {
            let mut done = 0usize;
            loop {
                // SAFETY: data is readable for n bytes (our contract; NULL only with
                // n = 0), so p + done .. p + n is too, as done <= n.
                let r = unsafe { netpoll::write(fd, p.add(done), n - done) };
                if r < 0 {
                    return r;
                }
                done += r as usize;
                if all == 0 || done >= n {
                    return done as isize;
                }
            }
        };
        // SAFETY: the GIL is held (our contract).
        unsafe { cpython::parked(send) }.unwrap_or_else(|e| e as isize)
    })
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
