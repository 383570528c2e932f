//! Timers: one process-wide min-heap of deadlines, indexed so cancel is O(log n).
//!
//! Why one heap and not Go's per-P heaps: a timer here is armed only by a goroutine
//! that is about to park (sleep, a timed channel/select/I/O wait), so timer traffic is
//! bounded by park traffic, which already takes a lock; a single heap under a mutex
//! costs ~50 ns per arm/cancel and needs no rebalancing when Ps come and go or steal.
//! Firing happens wherever the scheduler looks: every 61st schedule, in `find_runnable`,
//! in the idle worker that blocks in `epoll_wait` (with the next deadline as its
//! timeout), and in sysmon, so a goroutine that yields in a loop cannot starve sleepers.
//!
//! Callbacks run with the heap's lock held. That is what makes `cancel` a barrier: once
//! it returns, the callback either ran to completion or never will, so a callback
//! argument that lives on a waiting goroutine's stack is safe to use. Callbacks are
//! tiny (claim a waiter, ready a goroutine, try-send on a timer's channel) and never
//! arm or cancel timers.
//!
//! Timers also run in the scheduler's periodic checks while the goroutine switching
//! away may still hold the lock of the object it parks on (it is released after the
//! switch: `m::switching`). A callback that takes a lock (a `gr_timer`'s send takes
//! its channel's, and may wake a select, which takes the select's) must not run
//! then: it calls `retry_soon` instead, and the timer stays armed under its id and
//! runs again `RETRY_NS` later, from a context that holds no lock.
//!
//! Periodic timers (`add_periodic`, for `gr_timer` tickers) stay in the heap: after
//! their callback runs they move to their next deadline, keeping their id, so one
//! `cancel` stops them for good. A ticker that fell behind skips the deadlines
//! already past (one callback, not a burst), as Go's tickers do.
//!
//! Memory: a node is 40 bytes in one table plus 4 in the heap array, so a million
//! pending timers cost ~46 MB here (tests/c/timer_million.c measures a whole
//! `gr_timer`, node included).

use core::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::runtime::lock::nanotime;

pub type TimerFn = unsafe fn(arg: usize);

/// Names an armed timer (slot index and generation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimerId {
    idx: u32,
    gen: u32,
    epoch: u32,
}

struct Node {
    when: i64,
    /// > 0: re-armed `period` ns after each firing (see `add_periodic`).
    period: i64,
    f: Option<TimerFn>,
    arg: usize,
    /// Index in `heap`, or NOT_IN_HEAP.
    pos: u32,
    gen: u32,
}

const NOT_IN_HEAP: u32 = u32::MAX;

struct Heap {
    nodes: Vec<Node>,
    free: Vec<u32>,
    heap: Vec<u32>,
    /// Bumped when the node table is dropped, so ids from before never match.
    epoch: u32,
}

static TIMERS: Mutex<Heap> = Mutex::new(Heap {
    nodes: Vec::new(),
    free: Vec::new(),
    heap: Vec::new(),
    epoch: 0,
});
/// Earliest deadline, or i64::MAX when none (read without the lock).
static NEXT_WHEN: AtomicI64 = AtomicI64::new(i64::MAX);
/// Armed timers (for deadlock detection and stats).
static ARMED: AtomicUsize = AtomicUsize::new(0);
/// Set by `retry_soon` during a callback; read and cleared by `run_due`, which holds
/// the heap's lock for both, so only one thread uses it at a time.
static RETRY: AtomicBool = AtomicBool::new(false);
/// How long a callback that found its lock busy waits before it runs again.
const RETRY_NS: i64 = 10_000;

impl Heap {
    fn less(&self, a: u32, b: u32) -> bool {
        self.nodes[a as usize].when < self.nodes[b as usize].when
    }

    fn set(&mut self, i: usize, n: u32) {
        self.heap[i] = n;
        self.nodes[n as usize].pos = i as u32;
    }

    fn up(&mut self, mut i: usize) {
        let n = self.heap[i];
        while i > 0 {
            let parent = (i - 1) / 2;
            if !self.less(n, self.heap[parent]) {
                break;
            }
            let pn = self.heap[parent];
            self.set(i, pn);
            i = parent;
        }
        self.set(i, n);
    }

    fn down(&mut self, mut i: usize) {
        let n = self.heap[i];
        let len = self.heap.len();
        loop {
            let l = 2 * i + 1;
            if l >= len {
                break;
            }
            let r = l + 1;
            let c = if r < len && self.less(self.heap[r], self.heap[l]) {
                r
            } else {
                l
            };
            if !self.less(self.heap[c], n) {
                break;
            }
            let cn = self.heap[c];
            self.set(i, cn);
            i = c;
        }
        self.set(i, n);
    }

    fn remove_at(&mut self, i: usize) -> u32 {
        let n = self.heap[i];
        let last = self.heap.pop().expect("non-empty");
        if i < self.heap.len() {
            self.set(i, last);
            self.down(i);
            let j = self.nodes[last as usize].pos as usize;
            self.up(j);
        }
        self.nodes[n as usize].pos = NOT_IN_HEAP;
        self.release(n);
        n
    }

    fn release(&mut self, n: u32) {
        let node = &mut self.nodes[n as usize];
        node.f = None;
        node.gen = node.gen.wrapping_add(1);
        self.free.push(n);
        // Give memory back after a burst (1M timers, then none).
        if self.heap.is_empty() && self.nodes.len() > 4096 {
            self.nodes = Vec::new();
            self.free = Vec::new();
            self.heap = Vec::new();
            self.epoch = self.epoch.wrapping_add(1);
        }
    }

    fn publish(&self) {
        let w = match self.heap.first() {
            Some(&n) => self.nodes[n as usize].when,
            None => i64::MAX,
        };
        NEXT_WHEN.store(w, Ordering::SeqCst);
    }
}

fn heap() -> std::sync::MutexGuard<'static, Heap> {
    TIMERS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Deadline `timeout_ns` from now, saturating (huge timeouts never overflow).
pub fn deadline_after(timeout_ns: i64) -> i64 {
    nanotime().saturating_add(timeout_ns.max(0))
}

/// Arms `f(arg)` to run at `when` (monotonic ns). Wakes the idle poller if this is
/// the new earliest deadline.
///
/// # Safety
/// Calling `f(arg)` must be sound on any thread, with the heap's lock held, at any
/// time until `cancel` of the returned id has returned (or until it has run). A
/// callback that never runs (its deadline far enough ahead, and cancelled) has no
/// requirement beyond that.
pub unsafe fn add(when: i64, f: TimerFn, arg: usize) -> TimerId {
    // SAFETY: our contract is arm's (a one-shot timer).
    unsafe { arm(when, 0, f, arg) }
}

/// Arms `f(arg)` to run at `when`, then every `period` ns (> 0) after that until
/// `cancel`: the same id names every firing. A deadline that has passed by the time
/// the callback ran is skipped (the next one is the first still ahead).
///
/// # Safety
/// As for `add`, for every firing: calling `f(arg)` must be sound on any thread, with
/// the heap's lock held, until `cancel` of the returned id has returned.
pub unsafe fn add_periodic(when: i64, period: i64, f: TimerFn, arg: usize) -> TimerId {
    debug_assert!(period > 0);
    // SAFETY: our contract is arm's.
    unsafe { arm(when, period.max(1), f, arg) }
}

/// `add` and `add_periodic` (`period` 0: once).
///
/// # Safety
/// As for `add_periodic`.
unsafe fn arm(when: i64, period: i64, f: TimerFn, arg: usize) -> TimerId {
    let mut h = heap();
    let idx = match h.free.pop() {
        Some(i) => i,
        None => {
            h.nodes.push(Node {
                when: 0,
                period: 0,
                f: None,
                arg: 0,
                pos: NOT_IN_HEAP,
                gen: 0,
            });
            (h.nodes.len() - 1) as u32
        }
    };
    let gen = {
        let node = &mut h.nodes[idx as usize];
        node.when = when;
        node.period = period;
        node.f = Some(f);
        node.arg = arg;
        node.gen
    };
    h.heap.push(idx);
    let last = h.heap.len() - 1;
    h.up(last);
    let earliest = h.heap[0] == idx;
    let h_epoch = h.epoch;
    h.publish();
    drop(h);
    ARMED.fetch_add(1, Ordering::SeqCst);
    if earliest {
        crate::runtime::netpoll::timer_moved(when);
    }
    TimerId {
        idx,
        gen,
        epoch: h_epoch,
    }
}

/// Disarms a timer. True when it had not fired: it never will. False when it already
/// ran (its callback has finished by the time this returns).
pub fn cancel(id: TimerId) -> bool {
    let mut h = heap();
    if h.epoch != id.epoch {
        return false;
    }
    let Some(node) = h.nodes.get(id.idx as usize) else {
        return false;
    };
    if node.gen != id.gen || node.pos == NOT_IN_HEAP {
        return false;
    }
    let pos = node.pos as usize;
    h.remove_at(pos);
    h.publish();
    drop(h);
    ARMED.fetch_sub(1, Ordering::SeqCst);
    true
}

/// Earliest armed deadline, or i64::MAX.
#[inline]
pub fn next_when() -> i64 {
    NEXT_WHEN.load(Ordering::SeqCst)
}

pub fn armed() -> usize {
    ARMED.load(Ordering::SeqCst)
}

/// The first deadline of a timer with this `period` that is after `now`, for one
/// that was due at `when` (<= now): skips the deadlines already past.
fn next_period(when: i64, period: i64, now: i64) -> i64 {
    let missed = (now - when) / period;
    when.saturating_add(period.saturating_mul(missed.saturating_add(1)))
}

/// From inside a timer callback only: the callback cannot do its work here (it
/// takes locks, and `m::switching()` says this thread may hold one); run it again
/// `RETRY_NS` from now, as the same timer (its id still cancels it; a periodic timer
/// goes on from there).
pub fn retry_soon() {
    RETRY.store(true, Ordering::Relaxed);
}

/// Runs every timer due at `now`. Returns how many ran (a periodic timer counts once
/// per firing, a retried callback once per try).
pub fn run_due(now: i64) -> usize {
    if next_when() > now {
        return 0;
    }
    let mut h = heap();
    let mut ran = 0;
    let mut removed = 0;
    let mut retry_at = i64::MAX;
    while let Some(&n) = h.heap.first() {
        let node = &h.nodes[n as usize];
        if node.when > now {
            break;
        }
        let (f, arg) = (node.f, node.arg);
        ran += 1;
        RETRY.store(false, Ordering::Relaxed);
        if let Some(f) = f {
            // SAFETY: `add`'s contract: f(arg) is sound until cancel returns, and
            // cancel cannot return while we hold the lock. The callback leaves the
            // heap alone, so the node is still the root afterwards.
            unsafe { f(arg) };
        }
        let node = &mut h.nodes[n as usize];
        if RETRY.load(Ordering::Relaxed) {
            node.when = now.saturating_add(RETRY_NS);
            retry_at = node.when;
            h.down(0);
        } else if node.period > 0 {
            // Stays armed under the same id, at its next deadline after now.
            node.when = next_period(node.when, node.period, now);
            h.down(0);
        } else {
            h.remove_at(0);
            removed += 1;
        }
    }
    h.publish();
    drop(h);
    ARMED.fetch_sub(removed, Ordering::SeqCst);
    if retry_at != i64::MAX {
        crate::runtime::netpoll::timer_moved(retry_at);
    }
    ran
}
