//! Timers and tickers whose firing is a value on a channel: Go's `time.Timer` and
//! `time.Ticker` (`gr_timer`).
//!
//! A `Timer` owns a channel of `i64` (the monotonic time of the firing, ns) with one
//! buffer slot, and at most one node on the runtime's timer heap (`runtime::timer`):
//! arming and cancelling are O(log n) under the heap's lock, no thread or goroutine
//! per timer. A periodic timer (a ticker) keeps its one node, which the heap moves to
//! the next period after each firing. The firing callback runs inside the heap (its
//! lock held) and *tries* to send: while a value is unread the buffer is full and the
//! tick is dropped, as Go's tickers drop ticks for a slow reader.
//!
//! The rule of Go 1.23: once `stop` or `reset` has returned, no value from before it
//! is received. Go 1.23 gets there by making timer channels synchronous (a value
//! counts as sent only when received). Here the channel keeps its one-slot buffer,
//! and `stop`/`reset` do two things, in this order, under the timer's own lock:
//!
//! 1. `timer::cancel` of the armed node. It is a barrier: when it returns, the
//!    callback either will never run or has run to completion, its try-send
//!    included. No sender of an old value is left in flight after this step.
//! 2. Drain the buffer (a non-blocking receive). Any old value that step 1 let
//!    through is now either gone from the buffer or was received before the drain,
//!    that is, before `stop` returned, which the rule allows.
//!
//! Reversing the steps would break the rule: a firing between the drain and the
//! cancel would leave an old value behind. Doing step 2 without step 1's barrier
//! (say, a flag the callback checks) would race with a callback that has checked the
//! flag but not yet sent. `reset` then arms the new node before releasing the lock;
//! a value that arrives after that is new. The capacity-1 channel also gives the
//! return value its Go 1.23 meaning: `stop` returns 1 when the cancel took an armed
//! node off the heap *or* the drain removed an unread value (either way, a fire that
//! nobody will see), and 0 when the last fire was already received (or there was
//! none since the last stop).
//!
//! A parked receiver gets the value directly from the callback (the channel's
//! hand-off), so it never sits in the buffer and no drain can take it back: that
//! receive happened before `stop`, and `stop` then returns 0.
//!
//! Lock order: timer lock, then the heap's lock (cancel/add), then the channel's
//! lock (drain), then a receiving select's. The callback runs under the heap's lock
//! and takes the channel's (and the select's), never the timer's: no cycle, because
//! nothing waits for a heap's lock while it holds a channel's or a select's. A
//! switch runs due timers only once the goroutine it left has released its lock
//! (`M::due`), and a parked wait arms its timeout after releasing its lock
//! (`park::arm_then_unlock`).
//!
//! Memory (a million pending timers are the target): the timer, its channel and the
//! channel's one slot are one allocation (`Chan::with_buffer`), 136 bytes (a 144-byte
//! malloc chunk), plus the heap's 44 bytes per node: ~190 bytes per pending timer.

use core::cell::{Cell, UnsafeCell};
use core::mem::ManuallyDrop;
use core::ptr;

use super::chan::Chan;
use super::shim::SpinLock;
use crate::runtime::lock::nanotime;
use crate::runtime::timer::{self, TimerId};

/// A timer (period 0) or ticker and its channel. Made by `Timer::new` as a `Box`.
pub struct Timer {
    /// Elements are `i64` (monotonic ns of the firing); capacity 1, in `slot`.
    chan: ManuallyDrop<Chan>,
    /// The channel's one buffer slot (the channel touches it under its own lock).
    slot: UnsafeCell<[u8; 8]>,
    /// Guards `armed`, and makes `stop`/`reset` calls on one timer one at a time.
    lock: SpinLock,
    /// The node on the heap while armed (it may have fired since: `cancel` says).
    armed: Cell<Option<TimerId>>,
}

// SAFETY: a Timer holds no thread-bound state; its channel is Send, the slot is
// plain bytes, and `armed` is touched only under `lock`.
unsafe impl Send for Timer {}
// SAFETY: shared access is through `lock` (for `armed`), the channel's own lock (for
// the channel and the slot), and the heap's lock (for the node).
unsafe impl Sync for Timer {}

const ELEM: usize = core::mem::size_of::<i64>();

impl Timer {
    /// A timer that fires `ns` from now (<= 0: at once), then every `period_ns` if
    /// that is > 0. None if `period_ns` is negative.
    pub fn new(ns: i64, period_ns: i64) -> Option<Box<Timer>> {
        if period_ns < 0 {
            return None;
        }
        let mut b = Box::<Timer>::new_uninit();
        let p = b.as_mut_ptr();
        // SAFETY: p points to the box's uninitialised Timer; every field is written
        // once, in place, before assume_init. The channel's buffer is the box's own
        // slot, which stays where it is for the box's life (the channel's with the
        // Timer's), as with_buffer requires.
        let t = unsafe {
            ptr::addr_of_mut!((*p).slot).write(UnsafeCell::new([0; ELEM]));
            let slot = (*ptr::addr_of_mut!((*p).slot)).get() as *mut u8;
            ptr::addr_of_mut!((*p).chan).write(Chan::with_buffer(ELEM, 1, slot));
            ptr::addr_of_mut!((*p).lock).write(SpinLock::new());
            ptr::addr_of_mut!((*p).armed).write(Cell::new(None));
            b.assume_init()
        };
        t.lock.lock();
        t.arm(ns, period_ns);
        // SAFETY: taken just above.
        unsafe { t.lock.unlock() };
        Some(t)
    }

    /// The timer's channel (owned by the timer: valid until it is freed).
    pub fn chan(&self) -> &Chan {
        &self.chan
    }

    /// Arms the heap node. The caller holds `lock`, and nothing is armed.
    fn arm(&self, ns: i64, period_ns: i64) {
        let when = timer::deadline_after(ns);
        let arg = self as *const Timer as usize;
        // SAFETY: fire(arg) is sound on any thread with the heap's lock held while
        // the Timer lives; every path that ends its life (`Drop`) cancels the node
        // first, and cancel waits for a running callback.
        let id = unsafe {
            if period_ns > 0 {
                timer::add_periodic(when, period_ns, fire, arg)
            } else {
                timer::add(when, fire, arg)
            }
        };
        self.armed.set(Some(id));
    }

    /// Steps 1 and 2 of the file's comment; the caller holds `lock`. True when a fire
    /// was prevented (an armed node cancelled, or an unread value drained).
    fn disarm(&self) -> bool {
        let cancelled = match self.armed.take() {
            Some(id) => timer::cancel(id),
            None => false,
        };
        let mut old = [0u8; ELEM];
        // SAFETY: a non-blocking receive into an 8-byte local, for 8-byte elements.
        let drained = unsafe { self.chan.recv(old.as_mut_ptr(), false) } == 0;
        cancelled || drained
    }

    /// Stops the timer: 1 if that prevented a fire from being received, else 0.
    /// Afterwards no value from before is received.
    pub fn stop(&self) -> i32 {
        self.lock.lock();
        let prevented = self.disarm();
        // SAFETY: taken just above.
        unsafe { self.lock.unlock() };
        prevented as i32
    }

    /// Stops the timer as `stop` does (its result), then arms it anew: first fire
    /// `ns` from now, then every `period_ns` if > 0. `-EINVAL` (nothing changes) for a
    /// negative period.
    pub fn reset(&self, ns: i64, period_ns: i64) -> i32 {
        if period_ns < 0 {
            return -libc::EINVAL;
        }
        self.lock.lock();
        let prevented = self.disarm();
        self.arm(ns, period_ns);
        // SAFETY: taken just above.
        unsafe { self.lock.unlock() };
        prevented as i32
    }

    /// True while somebody waits on the channel (a receiver or a select).
    pub fn has_waiters(&self) -> bool {
        self.chan.has_waiters()
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        // The barrier: no callback runs for this timer after this.
        if let Some(id) = self.armed.take() {
            timer::cancel(id);
        }
        // The channel is forgotten, not dropped: its buffer is `slot` (with_buffer).
    }
}

/// The heap's callback: sends the time of the firing without waiting (dropped while
/// a value is unread). Sending takes the channel's lock, and waking a select that
/// receives takes the select's: the heap never runs it during a switch, and nothing
/// that holds one of them waits for the shard's lock (runtime/timer.rs).
///
/// # Safety
/// `arg` is a live `Timer` (its `Drop` cancels the node first, and `cancel` waits for
/// a running callback).
unsafe fn fire(arg: usize) {
    // SAFETY: our contract: the Timer is alive for the whole call.
    let t = unsafe { &*(arg as *const Timer) };
    let now = nanotime();
    // SAFETY: an 8-byte element from a local, for 8-byte elements. Dropped when the
    // buffer is full (or the channel was closed by a misuse).
    unsafe { t.chan.send(&now as *const i64 as *const u8, false) };
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_timer_is_one_small_allocation() {
        // One 144-byte malloc chunk (136 + 8 bytes of header): see the file comment.
        assert!(
            core::mem::size_of::<Timer>() <= 136,
            "{}",
            core::mem::size_of::<Timer>()
        );
    }
}
