//! Homes as the Python binding uses them: a `runtime::home::Home` (the OS thread that
//! runs a group of Python goroutines) plus what `gr_py_run`'s slices, the thread
//! state cache and `gr.run`'s bookkeeping (daemon goroutines, the exception that
//! ends the run) need.
//!
//! **Slices.** `gr_py_run` runs the home for a slice (the binding uses ~50 ms) and
//! returns, so that the caller's own thread state runs signal handlers (from 3.13 on
//! only the main thread state sees signals). Homed goroutines switch directly to
//! each other without passing through the home's scheduler loop, so a slice would
//! never end while they keep each other busy: once the slice is over, `parked` first
//! parks the goroutine on the home's "next slice" list (a checkpoint), so the home's
//! queue drains and `Home::run` returns; the next `gr_py_run` puts those goroutines
//! back on the queue first.

use core::cell::{Cell, UnsafeCell};
use core::ffi::c_void;
use core::ptr;
use core::sync::atomic::{AtomicI64, AtomicUsize, Ordering};

use super::{api, PyObj};
use crate::runtime::g::WaitReason;
use crate::runtime::home::Home;
use crate::runtime::lock::{coarse_now, nanotime, SpinLock};
use crate::runtime::park::Waiter;
use crate::runtime::sched;

/// A home (the OS thread that runs a group of Python goroutines) plus the slice
/// state of `gr_py_run`.
pub struct PyHome {
    home: *mut Home,
    /// End of the current slice (ns, monotonic); past it, `parked` checkpoints.
    deadline: AtomicI64,
    slice_lock: SpinLock,
    /// Goroutines parked at a checkpoint, linked through `Waiter::next` (guarded by
    /// `slice_lock`).
    slice_waiters: UnsafeCell<*mut Waiter>,
    /// When `run` next looks for a deadlock (0: after the next slice).
    next_check: Cell<i64>,
    /// Thread states of ended goroutines, cleared, for the next ones (home thread
    /// only). A fresh thread state costs an mmap of its 16 KiB frame stack on first
    /// use and a munmap when deleted, about 8 us here; a cleared one is as good as new
    /// (its dict, exception state, context and hooks are dropped) and stays bound to
    /// this thread, the only one that runs it.
    tstates: UnsafeCell<Vec<*mut c_void>>,
    /// Daemon goroutines alive (`gr.run` does not wait for them).
    daemons: AtomicUsize,
    /// The KeyboardInterrupt or SystemExit a goroutine ended with, for `gr.run` to
    /// raise (owned; the first one wins). Guarded by the GIL.
    fatal: Cell<*mut PyObj>,
}

// SAFETY: the waiter list is guarded by slice_lock; `next_check` and `tstates` are
// used only by the one thread in gr_py_run (Home::run refuses a second one), or by
// the goroutines it runs on that same thread; `fatal` only under the GIL.
unsafe impl Sync for PyHome {}
// SAFETY: nothing in a PyHome is tied to the thread that made it: the cached thread
// states are bound to whichever thread runs the home, and are used only there.
unsafe impl Send for PyHome {}

const CHECK_EVERY_NS: i64 = 100_000_000;
/// Cleared thread states a home keeps for reuse (each holds ~1 KiB plus the touched
/// pages of its frame stack).
const TSTATE_CACHE: usize = 256;

impl PyHome {
    pub fn new() -> *mut PyHome {
        Box::into_raw(Box::new(PyHome {
            home: Home::new(),
            deadline: AtomicI64::new(i64::MAX),
            slice_lock: SpinLock::new(),
            slice_waiters: UnsafeCell::new(ptr::null_mut()),
            next_check: Cell::new(0),
            tstates: UnsafeCell::new(Vec::new()),
            daemons: AtomicUsize::new(0),
            fatal: Cell::new(ptr::null_mut()),
        }))
    }

    /// Goroutines of this home still alive.
    pub fn alive(&self) -> usize {
        // SAFETY: `home` is boxed by `new` and freed only with the PyHome (`free`).
        unsafe { (*self.home).alive() }
    }

    /// The home's `runtime::home::Home`.
    pub(super) fn home(&self) -> &Home {
        // SAFETY: `home` is boxed by `new` and freed only with the PyHome (`free`).
        unsafe { &*self.home }
    }

    /// Daemon goroutines alive.
    pub fn daemons(&self) -> usize {
        self.daemons.load(Ordering::SeqCst)
    }

    pub(super) fn daemon_started(&self) {
        self.daemons.fetch_add(1, Ordering::SeqCst);
    }

    pub(super) fn daemon_ended(&self) {
        self.daemons.fetch_sub(1, Ordering::SeqCst);
    }

    /// Keeps `exc` (a new reference taken here) for `take_fatal`, unless one is kept.
    ///
    /// # Safety
    /// The GIL is held; `exc` is a live object.
    pub(super) unsafe fn set_fatal(&self, exc: *mut PyObj) {
        if self.fatal.get().is_null() {
            if let Some(api) = api() {
                // SAFETY: the GIL is held and exc is live (our contract).
                unsafe { (api.incref)(exc) };
                self.fatal.set(exc);
            }
        }
    }

    /// The kept KeyboardInterrupt or SystemExit (a reference the caller takes over),
    /// or null.
    ///
    /// # Safety
    /// The GIL is held.
    pub unsafe fn take_fatal(&self) -> *mut PyObj {
        self.fatal.replace(ptr::null_mut())
    }

    /// A cleared thread state of an ended goroutine, if one is cached.
    ///
    /// # Safety
    /// Called on the home thread, inside `run` (the cache's only user).
    pub(super) unsafe fn cached_tstate(&self) -> Option<*mut c_void> {
        // SAFETY: our contract: the home thread, one goroutine at a time.
        unsafe { (*self.tstates.get()).pop() }
    }

    /// Keeps a cleared thread state for the next goroutine; false when the cache is
    /// full (the caller deletes it).
    ///
    /// # Safety
    /// As for `cached_tstate`.
    pub(super) unsafe fn cache_tstate(&self, ts: *mut c_void) -> bool {
        // SAFETY: our contract: the home thread, one goroutine at a time.
        let cache = unsafe { &mut *self.tstates.get() };
        if cache.len() < TSTATE_CACHE {
            cache.push(ts);
            true
        } else {
            false
        }
    }

    /// Frees the home: `-EBUSY` while goroutines are alive.
    ///
    /// # Safety
    /// `h` came from `new`, is not freed yet, and is not used again on success.
    pub unsafe fn free(h: *mut PyHome) -> i32 {
        // SAFETY: our contract: h is a live PyHome from `new`; it and its Home are
        // boxes freed only here, once nothing runs on or in them (alive == 0, no
        // thread in run: Home's Drop relies on the same).
        unsafe {
            if (*h).alive() != 0 || (*(*h).home).is_running() {
                return -libc::EBUSY;
            }
            // The Home (and its M) go too: LeakSanitizer found them lost here. A kept
            // fatal exception is leaked (freeing needs the GIL, which this call does
            // not take; gr.run takes it before).
            let home = (*h).home;
            drop(Box::from_raw(h));
            drop(Box::from_raw(home));
        }
        0
    }

    /// Parks the calling goroutine until the next `run` (see the module docs), once
    /// the slice is over. Read on the coarse clock (`lock::coarse_now`, which sysmon
    /// keeps within ~10 ms while a home runs), not by a clock call: every Python park
    /// passes here. A slice may so run up to ~10 ms long.
    pub(super) fn checkpoint(&self) {
        if coarse_now() < self.deadline.load(Ordering::Relaxed) {
            return;
        }
        self.slice_lock.lock();
        let mut w = Waiter::current();
        // SAFETY: we hold slice_lock, which guards slice_waiters and is what block
        // releases; w stays on our stack until resume_checkpointed wakes it.
        unsafe {
            w.next = *self.slice_waiters.get();
            *self.slice_waiters.get() = &mut w;
            w.block(&self.slice_lock, WaitReason::Sleep);
        }
    }

    /// Puts the goroutines parked at a checkpoint back on the queue, oldest first.
    fn resume_checkpointed(&self) {
        self.slice_lock.lock();
        // SAFETY: we hold slice_lock, which guards slice_waiters.
        let mut w = unsafe { core::mem::replace(&mut *self.slice_waiters.get(), ptr::null_mut()) };
        // SAFETY: this thread took slice_lock above and still holds it.
        unsafe { self.slice_lock.unlock() };
        let mut list = Vec::new();
        while !w.is_null() {
            list.push(w);
            // SAFETY: a linked waiter is alive until woken, and nobody else wakes it.
            w = unsafe { (*w).next };
        }
        for &w in list.iter().rev() {
            // SAFETY: a listed waiter is alive until woken, and only we can wake it
            // (it was taken off the list under the lock); after the wake we never
            // touch it.
            unsafe {
                if (*w).claim() {
                    Waiter::wake(w);
                }
            }
        }
    }

    /// Runs the home's goroutines on the calling thread for up to `slice_ns`: 0 when
    /// none is left, 1 when the slice ended, `-EDEADLK` when all of them (and every
    /// other goroutine) are blocked for ever, `-EBUSY` from a goroutine or when
    /// another thread runs this home.
    pub fn run(&self, slice_ns: i64) -> i32 {
        if !crate::runtime::m::current_m().is_null() {
            return -libc::EBUSY;
        }
        let rc = sched::ensure_init();
        if rc < 0 {
            return rc;
        }
        let now = nanotime();
        let deadline = if slice_ns < 0 {
            i64::MAX
        } else {
            now.saturating_add(slice_ns)
        };
        self.deadline.store(deadline, Ordering::Relaxed);
        self.resume_checkpointed();
        // Timers and fd readiness of homed goroutines are served by the idle worker
        // that blocks in epoll_wait (the poller). With only Python goroutines no
        // worker may exist yet: start one, which becomes the poller once idle.
        if sched::nobody_polling() {
            sched::wakep();
        }
        // SAFETY: `home` is boxed by `new` and freed only with self (`free`).
        let rc = unsafe { (*self.home).run(slice_ns) };
        if rc == 1 {
            let now = nanotime();
            if self.next_check.get() == 0 {
                self.next_check.set(now + CHECK_EVERY_NS);
            } else if now >= self.next_check.get() {
                self.next_check.set(now + CHECK_EVERY_NS);
                if sched::check_deadlock_except(1) {
                    return -libc::EDEADLK;
                }
            }
        } else {
            self.next_check.set(0);
        }
        rc
    }
}
