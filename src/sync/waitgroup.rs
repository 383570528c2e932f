//! Wait groups: Go's `sync.WaitGroup`.
//!
//! The counter is an atomic changed by CAS without the lock as long as it neither
//! reaches zero nor goes below it (so `done` from many goroutines is one CAS each).
//! The transition to zero happens only under the lock, and waiters check the
//! counter only under the lock: a waiter that sees zero therefore runs after the
//! zeroing `add` released the lock, and that `add` touches only the waiters it took
//! off the list afterwards, never the wait group. So `wait; free` is safe.
//!
//! A stale wake-up cannot release a waiter early: the zeroing `add` takes the
//! waiters off the list in the same critical section as the CAS to zero, and claims
//! each there: a waiter whose context was cancelled meanwhile (`wait` is a
//! cancellation point) lost nothing, and leaves after taking this lock to unlink
//! itself, so the zeroing `add` never touches it after the unlock.

use core::ptr;

use super::shim::{
    hb_acquire, hb_release, AtomicI64, Guarded, Ordering, SpinLock, WaitReason, Waiter, Wake,
};

pub struct WaitGroup {
    count: AtomicI64,
    lock: SpinLock,
    /// Parked waiters, linked through `Waiter::next` (guarded by `lock`).
    waiters: Guarded<*mut Waiter>,
}

// SAFETY: a WaitGroup holds no thread-bound state: the listed waiter pointers point
// at parked parties' stacks, valid from any thread while listed.
unsafe impl Send for WaitGroup {}
// SAFETY: the waiter list is touched only under `lock`; the counter is atomic.
unsafe impl Sync for WaitGroup {}

impl Default for WaitGroup {
    fn default() -> Self {
        Self::new()
    }
}

impl WaitGroup {
    pub fn new() -> Self {
        WaitGroup {
            count: AtomicI64::new(0),
            lock: SpinLock::new(),
            waiters: Guarded::new(ptr::null_mut()),
        }
    }

    /// Adds `delta` (may be negative): 0, or `-EINVAL` if the counter would go below
    /// zero or overflow (nothing changes then). Reaching zero wakes every waiter.
    pub fn add(&self, delta: i64) -> i32 {
        hb_release(self);
        let mut old = self.count.load(Ordering::Relaxed);
        loop {
            let Some(new) = old.checked_add(delta) else {
                return -libc::EINVAL;
            };
            if new < 0 {
                return -libc::EINVAL;
            }
            if new == 0 && old != 0 {
                break;
            }
            match self
                .count
                .compare_exchange_weak(old, new, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return 0,
                Err(cur) => old = cur,
            }
        }
        self.add_slow(delta)
    }

    #[cold]
    fn add_slow(&self, delta: i64) -> i32 {
        self.lock.lock();
        let mut old = self.count.load(Ordering::Relaxed);
        let new = loop {
            let new = match old.checked_add(delta) {
                Some(n) if n >= 0 => n,
                _ => {
                    // SAFETY: this thread took the lock above and still holds it.
                    unsafe { self.lock.unlock() };
                    return -libc::EINVAL;
                }
            };
            match self
                .count
                .compare_exchange_weak(old, new, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => break new,
                Err(cur) => old = cur,
            }
        };
        // SAFETY: lock held; taken waiters whose claim we win are ours to wake (read
        // `next` before each wake: after it the waiter may be gone); the others are
        // not touched after the unlock.
        unsafe {
            let mut taken = if new == 0 {
                self.waiters
                    .with(|l| core::mem::replace(l, ptr::null_mut()))
            } else {
                ptr::null_mut()
            };
            let mut w: *mut Waiter = ptr::null_mut();
            while !taken.is_null() {
                let next = (*taken).next;
                if (*taken).claim() {
                    (*taken).next = w;
                    w = taken;
                }
                taken = next;
            }
            self.lock.unlock();
            while !w.is_null() {
                let next = (*w).next;
                hb_release(w);
                Waiter::wake(w);
                w = next;
            }
        }
        0
    }

    /// Blocks until the counter is zero (returns at once if it is). Returns 0, or the
    /// context's error when the waiting goroutine's context is cancelled.
    pub fn wait(&self) -> i32 {
        self.lock.lock();
        if self.count.load(Ordering::Acquire) == 0 {
            hb_acquire(self);
            // SAFETY: this thread took the lock above and still holds it.
            unsafe { self.lock.unlock() };
            return 0;
        }
        let mut w = Waiter::cancellable();
        let wp: *mut Waiter = &mut w;
        // SAFETY: lock held; `w` stays on this stack until the zeroing add wakes it,
        // or until we took it off the list again (under the lock) after a cancel.
        unsafe {
            self.waiters.with(|l| {
                (*wp).next = *l;
                *l = wp;
            });
            match (*wp).wait(&self.lock, WaitReason::WaitGroup, -1) {
                Wake::Woken => {
                    hb_acquire(wp);
                    0
                }
                Wake::Cancelled(e) => {
                    self.lock.lock();
                    self.waiters.with(|l| {
                        let mut cur: *mut *mut Waiter = l;
                        while !(*cur).is_null() {
                            if *cur == wp {
                                *cur = (*wp).next;
                                break;
                            }
                            cur = &mut (**cur).next;
                        }
                    });
                    self.lock.unlock();
                    e
                }
                Wake::TimedOut => unreachable!("a wait group wait without a timeout timed out"),
            }
        }
    }

    /// True while somebody is blocked in `wait`.
    pub fn has_waiters(&self) -> bool {
        self.lock.lock();
        // SAFETY: we took the lock, which guards `waiters`.
        let busy = unsafe { self.waiters.with(|l| !l.is_null()) };
        // SAFETY: this thread took the lock above and still holds it.
        unsafe { self.lock.unlock() };
        busy
    }
}
