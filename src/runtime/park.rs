//! park / ready: the one way a goroutine blocks and is woken.
//!
//! A goroutine that must wait makes itself findable by a waker (a `Waiter` on some
//! object's list) while holding that object's `SpinLock`, then calls `park`. `park`
//! switches to the next runnable goroutine (or g0), and *that* context releases the
//! lock, after the parking goroutine's registers are saved. A waker that finds the
//! waiter therefore always finds a fully saved goroutine; it calls `Waiter::wake`
//! once and never touches the waiter again (its memory lives on the waiting side's
//! stack, and the waiting side may return and free anything as soon as it runs).
//!
//! A plain thread (not a goroutine) waits the same way, except that it releases the
//! lock itself and sleeps on the waiter's futex word.

use core::ptr;
use core::sync::atomic::{AtomicU32, Ordering};

use crate::runtime::g::{WaitReason, G, WAITING};
use crate::runtime::lock::{futex_wait, futex_wake, nanotime, SpinLock};
use crate::runtime::m::{current_m, M};
use crate::runtime::sched;

/// A party waiting on one object: a goroutine, or a plain thread (`g` null).
pub struct Waiter {
    pub g: *mut G,
    /// Set to 1 by `wake`; a plain thread sleeps on it.
    pub flag: AtomicU32,
    /// Link for the object's waiter list (the object's lock guards it).
    pub next: *mut Waiter,
}

impl Waiter {
    /// A waiter for whoever is calling: the current goroutine or this plain thread.
    pub fn current() -> Waiter {
        Waiter { g: crate::runtime::m::current_g(), flag: AtomicU32::new(0), next: ptr::null_mut() }
    }

    /// Releases `lock` (held by the caller, with `self` already findable under it) and
    /// waits until `wake`.
    ///
    /// # Safety
    /// `lock` is held; `self` stays where it is until woken.
    pub unsafe fn block(&self, lock: &SpinLock, reason: WaitReason) {
        if !self.g.is_null() {
            // SAFETY: we are the goroutine self.g, holding lock.
            unsafe { park(lock, reason) };
            return;
        }
        // SAFETY: the caller holds the lock.
        unsafe { lock.unlock() };
        while self.flag.load(Ordering::Acquire) == 0 {
            futex_wait(&self.flag, 0, -1);
        }
    }

    /// Wakes the waiter. After this returns the caller must not touch `w` again.
    ///
    /// # Safety
    /// `w` is a waiter that was blocked (or is about to block) and is woken once.
    pub unsafe fn wake(w: *const Waiter) {
        // SAFETY: w is valid until its flag is set or its goroutine readied.
        unsafe {
            let g = (*w).g;
            if g.is_null() {
                (*w).flag.store(1, Ordering::Release);
                futex_wake(&(*w).flag, 1);
            } else {
                (*w).flag.store(1, Ordering::Relaxed);
                sched::ready(g);
            }
        }
    }
}

unsafe fn unlock_after_switch(_m: *mut M, _g: *mut G, lock: usize) {
    // SAFETY: `park` passed the address of the lock its goroutine held.
    unsafe { (*(lock as *const SpinLock)).unlock() };
}

/// Parks the current goroutine, releasing `lock` once its context is saved.
///
/// # Safety
/// Must run on a goroutine that holds `lock` and has made itself findable under it.
pub unsafe fn park(lock: &SpinLock, reason: WaitReason) {
    let m = current_m();
    // SAFETY: a goroutine runs on an M; curg is this goroutine.
    unsafe {
        let g = (*m).curg;
        (*g).wait_reason = reason as u8;
        (*g).wait_since = nanotime();
        (*g).status.store(WAITING, Ordering::Release);
        sched::switch_away(m, g, unlock_after_switch, lock as *const SpinLock as usize);
    }
}
