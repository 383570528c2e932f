//! A P's spawn stack: the goroutines that a spawn displaced from `runnext`, taken by
//! the owner newest first and by thieves oldest first (a Chase-Lev work-stealing
//! deque, as in Lê, Pop, Cohen and Zappa Nardelli, "Correct and Efficient
//! Work-Stealing for Weak Memory Models", PPoPP 2013, with a fixed buffer).
//!
//! Why a stack and not Go's order: a spawn puts the child in `runnext` and, in Go,
//! moves the goroutine that was there to the tail of the run queue. A goroutine that
//! spawns ten children then has nine of them wait behind everything queued before
//! them, so a tree of spawns (skynet, a parallel divide and conquer) is expanded
//! almost whole before its leaves run: at 1 M leaves, most of its 1.1 M goroutines
//! were alive at once (470 MB of stacks and descriptors, each gone cold by the time
//! it ran). Taking the displaced siblings newest first walks the tree depth first,
//! with a few dozen goroutines alive; thieves take the oldest, the largest subtree
//! left, which is what a thief should take (Cilk's order). See
//! bench/results/ANALYSIS.md (skynet).
//!
//! The protocol, with `top` the oldest item's index and `bottom` one past the newest:
//! - only the owner pushes and pops at `bottom` (which it alone writes), always with
//!   release ordering: a thief that reads any value of `bottom` then sees every slot
//!   the owner wrote before it (a pop's store too, not only a push's: C++20 no longer
//!   counts plain stores in a release sequence, and loom found the lost item);
//! - thieves take the item at `top` by compare-and-swap, reading it first (a failed
//!   CAS throws the read away);
//! - a pop lowers `bottom` first, then looks at `top` with a full barrier between the
//!   two (a thief does the same the other way round), so that owner and thief cannot
//!   both miss each other: when one item is left they race for it by CAS on `top`;
//! - the owner writes a slot only after seeing `top` past the item that had it
//!   (acquire load), as the ring does (`runq.rs`).
//!
//! A full stack (`SLOTS` items) refuses a push: the owner queues that goroutine on
//! its ring instead (a loop that spawns thousands runs the first 256 it displaced
//! newest first, the rest in order, as before this stack).
//!
//! The owner's full barrier is its pop's only cost beyond plain moves (a pop of an
//! empty stack, the common case for goroutines that do not spawn, is two loads).
//! Built with `--cfg loom`, the atomics and the barrier are loom's, and the models at
//! the bottom check every interleaving of the owner against thieves.

#![allow(unexpected_cfgs)] // `loom` is set by RUSTFLAGS for the model (as in sync/)

#[cfg(not(loom))]
use core::sync::atomic::{AtomicPtr, AtomicU32, Ordering};
#[cfg(loom)]
use loom::sync::atomic::{fence, AtomicPtr, AtomicU32, Ordering};

use core::ptr;

/// Slots of a stack (a power of two). The loom model uses 4, so that it can explore
/// a full stack.
#[cfg(not(loom))]
const SLOTS: u32 = 256;
#[cfg(loom)]
const SLOTS: u32 = 4;

pub(crate) struct Lifo<T> {
    /// The oldest item's index; advanced by CAS (thieves, the owner's pop of the last
    /// item).
    top: AtomicU32,
    /// One past the newest item's index; written by the owner only.
    bottom: AtomicU32,
    slots: Box<[AtomicPtr<T>]>,
}

// SAFETY: every field is atomic; the items are raw pointers whose ownership the
// run-queue protocol hands over (runtime/g.rs: a RUNNABLE goroutine belongs to
// exactly one queue), which this type keeps: each item comes out once.
unsafe impl<T> Sync for Lifo<T> {}
// SAFETY: as for Sync.
unsafe impl<T> Send for Lifo<T> {}

impl<T> Lifo<T> {
    pub(crate) fn new() -> Self {
        Lifo {
            top: AtomicU32::new(0),
            bottom: AtomicU32::new(0),
            slots: (0..SLOTS)
                .map(|_| AtomicPtr::new(ptr::null_mut()))
                .collect(),
        }
    }

    fn slot(&self, i: u32) -> &AtomicPtr<T> {
        &self.slots[(i & (SLOTS - 1)) as usize]
    }

    /// Items queued (a snapshot; exact for the owner but for thieves taking).
    pub(crate) fn len(&self) -> u32 {
        let t = self.top.load(Ordering::Acquire);
        let b = self.bottom.load(Ordering::Acquire);
        (b.wrapping_sub(t) as i32).max(0) as u32
    }

    #[inline(always)]
    pub(crate) fn is_empty(&self) -> bool {
        let t = self.top.load(Ordering::Acquire);
        (self.bottom.load(Ordering::Acquire).wrapping_sub(t) as i32) <= 0
    }

    /// The oldest item's index (it changes each time the oldest is taken), and
    /// whether anything is queued. Owner only.
    pub(crate) fn oldest(&self) -> (u32, bool) {
        let t = self.top.load(Ordering::Relaxed);
        (t, self.bottom.load(Ordering::Relaxed) != t)
    }

    /// Queues `x` as the newest item; false when the stack is full (the owner queues
    /// it elsewhere).
    ///
    /// # Safety
    /// Owner only; `x` is the caller's to hand over.
    pub(crate) unsafe fn push(&self, x: *mut T) -> bool {
        let b = self.bottom.load(Ordering::Relaxed);
        // Acquire: a thief's read of the slot we may reuse came before its CAS.
        let t = self.top.load(Ordering::Acquire);
        if b.wrapping_sub(t) >= SLOTS {
            return false;
        }
        self.slot(b).store(x, Ordering::Relaxed);
        self.bottom.store(b.wrapping_add(1), Ordering::Release);
        true
    }

    /// The newest item, or null when there is none.
    ///
    /// # Safety
    /// Owner only; the item returned is the caller's.
    #[inline(always)]
    pub(crate) unsafe fn pop(&self) -> *mut T {
        let b = self.bottom.load(Ordering::Relaxed);
        // Empty: `top` never passes what the owner last published, and only grows,
        // so a value equal to `bottom` (even a stale one) means empty for good.
        if self.top.load(Ordering::Relaxed) == b {
            return ptr::null_mut();
        }
        // SAFETY: our contract.
        unsafe { self.pop_some(b) }
    }

    /// `pop` of a stack that was not empty when the owner looked (`bottom` was `b`):
    /// out of line, so that the look stays two loads in the scheduler's paths.
    ///
    /// # Safety
    /// As `pop`.
    #[inline(never)]
    unsafe fn pop_some(&self, b: u32) -> *mut T {
        let b = b.wrapping_sub(1);
        lower_bottom(&self.bottom, b);
        let t = self.top.load(Ordering::Relaxed);
        let left = b.wrapping_sub(t) as i32;
        if left < 0 {
            // A thief took the last one first.
            self.bottom.store(b.wrapping_add(1), Ordering::Release);
            return ptr::null_mut();
        }
        let x = self.slot(b).load(Ordering::Relaxed);
        if left > 0 {
            return x;
        }
        // The last item: thieves may be after it too.
        let won = self
            .top
            .compare_exchange(t, t.wrapping_add(1), Ordering::SeqCst, Ordering::Relaxed)
            .is_ok();
        self.bottom.store(b.wrapping_add(1), Ordering::Release);
        if won {
            x
        } else {
            ptr::null_mut()
        }
    }

    /// The oldest item, or null when there is none. Any thread.
    pub(crate) fn steal(&self) -> *mut T {
        loop {
            let t = self.top.load(Ordering::Acquire);
            full_fence();
            let b = self.bottom.load(Ordering::Acquire);
            if (b.wrapping_sub(t) as i32) <= 0 {
                return ptr::null_mut();
            }
            let x = self.slot(t).load(Ordering::Relaxed);
            if self
                .top
                .compare_exchange(t, t.wrapping_add(1), Ordering::SeqCst, Ordering::Relaxed)
                .is_ok()
            {
                return x;
            }
        }
    }

    /// Takes every item (any thread; the owner may be taking too), oldest first.
    pub(crate) fn steal_all(&self, out: &mut Vec<*mut T>) {
        loop {
            let x = self.steal();
            if x.is_null() {
                return;
            }
            out.push(x);
        }
    }
}

/// The owner's `bottom = b` followed by a full barrier, before it reads `top`.
#[cfg(not(loom))]
#[inline(always)]
fn lower_bottom(bottom: &AtomicU32, b: u32) {
    // On x86-64 a locked read-modify-write is a full barrier, as `mfence` is, and
    // cheaper (crossbeam-epoch makes the same choice); its acquire half keeps the
    // compiler from hoisting the caller's load of `top` above it.
    #[cfg(target_arch = "x86_64")]
    bottom.swap(b, Ordering::SeqCst);
    #[cfg(not(target_arch = "x86_64"))]
    {
        bottom.store(b, Ordering::Release);
        core::sync::atomic::fence(Ordering::SeqCst);
    }
}

#[cfg(loom)]
fn lower_bottom(bottom: &AtomicU32, b: u32) {
    bottom.store(b, Ordering::Release);
    fence(Ordering::SeqCst);
}

/// A thief's full barrier between its loads of `top` and `bottom`.
#[inline(always)]
fn full_fence() {
    #[cfg(not(loom))]
    core::sync::atomic::fence(Ordering::SeqCst);
    #[cfg(loom)]
    fence(Ordering::SeqCst);
}

#[cfg(all(test, loom))]
mod loom_tests {
    //! Every interleaving of the owner (push, pop, a push to a full stack) against
    //! thieves: each item comes out exactly once, the owner's pops come newest
    //! first, and a thief's oldest first.
    //!
    //! Run: `RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test --release --lib lifo::loom_tests`

    use super::*;
    use crate::runtime::runq::loom_tests::{drain_with, id, item, model, Shared};
    use loom::sync::Arc;
    use loom::thread;

    /// The owner pops until empty: what it got.
    fn pop_all(q: &Lifo<u8>) -> Vec<usize> {
        // SAFETY: only the owner calls this.
        drain_with(|| unsafe { q.pop() })
    }

    fn each_once(parts: &[&[usize]], n: usize) {
        let mut all: Vec<usize> = parts.iter().flat_map(|p| p.iter().copied()).collect();
        all.sort_unstable();
        assert_eq!(all, (0..n).collect::<Vec<_>>(), "parts {parts:?}");
    }

    fn thief(q: &Arc<Shared<Lifo<u8>>>, tries: usize) -> thread::JoinHandle<Vec<usize>> {
        let q = q.clone();
        thread::spawn(move || {
            let mut got = Vec::new();
            for _ in 0..tries {
                let x = q.0.steal();
                if !x.is_null() {
                    got.push(id(x));
                }
            }
            got
        })
    }

    /// The owner pushes 2, pops, pushes 1 more and pops the rest while a thief steals
    /// twice: each item once, the owner's newest first, the thief's oldest first.
    #[test]
    fn owner_against_thief() {
        model(|| {
            let q = Arc::new(Shared(Lifo::new()));
            let t = thief(&q, 2);
            // SAFETY: this thread is the owner.
            let mut mine = unsafe {
                q.0.push(item(0));
                q.0.push(item(1));
                let x = q.0.pop();
                q.0.push(item(2));
                if x.is_null() {
                    Vec::new()
                } else {
                    vec![id(x)]
                }
            };
            let rest = pop_all(&q.0);
            assert!(rest.windows(2).all(|w| w[0] > w[1]), "owner order {rest:?}");
            mine.extend(rest);
            let stolen = t.join().unwrap();
            assert!(
                stolen.windows(2).all(|w| w[0] < w[1]),
                "thief order {stolen:?}"
            );
            each_once(&[&mine, &stolen], 3);
        });
    }

    /// One item, the owner's pop against a thief's steal: exactly one gets it.
    #[test]
    fn last_item_race() {
        model(|| {
            let q = Arc::new(Shared(Lifo::new()));
            // SAFETY: this thread is the owner.
            unsafe { q.0.push(item(0)) };
            let t = thief(&q, 1);
            let mine = pop_all(&q.0);
            let stolen = t.join().unwrap();
            each_once(&[&mine, &stolen], 1);
        });
    }

    /// Two thieves against an owner that pops.
    #[test]
    fn two_thieves() {
        model(|| {
            let q = Arc::new(Shared(Lifo::new()));
            // SAFETY: this thread is the owner.
            unsafe {
                q.0.push(item(0));
                q.0.push(item(1));
            }
            let a = thief(&q, 1);
            let b = thief(&q, 1);
            let mine = pop_all(&q.0);
            let (sa, sb) = (a.join().unwrap(), b.join().unwrap());
            each_once(&[&mine, &sa, &sb], 2);
        });
    }

    /// A full stack against a thief: a push succeeds only once the thief has taken
    /// the oldest (and then reuses its slot, which the thief must have read before:
    /// no item comes out twice or never); a refused item stays the owner's.
    #[test]
    fn full_stack_against_thief() {
        model(|| {
            let q = Arc::new(Shared(Lifo::new()));
            let n = SLOTS as usize;
            for i in 0..n {
                // SAFETY: this thread is the owner.
                assert!(unsafe { q.0.push(item(i)) });
            }
            let t = thief(&q, 1);
            // SAFETY: this thread is the owner.
            let refused: Vec<usize> = if unsafe { q.0.push(item(n)) } {
                Vec::new()
            } else {
                vec![n]
            };
            let mine = pop_all(&q.0);
            let stolen = t.join().unwrap();
            each_once(&[&mine, &refused, &stolen], n + 1);
        });
    }
}
