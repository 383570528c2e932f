//! Header section "semaphores" (`sync::sem`): golang.org/x/sync/semaphore's weighted
//! semaphore, FIFO.
//!
//! A `gr_sem` is a `sync::sem::Semaphore` boxed by gr_sem_new. Every call checks for
//! NULL and returns a negative errno value for bad arguments before touching
//! anything.

use std::ffi::c_int;
use std::panic::AssertUnwindSafe;

use super::boundary;
use crate::runtime::g::WaitReason;
use crate::sync::sem::{Semaphore, Wait};

/// A weighted semaphore (golang.org/x/sync/semaphore), created by gr_sem_new.
#[allow(non_camel_case_types)]
pub struct gr_sem {
    _opaque: [u8; 0],
}

/// The semaphore behind a handle, or None for NULL.
///
/// # Safety
/// `s` is NULL or a live semaphore from gr_sem_new, which outlives every use of the
/// returned reference.
#[inline(always)]
pub(crate) unsafe fn sem_of<'a>(s: *const gr_sem) -> Option<&'a Semaphore> {
    // SAFETY: our contract: a non-null handle is a live Semaphore (boxed by
    // gr_sem_new).
    unsafe { (s as *const Semaphore).as_ref() }
}

/// gr_sem_acquire_timeout's wait, for the Python binding too.
pub(crate) fn acquire(s: &Semaphore, n: i64, timeout_ns: i64) -> c_int {
    s.acquire(n, Wait::Interruptible { timeout_ns }, WaitReason::Semaphore)
}

/// Creates a semaphore of `n` tokens, all free. NULL when `n` is negative or out of
/// memory. Never parks; plain threads: yes.
#[no_mangle]
pub extern "C" fn gr_sem_new(n: i64) -> *mut gr_sem {
    boundary("gr_sem_new", || {
        if n < 0 {
            return core::ptr::null_mut();
        }
        Box::into_raw(Box::new(Semaphore::new(n))) as *mut gr_sem
    })
}

/// Takes `n` tokens, waiting until they are free. Requests are served in order: while
/// one waits, later ones wait behind it even if they would fit (so a big request is
/// not starved by small ones). Returns 0, the calling goroutine's context error once
/// it is cancelled (-ECANCELED, -ETIMEDOUT: a cancellation point; no token is taken,
/// and the requests behind this one move up), -EINVAL (NULL, `n` < 0, or `n` more
/// than the semaphore's size: it could never be served). May park; plain threads
/// block.
///
/// # Safety
/// `s` is NULL or a semaphore from gr_sem_new that has not been freed.
#[no_mangle]
pub unsafe extern "C" fn gr_sem_acquire(s: *mut gr_sem, n: i64) -> c_int {
    boundary(
        "gr_sem_acquire",
        // SAFETY: s is NULL or a live semaphore (our contract).
        AssertUnwindSafe(|| match unsafe { sem_of(s) } {
            None => -libc::EINVAL,
            Some(sem) => acquire(sem, n, -1),
        }),
    )
}

/// gr_sem_acquire for at most `ns` nanoseconds (negative: no limit, 0: only if free
/// and nobody waits). Returns 0, -ETIMEDOUT (no token was taken; the requests behind
/// this one move up), the context's error and -EINVAL as gr_sem_acquire. May park;
/// plain threads block.
///
/// # Safety
/// `s` is NULL or a semaphore from gr_sem_new that has not been freed.
#[no_mangle]
pub unsafe extern "C" fn gr_sem_acquire_timeout(s: *mut gr_sem, n: i64, ns: i64) -> c_int {
    boundary(
        "gr_sem_acquire_timeout",
        // SAFETY: s is NULL or a live semaphore (our contract).
        AssertUnwindSafe(|| match unsafe { sem_of(s) } {
            None => -libc::EINVAL,
            Some(sem) => acquire(sem, n, ns),
        }),
    )
}

/// Takes `n` tokens if they are free and nobody waits. Returns 1 (taken), 0 (not),
/// -EINVAL (NULL, `n` < 0). Never parks.
///
/// # Safety
/// `s` is NULL or a semaphore from gr_sem_new that has not been freed.
#[no_mangle]
pub unsafe extern "C" fn gr_sem_try_acquire(s: *mut gr_sem, n: i64) -> c_int {
    boundary(
        "gr_sem_try_acquire",
        // SAFETY: s is NULL or a live semaphore (our contract).
        AssertUnwindSafe(|| match unsafe { sem_of(s) } {
            None => -libc::EINVAL,
            Some(sem) => sem.try_acquire(n),
        }),
    )
}

/// Gives back `n` tokens and wakes the waiters they satisfy, in order (stopping at
/// the first that does not fit). Any goroutine or thread may release. Returns 0,
/// -EINVAL (NULL, `n` < 0, or more tokens than are taken: nothing changes). Never
/// parks.
///
/// # Safety
/// `s` is NULL or a semaphore from gr_sem_new that has not been freed.
#[no_mangle]
pub unsafe extern "C" fn gr_sem_release(s: *mut gr_sem, n: i64) -> c_int {
    boundary(
        "gr_sem_release",
        // SAFETY: s is NULL or a live semaphore (our contract).
        AssertUnwindSafe(|| match unsafe { sem_of(s) } {
            None => -libc::EINVAL,
            Some(sem) => sem.release(n),
        }),
    )
}

/// Frees the semaphore (tokens still taken do not matter). Returns 0, -EBUSY
/// (somebody waits for tokens: nothing is freed), -EINVAL (NULL). Never parks.
///
/// # Safety
/// `s` is NULL or a semaphore from gr_sem_new that has not been freed. If this call
/// frees it, no other call on it is running then (a call parked in it makes this one
/// free nothing) and none starts later.
#[no_mangle]
pub unsafe extern "C" fn gr_sem_free(s: *mut gr_sem) -> c_int {
    boundary(
        "gr_sem_free",
        AssertUnwindSafe(|| {
            // SAFETY: s is NULL or a live semaphore (our contract).
            let Some(sem) = (unsafe { sem_of(s) }) else {
                return -libc::EINVAL;
            };
            if sem.has_waiters() {
                return -libc::EBUSY;
            }
            // SAFETY: a live semaphore boxed by gr_sem_new that nobody waits on, and
            // the caller does not use it again (our contract).
            drop(unsafe { Box::from_raw(s as *mut Semaphore) });
            0
        }),
    )
}
