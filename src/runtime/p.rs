//! P: a processor, the right to run goroutines. There are `gomaxprocs` of them; an M
//! runs goroutines only while it holds one. A P owns a local run queue (`runq.rs`:
//! Go's ring of 256, pushed by the owner alone, taken from by the owner and by idle
//! Ps stealing half at a time), a `runnext` slot for the goroutine just woken or
//! spawned (so a hand-off stays on this core), and caches of free descriptors, free
//! stacks and stack reservations (so spawn and exit take no lock).
//!
//! Only the M holding a P touches `gcache`, `stacks` and the counters marked
//! owner-only; other threads steal from `runq` and read the atomics.
//!
//! `runnext` is owner-private, unlike Go's (where thieves may take it by CAS): the
//! owner reads and writes it with plain loads and stores, no locked instruction, which
//! is what lets a yield swap the yielder and the next goroutine through it, and a
//! channel hand-off queue its partner, for the price of two moves. Stealing Ps leave it
//! alone; a runnext behind a goroutine that runs for long is taken by sysmon's rescue
//! instead (after 20 ms, where Go's thieves take it after ~3 us; a woken goroutine
//! never made anybody wake a P for it, so a thief only ever found it by chance).
//! sysmon takes it through an asymmetric handshake, since the owner may be stopped
//! anywhere (preempted by the kernel in the middle of a switch, or stuck in a blocking
//! call nobody wrapped):
//! - the owner marks itself `in_sched` (a plain store) before it touches `runnext`,
//!   then looks at `claim` (a plain load), and clears `in_sched` when done: at the end
//!   of each operation, and for a switch only once the context switched to runs
//!   (`m::finish_switch`), so that a goroutine a switch puts in `runnext` is saved
//!   before anybody else can take it;
//! - sysmon sets `claim`, makes every thread of the process execute a full memory
//!   barrier (`heavy_barrier`: membarrier(2), or an mprotect TLB shootdown where that
//!   is missing), then looks at `in_sched`: 0 means the owner is outside and will see
//!   `claim` on its next entry, so sysmon may swap `runnext` out; 1 means it backs off
//!   until its next round. An owner that finds `claim` set waits until sysmon clears it.
//!
//! This is the asymmetric Dekker pattern (userspace RCU and Folly use it): the barrier
//! that the owner's plain store-then-load lacks is supplied by sysmon's system call,
//! which orders both against each other.

use core::ptr;
use core::sync::atomic::{AtomicPtr, AtomicU32, AtomicU8, Ordering};

use crate::runtime::g::{GPtr, G};
use crate::runtime::m::M;
use crate::runtime::runq::RunQueue;

/// In the idle list.
pub(crate) const P_IDLE: u32 = 0;
/// Held by an M.
pub(crate) const P_RUNNING: u32 = 1;
/// Not in use (beyond the processor limit, or never started).
pub(crate) const P_DEAD: u32 = 2;

/// Schedules between looks at due timers, ready fds and the global queue.
pub(crate) const CHECK_EVERY: u32 = 61;

/// Consecutive goroutines taken from `runnext` before the queue gets a turn (so a
/// ping-pong pair cannot starve the rest of the queue).
const RUNNEXT_STREAK_MAX: u32 = 64;

pub struct P {
    pub id: usize,
    pub status: AtomicU32,
    /// The goroutine to run next (owner-private, see the top of this file).
    runnext: AtomicPtr<G>,
    /// 1 while the owner may be touching `runnext` (written by the owner only).
    in_sched: AtomicU32,
    /// Set by sysmon while it takes `runnext` from a stuck P.
    claim: AtomicU32,
    pub(crate) runq: RunQueue<G>,
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
    /// Consecutive goroutines taken from `runnext` (owner-only).
    pub runnext_streak: u32,
    pub m: *mut M,
}

impl P {
    pub fn new(id: usize) -> P {
        P {
            id,
            status: AtomicU32::new(P_DEAD),
            runnext: AtomicPtr::new(ptr::null_mut()),
            in_sched: AtomicU32::new(0),
            claim: AtomicU32::new(0),
            runq: RunQueue::new(),
            gcache: Vec::new(),
            stacks: crate::runtime::stack::Cache::new(),
            credits: 0,
            schedtick: AtomicU32::new(0),
            check_countdown: 0,
            runnext_streak: 0,
            m: ptr::null_mut(),
        }
    }

    /// True when the P has goroutines queued, `runnext` included: for whoever takes
    /// the whole P (its owner, `handoffp`, sysmon). A hint for other threads.
    pub fn has_work(&self) -> bool {
        !self.runnext.load(Ordering::Relaxed).is_null() || !self.runq.is_empty()
    }

    /// True when another P could steal from this one (its ring holds goroutines).
    pub fn has_stealable_work(&self) -> bool {
        !self.runq.is_empty()
    }

    /// Goroutines queued, `runnext` included (a snapshot, for dumps).
    pub fn queued(&self) -> usize {
        self.runq.len() as usize + usize::from(!self.runnext.load(Ordering::Relaxed).is_null())
    }

    /// True when nothing is queued here (exact for the owner, who alone adds to the
    /// queue; a thief may only take). Owner only.
    #[inline(always)]
    pub fn local_empty(&self) -> bool {
        self.runnext.load(Ordering::Relaxed).is_null() && self.runq.is_empty()
    }

    /// The owner is about to touch `runnext` (see the top of this file); it must call
    /// `leave_sched` when done (a switch leaves it to the context switched to).
    #[inline(always)]
    pub fn enter_sched(&self) {
        self.in_sched.store(1, Ordering::Relaxed);
        light_barrier();
        if self.claim.load(Ordering::Relaxed) != 0 {
            self.wait_for_claim();
        }
    }

    /// The owner is done with `runnext` (and the goroutine it put there, if any, is
    /// saved).
    #[inline(always)]
    pub fn leave_sched(&self) {
        self.in_sched.store(0, Ordering::Release);
    }

    #[cold]
    fn wait_for_claim(&self) {
        while self.claim.load(Ordering::Acquire) != 0 {
            core::hint::spin_loop();
        }
    }

    /// Takes `runnext` for sysmon (a P whose owner has not scheduled for long):
    /// null when it is empty or the owner is inside a scheduling step right now (try
    /// again later). Not for the owner.
    pub fn take_runnext_foreign(&self) -> *mut G {
        if self.runnext.load(Ordering::Relaxed).is_null() {
            return ptr::null_mut();
        }
        self.claim.store(1, Ordering::Relaxed);
        heavy_barrier();
        let g = if self.in_sched.load(Ordering::Acquire) == 0 {
            self.runnext.swap(ptr::null_mut(), Ordering::AcqRel)
        } else {
            ptr::null_mut()
        };
        self.claim.store(0, Ordering::Release);
        g
    }

    /// Puts `g` in `runnext` and returns what was there (null if it was empty).
    ///
    /// # Safety
    /// Owner only, between `enter_sched` and `leave_sched`; `g` is a RUNNABLE
    /// goroutine the caller owns, saved by the time `leave_sched` runs.
    #[inline(always)]
    pub unsafe fn swap_runnext(&self, g: *mut G) -> *mut G {
        let old = self.runnext.load(Ordering::Relaxed);
        self.runnext.store(g, Ordering::Relaxed);
        old
    }

    /// Queues a runnable goroutine at the tail of the ring; a full ring spills its
    /// older half (and `g`) to the global queue. Returns true when it spilled (the
    /// caller then wakes a worker, as for any work put where other Ps can take it).
    ///
    /// # Safety
    /// Owner only. `g` is a RUNNABLE goroutine the caller owns, saved (a thief may run
    /// it as soon as this returns); its ownership passes to the queue.
    #[inline(always)]
    pub unsafe fn push(&self, g: *mut G) -> bool {
        // SAFETY: our contract.
        match unsafe { self.runq.push(g) } {
            Ok(()) => false,
            // SAFETY: our contract.
            Err(g) => unsafe { self.spill(g) },
        }
    }

    #[cold]
    unsafe fn spill(&self, g: *mut G) -> bool {
        let mut g = g;
        loop {
            let mut batch = Vec::with_capacity(crate::runtime::runq::RUNQ_SIZE as usize / 2 + 1);
            // SAFETY: owner only (our contract).
            if unsafe { self.runq.take_half_for_spill(&mut batch) } {
                batch.push(g);
                crate::runtime::sched::globrunqput_list(batch.into_iter().map(GPtr));
                return true;
            }
            // A thief made room meanwhile.
            // SAFETY: as above.
            match unsafe { self.runq.push(g) } {
                Ok(()) => return false,
                Err(back) => g = back,
            }
        }
    }

    /// Queues a runnable goroutine as the next to run; the one it displaces from
    /// `runnext` goes to the ring's tail. Returns true when something went where
    /// other Ps can take it (the caller then considers waking one).
    ///
    /// # Safety
    /// As `push`, and `g` may be unsaved only if the caller stays inside a scheduling
    /// step until it is saved (a switch: `finish_switch` leaves it).
    #[inline(always)]
    pub unsafe fn put_next(&self, g: *mut G) -> bool {
        self.enter_sched();
        // SAFETY: inside the step; the displaced one was queued, hence saved.
        unsafe {
            let old = self.swap_runnext(g);
            if old.is_null() {
                return false;
            }
            self.push(old);
        }
        true
    }

    /// The next goroutine to run from this P alone: `runnext` (within the streak
    /// bound), then the ring. The caller is inside a scheduling step (`enter_sched`).
    ///
    /// # Safety
    /// Owner only. The returned goroutine (if any) is RUNNABLE and now the caller's,
    /// to run or requeue.
    #[inline(always)]
    pub unsafe fn get(&mut self) -> *mut G {
        let next = self.runnext.load(Ordering::Relaxed);
        if !next.is_null() && self.runnext_streak < RUNNEXT_STREAK_MAX {
            self.runnext.store(ptr::null_mut(), Ordering::Relaxed);
            self.runnext_streak += 1;
            return next;
        }
        self.runnext_streak = 0;
        // SAFETY: owner only (our contract).
        let g = unsafe { self.runq.pop() };
        if !g.is_null() || next.is_null() {
            return g;
        }
        self.runnext.store(ptr::null_mut(), Ordering::Relaxed);
        next
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
        let g = self.runnext.swap(ptr::null_mut(), Ordering::AcqRel);
        if !g.is_null() {
            out.push(GPtr(g));
        }
        let mut v = Vec::new();
        self.runq.steal_all(&mut v);
        out.extend(v.into_iter().map(GPtr));
    }
}

/// The owner's side of the handshake: orders its store to `in_sched` before its load
/// of `claim` only in combination with `heavy_barrier` (a compiler fence here).
#[inline(always)]
fn light_barrier() {
    core::sync::atomic::compiler_fence(Ordering::SeqCst);
}

/// How `heavy_barrier` works on this kernel: 0 not yet known, 1 membarrier(2), 2 an
/// mprotect TLB shootdown.
static BARRIER_MODE: AtomicU8 = AtomicU8::new(0);

const MEMBARRIER_CMD_PRIVATE_EXPEDITED: libc::c_long = 1 << 3;
const MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED: libc::c_long = 1 << 4;

/// Registers for membarrier(2)'s expedited barrier now if that is cheap: while the
/// process has one thread (later the kernel waits for an RCU grace period, several
/// milliseconds). Called as the runtime starts, before its first thread.
pub(crate) fn prepare_heavy_barrier_if_single_threaded() {
    let mut buf = [0u8; 512];
    let Ok(stat) = crate::runtime::sys::read_file(b"/proc/self/stat\0", &mut buf) else {
        return;
    };
    // Field 20 (num_threads), counted after the parenthesised command name.
    let Some(close) = stat.iter().rposition(|&b| b == b')') else {
        return;
    };
    let threads = stat[close + 1..]
        .split(|&b| b == b' ')
        .filter(|f| !f.is_empty())
        .nth(17);
    if threads == Some(b"1".as_slice()) {
        prepare_heavy_barrier();
    }
}

/// Chooses how `heavy_barrier` works, registering the process for membarrier(2)'s
/// expedited barrier (which takes the kernel several milliseconds once the process
/// has threads: done as the runtime starts when it has none, else by sysmon as it
/// starts, never in the middle of a rescue).
pub(crate) fn prepare_heavy_barrier() -> u8 {
    let mut mode = BARRIER_MODE.load(Ordering::Acquire);
    if mode == 0 {
        // SAFETY: membarrier(2) registration takes no pointers.
        let r = unsafe {
            libc::syscall(
                libc::SYS_membarrier,
                MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED,
                0,
                0,
            )
        };
        mode = if r == 0 { 1 } else { 2 };
        BARRIER_MODE.store(mode, Ordering::Release);
    }
    mode
}

/// Makes every running thread of the process execute a full memory barrier before
/// this returns (threads not running now went through the kernel's scheduler, which
/// is one). Costs a system call and an interrupt per CPU running the process: for
/// sysmon's rare rescues only.
pub(crate) fn heavy_barrier() {
    if prepare_heavy_barrier() == 1 {
        // SAFETY: as above.
        let r =
            unsafe { libc::syscall(libc::SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) };
        if r == 0 {
            return;
        }
    }
    tlb_shootdown();
}

/// The fallback barrier (what the JVM does without membarrier): taking write access
/// away from a page this thread has dirtied makes the kernel flush its TLB entry on
/// every CPU that may cache it, by interrupt, and an interrupt is a full barrier.
fn tlb_shootdown() {
    static PAGE: AtomicPtr<u8> = AtomicPtr::new(ptr::null_mut());
    let mut page = PAGE.load(Ordering::Acquire);
    if page.is_null() {
        // SAFETY: a fresh anonymous mapping touches nothing that exists.
        let p = unsafe {
            libc::mmap(
                ptr::null_mut(),
                4096,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            // Without either barrier, a full fence here is all that can be done; the
            // caller's look at `in_sched` is then a best effort.
            core::sync::atomic::fence(Ordering::SeqCst);
            return;
        }
        page = p as *mut u8;
        PAGE.store(page, Ordering::Release);
    }
    // SAFETY: our own page, mapped above and never unmapped; only sysmon calls this.
    unsafe {
        libc::mprotect(
            page as *mut libc::c_void,
            4096,
            libc::PROT_READ | libc::PROT_WRITE,
        );
        core::ptr::write_volatile(page, 1);
        libc::mprotect(page as *mut libc::c_void, 4096, libc::PROT_NONE);
    }
}
