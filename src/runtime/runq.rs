//! A P's local run queue: Go's fixed ring of 256 goroutines (`runq` in Go's
//! `runtime2.go`, `runqput`/`runqget`/`runqgrab` in `proc.go`), single producer, many
//! consumers.
//!
//! Only the P's owner pushes, at `tail`, which it alone writes (a plain store with
//! release ordering publishes the slot). Consumers take from `head` by compare-and-swap:
//! the owner one at a time, thieves (other Ps, sysmon) half of what they see at once,
//! copied out *before* their CAS, which claims the copied slots only if nobody moved
//! `head` meanwhile. A slot is overwritten by the owner only after it has seen `head`
//! move past it (acquire load), so a thief's copy is either claimed whole or thrown
//! away. Compared with the crossbeam deque this replaced: no buffer indirection or
//! epoch machinery, and a push is two plain stores; a full ring is the caller's to
//! spill (half to the global queue, as Go does), never a reallocation.
//!
//! The ring holds raw pointers whose ownership the run-queue protocol hands over
//! (runtime/g.rs: a RUNNABLE goroutine belongs to exactly one queue). Built with
//! `--cfg loom`, the atomics are loom's, and the model at the bottom checks every
//! interleaving of an owner against thieves.

#![allow(unexpected_cfgs)] // `loom` is set by RUSTFLAGS for the model (as in sync/)

#[cfg(not(loom))]
use core::sync::atomic::{AtomicPtr, AtomicU32, Ordering};
#[cfg(loom)]
use loom::sync::atomic::{AtomicPtr, AtomicU32, Ordering};

use core::ptr;

/// Slots in the ring (a power of two, so indexes wrap with a mask). The loom model
/// uses a ring of 4, so that it can explore a full ring.
#[cfg(not(loom))]
pub(crate) const RUNQ_SIZE: u32 = 256;
#[cfg(loom)]
pub(crate) const RUNQ_SIZE: u32 = 4;
const MASK: u32 = RUNQ_SIZE - 1;

pub(crate) struct RunQueue<T> {
    /// The next slot to take from; consumers advance it by CAS.
    head: AtomicU32,
    /// The next slot to fill; written by the owner only.
    tail: AtomicU32,
    slots: Box<[AtomicPtr<T>]>,
}

impl<T> RunQueue<T> {
    pub(crate) fn new() -> Self {
        RunQueue {
            head: AtomicU32::new(0),
            tail: AtomicU32::new(0),
            slots: (0..RUNQ_SIZE)
                .map(|_| AtomicPtr::new(ptr::null_mut()))
                .collect(),
        }
    }

    #[inline(always)]
    fn slot(&self, i: u32) -> &AtomicPtr<T> {
        // SAFETY: the index is masked into the ring, whose length is RUNQ_SIZE.
        unsafe { self.slots.get_unchecked((i & MASK) as usize) }
    }

    /// The owner's view of its tail (it alone writes it).
    #[inline(always)]
    fn own_tail(&self) -> u32 {
        self.tail.load(Ordering::Relaxed)
    }

    /// Goroutines queued (a snapshot; exact for the owner when no thief is active).
    #[inline]
    pub(crate) fn len(&self) -> u32 {
        let h = self.head.load(Ordering::Acquire);
        let t = self.tail.load(Ordering::Acquire);
        t.wrapping_sub(h).min(RUNQ_SIZE)
    }

    /// True when nothing is queued (exact for the owner: only it adds).
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.head.load(Ordering::Acquire) == self.tail.load(Ordering::Acquire)
    }

    /// Queues `x` at the tail. When the ring is full, hands `x` back (the caller then
    /// spills with `take_half_for_spill`).
    ///
    /// # Safety
    /// Owner only: the caller is the one thread that pushes to this queue now.
    #[inline(always)]
    pub(crate) unsafe fn push(&self, x: *mut T) -> Result<(), *mut T> {
        let h = self.head.load(Ordering::Acquire);
        let t = self.own_tail();
        if t.wrapping_sub(h) >= RUNQ_SIZE {
            return Err(x);
        }
        self.slot(t).store(x, Ordering::Relaxed);
        self.tail.store(t.wrapping_add(1), Ordering::Release);
        Ok(())
    }

    /// Takes the oldest queued item. Null when empty.
    ///
    /// # Safety
    /// Owner only (see `push`).
    #[inline(always)]
    pub(crate) unsafe fn pop(&self) -> *mut T {
        loop {
            let h = self.head.load(Ordering::Acquire);
            let t = self.own_tail();
            if h == t {
                return ptr::null_mut();
            }
            let x = self.slot(h).load(Ordering::Relaxed);
            if self
                .head
                .compare_exchange_weak(h, h.wrapping_add(1), Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                return x;
            }
        }
    }

    /// A full ring: takes the older half of it out into `out` (for the global queue).
    /// False when a thief emptied part of it meanwhile (the caller just pushes again).
    ///
    /// # Safety
    /// Owner only (see `push`).
    pub(crate) unsafe fn take_half_for_spill(&self, out: &mut Vec<*mut T>) -> bool {
        let h = self.head.load(Ordering::Acquire);
        let t = self.own_tail();
        let n = t.wrapping_sub(h) / 2;
        if n != RUNQ_SIZE / 2 {
            return false;
        }
        let start = out.len();
        for i in 0..n {
            out.push(self.slot(h.wrapping_add(i)).load(Ordering::Relaxed));
        }
        if self
            .head
            .compare_exchange(h, h.wrapping_add(n), Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            out.truncate(start);
            return false;
        }
        true
    }

    /// A thief's grab: claims about half of what `self` holds (at least one) and copies
    /// it into `dst`'s free slots from `dst`'s tail on, without publishing them.
    /// Returns how many were claimed (0: empty).
    ///
    /// # Safety
    /// The caller owns `dst` (it is its P's owner), and `dst` is empty.
    unsafe fn grab_into(&self, dst: &RunQueue<T>) -> u32 {
        let dt = dst.own_tail();
        loop {
            let h = self.head.load(Ordering::Acquire);
            let t = self.tail.load(Ordering::Acquire);
            let n = t.wrapping_sub(h);
            let n = n - n / 2;
            if n == 0 {
                return 0;
            }
            if n > RUNQ_SIZE / 2 {
                // head and tail were read at different moments: read them again.
                continue;
            }
            for i in 0..n {
                let x = self.slot(h.wrapping_add(i)).load(Ordering::Relaxed);
                dst.slot(dt.wrapping_add(i)).store(x, Ordering::Relaxed);
            }
            if self
                .head
                .compare_exchange(h, h.wrapping_add(n), Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                return n;
            }
        }
    }

    /// Steals about half of `self` into `dst` and returns one of the stolen items to
    /// run at once (null: nothing to steal).
    ///
    /// # Safety
    /// The caller owns `dst`, which is empty.
    pub(crate) unsafe fn steal_into(&self, dst: &RunQueue<T>) -> *mut T {
        // SAFETY: our contract is grab_into's.
        let n = unsafe { self.grab_into(dst) };
        if n == 0 {
            return ptr::null_mut();
        }
        let dt = dst.own_tail();
        let n = n - 1;
        let x = dst.slot(dt.wrapping_add(n)).load(Ordering::Relaxed);
        if n > 0 {
            dst.tail.store(dt.wrapping_add(n), Ordering::Release);
        }
        x
    }

    /// Takes everything queued, oldest first, into `out` (a thief emptying a stuck P's
    /// queue, or an owner draining its own).
    pub(crate) fn steal_all(&self, out: &mut Vec<*mut T>) {
        loop {
            let h = self.head.load(Ordering::Acquire);
            let t = self.tail.load(Ordering::Acquire);
            let n = t.wrapping_sub(h);
            if n == 0 {
                return;
            }
            if n > RUNQ_SIZE {
                continue;
            }
            let start = out.len();
            for i in 0..n {
                out.push(self.slot(h.wrapping_add(i)).load(Ordering::Relaxed));
            }
            if self
                .head
                .compare_exchange(h, h.wrapping_add(n), Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                return;
            }
            out.truncate(start);
        }
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    //! Every interleaving of an owner (push, pop, spill) against thieves (steal half,
    //! steal all): each item comes out exactly once, and the owner's FIFO order holds
    //! for what it pops itself.
    //!
    //! Run: `RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test --release --lib runq::loom_tests`

    use super::*;
    use loom::sync::Arc;
    use loom::thread;

    fn model(f: impl Fn() + Sync + Send + 'static) {
        let mut b = loom::model::Builder::new();
        if b.preemption_bound.is_none() {
            b.preemption_bound = Some(3);
        }
        b.check(f);
    }

    /// Items are small integers disguised as pointers (never dereferenced).
    fn item(i: usize) -> *mut u8 {
        (i + 1) as *mut u8
    }

    fn id(x: *mut u8) -> usize {
        x as usize - 1
    }

    struct Q(RunQueue<u8>);
    // SAFETY: the queue is shared by design (its atomics are loom's); the items are
    // plain integers.
    unsafe impl Send for Q {}
    // SAFETY: as for Send.
    unsafe impl Sync for Q {}

    /// Owner pushes 3 and pops; a thief steals half into its own queue and drains it.
    #[test]
    fn owner_and_thief_see_each_item_once() {
        model(|| {
            let q = Arc::new(Q(RunQueue::new()));
            let q2 = q.clone();
            let thief = thread::spawn(move || {
                let mine = RunQueue::<u8>::new();
                let mut got = Vec::new();
                // SAFETY: this thread owns `mine`, which is empty.
                let x = unsafe { q2.0.steal_into(&mine) };
                if !x.is_null() {
                    got.push(id(x));
                    loop {
                        // SAFETY: this thread owns `mine`.
                        let y = unsafe { mine.pop() };
                        if y.is_null() {
                            break;
                        }
                        got.push(id(y));
                    }
                }
                got
            });
            let mut mine = Vec::new();
            for i in 0..3 {
                // SAFETY: this thread is the owner.
                unsafe { q.0.push(item(i)).expect("room") };
            }
            loop {
                // SAFETY: this thread is the owner.
                let x = unsafe { q.0.pop() };
                if x.is_null() {
                    break;
                }
                mine.push(id(x));
            }
            let stolen = thief.join().unwrap();
            let mut all: Vec<usize> = mine.iter().chain(stolen.iter()).copied().collect();
            all.sort_unstable();
            assert_eq!(all, vec![0, 1, 2], "mine {mine:?} stolen {stolen:?}");
            assert!(mine.windows(2).all(|w| w[0] < w[1]), "owner order {mine:?}");
        });
    }

    /// Two thieves (one stealing all, one half) against an owner that pushes while
    /// they steal and then pops.
    #[test]
    fn two_thieves() {
        model(|| {
            let q = Arc::new(Q(RunQueue::new()));
            // SAFETY: this thread is the owner.
            unsafe { q.0.push(item(0)).expect("room") };
            let qa = q.clone();
            let a = thread::spawn(move || {
                let mut out = Vec::new();
                qa.0.steal_all(&mut out);
                out.into_iter().map(id).collect::<Vec<_>>()
            });
            let qb = q.clone();
            let b = thread::spawn(move || {
                let mine = RunQueue::<u8>::new();
                // SAFETY: this thread owns `mine`, which is empty.
                let x = unsafe { qb.0.steal_into(&mine) };
                let mut got = Vec::new();
                if !x.is_null() {
                    got.push(id(x));
                }
                // SAFETY: this thread owns `mine`.
                let y = unsafe { mine.pop() };
                if !y.is_null() {
                    got.push(id(y));
                }
                got
            });
            // SAFETY: this thread is the owner.
            unsafe { q.0.push(item(1)).expect("room") };
            let mut mine = Vec::new();
            loop {
                // SAFETY: this thread is the owner.
                let x = unsafe { q.0.pop() };
                if x.is_null() {
                    break;
                }
                mine.push(id(x));
            }
            let ga = a.join().unwrap();
            let gb = b.join().unwrap();
            let mut all: Vec<usize> = mine.iter().chain(&ga).chain(&gb).copied().collect();
            all.sort_unstable();
            assert_eq!(all, vec![0, 1], "owner {mine:?} all {ga:?} half {gb:?}");
        });
    }

    /// A full ring spills its older half while a thief steals: nothing is lost or
    /// duplicated.
    #[test]
    fn spill_against_thief() {
        model(|| {
            let q = Arc::new(Q(RunQueue::new()));
            for i in 0..RUNQ_SIZE as usize {
                // SAFETY: this thread is the owner.
                unsafe { q.0.push(item(i)).expect("room") };
            }
            let q2 = q.clone();
            let thief = thread::spawn(move || {
                let mut out = Vec::new();
                q2.0.steal_all(&mut out);
                out.len()
            });
            // SAFETY: this thread is the owner.
            let full = unsafe { q.0.push(item(RUNQ_SIZE as usize)) };
            let mut spilled = Vec::new();
            let mut left = 0;
            if full.is_err() {
                // SAFETY: this thread is the owner.
                unsafe { q.0.take_half_for_spill(&mut spilled) };
            } else {
                left += 1;
            }
            loop {
                // SAFETY: this thread is the owner.
                let x = unsafe { q.0.pop() };
                if x.is_null() {
                    break;
                }
                left += 1;
            }
            let stolen = thief.join().unwrap();
            let pushed = RUNQ_SIZE as usize + usize::from(full.is_ok());
            assert_eq!(stolen + spilled.len() + left, pushed);
        });
    }
}
