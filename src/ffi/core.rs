//! Header section "goroutines": version, errors, init/shutdown, spawn, join, yield,
//! thread locking. See `include/goroutine.h` for the generated declarations.

use std::ffi::{c_char, c_int, c_void};

use super::boundary;
use crate::runtime::sched::{self, SpawnAttr};

/// A goroutine id: > 0 names a goroutine; ids are never reused.
#[allow(non_camel_case_types)]
pub type gr_id = i64;

/// A goroutine body: called with the argument given to gr_spawn.
#[allow(non_camel_case_types)]
pub type gr_fn = Option<unsafe extern "C" fn(arg: *mut c_void)>;

/// Attributes for gr_spawn_attr. Zero-initialise it and set what you need.
#[repr(C)]
#[allow(non_camel_case_types)]
pub struct gr_attr {
    /// Stack reservation in bytes: 0 = default (256 KiB, or GR_STACK_SIZE); otherwise
    /// 32 KiB to 1 GiB, rounded up to a power of two. Pages are committed only as
    /// touched. gr_* calls may use up to 8 KiB of it.
    pub stack_size: usize,
    /// Name shown in fatal errors and dumps (copied; up to 23 bytes kept). May be NULL.
    pub name: *const c_char,
    /// Reserved: must be 0.
    pub flags: u32,
}

/// The library version as "MAJOR.MINOR.PATCH" (the header's is GR_VERSION_STRING).
/// Never NULL. Never parks; plain threads: yes.
#[no_mangle]
pub extern "C" fn gr_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr() as *const c_char
}

/// A static description of a return code (negative errno values and 0). Never NULL.
/// Never parks; plain threads: yes.
#[no_mangle]
pub extern "C" fn gr_strerror(rc: c_int) -> *const c_char {
    // wrapping_neg: -INT_MIN overflows (a panic with overflow checks on); it stays
    // negative and is "unknown".
    let s: &'static str = match rc.wrapping_neg() {
        0 => "success\0",
        libc::EINVAL => "EINVAL: invalid argument\0",
        libc::ENOMEM => "ENOMEM: out of memory\0",
        libc::EAGAIN => "EAGAIN: resource temporarily unavailable (would block, or a limit was reached)\0",
        libc::ESRCH => "ESRCH: no such goroutine\0",
        libc::EDEADLK => "EDEADLK: deadlock (waiting on itself, or every goroutine is blocked)\0",
        libc::EBUSY => "EBUSY: busy (goroutines remain, or somebody waits on it)\0",
        libc::EPERM => "EPERM: operation not permitted here\0",
        libc::EALREADY => "EALREADY: already initialised\0",
        libc::EPIPE => "EPIPE: closed\0",
        libc::ETIMEDOUT => "ETIMEDOUT: timed out\0",
        libc::ECANCELED => "ECANCELED: canceled (the fd was closed)\0",
        libc::EBADF => "EBADF: bad file descriptor\0",
        libc::ECHILD => "ECHILD: called in a child process after fork(); the runtime does not survive fork (exec or _exit)\0",
        libc::EINTR => "EINTR: interrupted\0",
        e if e > 0 && e < 4096 => {
            // Codes passed through from the system (-ECONNRESET...): the C library's
            // own (static) message.
            // SAFETY: strerror returns a string for any errno value.
            return unsafe { libc::strerror(e) };
        }
        _ => "unknown error\0",
    };
    s.as_ptr() as *const c_char
}

/// Starts the runtime with `maxprocs` processors (<= 0: GR_MAXPROCS, else the CPU
/// count). Optional: the calls that need running goroutines (spawns, gr_main,
/// gr_wait_all, gr_maxprocs) start it lazily; the others (gr_count, gr_self,
/// gr_join, gr_stats, gr_shutdown...) do not. Returns the number of processors,
/// -EALREADY if it was already running (nothing changes), or -EAGAIN if no thread
/// could be made for it (nothing changes).
/// Plain threads: yes. Never parks.
#[no_mangle]
pub extern "C" fn gr_init(maxprocs: c_int) -> c_int {
    boundary("gr_init", || sched::init(maxprocs))
}

/// Sets the number of processors (goroutines running in parallel) to `n` (capped at
/// 256) and returns the previous value; `n` < 1 only queries. Never parks.
#[no_mangle]
pub extern "C" fn gr_maxprocs(n: c_int) -> c_int {
    boundary("gr_maxprocs", || sched::set_maxprocs(n))
}

/// Runs `fn(arg)` as a goroutine named "main" and blocks the caller until it returns
/// (other goroutines keep running afterwards). Returns 0, -EINVAL (NULL fn), a spawn
/// error (-ENOMEM, -EAGAIN), or -EDEADLK (called from a plain thread, when every
/// goroutine is blocked on something only another goroutine could end and no
/// other thread of the program runs outside the runtime; they stay
/// blocked). May park (from a goroutine it parks that goroutine); plain threads block.
///
/// # Safety
/// `fn` is NULL or a function that may be called with `arg` on any thread (a goroutine
/// may run on any worker thread).
#[no_mangle]
pub unsafe extern "C" fn gr_main(fn_: gr_fn, arg: *mut c_void) -> c_int {
    boundary("gr_main", || match fn_ {
        None => -libc::EINVAL,
        Some(f) => {
            let rc = sched::run_main(f, arg);
            crate::runtime::sanitizer::hb_all_exited();
            rc
        }
    })
}

/// Blocks the caller until no goroutine is left (called from a goroutine: until it is
/// the only one). Returns 0, or -EDEADLK (called from a plain thread, when every
/// goroutine is blocked on something only another goroutine could end and no
/// other thread of the program runs outside the runtime; they stay
/// blocked). May park; plain threads block.
#[no_mangle]
pub extern "C" fn gr_wait_all() -> c_int {
    boundary("gr_wait_all", || {
        let rc = sched::wait_all();
        crate::runtime::sanitizer::hb_all_exited();
        rc
    })
}

/// Stops the worker threads and returns cached stacks to the kernel. Returns 0
/// (also when the runtime is not running: a second call is harmless), or -EBUSY
/// while goroutines remain or when called from a goroutine. Any later call starts
/// the runtime again. Never parks (it waits for the worker threads to exit). Plain
/// threads only.
#[no_mangle]
pub extern "C" fn gr_shutdown() -> c_int {
    boundary("gr_shutdown", sched::shutdown)
}

/// Starts a goroutine running `fn(arg)` with a default stack. Returns its id (> 0),
/// or -EINVAL (NULL fn), -ENOMEM (no memory for a stack), -EAGAIN (guard-page budget
/// exhausted on kernels without MADV_GUARD_INSTALL). Never parks. Plain threads: yes.
///
/// # Safety
/// `fn` is NULL or a function that may be called with `arg` on any thread (a goroutine
/// may run on any worker thread).
#[no_mangle]
pub unsafe extern "C" fn gr_spawn(fn_: gr_fn, arg: *mut c_void) -> gr_id {
    boundary("gr_spawn", || match fn_ {
        None => -libc::EINVAL as i64,
        Some(f) => sched::spawn(f, arg, &SpawnAttr::default()),
    })
}

/// Like gr_spawn with attributes (NULL attr = defaults). Also -EINVAL for a stack
/// size outside 32 KiB..1 GiB or nonzero flags. Never parks. Plain threads: yes.
///
/// # Safety
/// `fn` is NULL or a function that may be called with `arg` on any thread (a goroutine
/// may run on any worker thread); `attr` is NULL or points to a readable gr_attr whose
/// `name` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn gr_spawn_attr(
    fn_: gr_fn,
    arg: *mut c_void,
    attr: *const gr_attr,
) -> gr_id {
    boundary("gr_spawn_attr", || {
        let Some(f) = fn_ else {
            return -libc::EINVAL as i64;
        };
        let a = if attr.is_null() {
            SpawnAttr::default()
        } else {
            // SAFETY: a non-null attr points to a readable gr_attr (our contract).
            let attr = unsafe { &*attr };
            if attr.flags != 0 {
                return -libc::EINVAL as i64;
            }
            SpawnAttr {
                stack_size: attr.stack_size,
                name: attr.name,
                ..SpawnAttr::default()
            }
        };
        sched::spawn(f, arg, &a)
    })
}

/// Waits until goroutine `id` has finished (immediately if it already has).
/// Returns 0, -EINVAL (id <= 0), -ESRCH (no such goroutine was ever started),
/// -EDEADLK (a goroutine joining itself; or called from a plain thread, when every
/// goroutine is blocked on something only another goroutine could end and no
/// other thread of the program runs outside the runtime). May park;
/// plain threads block.
#[no_mangle]
pub extern "C" fn gr_join(id: gr_id) -> c_int {
    boundary("gr_join", || {
        let rc = sched::join(id);
        if rc == 0 {
            crate::runtime::sanitizer::hb_joined(id);
        }
        rc
    })
}

/// Lets other goroutines run; the caller continues later, possibly on another thread.
/// Never parks (the caller stays runnable). On a plain thread: sched_yield().
#[no_mangle]
pub extern "C" fn gr_yield() {
    boundary("gr_yield", sched::yield_now)
}

/// The calling goroutine's id, or 0 on a plain thread. Never parks.
#[no_mangle]
pub extern "C" fn gr_self() -> gr_id {
    boundary("gr_self", sched::self_id)
}

/// Number of goroutines alive (started and not yet returned). Never parks; plain
/// threads: yes.
#[no_mangle]
pub extern "C" fn gr_count() -> usize {
    boundary("gr_count", sched::count)
}

/// Wires the calling goroutine to its current OS thread (Go's LockOSThread): it runs
/// only there, and the thread runs nothing else, until as many gr_unlock_thread calls.
/// For C code that keeps thread-local state across yields. Returns 0, or -EPERM on a
/// plain thread. Never parks (later parks of the goroutine keep its thread waiting).
#[no_mangle]
pub extern "C" fn gr_lock_thread() -> c_int {
    boundary("gr_lock_thread", sched::lock_thread)
}

/// Undoes one gr_lock_thread. Returns 0, or -EPERM when not locked / on a plain thread.
/// Never parks.
#[no_mangle]
pub extern "C" fn gr_unlock_thread() -> c_int {
    boundary("gr_unlock_thread", sched::unlock_thread)
}
