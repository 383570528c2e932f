//! M: a worker OS thread. Its own stack is the scheduler context (g0): the loop in
//! `sched::schedule_loop` runs there, and a goroutine switches to g0 only when its P
//! has nothing else to run (or the M must stop). Ms are never freed while the runtime
//! runs; idle ones sleep on `park` (a futex) until handed a P.
//!
//! `pending` is the deferred half of every switch: the context switching away stores
//! what must happen once its registers are saved (requeue it, release the lock that
//! lets a waker find it, free its stack), and the context switched to runs it first
//! thing. This is how a goroutine can park itself without a waker resuming it early
//! (Go does the same by parking via g0; doing it on the next context saves a switch).

use core::ptr;
use core::sync::atomic::{AtomicPtr, AtomicU32, Ordering};

use crate::arch::Context;
use crate::runtime::g::G;
use crate::runtime::p::P;

/// A deferred action run by the context switched to: `f(m, g, arg)`.
pub type PendingFn = unsafe fn(m: *mut M, g: *mut G, arg: usize);

pub struct Pending {
    pub f: Option<PendingFn>,
    pub g: *mut G,
    pub arg: usize,
}

pub struct M {
    /// The scheduler context (the worker thread's own stack).
    pub g0: Context,
    /// Sanitizer state of the scheduler context (see `sanitizer.rs`).
    pub g0_fiber: crate::runtime::sanitizer::Fiber,
    /// The goroutine running on this M, or null on g0.
    pub curg: *mut G,
    /// The P held, or null. Only this M touches it.
    pub p: *mut P,
    /// A P handed over by whoever woke this M.
    pub nextp: AtomicPtr<P>,
    pub pending: Pending,
    /// Futex word: set to 1 to wake the M from `stopm`.
    pub park: AtomicU32,
    /// The goroutine locked to this thread (`gr_lock_thread`), if any.
    pub lockedg: *mut G,
    /// A runnable goroutine locked to another M, to be handed to it from g0.
    pub handoff: *mut G,
    /// Set on a home thread's M: it runs only that home's goroutines (see home.rs).
    pub home: *mut crate::runtime::home::Home,
    /// Counted in `nmspinning`.
    pub spinning: bool,
    /// While an M without a P polls, goroutines it readies are collected here
    /// (linked through `G::link`) instead of going to the global queue.
    pub collecting: bool,
    pub collected: *mut G,
    /// Work due once the switch in progress has finished (`DUE_POLL`, `DUE_CTX`,
    /// `DUE_TIMERS`, `DUE_LET_GO`), which `finish_switch` does: one byte, so that a
    /// switch with none due tests it with one instruction.
    pub due: u8,
    /// xorshift state for choosing steal victims.
    pub rand: u32,
    pub thread: libc::pthread_t,
    /// Kernel thread id (sysmon reads the thread's state from /proc).
    pub tid: AtomicU32,
    /// This thread's errno (its address never changes), so that saving and
    /// restoring a goroutine's errno at a switch costs two moves, not two calls.
    pub errno: *mut i32,
}

impl M {
    /// A new M; `id` (its index among the workers) seeds its steal-victim choice.
    pub fn new(id: usize) -> M {
        M {
            g0: Context::empty(),
            g0_fiber: crate::runtime::sanitizer::Fiber::empty(),
            curg: ptr::null_mut(),
            p: ptr::null_mut(),
            nextp: AtomicPtr::new(ptr::null_mut()),
            pending: Pending {
                f: None,
                g: ptr::null_mut(),
                arg: 0,
            },
            park: AtomicU32::new(0),
            lockedg: ptr::null_mut(),
            handoff: ptr::null_mut(),
            home: ptr::null_mut(),
            spinning: false,
            collecting: false,
            collected: ptr::null_mut(),
            due: 0,
            rand: (id as u32).wrapping_mul(2654435761) | 1,
            thread: 0,
            tid: AtomicU32::new(0),
            errno: ptr::null_mut(),
        }
    }

    #[inline]
    pub fn fastrand(&mut self) -> u32 {
        let mut x = self.rand;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.rand = x;
        x
    }
}

/// The M of the calling thread (null on a plain thread). The word lives in an
/// initial-exec thread-local read by an assembly function (see `arch`), so no caller
/// can keep its address across a switch: a goroutine may resume on another thread,
/// and code after a switch must ask again (or use the M the switch returned).
#[inline]
pub fn current_m() -> *mut M {
    crate::arch::tls_m() as *mut M
}

/// Makes `m` the calling thread's M (null: a plain thread again).
///
/// Crate-private and safe: `m` is null or an M made by the runtime, and Ms are never
/// freed while the runtime runs (see the top of this file), which is what every
/// reader of `current_m` relies on.
#[inline(never)]
pub(crate) fn set_current_m(m: *mut M) {
    if !m.is_null() {
        // SAFETY: a runtime M (never freed) that is being bound to this thread, so no
        // other thread writes its fields now; errno's address is this thread's.
        unsafe { (*m).errno = libc::__errno_location() };
    }
    // SAFETY: m is null or a runtime M, alive for as long as it is bound (never freed).
    unsafe { crate::arch::set_tls_m(m as *mut core::ffi::c_void) };
}

/// `M::due`: a non-blocking netpoll. It cannot run before the switch has finished,
/// because the goroutine switching away may hold the very fd's lock that a readiness
/// event needs (see `sched::periodic_checks`).
pub const DUE_POLL: u8 = 1;
/// `M::due`: cancelling the contexts whose deadline passed (`context::cancel_expired`):
/// their cancel takes locks the goroutine switching away may hold.
pub const DUE_CTX: u8 = 2;
/// `M::due`: running the due timers (`timer::run_due`). Not while a switch is under
/// way: a timer shard's lock may be held by another thread (sysmon) whose callback
/// waits for the very lock the goroutine switching away still holds (a timer
/// channel's send waking the select that is parking), and waiting for the shard's
/// lock then deadlocks both threads.
pub const DUE_TIMERS: u8 = 4;
/// `M::due`, on a home's thread: letting go of what the home carries
/// (`Home::let_go`), before the goroutine switched to, which cannot take it over,
/// runs. Not during the switch: letting go (the GIL's release) may wait for another
/// thread, while the goroutine switching away may hold a lock until the switch ends.
pub const DUE_LET_GO: u8 = 8;

/// The goroutine running on the calling thread, or null.
#[inline]
pub fn current_g() -> *mut G {
    let m = current_m();
    if m.is_null() {
        ptr::null_mut()
    } else {
        // SAFETY: a non-null current M is this thread's own, alive while it runs.
        unsafe { (*m).curg }
    }
}

/// True while the calling thread is switching away from a goroutine: after
/// `switch_away` has left its pending action and before `finish_switch` has run it.
/// The goroutine switching away may still hold the lock of the object it parks on
/// (its pending action releases it), so what runs then (the scheduler's periodic
/// checks) must not wait for any lock: they leave timers, cancels and the fd poll to
/// `finish_switch` (`M::due`).
#[inline(never)]
pub fn switching() -> bool {
    let m = current_m();
    // SAFETY: a non-null current M is this thread's own, alive while it runs; only
    // this thread touches its `pending`.
    !m.is_null() && unsafe { (*m).pending.f.is_some() }
}

/// Runs the deferred action left by the context that switched to us.
///
/// # Safety
/// `m` is the calling thread's M, just after a switch: its `pending` was set by the
/// context that switched away, whose registers are now saved.
#[inline(always)]
pub unsafe fn finish_switch(m: *mut M) {
    // SAFETY: m is the calling thread's M (this function's contract), so only this
    // thread touches `pending` and `due`; the pending action's own contract is
    // that it runs here, on the context switched to, once the switch is complete.
    unsafe {
        if let Some(f) = (*m).pending.f.take() {
            f(m, (*m).pending.g, (*m).pending.arg);
        }
        // The switch's scheduling step is over: the goroutine switched away from is
        // saved, so sysmon may take what it left in runnext (see p.rs).
        let p = (*m).p;
        if !p.is_null() {
            (*p).leave_sched();
        }
        if (*m).due != 0 {
            run_due(m);
        }
    }
}

/// `finish_switch`'s rare part: the work `M::due` names, each cleared before it runs.
///
/// # Safety
/// As `finish_switch`.
#[cold]
#[inline(never)]
unsafe fn run_due(m: *mut M) {
    // SAFETY: m is the calling thread's M (our contract): only this thread touches `due`.
    unsafe {
        if (*m).due & DUE_TIMERS != 0 {
            (*m).due &= !DUE_TIMERS;
            crate::runtime::timer::run_due(crate::runtime::lock::nanotime());
        }
        if (*m).due & DUE_POLL != 0 {
            (*m).due &= !DUE_POLL;
            crate::runtime::netpoll::poll_ready();
        }
        if (*m).due & DUE_CTX != 0 {
            (*m).due &= !DUE_CTX;
            crate::runtime::context::cancel_expired();
        }
        if (*m).due & DUE_LET_GO != 0 {
            (*m).due &= !DUE_LET_GO;
            // Set only on a home's M (sched::pick_next), whose home outlives its run.
            (*(*m).home).let_go();
        }
    }
}

/// Wakes an M sleeping in `stopm` (its `nextp` must already be set).
///
/// Crate-private and safe: `m` is an M made by the runtime (never freed).
pub(crate) fn notewakeup(m: *mut M) {
    // SAFETY: Ms are never freed while the runtime runs, and `park` is atomic, so any
    // thread may store to it and wake its futex.
    unsafe {
        (*m).park.store(1, Ordering::Release);
        crate::runtime::lock::futex_wake(&(*m).park, 1);
    }
}

/// Sleeps until `notewakeup`.
///
/// Crate-private and safe: `m` is the calling thread's M (a runtime M, never freed).
pub(crate) fn notesleep(m: *mut M) {
    // SAFETY: Ms are never freed while the runtime runs; `park` is atomic, and only
    // this M sleeps on (and resets) its own word.
    unsafe {
        while (*m).park.load(Ordering::Acquire) == 0 {
            crate::runtime::lock::futex_wait(&(*m).park, 0, -1);
        }
        (*m).park.store(0, Ordering::Relaxed);
    }
}
