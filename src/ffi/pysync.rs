//! Header section "Python: timers, RWMutex, Cond, Semaphore": the waits of
//! `gr.RWMutex`, `gr.Cond` and `gr.Semaphore` for the Python binding, which must
//! release the GIL while parked (`cpython::parked`); the calls that never park are
//! the C ones, through ctypes. A `gr.Timer`'s channel is received from through the
//! `select` builtin's `RECV_INT64` case (`cpython::chan`). Same conventions as that
//! section: GIL held on entry, -EPERM where parking is refused, -EINVAL before
//! gr_py_init.

use std::ffi::c_int;
use std::panic::AssertUnwindSafe;

use super::boundary;
use super::cond::{cond_of, gr_cond};
use super::rwmutex::{gr_rwmutex, rwmutex_of};
use super::sem::{self, gr_sem, sem_of};
use crate::cpython;

/// gr_rwmutex_rlock (`write` = 0) or gr_rwmutex_lock (`write` != 0) for Python code:
/// 0, -EPERM, -EINVAL. GIL held; released while waiting.
///
/// # Safety
/// The GIL is held; `m` is NULL or a rwmutex from gr_rwmutex_new that has not been
/// freed.
#[no_mangle]
pub unsafe extern "C" fn gr_py_rwmutex_lock(m: *mut gr_rwmutex, write: c_int) -> c_int {
    boundary(
        "gr_py_rwmutex_lock",
        AssertUnwindSafe(|| {
            // SAFETY: m is NULL or a live rwmutex (our contract).
            let Some(rw) = (unsafe { rwmutex_of(m) }) else {
                return -libc::EINVAL;
            };
            // SAFETY: the GIL is held (our contract).
            unsafe { cpython::parked(|| if write != 0 { rw.lock() } else { rw.rlock() }) }
                .unwrap_or_else(|e| e)
        }),
    )
}

/// gr_cond_wait_timeout for Python code (`ns` negative: no limit): 0, -ETIMEDOUT,
/// -EPERM (the mutex was not locked, or parking is refused), -EINVAL. GIL held;
/// released while waiting.
///
/// # Safety
/// The GIL is held; `c` is NULL or a cond from gr_cond_new that has not been freed.
#[no_mangle]
pub unsafe extern "C" fn gr_py_cond_wait(c: *mut gr_cond, ns: i64) -> c_int {
    boundary(
        "gr_py_cond_wait",
        AssertUnwindSafe(|| {
            // SAFETY: c is NULL or a live cond (our contract).
            let Some(cv) = (unsafe { cond_of(c) }) else {
                return -libc::EINVAL;
            };
            // SAFETY: the GIL is held (our contract).
            unsafe { cpython::parked(|| cv.wait(ns)) }.unwrap_or_else(|e| e)
        }),
    )
}

/// gr_sem_acquire_timeout for Python code (`ns` negative: no limit): 0, -ETIMEDOUT,
/// -EPERM, -EINVAL. GIL held; released while waiting.
///
/// # Safety
/// The GIL is held; `s` is NULL or a semaphore from gr_sem_new that has not been
/// freed.
#[no_mangle]
pub unsafe extern "C" fn gr_py_sem_acquire(s: *mut gr_sem, n: i64, ns: i64) -> c_int {
    boundary(
        "gr_py_sem_acquire",
        AssertUnwindSafe(|| {
            // SAFETY: s is NULL or a live semaphore (our contract).
            let Some(sm) = (unsafe { sem_of(s) }) else {
                return -libc::EINVAL;
            };
            // SAFETY: the GIL is held (our contract).
            unsafe { cpython::parked(|| sem::acquire(sm, n, ns)) }.unwrap_or_else(|e| e)
        }),
    )
}
