//! P: a processor, the right to run goroutines. There are `gomaxprocs` of them; an M
//! runs goroutines only while it holds one. A P owns a local run queue (`runq.rs`:
//! Go's ring, growable, pushed by the owner alone, taken from by the owner and by
//! idle Ps stealing half at a time), a `runnext` slot for the goroutine just woken or
//! spawned (so a hand-off stays on this core), and caches of free descriptors, free
//! stacks and stack reservations (so spawn and exit take no lock).
//!
//! A spawn puts the child in `runnext` too; the goroutine it displaces from there goes
//! to the P's spawn stack (`spawned`, `lifo.rs`), which the owner takes newest first
//! after `runnext` and before the ring, so a tree of spawns runs depth first (thieves
//! take its oldest, the largest subtree left). A goroutine displaced by a wake-up goes
//! to the ring's tail, as in Go.
//!
//! Only the M holding a P touches `gcache`, `stacks` and the counters marked
//! owner-only; other threads steal from `runq` and `spawned` and read the atomics.
//!
//! `runnext` is owner-private, unlike Go's (where thieves may take it by CAS): the
//! owner reads and writes it with plain loads and stores, no locked instruction, which
//! is what lets a yield swap the yielder and the next goroutine through it, and a
//! channel hand-off queue its partner, for the price of two moves. Stealing Ps leave it
//! alone; a runnext behind a goroutine that runs for long is taken by sysmon's rescue
//! instead, through the handshake of `runq::RunNext` (where Go's thieves take it after
//! ~3 us: a woken goroutine never made anybody wake a P for it, so a thief only ever
//! found it by chance). The owner brackets its use of `runnext` with `enter_sched`
//! and `leave_sched`; a switch leaves only once the context switched to runs
//! (`m::finish_switch`), so a goroutine a switch puts in `runnext` is saved before
//! anybody else can take it.

use core::ptr;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::runtime::g::{GPtr, G};
use crate::runtime::lifo::Lifo;
use crate::runtime::m::M;
use crate::runtime::runq::{RunNext, RunQueue};

/// In the idle list.
pub(crate) const P_IDLE: u32 = 0;
/// Held by an M.
pub(crate) const P_RUNNING: u32 = 1;
/// Not in use (beyond the processor limit, or never started).
pub(crate) const P_DEAD: u32 = 2;

/// Schedules between looks at due timers, ready fds and the global queue.
pub(crate) const CHECK_EVERY: u32 = 61;

/// Consecutive goroutines taken from `runnext` and the spawn stack before the ring
/// gets a turn (so a ping-pong pair, or goroutines that keep spawning, cannot starve
/// the rest of the queue).
const LOCAL_STREAK_MAX: u32 = 64;

/// Periodic checks (each `CHECK_EVERY` schedules: ~125,000 schedules in all, ~10 ms
/// at full speed) that the spawn stack's oldest goroutine waits before it is moved to
/// the ring (`age_spawned`). Counted in schedules, not time: the rule is against a
/// stack that churns, which takes schedules, and on a slowed machine (a sanitizer, a
/// loaded host) a time limit would move subtrees of a spawn tree out early and often,
/// and the tree would run breadth first again (ThreadSanitizer's 8,128-fiber limit
/// found it with tests/c/spawn_order's tree).
const SPAWNED_WAIT_CHECKS: u32 = 2048;

/// Goroutines spawned and exited on a P (its share of `sched::count`), on a cache line
/// of their own: the owner writes them at every spawn and exit, other threads read
/// them only to count.
#[repr(align(128))]
pub(crate) struct GoroutineCounts {
    /// Written by the owner only (a plain load and store).
    pub spawned: AtomicU64,
    /// Written by the owner only, with a locked add: its full barrier orders the
    /// count before the exit's look at `gr_wait_all`'s waiters (sched.rs, `goexit`).
    pub exited: AtomicU64,
}

pub struct P {
    pub id: usize,
    pub status: AtomicU32,
    /// The goroutine to run next (owner-private, see the top of this file).
    runnext: RunNext<G>,
    pub(crate) runq: RunQueue<G>,
    /// Goroutines a spawn displaced from `runnext` (see the top of this file).
    spawned: Lifo<G>,
    /// Free goroutine descriptors (owner-only).
    pub gcache: Vec<GPtr>,
    /// Free default-size stacks, most recently freed last (owner-only).
    pub stacks: crate::runtime::stack::Cache,
    /// Default-size stack reservations held for spawns (owner-only; see runtime/stack/).
    pub credits: u32,
    /// Bumped at every schedule (read by sysmon; written by the owner only, so a plain
    /// load and store, no locked instruction).
    pub schedtick: AtomicU32,
    /// Schedules left until the next look at timers, fds and the global queue
    /// (owner-only).
    pub check_countdown: u32,
    /// Consecutive goroutines taken from `runnext` and `spawned` (owner-only).
    local_streak: u32,
    pub(crate) counts: GoroutineCounts,
    /// `spawned`'s oldest index when `age_spawned` last saw it move, and the periodic
    /// checks since (owner-only).
    spawned_oldest: u32,
    spawned_checks: u32,
    pub m: *mut M,
}

impl P {
    pub fn new(id: usize) -> P {
        P {
            id,
            status: AtomicU32::new(P_DEAD),
            runnext: RunNext::new(),
            runq: RunQueue::new(),
            spawned: Lifo::new(),
            gcache: Vec::new(),
            stacks: crate::runtime::stack::Cache::new(),
            credits: 0,
            schedtick: AtomicU32::new(0),
            check_countdown: 0,
            local_streak: 0,
            counts: GoroutineCounts {
                spawned: AtomicU64::new(0),
                exited: AtomicU64::new(0),
            },
            spawned_oldest: 0,
            spawned_checks: 0,
            m: ptr::null_mut(),
        }
    }

    /// True when the P has goroutines queued, `runnext` included: for whoever takes
    /// the whole P (its owner, `handoffp`, sysmon). A hint for other threads.
    pub fn has_work(&self) -> bool {
        !self.runnext.peek().is_null() || self.has_stealable_work()
    }

    /// True when another P could steal from this one (its ring or its spawn stack
    /// holds goroutines).
    #[inline(always)]
    pub fn has_stealable_work(&self) -> bool {
        !self.runq.is_empty() || !self.spawned.is_empty()
    }

    /// Goroutines queued, `runnext` included (a snapshot, for dumps).
    pub fn queued(&self) -> usize {
        self.runq.len() as usize
            + self.spawned.len() as usize
            + usize::from(!self.runnext.peek().is_null())
    }

    /// True when nothing is queued here (exact for the owner, who alone adds to the
    /// queue; a thief may only take). Owner only.
    #[inline(always)]
    pub fn local_empty(&self) -> bool {
        self.runnext.peek().is_null() && !self.has_stealable_work()
    }

    /// The owner is about to touch `runnext` (see the top of this file); it must call
    /// `leave_sched` when done (a switch leaves it to the context switched to).
    #[inline(always)]
    pub fn enter_sched(&self) {
        self.runnext.enter();
    }

    /// The owner is done with `runnext` (and the goroutine it put there, if any, is
    /// saved).
    #[inline(always)]
    pub fn leave_sched(&self) {
        self.runnext.leave();
    }

    /// Takes `runnext` for sysmon (a P whose owner has not scheduled for long):
    /// null when it is empty or the owner is inside a scheduling step right now (try
    /// again later). Not for the owner.
    pub fn take_runnext_foreign(&self) -> *mut G {
        self.runnext
            .take_foreign(crate::runtime::runq::heavy_barrier)
    }

    /// Puts `g` in `runnext` and returns what was there (null if it was empty).
    ///
    /// # Safety
    /// Owner only, between `enter_sched` and `leave_sched`; `g` is a RUNNABLE
    /// goroutine the caller owns, saved by the time `leave_sched` runs.
    #[inline(always)]
    pub unsafe fn swap_runnext(&self, g: *mut G) -> *mut G {
        let old = self.runnext.peek();
        self.runnext.set(g);
        old
    }

    /// Queues a runnable goroutine at the tail of the ring (which grows when full).
    ///
    /// # Safety
    /// Owner only. `g` is a RUNNABLE goroutine the caller owns, saved (a thief may run
    /// it as soon as this returns); its ownership passes to the queue.
    #[inline(always)]
    pub unsafe fn push(&self, g: *mut G) {
        // SAFETY: our contract.
        unsafe { self.runq.push(g) }
    }

    /// Queues a runnable goroutine as the next to run. The one it displaces from
    /// `runnext` goes to the ring's tail, or, for a goroutine just `spawned`, to the
    /// spawn stack (the ring's tail when the stack is full). Returns true when
    /// something went where other Ps can take it (the caller then considers waking
    /// one).
    ///
    /// # Safety
    /// As `push`, and `g` may be unsaved only if the caller stays inside a scheduling
    /// step until it is saved (a switch: `finish_switch` leaves it).
    #[inline(always)]
    pub unsafe fn put_next(&self, g: *mut G, spawned: bool) -> bool {
        self.enter_sched();
        // SAFETY: inside the step; the displaced one was queued, hence saved; we are
        // the owner of both queues.
        unsafe {
            let old = self.swap_runnext(g);
            if old.is_null() {
                return false;
            }
            if !spawned || !self.spawned.push(old) {
                self.push(old);
            }
        }
        true
    }

    /// The next goroutine to run from this P alone: `runnext`, then the spawn stack,
    /// then the ring; after `LOCAL_STREAK_MAX` picks from the first two, the ring,
    /// then the spawn stack, get a turn before `runnext`. The caller is inside a
    /// scheduling step (`enter_sched`).
    ///
    /// # Safety
    /// Owner only. The returned goroutine (if any) is RUNNABLE and now the caller's,
    /// to run or requeue.
    #[inline(always)]
    pub unsafe fn get(&mut self) -> *mut G {
        let next = self.runnext.peek();
        if self.local_streak < LOCAL_STREAK_MAX {
            if !next.is_null() {
                self.runnext.set(ptr::null_mut());
                self.local_streak += 1;
                return next;
            }
            // SAFETY: owner only (our contract).
            let g = unsafe { self.spawned.pop() };
            if !g.is_null() {
                self.local_streak += 1;
                return g;
            }
            self.local_streak = 0;
            // SAFETY: owner only (our contract).
            return unsafe { self.runq.pop() };
        }
        // The others' turn: the ring, else the spawn stack, else runnext after all.
        self.local_streak = 0;
        // SAFETY: owner only (our contract).
        let mut g = unsafe { self.runq.pop() };
        if g.is_null() {
            // SAFETY: owner only (our contract).
            g = unsafe { self.spawned.pop() };
        }
        if g.is_null() && !next.is_null() {
            self.runnext.set(ptr::null_mut());
            g = next;
        }
        g
    }

    /// A yield's swap: when `runnext` holds a goroutine that is not locked to a
    /// thread and nothing else is queued here, puts `g` there and returns the one it
    /// displaced, counted as a pick from `runnext` (what `get` followed by a requeue
    /// of `g` into `runnext` would do, with one look at each queue); null otherwise,
    /// with nothing changed. The caller is inside a scheduling step (`enter_sched`).
    ///
    /// # Safety
    /// Owner only. `g` is the running goroutine, RUNNABLE and saved by the time the
    /// step ends (a switch: `finish_switch` ends it).
    #[inline(always)]
    pub unsafe fn yield_swap(&mut self, g: *mut G) -> *mut G {
        let next = self.runnext.peek();
        if next.is_null() {
            return next;
        }
        // SAFETY: a goroutine in runnext is queued, so its descriptor is live.
        let locked = unsafe { (*next).is_locked() };
        if locked || self.local_streak >= LOCAL_STREAK_MAX || self.has_stealable_work() {
            return ptr::null_mut();
        }
        self.local_streak += 1;
        self.runnext.set(g);
        next
    }

    /// The spawn stack's fairness (owner only, from the periodic checks): taken
    /// newest first, its oldest goroutine would wait for as long as the goroutines
    /// above it keep coming (a spawn storm). When its oldest has not moved for
    /// `SPAWNED_WAIT_CHECKS` periodic checks, that one goes to the ring's tail, which
    /// gets a turn within `LOCAL_STREAK_MAX` schedules; then the next oldest waits its
    /// turn. Rare enough that a tree of spawns still runs depth first.
    ///
    /// # Safety
    /// Owner only.
    pub unsafe fn age_spawned(&mut self) {
        let (oldest, queued) = self.spawned.oldest();
        if !queued || oldest != self.spawned_oldest {
            self.spawned_oldest = oldest;
            self.spawned_checks = 0;
            return;
        }
        self.spawned_checks += 1;
        if self.spawned_checks >= SPAWNED_WAIT_CHECKS {
            let g = self.spawned.steal();
            if !g.is_null() {
                // SAFETY: owner only (our contract); the goroutine is ours to requeue.
                unsafe { self.runq.push(g) };
            }
            self.spawned_checks = 0;
        }
    }

    /// Counts one schedule. Owner only.
    #[inline(always)]
    pub fn tick(&self) {
        let t = self.schedtick.load(Ordering::Relaxed);
        self.schedtick.store(t.wrapping_add(1), Ordering::Relaxed);
    }

    /// True once every `CHECK_EVERY` calls (Go looks at the global queue every 61
    /// schedules). Owner only.
    #[inline(always)]
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
    /// Nobody holds this P (or the caller does, as its owner). The goroutines moved
    /// to `out` are RUNNABLE and now the caller's, to queue elsewhere.
    pub unsafe fn drain(&mut self, out: &mut Vec<GPtr>) {
        // A swap: sysmon may be taking it at the same time.
        let g = self.runnext.swap_any(ptr::null_mut());
        if !g.is_null() {
            out.push(GPtr(g));
        }
        self.take_stealable(out);
    }

    /// Moves everything queued here that thieves may take (the ring, then the spawn
    /// stack) into `out`. Any thread; the owner may be taking at the same time.
    pub fn take_stealable(&self, out: &mut Vec<GPtr>) {
        let mut v = Vec::new();
        self.runq.steal_all(&mut v);
        self.spawned.steal_all(&mut v);
        out.extend(v.into_iter().map(GPtr));
    }

    /// A thief's take from this P: half of its ring into `mine`'s (which is empty)
    /// and one goroutine to run, or else the oldest of its spawn stack; null when
    /// there is neither.
    ///
    /// # Safety
    /// The caller holds `mine`, whose ring is empty (`RunQueue::steal_into`).
    pub unsafe fn steal_for(&self, mine: &P) -> *mut G {
        // SAFETY: our contract.
        let g = unsafe { self.runq.steal_into(&mine.runq) };
        if !g.is_null() {
            return g;
        }
        self.spawned.steal()
    }
}
