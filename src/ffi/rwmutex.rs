//! Header section "reader/writer mutexes" (`sync::rwmutex`): Go's `sync.RWMutex`,
//! with its read count kept per CPU.
//!
//! A `gr_rwmutex` is a `sync::rwmutex::RwMutex` boxed by gr_rwmutex_new. Every call
//! checks for NULL and returns a negative errno value for bad arguments before
//! touching anything. Its locks are not cancellation points (as in Go).

use std::ffi::c_int;
use std::panic::AssertUnwindSafe;

use super::boundary;
use crate::runtime::sched::in_forked_child;
use crate::sync::rwmutex::{RUnlock, RwMutex};

/// A reader/writer mutex that parks goroutines (Go's `sync.RWMutex`), created by
/// gr_rwmutex_new.
#[allow(non_camel_case_types)]
pub struct gr_rwmutex {
    _opaque: [u8; 0],
}

/// The rwmutex behind a handle, or None for NULL.
///
/// # Safety
/// `m` is NULL or a live rwmutex from gr_rwmutex_new, which outlives every use of the
/// returned reference.
#[inline(always)]
pub(crate) unsafe fn rwmutex_of<'a>(m: *const gr_rwmutex) -> Option<&'a RwMutex> {
    // SAFETY: our contract: a non-null handle is a live RwMutex (boxed by
    // gr_rwmutex_new).
    unsafe { (m as *const RwMutex).as_ref() }
}

/// Creates an unlocked reader/writer mutex. NULL when out of memory. Never parks;
/// plain threads: yes.
#[no_mangle]
pub extern "C" fn gr_rwmutex_new() -> *mut gr_rwmutex {
    boundary("gr_rwmutex_new", || {
        Box::into_raw(Box::new(RwMutex::new())) as *mut gr_rwmutex
    })
}

/// Takes a read lock: any number of readers hold it together, while no writer does.
/// Waits while a writer holds it, and also while a writer waits for it (a waiting
/// writer holds back new readers, so readers cannot starve it; a read lock taken
/// recursively can therefore deadlock, as in Go). Returns 0, -EINVAL (NULL). May
/// park; plain threads block.
///
/// # Safety
/// `m` is NULL or a rwmutex from gr_rwmutex_new that has not been freed.
#[no_mangle]
pub unsafe extern "C" fn gr_rwmutex_rlock(m: *mut gr_rwmutex) -> c_int {
    // The path with no writer about (one atomic add, which cannot panic) runs
    // without the boundary's frame; the fork rule is checked first, as boundary does.
    // SAFETY: m is NULL or a live rwmutex (our contract).
    if let Some(rw) = unsafe { rwmutex_of(m) } {
        if !in_forked_child() {
            return match rw.rlock_begin() {
                Ok(()) => 0,
                Err(slot) => rlock_wait(rw, slot),
            };
        }
    }
    // SAFETY: our contract.
    unsafe { rlock_rest(m) }
}

/// gr_rwmutex_rlock without its fast path: NULL, or the fork rule.
///
/// # Safety
/// As for gr_rwmutex_rlock.
#[cold]
#[inline(never)]
unsafe fn rlock_rest(m: *mut gr_rwmutex) -> c_int {
    boundary(
        "gr_rwmutex_rlock",
        // SAFETY: m is NULL or a live rwmutex (our contract).
        AssertUnwindSafe(|| match unsafe { rwmutex_of(m) } {
            None => -libc::EINVAL,
            Some(rw) => rw.rlock(),
        }),
    )
}

/// gr_rwmutex_rlock after its fast path found a writer about (the reader is counted
/// in `slot`): the wait for it.
#[cold]
#[inline(never)]
fn rlock_wait(rw: &RwMutex, slot: usize) -> c_int {
    boundary(
        "gr_rwmutex_rlock",
        AssertUnwindSafe(|| {
            rw.rlock_wait(slot);
            0
        }),
    )
}

/// Takes a read lock if that needs no wait. Returns 0, -EBUSY (a writer holds it or
/// waits for it), -EINVAL (NULL). Never parks.
///
/// # Safety
/// `m` is NULL or a rwmutex from gr_rwmutex_new that has not been freed.
#[no_mangle]
pub unsafe extern "C" fn gr_rwmutex_tryrlock(m: *mut gr_rwmutex) -> c_int {
    boundary(
        "gr_rwmutex_tryrlock",
        // SAFETY: m is NULL or a live rwmutex (our contract).
        AssertUnwindSafe(|| match unsafe { rwmutex_of(m) } {
            None => -libc::EINVAL,
            Some(rw) => rw.try_rlock(),
        }),
    )
}

/// Drops a read lock; the last reader lets a waiting writer in. Any goroutine or
/// thread may drop it. Returns 0, -EPERM (it is not read-locked: detected when no
/// reader holds it, as Go detects it; nothing changes unless another call on the
/// mutex runs at that moment. A misuse that goes unnoticed, which readers that
/// moved CPUs while a writer waited make possible until that writer unlocks, is a
/// fatal error when the next writer comes, as every such call is in Go), -EINVAL
/// (NULL). Never parks.
///
/// # Safety
/// `m` is NULL or a rwmutex from gr_rwmutex_new that has not been freed.
#[no_mangle]
pub unsafe extern "C" fn gr_rwmutex_runlock(m: *mut gr_rwmutex) -> c_int {
    // As in gr_rwmutex_rlock: the counting runs without the boundary's frame (it
    // cannot panic); waking a writer runs inside.
    // SAFETY: m is NULL or a live rwmutex (our contract).
    if let Some(rw) = unsafe { rwmutex_of(m) } {
        if !in_forked_child() {
            return match rw.runlock_begin() {
                RUnlock::Done => 0,
                RUnlock::Slow { slot, left } => runlock_finish(rw, slot, left),
            };
        }
    }
    // SAFETY: our contract.
    unsafe { runlock_rest(m) }
}

/// gr_rwmutex_runlock without its fast path: NULL, or the fork rule.
///
/// # Safety
/// As for gr_rwmutex_runlock.
#[cold]
#[inline(never)]
unsafe fn runlock_rest(m: *mut gr_rwmutex) -> c_int {
    boundary(
        "gr_rwmutex_runlock",
        // SAFETY: m is NULL or a live rwmutex (our contract).
        AssertUnwindSafe(|| match unsafe { rwmutex_of(m) } {
            None => -libc::EINVAL,
            Some(rw) => rw.runlock(),
        }),
    )
}

/// gr_rwmutex_runlock after its fast path said `Slow`: the check for a read unlock
/// of an unlocked mutex, and letting a pending writer in (which wakes it).
#[cold]
#[inline(never)]
fn runlock_finish(rw: &RwMutex, slot: usize, left: i64) -> c_int {
    boundary(
        "gr_rwmutex_runlock",
        AssertUnwindSafe(|| rw.runlock_finish(slot, left)),
    )
}

/// Takes the write lock: waits for the writer before it, then holds back new
/// readers and waits for the readers inside to leave. Returns 0, -EINVAL (NULL).
/// May park; plain threads block.
///
/// # Safety
/// `m` is NULL or a rwmutex from gr_rwmutex_new that has not been freed.
#[no_mangle]
pub unsafe extern "C" fn gr_rwmutex_lock(m: *mut gr_rwmutex) -> c_int {
    boundary(
        "gr_rwmutex_lock",
        // SAFETY: m is NULL or a live rwmutex (our contract).
        AssertUnwindSafe(|| match unsafe { rwmutex_of(m) } {
            None => -libc::EINVAL,
            Some(rw) => rw.lock(),
        }),
    )
}

/// Takes the write lock if that needs no wait. Returns 0, -EBUSY (held or waited
/// for by anyone), -EINVAL (NULL). Never parks.
///
/// # Safety
/// `m` is NULL or a rwmutex from gr_rwmutex_new that has not been freed.
#[no_mangle]
pub unsafe extern "C" fn gr_rwmutex_trylock(m: *mut gr_rwmutex) -> c_int {
    boundary(
        "gr_rwmutex_trylock",
        // SAFETY: m is NULL or a live rwmutex (our contract).
        AssertUnwindSafe(|| match unsafe { rwmutex_of(m) } {
            None => -libc::EINVAL,
            Some(rw) => rw.try_lock(),
        }),
    )
}

/// Drops the write lock: the readers that waited meanwhile all get in, then the next
/// writer may. Any goroutine or thread may drop it. Returns 0, -EPERM (it is not
/// write-locked: nothing changes), -EINVAL (NULL). Never parks.
///
/// # Safety
/// `m` is NULL or a rwmutex from gr_rwmutex_new that has not been freed.
#[no_mangle]
pub unsafe extern "C" fn gr_rwmutex_unlock(m: *mut gr_rwmutex) -> c_int {
    boundary(
        "gr_rwmutex_unlock",
        // SAFETY: m is NULL or a live rwmutex (our contract).
        AssertUnwindSafe(|| match unsafe { rwmutex_of(m) } {
            None => -libc::EINVAL,
            Some(rw) => rw.unlock(),
        }),
    )
}

/// Frees the rwmutex. Returns 0, -EBUSY (locked for reading or writing, or somebody
/// waits for it: nothing is freed), -EINVAL (NULL). Never parks.
///
/// # Safety
/// `m` is NULL or a rwmutex from gr_rwmutex_new that has not been freed. If this call
/// frees it, no other call on it is running then (a call parked in it makes this one
/// free nothing) and none starts later.
#[no_mangle]
pub unsafe extern "C" fn gr_rwmutex_free(m: *mut gr_rwmutex) -> c_int {
    boundary(
        "gr_rwmutex_free",
        AssertUnwindSafe(|| {
            // SAFETY: m is NULL or a live rwmutex (our contract).
            let Some(rw) = (unsafe { rwmutex_of(m) }) else {
                return -libc::EINVAL;
            };
            if rw.is_busy() {
                return -libc::EBUSY;
            }
            // SAFETY: a live rwmutex boxed by gr_rwmutex_new, unlocked and unwaited,
            // and the caller does not use it again (our contract).
            drop(unsafe { Box::from_raw(m as *mut RwMutex) });
            0
        }),
    )
}
