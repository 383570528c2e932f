//! One-time initialisation: Go's `sync.Once` (`gr_once`), in memory the caller owns
//! (static storage works, zeroed is the initial state), so it needs no constructor.
//!
//! `state`: `NEW` (0), `RUNNING` while the first caller runs the function, `DONE`.
//! The fast path is one acquire load of `DONE`. Otherwise callers meet under the spin
//! lock `lock` (also all-zero when free): the first moves the state to `RUNNING`,
//! records who it is, runs the function without the lock, then sets `DONE` and wakes
//! every waiter; the others queue on `waiters` and park until then. So every caller
//! returns after the function has returned (Go's guarantee, which a plain flag would
//! not give), and the waiters are woken after `DONE` is set, under the lock, so a
//! woken waiter never touches the once again.
//!
//! A function that calls `do_once` on its own once would wait for itself for ever (Go
//! deadlocks); the runner's identity (its goroutine id, or its thread for a plain
//! thread) lets that call return `-EDEADLK` instead.
//!
//! Waiting for the function is not a cancellation point: it is a lock in Go.

use core::cell::UnsafeCell;
use core::ptr;
use core::sync::atomic::{AtomicU32, Ordering};

use super::shim::{hb_acquire, hb_release};
// The runtime's own lock and waiter, not the shim's: a `Once` lives in C memory that
// is all zero at first, which only the runtime's types promise (it is not among the
// loom models).
use crate::runtime::g::WaitReason;
use crate::runtime::lock::SpinLock;
use crate::runtime::park::Waiter;

const NEW: u32 = 0;
const RUNNING: u32 = 1;
const DONE: u32 = 2;

/// The caller-owned state (24 bytes, all zero at first: `gr_once`'s layout).
#[repr(C)]
pub struct Once {
    state: AtomicU32,
    lock: SpinLock,
    /// Parked callers, linked through `Waiter::next` (guarded by `lock`).
    waiters: UnsafeCell<*mut Waiter>,
    /// Who runs the function while `RUNNING` (guarded by `lock`): see `caller_id`.
    runner: UnsafeCell<u64>,
}

// SAFETY: the fields behind UnsafeCell are touched only under `lock`; the listed
// waiters point at parked parties' stacks, valid from any thread.
unsafe impl Sync for Once {}

/// Names the caller while it may run the function: its goroutine id (> 0), or for a
/// plain thread its pthread_t with the top bit set (so the two never collide).
fn caller_id() -> u64 {
    let g = crate::runtime::sched::self_id();
    if g > 0 {
        g as u64
    } else {
        // SAFETY: pthread_self has no preconditions.
        (unsafe { libc::pthread_self() } as u64) | (1 << 63)
    }
}

impl Once {
    /// Runs `f` if no call on this once has run it yet; otherwise waits until the
    /// call that runs it has returned. 0, or `-EDEADLK` when `f` itself calls
    /// `do_once` on the same once.
    pub fn do_once(&self, f: impl FnOnce()) -> i32 {
        if self.state.load(Ordering::Acquire) == DONE {
            hb_acquire(self);
            return 0;
        }
        self.do_slow(f)
    }

    #[cold]
    fn do_slow(&self, f: impl FnOnce()) -> i32 {
        let me = caller_id();
        self.lock.lock();
        match self.state.load(Ordering::Relaxed) {
            DONE => {
                // SAFETY: taken above.
                unsafe { self.lock.unlock() };
                hb_acquire(self);
                0
            }
            NEW => {
                self.state.store(RUNNING, Ordering::Relaxed);
                // SAFETY: the lock guards `runner`.
                unsafe {
                    *self.runner.get() = me;
                    self.lock.unlock();
                }
                f();
                hb_release(self);
                self.lock.lock();
                self.state.store(DONE, Ordering::Release);
                // SAFETY: the lock guards `waiters` and `runner`; the taken waiters
                // are ours to wake (read `next` before each wake: after it the
                // waiter may be gone), after the unlock.
                unsafe {
                    *self.runner.get() = 0;
                    let mut w = core::mem::replace(&mut *self.waiters.get(), ptr::null_mut());
                    self.lock.unlock();
                    while !w.is_null() {
                        let next = (*w).next;
                        Waiter::wake(w);
                        w = next;
                    }
                }
                0
            }
            _ => {
                // SAFETY: the lock guards `runner`.
                if unsafe { *self.runner.get() } == me {
                    // SAFETY: taken above.
                    unsafe { self.lock.unlock() };
                    return -libc::EDEADLK;
                }
                let mut w = Waiter::current();
                let wp: *mut Waiter = &mut w;
                // SAFETY: the lock is held; w stays on this stack until the runner
                // wakes it (it takes the whole list, under the lock, once DONE).
                unsafe {
                    (*wp).next = *self.waiters.get();
                    *self.waiters.get() = wp;
                    (*wp).block(&self.lock, WaitReason::Once);
                }
                hb_acquire(self);
                0
            }
        }
    }
}
