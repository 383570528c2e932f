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
//!
//! Why a wait ends: a waker (the event), the timeout, or the goroutine's context
//! (`runtime/context.rs`: cancelled by hand, by its deadline or through a parent).
//! Each of them must first win `claim`, one compare-and-swap on `Waiter::state`, so
//! the goroutine is woken once, by whichever came first, and `wait` returns which
//! one it was (`Wake`). A timed-out or cancelled waiter is still linked on the
//! object it waited on: the woken side unlinks it (under the object's lock) before
//! it returns, as it always did for a timeout.
//!
//! Only waits made with `Waiter::cancellable()` and `wait` are cancellation points:
//! `block` and `block_timeout` (a mutex, the runtime's own waits) never end for the
//! context, so code that does not expect a third reason never sees one.

use core::ptr;
use core::sync::atomic::{AtomicU32, Ordering};

use core::cell::Cell;

use crate::runtime::context::{self, Ctx, CtxNode};
use crate::runtime::g::{WaitReason, G, WAITING};
use crate::runtime::lock::{coarse_now, futex_wait, futex_wake, nanotime, SpinLock};
use crate::runtime::m::{current_m, PendingFn, M};
use crate::runtime::sanitizer;
use crate::runtime::sched;
use crate::runtime::timer::{self, TimerId};

/// `Waiter::state` values.
const WAITING_STATE: u32 = 0;
const CLAIMED_BY_WAKER: u32 = 1;
const CLAIMED_BY_TIMER: u32 = 2;
const CLAIMED_BY_CANCEL: u32 = 3;

/// Why a cancellable wait (`Waiter::wait`) ended.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Wake {
    /// A waker claimed the waiter: the event happened.
    Woken,
    /// The timeout claimed it.
    TimedOut,
    /// The goroutine's context is cancelled: its error (-ECANCELED or -ETIMEDOUT).
    Cancelled(i32),
}

/// A party waiting on one or more objects: a goroutine, or a plain thread (`g` null).
///
/// Whoever wakes it must first win `claim()` (a CAS): a waiter on several lists (a
/// select) or with a timeout can be found by several wakers, and exactly one of
/// them wins; the others skip it.
pub struct Waiter {
    pub g: *mut G,
    /// Set to 1 by `wake`; a plain thread sleeps on it.
    pub flag: AtomicU32,
    /// 0 while waiting; then who claimed it: a waker, the timeout or the context.
    pub state: AtomicU32,
    /// Link for the object's waiter list (the object's lock guards it).
    pub next: *mut Waiter,
    /// The timeout's timer while a timed wait is armed.
    timer: Cell<Option<TimerId>>,
    /// A goroutine's deferred wait (timed, or cancellable with a context): set before
    /// a waker can see the waiter.
    timed: Cell<bool>,
    /// A goroutine's deferred wait: the hand-off between the parked side's
    /// `arm_then_unlock` and the claim winner (a waker, the timer or the context).
    /// Each moves it once (`HANDOFF_WINNER` / `HANDOFF_PARKED`); whoever moves it
    /// second readies the goroutine. Neither touches the waiter after its move, so the
    /// goroutine cannot run (and return, freeing the waiter's stack) while the other
    /// still writes.
    handoff: AtomicU32,
    /// The context that may end this wait (`cancellable`), or null. Set before the
    /// waiter is findable; a waker reads it (`claim_if_shared`). While parked, the
    /// waiter is on the context's list through a `context::CtxNode` beside it.
    pub(crate) ctx: *const Ctx,
}

const HANDOFF_WINNER: u32 = 1;
const HANDOFF_PARKED: u32 = 2;

impl Waiter {
    /// A waiter for whoever is calling: the current goroutine or this plain thread.
    /// Its waits are not cancellation points (see `cancellable`).
    #[inline]
    pub fn current() -> Waiter {
        Waiter::with_g(parkable_g(), ptr::null())
    }

    /// A waiter whose `wait` also ends when the calling goroutine's context is
    /// cancelled (a plain thread has no context: the same as `current`).
    #[inline]
    pub fn cancellable() -> Waiter {
        let g = parkable_g();
        let ctx = if g.is_null() {
            ptr::null()
        } else {
            // SAFETY: a non-null g is the calling goroutine, whose `context` only it
            // writes.
            unsafe { (*g).context }
        };
        Waiter::with_g(g, ctx)
    }

    #[inline(always)]
    fn with_g(g: *mut G, ctx: *const Ctx) -> Waiter {
        Waiter {
            g,
            flag: AtomicU32::new(0),
            state: AtomicU32::new(WAITING_STATE),
            next: ptr::null_mut(),
            timer: Cell::new(None),
            timed: Cell::new(false),
            handoff: AtomicU32::new(0),
            ctx,
        }
    }

    /// Makes a used waiter wait again (after a timed-out wait that is retried).
    pub fn reset(&mut self) {
        self.state.store(WAITING_STATE, Ordering::Relaxed);
        self.flag.store(0, Ordering::Relaxed);
        self.next = ptr::null_mut();
        self.timer.set(None);
        self.timed.set(false);
        self.handoff.store(0, Ordering::Relaxed);
    }

    /// Wins the right to wake this waiter (true once, for one caller).
    #[inline]
    pub fn claim(&self) -> bool {
        self.state
            .compare_exchange(
                WAITING_STATE,
                CLAIMED_BY_WAKER,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
    }

    /// `claim` for a waker that found the waiter on a list where the only other
    /// parties that may claim it are its timeout and its context (a channel's queue,
    /// a join list): a goroutine's wait with neither is won without a
    /// compare-and-swap. (A plain thread's may be timed: always the CAS.)
    #[inline(always)]
    pub fn claim_if_shared(&self) -> bool {
        if self.ctx.is_null() && !self.timed.get() && !self.g.is_null() {
            return true;
        }
        self.claim()
    }

    /// `claim_if_shared` for a waiter whose wait has no timeout (a channel's send or
    /// receive): only its context can compete.
    #[inline(always)]
    pub fn claim_untimed(&self) -> bool {
        self.ctx.is_null() || self.claim()
    }

    /// The context's claim (`context::cancel`): true once, if nobody claimed first.
    #[inline]
    pub(crate) fn claim_for_cancel(&self) -> bool {
        self.state
            .compare_exchange(
                WAITING_STATE,
                CLAIMED_BY_CANCEL,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
    }

    /// The cancellation point: like `block_timeout` (`timeout_ns` negative: none),
    /// and a waiter made by `cancellable` also ends when its goroutine's context is
    /// cancelled, whether that happened before (it then does not park at all) or
    /// while it waits. Anything but `Woken` leaves the waiter linked wherever the
    /// caller linked it: the caller unlinks it (under the same lock) and returns
    /// `TimedOut`'s or `Cancelled`'s error.
    ///
    /// # Safety
    /// As for `block`: `lock` is held by the caller, and `self` (findable under it)
    /// stays where it is until this returns.
    #[inline(always)]
    pub unsafe fn wait(&self, lock: &SpinLock, reason: WaitReason, timeout_ns: i64) -> Wake {
        // SAFETY: our contract is block's, block_timeout's and wait_in_context's.
        unsafe {
            if !self.ctx.is_null() {
                return self.wait_in_context(lock, reason, timeout_ns);
            }
            if timeout_ns < 0 {
                self.block(lock, reason);
                return Wake::Woken;
            }
            match self.block_timeout(lock, reason, timeout_ns) {
                true => Wake::Woken,
                false => Wake::TimedOut,
            }
        }
    }

    /// `wait` for a goroutine with a context (`self.ctx` not null).
    ///
    /// # Safety
    /// As for `wait`.
    #[inline(never)]
    unsafe fn wait_in_context(&self, lock: &SpinLock, reason: WaitReason, timeout_ns: i64) -> Wake {
        let ctx = self.ctx;
        // SAFETY: a non-null ctx is the parking goroutine's own context, which holds
        // a reference to it while it is bound (and it cannot change binding while
        // parked); lock is held and self stays put (our contract).
        unsafe {
            let err = (*ctx).err();
            if err != 0 && self.claim_for_cancel() {
                // Cancelled before parking: nobody else can claim us now.
                lock.unlock();
                sanitizer::hb_acquire(ctx as *const core::ffi::c_void);
                return Wake::Cancelled(err);
            }
            let when = if timeout_ns < 0 {
                NO_DEADLINE
            } else {
                timer::deadline_after(timeout_ns)
            };
            let node = CtxNode::new(self);
            let tp = TimedPark {
                lock,
                when,
                waiter: self,
                node: &node,
            };
            self.timed.set(true);
            // A non-null ctx means a goroutine (cancellable() on a goroutine), which
            // holds `lock`; tp and node live on this stack until the park returns
            // (node is off the context's list by then: delist below, or the cancel),
            // and arm_then_unlock is a pending action that unlocks it.
            park_with(reason, arm_then_unlock, &tp as *const TimedPark as usize);
            let state = self.state.load(Ordering::Acquire);
            if state != CLAIMED_BY_TIMER {
                if let Some(id) = self.timer.get() {
                    timer::cancel(id);
                }
            }
            if state != CLAIMED_BY_CANCEL {
                // The context may be about to take us off its list: under its lock.
                context::delist(ctx, &node);
            }
            match state {
                CLAIMED_BY_TIMER => Wake::TimedOut,
                CLAIMED_BY_CANCEL => {
                    sanitizer::hb_acquire(ctx as *const core::ffi::c_void);
                    Wake::Cancelled((*ctx).err())
                }
                _ => Wake::Woken,
            }
        }
    }

    /// Like `block`, but gives up after `timeout_ns` (negative: never). Returns true
    /// when woken by a waker; false when the timeout won `claim`: the waiter is then
    /// still linked wherever the caller linked it, and the caller must unlink it
    /// (under the same lock) before returning.
    ///
    /// # Safety
    /// As for `block`: `lock` is held by the caller, and `self` (findable under it)
    /// stays where it is until this returns.
    pub unsafe fn block_timeout(
        &self,
        lock: &SpinLock,
        reason: WaitReason,
        timeout_ns: i64,
    ) -> bool {
        if timeout_ns < 0 {
            // SAFETY: `block` has this function's contract (lock held, self pinned).
            unsafe { self.block(lock, reason) };
            return true;
        }
        let when = timer::deadline_after(timeout_ns);
        if !self.g.is_null() {
            let tp = TimedPark {
                lock,
                when,
                waiter: self,
                node: ptr::null(),
            };
            self.timed.set(true);
            // SAFETY: a non-null `g` is the calling goroutine (Waiter::current), which
            // holds `lock` (our contract); tp lives on this stack until the park
            // returns, and arm_then_unlock is a pending action that unlocks it.
            unsafe { park_with(reason, arm_then_unlock, &tp as *const TimedPark as usize) };
            if self.state.load(Ordering::Acquire) == CLAIMED_BY_TIMER {
                return false;
            }
            if let Some(id) = self.timer.get() {
                timer::cancel(id);
            }
            return true;
        }
        // Counted as blocked before a waker can find us (the lock); the waker that
        // wakes us takes the count off (`wake`), so the deadlock check never sees a
        // woken plain thread as still blocked.
        crate::runtime::sched::plain_blocked(1);
        // SAFETY: the caller holds `lock` (our contract); self is findable under it
        // and stays put, so a waker may use it as soon as the lock is released.
        unsafe { lock.unlock() };
        let woken = loop {
            if self.flag.load(Ordering::Acquire) != 0 {
                break true;
            }
            let left = when - nanotime();
            if left <= 0 {
                if self
                    .state
                    .compare_exchange(
                        WAITING_STATE,
                        CLAIMED_BY_TIMER,
                        Ordering::AcqRel,
                        Ordering::Acquire,
                    )
                    .is_ok()
                {
                    break false;
                }
                // A waker claimed us just in time: its wake is on its way.
                while self.flag.load(Ordering::Acquire) == 0 {
                    futex_wait(&self.flag, 0, -1);
                }
                break true;
            }
            futex_wait(&self.flag, 0, left);
        };
        if !woken {
            // The timeout won: no waker will take our count off.
            crate::runtime::sched::plain_blocked(-1);
        }
        woken
    }

    /// Releases `lock` (held by the caller, with `self` already findable under it) and
    /// waits until `wake`.
    ///
    /// # Safety
    /// `lock` is held; `self` stays where it is until woken.
    #[inline(always)]
    pub unsafe fn block(&self, lock: &SpinLock, reason: WaitReason) {
        if !self.g.is_null() {
            // SAFETY: a non-null `g` is the calling goroutine (Waiter::current), which
            // holds `lock` and is findable under it (our contract).
            unsafe { park(lock, reason) };
            return;
        }
        // Counted as blocked until the waker takes the count off (`wake`).
        crate::runtime::sched::plain_blocked(1);
        // SAFETY: the caller holds `lock` (our contract); self is findable under it
        // and stays put, so a waker may use it as soon as the lock is released.
        unsafe { lock.unlock() };
        while self.flag.load(Ordering::Acquire) == 0 {
            futex_wait(&self.flag, 0, -1);
        }
    }

    /// Wakes the waiter. After this returns the caller must not touch `w` again.
    ///
    /// # Safety
    /// `w` is a waiter that was blocked (or is about to block under a lock the caller
    /// holds) and the caller won `claim()` (or is its only possible waker).
    pub unsafe fn wake(w: *const Waiter) {
        // SAFETY: our contract: w is a blocked (or about to block) waiter whose claim
        // the caller won, so it is alive and ours to wake until its flag is set (a
        // plain thread) or its goroutine readied; nothing touches it afterwards.
        unsafe {
            let g = (*w).g;
            if g.is_null() {
                // A plain thread stops counting as blocked when it is woken, not when
                // it next runs: in between, the deadlock check (which stops at a
                // blocked plain thread's count) would otherwise see every party
                // waiting and report a deadlock that is not there.
                sched::plain_blocked(-1);
                (*w).flag.store(1, Ordering::Release);
                futex_wake(&(*w).flag, 1);
            } else {
                (*w).flag.store(1, Ordering::Relaxed);
                if (*w).timed.get()
                    && (*w).handoff.swap(HANDOFF_WINNER, Ordering::AcqRel) != HANDOFF_PARKED
                {
                    // Its arm_then_unlock is still running: that readies it.
                    return;
                }
                sched::ready(g);
            }
        }
    }
}

/// TimedPark::when of a wait that only its context can end early (no timeout).
const NO_DEADLINE: i64 = i64::MIN;

struct TimedPark {
    lock: *const SpinLock,
    /// The timeout's deadline, or NO_DEADLINE (a cancellable wait without one). A
    /// huge timeout saturates to i64::MAX and is still armed, as before contexts.
    when: i64,
    waiter: *const Waiter,
    /// The waiter's entry for its context's list, or null (no context).
    node: *const CtxNode,
}

/// Pending action of a deferred park (timed, or cancellable): let wakers in, arm the
/// timeout, put the waiter on its context's list. Doing this only now (the
/// goroutine's context is saved) means neither the timer nor a cancel can ever ready
/// a goroutine that is still running. The object's lock is released first: arming
/// takes a timer shard's lock and enlisting the context's, and the threads that hold
/// those while they fire a timer or cancel a context take object locks (a timer
/// channel's send waking this very select): waiting for them with the object's lock
/// held deadlocked (tests/c/timer_select_park's timed selects, every run). A context
/// already cancelled is seen here, under its lock, if it was not before the switch.
///
/// A waker may win as soon as the lock is released, and the timer may fire and the
/// context be cancelled (on other threads) as soon as each is armed, while this
/// function still writes to the goroutine's stack (`timer`, `tp`). So none of them
/// readies the goroutine itself unless this function is done: `handoff` decides who
/// readies it, and it is the last thing this function touches (unless it claimed the
/// waiter for the context itself: then nobody else can). So a waker that wins first
/// cannot let the goroutine run (and read `timer`) before it is set.
///
/// # Safety
/// A `PendingFn` run by the context switched to, after `g` (which holds the lock in
/// the `TimedPark` at `arg`) has parked and its context is saved.
unsafe fn arm_then_unlock(_m: *mut M, g: *mut G, arg: usize) {
    // SAFETY: arg is the TimedPark on the parked goroutine's stack, alive until the
    // goroutine runs again, which needs our `handoff` move below (or our own ready).
    // timeout_fired(w) meets timer::add's contract: the goroutine cancels the timer (a
    // barrier) before it leaves the wait, where w lives. A non-null ctx is the
    // goroutine's bound context, alive while it is bound.
    unsafe {
        let tp = &*(arg as *const TimedPark);
        let w = tp.waiter;
        (*tp.lock).unlock();
        if tp.when != NO_DEADLINE {
            let id = timer::add(tp.when, timeout_fired, w as usize);
            (*w).timer.set(Some(id));
        }
        let cancelled_here = !tp.node.is_null() && context::enlist((*w).ctx, tp.node);
        if cancelled_here {
            // Claimed for the context just now: nobody else will ready it.
            sched::ready(g);
        } else if (*w).handoff.swap(HANDOFF_PARKED, Ordering::AcqRel) == HANDOFF_WINNER {
            // The winner came first and left the wake-up to us.
            sched::ready(g);
        }
    }
}

/// Timer callback of a goroutine's timed wait: claims the waiter for the timeout.
///
/// # Safety
/// `arg` is the address of a `Waiter` whose goroutine cancels this timer (waiting for
/// a running callback, see timer.rs) before the waiter goes away.
unsafe fn timeout_fired(arg: usize) {
    let w = arg as *const Waiter;
    // SAFETY: our contract: the waiter is alive until its goroutine cancels this timer,
    // and cancel waits for a running callback; after a won claim, only ready() follows.
    unsafe {
        let g = (*w).g;
        if (*w)
            .state
            .compare_exchange(
                WAITING_STATE,
                CLAIMED_BY_TIMER,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
            && (*w).handoff.swap(HANDOFF_WINNER, Ordering::AcqRel) == HANDOFF_PARKED
        {
            sched::ready(g);
        }
    }
}

/// The calling goroutine if it may park here, else null: on a plain thread, on a
/// worker's scheduler context (g0), and inside `gr_blocking`'s function, where the
/// goroutine has handed its processor away and keeps its thread for the call (a
/// libc call that the hook layer interposes lands here from a blocking DNS lookup,
/// for one). Waits made there block the thread, as a plain thread's do.
#[inline(always)]
pub fn parkable_g() -> *mut G {
    let g = crate::runtime::m::current_g();
    // SAFETY: a non-null current goroutine is the caller itself; its wait reason is
    // written only by itself (sched::blocking sets Blocking around the call).
    if !g.is_null() && unsafe { (*g).wait_reason } == WaitReason::Blocking as u8 {
        return ptr::null_mut();
    }
    g
}

/// Sleeps the caller for `ns` nanoseconds: a goroutine parks on a timer; a plain
/// thread sleeps in the kernel (retrying after signals with the time left). Returns
/// 0, or the goroutine's context error once it is cancelled (a cancellation point;
/// `ns` <= 0 only yields, which is not one).
pub fn sleep(ns: i64) -> i32 {
    if ns <= 0 {
        sched::yield_now();
        return 0;
    }
    if parkable_g().is_null() {
        crate::runtime::sys::sleep_until(timer::deadline_after(ns));
        return 0;
    }
    let lock = SpinLock::new();
    lock.lock();
    let w = Waiter::cancellable();
    // SAFETY: we hold `lock`, and w stays on this stack until the call returns; it
    // is on no list, so only the timeout or the context can end the wait.
    match unsafe { w.wait(&lock, WaitReason::Sleep, ns) } {
        Wake::Cancelled(e) => e,
        Wake::Woken | Wake::TimedOut => 0,
    }
}

/// The pending action of `park`: releases the parked goroutine's lock.
///
/// # Safety
/// `lock` is the address of a `SpinLock` the parked goroutine held (`park` passes it);
/// runs on the context switched to, once that goroutine's context is saved.
unsafe fn unlock_after_switch(_m: *mut M, _g: *mut G, lock: usize) {
    // SAFETY: our contract: the lock the parked goroutine held, which lives at least
    // until that goroutine runs again (which needs this unlock first).
    unsafe { (*(lock as *const SpinLock)).unlock() };
}

/// Parks the current goroutine, releasing `lock` once its context is saved.
///
/// # Safety
/// Must run on a goroutine that holds `lock` and has made itself findable under it.
pub unsafe fn park(lock: &SpinLock, reason: WaitReason) {
    // SAFETY: we run on a goroutine that holds `lock` (our contract), and
    // unlock_after_switch releases exactly that lock once we are saved.
    unsafe {
        park_with(
            reason,
            unlock_after_switch,
            lock as *const SpinLock as usize,
        )
    }
}

/// Marks the current goroutine WAITING and switches away; `after(m, g, arg)` runs
/// once its context is saved (it must let wakers find the goroutine only then).
///
/// # Safety
/// Runs on a goroutine (not a plain thread or g0); `after(m, g, arg)` is sound to run
/// on the next context once this goroutine is saved, and is what lets wakers in.
unsafe fn park_with(reason: WaitReason, after: PendingFn, arg: usize) {
    let m = current_m();
    // SAFETY: we run on a goroutine (our contract), so m is this thread's M and curg
    // this goroutine, whose descriptor only we write while it runs.
    unsafe {
        let g = (*m).curg;
        (*g).wait_reason = reason as u8;
        (*g).wait_since = coarse_now();
        (*g).status.store(WAITING, Ordering::Release);
        sched::switch_away(m, g, after, arg);
    }
}
