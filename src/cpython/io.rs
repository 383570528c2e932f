//! The builtins that wait: `yield_`, `self_id`, `sleep`, `block_io`, `wait_edge`,
//! `close_fd` (with `adopt_fd` and `disown_fd`, which say who closes an fd), and
//! the socket operations behind `goroutine.socket.socket` (`sock_recv`,
//! `sock_recv_into`, `sock_send`, `sock_sendall`).
//!
//! `sleep`, `block_io`, `wait_edge` and `close_fd` keep the contract of the C calls
//! they stand for (an int result, 0 or a negative errno value). The socket operations
//! raise what the standard socket methods raise (`OSError` by errno through the
//! binding's `hook_error`, `TimeoutError("timed out")`, `BlockingIOError` for a
//! non-blocking socket) and take the socket's timeout as seconds (None: none; 0.0:
//! non-blocking), so the Python method is a check and one call:
//!
//! - each operation is first tried with the GIL held (recv/send with MSG_DONTWAIT):
//!   on a ready socket that one system call is all;
//! - after EAGAIN the GIL is released and the goroutine parks until the fd's next
//!   readiness edge (`netpoll::wait_edge`, no poll(2) first: the EAGAIN was the
//!   check), then tries again; a timeout bounds the waits in all (`TimeoutError`),
//!   a timeout of 0 makes EAGAIN a `BlockingIOError`. A plain thread blocks in
//!   poll(2) instead of parking;
//! - a read that drained a TCP socket (adopted: `goroutine.socket` adopts each of
//!   its fds) makes the next read wait for the edge first (`read_into`).
//!
//! A read of up to 64 KiB lands in a per-thread buffer and is copied into an exact
//! `bytes` (no zeroed or oversized buffer per call: `recv(65536)` of 64 bytes makes a
//! 64-byte object); larger reads use a buffer of their own.

use core::cell::UnsafeCell;
use core::ffi::{c_int, c_long, c_void};
use core::ptr;

use super::{
    api, method, none, parked, py_entry, raise_rc, timeout_ns, Api, Buffer, MethodDef, PyObj,
    Static, METH_FASTCALL, METH_NOARGS, METH_O, PYBUF_SIMPLE, PYBUF_WRITABLE, RAISE_SOCKET,
};
use crate::runtime::lock::nanotime;
use crate::runtime::{netpoll, park, sched, sys};

static DEFS: Static<[MethodDef; 12]> = Static::new([
    method(
        c"yield_",
        py_yield as *const c_void,
        METH_NOARGS,
        c"yield_()\n--\n\nLets the other runnable goroutines run; returns when this one's turn comes.",
    ),
    method(
        c"self_id",
        py_self_id as *const c_void,
        METH_NOARGS,
        c"self_id()\n--\n\nThe calling goroutine's id, or 0 outside goroutines.",
    ),
    method(
        c"sleep",
        py_sleep as *const c_void,
        METH_O,
        c"sleep(ns)\n--\n\ngr_sleep for Python: 0, or a negative errno value (-EPERM: refused).",
    ),
    method(
        c"block_io",
        py_block_io as *const c_void,
        METH_FASTCALL,
        c"block_io(fd, events, timeout_ns)\n--\n\ngr_block_io for Python: the ready mask, or a negative errno value.",
    ),
    method(
        c"wait_edge",
        py_wait_edge as *const c_void,
        METH_FASTCALL,
        c"wait_edge(fd, events, timeout_ns)\n--\n\ngr_io_wait for Python: after EAGAIN, waits for the fd's next readiness edge (no poll first).\nThe directions of the edge, or a negative errno value.",
    ),
    method(
        c"close_fd",
        py_close_fd as *const c_void,
        METH_O,
        c"close_fd(fd)\n--\n\ngr_close: wakes the goroutines waiting on fd, then closes it. 0 or a negative errno value.",
    ),
    method(
        c"adopt_fd",
        py_adopt_fd as *const c_void,
        METH_O,
        c"adopt_fd(fd)\n--\n\ngr_io_adopt: fd, just made, will be closed only with close_fd; it stays registered with epoll between waits. 0 or a negative errno value.",
    ),
    method(
        c"disown_fd",
        py_disown_fd as *const c_void,
        METH_O,
        c"disown_fd(fd)\n--\n\nUndoes adopt_fd for an fd that leaves open (socket.detach): its next owner may close it with close(2). 0 or a negative errno value.",
    ),
    method(
        c"sock_recv",
        py_sock_recv as *const c_void,
        METH_FASTCALL,
        c"sock_recv(fd, bufsize, flags, timeout)\n--\n\nsocket.recv for goroutine sockets (see goroutine.socket).",
    ),
    method(
        c"sock_recv_into",
        py_sock_recv_into as *const c_void,
        METH_FASTCALL,
        c"sock_recv_into(fd, buffer, nbytes, flags, timeout)\n--\n\nsocket.recv_into for goroutine sockets.",
    ),
    method(
        c"sock_send",
        py_sock_send as *const c_void,
        METH_FASTCALL,
        c"sock_send(fd, data, flags, timeout)\n--\n\nsocket.send for goroutine sockets.",
    ),
    method(
        c"sock_sendall",
        py_sock_sendall as *const c_void,
        METH_FASTCALL,
        c"sock_sendall(fd, data, flags, timeout)\n--\n\nsocket.sendall for goroutine sockets.",
    ),
]);

/// The builtin function called `name` of this file, if any.
pub(super) fn function(name: &str) -> Option<*mut MethodDef> {
    let i = match name {
        "yield_" => 0,
        "self_id" => 1,
        "sleep" => 2,
        "block_io" => 3,
        "wait_edge" => 4,
        "close_fd" => 5,
        "adopt_fd" => 6,
        "disown_fd" => 7,
        "sock_recv" => 8,
        "sock_recv_into" => 9,
        "sock_send" => 10,
        "sock_sendall" => 11,
        _ => return None,
    };
    // SAFETY: an element of the static table; CPython only reads it.
    Some(unsafe { (DEFS.get() as *mut MethodDef).add(i) })
}

/// An int result as a Python int (a new reference).
///
/// # Safety
/// The GIL is held.
pub(super) unsafe fn int(api: &Api, v: i64) -> *mut PyObj {
    // SAFETY: our contract.
    unsafe { (api.long_from)(v as c_long) }
}

/// An argument as a C long; `None` with a Python exception set when it is not an int.
///
/// # Safety
/// The GIL is held; `o` is a live object.
pub(super) unsafe fn long_arg(api: &Api, o: *mut PyObj) -> Option<c_long> {
    // SAFETY: our contract.
    unsafe {
        let v = (api.long_as_long)(o);
        if v == -1 && !(api.err_occurred)().is_null() {
            None
        } else {
            Some(v)
        }
    }
}

/// Fails with a TypeError unless `nargs` is `want`.
///
/// # Safety
/// The GIL is held.
pub(super) unsafe fn arity(api: &Api, nargs: isize, want: isize) -> bool {
    if nargs == want {
        return true;
    }
    // SAFETY: our contract; the exception type is alive for good.
    unsafe { (api.set_string)(api.exc_type_error, c"wrong number of arguments".as_ptr()) };
    false
}

/// `yield_()`.
///
/// # Safety
/// Called by CPython as the builtin: the GIL is held and the arguments are what
/// the function's flags promise.
unsafe extern "C" fn py_yield(_self: *mut PyObj, _args: *mut PyObj) -> *mut PyObj {
    py_entry("yield_", |api| {
        // SAFETY: CPython calls builtins with the GIL held.
        unsafe {
            match parked(sched::yield_now) {
                Ok(()) => none(api),
                Err(e) => {
                    super::raise(e);
                    ptr::null_mut()
                }
            }
        }
    })
}

/// `self_id()`.
///
/// # Safety
/// Called by CPython as the builtin: the GIL is held and the arguments are what
/// the function's flags promise.
unsafe extern "C" fn py_self_id(_self: *mut PyObj, _args: *mut PyObj) -> *mut PyObj {
    py_entry("self_id", |api| {
        // SAFETY: CPython calls builtins with the GIL held.
        unsafe { int(api, sched::self_id()) }
    })
}

/// `sleep(ns)`: 0 or a negative errno value.
///
/// # Safety
/// Called by CPython as the builtin: the GIL is held and the arguments are what
/// the function's flags promise.
unsafe extern "C" fn py_sleep(_self: *mut PyObj, ns: *mut PyObj) -> *mut PyObj {
    py_entry("sleep", |api| {
        // SAFETY: CPython calls builtins with the GIL held, with a live argument.
        unsafe {
            let Some(ns) = long_arg(api, ns) else {
                return ptr::null_mut();
            };
            let rc = parked(|| park::sleep(ns)).unwrap_or_else(|e| e);
            int(api, rc as i64)
        }
    })
}

/// `block_io` and `wait_edge`: `(fd, events, timeout_ns)` to `wait`, parked, as an
/// int (its result or a negative errno value).
///
/// # Safety
/// As for a METH_FASTCALL builtin: the GIL is held, `args` holds `nargs` live
/// objects.
unsafe fn fd_wait(
    name: &str,
    args: *const *mut PyObj,
    nargs: isize,
    wait: fn(i32, i32, i64) -> i32,
) -> *mut PyObj {
    py_entry(name, |api| {
        // SAFETY: our contract.
        unsafe {
            if !arity(api, nargs, 3) {
                return ptr::null_mut();
            }
            let (Some(fd), Some(events), Some(ns)) = (
                long_arg(api, *args),
                long_arg(api, *args.add(1)),
                long_arg(api, *args.add(2)),
            ) else {
                return ptr::null_mut();
            };
            let rc = parked(|| wait(fd as i32, events as i32, ns)).unwrap_or_else(|e| e);
            int(api, rc as i64)
        }
    })
}

/// `block_io(fd, events, timeout_ns)`: the ready mask or a negative errno value.
///
/// # Safety
/// Called by CPython as the builtin: the GIL is held and the arguments are what
/// the function's flags promise.
unsafe extern "C" fn py_block_io(
    _self: *mut PyObj,
    args: *const *mut PyObj,
    nargs: isize,
) -> *mut PyObj {
    // SAFETY: our contract is fd_wait's.
    unsafe { fd_wait("block_io", args, nargs, netpoll::block_io) }
}

/// `wait_edge(fd, events, timeout_ns)`: the directions of the edge or a negative
/// errno value.
///
/// # Safety
/// Called by CPython as the builtin: the GIL is held and the arguments are what
/// the function's flags promise.
unsafe extern "C" fn py_wait_edge(
    _self: *mut PyObj,
    args: *const *mut PyObj,
    nargs: isize,
) -> *mut PyObj {
    // SAFETY: our contract is fd_wait's.
    unsafe { fd_wait("wait_edge", args, nargs, netpoll::wait_edge) }
}

/// `close_fd(fd)`: 0 or a negative errno value.
///
/// # Safety
/// Called by CPython as the builtin: the GIL is held and the arguments are what
/// the function's flags promise.
unsafe extern "C" fn py_close_fd(_self: *mut PyObj, fd: *mut PyObj) -> *mut PyObj {
    // SAFETY: our contract is fd_call's.
    unsafe { fd_call("close_fd", fd, netpoll::close) }
}

/// `close_fd(fd)`, `adopt_fd(fd)` and `disown_fd(fd)`: `f(fd)` (`netpoll::close`,
/// `adopt` or `disown`), 0 or a negative errno value.
///
/// # Safety
/// The GIL is held; `fd` is a live object.
unsafe fn fd_call(name: &'static str, fd: *mut PyObj, f: fn(i32) -> i32) -> *mut PyObj {
    py_entry(name, |api| {
        // SAFETY: our contract.
        unsafe {
            let Some(fd) = long_arg(api, fd) else {
                return ptr::null_mut();
            };
            int(api, f(fd as c_int) as i64)
        }
    })
}

/// `adopt_fd(fd)`.
///
/// # Safety
/// Called by CPython as the builtin: the GIL is held and the arguments are what
/// the function's flags promise.
unsafe extern "C" fn py_adopt_fd(_self: *mut PyObj, fd: *mut PyObj) -> *mut PyObj {
    // SAFETY: our contract is fd_call's.
    unsafe { fd_call("adopt_fd", fd, netpoll::adopt) }
}

/// `disown_fd(fd)`.
///
/// # Safety
/// As `py_adopt_fd`.
unsafe extern "C" fn py_disown_fd(_self: *mut PyObj, fd: *mut PyObj) -> *mut PyObj {
    // SAFETY: our contract is fd_call's.
    unsafe { fd_call("disown_fd", fd, netpoll::disown) }
}

// ---------------------------------------------------------------------------------
// sockets

/// Reads of up to this many bytes use the per-thread buffer.
const RECV_BUF: usize = 64 << 10;

thread_local! {
    /// The per-thread read buffer (see the module docs). Used between a read and
    /// the copy that follows it, with no park in between, so the goroutines of a
    /// thread share it safely.
    static RECV_BUFFER: UnsafeCell<Vec<u8>> = const { UnsafeCell::new(Vec::new()) };
}

/// Runs `op` (a non-blocking socket call returning a count or a negative errno
/// value) until it does not say EAGAIN: first with the GIL held, so a ready socket
/// costs that one system call (unless `wait_first`: the caller knows it would say
/// EAGAIN, and a timeout of 0 is not allowed then); after each EAGAIN, with the GIL
/// released, it waits for the fd's next edge in `dir` (`netpoll::wait_edge`: no
/// poll(2) first, the EAGAIN was the check) and tries again, for at most
/// `timeout_ns` in all (negative: no limit; 0: -EAGAIN at once). -ETIMEDOUT when the
/// time is up; -EPERM when parking is refused; -ECANCELED when the fd is closed with
/// gr_close meanwhile.
///
/// # Safety
/// The GIL is held; `op` only makes the system call (it runs without the GIL after a
/// wait).
unsafe fn sock_call(
    fd: c_int,
    dir: i32,
    timeout_ns: i64,
    wait_first: bool,
    mut op: impl FnMut() -> isize,
) -> isize {
    let again = -(libc::EAGAIN as isize);
    if !wait_first {
        let r = op();
        if r != again || timeout_ns == 0 {
            return r;
        }
    }
    let deadline = if timeout_ns < 0 {
        i64::MAX
    } else {
        nanotime().saturating_add(timeout_ns)
    };
    let wait_and_retry = || loop {
        let left = if deadline == i64::MAX {
            -1
        } else {
            let left = deadline - nanotime();
            if left <= 0 {
                return -(libc::ETIMEDOUT as isize);
            }
            left
        };
        let w = netpoll::wait_edge(fd, dir, left);
        if w < 0 {
            return w as isize;
        }
        let r = op();
        if r != again {
            return r;
        }
    };
    // SAFETY: the GIL is held (our contract).
    unsafe { parked(wait_and_retry) }.unwrap_or_else(|e| e as isize)
}

/// A `recv(2)` that does not wait: the count, or a negative errno value.
///
/// # Safety
/// `buf` is writable for `n` bytes.
unsafe fn recv_now(fd: c_int, buf: *mut u8, n: usize, flags: c_int) -> isize {
    // SAFETY: our contract.
    unsafe { sys::recv(fd, buf, n, flags | libc::MSG_DONTWAIT) }
}

/// A `send(2)` that does not wait: the count, or a negative errno value.
///
/// # Safety
/// `buf` is readable for `n` bytes.
unsafe fn send_now(fd: c_int, buf: *const u8, n: usize, flags: c_int) -> isize {
    // SAFETY: our contract.
    unsafe { sys::send(fd, buf, n, flags | libc::MSG_DONTWAIT) }
}

/// Reads into `buf`: the count or a negative errno value.
///
/// A plain read (`flags` 0, so that nothing but a read consumes the queue) that
/// drained an adopted TCP socket is noted, and the next one waits for the socket's
/// edge before asking the kernel, as `gr_read` does (netpoll.rs, "A read that
/// drained a TCP socket"): an echo server's goroutine makes 2 system calls per
/// request instead of 3. Only where the wait parks; a plain thread would pay a
/// poll(2) for the recv it saves.
///
/// # Safety
/// The GIL is held; `buf` is writable for `n` bytes and stays so across the call
/// (which may park).
unsafe fn read_into(fd: c_int, buf: *mut u8, n: usize, flags: c_int, timeout_ns: i64) -> isize {
    let hinted = flags == 0 && timeout_ns != 0;
    let wait_first = hinted && netpoll::take_drained(fd) && !park::parkable_g().is_null();
    // SAFETY: our contract.
    let r = unsafe {
        sock_call(fd, netpoll::READ, timeout_ns, wait_first, || {
            recv_now(fd, buf, n, flags)
        })
    };
    if hinted && r > 0 && (r as usize) < n {
        netpoll::note_short_read(fd);
    }
    r
}

/// Writes from `buf`, once (`all` false: what fits, at least one byte) or until all
/// is written, within `timeout_ns` in all: the count or a negative errno value.
///
/// # Safety
/// The GIL is held; `buf` is readable for `n` bytes and stays so across the call
/// (which may park).
unsafe fn write_from(
    fd: c_int,
    buf: *const u8,
    n: usize,
    flags: c_int,
    timeout_ns: i64,
    all: bool,
) -> isize {
    let deadline = if timeout_ns < 0 {
        i64::MAX
    } else {
        nanotime().saturating_add(timeout_ns)
    };
    let mut done = 0usize;
    loop {
        let left = if timeout_ns <= 0 {
            timeout_ns
        } else {
            (deadline - nanotime()).max(1)
        };
        // SAFETY: our contract: buf + done .. buf + n stays readable.
        let r = unsafe {
            sock_call(fd, netpoll::WRITE, left, false, || {
                send_now(fd, buf.add(done), n - done, flags)
            })
        };
        if r < 0 {
            return r;
        }
        done += r as usize;
        if !all || done >= n {
            return done as isize;
        }
    }
}

/// The common arguments of the socket builtins: fd first, flags and timeout last.
///
/// # Safety
/// The GIL is held; `args` holds `nargs` live objects.
unsafe fn sock_args(
    api: &Api,
    args: *const *mut PyObj,
    nargs: isize,
    want: isize,
) -> Option<(c_int, c_int, i64)> {
    // SAFETY: our contract.
    unsafe {
        if !arity(api, nargs, want) {
            return None;
        }
        let fd = long_arg(api, *args)?;
        let flags = long_arg(api, *args.add(want as usize - 2))?;
        let timeout = timeout_ns(api, *args.add(want as usize - 1))?;
        Some((fd as c_int, flags as c_int, timeout))
    }
}

/// `sock_recv(fd, bufsize, flags, timeout)`: the bytes read.
///
/// # Safety
/// Called by CPython as the builtin: the GIL is held and the arguments are what
/// the function's flags promise.
unsafe extern "C" fn py_sock_recv(
    _self: *mut PyObj,
    args: *const *mut PyObj,
    nargs: isize,
) -> *mut PyObj {
    py_entry("sock_recv", |api| {
        // SAFETY: CPython calls a METH_FASTCALL builtin with the GIL held and nargs
        // live arguments; the buffer read into is the thread's (see RECV_BUFFER) or
        // a Vec of ours, each alive across the read.
        unsafe {
            let Some((fd, flags, timeout)) = sock_args(api, args, nargs, 4) else {
                return ptr::null_mut();
            };
            let Some(n) = long_arg(api, *args.add(1)) else {
                return ptr::null_mut();
            };
            if n < 0 {
                (api.set_string)(api.exc_value_error, c"negative buffersize in recv".as_ptr());
                return ptr::null_mut();
            }
            let n = n as usize;
            let mut own: Vec<u8> = Vec::new();
            let buf = if n <= RECV_BUF {
                RECV_BUFFER.with(|b| {
                    let b = &mut *b.get();
                    if b.capacity() < RECV_BUF {
                        b.reserve_exact(RECV_BUF);
                    }
                    b.as_mut_ptr()
                })
            } else {
                if own.try_reserve_exact(n).is_err() {
                    return raise_rc(-libc::ENOMEM, RAISE_SOCKET);
                }
                own.as_mut_ptr()
            };
            let r = read_into(fd, buf, n, flags, timeout);
            if r < 0 {
                return raise_rc(r as i32, RAISE_SOCKET);
            }
            (api.bytes_from)(buf, r)
        }
    })
}

/// `obj`'s buffer (writable if asked), or None with a Python exception set.
///
/// # Safety
/// The GIL is held; `obj` is a live object. The caller releases a returned buffer.
unsafe fn get_buffer(api: &Api, obj: *mut PyObj, writable: bool) -> Option<Buffer> {
    let mut view = Buffer::empty();
    let flags = if writable {
        PYBUF_WRITABLE
    } else {
        PYBUF_SIMPLE
    };
    // SAFETY: our contract; view is a valid Py_buffer to fill.
    if unsafe { (api.get_buffer)(obj, &mut view, flags) } < 0 {
        return None;
    }
    Some(view)
}

/// `sock_recv_into(fd, buffer, nbytes, flags, timeout)`: the count read.
///
/// # Safety
/// Called by CPython as the builtin: the GIL is held and the arguments are what
/// the function's flags promise.
unsafe extern "C" fn py_sock_recv_into(
    _self: *mut PyObj,
    args: *const *mut PyObj,
    nargs: isize,
) -> *mut PyObj {
    py_entry("sock_recv_into", |api| {
        // SAFETY: CPython calls a METH_FASTCALL builtin with the GIL held and nargs
        // live arguments; the buffer export pins the memory across the read and is
        // released on every path.
        unsafe {
            let Some((fd, flags, timeout)) = sock_args(api, args, nargs, 5) else {
                return ptr::null_mut();
            };
            let Some(nbytes) = long_arg(api, *args.add(2)) else {
                return ptr::null_mut();
            };
            if nbytes < 0 {
                (api.set_string)(
                    api.exc_value_error,
                    c"negative buffersize in recv_into".as_ptr(),
                );
                return ptr::null_mut();
            }
            let Some(mut view) = get_buffer(api, *args.add(1), true) else {
                return ptr::null_mut();
            };
            let n = if nbytes == 0 {
                view.len as usize
            } else {
                nbytes as usize
            };
            if n > view.len as usize {
                (api.release_buffer)(&mut view);
                (api.set_string)(
                    api.exc_value_error,
                    c"buffer too small for requested bytes".as_ptr(),
                );
                return ptr::null_mut();
            }
            let r = read_into(fd, view.buf as *mut u8, n, flags, timeout);
            (api.release_buffer)(&mut view);
            if r < 0 {
                return raise_rc(r as i32, RAISE_SOCKET);
            }
            (api.long_from_ssize)(r)
        }
    })
}

/// `send` (`all` false) and `sendall`.
///
/// # Safety
/// As for a METH_FASTCALL builtin: the GIL is held, `args` holds `nargs` live
/// objects.
unsafe fn send_common(args: *const *mut PyObj, nargs: isize, all: bool) -> *mut PyObj {
    let Some(api) = api() else {
        return ptr::null_mut();
    };
    // SAFETY: our contract; the buffer export pins the memory across the write and
    // is released on every path.
    unsafe {
        let Some((fd, flags, timeout)) = sock_args(api, args, nargs, 4) else {
            return ptr::null_mut();
        };
        let Some(mut view) = get_buffer(api, *args.add(1), false) else {
            return ptr::null_mut();
        };
        let r = write_from(
            fd,
            view.buf as *const u8,
            view.len as usize,
            flags,
            timeout,
            all,
        );
        (api.release_buffer)(&mut view);
        if r < 0 {
            return raise_rc(r as i32, RAISE_SOCKET);
        }
        if all {
            none(api)
        } else {
            (api.long_from_ssize)(r)
        }
    }
}

/// `sock_send(fd, data, flags, timeout)`: the count written.
///
/// # Safety
/// Called by CPython as the builtin: the GIL is held and the arguments are what
/// the function's flags promise.
unsafe extern "C" fn py_sock_send(
    _self: *mut PyObj,
    args: *const *mut PyObj,
    nargs: isize,
) -> *mut PyObj {
    // SAFETY: CPython calls a METH_FASTCALL builtin with the GIL held and nargs live
    // arguments (send_common's contract).
    crate::runtime::boundary::boundary("sock_send", || unsafe { send_common(args, nargs, false) })
}

/// `sock_sendall(fd, data, flags, timeout)`.
///
/// # Safety
/// Called by CPython as the builtin: the GIL is held and the arguments are what
/// the function's flags promise.
unsafe extern "C" fn py_sock_sendall(
    _self: *mut PyObj,
    args: *const *mut PyObj,
    nargs: isize,
) -> *mut PyObj {
    // SAFETY: as for py_sock_send.
    crate::runtime::boundary::boundary("sock_sendall", || unsafe { send_common(args, nargs, true) })
}
