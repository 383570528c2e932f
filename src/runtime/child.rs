//! `gr_waitpid`: waitpid(2) that parks the goroutine, not its thread.
//!
//! Every wait starts with `wait4(..., WNOHANG)`: a child that has already changed
//! state is reaped at once, and WNOHANG callers never wait. Otherwise:
//!
//! - One child (`pid` > 0), waiting for its exit (no WUNTRACED/WCONTINUED): a pidfd
//!   (`pidfd_open`, Linux 5.3+) polls readable once the child has exited, so the
//!   goroutine waits on it in the netpoller like on a socket (`netpoll::block_io`),
//!   then reaps with WNOHANG. No signal handler is involved.
//! - Any child (`pid` -1), a process group (0, < -1), stops and continues, or no
//!   pidfd (an old kernel): there is no descriptor to wait on, so the goroutine
//!   waits for SIGCHLD (`signal::watch_children`; a handler is installed while such
//!   waits exist, and the program's own SIGCHLD handler still runs), looking again
//!   with WNOHANG after each one. A SIGCHLD between the look and the park is not
//!   missed: the wait parks only while the count of SIGCHLDs is what it was before
//!   the look.
//! - If the program ignores SIGCHLD (SIG_IGN or SA_NOCLDWAIT: the kernel reaps
//!   children itself, and installing a handler would change that), there is no event
//!   to park on. A goroutine bound to a context looks with WNOHANG between cancellable
//!   sleeps that grow from 50 us to 10 ms (`poll_wait4`: a wake-up every 10 ms at
//!   most while a child lives on, and a state change seen within 10 ms). Any other
//!   goroutine runs the plain blocking wait4 inside `sched::blocking`: the thread
//!   blocks, its processor goes on with other goroutines, as for any gr_blocking
//!   call, and the change is seen at once.
//!
//! A cancellation point: the pidfd and SIGCHLD waits are cancellable parks
//! (`netpoll::block_io`, `signal::wait_child_event`), and so are `poll_wait4`'s
//! sleeps, so the goroutine's context ends them with its error. (The blocking wait4
//! runs only where no context could end it.)
//!
//! Where the caller may not park (a plain thread, inside gr_blocking) it is wait4
//! itself, retried after signals.

use crate::runtime::context;
use crate::runtime::netpoll;
use crate::runtime::park::parkable_g;
use crate::runtime::signal;
use crate::runtime::sys;

/// The options wait4 accepts (anything else is -EINVAL, as the kernel says).
const OPTIONS: i32 = libc::WNOHANG
    | libc::WUNTRACED
    | libc::WCONTINUED
    | libc::__WALL
    | libc::__WCLONE
    | libc::__WNOTHREAD;

/// `gr_waitpid`: the pid reaped (> 0; `*status` set as waitpid(2) sets it), 0 (WNOHANG
/// and nothing to report), or -errno (-ECHILD, -EINVAL...).
pub fn waitpid(pid: i32, status: &mut i32, options: i32) -> i32 {
    if options & !OPTIONS != 0 {
        return -libc::EINVAL;
    }
    let r = sys::wait4(pid, status, options | libc::WNOHANG);
    if r != 0 || options & libc::WNOHANG != 0 {
        return r;
    }
    if parkable_g().is_null() {
        return wait4_blocking(pid, status, options);
    }
    if pid > 0 && options & (libc::WUNTRACED | libc::WCONTINUED) == 0 {
        let fd = sys::pidfd_open(pid, 0);
        if fd >= 0 {
            let r = wait_pidfd(fd, pid, status, options);
            netpoll::close(fd);
            return r;
        }
        if fd == -libc::ESRCH {
            // Reaped by someone else since our look: wait4 says so.
            return sys::wait4(pid, status, options | libc::WNOHANG);
        }
        // No pidfds here (ENOSYS, or refused): the SIGCHLD wait below.
    }
    if !signal::watch_children() {
        if context::bound() {
            return poll_wait4(pid, status, options);
        }
        return blocking_wait4(pid, status, options);
    }
    let r = loop {
        let seen = signal::child_events();
        let r = sys::wait4(pid, status, options | libc::WNOHANG);
        if r != 0 {
            break r;
        }
        let rc = signal::wait_child_event(seen);
        if rc != 0 {
            break rc;
        }
    };
    signal::unwatch_children();
    r
}

/// Waits on the child's pidfd until it has exited, then reaps it.
fn wait_pidfd(fd: i32, pid: i32, status: &mut i32, options: i32) -> i32 {
    loop {
        // Looked at once more after the pidfd exists: an exit just before it was
        // opened is reaped here rather than waited for.
        let r = sys::wait4(pid, status, options | libc::WNOHANG);
        if r != 0 {
            return r;
        }
        let rc = netpoll::block_io(fd, netpoll::READ, -1);
        if rc < 0 {
            return rc;
        }
    }
}

/// Shortest and longest sleep of `poll_wait4` between two looks.
const POLL_FIRST_NS: i64 = 50_000;
const POLL_MAX_NS: i64 = 10_000_000;

/// With SIGCHLD ignored, for a goroutine bound to a context, after `waitpid`'s first
/// look found nothing: a cancellable sleep, doubling from `POLL_FIRST_NS` up to
/// `POLL_MAX_NS`, then wait4 with WNOHANG again, until a child changed state, wait4
/// fails (-ECHILD once the kernel reaped the last one) or the context ends (the
/// sleep returns its error, at once if it was cancelled before).
fn poll_wait4(pid: i32, status: &mut i32, options: i32) -> i32 {
    let mut nap = POLL_FIRST_NS;
    loop {
        let rc = crate::runtime::park::sleep(nap);
        if rc != 0 {
            return rc;
        }
        let r = sys::wait4(pid, status, options | libc::WNOHANG);
        if r != 0 {
            return r;
        }
        nap = (nap * 2).min(POLL_MAX_NS);
    }
}

/// wait4 that blocks the thread, retried after signals.
fn wait4_blocking(pid: i32, status: &mut i32, options: i32) -> i32 {
    loop {
        let r = sys::wait4(pid, status, options);
        if r != -libc::EINTR {
            return r;
        }
    }
}

struct BlockingWait {
    pid: i32,
    options: i32,
    status: i32,
    result: i32,
}

/// gr_blocking's function for `blocking_wait4`.
///
/// # Safety
/// `arg` points to a `BlockingWait` that nothing else touches during the call.
unsafe extern "C" fn run_blocking_wait(arg: *mut libc::c_void) {
    // SAFETY: our contract.
    let b = unsafe { &mut *(arg as *mut BlockingWait) };
    b.result = wait4_blocking(b.pid, &mut b.status, b.options);
}

/// The blocking wait4 on a goroutine, with its processor handed to another thread
/// meanwhile (SIGCHLD is ignored, so there is nothing to park on).
fn blocking_wait4(pid: i32, status: &mut i32, options: i32) -> i32 {
    let mut b = BlockingWait {
        pid,
        options,
        status: 0,
        result: 0,
    };
    // SAFETY: run_blocking_wait gets `b`, which lives on this stack for the whole call
    // and is touched by nothing else meanwhile (its contract); it makes no call that
    // parks.
    unsafe {
        crate::runtime::sched::blocking(
            run_blocking_wait,
            &mut b as *mut BlockingWait as *mut libc::c_void,
        )
    };
    if b.result > 0 {
        *status = b.status;
    }
    b.result
}
