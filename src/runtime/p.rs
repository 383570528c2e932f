//! P: a processor, the right to run goroutines. There are `gomaxprocs` of them; an M
//! runs goroutines only while it holds one. A P owns a local run queue (a
//! crossbeam-deque FIFO worker: the owner pushes and pops without locks, idle Ps steal
//! half at a time through its stealer, which is Go's runq design), a `runnext` slot
//! for the goroutine just woken or spawned (so a hand-off stays on this core), and
//! caches of free descriptors, free stacks and stack reservations (so spawn and exit
//! take no lock).
//!
//! Only the M holding a P touches `runq`, `gcache` and the counters marked owner-only;
//! other threads use `stealer`, `runnext` (by CAS) and the atomics.

use core::ptr;
use core::sync::atomic::{AtomicPtr, AtomicU32, Ordering};

use crossbeam_deque::{Stealer, Worker};

use crate::runtime::g::{GPtr, G};
use crate::runtime::m::M;

/// In the idle list.
pub(crate) const P_IDLE: u32 = 0;
/// Held by an M.
pub(crate) const P_RUNNING: u32 = 1;
/// Not in use (beyond the processor limit, or never started).
pub(crate) const P_DEAD: u32 = 2;

/// Schedules between looks at due timers, ready fds and the global queue.
pub(crate) const CHECK_EVERY: u32 = 61;

pub struct P {
    pub id: usize,
    pub status: AtomicU32,
    pub runnext: AtomicPtr<G>,
    pub runq: Worker<GPtr>,
    pub stealer: Stealer<GPtr>,
    /// Free goroutine descriptors (owner-only).
    pub gcache: Vec<GPtr>,
    /// Free default-size stacks, most recently freed last (owner-only).
    pub stacks: crate::runtime::stack::Cache,
    /// Default-size stack reservations held for spawns (owner-only; see runtime/stack/).
    pub credits: u32,
    /// Bumped at every schedule (read by stealers and sysmon; written by the owner
    /// only, so a plain load and store, no locked instruction).
    pub schedtick: AtomicU32,
    /// Schedules left until the next look at timers, fds and the global queue
    /// (owner-only).
    pub check_countdown: u32,
    /// Consecutive goroutines taken from `runnext` (owner-only): bounded so that a
    /// ping-pong pair cannot starve the rest of the queue.
    pub runnext_streak: u32,
    pub m: *mut M,
}

impl P {
    pub fn new(id: usize) -> P {
        let runq = Worker::new_fifo();
        let stealer = runq.stealer();
        P {
            id,
            status: AtomicU32::new(P_DEAD),
            runnext: AtomicPtr::new(ptr::null_mut()),
            runq,
            stealer,
            gcache: Vec::new(),
            stacks: crate::runtime::stack::Cache::new(),
            credits: 0,
            schedtick: AtomicU32::new(0),
            check_countdown: 0,
            runnext_streak: 0,
            m: ptr::null_mut(),
        }
    }

    /// True when the P has goroutines queued (approximate for non-owners).
    pub fn has_work(&self) -> bool {
        !self.runnext.load(Ordering::Acquire).is_null() || !self.stealer.is_empty()
    }

    /// True when nothing is queued here (exact for the owner, who alone adds to the
    /// queue; a thief may only take). Owner only.
    #[inline]
    pub fn local_empty(&self) -> bool {
        self.runnext.load(Ordering::Relaxed).is_null() && self.runq.is_empty()
    }

    /// Queues a runnable goroutine; with `next` it takes the `runnext` slot and the
    /// goroutine there moves to the queue's tail. Returns true when something went to
    /// the stealable queue (the caller then considers waking an idle P).
    ///
    /// # Safety
    /// Owner only: the caller is the M holding this P (other threads reach a P only
    /// through its atomics and `stealer`). `g` is a RUNNABLE goroutine the caller
    /// owns; its ownership passes to this queue (g.rs's status protocol).
    #[inline]
    pub unsafe fn put(&mut self, g: *mut G, next: bool) -> bool {
        let mut g = g;
        if next {
            let old = self.runnext.swap(g, Ordering::AcqRel);
            if old.is_null() {
                return false;
            }
            g = old;
        }
        self.runq.push(GPtr(g));
        true
    }

    /// The next goroutine to run from this P alone: runnext (within the streak
    /// bound), then the queue.
    ///
    /// # Safety
    /// Owner only: the caller is the M holding this P. The returned goroutine (if
    /// any) is RUNNABLE and now the caller's, to run or requeue.
    #[inline]
    pub unsafe fn get(&mut self) -> *mut G {
        // Look before swapping: an empty slot (the common case when yielding) then
        // costs a load, not a locked instruction.
        if self.runnext_streak < 64 && !self.runnext.load(Ordering::Relaxed).is_null() {
            let g = self.runnext.swap(ptr::null_mut(), Ordering::AcqRel);
            if !g.is_null() {
                self.runnext_streak += 1;
                return g;
            }
        }
        self.runnext_streak = 0;
        match self.runq.pop() {
            Some(g) => g.0,
            None if !self.runnext.load(Ordering::Relaxed).is_null() => {
                self.runnext.swap(ptr::null_mut(), Ordering::AcqRel)
            }
            None => ptr::null_mut(),
        }
    }

    /// Counts one schedule. Owner only.
    #[inline]
    pub fn tick(&self) {
        let t = self.schedtick.load(Ordering::Relaxed);
        self.schedtick.store(t.wrapping_add(1), Ordering::Relaxed);
    }

    /// True once every `CHECK_EVERY` calls (Go looks at the global queue every 61
    /// schedules). Owner only.
    #[inline]
    pub fn check_due(&mut self) -> bool {
        if self.check_countdown == 0 {
            self.check_countdown = CHECK_EVERY;
            return true;
        }
        self.check_countdown -= 1;
        false
    }

    /// Moves everything queued here into `out` (for retiring a P).
    ///
    /// # Safety
    /// Owner only: the caller is the M holding this P. The goroutines moved to `out`
    /// are RUNNABLE and now the caller's, to queue elsewhere.
    pub unsafe fn drain(&mut self, out: &mut Vec<GPtr>) {
        let g = self.runnext.swap(ptr::null_mut(), Ordering::AcqRel);
        if !g.is_null() {
            out.push(GPtr(g));
        }
        while let Some(g) = self.runq.pop() {
            out.push(g);
        }
    }
}
