//! Groups: Go's `errgroup.Group` with its context, a nursery in trio's words.
//!
//! A group owns a child context of its parent; every member (`go`) is a goroutine
//! bound to that context. The first member that returns non-zero records its result
//! and cancels the context, so every other member's parking calls return at once
//! (`runtime/context.rs`); `wait` waits for all members and returns that first
//! result (and cancels the context, as Go's `Wait` does). `limit(n)` makes `go` wait
//! while n members run: a member that ends hands its slot straight to the first
//! waiting `go` (FIFO, no barging), unless a lowered limit says the slot must go.
//!
//! One spin lock guards the counts and the two waiter lists. A member that ends does
//! everything under the lock (count, slot hand-off, taking `wait`'s waiters and
//! claiming each) and after the unlock touches only the waiters it won, never the
//! group: so `wait; free` is safe, as for a wait group. Both waits are cancellation
//! points of the *caller's* context (`go` waiting for a slot, and `wait`).
//!
//! Not under loom: a member is a real goroutine (`sched::spawn`).

use core::cell::UnsafeCell;
use core::ffi::{c_int, c_void};
use core::ptr;

use crate::runtime::context::{self, Ctx};
use crate::runtime::g::WaitReason;
use crate::runtime::lock::SpinLock;
use crate::runtime::park::{Waiter, Wake};
use crate::runtime::sanitizer;
use crate::runtime::sched::{self, SpawnAttr};

/// A member's function: its result is the member's (0: success).
pub type TaskFn = unsafe extern "C" fn(arg: *mut c_void) -> c_int;

pub struct Group {
    /// The group's context (the group's reference; members hold their own).
    ctx: *const Ctx,
    lock: SpinLock,
    st: UnsafeCell<State>,
}

struct State {
    /// Members started and not yet returned (counting slots handed to a waiting
    /// `go` that has not spawned yet).
    running: usize,
    /// At most this many members at once; 0: no limit.
    limit: usize,
    /// The first non-zero member result.
    first_err: i32,
    /// Parked in `wait` (linked through `Waiter::next`).
    waiters: *mut Waiter,
    /// Parked in `go` for a slot, FIFO (first and last, linked through `next`).
    slot_first: *mut Waiter,
    slot_last: *mut Waiter,
}

// SAFETY: the state is guarded by `lock`; the listed waiters live on parked parties'
// stacks and are valid from any thread while listed; `ctx` is a counted reference.
unsafe impl Send for Group {}
// SAFETY: as above.
unsafe impl Sync for Group {}

/// What a member goroutine runs: its function, and the group it reports to.
struct Member {
    group: *const Group,
    f: TaskFn,
    arg: *mut c_void,
}

impl Group {
    /// A group with a new child context of `parent` (null: a root). None when memory
    /// runs out.
    ///
    /// # Safety
    /// `parent` is null or a live context the caller holds a reference to.
    pub unsafe fn new(parent: *const Ctx) -> Option<Box<Group>> {
        // SAFETY: our contract is context::new's.
        let ctx = unsafe { context::new(parent) }?;
        Some(Box::new(Group {
            ctx,
            lock: SpinLock::new(),
            st: UnsafeCell::new(State {
                running: 0,
                limit: 0,
                first_err: 0,
                waiters: ptr::null_mut(),
                slot_first: ptr::null_mut(),
                slot_last: ptr::null_mut(),
            }),
        }))
    }

    /// The group's context (the group keeps its reference until it is freed).
    pub fn ctx(&self) -> *const Ctx {
        self.ctx
    }

    /// Cancels the group's context (and so every member's waits).
    pub fn cancel(&self) -> i32 {
        // SAFETY: the group holds a reference to its context.
        unsafe { context::cancel(self.ctx) }
    }

    /// # Safety
    /// `lock` is held.
    #[inline(always)]
    #[allow(clippy::mut_from_ref)] // the state is an UnsafeCell that `lock` guards
    unsafe fn st(&self) -> &mut State {
        // SAFETY: our contract: the lock gives us the only reference.
        unsafe { &mut *self.st.get() }
    }

    /// Sets the limit on members running at once (0: none) and lets waiting `go`
    /// calls in if it rose. 0, or -EINVAL for a negative `n`.
    pub fn limit(&self, n: i32) -> i32 {
        if n < 0 {
            return -libc::EINVAL;
        }
        self.lock.lock();
        // SAFETY: we hold the lock.
        let won = unsafe {
            self.st().limit = n as usize;
            self.grant_slots()
        };
        // SAFETY: this thread holds the lock (taken above).
        unsafe { self.lock.unlock() };
        // SAFETY: the chain holds only waiters we claimed, each woken once.
        unsafe { wake_chain(won) };
        0
    }

    /// While a slot is free, gives it to the first waiting `go` whose claim we win
    /// (counting it as running). Returns the winners, chained through `next`.
    ///
    /// # Safety
    /// `lock` is held.
    unsafe fn grant_slots(&self) -> *mut Waiter {
        let mut won: *mut Waiter = ptr::null_mut();
        // SAFETY: the lock is held (our contract); listed waiters are alive.
        unsafe {
            let st = self.st();
            while !st.slot_first.is_null() && (st.limit == 0 || st.running < st.limit) {
                let w = st.slot_first;
                st.slot_first = (*w).next;
                if st.slot_first.is_null() {
                    st.slot_last = ptr::null_mut();
                }
                if (*w).claim() {
                    st.running += 1;
                    (*w).next = won;
                    won = w;
                }
            }
        }
        won
    }

    /// Starts `f(arg)` as a member bound to the group's context, waiting first while
    /// the limit is reached. Returns the goroutine's id, a spawn error (-ENOMEM,
    /// -EAGAIN), or the caller's context error if it is cancelled while waiting for
    /// a slot (nothing started).
    pub fn go(&self, f: TaskFn, arg: *mut c_void) -> i64 {
        let rc = self.take_slot();
        if rc != 0 {
            return rc as i64;
        }
        let m = Box::into_raw(Box::new(Member {
            group: self,
            f,
            arg,
        }));
        let attr = SpawnAttr {
            ctx: Some(self.ctx),
            ..SpawnAttr::default()
        };
        let id = sched::spawn(member_entry, m as *mut c_void, &attr);
        if id < 0 {
            // SAFETY: the goroutine was not made, so the record is still ours.
            drop(unsafe { Box::from_raw(m) });
            self.leave(0);
        }
        id
    }

    /// Counts one more member, waiting (a cancellation point) while the limit is
    /// reached. 0, or the caller's context error.
    fn take_slot(&self) -> i32 {
        self.lock.lock();
        // SAFETY: we hold the lock until the wait (which releases it) or the unlock;
        // `w` stays on this stack until it is woken or we unlinked it under the lock.
        unsafe {
            let st = self.st();
            if st.slot_first.is_null() && (st.limit == 0 || st.running < st.limit) {
                st.running += 1;
                self.lock.unlock();
                return 0;
            }
            let mut w = Waiter::cancellable();
            let wp: *mut Waiter = &mut w;
            if st.slot_last.is_null() {
                st.slot_first = wp;
            } else {
                (*st.slot_last).next = wp;
            }
            st.slot_last = wp;
            match w.wait(&self.lock, WaitReason::WaitGroup, -1) {
                // The slot was handed to us (counted by the giver), by a member that
                // left (`leave`, which released on the group for ThreadSanitizer).
                Wake::Woken => {
                    sanitizer::hb_acquire(self as *const Group as *const c_void);
                    0
                }
                Wake::Cancelled(e) => {
                    self.lock.lock();
                    self.unlink_slot_waiter(wp);
                    self.lock.unlock();
                    e
                }
                Wake::TimedOut => unreachable!("a slot wait without a timeout timed out"),
            }
        }
    }

    /// Takes `w` off the slot queue if it is still there.
    ///
    /// # Safety
    /// `lock` is held; `w` is the caller's waiter.
    unsafe fn unlink_slot_waiter(&self, w: *mut Waiter) {
        // SAFETY: our contract; listed waiters are alive.
        unsafe {
            let st = self.st();
            let mut prev: *mut Waiter = ptr::null_mut();
            let mut cur = st.slot_first;
            while !cur.is_null() {
                if cur == w {
                    let next = (*w).next;
                    if prev.is_null() {
                        st.slot_first = next;
                    } else {
                        (*prev).next = next;
                    }
                    if st.slot_last == w {
                        st.slot_last = prev;
                    }
                    return;
                }
                prev = cur;
                cur = (*cur).next;
            }
        }
    }

    /// A member ends with `rc`: the first failure is recorded and cancels the group;
    /// its slot goes to a waiting `go` or is given back, and the last member wakes
    /// `wait`. Touches nothing of the group after its unlock.
    fn leave(&self, rc: i32) {
        if rc != 0 {
            self.lock.lock();
            // SAFETY: we hold the lock.
            let first = unsafe {
                let st = self.st();
                let first = st.first_err == 0;
                if first {
                    st.first_err = rc;
                }
                first
            };
            // SAFETY: this thread holds the lock (taken above).
            unsafe { self.lock.unlock() };
            if first {
                // The group is alive: this member still counts in `running`.
                self.cancel();
            }
        }
        self.lock.lock();
        // For ThreadSanitizer: what the member did happens before `wait` returns.
        sanitizer::hb_release(self as *const Group as *const c_void);
        // SAFETY: we hold the lock; taken waiters are claimed here and woken after the
        // unlock, when we no longer touch the group.
        unsafe {
            let st = self.st();
            st.running -= 1;
            let mut won = self.grant_slots();
            if st.running == 0 {
                let mut w = core::mem::replace(&mut st.waiters, ptr::null_mut());
                while !w.is_null() {
                    let next = (*w).next;
                    if (*w).claim() {
                        (*w).next = won;
                        won = w;
                    }
                    w = next;
                }
            }
            self.lock.unlock();
            wake_chain(won);
        }
    }

    /// Waits until no member runs; returns the first non-zero member result (or 0)
    /// and cancels the group's context. A cancellation point: the caller's context
    /// error if it is cancelled first (the members go on).
    pub fn wait(&self) -> i32 {
        self.lock.lock();
        // SAFETY: we hold the lock until the wait (which releases it) or the unlock;
        // `w` stays on this stack until a leaving member wakes it or we unlinked it.
        let rc = unsafe {
            let st = self.st();
            if st.running == 0 {
                let rc = st.first_err;
                self.lock.unlock();
                rc
            } else {
                let mut w = Waiter::cancellable();
                let wp: *mut Waiter = &mut w;
                w.next = st.waiters;
                st.waiters = wp;
                match w.wait(&self.lock, WaitReason::WaitGroup, -1) {
                    Wake::Woken => {
                        self.lock.lock();
                        let rc = self.st().first_err;
                        self.lock.unlock();
                        rc
                    }
                    Wake::Cancelled(e) => {
                        self.lock.lock();
                        let st = self.st();
                        let mut cur: *mut *mut Waiter = &mut st.waiters;
                        while !(*cur).is_null() {
                            if *cur == wp {
                                *cur = (*wp).next;
                                break;
                            }
                            cur = &mut (**cur).next;
                        }
                        self.lock.unlock();
                        return e;
                    }
                    Wake::TimedOut => unreachable!("a group wait without a timeout timed out"),
                }
            }
        };
        sanitizer::hb_acquire(self as *const Group as *const c_void);
        self.cancel();
        rc
    }

    /// True while members run or somebody waits on the group (it may not be freed).
    pub fn busy(&self) -> bool {
        self.lock.lock();
        // SAFETY: we hold the lock.
        let busy = unsafe {
            let st = self.st();
            st.running > 0 || !st.waiters.is_null() || !st.slot_first.is_null()
        };
        // SAFETY: this thread holds the lock (taken above).
        unsafe { self.lock.unlock() };
        busy
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        // SAFETY: the group's own reference, dropped once.
        unsafe { context::release(self.ctx) };
    }
}

/// Wakes a chain of claimed waiters (linked through `next`).
///
/// # Safety
/// Each waiter was claimed by the caller and is off every list.
unsafe fn wake_chain(mut w: *mut Waiter) {
    while !w.is_null() {
        // SAFETY: our contract; `next` is read before the wake, after which the
        // waiter may be gone.
        unsafe {
            let next = (*w).next;
            Waiter::wake(w);
            w = next;
        }
    }
}

/// A member goroutine: runs the task, then reports to its group.
///
/// # Safety
/// `arg` is a `Member` boxed by `Group::go`, whose group counts this member.
unsafe extern "C" fn member_entry(arg: *mut c_void) {
    // SAFETY: our contract: the record is ours; the group lives while we count in it.
    unsafe {
        let m = Box::from_raw(arg as *mut Member);
        let rc = (m.f)(m.arg);
        let g = m.group;
        drop(m);
        (*g).leave(rc);
    }
}
