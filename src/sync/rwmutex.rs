//! Reader/writer mutexes: Go's `sync.RWMutex` (`gr_rwmutex`), with Go's algorithm.
//!
//! - `reader_count`: readers inside or on their way in. A writer that wants the lock
//!   subtracts `MAX_READERS` from it, so a negative count tells every new reader that
//!   a writer is pending: it waits on `reader_sem` (a waiting writer holds back new
//!   readers, so a stream of readers cannot starve it).
//! - `reader_wait`: how many of the readers that were inside when the writer came the
//!   writer still waits for. The last of them to leave releases `writer_sem`.
//! - `w`: a `Mutex` that writers take first, so only one writer at a time is pending.
//! - Unlocking the writer adds `MAX_READERS` back: the count is then the readers that
//!   arrived meanwhile, and that many tokens go to `reader_sem` at once.
//!
//! A read lock and unlock without a writer are one atomic add each on
//! `reader_count`, as in Go, and touch no lock; `rlock_begin` and `runlock_begin` are
//! those parts, which the C exports run without the boundary's frame.
//!
//! A read unlock of a mutex nobody read-locked is detected where Go detects it (no
//! reader in and none waited for: the count was 0, or exactly -MAX_READERS), where
//! Go throws a fatal error. Here the count is put back and the call returns -EPERM:
//! right when the misuse is the only call on the mutex at that moment; a lock taken
//! concurrently may see the transient count (as in Go, where the process dies). A
//! compare-and-swap would avoid the transient, at the price of a second pass over
//! the cache line for every read unlock of a mutex that readers on several
//! processors share, the case a RWMutex is for. `writer_holds` makes the write
//! unlock's check exact (it is not on the readers' path).
//!
//! Locks are not cancellation points, as in Go: the semaphores' waits are
//! uninterruptible (`sem::Wait::Uninterruptible`).

use core::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use super::mutex::Mutex;
use super::sem::{Semaphore, Wait};
use super::shim::WaitReason;

/// What `runlock_begin` found.
pub enum RUnlock {
    Done,
    /// It was not read-locked: nothing changed.
    NotLocked,
    /// This was the last reader a pending writer waited for: `writer_sem.release(1)`.
    LetWriterIn,
}

/// More readers than this at once is not supported (Go's limit).
const MAX_READERS: i32 = 1 << 30;

pub struct RwMutex {
    w: Mutex,
    writer_sem: Semaphore,
    reader_sem: Semaphore,
    reader_count: AtomicI32,
    reader_wait: AtomicI32,
    /// Set while a writer holds the lock (after its readers left).
    writer_holds: AtomicBool,
}

impl Default for RwMutex {
    fn default() -> Self {
        Self::new()
    }
}

impl RwMutex {
    pub fn new() -> Self {
        RwMutex {
            w: Mutex::new(),
            writer_sem: Semaphore::counting(),
            reader_sem: Semaphore::counting(),
            reader_count: AtomicI32::new(0),
            reader_wait: AtomicI32::new(0),
            writer_holds: AtomicBool::new(false),
        }
    }

    /// Takes a read lock, waiting while a writer holds it or waits for it. Returns 0.
    #[inline]
    pub fn rlock(&self) -> i32 {
        if !self.rlock_begin() {
            self.rlock_wait();
        }
        0
    }

    /// The part of `rlock` that never waits: counts the reader in. True when it is
    /// in; false when a writer is pending, and the reader must `rlock_wait`.
    #[inline(always)]
    pub fn rlock_begin(&self) -> bool {
        self.reader_count.fetch_add(1, Ordering::SeqCst) >= 0
    }

    /// The rest of `rlock` after `rlock_begin` said false: the pending writer's
    /// unlock gives this reader a token.
    #[cold]
    pub fn rlock_wait(&self) {
        self.reader_sem
            .acquire(1, Wait::Uninterruptible, WaitReason::RwMutexRead);
    }

    /// Takes a read lock if that needs no wait: 0, or `-EBUSY` while a writer holds
    /// or waits for it.
    pub fn try_rlock(&self) -> i32 {
        let mut c = self.reader_count.load(Ordering::SeqCst);
        loop {
            if c < 0 {
                return -libc::EBUSY;
            }
            match self.reader_count.compare_exchange_weak(
                c,
                c + 1,
                Ordering::SeqCst,
                Ordering::SeqCst,
            ) {
                Ok(_) => return 0,
                Err(cur) => c = cur,
            }
        }
    }

    /// Drops a read lock: 0, or `-EPERM` when it is not read-locked (as far as can be
    /// told: see the file comment). The last reader a pending writer waits for lets
    /// it in.
    #[inline]
    pub fn runlock(&self) -> i32 {
        match self.runlock_begin() {
            RUnlock::Done => 0,
            RUnlock::NotLocked => -libc::EPERM,
            RUnlock::LetWriterIn => self.let_writer_in(),
        }
    }

    /// After `runlock_begin` said `LetWriterIn`. Returns 0.
    pub fn let_writer_in(&self) -> i32 {
        self.writer_sem.release(1);
        0
    }

    /// The part of `runlock` that never waits or wakes anybody (Go's RUnlock and
    /// rUnlockSlow, which only counts).
    #[inline(always)]
    pub fn runlock_begin(&self) -> RUnlock {
        let r = self.reader_count.fetch_sub(1, Ordering::SeqCst) - 1;
        if r >= 0 {
            return RUnlock::Done;
        }
        self.runlock_slow(r)
    }

    #[cold]
    fn runlock_slow(&self, r: i32) -> RUnlock {
        if r + 1 == 0 || r + 1 == -MAX_READERS {
            // Nobody read-locked it (no reader in, and none a writer waits for): put
            // the count back (see the file comment).
            self.reader_count.fetch_add(1, Ordering::SeqCst);
            return RUnlock::NotLocked;
        }
        // A writer is pending: the last reader it waits for lets it in.
        if self.reader_wait.fetch_sub(1, Ordering::SeqCst) == 1 {
            RUnlock::LetWriterIn
        } else {
            RUnlock::Done
        }
    }

    /// Takes the write lock, waiting for other writers and for the readers inside to
    /// leave. Returns 0.
    pub fn lock(&self) -> i32 {
        self.w.lock();
        let r = self.reader_count.fetch_add(-MAX_READERS, Ordering::SeqCst);
        if r != 0 && self.reader_wait.fetch_add(r, Ordering::SeqCst) + r != 0 {
            self.writer_sem
                .acquire(1, Wait::Uninterruptible, WaitReason::RwMutexWrite);
        }
        self.writer_holds.store(true, Ordering::SeqCst);
        0
    }

    /// Takes the write lock if that needs no wait: 0, or `-EBUSY`.
    pub fn try_lock(&self) -> i32 {
        if self.w.try_lock() != 0 {
            return -libc::EBUSY;
        }
        if self
            .reader_count
            .compare_exchange(0, -MAX_READERS, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            self.w.unlock();
            return -libc::EBUSY;
        }
        self.writer_holds.store(true, Ordering::SeqCst);
        0
    }

    /// Drops the write lock: 0, or `-EPERM` when it is not write-locked. Lets in the
    /// readers that arrived meanwhile, then the next writer.
    pub fn unlock(&self) -> i32 {
        if !self.writer_holds.swap(false, Ordering::SeqCst) {
            return -libc::EPERM;
        }
        let r = self.reader_count.fetch_add(MAX_READERS, Ordering::SeqCst) + MAX_READERS;
        if r > 0 {
            self.reader_sem.release(r as i64);
        }
        self.w.unlock();
        0
    }

    /// True while anyone holds it, waits for it, or is on the way in or out.
    pub fn is_busy(&self) -> bool {
        self.reader_count.load(Ordering::SeqCst) != 0
            || self.writer_holds.load(Ordering::SeqCst)
            || self.w.is_busy()
            || self.reader_sem.has_waiters()
            || self.writer_sem.has_waiters()
    }
}
