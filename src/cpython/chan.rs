//! Channels of Python objects: the builtins `chan_send`, `chan_recv` and `select`
//! over channels of `PyObject *` (made by gr_chan_new(8, cap); a gr_timer's channel of
//! `int64_t` in a select's `RECV_INT64` case), which `goroutine.Chan`,
//! `goroutine.select` and the timers' channels call.
//!
//! Why builtins: they were C exports called through ctypes, which converts each
//! argument through Python-level type objects. A channel round trip between two
//! Python goroutines made four such calls and took 2,103 ns, against 366 ns with the
//! builtins; a select built a ctypes array of cases field by field (medians of
//! interleaved pairs, bench/python/RESULTS.md). The builtins take a channel's handle
//! as the int `goroutine.Chan` keeps, and a select's cases as the tuples
//! `goroutine._Case` is.
//!
//! A sent object's reference moves into the channel and on to the receiver, so a
//! value is never dropped on the way: a send that fails gives its reference back.

use core::ffi::{c_int, c_long, c_void};
use core::ptr;

use super::io::{arity, int, long_arg};
use super::{method, none, parked, py_entry, raise, Api, MethodDef, PyObj, Static, METH_FASTCALL};
use crate::sync::chan::Chan;
use crate::sync::select::{self, Case};

/// `ObjCase::op`: receive from a channel of `int64_t` (a gr_timer's), the value
/// handed back as a new Python `int` in `obj` (`goroutine._timer.RECV_INT64`).
const RECV_INT64: c_int = 0x100 | select::RECV;

/// One case of `select`.
struct ObjCase {
    /// A channel of `PyObject *` (of `int64_t` for `RECV_INT64`).
    chan: *mut c_void,
    /// `select::SEND`, `select::RECV` or `RECV_INT64`.
    op: c_int,
    /// Output: 1 for the case that fired because its channel is closed.
    closed: c_int,
    /// SEND: the object to send (borrowed). Output, for the receive that fired: the
    /// object received (a new reference).
    obj: *mut c_void,
}

static DEFS: Static<[MethodDef; 3]> = Static::new([
    method(
        c"chan_send",
        py_chan_send as *const c_void,
        METH_FASTCALL,
        c"chan_send(handle, obj, block)\n--\n\nSends obj on a channel of objects (block 0: never waits): 0, or a negative errno value (-EPIPE closed, -EAGAIN would wait, -EPERM refused).",
    ),
    method(
        c"chan_recv",
        py_chan_recv as *const c_void,
        METH_FASTCALL,
        c"chan_recv(handle, block, empty)\n--\n\nReceives from a channel of objects: the object received, `empty` when block is 0 and nothing is ready; raises the binding's closed-channel exception when closed and drained.",
    ),
    method(
        c"select",
        py_select as *const c_void,
        METH_FASTCALL,
        c"select(cases, timeout_ns)\n--\n\ngr_select for Python over a tuple of cases, each a tuple (handle, op, value, ...): (index, closed, value received or None) for the case that fired, else a negative errno value (-EAGAIN, -ETIMEDOUT, -EPERM, -EINVAL).",
    ),
]);

/// The builtin function called `name` of this file, if any.
pub(super) fn function(name: &str) -> Option<*mut MethodDef> {
    let i = match name {
        "chan_send" => 0,
        "chan_recv" => 1,
        "select" => 2,
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
/// `select`); `obj` is a live object.
unsafe fn send(api: &Api, ch: &Chan, obj: *mut PyObj, block: bool) -> c_int {
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
unsafe fn recv(api: &Api, ch: &Chan, block: bool, empty: *mut PyObj) -> *mut PyObj {
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

/// gr_select over channels of objects: send cases send `obj` (the channel takes a
/// reference only if that case fires); the receive case that fires gets a new
/// reference in its `obj` (a new `int` for `RECV_INT64`; null with an exception set
/// if none could be made). The index that fired (its `closed` set to 1 if it fired
/// because its channel is closed: nothing was sent or received), or -EAGAIN
/// (`timeout_ns` 0 and nothing ready), -ETIMEDOUT, -EPERM, -EINVAL (as gr_select, or
/// a channel that is not one of objects, or a send without an object).
///
/// # Safety
/// The GIL is held; each case's channel is null or live, and its values are objects
/// (`int64_t` for `RECV_INT64`); a send's `obj` is null or a live object.
unsafe fn select(api: &Api, cases: &mut [ObjCase], timeout_ns: i64) -> c_int {
    let mut slots: Vec<*mut c_void> = vec![ptr::null_mut(); cases.len()];
    for (c, s) in cases.iter().zip(slots.iter_mut()) {
        // SAFETY: each case's channel is null or live (our contract).
        if unsafe { of_handle(c.chan) }.is_none() || (c.op == select::SEND && c.obj.is_null()) {
            return -libc::EINVAL;
        }
        if c.op == select::SEND {
            *s = c.obj;
        }
    }
    let mut cs: Vec<Case> = cases
        .iter()
        .zip(slots.iter_mut())
        .map(|(c, s)| Case {
            chan: c.chan as *mut Chan,
            op: if c.op == RECV_INT64 {
                select::RECV
            } else {
                c.op
            },
            elem: s as *mut *mut c_void as *mut u8,
            closed: 0,
        })
        .collect();
    // SAFETY: the GIL is held and send objects are live (our contract); sends carry a
    // reference each while we wait. The channels are live with 8-byte elements
    // (checked above) and each elem is a slot of `slots`, alive across the select.
    unsafe {
        for c in cases.iter() {
            if c.op == select::SEND {
                (api.incref)(c.obj);
            }
        }
        let rc = parked(|| select::select(&mut cs, timeout_ns)).unwrap_or_else(|e| e);
        for (i, c) in cases.iter_mut().enumerate() {
            let fired = rc >= 0 && i == rc as usize;
            c.closed = if fired { cs[i].closed } else { 0 };
            if c.op == select::SEND {
                if !fired || cs[i].closed != 0 {
                    (api.decref)(c.obj);
                }
            } else if fired && cs[i].closed == 0 && c.op == RECV_INT64 {
                // The slot holds the channel's int64_t.
                c.obj = (api.long_from)(slots[i] as i64 as c_long);
            } else if fired && cs[i].closed == 0 {
                c.obj = slots[i];
            } else {
                c.obj = ptr::null_mut();
            }
        }
        rc
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
                Some((ch, block)) => int(api, send(api, ch, *args.add(1), block) as i64),
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

/// One case of the `select` builtin, out of its tuple `(handle, op, value, ...)`
/// (`goroutine._Case`); None with a TypeError set for anything else.
///
/// # Safety
/// The GIL is held; `item` is a live object, and a tuple's handle is a live
/// channel's (the binding's `_Case` holds the channel).
unsafe fn case_of(api: &Api, item: *mut PyObj) -> Option<ObjCase> {
    // SAFETY: our contract; items read only after the size is known to be right.
    unsafe {
        if (api.tuple_size)(item) < 3 {
            // Replaces the SystemError PyTuple_Size raises for a non-tuple.
            (api.set_string)(
                api.exc_type_error,
                c"select cases come from recv_case() and send_case()".as_ptr(),
            );
            return None;
        }
        let h = (api.long_as_u64)((api.tuple_get_item)(item, 0));
        if h == u64::MAX && !(api.err_occurred)().is_null() {
            return None;
        }
        let op = long_arg(api, (api.tuple_get_item)(item, 1))? as c_int;
        Some(ObjCase {
            chan: h as usize as *mut c_void,
            op,
            closed: 0,
            obj: if op == select::SEND {
                (api.tuple_get_item)(item, 2)
            } else {
                ptr::null_mut()
            },
        })
    }
}

/// `select(cases, timeout_ns)`.
///
/// # Safety
/// As `py_chan_send`.
unsafe extern "C" fn py_select(
    _self: *mut PyObj,
    args: *const *mut PyObj,
    nargs: isize,
) -> *mut PyObj {
    py_entry("select", |api| {
        // SAFETY: our contract; the cases tuple (and so each case's channel and send
        // value) stays alive across the call: the caller holds it.
        unsafe {
            if !arity(api, nargs, 2) {
                return ptr::null_mut();
            }
            let n = (api.tuple_size)(*args);
            if n < 0 {
                return ptr::null_mut();
            }
            let Some(timeout_ns) = long_arg(api, *args.add(1)) else {
                return ptr::null_mut();
            };
            let mut cases = Vec::with_capacity(n as usize);
            for i in 0..n {
                match case_of(api, (api.tuple_get_item)(*args, i)) {
                    Some(c) => cases.push(c),
                    None => return ptr::null_mut(),
                }
            }
            let rc = select(api, &mut cases, timeout_ns);
            if rc < 0 {
                return int(api, rc as i64);
            }
            let c = &cases[rc as usize];
            let value = if c.op == select::SEND || c.closed != 0 {
                none(api)
            } else if c.obj.is_null() {
                return ptr::null_mut(); // RECV_INT64 and no int could be made
            } else {
                c.obj
            };
            let closed = (api.bool_from)(c.closed as c_long);
            let index = int(api, rc as i64);
            let r = if index.is_null() || closed.is_null() {
                ptr::null_mut() // out of memory: the exception is set
            } else {
                (api.tuple_pack)(3, index, closed, value)
            };
            for o in [index, closed, value] {
                if !o.is_null() {
                    (api.decref)(o);
                }
            }
            r
        }
    })
}
