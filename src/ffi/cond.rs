//! Header section "condition variables" (`sync::cond`): Go's `sync.Cond` on a
//! `gr_mutex`, with a timed wait.
//!
//! A `gr_cond` is a `sync::cond::Cond` boxed by gr_cond_new. Every call checks for
//! NULL and returns a negative errno value for bad arguments before touching
//! anything.

use std::ffi::c_int;
use std::panic::AssertUnwindSafe;

use super::boundary;
use super::sync::gr_mutex;
use crate::sync::cond::Cond;
use crate::sync::mutex::Mutex;

/// A condition variable (Go's `sync.Cond`) on a gr_mutex, created by gr_cond_new.
#[allow(non_camel_case_types)]
pub struct gr_cond {
    _opaque: [u8; 0],
}

/// The cond behind a handle, or None for NULL.
///
/// # Safety
/// `c` is NULL or a live cond from gr_cond_new, which outlives every use of the
/// returned reference.
#[inline(always)]
pub(crate) unsafe fn cond_of<'a>(c: *const gr_cond) -> Option<&'a Cond> {
    // SAFETY: our contract: a non-null handle is a live Cond (boxed by gr_cond_new).
    unsafe { (c as *const Cond).as_ref() }
}

/// Creates a condition variable on the mutex `m`, which its waiters hold when they
/// call gr_cond_wait. NULL when `m` is NULL or out of memory. Never parks; plain
/// threads: yes.
///
/// # Safety
/// `m` is NULL or a mutex from gr_mutex_new that stays alive (is not freed) until
/// gr_cond_free has freed the cond.
#[no_mangle]
pub unsafe extern "C" fn gr_cond_new(m: *mut gr_mutex) -> *mut gr_cond {
    boundary("gr_cond_new", || {
        if m.is_null() {
            return core::ptr::null_mut();
        }
        // SAFETY: a non-null m is a live Mutex (boxed by gr_mutex_new) that outlives
        // the cond (our contract), as Cond::new requires.
        let c = unsafe { Cond::new(m as *const Mutex) };
        Box::into_raw(Box::new(c)) as *mut gr_cond
    })
}

/// With the cond's mutex locked by the caller: unlocks it, waits until
/// gr_cond_signal or gr_cond_broadcast wakes this waiter, and locks the mutex again
/// before returning (as pthread_cond_wait; wake-ups are never spurious here, but
/// re-check your condition in a loop anyway, as Go's documentation says: another
/// goroutine may have changed it before you got the mutex back). Returns 0, the
/// calling goroutine's context error once it is cancelled (-ECANCELED, -ETIMEDOUT: a
/// cancellation point; the mutex is locked again then too), -EPERM (the mutex was
/// not locked: nothing was waited for), -EINVAL (NULL). May park; plain threads
/// block.
///
/// # Safety
/// `c` is NULL or a cond from gr_cond_new that has not been freed.
#[no_mangle]
pub unsafe extern "C" fn gr_cond_wait(c: *mut gr_cond) -> c_int {
    boundary(
        "gr_cond_wait",
        // SAFETY: c is NULL or a live cond (our contract).
        AssertUnwindSafe(|| match unsafe { cond_of(c) } {
            None => -libc::EINVAL,
            Some(cv) => cv.wait(-1),
        }),
    )
}

/// gr_cond_wait for at most `ns` nanoseconds (negative: no limit; 0: unlocks and
/// relocks the mutex and returns -ETIMEDOUT unless a signal came in between).
/// Returns 0 (woken), -ETIMEDOUT (the time passed), the context's error as
/// gr_cond_wait, -EPERM (the mutex was not locked: nothing was waited for), -EINVAL
/// (NULL); in every case but -EPERM and -EINVAL the mutex is locked again when it
/// returns. May park; plain threads block.
///
/// # Safety
/// `c` is NULL or a cond from gr_cond_new that has not been freed.
#[no_mangle]
pub unsafe extern "C" fn gr_cond_wait_timeout(c: *mut gr_cond, ns: i64) -> c_int {
    boundary(
        "gr_cond_wait_timeout",
        // SAFETY: c is NULL or a live cond (our contract).
        AssertUnwindSafe(|| match unsafe { cond_of(c) } {
            None => -libc::EINVAL,
            Some(cv) => cv.wait(ns),
        }),
    )
}

/// Wakes one waiter (the one that has waited longest), if any. The caller may hold
/// the mutex or not. Returns 0, -EINVAL (NULL). Never parks; plain threads: yes.
///
/// # Safety
/// `c` is NULL or a cond from gr_cond_new that has not been freed.
#[no_mangle]
pub unsafe extern "C" fn gr_cond_signal(c: *mut gr_cond) -> c_int {
    boundary(
        "gr_cond_signal",
        // SAFETY: c is NULL or a live cond (our contract).
        AssertUnwindSafe(|| match unsafe { cond_of(c) } {
            None => -libc::EINVAL,
            Some(cv) => cv.signal(),
        }),
    )
}

/// Wakes every waiter. The caller may hold the mutex or not. Returns 0, -EINVAL
/// (NULL). Never parks; plain threads: yes.
///
/// # Safety
/// `c` is NULL or a cond from gr_cond_new that has not been freed.
#[no_mangle]
pub unsafe extern "C" fn gr_cond_broadcast(c: *mut gr_cond) -> c_int {
    boundary(
        "gr_cond_broadcast",
        // SAFETY: c is NULL or a live cond (our contract).
        AssertUnwindSafe(|| match unsafe { cond_of(c) } {
            None => -libc::EINVAL,
            Some(cv) => cv.broadcast(),
        }),
    )
}

/// Frees the cond (not its mutex). Returns 0, -EBUSY (somebody waits on it: nothing
/// is freed), -EINVAL (NULL). Safe as soon as the waiters you woke have been woken:
/// a woken waiter never touches the cond again. Never parks.
///
/// # Safety
/// `c` is NULL or a cond from gr_cond_new that has not been freed. If this call frees
/// it, no other call on it is running then (a call parked in it makes this one free
/// nothing) and none starts later.
#[no_mangle]
pub unsafe extern "C" fn gr_cond_free(c: *mut gr_cond) -> c_int {
    boundary(
        "gr_cond_free",
        AssertUnwindSafe(|| {
            // SAFETY: c is NULL or a live cond (our contract).
            let Some(cv) = (unsafe { cond_of(c) }) else {
                return -libc::EINVAL;
            };
            if cv.has_waiters() {
                return -libc::EBUSY;
            }
            // SAFETY: a live cond boxed by gr_cond_new that nobody waits on, and the
            // caller does not use it again (our contract).
            drop(unsafe { Box::from_raw(c as *mut Cond) });
            0
        }),
    )
}
