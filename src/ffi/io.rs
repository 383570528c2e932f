//! Header section "time and I/O": sleeping, waiting on file descriptors through the
//! netpoller, the read/write/accept/connect/close wrappers, poll, blocking calls, and
//! the two calls an I/O layer of its own builds on (gr_io_wait, gr_io_adopt: what
//! libgoroutine_hook.so, the libc hook layer in hook/, uses).
//!
//! Timeouts are relative nanoseconds: negative waits for ever, 0 only polls, and huge
//! values saturate. Called from a plain thread, each of these simply blocks it.

use std::ffi::{c_int, c_void};

use super::boundary;
use super::core::gr_fn;
use crate::runtime::{netpoll, park, sanitizer, sched};

/// gr_block_io event bit: readable.
pub const GR_READ: c_int = 1;
/// gr_block_io event bit: writable.
pub const GR_WRITE: c_int = 2;

/// Sleeps at least `ns` nanoseconds (<= 0: just yields). Other goroutines run
/// meanwhile. Returns 0, or the context's error (-ECANCELED, -ETIMEDOUT) once the
/// calling goroutine's context is cancelled. May park; plain threads sleep.
#[no_mangle]
pub extern "C" fn gr_sleep(ns: i64) -> c_int {
    boundary("gr_sleep", || park::sleep(ns))
}

/// Waits until `fd` is ready for `events` (GR_READ, GR_WRITE or both), as poll(2)
/// would report it; errors and hang-ups count as ready. Returns the ready mask (> 0),
/// -ETIMEDOUT (timeout_ns passed; 0 only polls), -EBADF (not an open fd), -EINVAL (no
/// or unknown event bits), -ECANCELED (gr_close(fd) was called meanwhile). A regular
/// file is always ready. May park; plain threads block in poll(2).
#[no_mangle]
pub extern "C" fn gr_block_io(fd: c_int, events: c_int, timeout_ns: i64) -> c_int {
    boundary("gr_block_io", || {
        sanitizer::hb_fd_release(fd);
        let rc = netpoll::block_io(fd, events, timeout_ns);
        sanitizer::hb_fd_acquire(fd);
        rc
    })
}

/// Like read(2), but parks the goroutine instead of blocking the thread (a socket
/// is read with MSG_DONTWAIT and keeps its flags; any other fd is put into
/// non-blocking mode). Returns the byte count (0 at end of file) or a negative
/// errno value (-EBADF, -ECANCELED if gr_close'd meanwhile, ...).
///
/// # Safety
/// `buf` is NULL or points to `n` writable bytes, which stay valid and untouched by
/// others until the call returns.
#[no_mangle]
pub unsafe extern "C" fn gr_read(fd: c_int, buf: *mut c_void, n: usize) -> isize {
    boundary("gr_read", || {
        if buf.is_null() && n > 0 {
            return -libc::EINVAL as isize;
        }
        sanitizer::hb_fd_release(fd);
        // SAFETY: buf is writable for n bytes (our contract; NULL only with n = 0).
        let rc = unsafe { netpoll::read(fd, buf as *mut u8, n) };
        sanitizer::hb_fd_acquire(fd);
        rc
    })
}

/// Like write(2), parking on EAGAIN; may write fewer than `n` bytes, as write(2)
/// does. Returns the byte count or a negative errno value (-EPIPE, ...).
///
/// # Safety
/// `buf` is NULL or points to `n` readable bytes, which stay valid until the call
/// returns.
#[no_mangle]
pub unsafe extern "C" fn gr_write(fd: c_int, buf: *const c_void, n: usize) -> isize {
    boundary("gr_write", || {
        if buf.is_null() && n > 0 {
            return -libc::EINVAL as isize;
        }
        sanitizer::hb_fd_release(fd);
        // SAFETY: buf is readable for n bytes (our contract; NULL only with n = 0).
        let rc = unsafe { netpoll::write(fd, buf as *const u8, n) };
        sanitizer::hb_fd_acquire(fd);
        rc
    })
}

/// Like accept(2), parking until a connection arrives. The new fd is non-blocking
/// and close-on-exec. Returns it, or a negative errno value. `addr`/`len` may be NULL.
///
/// # Safety
/// `addr` and `len` are both NULL, or `len` points to a writable socklen_t holding the
/// size of the writable buffer at `addr`, as for accept(2).
#[no_mangle]
pub unsafe extern "C" fn gr_accept(
    fd: c_int,
    addr: *mut libc::sockaddr,
    len: *mut libc::socklen_t,
) -> c_int {
    boundary("gr_accept", || {
        sanitizer::hb_fd_release(fd);
        // SAFETY: addr and len are as accept(2) takes them (our contract).
        let rc = unsafe { netpoll::accept(fd, addr, len) };
        sanitizer::hb_fd_acquire(fd);
        rc
    })
}

/// Like connect(2), parking until the connection is made. Returns 0 or a negative
/// errno value (-ECONNREFUSED, ...). The fd is left non-blocking.
///
/// # Safety
/// `addr` is NULL or points to `len` readable bytes holding a socket address, as for
/// connect(2).
#[no_mangle]
pub unsafe extern "C" fn gr_connect(
    fd: c_int,
    addr: *const libc::sockaddr,
    len: libc::socklen_t,
) -> c_int {
    boundary("gr_connect", || {
        if addr.is_null() {
            return -libc::EINVAL;
        }
        sanitizer::hb_fd_release(fd);
        // SAFETY: addr (non-null here) points to len readable bytes (our contract).
        let rc = unsafe { netpoll::connect(fd, addr, len) };
        sanitizer::hb_fd_acquire(fd);
        rc
    })
}

/// Wakes every goroutine waiting on `fd` (they get -ECANCELED), then closes it.
/// Use it instead of close(2) for fds that goroutines wait on: a new file that reuses
/// the number then sees no stale readiness. Returns 0 or -EBADF. Never parks.
#[no_mangle]
pub extern "C" fn gr_close(fd: c_int) -> c_int {
    boundary("gr_close", || {
        sanitizer::hb_fd_release(fd);
        netpoll::close(fd)
    })
}

/// Like poll(2), with a nanosecond timeout, parking the goroutine instead of blocking
/// the thread: fills each entry's revents as poll(2) does. Returns the number of
/// entries with events (> 0), 0 when timeout_ns passed first (0 only polls; negative
/// waits for ever), -EINVAL (fds NULL with nfds > 0, or nfds above RLIMIT_NOFILE),
/// or another negative errno value from poll(2) (-ENOMEM). Negative fds are ignored,
/// as poll(2) does; a closed fd reports POLLNVAL, and gr_close of a polled fd ends
/// the wait with POLLNVAL. May park; plain threads block in ppoll(2).
///
/// # Safety
/// `fds` is NULL (with nfds 0) or points to `nfds` writable pollfds, which stay valid
/// and untouched by others until the call returns.
#[no_mangle]
pub unsafe extern "C" fn gr_poll(fds: *mut libc::pollfd, nfds: usize, timeout_ns: i64) -> c_int {
    boundary("gr_poll", || {
        if fds.is_null() && nfds > 0 {
            return -libc::EINVAL;
        }
        // poll(2)'s own limit, checked before the entries are read below (only for
        // long arrays: the limit is at least 1024).
        if nfds > 1024 {
            let mut rl = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            // SAFETY: getrlimit fills the struct we pass.
            if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) } == 0
                && nfds as u64 > rl.rlim_cur
            {
                return -libc::EINVAL;
            }
        }
        // SAFETY: fds holds nfds writable pollfds (our contract; NULL only with 0).
        unsafe { netpoll::poll(fds, nfds, timeout_ns) }
    })
}

/// For an I/O layer that makes its own non-blocking calls (the hook library does):
/// after a call on `fd` said EAGAIN for `events` (GR_READ, GR_WRITE or both), waits
/// for the next readiness edge in those directions, with no poll(2) first (the
/// EAGAIN was the check). Returns the directions that had an edge (> 0: make the
/// call again, and wait again if it still says EAGAIN), -ETIMEDOUT (timeout_ns
/// passed; negative waits for ever), -ECANCELED (gr_close(fd) or gr_io_adopt(fd)
/// meanwhile), -EBADF (not an open fd), -EINVAL (no or unknown event bits). A
/// regular file is always ready. May park; plain threads block in poll(2).
#[no_mangle]
pub extern "C" fn gr_io_wait(fd: c_int, events: c_int, timeout_ns: i64) -> c_int {
    boundary("gr_io_wait", || {
        sanitizer::hb_fd_release(fd);
        let rc = netpoll::wait_edge(fd, events, timeout_ns);
        sanitizer::hb_fd_acquire(fd);
        rc
    })
}

/// For an I/O layer that makes its own non-blocking reads (the hook library does):
/// after a read of `fd` returned fewer bytes than asked (and consumed them: not
/// MSG_PEEK), notes that its receive queue was empty then, which lets the next read
/// skip the call that would say EAGAIN (see gr_io_read_drained). Noted only where a
/// short read proves that: an adopted (gr_io_adopt) TCP socket that has not received
/// urgent data. Returns 1 if noted, 0 if not, -EBADF for a negative fd. Never
/// parks; one getsockopt the first time per adopted fd.
#[no_mangle]
pub extern "C" fn gr_io_note_short_read(fd: c_int) -> c_int {
    boundary("gr_io_note_short_read", || {
        if fd < 0 {
            return -libc::EBADF;
        }
        netpoll::note_short_read(fd) as c_int
    })
}

/// 1 when a short read of `fd` was noted (gr_io_note_short_read) and no readiness
/// edge for reading came since: a read now would say EAGAIN, so wait for the edge
/// first (gr_io_wait(fd, GR_READ, ...)) and read after it. Else 0 (read now). Each
/// call forgets the note, so a caller that is told 1 and waits asks the kernel next.
/// -EBADF for a negative fd. Never parks.
#[no_mangle]
pub extern "C" fn gr_io_read_drained(fd: c_int) -> c_int {
    boundary("gr_io_read_drained", || {
        if fd < 0 {
            return -libc::EBADF;
        }
        netpoll::take_drained(fd) as c_int
    })
}

/// Tells the netpoller that `fd` is a file the caller has just created (socket,
/// accept, pipe, dup2 onto it...) and will close only with gr_close. It forgets any
/// earlier file under that number (goroutines still waiting on it get -ECANCELED)
/// and keeps `fd` registered with epoll between waits until gr_close(fd), which
/// saves an epoll_ctl system call per wait. An fd closed any other way (close(2),
/// fclose) while adopted may leave a later file under its number unwatched: adopt
/// only fds whose every close you see. Returns 0, or -EBADF (fd negative or above
/// 2^20, which then simply stays un-adopted). Never parks.
#[no_mangle]
pub extern "C" fn gr_io_adopt(fd: c_int) -> c_int {
    boundary("gr_io_adopt", || netpoll::adopt(fd))
}

/// Runs `fn(arg)`, a call that may block its thread (a blocking syscall, a slow
/// library call), after handing this thread's processor to another worker, so the
/// other goroutines keep running. `fn` must not call gr_* functions that park.
/// Returns 0, or -EINVAL for a NULL fn. Never parks: the goroutine keeps its thread
/// for the call, and afterwards may wait (on that thread) for a free processor. From a
/// plain thread it just calls fn.
///
/// # Safety
/// `fn` is NULL or a function that is sound to call with `arg` on the calling thread.
#[no_mangle]
pub unsafe extern "C" fn gr_blocking(fn_: gr_fn, arg: *mut c_void) -> c_int {
    boundary("gr_blocking", || match fn_ {
        None => -libc::EINVAL,
        // SAFETY: our caller's contract: f is sound to call with arg on this thread.
        Some(f) => unsafe { sched::blocking(f, arg) },
    })
}
