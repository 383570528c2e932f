//! The few primitives `sync` is built from, behind one door so that a model checker
//! can replace them (tokio's `src/loom/` pattern).
//!
//! Normally these are the runtime's own: `SpinLock`, `Waiter` (park a goroutine, or
//! futex-block a plain thread), std atomics, a monotonic clock and a cheap random
//! number. Built with `RUSTFLAGS="--cfg loom"`, they become loom types: the spin lock
//! is a loom atomic, a waiter is a loom thread parked until its flag is set,
//! and a timed wait may time out at any point loom chooses. The channel, select, wait
//! group and mutex code above this module is the same code in both builds; the loom
//! tests (`src/sync/loom_tests.rs`) drive it with loom threads standing in for
//! goroutines and explore every interleaving.
//!
//! The loom waiter also checks the two rules of the park/wake handshake that the real
//! runtime relies on (see `runtime/park.rs`): a waker wakes only a waiter that has
//! finished blocking (its lock released "after the save"), and nobody touches a waiter
//! after its wake-up (its memory is the waiting side's stack: the waiter's drop is a
//! write that loom reports as a data race against any access not ordered before it).

#[cfg(not(loom))]
mod imp {
    pub(crate) use crate::runtime::g::WaitReason;
    pub(crate) use crate::runtime::lock::SpinLock;
    pub(crate) use crate::runtime::park::{Waiter, Wake};
    pub(crate) use core::sync::atomic::{AtomicI64, AtomicU32, AtomicUsize, Ordering};

    /// State guarded by a lock the caller holds.
    pub(crate) struct Guarded<T>(core::cell::UnsafeCell<T>);

    impl<T> Guarded<T> {
        pub(crate) const fn new(v: T) -> Self {
            Guarded(core::cell::UnsafeCell::new(v))
        }

        /// # Safety
        /// The caller holds the lock that guards this state.
        #[inline(always)]
        pub(crate) unsafe fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
            // SAFETY: the caller holds the guarding lock (our contract), so nobody else
            // accesses the state while `f` has the only reference to it.
            f(unsafe { &mut *self.0.get() })
        }
    }

    #[inline]
    pub(crate) fn nanotime() -> i64 {
        crate::runtime::lock::nanotime()
    }

    /// A cheap per-thread random number (xorshift), for select's poll order.
    #[inline(never)]
    pub(crate) fn fastrand() -> u32 {
        use core::cell::Cell;
        thread_local! {
            static RAND: Cell<u32> = const { Cell::new(0) };
        }
        RAND.with(|r| {
            let mut x = r.get();
            if x == 0 {
                // Seed from the clock and this thread's stack address.
                let t = nanotime() as u64;
                let a = &x as *const u32 as u64;
                x = ((t ^ (t >> 32) ^ a ^ (a >> 29)) as u32) | 1;
            }
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            r.set(x);
            x
        })
    }

    /// Whether spinning before parking can pay off (another processor may be running
    /// the holder).
    #[inline]
    pub(crate) fn can_spin() -> bool {
        crate::runtime::sched::SCHED
            .gomaxprocs
            .load(Ordering::Relaxed)
            > 1
    }

    /// A broken invariant: one line naming the goroutine, then abort.
    pub(crate) fn fatal(what: &str) -> ! {
        crate::runtime::fatal(what)
    }

    /// Between a SeqCst read-modify-write and a SeqCst load of another atomic (the
    /// store-then-load handshakes of `rwmutex`): nothing, since SeqCst accesses are
    /// already ordered among themselves (in C11, and on x86 by the locked
    /// instruction). Under loom, which treats SeqCst accesses as AcqRel, a SeqCst
    /// fence that gives them the order they really have.
    #[inline(always)]
    pub(crate) fn sc_fence() {}

    /// How many reader slots a new `RwMutex` spreads its read count over: one per
    /// CPU (the runtime's processors, if more), rounded up to a power of two, at
    /// most 16.
    pub(crate) fn reader_slots() -> usize {
        crate::arch::init_cpu_hint();
        let procs = crate::runtime::sched::SCHED
            .gomaxprocs
            .load(Ordering::Relaxed) as usize;
        let cpus = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        procs.max(cpus).next_power_of_two().min(16)
    }

    /// The calling reader's slot number (any value; callers reduce it): the CPU it
    /// runs on, so that readers on different CPUs count in different cache lines.
    #[inline(always)]
    pub(crate) fn reader_slot() -> usize {
        crate::arch::cpu_hint()
    }

    /// Happens-before edges for ThreadSanitizer (runtime/sanitizer.rs; one branch when
    /// the program is not built with it). `key` is any address naming the edge.
    #[inline(always)]
    pub(crate) fn hb_release<T>(key: *const T) {
        crate::runtime::sanitizer::hb_release(key as *const core::ffi::c_void)
    }

    #[inline(always)]
    pub(crate) fn hb_acquire<T>(key: *const T) {
        crate::runtime::sanitizer::hb_acquire(key as *const core::ffi::c_void)
    }

    #[inline(always)]
    pub(crate) fn hb_acquire_release<T>(key: *const T) {
        crate::runtime::sanitizer::hb_acquire_release(key as *const core::ffi::c_void)
    }
}

#[cfg(loom)]
mod imp {
    pub(crate) use crate::runtime::g::WaitReason;
    pub(crate) use crate::runtime::park::Wake;
    pub(crate) use loom::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicUsize, Ordering};

    /// See the real build's `fatal`: under loom, a panic that fails the model.
    pub(crate) fn fatal(what: &str) -> ! {
        panic!("fatal: {what}")
    }

    /// See the real build's `sc_fence`.
    pub(crate) fn sc_fence() {
        loom::sync::atomic::fence(Ordering::SeqCst);
    }

    /// Two reader slots under loom; the models choose each reader's slot themselves
    /// (`RwMutex::rlock_at`), including a reader that leaves through another slot.
    pub(crate) fn reader_slots() -> usize {
        2
    }

    pub(crate) fn reader_slot() -> usize {
        0
    }

    use core::ptr;

    /// loom stand-in for the runtime's spin lock. `alive` is touched by every lock and
    /// unlock, and written when the lock's object is dropped: an unlock that is not
    /// ordered before a free is a reported race.
    pub(crate) struct SpinLock {
        locked: AtomicBool,
        alive: loom::cell::UnsafeCell<()>,
    }

    impl SpinLock {
        pub(crate) fn new() -> Self {
            SpinLock {
                locked: AtomicBool::new(false),
                alive: loom::cell::UnsafeCell::new(()),
            }
        }

        pub(crate) fn lock(&self) {
            self.alive.with(|_| ());
            while self
                .locked
                .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_err()
            {
                loom::thread::yield_now();
            }
        }

        /// # Safety
        /// The lock is held by the caller (or by a context that handed it over).
        pub(crate) unsafe fn unlock(&self) {
            self.alive.with(|_| ());
            self.locked.store(false, Ordering::Release);
        }
    }

    impl Drop for SpinLock {
        fn drop(&mut self) {
            self.alive.with_mut(|_| ());
        }
    }

    loom::thread_local! {
        static CANCELLED: core::cell::Cell<bool> = core::cell::Cell::new(false);
    }

    /// `Waiter::state` once the context claimed it (a waker or timeout sets 1).
    const CLAIMED_BY_CANCEL: u32 = 3;

    /// Makes every later cancellable wait of the calling loom thread a cancelled one:
    /// the context's cancel may then claim the waiter at any point loom chooses
    /// after it parked (one more party racing for `claim`, as a timeout is).
    pub(crate) fn cancel_my_waits() {
        CANCELLED.with(|c| c.set(true));
    }

    /// loom stand-in for `runtime::park::Waiter`: the waiting loom thread parks
    /// until the flag is set (the runtime's goroutine parks, a plain thread sleeps on
    /// a futex).
    pub(crate) struct Waiter {
        thread: loom::thread::Thread,
        flag: AtomicU32,
        state: AtomicU32,
        /// Set once the waiter has released its lock in `block` (for a goroutine: its
        /// registers are saved). A wake before that is the park/wake race.
        parked: AtomicBool,
        /// A cancellable waiter of a thread that called `cancel_my_waits`.
        cancelled: bool,
        alive: loom::cell::UnsafeCell<()>,
        pub(crate) next: *mut Waiter,
    }

    impl Waiter {
        pub(crate) fn current() -> Waiter {
            Waiter {
                thread: loom::thread::current(),
                flag: AtomicU32::new(0),
                state: AtomicU32::new(0),
                parked: AtomicBool::new(false),
                cancelled: false,
                alive: loom::cell::UnsafeCell::new(()),
                next: ptr::null_mut(),
            }
        }

        pub(crate) fn cancellable() -> Waiter {
            let mut w = Waiter::current();
            w.cancelled = CANCELLED.with(|c| c.get());
            w
        }

        pub(crate) fn claim(&self) -> bool {
            self.alive.with(|_| ());
            self.state
                .compare_exchange(0, 1, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        }

        /// As the runtime's: no compare-and-swap unless a cancel may compete.
        pub(crate) fn claim_untimed(&self) -> bool {
            self.alive.with(|_| ());
            !self.cancelled || self.claim()
        }

        /// The runtime's cancellation point: a cancelled waiter's context claims it
        /// right after it parked unless a waker claimed it first (loom explores both
        /// orders); otherwise as `block_timeout`.
        ///
        /// # Safety
        /// As `block`: `lock` is held and `self` is findable under it.
        pub(crate) unsafe fn wait(
            &self,
            lock: &SpinLock,
            reason: WaitReason,
            timeout_ns: i64,
        ) -> Wake {
            if self.cancelled {
                self.parked.store(true, Ordering::Release);
                // SAFETY: the caller holds `lock` (our contract).
                unsafe { lock.unlock() };
                self.alive.with(|_| ());
                if self
                    .state
                    .compare_exchange(0, CLAIMED_BY_CANCEL, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
                {
                    return Wake::Cancelled(-libc::ECANCELED);
                }
                while self.flag.load(Ordering::Acquire) == 0 {
                    loom::thread::park();
                }
                return Wake::Woken;
            }
            // SAFETY: block_timeout's contract is ours.
            match unsafe { self.block_timeout(lock, reason, timeout_ns) } {
                true => Wake::Woken,
                false => Wake::TimedOut,
            }
        }

        /// # Safety
        /// `lock` is held and `self` is findable under it.
        pub(crate) unsafe fn block(&self, lock: &SpinLock, _reason: WaitReason) {
            self.parked.store(true, Ordering::Release);
            // SAFETY: the caller holds `lock` (our contract).
            unsafe { lock.unlock() };
            while self.flag.load(Ordering::Acquire) == 0 {
                loom::thread::park();
            }
        }

        /// Like `block`, but the timeout may fire at any point loom chooses (it is
        /// one more party racing for `claim`). Negative timeout: no timeout.
        ///
        /// # Safety
        /// As `block`: `lock` is held and `self` is findable under it.
        pub(crate) unsafe fn block_timeout(
            &self,
            lock: &SpinLock,
            reason: WaitReason,
            timeout_ns: i64,
        ) -> bool {
            if timeout_ns < 0 {
                // SAFETY: `block` has our contract: lock held, self findable.
                unsafe { self.block(lock, reason) };
                return true;
            }
            self.parked.store(true, Ordering::Release);
            // SAFETY: the caller holds `lock` (our contract).
            unsafe { lock.unlock() };
            if self.claim() {
                return false;
            }
            while self.flag.load(Ordering::Acquire) == 0 {
                loom::thread::park();
            }
            true
        }

        /// # Safety
        /// The caller won `claim` or is the only possible waker.
        pub(crate) unsafe fn wake(w: *const Waiter) {
            // SAFETY: the caller won `claim` (our contract), so the waiter is alive and
            // ours to wake until the flag store below; the thread handle is cloned
            // before it, and nothing touches the waiter after.
            unsafe {
                (*w).alive.with(|_| ());
                assert!(
                    (*w).parked.load(Ordering::Acquire),
                    "woke a waiter that has not finished parking"
                );
                assert!(
                    (*w).state.load(Ordering::Acquire) != CLAIMED_BY_CANCEL,
                    "woke a waiter that its context had claimed"
                );
                let t = (*w).thread.clone();
                (*w).flag.store(1, Ordering::Release);
                t.unpark();
            }
        }
    }

    impl Drop for Waiter {
        fn drop(&mut self) {
            self.alive.with_mut(|_| ());
        }
    }

    pub(crate) struct Guarded<T>(loom::cell::UnsafeCell<T>);

    impl<T> Guarded<T> {
        pub(crate) fn new(v: T) -> Self {
            Guarded(loom::cell::UnsafeCell::new(v))
        }

        /// # Safety
        /// The caller holds the lock that guards this state.
        pub(crate) unsafe fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
            // SAFETY: the caller holds the guarding lock (our contract; loom checks
            // it), so `f` has the only reference to the state.
            self.0.with_mut(|p| f(unsafe { &mut *p }))
        }
    }

    loom::thread_local! {
        static CLOCK: core::cell::Cell<i64> = core::cell::Cell::new(0);
    }

    /// A per-thread clock that advances 0.6 ms per call: deterministic for loom, and
    /// mutex waiters are sometimes "starving" (handed the lock) and sometimes not.
    pub(crate) fn nanotime() -> i64 {
        CLOCK.with(|c| {
            let t = c.get() + 600_000;
            c.set(t);
            t
        })
    }

    pub(crate) fn fastrand() -> u32 {
        0
    }

    pub(crate) fn can_spin() -> bool {
        false
    }

    /// ThreadSanitizer edges: loom checks orderings itself.
    pub(crate) fn hb_release<T>(_key: *const T) {}
    pub(crate) fn hb_acquire<T>(_key: *const T) {}
    pub(crate) fn hb_acquire_release<T>(_key: *const T) {}
}

pub(crate) use imp::*;
