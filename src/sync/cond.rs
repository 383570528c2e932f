//! Condition variables on a `Mutex`: Go's `sync.Cond` (`gr_cond`), with a timed wait.
//!
//! A waiter queues itself (FIFO, under the cond's own spin lock) *before* it unlocks
//! the mutex, so a signal sent after the unlock, by a goroutine that took the mutex
//! next, finds it: no wake-up is lost between the unlock and the park. It parks only
//! after the unlock, and not under the cond's lock, because unlocking the mutex may
//! wake a goroutine and should not happen while other parties spin on our lock. So a
//! queued waiter is in one of two states, under the cond's lock:
//! - not yet parked: a signal marks it `notified`; the waiter sees the mark when it
//!   comes back to park, and returns without parking;
//! - parked (`parked` set, its lock released by `Waiter::wait` once it is saved): a
//!   signal must win its `Waiter::claim` to wake it. It loses when the waiter's
//!   timeout or its goroutine's context (a cond wait is a cancellation point) won
//!   first; then it tries the next waiter, so a signal is never spent on a waiter
//!   that is leaving.
//!
//! Freeing: a waiter leaves the queue when a signal wakes it (the signaller unlinks
//! it, and the woken waiter never touches the cond again) or by itself (notified,
//! timed out, cancelled), under the lock, as the last thing it does to the cond. So
//! while any waiter may still touch the cond it is queued, and `has_waiters`
//! (gr_cond_free's check) says so.
//!
//! Signal and broadcast never touch the mutex. The woken waiter relocks the mutex
//! before it returns, whatever ended its wait (a cancel too), as
//! `pthread_cond_timedwait` does.
//! `wait` returns `-EPERM` (and does not wait) when the mutex is not locked.
//!
//! Every wait ends in `park` below, the one place that turns the park's outcome into
//! the waiter's result.

use core::ptr;

use super::mutex::Mutex;
use super::shim::{hb_acquire, hb_release, Guarded, SpinLock, WaitReason, Waiter, Wake};
use crate::runtime::waitlist::{waitlist_node, Links, List};

struct CondWaiter {
    w: Waiter,
    links: Links<CondWaiter>,
    /// Set (under the lock) once it has released the lock to park.
    parked: bool,
    /// Set by a signal that found it not yet parked.
    notified: bool,
}

waitlist_node!(CondWaiter, links);

/// Offers a signal to `cw`: a not-yet-parked waiter is marked `notified` (it stays
/// queued and takes itself off: `Some(null)`); a parked one whose claim this call
/// wins is taken off and returned, to be woken once the lock is released. None when
/// it cannot take it: already notified, or parked with its claim lost (it timed
/// out); both leave by themselves.
///
/// A waiter is taken off the queue only by a signal that wakes it, or by itself: so
/// while it may still touch the cond it is queued, and `has_waiters` (the free
/// check) sees it.
///
/// # Safety
/// The cond's lock is held and `cw` is on `q`.
unsafe fn offer(q: &mut List<CondWaiter>, cw: *mut CondWaiter) -> Option<*mut CondWaiter> {
    // SAFETY: the lock is held, so queued waiters are live and ours to unlink.
    unsafe {
        if (*cw).notified {
            return None;
        }
        if !(*cw).parked {
            (*cw).notified = true;
            return Some(ptr::null_mut());
        }
        if (*cw).w.claim() {
            q.unlink(cw);
            return Some(cw);
        }
    }
    None
}

/// Gives one signal to the first waiter that takes it (`offer`); None if none does.
///
/// # Safety
/// The cond's lock is held.
unsafe fn signal_one(q: &mut List<CondWaiter>) -> Option<*mut CondWaiter> {
    let mut took = None;
    // SAFETY: the lock is held (our contract); offer may unlink the node it gets.
    unsafe {
        List::walk(q.first(), |cw| {
            took = offer(q, cw);
            took.is_none()
        });
    }
    took
}

pub struct Cond {
    /// The mutex given to `new`; it must outlive the cond (gr_cond_new's contract).
    m: *const Mutex,
    lock: SpinLock,
    q: Guarded<List<CondWaiter>>,
}

// SAFETY: a Cond holds no thread-bound state: the mutex is Sync and outlives it, and
// queued waiter pointers point at parked parties' stacks, valid from any thread.
unsafe impl Send for Cond {}
// SAFETY: the queue is touched only under `lock`; `m` is immutable.
unsafe impl Sync for Cond {}

impl Cond {
    /// A condition variable on `m`.
    ///
    /// # Safety
    /// `m` is a live mutex that outlives the cond.
    pub unsafe fn new(m: *const Mutex) -> Cond {
        Cond {
            m,
            lock: SpinLock::new(),
            q: Guarded::new(List::new()),
        }
    }

    fn mutex(&self) -> &Mutex {
        // SAFETY: `new`'s contract: the mutex outlives the cond.
        unsafe { &*self.m }
    }

    /// With the mutex locked: unlocks it, waits for a signal (at most `timeout_ns`;
    /// negative: no limit), and locks it again. 0 when signalled, `-ETIMEDOUT`, the
    /// goroutine's context error (-ECANCELED, -ETIMEDOUT), or `-EPERM` (the mutex was
    /// not locked: nothing done).
    pub fn wait(&self, timeout_ns: i64) -> i32 {
        // Read now: once a signal has woken us, the cond may be freed.
        let m = self.mutex();
        let mut cw = CondWaiter {
            w: Waiter::cancellable(),
            links: Links::new(),
            parked: false,
            notified: false,
        };
        let cwp: *mut CondWaiter = &mut cw;
        self.lock.lock();
        // SAFETY: the lock is held; cw stays on this stack until it is off the queue
        // (a signal that wakes it unlinks it; on every other path we do, below).
        unsafe { self.q.with(|q| q.push(cwp)) };
        // SAFETY: taken above.
        unsafe { self.lock.unlock() };
        hb_release(self);
        if m.unlock() != 0 {
            self.lock.lock();
            // SAFETY: the lock is held; cw is queued (not parked, so no signal took
            // it off). A signal that marked it meanwhile goes to the next waiter.
            unsafe {
                let pass_on = self.q.with(|q| {
                    q.unlink(cwp);
                    if (*cwp).notified {
                        signal_one(q)
                    } else {
                        None
                    }
                });
                self.lock.unlock();
                wake(pass_on);
            }
            return -libc::EPERM;
        }
        self.lock.lock();
        // SAFETY: the lock is held (park's contract for the parked case: cw queued,
        // pinned on this stack until it is off the queue).
        let rc = unsafe {
            if (*cwp).notified {
                0
            } else {
                (*cwp).parked = true;
                self.park(cwp, timeout_ns)
            }
        };
        // SAFETY: notified, or gave up: still queued (only a signal that wakes a
        // waiter takes it off), so the cond is alive and cw ours to unlink. Woken:
        // the signal took it off, and the cond is not touched again.
        unsafe {
            if List::is_linked(cwp) {
                if rc == 0 {
                    // Notified before parking: the lock is still held.
                    self.q.with(|q| q.unlink(cwp));
                } else {
                    self.lock.lock();
                    self.q.with(|q| q.unlink(cwp));
                }
                self.lock.unlock();
            }
        }
        hb_acquire(self);
        m.lock();
        rc
    }

    /// Parks a queued waiter: 0 when a signal woke it, else why it gave up
    /// (-ETIMEDOUT, or the goroutine's context error: a cond wait is a cancellation
    /// point). The one place a cond wait's outcome is read.
    ///
    /// # Safety
    /// The lock is held and `cw` is queued under it, marked parked, on the caller's
    /// stack until it is off the queue.
    unsafe fn park(&self, cw: *mut CondWaiter, timeout_ns: i64) -> i32 {
        // SAFETY: our contract is wait's.
        match unsafe { (*cw).w.wait(&self.lock, WaitReason::Cond, timeout_ns) } {
            Wake::Woken => 0,
            Wake::TimedOut => -libc::ETIMEDOUT,
            Wake::Cancelled(e) => e,
        }
    }

    /// Wakes the first waiter, if any. Returns 0.
    pub fn signal(&self) -> i32 {
        hb_release(self);
        self.lock.lock();
        // SAFETY: the lock is held (signal_one's contract); a returned waiter was
        // claimed by us, and is woken once, after the unlock.
        unsafe {
            let cw = self.q.with(|q| signal_one(q));
            self.lock.unlock();
            wake(cw);
        }
        0
    }

    /// Wakes every waiter. Returns 0.
    pub fn broadcast(&self) -> i32 {
        hb_release(self);
        self.lock.lock();
        // SAFETY: the lock is held; the waiters we claim are taken off the queue onto
        // a private list, and woken once, after the unlock, each taken off that list
        // first (drain).
        unsafe {
            let mut woken = List::new();
            self.q.with(|q| {
                List::walk(q.first(), |cw| {
                    if let Some(took) = offer(q, cw) {
                        if !took.is_null() {
                            woken.push(took);
                        }
                    }
                    true
                })
            });
            self.lock.unlock();
            // Off the private list before the wake: a woken waiter that found itself
            // still linked would unlink itself from the cond's queue, without its lock.
            woken.drain(|cw| wake(Some(cw)));
        }
        0
    }

    /// True while somebody waits.
    pub fn has_waiters(&self) -> bool {
        self.lock.lock();
        // SAFETY: we hold the lock, which guards the queue.
        let busy = unsafe { self.q.with(|q| !q.is_empty()) };
        // SAFETY: taken above.
        unsafe { self.lock.unlock() };
        busy
    }
}

/// Wakes a waiter `signal_one` returned (none for `None` or null).
///
/// # Safety
/// The waiter was claimed and taken off by `signal_one`, and the lock is released.
unsafe fn wake(cw: Option<*mut CondWaiter>) {
    if let Some(cw) = cw.filter(|cw| !cw.is_null()) {
        // SAFETY: our contract: it is ours to wake, once; nothing touches it after.
        unsafe { Waiter::wake(&(*cw).w) };
    }
}
