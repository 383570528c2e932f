//! Reader/writer mutexes: Go's `sync.RWMutex` (`gr_rwmutex`), with the read count
//! spread over one cache line per CPU.
//!
//! Go keeps every reader in one shared counter, so readers on two CPUs take
//! turns owning its cache line: the case a RWMutex exists for (readers everywhere,
//! writers rare) is the one that scales worst. Here a reader counts itself in the
//! slot of the CPU it runs on (`slots`, each on its own 128 bytes, the pair of lines
//! x86 prefetches together; the CPU number is the one the kernel keeps in glibc's
//! restartable-sequences area, `arch::cpu_hint`) and then checks `state`, a word only writers
//! write, so readers without a writer share it read-only. A writer sets `W_WAIT` in
//! `state` and waits until the slots add up to 0 (Linux's percpu-rwsem and BRAVO
//! are built the same way).
//!
//! - Read lock: `slots[cpu] += 1`, then `state` must be 0; otherwise the reader undoes
//!   its count (in the same slot, whatever the CPU is by then) and, under `lock`, counts itself in `waiting` and waits on
//!   `reader_sem` (a waiting writer holds back new readers, so a stream of readers
//!   cannot starve it). Read unlock: `slots[cpu] -= 1` for the CPU the reader is on
//!   now, which may differ from the one it locked on (the goroutine, or the thread,
//!   may have moved in between): single slots may go negative; their sum cannot.
//! - Both are sequentially consistent (a locked add, then a load), as is the
//!   writer's `W_WAIT` before it adds up the slots, so of a reader leaving and a
//!   writer arriving at least one sees the other; and a reader that was not inside
//!   when `W_WAIT` was set never gets in, so once `W_WAIT` is set the sum can only
//!   overstate the readers inside, never understate them. Whoever sees the sum at 0
//!   while `W_WAIT` is set moves `state` from `W_WAIT` to `W_HELD` (one
//!   compare-and-swap, so one winner, against the `state` it saw before adding up,
//!   which also counts the writers' waits: a sum taken after that wait had ended is
//!   worth nothing, and the count makes its swap fail); a reader that wins gives the
//!   writer its token on `writer_sem`.
//! - Write unlock: under `lock`, counts the `waiting` readers in at once (in slot 0)
//!   and clears `state`, then lets them go: they are in before the next writer can
//!   set `W_WAIT` (which needs `w`, the writers' mutex, still held then).
//!
//! A read unlock of a mutex nobody read-locked shows as the caller's slot going
//! below 0, which a legitimate reader that moved CPUs also does. That rarer
//! path sets `CHECK` in `state` under `lock` (new readers step aside as for a
//! writer), and adds up the slots: below 0 is the misuse, which is undone and
//! reported as -EPERM (where Go throws a fatal error); otherwise, with no writer
//! about, it folds the slots into slot 0, so that what a moved reader left behind
//! (+1 on one slot, -1 on another) does not hide the next misuse. Every write unlock
//! folds them too (no reader is inside then), so after the last writer a mutex left
//! alone refuses every read unlock. As in Go, a misuse while readers are inside goes
//! unnoticed, and so can one on a slot that still holds such a +1 (a writer was
//! pending when it was checked, and has not unlocked since); a writer that
//! then finds the slots adding up below 0 stops the program, as Go would have, with
//! a fatal error, rather than wait forever. A misuse that races with other calls on
//! the mutex can disturb them for that moment.
//!
//! Locks are not cancellation points, as in Go: the semaphores' waits are
//! uninterruptible (`sem::Wait::Uninterruptible`).

use super::mutex::Mutex;
use super::sem::{Semaphore, Wait};
use super::shim::{
    fatal, reader_slot, reader_slots, sc_fence, AtomicI64, AtomicU32, Guarded, Ordering, SpinLock,
    WaitReason,
};

/// `state`: a writer waits for the readers inside to leave.
const W_WAIT: u32 = 1;
/// `state`: a writer holds the lock.
const W_HELD: u32 = 2;
/// `state`: a read unlock is checking the slots' sum (see the file comment).
const CHECK: u32 = 4;
/// `state`: the bits above count writers' waits (each `W_WAIT` adds one), so that a
/// `state` seen before adding up the slots tells, compared again after, that the sum
/// was taken within one writer's wait (see `claim_for_writer`).
const GEN_ONE: u32 = 8;
/// The bits that keep readers out (any of them set) or let them in (all clear).
const FLAGS: u32 = W_WAIT | W_HELD | CHECK;

/// What `runlock_begin` found.
pub enum RUnlock {
    Done,
    /// `runlock_finish(slot, left)` must run.
    Slow {
        slot: usize,
        left: i64,
    },
}

/// One CPU's share of the read count, alone in its pair of cache lines.
#[repr(align(128))]
struct Slot(AtomicI64);

pub struct RwMutex {
    /// Written by writers only (and by the rare check): readers share it read-only.
    state: AtomicU32,
    /// A power of two long.
    slots: Box<[Slot]>,
    /// Writers take it first, so only one writer at a time is pending.
    w: Mutex,
    /// Guards `waiting` and every change of `state` except `W_WAIT` -> `W_HELD`.
    lock: SpinLock,
    /// Readers parked on `reader_sem` until the writer unlocks.
    waiting: Guarded<i64>,
    writer_sem: Semaphore,
    reader_sem: Semaphore,
}

impl Default for RwMutex {
    fn default() -> Self {
        Self::new()
    }
}

impl RwMutex {
    pub fn new() -> Self {
        RwMutex {
            state: AtomicU32::new(0),
            slots: (0..reader_slots())
                .map(|_| Slot(AtomicI64::new(0)))
                .collect(),
            w: Mutex::new(),
            lock: SpinLock::new(),
            waiting: Guarded::new(0),
            writer_sem: Semaphore::counting(),
            reader_sem: Semaphore::counting(),
        }
    }

    #[inline(always)]
    fn slot(&self, s: usize) -> &AtomicI64 {
        &self.slots[s & (self.slots.len() - 1)].0
    }

    /// The readers inside (and on their way in or out), as far as one pass over the
    /// slots can tell: exact only while `state` keeps new readers out.
    fn sum(&self) -> i64 {
        self.slots.iter().map(|s| s.0.load(Ordering::SeqCst)).sum()
    }

    /// Takes a read lock, waiting while a writer holds it or waits for it. Returns 0.
    #[inline]
    pub fn rlock(&self) -> i32 {
        self.rlock_at(reader_slot());
        0
    }

    /// `rlock` counting in slot `s` (the models choose it).
    pub(crate) fn rlock_at(&self, s: usize) {
        if !self.rlock_begin_at(s) {
            self.rlock_wait(s);
        }
    }

    /// The part of `rlock` that never waits: counts the reader in. `Ok` when it is
    /// in; `Err(slot)` when it must `rlock_wait(slot)` (its count is still in that
    /// slot: the CPU may change before then, the slot must not).
    #[inline(always)]
    pub fn rlock_begin(&self) -> Result<(), usize> {
        let s = reader_slot();
        if self.rlock_begin_at(s) {
            Ok(())
        } else {
            Err(s)
        }
    }

    #[inline(always)]
    fn rlock_begin_at(&self, s: usize) -> bool {
        self.slot(s).fetch_add(1, Ordering::SeqCst);
        sc_fence();
        self.state.load(Ordering::SeqCst) & FLAGS == 0
    }

    /// The rest of `rlock` after `rlock_begin` said `Err(s)`: steps aside (through
    /// slot `s`, the one it counted in, so that a writer adding up the slots never
    /// sees the step out without the step in), then waits for the writer's unlock,
    /// which counts this reader in, or tries again once the check or the writer is
    /// gone.
    #[cold]
    pub fn rlock_wait(&self, s: usize) {
        loop {
            self.leave(s);
            if self.wait_for_writer() {
                return;
            }
            if self.rlock_begin_at(s) {
                return;
            }
        }
    }

    /// Under `lock`: with a writer pending or inside, counts this reader among the
    /// `waiting` and parks until the writer's unlock lets it in (true). Without one
    /// (a check has ended, or the writer has gone) returns false at once.
    fn wait_for_writer(&self) -> bool {
        self.lock.lock();
        let writer = self.state.load(Ordering::SeqCst) & (W_WAIT | W_HELD) != 0;
        if writer {
            // SAFETY: `lock` is held.
            unsafe { self.waiting.with(|w| *w += 1) };
        }
        // SAFETY: taken above.
        unsafe { self.lock.unlock() };
        if writer {
            self.reader_sem
                .acquire(1, Wait::Uninterruptible, WaitReason::RwMutexRead);
        }
        writer
    }

    /// Takes a read lock if that needs no wait: 0, or `-EBUSY` while a writer holds
    /// or waits for it.
    pub fn try_rlock(&self) -> i32 {
        let s = reader_slot();
        loop {
            if self.rlock_begin_at(s) {
                return 0;
            }
            self.leave(s);
            // Wait out a check (it holds `lock`); a writer means busy.
            self.lock.lock();
            let writer = self.state.load(Ordering::SeqCst) & (W_WAIT | W_HELD) != 0;
            // SAFETY: taken above.
            unsafe { self.lock.unlock() };
            if writer {
                return -libc::EBUSY;
            }
        }
    }

    /// Drops a read lock: 0, or `-EPERM` when it is not read-locked (as far as can be
    /// told: see the file comment). The last reader a pending writer waits for lets
    /// it in.
    #[inline]
    pub fn runlock(&self) -> i32 {
        self.runlock_at(reader_slot())
    }

    /// `runlock` counting out of slot `s` (the models choose it).
    #[inline(always)]
    pub(crate) fn runlock_at(&self, s: usize) -> i32 {
        match self.runlock_begin_at(s) {
            RUnlock::Done => 0,
            RUnlock::Slow { slot, left } => self.runlock_finish(slot, left),
        }
    }

    /// The part of `runlock` that never waits or wakes anybody: counts the reader
    /// out. `Slow` when `runlock_finish` must run (a writer waits, or the slot went
    /// below 0).
    #[inline(always)]
    pub fn runlock_begin(&self) -> RUnlock {
        self.runlock_begin_at(reader_slot())
    }

    #[inline(always)]
    fn runlock_begin_at(&self, s: usize) -> RUnlock {
        let left = self.slot(s).fetch_sub(1, Ordering::SeqCst) - 1;
        sc_fence();
        if left >= 0 && self.state.load(Ordering::SeqCst) & FLAGS == 0 {
            return RUnlock::Done;
        }
        RUnlock::Slow { slot: s, left }
    }

    /// The rest of `runlock` after `runlock_begin` said `Slow`: 0, or `-EPERM`.
    #[cold]
    pub fn runlock_finish(&self, s: usize, left: i64) -> i32 {
        let rc = if left < 0 && !self.check_still_read_locked(s) {
            -libc::EPERM
        } else {
            0
        };
        // Also after a check: while `CHECK` was set, the claim of a reader that left
        // at that moment failed (`state` changed), so look again.
        self.let_writer_in_if_last();
        rc
    }

    /// After a read unlock took slot `s` below 0: true if the sum of the slots says a
    /// reader was inside (this one, having moved CPUs), false if nobody was
    /// (the count is put back: nothing changed).
    fn check_still_read_locked(&self, s: usize) -> bool {
        self.lock.lock();
        self.state.fetch_or(CHECK, Ordering::SeqCst);
        sc_fence();
        let was_inside = self.sum() >= 0;
        if !was_inside {
            self.slot(s).fetch_add(1, Ordering::SeqCst);
        } else if self.state.load(Ordering::SeqCst) & (W_WAIT | W_HELD) == 0 {
            self.fold();
        }
        self.state.fetch_and(!CHECK, Ordering::SeqCst);
        // SAFETY: taken above.
        unsafe { self.lock.unlock() };
        was_inside
    }

    /// Under `lock`, either with `CHECK` set and no writer, or by the write unlock
    /// while `W_HELD` is still set (in both cases nobody adds up the slots meanwhile,
    /// or a sum taken meanwhile is worth nothing: see `claim_for_writer`): moves every
    /// slot's count into slot 0, so that the counts a reader that moved CPUs left
    /// behind (+1 here, -1 there) cancel out, and the next read unlock of the unlocked
    /// mutex takes its slot below 0 again. A reader stepping aside at that moment may
    /// leave a pair of its own; the sum never changes. A slot at 0 is only read.
    fn fold(&self) {
        for slot in &self.slots[1..] {
            if slot.0.load(Ordering::SeqCst) == 0 {
                continue;
            }
            let v = slot.0.swap(0, Ordering::SeqCst);
            if v != 0 {
                self.slots[0].0.fetch_add(v, Ordering::SeqCst);
            }
        }
    }

    /// Counts a reader out of slot `s` that steps aside before it got in (same slot:
    /// it has not parked since it counted itself in).
    fn leave(&self, s: usize) {
        self.slot(s).fetch_sub(1, Ordering::SeqCst);
        sc_fence();
        self.let_writer_in_if_last();
    }

    /// A reader that left while a writer waits: if no reader is left, the first to
    /// see it (reader or writer) moves `state` to `W_HELD`; a reader that does gives
    /// the writer its token.
    fn let_writer_in_if_last(&self) {
        let seen = self.state.load(Ordering::SeqCst);
        if seen & W_WAIT != 0 && self.claim_for_writer(seen) {
            self.writer_sem.release(1);
        }
    }

    /// `W_WAIT` -> `W_HELD` if the slots add up to 0 and `state` is still `seen` (a
    /// state with `W_WAIT`, loaded before): true for the one caller that made the move.
    ///
    /// The sum is only good within the writer's wait that `seen` belongs to (then no
    /// reader gets in, and no fold runs): a caller that read `W_WAIT` and was delayed
    /// might add up the slots after that writer had come and gone, while readers
    /// come, go and fold, and then find a new writer waiting; the generation in
    /// `state` makes its compare-and-swap fail. A check that sets `CHECK` meanwhile
    /// fails it too; the checker looks again after (`runlock_finish`).
    fn claim_for_writer(&self, seen: u32) -> bool {
        let readers = self.sum();
        if readers < 0 {
            if self.state.load(Ordering::SeqCst) == seen {
                // Within one writer's wait the sum can only overstate (file
                // comment): a read unlock of a mutex nobody read-locked went through
                // unnoticed. Go stops the program at every such unlock; left alone,
                // this writer would wait forever.
                fatal("gr_rwmutex: read unlock of a mutex that was not read-locked");
            }
            return false;
        }
        readers == 0
            && self
                .state
                .compare_exchange(
                    seen,
                    (seen & !W_WAIT) | W_HELD,
                    Ordering::SeqCst,
                    Ordering::SeqCst,
                )
                .is_ok()
    }

    /// Takes the write lock, waiting for other writers and for the readers inside to
    /// leave. Returns 0.
    pub fn lock(&self) -> i32 {
        self.w.lock();
        let seen = self.set_writer_waiting();
        if !self.claim_for_writer(seen) {
            // A reader has claimed it, or the last reader inside will.
            self.writer_sem
                .acquire(1, Wait::Uninterruptible, WaitReason::RwMutexWrite);
        }
        0
    }

    /// With `w` held: sets `W_WAIT` and counts a writer's wait (under `lock`, so no
    /// check is running: no flag is set). Returns the new state.
    fn set_writer_waiting(&self) -> u32 {
        self.lock.lock();
        let seen = self
            .state
            .fetch_add(GEN_ONE | W_WAIT, Ordering::SeqCst)
            .wrapping_add(GEN_ONE | W_WAIT);
        sc_fence();
        // SAFETY: taken above.
        unsafe { self.lock.unlock() };
        seen
    }

    /// Takes the write lock if that needs no wait: 0, or `-EBUSY`.
    pub fn try_lock(&self) -> i32 {
        if self.w.try_lock() != 0 {
            return -libc::EBUSY;
        }
        let seen = self.set_writer_waiting();
        if self.claim_for_writer(seen) {
            return 0;
        }
        self.lock.lock();
        // Under `lock` no check runs, so `state` is `seen` (still waiting) or has
        // been claimed for us (`W_HELD`).
        let gave_up = self
            .state
            .compare_exchange(seen, seen & !FLAGS, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok();
        if !gave_up {
            // SAFETY: taken above.
            unsafe { self.lock.unlock() };
            // The last reader left meanwhile and claimed it for us: its token is
            // there already, so this does not wait.
            self.writer_sem
                .acquire(1, Wait::Uninterruptible, WaitReason::RwMutexWrite);
            return 0;
        }
        let n = self.take_waiting_readers();
        // SAFETY: taken above.
        unsafe { self.lock.unlock() };
        self.release_readers(n);
        self.w.unlock();
        -libc::EBUSY
    }

    /// Drops the write lock: 0, or `-EPERM` when it is not write-locked. Lets in the
    /// readers that arrived meanwhile, then the next writer.
    pub fn unlock(&self) -> i32 {
        self.lock.lock();
        if self.state.load(Ordering::SeqCst) & W_HELD == 0 {
            // SAFETY: taken above.
            unsafe { self.lock.unlock() };
            return -libc::EPERM;
        }
        // No reader is inside: what moved readers left behind since the last fold
        // (a check that found a writer pending does not fold) cancels out here, so
        // that a read unlock of the mutex once it is left alone is always refused.
        self.fold();
        let n = self.take_waiting_readers();
        self.state.fetch_and(!FLAGS, Ordering::SeqCst);
        // SAFETY: taken above.
        unsafe { self.lock.unlock() };
        self.release_readers(n);
        self.w.unlock();
        0
    }

    /// Under `lock`, before `state` lets readers in: counts the waiting readers in
    /// (slot 0) and returns how many they are.
    fn take_waiting_readers(&self) -> i64 {
        // SAFETY: the caller holds `lock`.
        let n = unsafe { self.waiting.with(core::mem::take) };
        if n > 0 {
            self.slot(0).fetch_add(n, Ordering::SeqCst);
        }
        n
    }

    fn release_readers(&self, n: i64) {
        if n > 0 {
            self.reader_sem.release(n);
        }
    }

    /// True while anyone holds it, waits for it, or is on the way in or out.
    pub fn is_busy(&self) -> bool {
        self.state.load(Ordering::SeqCst) & FLAGS != 0
            || self.sum() != 0
            || self.w.is_busy()
            || self.reader_sem.has_waiters()
            || self.writer_sem.has_waiters()
    }
}
