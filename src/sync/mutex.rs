//! Mutexes that park goroutines (plain threads block on a futex): Go's
//! `sync.Mutex`, simplified.
//!
//! `state`: bit 0 = locked, the rest = number of queued waiters (times 2). Lock and
//! unlock without waiters are one CAS each. Waiters queue FIFO under `qlock`; the
//! waiter count changes only under `qlock`, so an unlocker that holds it sees an exact
//! count.
//!
//! Unlock with waiters normally releases the lock and wakes the first waiter, which
//! competes with newcomers (throughput: a running goroutine may take the lock at
//! once instead of waiting for the woken one to be scheduled). A woken waiter that
//! loses goes back to the *front* of the queue. Once a waiter has waited more than
//! 1 ms since it first queued, unlock hands the lock to it directly instead
//! (ownership passes while the locked bit stays set), so nobody starves (Go's
//! starvation mode, decided per wake-up).
//!
//! `woken` counts waiters that unlock woke without handing them the lock, until
//! each is accounted for again (holds the lock, or is queued and counted in
//! `state`): such a waiter still touches the mutex, so `is_busy` (gr_mutex_free's
//! check) counts it.

use core::ptr;

use super::shim::{
    can_spin, hb_acquire, hb_release, nanotime, AtomicU32, Guarded, Ordering, SpinLock, WaitReason,
    Waiter,
};

const LOCKED: u32 = 1;
const WAITER: u32 = 2;
/// A waiter queued longer than this gets the lock handed to it.
const STARVE_NS: i64 = 1_000_000;

struct MWaiter {
    w: Waiter,
    next: *mut MWaiter,
    /// When it first queued.
    since: i64,
    /// Set by unlock: the lock was handed over (we own it).
    handoff: bool,
}

struct Queue {
    first: *mut MWaiter,
    last: *mut MWaiter,
}

pub struct Mutex {
    state: AtomicU32,
    /// Waiters woken without a handoff that have not yet taken the lock or queued again.
    woken: AtomicU32,
    qlock: SpinLock,
    q: Guarded<Queue>,
}

// SAFETY: a Mutex holds no thread-bound state: the queued waiter pointers point at
// parked parties' stacks, valid from any thread while queued.
unsafe impl Send for Mutex {}
// SAFETY: the waiter queue is touched only under `qlock`; the state words are atomic.
unsafe impl Sync for Mutex {}

impl Default for Mutex {
    fn default() -> Self {
        Self::new()
    }
}

impl Mutex {
    pub fn new() -> Self {
        Mutex {
            state: AtomicU32::new(0),
            woken: AtomicU32::new(0),
            qlock: SpinLock::new(),
            q: Guarded::new(Queue {
                first: ptr::null_mut(),
                last: ptr::null_mut(),
            }),
        }
    }

    /// Locks, parking (or blocking) while another holds it. Returns 0.
    #[inline]
    pub fn lock(&self) -> i32 {
        if self
            .state
            .compare_exchange(0, LOCKED, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            hb_acquire(self);
            return 0;
        }
        self.lock_slow();
        hb_acquire(self);
        0
    }

    /// Takes the lock if it is free: true on success.
    #[inline]
    fn try_take(&self) -> bool {
        let mut s = self.state.load(Ordering::Relaxed);
        while s & LOCKED == 0 {
            match self.state.compare_exchange_weak(
                s,
                s | LOCKED,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(cur) => s = cur,
            }
        }
        false
    }

    #[cold]
    fn lock_slow(&self) {
        let mut since = 0i64;
        let mut woken_before = false;
        // True while this waiter is counted in `woken` (woken without a handoff).
        let mut counted_woken = false;
        let settle = |counted: &mut bool| {
            if core::mem::take(counted) {
                self.woken.fetch_sub(1, Ordering::Release);
            }
        };
        loop {
            // The holder may be running on another processor and about to unlock:
            // a short spin is cheaper than a park.
            if can_spin() {
                for _ in 0..4 {
                    for _ in 0..30 {
                        core::hint::spin_loop();
                    }
                    if self.try_take() {
                        settle(&mut counted_woken);
                        return;
                    }
                }
            }
            self.qlock.lock();
            let s = self.state.load(Ordering::Relaxed);
            if s & LOCKED == 0 {
                let took = self
                    .state
                    .compare_exchange(s, s | LOCKED, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok();
                if took {
                    settle(&mut counted_woken);
                }
                // SAFETY: this thread took qlock above and still holds it.
                unsafe { self.qlock.unlock() };
                if took {
                    return;
                }
                continue;
            }
            // Count ourselves in while it is still locked (fails if it was just
            // unlocked: then retry).
            if self
                .state
                .compare_exchange(s, s + WAITER, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
            {
                // SAFETY: this thread took qlock above and still holds it.
                unsafe { self.qlock.unlock() };
                continue;
            }
            // Counted in `state` now, under qlock.
            settle(&mut counted_woken);
            if since == 0 {
                since = nanotime().max(1);
            }
            let mut mw = MWaiter {
                w: Waiter::current(),
                next: ptr::null_mut(),
                since,
                handoff: false,
            };
            let mwp: *mut MWaiter = &mut mw;
            // SAFETY: qlock held; `mw` stays on this stack until an unlock wakes it.
            unsafe {
                self.q.with(|q| {
                    if woken_before {
                        (*mwp).next = q.first;
                        q.first = mwp;
                        if q.last.is_null() {
                            q.last = mwp;
                        }
                    } else {
                        if q.last.is_null() {
                            q.first = mwp;
                        } else {
                            (*q.last).next = mwp;
                        }
                        q.last = mwp;
                    }
                });
                (*mwp).w.block(&self.qlock, WaitReason::Mutex);
                if (*mwp).handoff {
                    return;
                }
            }
            woken_before = true;
            counted_woken = true;
        }
    }

    /// Takes the lock if free: 0, or `-EBUSY` if held.
    pub fn try_lock(&self) -> i32 {
        if self.try_take() {
            hb_acquire(self);
            0
        } else {
            -libc::EBUSY
        }
    }

    /// Unlocks: 0, or `-EPERM` when not locked. Wakes (or hands the lock to) the
    /// first waiter, if any.
    #[inline]
    pub fn unlock(&self) -> i32 {
        hb_release(self);
        let s = self.state.load(Ordering::Relaxed);
        if s & LOCKED == 0 {
            return -libc::EPERM;
        }
        if s == LOCKED
            && self
                .state
                .compare_exchange(LOCKED, 0, Ordering::Release, Ordering::Relaxed)
                .is_ok()
        {
            return 0;
        }
        self.unlock_slow()
    }

    #[cold]
    fn unlock_slow(&self) -> i32 {
        self.qlock.lock();
        let s = self.state.load(Ordering::Relaxed);
        if s & LOCKED == 0 {
            // SAFETY: this thread took qlock above and still holds it.
            unsafe { self.qlock.unlock() };
            return -libc::EPERM;
        }
        // SAFETY: qlock held; a dequeued waiter is ours to wake.
        unsafe {
            let w = self.q.with(|q| {
                let w = q.first;
                if !w.is_null() {
                    q.first = (*w).next;
                    if q.first.is_null() {
                        q.last = ptr::null_mut();
                    }
                }
                w
            });
            if w.is_null() {
                // No waiters (a waiter count is only ever changed under qlock).
                self.state.fetch_sub(LOCKED, Ordering::Release);
                self.qlock.unlock();
                return 0;
            }
            if nanotime() - (*w).since > STARVE_NS {
                (*w).handoff = true;
                self.state.fetch_sub(WAITER, Ordering::Release);
            } else {
                // Counted until it takes the lock or queues again (see `woken`).
                self.woken.fetch_add(1, Ordering::Relaxed);
                self.state.fetch_sub(WAITER + LOCKED, Ordering::Release);
            }
            self.qlock.unlock();
            Waiter::wake(&(*w).w);
        }
        0
    }

    /// True while locked, while anyone waits, or while a woken waiter has not yet
    /// taken the lock or queued again (it still touches the mutex).
    pub fn is_busy(&self) -> bool {
        self.qlock.lock();
        // `woken` first: a waiter takes the lock before it leaves `woken` (Release),
        // so reading 0 there (Acquire) means the state read next shows its lock.
        let woken = self.woken.load(Ordering::Acquire);
        let s = self.state.load(Ordering::Relaxed);
        // SAFETY: this thread took qlock above and still holds it.
        unsafe { self.qlock.unlock() };
        s != 0 || woken != 0
    }
}
