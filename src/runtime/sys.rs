//! The runtime's one door to the kernel for the system calls that the hook layer
//! (`libgoroutine_hook.so`, `hook/`) interposes: read, write, recv, send, accept4,
//! connect, getsockopt, fcntl, close, poll, the epoll calls, eventfd,
//! clock_nanosleep, open (of /proc files) and every write to stderr; and, so that
//! every system call the runtime makes has one home, the few others it needs:
//! wait4 and pidfd_open (`gr_waitpid`).
//!
//! Why a door: once libc's `read`, `poll`, `close`... can be interposed, a runtime
//! that called them through libc would enter its own hooks (and park inside the
//! scheduler, or recurse). So each function here makes the system call itself with
//! `syscall(2)` (which the hook layer leaves alone), and nothing else in `src/` calls
//! those libc functions, or the parts of Rust's std that do (`std::fs`,
//! `std::io::stderr`, `eprintln!`, `std::thread::sleep`): `tests/hook.rs` fails when
//! libgoroutine.so references a hooked libc symbol outside a short list of std
//! internals that never run on a goroutine, or when the source uses one.
//!
//! The functions are thin and return what the kernel says: a count or 0, or a
//! negative errno value (never errno). Those that take raw pointers, as the system
//! calls do, are unsafe: the caller keeps the memory valid for the call.

use core::ptr;

/// The calling thread's errno (read right after a failed `syscall`).
fn errno() -> i32 {
    // SAFETY: __errno_location returns this thread's errno slot.
    unsafe { *libc::__errno_location() }
}

/// Makes system call `nr` with up to six arguments: the result, or -errno.
///
/// # Safety
/// The arguments are what system call `nr` takes; any memory they point to is valid,
/// as that call reads or writes it, for the duration of the call.
#[inline]
unsafe fn call(nr: libc::c_long, a: [libc::c_long; 6]) -> libc::c_long {
    // SAFETY: syscall(2) with the caller's arguments (our contract).
    let r = unsafe { libc::syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]) };
    if r < 0 {
        -(errno() as libc::c_long)
    } else {
        r
    }
}

/// read(2).
///
/// # Safety
/// `buf` is writable for `n` bytes (it may be null when `n` is 0).
pub unsafe fn read(fd: i32, buf: *mut u8, n: usize) -> isize {
    // SAFETY: buf is writable for n bytes (our contract), as read(2) takes it.
    unsafe { call(libc::SYS_read, [fd as _, buf as _, n as _, 0, 0, 0]) as isize }
}

/// write(2).
///
/// # Safety
/// `buf` is readable for `n` bytes (it may be null when `n` is 0).
pub unsafe fn write(fd: i32, buf: *const u8, n: usize) -> isize {
    // SAFETY: buf is readable for n bytes (our contract), as write(2) takes it.
    unsafe { call(libc::SYS_write, [fd as _, buf as _, n as _, 0, 0, 0]) as isize }
}

/// Writes all of `bytes` (retrying after partial writes and signals); for
/// diagnostics, so errors are returned but usually ignored. Async-signal-safe.
pub fn write_all(fd: i32, mut bytes: &[u8]) -> Result<(), i32> {
    while !bytes.is_empty() {
        // SAFETY: a slice is readable for its length.
        let w = unsafe { write(fd, bytes.as_ptr(), bytes.len()) };
        if w == -(libc::EINTR as isize) {
            continue;
        }
        if w <= 0 {
            return Err(if w == 0 { -libc::EIO } else { w as i32 });
        }
        bytes = &bytes[w as usize..];
    }
    Ok(())
}

/// One diagnostic line (or several) to stderr, written whole.
pub fn stderr(text: &str) {
    let _ = write_all(2, text.as_bytes());
}

/// recv(2) (the recvfrom system call without an address).
///
/// # Safety
/// As for `read`.
pub unsafe fn recv(fd: i32, buf: *mut u8, n: usize, flags: i32) -> isize {
    // SAFETY: buf is writable for n bytes (our contract); no address is asked for.
    unsafe {
        call(
            libc::SYS_recvfrom,
            [fd as _, buf as _, n as _, flags as _, 0, 0],
        ) as isize
    }
}

/// send(2) (the sendto system call without an address).
///
/// # Safety
/// As for `write`.
pub unsafe fn send(fd: i32, buf: *const u8, n: usize, flags: i32) -> isize {
    // SAFETY: buf is readable for n bytes (our contract); no address is given.
    unsafe {
        call(
            libc::SYS_sendto,
            [fd as _, buf as _, n as _, flags as _, 0, 0],
        ) as isize
    }
}

/// accept4(2).
///
/// # Safety
/// `addr` and `len` are both null, or `len` points to a writable socklen_t holding
/// the size of the writable buffer at `addr`.
pub unsafe fn accept4(
    fd: i32,
    addr: *mut libc::sockaddr,
    len: *mut libc::socklen_t,
    flags: i32,
) -> i32 {
    // SAFETY: addr and len are as accept4(2) takes them (our contract).
    unsafe {
        call(
            libc::SYS_accept4,
            [fd as _, addr as _, len as _, flags as _, 0, 0],
        ) as i32
    }
}

/// connect(2).
///
/// # Safety
/// `addr` points to `len` readable bytes holding a socket address.
pub unsafe fn connect(fd: i32, addr: *const libc::sockaddr, len: libc::socklen_t) -> i32 {
    // SAFETY: addr points to len readable bytes (our contract).
    unsafe { call(libc::SYS_connect, [fd as _, addr as _, len as _, 0, 0, 0]) as i32 }
}

/// getsockopt(2) of an int-sized option: its value, or -errno.
pub fn getsockopt_int(fd: i32, level: i32, name: i32) -> Result<i32, i32> {
    let mut v: i32 = 0;
    let mut len = core::mem::size_of::<i32>() as libc::socklen_t;
    // SAFETY: &mut v and &mut len are valid out-pointers, and len holds v's size.
    let r = unsafe {
        call(
            libc::SYS_getsockopt,
            [
                fd as _,
                level as _,
                name as _,
                &mut v as *mut i32 as _,
                &mut len as *mut libc::socklen_t as _,
                0,
            ],
        )
    };
    if r < 0 {
        Err(r as i32)
    } else {
        Ok(v)
    }
}

/// fcntl(2) F_GETFL: the file's status flags, or -errno.
pub fn getfl(fd: i32) -> i32 {
    // SAFETY: F_GETFL takes no argument and touches no memory.
    unsafe { call(libc::SYS_fcntl, [fd as _, libc::F_GETFL as _, 0, 0, 0, 0]) as i32 }
}

/// fcntl(2) F_SETFL: sets the file's status flags; 0 or -errno.
pub fn setfl(fd: i32, flags: i32) -> i32 {
    // SAFETY: F_SETFL takes an integer and touches no memory.
    unsafe {
        call(
            libc::SYS_fcntl,
            [fd as _, libc::F_SETFL as _, flags as _, 0, 0, 0],
        ) as i32
    }
}

/// close(2). Not retried after EINTR (Linux has closed the fd by then).
pub fn close(fd: i32) -> i32 {
    // SAFETY: close(2) takes an integer only.
    unsafe { call(libc::SYS_close, [fd as _, 0, 0, 0, 0, 0]) as i32 }
}

/// poll(2) with a millisecond timeout (negative: for ever).
///
/// # Safety
/// `fds` points to `n` writable pollfds (it may be null when `n` is 0).
pub unsafe fn poll(fds: *mut libc::pollfd, n: usize, timeout_ms: i32) -> i32 {
    // SAFETY: fds holds n pollfds (our contract).
    unsafe { call(libc::SYS_poll, [fds as _, n as _, timeout_ms as _, 0, 0, 0]) as i32 }
}

/// ppoll(2) with a nanosecond timeout (negative: for ever) and no signal mask.
///
/// # Safety
/// As for `poll`.
pub unsafe fn ppoll(fds: *mut libc::pollfd, n: usize, timeout_ns: i64) -> i32 {
    let ts = timespec(timeout_ns.max(0));
    let tsp = if timeout_ns < 0 {
        ptr::null()
    } else {
        &ts as *const libc::timespec
    };
    // SAFETY: fds holds n pollfds (our contract); tsp is null or points to ts, alive
    // for the call.
    unsafe { call(libc::SYS_ppoll, [fds as _, n as _, tsp as _, 0, 0, 0]) as i32 }
}

/// epoll_create1(2).
pub fn epoll_create1(flags: i32) -> i32 {
    // SAFETY: epoll_create1(2) takes an integer only.
    unsafe { call(libc::SYS_epoll_create1, [flags as _, 0, 0, 0, 0, 0]) as i32 }
}

/// epoll_ctl(2).
///
/// # Safety
/// `ev` points to a valid epoll_event (it may be null for EPOLL_CTL_DEL).
pub unsafe fn epoll_ctl(ep: i32, op: i32, fd: i32, ev: *mut libc::epoll_event) -> i32 {
    // SAFETY: ev is as epoll_ctl(2) takes it (our contract).
    unsafe {
        call(
            libc::SYS_epoll_ctl,
            [ep as _, op as _, fd as _, ev as _, 0, 0],
        ) as i32
    }
}

/// epoll_pwait2(2) with a nanosecond timeout (negative: for ever), no signal mask.
/// -ENOSYS before Linux 5.11.
///
/// # Safety
/// `evs` is writable for `max` events.
pub unsafe fn epoll_pwait2(ep: i32, evs: *mut libc::epoll_event, max: i32, timeout_ns: i64) -> i32 {
    let ts = timespec(timeout_ns.max(0));
    let tsp = if timeout_ns < 0 {
        ptr::null()
    } else {
        &ts as *const libc::timespec
    };
    // SAFETY: evs is writable for max events (our contract); tsp is null or points
    // to ts, alive for the call; the signal mask is null.
    unsafe {
        call(
            libc::SYS_epoll_pwait2,
            [ep as _, evs as _, max as _, tsp as _, 0, 0],
        ) as i32
    }
}

/// epoll_wait(2) (as epoll_pwait without a signal mask), in milliseconds.
///
/// # Safety
/// `evs` is writable for `max` events.
pub unsafe fn epoll_wait(ep: i32, evs: *mut libc::epoll_event, max: i32, timeout_ms: i32) -> i32 {
    // SAFETY: evs is writable for max events (our contract); the signal mask is null.
    unsafe {
        call(
            libc::SYS_epoll_pwait,
            [ep as _, evs as _, max as _, timeout_ms as _, 0, 0],
        ) as i32
    }
}

/// eventfd2(2).
pub fn eventfd(initval: u32, flags: i32) -> i32 {
    // SAFETY: eventfd2(2) takes integers only.
    unsafe { call(libc::SYS_eventfd2, [initval as _, flags as _, 0, 0, 0, 0]) as i32 }
}

/// clock_nanosleep(2) until the absolute CLOCK_MONOTONIC time `when_ns`, retried
/// after signals (the deadline stays).
pub fn sleep_until(when_ns: i64) {
    let ts = timespec(when_ns);
    // SAFETY: &ts is a valid timespec for each call; no remainder is asked for.
    while unsafe {
        call(
            libc::SYS_clock_nanosleep,
            [
                libc::CLOCK_MONOTONIC as _,
                libc::TIMER_ABSTIME as _,
                &ts as *const libc::timespec as _,
                0,
                0,
                0,
            ],
        )
    } == -(libc::EINTR as libc::c_long)
    {}
}

/// wait4(2) without resource usage: the pid reaped (> 0), 0 (WNOHANG and no child
/// has changed state), or -errno. `status` is written only when a child was reaped.
pub fn wait4(pid: i32, status: &mut i32, options: i32) -> i32 {
    // SAFETY: status is a valid, writable int for the call; no rusage is asked for.
    unsafe {
        call(
            libc::SYS_wait4,
            [pid as _, status as *mut i32 as _, options as _, 0, 0, 0],
        ) as i32
    }
}

/// pidfd_open(2) (Linux 5.3+): a file descriptor that polls readable once process
/// `pid` has exited, or -errno (-ENOSYS on older kernels, -ESRCH).
pub fn pidfd_open(pid: i32, flags: u32) -> i32 {
    // SAFETY: pidfd_open(2) takes integers only.
    unsafe { call(libc::SYS_pidfd_open, [pid as _, flags as _, 0, 0, 0, 0]) as i32 }
}

/// Field `n` of a /proc `stat` line counted from the one after the command name (0:
/// the state, 17: the number of threads; proc(5) numbers these from 3). The command
/// name, in parentheses, may itself hold spaces and parentheses, so the count starts
/// after the last ')'.
pub fn proc_stat_field(stat: &[u8], n: usize) -> Option<&[u8]> {
    let after = stat.iter().rposition(|&b| b == b')')?;
    stat[after + 1..]
        .split(|b| b.is_ascii_whitespace())
        .filter(|f| !f.is_empty())
        .nth(n)
}

/// Reads a small file (a /proc entry) into `buf`: the bytes read, or -errno.
/// `path` ends with a NUL byte.
pub fn read_file<'a>(path: &[u8], buf: &'a mut [u8]) -> Result<&'a [u8], i32> {
    if path.last() != Some(&0) {
        return Err(-libc::EINVAL);
    }
    // SAFETY: path is a NUL-terminated string (checked above).
    let fd = unsafe {
        call(
            libc::SYS_openat,
            [
                libc::AT_FDCWD as _,
                path.as_ptr() as _,
                (libc::O_RDONLY | libc::O_CLOEXEC) as _,
                0,
                0,
                0,
            ],
        )
    } as i32;
    if fd < 0 {
        return Err(fd);
    }
    let mut len = 0;
    let result = loop {
        if len == buf.len() {
            break Ok(len);
        }
        // SAFETY: the rest of buf is writable for its length.
        let r = unsafe { read(fd, buf[len..].as_mut_ptr(), buf.len() - len) };
        match r {
            0 => break Ok(len),
            r if r > 0 => len += r as usize,
            r if r == -(libc::EINTR as isize) => {}
            r => break Err(r as i32),
        }
    };
    close(fd);
    result.map(|n| &buf[..n])
}

fn timespec(ns: i64) -> libc::timespec {
    libc::timespec {
        tv_sec: (ns / 1_000_000_000) as libc::time_t,
        tv_nsec: (ns % 1_000_000_000) as libc::c_long,
    }
}

/// Replaces std's default panic hook, which writes through libc's `write` (and,
/// with RUST_BACKTRACE, reads the library's file through `std::fs`), with one that
/// writes the panic's place and message through this door. The export boundary
/// then turns the panic into the fatal line. Called when the runtime starts: before
/// that no goroutine exists, so std's hook could only run on a plain thread.
pub fn install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            let place = info
                .location()
                .map(|l| format!(" at {}:{}", l.file(), l.line()))
                .unwrap_or_default();
            stderr(&format!("libgoroutine: panic{place}\n"));
        }));
    });
}
