//! Header section "signals and child processes" (`runtime::signal`,
//! `runtime::child`): Go's `signal.Notify`/`signal.Stop`, and a waitpid(2) that parks
//! the goroutine instead of blocking its thread.

use std::ffi::c_int;
use std::panic::AssertUnwindSafe;

use super::boundary;
use super::sync::gr_chan;
use crate::runtime::{child, signal};
use crate::sync::chan::Chan;

/// The registry's delivery to a channel: a try-send of the signal number.
///
/// # Safety
/// `target` is a live channel of `int` elements.
unsafe fn send_signo(target: *const (), signo: i32) {
    let v: c_int = signo;
    // SAFETY: our contract; an int element from a local, without waiting.
    unsafe { (*(target as *const Chan)).send(&v as *const c_int as *const u8, false) };
}

/// From now on, each arrival of signal `signo` sends `signo` on `c` without waiting
/// (dropped when the channel is full, as Go's signal.Notify: give it a buffer), from
/// a thread of the runtime, so a goroutine receives it with gr_chan_recv or in
/// gr_select. While any channel wants `signo` the signal's previous action (its
/// default, or a handler of the program's) is replaced; gr_signal_stop puts it back.
/// Call again for more signals on one channel; registering the same pair twice does
/// nothing. Returns 0, -EINVAL (NULL, a channel whose elements are not `int`-sized, a
/// signal number out of 1..64, or SIGKILL, SIGSTOP, and the fault signals SIGSEGV,
/// SIGBUS, SIGFPE, SIGILL, which the runtime or the kernel keep), -EBUSY (SIGQUIT
/// while GRDEBUG=sigquit=1 has it), -EAGAIN (no thread for delivery). Never parks;
/// plain threads: yes.
///
/// # Safety
/// `c` is NULL or a channel from gr_chan_new that stays alive (is not freed) until
/// gr_signal_stop(c) has returned.
#[no_mangle]
pub unsafe extern "C" fn gr_signal_notify(c: *mut gr_chan, signo: c_int) -> c_int {
    boundary(
        "gr_signal_notify",
        AssertUnwindSafe(|| {
            // SAFETY: c is NULL or a live channel (our contract).
            let Some(ch) = (unsafe { (c as *const Chan).as_ref() }) else {
                return -libc::EINVAL;
            };
            if ch.elem_size() != core::mem::size_of::<c_int>() {
                return -libc::EINVAL;
            }
            // SAFETY: send_signo on this channel is sound until gr_signal_stop(c) has
            // returned (our contract), which is when signal::stop(c) returns.
            unsafe { signal::notify(c as *const (), send_signo, signo) }
        }),
    )
}

/// Stops delivering signals to `c` (every signal it was registered for); a signal
/// nobody else wants gets its previous action back. Once it returns nothing more is
/// sent to `c`, which may then be freed. Returns 0 (also when `c` was not
/// registered), -EINVAL (NULL). `c` is only compared, never dereferenced. Never
/// parks; plain threads: yes.
#[no_mangle]
pub extern "C" fn gr_signal_stop(c: *mut gr_chan) -> c_int {
    boundary("gr_signal_stop", || {
        if c.is_null() {
            return -libc::EINVAL;
        }
        signal::stop(c as *const ());
        0
    })
}

/// waitpid(2) that parks the goroutine instead of blocking its thread: waits for a
/// child to change state as waitpid(pid, status, options) does (`pid` > 0: that
/// child; -1: any child; 0 or < -1: a process group; options WNOHANG, WUNTRACED,
/// WCONTINUED, __WALL, __WCLONE, __WNOTHREAD). One child's exit is waited for on a
/// pidfd in the netpoller; the other cases wait for SIGCHLD, with a handler
/// installed while they wait (a handler of the program's still runs). If the program
/// ignores SIGCHLD (SIG_IGN or SA_NOCLDWAIT, so the kernel reaps children), those
/// cases look again after sleeps of up to 10 ms in a goroutine bound to a context,
/// and otherwise block the thread in waitpid while its processor runs other
/// goroutines. Returns the pid (`*status` set, if `status` is not NULL), 0 (WNOHANG
/// and no child changed state), the calling goroutine's context error once it is
/// cancelled (-ECANCELED, -ETIMEDOUT: a cancellation point, nothing reaped), or
/// -ECHILD (no such child), -EINVAL (unknown options). May park; plain threads
/// block.
///
/// # Safety
/// `status` is NULL or points to a writable `int`.
#[no_mangle]
pub unsafe extern "C" fn gr_waitpid(pid: libc::pid_t, status: *mut c_int, options: c_int) -> c_int {
    boundary(
        "gr_waitpid",
        AssertUnwindSafe(|| {
            let mut st: c_int = 0;
            let r = child::waitpid(pid, &mut st, options);
            if r > 0 && !status.is_null() {
                // SAFETY: a non-null status points to a writable int (our contract).
                unsafe { *status = st };
            }
            r
        }),
    )
}
