//! The runtime's two low-level waiting primitives.
//!
//! `SpinLock`: guards channel, wait-group and join state. Critical sections are a few
//! dozen instructions, so a lock that spins (then yields the CPU, since on 2 vCPUs the
//! holder may be descheduled) beats a futex mutex. Its unlock is a separate call,
//! not a guard, because a parking goroutine's lock is released by the context it
//! switched to (see `park.rs`): no RAII guard can cross that switch.
//!
//! `futex_wait`/`futex_wake`: how worker threads and plain threads sleep. Written
//! against the raw system call because nothing else sleeps on a 32-bit word with a
//! relative timeout and tolerates the word's memory going away after a wake.

use core::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, Ordering};

pub struct SpinLock {
    locked: AtomicBool,
}

impl SpinLock {
    pub const fn new() -> Self {
        SpinLock {
            locked: AtomicBool::new(false),
        }
    }

    #[inline]
    pub fn lock(&self) {
        if self
            .locked
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            return;
        }
        self.lock_slow();
    }

    #[cold]
    fn lock_slow(&self) {
        let mut spins = 0u32;
        loop {
            while self.locked.load(Ordering::Relaxed) {
                if spins < 64 {
                    core::hint::spin_loop();
                } else {
                    // The holder may have been preempted by the OS: let it run.
                    // SAFETY: sched_yield has no preconditions.
                    unsafe { libc::sched_yield() };
                }
                spins += 1;
            }
            if self
                .locked
                .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                return;
            }
        }
    }

    /// # Safety
    /// The lock must be held (by this context or one that handed it over).
    #[inline]
    pub unsafe fn unlock(&self) {
        self.locked.store(false, Ordering::Release);
    }
}

impl Default for SpinLock {
    fn default() -> Self {
        Self::new()
    }
}

/// Sleeps while `*word == val`, at most `timeout_ns` (negative: no limit). Returns
/// early on a wake, a signal or a spurious wake-up: callers loop on their condition.
pub fn futex_wait(word: &AtomicU32, val: u32, timeout_ns: i64) {
    let ts;
    let tsp = if timeout_ns < 0 {
        core::ptr::null()
    } else {
        ts = libc::timespec {
            tv_sec: (timeout_ns / 1_000_000_000) as libc::time_t,
            tv_nsec: (timeout_ns % 1_000_000_000) as libc::c_long,
        };
        &ts as *const libc::timespec
    };
    // SAFETY: `word` is a reference, so a valid, aligned u32 for the duration of the
    // call; `tsp` is null or points to `ts`, which outlives the call.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
            val,
            tsp,
        );
    }
}

/// Wakes up to `n` threads sleeping on `word`. The word may be freed by a woken
/// waiter right after its value changed: a futex wake on a stale address at worst
/// wakes an unrelated waiter spuriously, which every waiter here tolerates.
pub fn futex_wake(word: *const AtomicU32, n: i32) {
    // SAFETY: FUTEX_WAKE only uses the address as a key; it never dereferences it.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word as *const u32,
            libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            n,
        );
    }
}

/// Monotonic clock in nanoseconds.
#[inline]
pub fn nanotime() -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: &mut ts is a valid, writable timespec for the call.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec * 1_000_000_000 + ts.tv_nsec
}

/// A clock good to ~10 ms for `G::wait_since` (only dumps read it): sysmon refreshes
/// it on every round and when it wakes from its idle sleep, so a park pays one load
/// instead of a clock call (two per channel round trip).
pub(crate) static COARSE_NOW: AtomicI64 = AtomicI64::new(0);

#[inline]
pub fn coarse_now() -> i64 {
    COARSE_NOW.load(Ordering::Relaxed)
}

pub fn refresh_coarse_now() {
    COARSE_NOW.store(nanotime(), Ordering::Relaxed);
}
