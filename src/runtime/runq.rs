//! A P's local run queue: Go's ring (`runq` in Go's `runtime2.go`, `runqput`/`runqget`/
//! `runqgrab` in `proc.go`), single producer, many consumers, but growable; and its
//! `runnext` slot (`RunNext`, below), private to the owner.
//!
//! Only the P's owner pushes, at `tail`, which it alone writes (a plain store with
//! release ordering publishes the slot). Consumers take from `head` by compare-and-swap:
//! the owner one at a time, thieves (other Ps, sysmon) half of what they see at once
//! (at most 128), copied out *before* their CAS, which claims the copied slots only if
//! nobody moved `head` meanwhile. A slot is overwritten by the owner only after it has
//! seen `head` move past it (acquire load), so a thief's copy is either claimed whole
//! or thrown away. Compared with the crossbeam deque this replaced: no epoch machinery,
//! and a push is two plain stores.
//!
//! A full ring grows to twice its size (Go's spills half of its 256 slots to the
//! global queue instead): the owner copies the queued slots into the new buffer at
//! the same indexes and publishes it; old buffers are kept until the queue is dropped
//! (a thief may still be copying from one), which costs at most as much again as the
//! largest buffer, 8 bytes per goroutine that was once queued here. Why not spill:
//! the order in which a P runs its goroutines is then FIFO behind `runnext`, as the
//! crossbeam deque's was; spilling halves to the global queue and taking them back
//! in batches of 128 every 61 schedules ran skynet's tree (1,111,111 goroutines)
//! almost twice as slowly, each goroutine's descriptor and stack having gone cold by
//! the time it ran (bench/results/ANALYSIS.md, issue 15). (Spawned siblings now wait
//! in the P's spawn stack, `lifo.rs`, which runs such a tree depth first; the ring
//! holds what wake-ups displace, and a loop's spawns beyond the stack's 256.)
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

use core::cell::UnsafeCell;
use core::ptr;

/// Slots in a new ring (a power of two, so indexes wrap with a mask). The loom model
/// starts with 4, so that it can explore a full ring and its growth.
#[cfg(not(loom))]
pub(crate) const RUNQ_MIN: u32 = 256;
#[cfg(loom)]
pub(crate) const RUNQ_MIN: u32 = 4;
/// The most a thief takes at once: half a new ring, so that the thief's own ring,
/// which is empty when it steals, has room for all of it.
const STEAL_MAX: u32 = RUNQ_MIN / 2;
/// Buffers a ring can have had: RUNQ_MIN << i slots for i < this, up to 2^31 slots
/// (head and tail are u32 counters, whose distance must fit).
const ORDERS: usize = 32 - RUNQ_MIN.trailing_zeros() as usize;

pub(crate) struct RunQueue<T> {
    /// The next slot to take from; consumers advance it by CAS.
    head: AtomicU32,
    /// The next slot to fill; written by the owner only.
    tail: AtomicU32,
    /// Which of `bufs` is current (written by the owner only, with release ordering
    /// once the buffer is filled).
    order: AtomicU32,
    /// The ring's buffers, `bufs[i]` with RUNQ_MIN << i slots: only `bufs[0]` at first,
    /// a buffer twice the size for each growth. Each is written once, by the owner,
    /// before `order` publishes it, and kept until the queue is dropped: a thief that
    /// read an older `order` may still be copying from an older buffer (whose slots
    /// the owner no longer writes, so that copy is either right or thrown away by the
    /// thief's failed CAS).
    bufs: [UnsafeCell<Box<[AtomicPtr<T>]>>; ORDERS],
}

// SAFETY: `bufs` is written only by the owner, each element once, before `order`
// publishes it with release ordering; others read an element only after acquiring
// an `order` that includes it. Everything else is atomic.
unsafe impl<T> Sync for RunQueue<T> {}
// SAFETY: the buffers hold only raw pointers, handed over by the queue's protocol.
unsafe impl<T> Send for RunQueue<T> {}

fn new_buf<T>(len: u32) -> Box<[AtomicPtr<T>]> {
    (0..len).map(|_| AtomicPtr::new(ptr::null_mut())).collect()
}

impl<T> RunQueue<T> {
    pub(crate) fn new() -> Self {
        RunQueue {
            head: AtomicU32::new(0),
            tail: AtomicU32::new(0),
            order: AtomicU32::new(0),
            bufs: core::array::from_fn(|i| {
                UnsafeCell::new(if i == 0 {
                    new_buf(RUNQ_MIN)
                } else {
                    Box::default()
                })
            }),
        }
    }

    /// The buffer that `order` names.
    ///
    /// # Safety
    /// `order` was read from `self.order` (by the owner, or with acquire ordering).
    #[inline(always)]
    unsafe fn buf(&self, order: u32) -> &[AtomicPtr<T>] {
        // SAFETY: the caller's guarantee: that buffer was filled and published, and is
        // never written again.
        unsafe { &*self.bufs.get_unchecked(order as usize).get() }
    }

    /// The current buffer as another thread sees it (after its loads of head and
    /// tail: a tail that covers a slot pushed after a growth implies the buffer it
    /// went to).
    #[inline(always)]
    fn shared_buf(&self) -> &[AtomicPtr<T>] {
        // SAFETY: acquired from `order`.
        unsafe { self.buf(self.order.load(Ordering::Acquire)) }
    }

    /// The owner's view of its current buffer (it alone changes it).
    #[inline(always)]
    fn own_buf(&self) -> &[AtomicPtr<T>] {
        // SAFETY: the owner wrote `order` itself.
        unsafe { self.buf(self.order.load(Ordering::Relaxed)) }
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
        t.wrapping_sub(h).min(self.shared_buf().len() as u32)
    }

    /// True when nothing is queued (exact for the owner: only it adds).
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.head.load(Ordering::Acquire) == self.tail.load(Ordering::Acquire)
    }

    /// Queues `x` at the tail; a full ring grows to twice its size first.
    ///
    /// # Safety
    /// Owner only: the caller is the one thread that pushes to this queue now.
    #[inline(always)]
    pub(crate) unsafe fn push(&self, x: *mut T) {
        let h = self.head.load(Ordering::Acquire);
        let t = self.own_tail();
        let mut buf = self.own_buf();
        if t.wrapping_sub(h) >= buf.len() as u32 {
            // SAFETY: our contract.
            buf = unsafe { self.grow(h, t) };
        }
        slot(buf, t).store(x, Ordering::Relaxed);
        self.tail.store(t.wrapping_add(1), Ordering::Release);
    }

    /// Queues every item of `xs` at the tail, publishing them with one store of the
    /// tail (a batch from the global queue); grows first when they do not fit.
    ///
    /// # Safety
    /// Owner only (see `push`).
    #[inline]
    pub(crate) unsafe fn push_many(&self, xs: impl ExactSizeIterator<Item = *mut T>) {
        let h = self.head.load(Ordering::Acquire);
        let mut t = self.own_tail();
        let mut buf = self.own_buf();
        while t.wrapping_sub(h) + xs.len() as u32 > buf.len() as u32 {
            // SAFETY: our contract.
            buf = unsafe { self.grow(h, t) };
        }
        for x in xs {
            slot(buf, t).store(x, Ordering::Relaxed);
            t = t.wrapping_add(1);
        }
        self.tail.store(t, Ordering::Release);
    }

    /// A full ring: copies what is queued, from `h` (head as last read) to `t` (the
    /// tail), into a buffer twice the size, publishes it and returns it. Each slot
    /// keeps its index, so thieves still copying from the old buffer take the same
    /// items (the owner never writes the old one again).
    ///
    /// # Safety
    /// Owner only (see `push`).
    #[cold]
    #[inline(never)]
    unsafe fn grow(&self, h: u32, t: u32) -> &[AtomicPtr<T>] {
        let order = self.order.load(Ordering::Relaxed) + 1;
        if order as usize >= ORDERS {
            crate::runtime::fatal("a run queue holds 2^31 goroutines");
        }
        // SAFETY: the owner's current buffer.
        let old = unsafe { self.buf(order - 1) };
        let new = new_buf::<T>((old.len() * 2) as u32);
        // Indexes below the head as it is now were taken: copying them too is
        // harmless (nobody takes them again).
        let mut i = h;
        while i != t {
            slot(&new, i).store(slot(old, i).load(Ordering::Relaxed), Ordering::Relaxed);
            i = i.wrapping_add(1);
        }
        // SAFETY: owner only, and nobody reads this element before `order` names it.
        unsafe { *self.bufs[order as usize].get() = new };
        self.order.store(order, Ordering::Release);
        // SAFETY: just published.
        unsafe { self.buf(order) }
    }

    /// Takes the oldest queued item. Null when empty.
    ///
    /// # Safety
    /// Owner only (see `push`).
    #[inline(always)]
    pub(crate) unsafe fn pop(&self) -> *mut T {
        let buf = self.own_buf();
        loop {
            let h = self.head.load(Ordering::Acquire);
            let t = self.own_tail();
            if h == t {
                return ptr::null_mut();
            }
            let x = slot(buf, h).load(Ordering::Relaxed);
            if self
                .head
                .compare_exchange_weak(h, h.wrapping_add(1), Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                if h.wrapping_add(1) != t {
                    prefetch_item(slot(buf, h.wrapping_add(1)).load(Ordering::Relaxed));
                }
                return x;
            }
        }
    }

    /// A consistent snapshot for a thief: (head, how many are queued, the buffer they
    /// are in), or None when head and tail were read at moments too far apart (the
    /// distance exceeds the buffer: read again).
    #[inline]
    fn snapshot(&self) -> Option<(u32, u32, &[AtomicPtr<T>])> {
        let h = self.head.load(Ordering::Acquire);
        let t = self.tail.load(Ordering::Acquire);
        let buf = self.shared_buf();
        let n = t.wrapping_sub(h);
        (n <= buf.len() as u32).then_some((h, n, buf))
    }

    /// A thief's grab: claims about half of what `self` holds (at least one, at most
    /// STEAL_MAX) and copies it into `dst`'s free slots from `dst`'s tail on, without
    /// publishing them. Returns how many were claimed (0: empty).
    ///
    /// # Safety
    /// The caller owns `dst` (it is its P's owner), and `dst` is empty.
    unsafe fn grab_into(&self, dst: &RunQueue<T>) -> u32 {
        let dt = dst.own_tail();
        let dbuf = dst.own_buf();
        loop {
            let Some((h, n, buf)) = self.snapshot() else {
                continue;
            };
            let n = (n - n / 2).min(STEAL_MAX);
            if n == 0 {
                return 0;
            }
            for i in 0..n {
                let x = slot(buf, h.wrapping_add(i)).load(Ordering::Relaxed);
                slot(dbuf, dt.wrapping_add(i)).store(x, Ordering::Relaxed);
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
        let x = slot(dst.own_buf(), dt.wrapping_add(n)).load(Ordering::Relaxed);
        if n > 0 {
            dst.tail.store(dt.wrapping_add(n), Ordering::Release);
        }
        x
    }

    /// Takes everything queued, oldest first, into `out` (a thief emptying a stuck P's
    /// queue, or an owner draining its own).
    pub(crate) fn steal_all(&self, out: &mut Vec<*mut T>) {
        loop {
            let Some((h, n, buf)) = self.snapshot() else {
                continue;
            };
            if n == 0 {
                return;
            }
            let start = out.len();
            for i in 0..n {
                out.push(slot(buf, h.wrapping_add(i)).load(Ordering::Relaxed));
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

/// Asks the CPU to bring the start of `*x` (its first 128 bytes) into its cache: the
/// item that the owner's next `pop` will most likely return. Under a long queue (a
/// tree of goroutines run breadth first), that goroutine was spawned long ago and its
/// descriptor is cold; its first touch, in the switch to it, was most of the
/// switch's time. `x` may be anything (a slot a thief has taken meanwhile).
#[inline(always)]
fn prefetch_item<T>(x: *mut T) {
    crate::runtime::prefetch::for_read(x, core::mem::size_of::<T>().clamp(1, 128));
}

/// The slot of index `i` in `buf` (whose length is a power of two).
#[inline(always)]
fn slot<T>(buf: &[AtomicPtr<T>], i: u32) -> &AtomicPtr<T> {
    // SAFETY: the index is masked into the buffer, whose length is a power of two.
    unsafe { buf.get_unchecked((i as usize) & (buf.len() - 1)) }
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
pub(crate) mod loom_tests {
    //! Every interleaving of an owner (push, push_many, pop, growth) against thieves (steal half,
    //! steal all): each item comes out exactly once, and the owner's FIFO order holds
    //! for what it pops itself.
    //!
    //! Run: `RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test --release --lib runq::loom_tests`

    use super::*;
    use loom::sync::Arc;
    use loom::thread;

    /// Runs `f` under loom (with the preemption bound these models need), for the
    /// queue models here and in lifo.rs.
    pub(crate) fn model(f: impl Fn() + Sync + Send + 'static) {
        let mut b = loom::model::Builder::new();
        if b.preemption_bound.is_none() {
            b.preemption_bound = Some(3);
        }
        b.check(f);
    }

    /// Items are small integers disguised as pointers (never dereferenced).
    pub(crate) fn item(i: usize) -> *mut u8 {
        (i + 1) as *mut u8
    }

    pub(crate) fn id(x: *mut u8) -> usize {
        x as usize - 1
    }

    /// The owner pops everything left, in order.
    fn pop_all(q: &RunQueue<u8>) -> Vec<usize> {
        // SAFETY: only the owner calls this.
        drain_with(|| unsafe { q.pop() })
    }

    /// The ids of what `pop` gives until it gives null (the owner emptying its
    /// queue; here and in lifo.rs).
    pub(crate) fn drain_with(mut pop: impl FnMut() -> *mut u8) -> Vec<usize> {
        let mut got = Vec::new();
        loop {
            let x = pop();
            if x.is_null() {
                return got;
            }
            got.push(id(x));
        }
    }

    /// A ring or a runnext slot shared between the model's threads.
    pub(crate) struct Shared<T>(pub(crate) T);
    // SAFETY: both are shared by design (their atomics are loom's); the items are
    // plain integers.
    unsafe impl<T> Send for Shared<T> {}
    // SAFETY: as for Send.
    unsafe impl<T> Sync for Shared<T> {}

    /// A thief steals half of `q` into a queue of its own and drains that: what it
    /// got, in queue order.
    fn steal_half(q: &RunQueue<u8>) -> Vec<usize> {
        let mine = RunQueue::<u8>::new();
        // SAFETY: this thread owns `mine`, which is empty.
        let x = unsafe { q.steal_into(&mine) };
        if x.is_null() {
            return Vec::new();
        }
        // `x` was the last of the batch stolen.
        let mut got = pop_all(&mine);
        got.push(id(x));
        got
    }

    /// Every item of 0..n came out exactly once, from one side or the other.
    fn each_once(mine: &[usize], stolen: &[usize], n: usize) {
        let mut all: Vec<usize> = mine.iter().chain(stolen).copied().collect();
        all.sort_unstable();
        assert_eq!(
            all,
            (0..n).collect::<Vec<_>>(),
            "mine {mine:?} stolen {stolen:?}"
        );
    }

    /// `before` items queued, then a thief takes everything while the owner queues
    /// `batch` more at once (`push_many`, as from the global queue) and pops: each
    /// item exactly once (the thief never sees a slot of the batch before the tail
    /// publishes it, nor one of a grown buffer before it is filled).
    fn batch_against_thief_taking_all(before: usize, batch: usize) {
        model(move || {
            let q = Arc::new(Shared(RunQueue::new()));
            for i in 0..before {
                // SAFETY: this thread is the owner.
                unsafe { q.0.push(item(i)) };
            }
            let q2 = q.clone();
            let thief = thread::spawn(move || {
                let mut got = Vec::new();
                q2.0.steal_all(&mut got);
                got.into_iter().map(id).collect::<Vec<_>>()
            });
            // SAFETY: the owner.
            unsafe { q.0.push_many((before..before + batch).map(item)) };
            let mine = pop_all(&q.0);
            each_once(&mine, &thief.join().unwrap(), before + batch);
        });
    }

    /// Owner pushes 3 and pops; a thief steals half into its own queue and drains it.
    #[test]
    fn owner_and_thief_see_each_item_once() {
        model(|| {
            let q = Arc::new(Shared(RunQueue::new()));
            let q2 = q.clone();
            let thief = thread::spawn(move || steal_half(&q2.0));
            for i in 0..3 {
                // SAFETY: this thread is the owner.
                unsafe { q.0.push(item(i)) };
            }
            let mine = pop_all(&q.0);
            let stolen = thief.join().unwrap();
            each_once(&mine, &stolen, 3);
            assert!(mine.windows(2).all(|w| w[0] < w[1]), "owner order {mine:?}");
        });
    }

    /// A batch that fits (`push_many`) against a thief taking everything.
    #[test]
    fn batch_against_thief() {
        batch_against_thief_taking_all(1, 2);
    }

    /// Two thieves (one stealing all, one half) against an owner that pushes while
    /// they steal and then pops.
    #[test]
    fn two_thieves() {
        model(|| {
            let q = Arc::new(Shared(RunQueue::new()));
            // SAFETY: this thread is the owner.
            unsafe { q.0.push(item(0)) };
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
            unsafe { q.0.push(item(1)) };
            let mine = pop_all(&q.0);
            let ga = a.join().unwrap();
            let gb = b.join().unwrap();
            let mut all: Vec<usize> = mine.iter().chain(&ga).chain(&gb).copied().collect();
            all.sort_unstable();
            assert_eq!(all, vec![0, 1], "owner {mine:?} all {ga:?} half {gb:?}");
        });
    }

    /// A full ring grows while a thief steals half of it: each item is taken exactly
    /// once, the owner pops its share in order, and so does the thief (it can never
    /// copy a slot from the old buffer that the owner changed after the growth).
    #[test]
    fn growth_against_thief() {
        model(|| {
            let q = Arc::new(Shared(RunQueue::new()));
            let full = RUNQ_MIN as usize;
            for i in 0..full {
                // SAFETY: this thread is the owner.
                unsafe { q.0.push(item(i)) };
            }
            let q2 = q.clone();
            let thief = thread::spawn(move || steal_half(&q2.0));
            for i in full..full + 2 {
                // SAFETY: this thread is the owner.
                unsafe { q.0.push(item(i)) };
            }
            let mine = pop_all(&q.0);
            let stolen = thief.join().unwrap();
            each_once(&mine, &stolen, full + 2);
            assert!(mine.windows(2).all(|w| w[0] < w[1]), "owner order {mine:?}");
            assert!(
                stolen.windows(2).all(|w| w[0] < w[1]),
                "thief order {stolen:?}"
            );
        });
    }

    /// A batch that does not fit (`push_many` growing the ring) against a thief taking
    /// everything.
    #[test]
    fn batch_growth_against_thief() {
        batch_against_thief_taking_all(RUNQ_MIN as usize - 1, 2);
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
