//! Timers: a min-heap of deadlines per shard, indexed so cancel is O(log n).
//!
//! Why shards: a timer is armed and cancelled by the goroutine that waits on it (a
//! sleep, a timed channel/select/I/O wait, a `gr_timer`, a context deadline), so with
//! one heap every processor's arm and cancel contended for one lock and one cache
//! line, and two processors creating and stopping timers ran nearly 3x slower per
//! timer than one. As Go keeps a heap per P, a timer here goes on the shard of the
//! processor that arms it (`P::id % SHARDS`; a thread without a P uses shard 0), and
//! its `TimerId` names the shard, so cancel goes straight there. Shards are fixed
//! (no rebalancing when Ps come and go or steal): a timer stays on the shard it was
//! armed on, and whoever runs timers looks at every shard in use. Each shard
//! publishes its earliest deadline; `next_when` is the minimum over the shards in use
//! (as many as processors have armed timers, so two loads with two procs).
//!
//! Firing happens wherever the scheduler looks: every 61st schedule, in `find_runnable`,
//! in the idle worker that blocks in `epoll_wait` (with the next deadline as its
//! timeout), and in sysmon, so a goroutine that yields in a loop cannot starve sleepers.
//! Two threads may run the due timers of two shards at once; callbacks are sound on
//! any thread (`add`'s contract). Due timers of one shard run in deadline order;
//! across shards, in shard order (as across Go's Ps).
//!
//! Callbacks run with their shard's lock held. That is what makes `cancel` a barrier:
//! once it returns, the callback either ran to completion or never will, so a callback
//! argument that lives on a waiting goroutine's stack is safe to use. Callbacks are
//! tiny (claim a waiter, ready a goroutine, try-send on a timer's channel) and never
//! arm or cancel timers, so no thread ever holds two shards' locks.
//!
//! Callbacks run under their shard's lock and may take object locks (a `gr_timer`'s
//! send takes its channel's and may wake a select, which takes the select's), so
//! nothing waits for a shard's lock while it holds an object's: a switch leaves due
//! timers to `finish_switch`, after the goroutine it left released its lock
//! (`m::DUE_TIMERS`), and a parked wait arms its timeout after its unlock
//! (`park::arm_then_unlock`).
//!
//! Periodic timers (`add_periodic`, for `gr_timer` tickers) stay in the heap: after
//! their callback runs they move to their next deadline, keeping their id, so one
//! `cancel` stops them for good. A ticker that fell behind skips the deadlines
//! already past (one callback, not a burst), as Go's tickers do.
//!
//! Memory: a node is 40 bytes in its shard's table plus 4 in the heap array, so a
//! million pending timers cost ~46 MB here (tests/c/timer_million.c measures a whole
//! `gr_timer`, node included); a shard is one cache-line-aligned lock and two words.

use core::cell::UnsafeCell;
use core::ops::{Deref, DerefMut};
use core::sync::atomic::{AtomicI64, AtomicUsize, Ordering};

use crate::runtime::lock::{nanotime, SpinLock};

pub type TimerFn = unsafe fn(arg: usize);

/// Names an armed timer: its shard, the shard's table epoch, slot index and
/// generation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimerId {
    idx: u32,
    gen: u32,
    /// `epoch << SHARD_BITS | shard` (`Heap::tag`): 12 bytes in all, so a
    /// `gr_timer`'s `Option<TimerId>` stays 16.
    tag: u32,
}

impl TimerId {
    fn shard(&self) -> &'static Shard {
        &SHARDS[self.tag as usize % SHARDS.len()]
    }
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

/// One heap, its lock and what it publishes; aligned so two shards never share a
/// cache line. The lock is a `SpinLock` (no poisoning to check, a store to release):
/// with a heap per processor it is rarely contended, and what it guards is short
/// (an O(log n) heap step, or the due callbacks, which are tiny).
#[repr(align(128))]
struct Shard {
    lock: SpinLock,
    /// Touched only with `lock` held (`Shard::lock`).
    heap: UnsafeCell<Heap>,
    /// Earliest deadline here, or i64::MAX when none (read without the lock).
    next_when: AtomicI64,
    /// Timers armed here (written under the lock; summed by `armed`).
    armed: AtomicUsize,
}

const SHARD_BITS: u32 = 3;
/// A power of two, so a tag's low bits name the shard through epoch wrap-around.
static SHARDS: [Shard; 1 << SHARD_BITS] = [const {
    Shard {
        lock: SpinLock::new(),
        heap: UnsafeCell::new(Heap {
            nodes: Vec::new(),
            free: Vec::new(),
            heap: Vec::new(),
            epoch: 0,
        }),
        next_when: AtomicI64::new(i64::MAX),
        armed: AtomicUsize::new(0),
    }
}; 1 << SHARD_BITS];

/// Shards `0..USED` have held a timer (only grows): what readers of all shards scan.
static USED: AtomicUsize = AtomicUsize::new(1);

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

    fn earliest(&self) -> i64 {
        match self.heap.first() {
            Some(&n) => self.nodes[n as usize].when,
            None => i64::MAX,
        }
    }

    /// What a `TimerId` of this table on shard `shard` carries.
    fn tag(&self, shard: usize) -> u32 {
        (self.epoch << SHARD_BITS) | shard as u32
    }
}

// SAFETY: the heap is reached only through `Shard::lock`, which holds the shard's
// lock for the guard's life; the atomics are Sync.
unsafe impl Sync for Shard {}

/// A shard's heap with its lock held; released on drop.
struct Locked<'a>(&'a Shard);

impl Deref for Locked<'_> {
    type Target = Heap;
    fn deref(&self) -> &Heap {
        // SAFETY: the lock is held while self lives, so no other reference exists.
        unsafe { &*self.0.heap.get() }
    }
}

impl DerefMut for Locked<'_> {
    fn deref_mut(&mut self) -> &mut Heap {
        // SAFETY: as in deref; &mut self makes this the only reference through us.
        unsafe { &mut *self.0.heap.get() }
    }
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        // SAFETY: taken in Shard::lock, released once, here.
        unsafe { self.0.lock.unlock() };
    }
}

impl Shard {
    fn lock(&self) -> Locked<'_> {
        self.lock.lock();
        Locked(self)
    }

    /// Stores the heap's earliest deadline where `next_when` reads it; the caller
    /// holds the lock (passed as `h`).
    fn publish(&self, h: &Heap) {
        self.next_when.store(h.earliest(), Ordering::SeqCst);
    }
}

/// The shard the calling thread arms on: its P's, or shard 0 without a P.
fn home_shard() -> usize {
    let m = crate::runtime::m::current_m();
    if m.is_null() {
        return 0;
    }
    // SAFETY: a non-null current M is this thread's own, alive while it runs, and
    // only this thread writes its `p`; a P held by this M is alive (Ps are never
    // freed) and its `id` never changes.
    let id = unsafe {
        let p = (*m).p;
        if p.is_null() {
            return 0;
        }
        (*p).id
    };
    let shard = id % SHARDS.len();
    if shard >= USED.load(Ordering::Relaxed) {
        USED.fetch_max(shard + 1, Ordering::SeqCst);
    }
    shard
}

/// The shards that may hold timers.
fn used_shards() -> &'static [Shard] {
    &SHARDS[..USED.load(Ordering::SeqCst)]
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
    let home = home_shard();
    let shard = &SHARDS[home];
    let mut h = shard.lock();
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
    let tag = h.tag(home);
    shard.armed.fetch_add(1, Ordering::SeqCst);
    if earliest {
        shard.next_when.store(when, Ordering::SeqCst);
    }
    drop(h);
    if earliest {
        crate::runtime::netpoll::timer_moved(when);
    }
    TimerId { idx, gen, tag }
}

/// Disarms a timer. True when it had not fired: it never will. False when it already
/// ran (its callback has finished by the time this returns).
pub fn cancel(id: TimerId) -> bool {
    let shard = id.shard();
    let mut h = shard.lock();
    if h.tag(id.tag as usize % SHARDS.len()) != id.tag {
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
    shard.armed.fetch_sub(1, Ordering::SeqCst);
    if pos == 0 {
        shard.publish(&h);
    }
    true
}

/// Earliest armed deadline over all shards, or i64::MAX.
#[inline]
pub fn next_when() -> i64 {
    used_shards()
        .iter()
        .map(|s| s.next_when.load(Ordering::SeqCst))
        .min()
        .unwrap_or(i64::MAX)
}

/// Armed timers over all shards (for deadlock detection and stats).
pub fn armed() -> usize {
    used_shards()
        .iter()
        .map(|s| s.armed.load(Ordering::SeqCst))
        .sum()
}

/// The first deadline of a timer with this `period` that is after `now`, for one
/// that was due at `when` (<= now): skips the deadlines already past.
fn next_period(when: i64, period: i64, now: i64) -> i64 {
    let missed = (now - when) / period;
    when.saturating_add(period.saturating_mul(missed.saturating_add(1)))
}

/// Runs every timer due at `now`, shard by shard. Returns how many ran (a periodic
/// timer counts once per firing).
pub fn run_due(now: i64) -> usize {
    used_shards().iter().map(|s| run_shard(s, now)).sum()
}

/// `run_due` on one shard.
fn run_shard(shard: &Shard, now: i64) -> usize {
    if shard.next_when.load(Ordering::SeqCst) > now {
        return 0;
    }
    let mut h = shard.lock();
    let mut ran = 0;
    while let Some(&n) = h.heap.first() {
        let node = &h.nodes[n as usize];
        if node.when > now {
            break;
        }
        let (f, arg) = (node.f, node.arg);
        ran += 1;
        if let Some(f) = f {
            // SAFETY: `add`'s contract: f(arg) is sound until cancel returns, and
            // cancel cannot return while we hold the shard's lock. The callback
            // leaves the heaps alone, so the node is still the root afterwards.
            unsafe { f(arg) };
        }
        let node = &mut h.nodes[n as usize];
        if node.period > 0 {
            // Stays armed under the same id, at its next deadline after now.
            node.when = next_period(node.when, node.period, now);
            h.down(0);
        } else {
            h.remove_at(0);
            shard.armed.fetch_sub(1, Ordering::SeqCst);
        }
    }
    shard.publish(&h);
    drop(h);
    ran
}
