//! A P's local run queue: Go's fixed ring of 256 goroutines (`runq` in Go's
//! `runtime2.go`, `runqput`/`runqget`/`runqgrab` in `proc.go`), single producer, many
//! consumers; and its `runnext` slot (`RunNext`, below), private to the owner.
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
//! `RunNext` is one slot that only its owner uses, with plain loads and stores (no
//! locked instruction), except for one other party allowed to take what is in it:
//! sysmon, rescuing the goroutines of a P whose owner has stopped (preempted by the
//! kernel anywhere, even in the middle of a switch, or stuck in a blocking call nobody
//! wrapped). The two meet through an asymmetric handshake:
//! - the owner marks itself `in_sched` (a plain store) before it touches the slot,
//!   then looks at `claim` (a plain load), and clears `in_sched` when done;
//! - sysmon sets `claim`, makes every thread of the process execute a full memory
//!   barrier (`heavy_barrier`: membarrier(2), or an mprotect TLB shootdown where that
//!   is missing), then looks at `in_sched`: 0 means the owner is outside and will see
//!   `claim` on its next entry, so sysmon may swap the slot out; 1 means it backs off
//!   until its next round. An owner that finds `claim` set waits until sysmon clears
//!   it.
//!
//! This is the asymmetric Dekker pattern (userspace RCU and Folly use it): the barrier
//! that the owner's plain store-then-load lacks is supplied by sysmon's system call,
//! which orders both against each other.
//!
//! Both hold raw pointers whose ownership the run-queue protocol hands over
//! (runtime/g.rs: a RUNNABLE goroutine belongs to exactly one queue). Built with
//! `--cfg loom`, the atomics are loom's, the barriers are modelled as described at
//! `RunNext::light_barrier`, and the models at the bottom check every interleaving of
//! an owner against thieves, and against sysmon.

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

    /// Queues every item of `xs` at the tail, publishing them with one store of the
    /// tail (a batch from the global queue).
    ///
    /// # Safety
    /// Owner only (see `push`), and the ring has room for all of `xs`.
    #[inline]
    pub(crate) unsafe fn push_many(&self, xs: impl Iterator<Item = *mut T>) {
        let mut t = self.own_tail();
        for x in xs {
            self.slot(t).store(x, Ordering::Relaxed);
            t = t.wrapping_add(1);
        }
        self.tail.store(t, Ordering::Release);
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

/// A P's `runnext`: a slot private to its owner but for sysmon's rescue (see the top
/// of this file).
pub(crate) struct RunNext<T> {
    slot: AtomicPtr<T>,
    /// 1 while the owner may be touching `slot` (written by the owner only).
    in_sched: AtomicU32,
    /// Set by sysmon while it takes what is in `slot`.
    claim: AtomicU32,
    /// loom's stand-in for the two barriers (see `light_barrier`).
    #[cfg(loom)]
    barrier: AtomicU32,
}

impl<T> RunNext<T> {
    pub(crate) fn new() -> Self {
        RunNext {
            slot: AtomicPtr::new(ptr::null_mut()),
            in_sched: AtomicU32::new(0),
            claim: AtomicU32::new(0),
            #[cfg(loom)]
            barrier: AtomicU32::new(0),
        }
    }

    /// What the slot holds: exact for the owner inside `enter`..`leave`, a hint for
    /// anybody else.
    #[inline(always)]
    pub(crate) fn peek(&self) -> *mut T {
        self.slot.load(Ordering::Relaxed)
    }

    /// The owner puts `x` in the slot (between `enter` and `leave`).
    #[inline(always)]
    pub(crate) fn set(&self, x: *mut T) {
        self.slot.store(x, Ordering::Relaxed);
    }

    /// The owner is about to touch the slot.
    #[inline(always)]
    pub(crate) fn enter(&self) {
        self.in_sched.store(1, Ordering::Relaxed);
        self.light_barrier();
        // Acquire: a `claim` of 0 stored by sysmon as it finished makes its swap of
        // the slot visible (a plain load on x86, as every load is).
        if self.claim.load(Ordering::Acquire) != 0 {
            self.wait_for_claim();
        }
    }

    /// The owner is done with the slot (and what it put there may be taken).
    #[inline(always)]
    pub(crate) fn leave(&self) {
        self.in_sched.store(0, Ordering::Release);
    }

    #[cold]
    fn wait_for_claim(&self) {
        while self.claim.load(Ordering::Acquire) != 0 {
            #[cfg(not(loom))]
            core::hint::spin_loop();
            #[cfg(loom)]
            loom::thread::yield_now();
        }
    }

    /// Anybody but the owner, while nobody else may take it (sysmon): what the slot
    /// holds, taken out; null when it is empty or the owner is inside right now (try
    /// again later). `heavy_barrier` makes every thread execute a full barrier.
    pub(crate) fn take_foreign(&self, heavy_barrier: fn()) -> *mut T {
        if self.slot.load(Ordering::Relaxed).is_null() {
            return ptr::null_mut();
        }
        self.claim.store(1, Ordering::Relaxed);
        #[cfg(not(loom))]
        heavy_barrier();
        #[cfg(loom)]
        {
            let _ = heavy_barrier;
            self.light_barrier();
        }
        let x = if self.in_sched.load(Ordering::Acquire) == 0 {
            self.slot.swap(ptr::null_mut(), Ordering::AcqRel)
        } else {
            ptr::null_mut()
        };
        self.claim.store(0, Ordering::Release);
        x
    }

    /// Swaps `x` in with an atomic swap: for a party that holds the slot while its P
    /// has no owner (retiring it), as sysmon may come at the same time.
    pub(crate) fn swap_any(&self, x: *mut T) -> *mut T {
        self.slot.swap(x, Ordering::AcqRel)
    }
}

impl<T> RunNext<T> {
    /// The owner's side of the handshake: orders its store to `in_sched` before its
    /// load of `claim` only in combination with `heavy_barrier` (a compiler fence).
    /// loom, which does not model SeqCst fences, gets an equivalent it can check: both
    /// sides make an acquire-release read-modify-write of one word where the barriers
    /// stand, so whichever comes second sees what the other stored before its own.
    #[inline(always)]
    fn light_barrier(&self) {
        #[cfg(not(loom))]
        core::sync::atomic::compiler_fence(Ordering::SeqCst);
        #[cfg(loom)]
        self.barrier.fetch_add(1, Ordering::AcqRel);
    }
}

/// How `heavy_barrier` works on this kernel: 0 not yet known, 1 membarrier(2), 2 an
/// mprotect TLB shootdown.
static BARRIER_MODE: core::sync::atomic::AtomicU8 = core::sync::atomic::AtomicU8::new(0);

#[allow(dead_code)] // unused in loom builds (as tlb_shootdown)
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
#[cfg(not(loom))]
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
#[allow(dead_code)] // unused in loom builds, whose heavy barrier is a fence
fn tlb_shootdown() {
    static PAGE: core::sync::atomic::AtomicPtr<u8> =
        core::sync::atomic::AtomicPtr::new(ptr::null_mut());
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

/// loom builds: `RunNext::take_foreign` models the barrier itself.
#[cfg(loom)]
pub(crate) fn heavy_barrier() {}

#[cfg(all(test, loom))]
mod loom_tests {
    //! Every interleaving of an owner (push, push_many, pop, spill) against thieves (steal half,
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

    /// The owner pops everything left, in order.
    fn pop_all(q: &RunQueue<u8>) -> Vec<usize> {
        let mut got = Vec::new();
        loop {
            // SAFETY: only the owner calls this.
            let x = unsafe { q.pop() };
            if x.is_null() {
                return got;
            }
            got.push(id(x));
        }
    }

    /// A ring or a runnext slot shared between the model's threads.
    struct Shared<T>(T);
    // SAFETY: both are shared by design (their atomics are loom's); the items are
    // plain integers.
    unsafe impl<T> Send for Shared<T> {}
    // SAFETY: as for Send.
    unsafe impl<T> Sync for Shared<T> {}

    /// Owner pushes 3 and pops; a thief steals half into its own queue and drains it.
    #[test]
    fn owner_and_thief_see_each_item_once() {
        model(|| {
            let q = Arc::new(Shared(RunQueue::new()));
            let q2 = q.clone();
            let thief = thread::spawn(move || {
                let mine = RunQueue::<u8>::new();
                let mut got = Vec::new();
                // SAFETY: this thread owns `mine`, which is empty.
                let x = unsafe { q2.0.steal_into(&mine) };
                if !x.is_null() {
                    got.push(id(x));
                    got.extend(pop_all(&mine));
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

    /// The owner queues a batch at once (`push_many`, as from the global queue) while a
    /// thief steals: every item is taken exactly once, the thief never sees a slot of
    /// the batch before the tail publishes it.
    #[test]
    fn batch_against_thief() {
        model(|| {
            let q = Arc::new(Shared(RunQueue::new()));
            // SAFETY: this thread is the owner.
            unsafe { q.0.push(item(0)).expect("room") };
            let q2 = q.clone();
            let thief = thread::spawn(move || {
                let mut got = Vec::new();
                q2.0.steal_all(&mut got);
                got.into_iter().map(id).collect::<Vec<_>>()
            });
            // SAFETY: the owner, with room for both.
            unsafe { q.0.push_many([item(1), item(2)].into_iter()) };
            let mine = pop_all(&q.0);
            let stolen = thief.join().unwrap();
            let mut all: Vec<usize> = mine.iter().chain(stolen.iter()).copied().collect();
            all.sort_unstable();
            assert_eq!(all, vec![0, 1, 2], "mine {mine:?} stolen {stolen:?}");
        });
    }

    /// Two thieves (one stealing all, one half) against an owner that pushes while
    /// they steal and then pops.
    #[test]
    fn two_thieves() {
        model(|| {
            let q = Arc::new(Shared(RunQueue::new()));
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
            let mine = pop_all(&q.0);
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
            let q = Arc::new(Shared(RunQueue::new()));
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
            left += pop_all(&q.0).len();
            let stolen = thief.join().unwrap();
            let pushed = RUNQ_SIZE as usize + usize::from(full.is_ok());
            assert_eq!(stolen + spilled.len() + left, pushed);
        });
    }

    /// The owner takes what is in runnext and puts another item there, as a switch
    /// does, while sysmon tries to take it: every item ends up with exactly one party
    /// (never both the owner and sysmon, never neither).
    #[test]
    fn runnext_owner_against_sysmon() {
        model(|| {
            let n = Arc::new(Shared(RunNext::new()));
            n.0.set(item(0));
            let n2 = n.clone();
            let sysmon = thread::spawn(move || {
                let x = n2.0.take_foreign(heavy_barrier);
                (!x.is_null()).then(|| id(x))
            });
            let mut mine = Vec::new();
            n.0.enter();
            let x = n.0.peek();
            n.0.set(item(1));
            n.0.leave();
            if !x.is_null() {
                mine.push(id(x));
            }
            let taken = sysmon.join().unwrap();
            n.0.enter();
            let left = n.0.peek();
            n.0.set(ptr::null_mut());
            n.0.leave();
            if !left.is_null() {
                mine.push(id(left));
            }
            let mut all: Vec<usize> = mine.iter().copied().chain(taken).collect();
            all.sort_unstable();
            assert_eq!(
                all,
                vec![0, 1],
                "owner {mine:?} sysmon {taken:?} x {x:?} left {left:?}"
            );
        });
    }
}
