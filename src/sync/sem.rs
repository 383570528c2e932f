//! A weighted semaphore with a FIFO queue: golang.org/x/sync/semaphore's `Weighted`
//! (`gr_sem`), and, unbounded, the counting semaphore `RwMutex` parks on (Go's
//! runtime `sema`).
//!
//! State under one spin lock: `avail` tokens free out of `size`, and a FIFO of
//! waiters, each asking for `n` tokens. Acquire takes tokens only when nobody is
//! queued (a newcomer never overtakes a waiter); release serves the queue from the
//! front while the front waiter's request fits, and stops at the first that does not:
//! a big request is served before later small ones, which wait behind it (x/sync's
//! rule, which keeps big requests from starving).
//!
//! A release hands the tokens over: it takes them out of `avail` for each waiter it
//! wakes, so a woken waiter returns with its tokens and touches the semaphore no more
//! (acquire; release; free is safe). It wins each waiter's `Waiter::claim` first; a
//! waiter whose claim it loses (its timeout fired, or its context was cancelled) is left
//! where it is: that waiter takes itself off, then lets the ones behind it have what
//! is free. So a waiter is on the queue exactly as long as it may touch the
//! semaphore, and `has_waiters` (gr_sem_free's check) sees it.
//!
//! Every wait ends in `park` below, the one place that turns the park's outcome into
//! this module's result.

use super::shim::{hb_acquire, hb_release, Guarded, SpinLock, WaitReason, Waiter, Wake};
use crate::runtime::waitlist::{waitlist_node, Links, List};

/// One party waiting for tokens (on its own stack; the semaphore's lock guards the
/// links).
struct SemWaiter {
    w: Waiter,
    n: i64,
    links: Links<SemWaiter>,
}

waitlist_node!(SemWaiter, links);

struct State {
    avail: i64,
    /// Tokens in all; `i64::MAX` for the unbounded counting semaphore.
    size: i64,
    queue: List<SemWaiter>,
}

pub struct Semaphore {
    lock: SpinLock,
    st: Guarded<State>,
}

// SAFETY: a Semaphore holds no thread-bound state: queued waiter pointers point at
// parked parties' stacks, valid from any thread while queued.
unsafe impl Send for Semaphore {}
// SAFETY: the state and queue are touched only under `lock`.
unsafe impl Sync for Semaphore {}

/// Whether a wait may end early: a timeout and the goroutine's context (gr_sem's
/// waits are cancellation points), or never (the semaphores of `RwMutex`, whose
/// locks are not cancellation points, as in Go).
#[derive(Clone, Copy)]
pub(crate) enum Wait {
    /// Until granted, `timeout_ns` (negative: no timeout), or the context's cancel.
    Interruptible { timeout_ns: i64 },
    /// Until granted.
    Uninterruptible,
}

impl State {
    /// Serves the queue from the front while each request fits: takes each served
    /// waiter off (its tokens out of `avail`) and returns them on a private list, to
    /// be woken once the lock is released. A waiter whose claim someone else won (it
    /// gave up) is skipped: it leaves by itself, and stays queued (so `has_waiters`
    /// counts it) until it no longer touches the semaphore.
    ///
    /// # Safety
    /// The semaphore's lock is held.
    unsafe fn serve(&mut self) -> List<SemWaiter> {
        let mut woken = List::new();
        let (queue, avail) = (&mut self.queue, &mut self.avail);
        // SAFETY: the lock is held (our contract), so queued waiters are live and
        // ours to unlink; a claimed one is ours to wake.
        unsafe {
            List::walk(queue.first(), |sw| {
                if (*sw).n > *avail {
                    // Everyone behind it waits too. (If it has given up, it serves
                    // the queue itself once it has taken itself off.)
                    return false;
                }
                if (*sw).w.claim() {
                    *avail -= (*sw).n;
                    queue.unlink(sw);
                    woken.push(sw);
                }
                true
            });
        }
        woken
    }
}

impl Semaphore {
    /// A weighted semaphore of `size` tokens, all free.
    pub fn new(size: i64) -> Semaphore {
        Semaphore {
            lock: SpinLock::new(),
            st: Guarded::new(State {
                avail: size,
                size,
                queue: List::new(),
            }),
        }
    }

    /// An unbounded counting semaphore at 0 (Go's runtime `sema`): `release` adds
    /// tokens, `acquire` waits for them.
    pub(crate) fn counting() -> Semaphore {
        let s = Semaphore::new(i64::MAX);
        // SAFETY: nobody else can see `s` yet.
        unsafe { s.st.with(|st| st.avail = 0) };
        s
    }

    /// Takes `n` tokens, waiting in FIFO order (`reason` is what dumps show). 0,
    /// `-EINVAL` (`n` < 0, or more than the semaphore's size: it could never be
    /// served), `-ETIMEDOUT`, or (`Wait::Interruptible`) the goroutine's context
    /// error.
    pub(crate) fn acquire(&self, n: i64, wait: Wait, reason: WaitReason) -> i32 {
        if n < 0 {
            return -libc::EINVAL;
        }
        self.lock.lock();
        // SAFETY: we hold the lock, which guards `st`.
        let (free, size) = unsafe {
            self.st.with(|st| {
                let free = st.queue.is_empty() && st.avail >= n;
                if free {
                    st.avail -= n;
                }
                (free, st.size)
            })
        };
        if free || n > size {
            // SAFETY: taken above.
            unsafe { self.lock.unlock() };
            if free {
                hb_acquire(self);
                return 0;
            }
            return -libc::EINVAL;
        }
        if let Wait::Interruptible { timeout_ns: 0 } = wait {
            // SAFETY: taken above.
            unsafe { self.lock.unlock() };
            return -libc::ETIMEDOUT;
        }
        let mut sw = SemWaiter {
            w: match wait {
                Wait::Interruptible { .. } => Waiter::cancellable(),
                Wait::Uninterruptible => Waiter::current(),
            },
            n,
            links: Links::new(),
        };
        let swp: *mut SemWaiter = &mut sw;
        // SAFETY: the lock is held; sw stays on this stack until it is off the queue
        // (a release unlinks it before waking it; on giving up we unlink it below).
        unsafe { self.st.with(|st| st.queue.push(swp)) };
        // SAFETY: the lock is held and sw is findable under it, pinned on our stack.
        let r = unsafe { self.park(swp, wait, reason) };
        if r == 0 {
            hb_acquire(self);
            return 0;
        }
        self.lock.lock();
        // SAFETY: the lock is held; sw lost its claim, so it is still queued (only a
        // release that wins the claim takes a waiter off) and ours to unlink;
        // serve()'s list is ours to wake.
        unsafe {
            let woken = self.st.with(|st| {
                st.queue.unlink(swp);
                if st.avail > 0 {
                    st.serve()
                } else {
                    List::new()
                }
            });
            self.lock.unlock();
            wake_all(woken);
        }
        r
    }

    /// Waits on the queue: 0 when a release served `sw`, else the reason it gave up.
    /// The one place a semaphore wait's outcome is read.
    ///
    /// # Safety
    /// The lock is held and `sw` is queued under it, on the caller's stack until the
    /// wait is over and the caller has unlinked it.
    unsafe fn park(&self, sw: *mut SemWaiter, wait: Wait, reason: WaitReason) -> i32 {
        // SAFETY: our contract is block's and wait's.
        unsafe {
            match wait {
                Wait::Uninterruptible => {
                    (*sw).w.block(&self.lock, reason);
                    0
                }
                Wait::Interruptible { timeout_ns } => {
                    match (*sw).w.wait(&self.lock, reason, timeout_ns) {
                        Wake::Woken => 0,
                        Wake::TimedOut => -libc::ETIMEDOUT,
                        Wake::Cancelled(e) => e,
                    }
                }
            }
        }
    }

    /// Takes `n` tokens if they are free and nobody waits: 1, else 0; `-EINVAL` for a
    /// negative `n`.
    pub fn try_acquire(&self, n: i64) -> i32 {
        if n < 0 {
            return -libc::EINVAL;
        }
        self.lock.lock();
        // SAFETY: we hold the lock, which guards `st`.
        let got = unsafe {
            self.st.with(|st| {
                let got = st.queue.is_empty() && st.avail >= n;
                if got {
                    st.avail -= n;
                }
                got
            })
        };
        // SAFETY: taken above.
        unsafe { self.lock.unlock() };
        if got {
            hb_acquire(self);
        }
        got as i32
    }

    /// Gives back `n` tokens and serves the waiters they satisfy. 0, or `-EINVAL`
    /// (`n` < 0, or more tokens than were taken: nothing changes).
    pub fn release(&self, n: i64) -> i32 {
        if n < 0 {
            return -libc::EINVAL;
        }
        hb_release(self);
        self.lock.lock();
        // SAFETY: we hold the lock (serve's contract); the woken list is ours to wake
        // after the unlock.
        unsafe {
            let woken = self.st.with(|st| match st.avail.checked_add(n) {
                Some(a) if a <= st.size => {
                    st.avail = a;
                    Ok(st.serve())
                }
                _ => Err(()),
            });
            self.lock.unlock();
            match woken {
                Ok(w) => {
                    wake_all(w);
                    0
                }
                Err(()) => -libc::EINVAL,
            }
        }
    }

    /// True while somebody waits for tokens.
    pub fn has_waiters(&self) -> bool {
        self.lock.lock();
        // SAFETY: we hold the lock, which guards `st`.
        let busy = unsafe { self.st.with(|st| !st.queue.is_empty()) };
        // SAFETY: taken above.
        unsafe { self.lock.unlock() };
        busy
    }
}

/// Wakes the waiters `serve` took off, each taken off the private list first
/// (`drain`: after the wake the waiter may be gone).
///
/// # Safety
/// The list came from `serve`, and the lock is released.
unsafe fn wake_all(mut woken: List<SemWaiter>) {
    // SAFETY: our contract: each was claimed and unlinked by serve, so it is ours to
    // wake, once; the list is private.
    unsafe {
        woken.drain(|sw| {
            hb_release(&(*sw).w);
            Waiter::wake(&(*sw).w);
        });
    }
}
