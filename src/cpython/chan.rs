//! Channels of Python objects: a send and a receive on a channel of `PyObject *`
//! (8-byte elements), once for both ways in: the C exports `gr_py_chan_send` and
//! `gr_py_chan_recv` (src/ffi/pybinding.rs) and the builtins `chan_send` and
//! `chan_recv`, which `goroutine.Chan` calls.
//!
//! Why builtins: a ctypes call converts each argument through Python-level type
//! objects and costs about a microsecond; a channel round trip between two Python
//! goroutines made four of them (bench/python/RESULTS.md). The builtins take the
//! channel's handle as the int `goroutine.Chan` keeps.
//!
//! A sent object's reference moves into the channel and on to the receiver, so a
//! value is never dropped on the way: a send that fails gives its reference back.

use core::ffi::{c_int, c_long, c_void};
use core::ptr;

use super::io::arity;
use super::{method, parked, py_entry, raise, Api, MethodDef, PyObj, Static, METH_FASTCALL};
use crate::sync::chan::Chan;

static DEFS: Static<[MethodDef; 2]> = Static::new([
    method(
        c"chan_send",
        py_chan_send as *const c_void,
        METH_FASTCALL,
        c"chan_send(handle, obj, block)\n--\n\ngr_py_chan_send for Python: 0, or a negative errno value (-EPIPE closed, -EAGAIN would wait, -EPERM refused).",
    ),
    method(
        c"chan_recv",
        py_chan_recv as *const c_void,
        METH_FASTCALL,
        c"chan_recv(handle, block, empty)\n--\n\ngr_py_chan_recv for Python: the object received, `empty` when block is 0 and nothing is ready; raises the binding's closed-channel exception when closed and drained.",
    ),
]);

/// The builtin function called `name` of this file, if any.
pub(super) fn function(name: &str) -> Option<*mut MethodDef> {
    let i = match name {
        "chan_send" => 0,
        "chan_recv" => 1,
        _ => return None,
    };
    // SAFETY: an element of the static table; CPython only reads it.
    Some(unsafe { (DEFS.get() as *mut MethodDef).add(i) })
}

/// A channel of `PyObject *` (8-byte elements), or None.
///
/// # Safety
/// `c` is null or a live channel (a `Chan` boxed by gr_chan_new) that outlives the
/// returned reference.
pub unsafe fn of_handle<'a>(c: *const c_void) -> Option<&'a Chan> {
    // SAFETY: our contract.
    unsafe { (c as *const Chan).as_ref() }.filter(|ch| ch.elem_size() == 8)
}

/// Sends `obj` (the channel takes a reference, which moves to the receiver);
/// `block` false: never waits (-EAGAIN when it would). 0 or a negative errno value.
///
/// # Safety
/// The GIL is held; every value in `ch` is a `PyObject *` sent by this function (or
/// `gr_py_select`); `obj` is a live object.
pub unsafe fn send(api: &Api, ch: &Chan, obj: *mut PyObj, block: bool) -> c_int {
    // SAFETY: our contract: the GIL is held for the reference counts and for parked;
    // the element is the 8-byte pointer on our stack, valid while we wait.
    unsafe {
        (api.incref)(obj);
        let p = &obj as *const *mut PyObj as *const u8;
        let rc = if block {
            parked(|| ch.send(p, true)).unwrap_or_else(|e| e)
        } else {
            ch.send(p, false)
        };
        if rc != 0 {
            (api.decref)(obj);
        }
        rc
    }
}

/// Receives an object: a new reference, or null with the binding's exception set
/// (closed and drained: its closed-channel exception; refused: its context
/// exception). `block` false: never waits; a new reference to `empty` when nothing
/// is ready (with a null `empty`, the binding's context exception instead).
///
/// # Safety
/// As `send`; `empty` is null or a live object.
pub unsafe fn recv(api: &Api, ch: &Chan, block: bool, empty: *mut PyObj) -> *mut PyObj {
    let mut obj: *mut PyObj = ptr::null_mut();
    let p = &mut obj as *mut *mut PyObj as *mut u8;
    // SAFETY: our contract; the element is the 8-byte slot on our stack.
    unsafe {
        let rc = if block {
            parked(|| ch.recv(p, true)).unwrap_or_else(|e| e)
        } else {
            ch.recv(p, false)
        };
        match rc {
            0 => obj,
            r if r == -libc::EAGAIN && !empty.is_null() => {
                (api.incref)(empty);
                empty
            }
            r => {
                raise(r);
                ptr::null_mut()
            }
        }
    }
}

/// The channel a builtin's handle argument names, or None with a Python exception
/// set (not an int, or not a channel of objects).
///
/// # Safety
/// The GIL is held; `o` is a live object, and if it is an int it is a live channel's
/// handle (the binding passes `Chan._c`).
unsafe fn handle_arg<'a>(api: &Api, o: *mut PyObj) -> Option<&'a Chan> {
    // SAFETY: our contract.
    unsafe {
        let h = (api.long_as_u64)(o);
        if h == u64::MAX && !(api.err_occurred)().is_null() {
            return None;
        }
        let ch = of_handle(h as usize as *const c_void);
        if ch.is_none() {
            raise(-libc::EINVAL);
        }
        ch
    }
}

/// A builtin's channel (argument 0) and `block` flag (argument `block_at`), out of
/// its three arguments; None with a Python exception set.
///
/// # Safety
/// As for a METH_FASTCALL builtin: the GIL is held, `args` holds `nargs` live objects.
unsafe fn chan_args<'a>(
    api: &Api,
    args: *const *mut PyObj,
    nargs: isize,
    block_at: usize,
) -> Option<(&'a Chan, bool)> {
    // SAFETY: our contract; arity checked before the arguments are read.
    unsafe {
        if !arity(api, nargs, 3) {
            return None;
        }
        let ch = handle_arg(api, *args)?;
        let block = (api.object_is_true)(*args.add(block_at));
        (block >= 0).then_some((ch, block != 0))
    }
}

/// `chan_send(handle, obj, block)`.
///
/// # Safety
/// As for a METH_FASTCALL builtin: the GIL is held, `args` holds `nargs` live objects.
unsafe extern "C" fn py_chan_send(
    _self: *mut PyObj,
    args: *const *mut PyObj,
    nargs: isize,
) -> *mut PyObj {
    py_entry("chan_send", |api| {
        // SAFETY: our contract.
        unsafe {
            match chan_args(api, args, nargs, 2) {
                Some((ch, block)) => (api.long_from)(send(api, ch, *args.add(1), block) as c_long),
                None => ptr::null_mut(),
            }
        }
    })
}

/// `chan_recv(handle, block, empty)`.
///
/// # Safety
/// As `py_chan_send`.
unsafe extern "C" fn py_chan_recv(
    _self: *mut PyObj,
    args: *const *mut PyObj,
    nargs: isize,
) -> *mut PyObj {
    py_entry("chan_recv", |api| {
        // SAFETY: our contract.
        unsafe {
            match chan_args(api, args, nargs, 1) {
                Some((ch, block)) => recv(api, ch, block, *args.add(2)),
                None => ptr::null_mut(),
            }
        }
    })
}
