//! Goroutine stacks: slabs, guard pages, caches, overflow detection.
//!
//! Address space is reserved in large slabs (one `mmap` of up to 4,096 stack slots,
//! `MAP_NORESERVE`), so a stack costs no memory-map entry of its own and the kernel
//! commits pages only as a goroutine touches them. Each slot is
//! `[guard (64 KiB)][usable stack (the size class)]`; the stack grows down towards
//! the guard. Guards are installed with `MADV_GUARD_INSTALL` (Linux 6.13+), batched
//! through `process_madvise` at slab creation: no extra map entries at all. Where the
//! kernel lacks it (or `GR_GUARD=mprotect`), each slot gets an `mprotect(PROT_NONE)`
//! guard when first carved, which splits the mapping: those are counted against a
//! budget (a quarter of `vm.max_map_count`, or `GR_GUARD_BUDGET`) and spawn returns
//! `-EAGAIN` past it, so malloc and pthread_create keep working.
//!
//! A goroutine gets its stack when it first *runs*, not when it is spawned, and takes
//! the most recently freed one of its P (LIFO): a burst of short goroutines then runs
//! on a handful of stacks that stay in cache and TLB, instead of touching a fresh page
//! per goroutine. So that running can never fail, spawn *reserves* a stack first
//! (failing with -ENOMEM/-EAGAIN right there): per size class, the global pool keeps
//! `free >= promised`, where `promised` counts reservations not yet turned into a
//! stack. Ps take reservations 32 at a time as plain counters (`credits`), so spawn
//! touches no shared cache line; stacks freed on a P stay in its cache (bounded) and
//! do not back reservations.
//!
//! A surplus beyond `POOL_KEEP` hot stacks that nobody has drawn on for a second is
//! returned to the kernel (`MADV_DONTNEED`, by sysmon), so RSS falls back after a
//! burst while back-to-back bursts reuse warm stacks.
//!
//! The SIGSEGV handler (installed once, run on each worker's alternate signal stack)
//! maps a fault address to a slot's guard, and the slot to the goroutine that owns it,
//! without any lock or thread-local; it reports "stack overflow in goroutine N (NAME)"
//! and aborts. Any other fault is chained to the handler installed before ours, or to
//! the default action.

use core::ptr;
use core::sync::atomic::{AtomicI64, AtomicPtr, AtomicU32, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Mutex, Once};

use crate::runtime::g::G;

pub(crate) const PAGE: usize = 4096;
/// Guard region below each stack. Large, so that a C frame with big locals cannot
/// jump over it into the neighbouring stack; it costs no memory.
pub(crate) const GUARD: usize = 64 << 10;
/// The smallest stack: runtime calls may use up to 8 KiB of the calling goroutine's
/// stack (they run on it; only the worker's own loop runs on its thread stack).
pub(crate) const MIN_STACK: usize = 32 << 10;
pub(crate) const MAX_STACK: usize = 1 << 30;
pub(crate) const DEFAULT_STACK: usize = 256 << 10;
const NCLASSES: usize = 16; // 32 KiB << 0..=15
const SLOT_BITS: u32 = 12;
const SLOTS_PER_SLAB_MAX: usize = 1 << SLOT_BITS;
const MAX_SLABS: usize = 4096;
/// Slab reservation target: a slab holds as many slots as fit in this (at least one).
const SLAB_BYTES: usize = 1 << 30;
/// Hot free stacks a size class keeps before returning the rest to the kernel.
const POOL_KEEP: usize = 4096;
/// Reservations a P takes from (and gives back to) the global pool at a time.
pub(crate) const CREDIT_BATCH: u32 = 32;
/// Free stacks a P keeps for reuse.
const CACHE_MAX: usize = 256;

/// `madvise` advice values not yet in every libc.
const MADV_GUARD_INSTALL: i32 = 102;
const PIDFD_SELF: i32 = -10000;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub enum GuardMode {
    Madvise = 1,
    Mprotect = 2,
}

/// A stack: usable range `[lo, hi)` and its global slot number.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Stack {
    pub lo: usize,
    pub hi: usize,
    pub slot: u32,
}

struct Slab {
    /// Its index in `SLABS`.
    index: usize,
    base: usize,
    slot_size: usize,
    nslots: usize,
    /// The goroutine each slot's stack was last given to (for overflow messages).
    owners: *mut AtomicPtr<G>,
}

static SLABS: [AtomicPtr<Slab>; MAX_SLABS] = [const { AtomicPtr::new(ptr::null_mut()) }; MAX_SLABS];
static NSLABS: AtomicUsize = AtomicUsize::new(0);
static GUARD_MODE: AtomicU8 = AtomicU8::new(0);
static GUARDS_USED: AtomicUsize = AtomicUsize::new(0);
static GUARD_BUDGET: AtomicUsize = AtomicUsize::new(0);
static DEFAULT_SIZE: AtomicUsize = AtomicUsize::new(DEFAULT_STACK);
static DEFAULT_CLASS: AtomicUsize = AtomicUsize::new(4);
/// Stacks given to goroutines and not yet returned.
static IN_USE: AtomicUsize = AtomicUsize::new(0);
/// When a pool was last drawn on (ns); surplus younger than that is kept warm.
static LAST_DRAW: AtomicI64 = AtomicI64::new(0);
/// Hot stacks in the global pools beyond what reservations need (a hint for sysmon).
static HOT: AtomicUsize = AtomicUsize::new(0);

struct Pool {
    /// Free stacks whose pages may still be committed (warm).
    hot: Vec<Stack>,
    /// Free stacks whose pages were returned to the kernel, or never touched.
    cold: Vec<Stack>,
    /// Reservations not yet turned into stacks; always <= hot + cold + uncarved
    /// (<= hot + cold with the mprotect fallback).
    promised: usize,
    /// Mapped slabs with slots not yet carved (guards not yet installed), oldest
    /// first, each with its next uncarved slot.
    slabs: std::collections::VecDeque<(*mut Slab, usize)>,
    /// Uncarved slots in `slabs`.
    uncarved: usize,
}
// SAFETY: the raw pointer is owned by the pool under its mutex.
unsafe impl Send for Pool {}

static POOLS: [Mutex<Pool>; NCLASSES] = [const {
    Mutex::new(Pool {
        hot: Vec::new(),
        cold: Vec::new(),
        promised: 0,
        slabs: std::collections::VecDeque::new(),
        uncarved: 0,
    })
}; NCLASSES];

static INIT: Once = Once::new();

fn pool(class: usize) -> std::sync::MutexGuard<'static, Pool> {
    POOLS[class].lock().unwrap_or_else(|e| e.into_inner())
}

/// Reads `GR_STACK_SIZE`, `GR_GUARD`, `GR_GUARD_BUDGET`, and installs the SIGSEGV
/// handler. Idempotent.
pub fn init() {
    INIT.call_once(|| {
        if let Some(n) = env_usize("GR_STACK_SIZE") {
            if let Ok(c) = class_of(n) {
                DEFAULT_SIZE.store(class_size(c), Ordering::Relaxed);
            }
        }
        DEFAULT_CLASS.store(class_of(0).unwrap_or(4), Ordering::Relaxed);
        let forced = std::env::var("GR_GUARD").ok();
        let mode = match forced.as_deref() {
            Some("mprotect") => GuardMode::Mprotect,
            _ => {
                if kernel_has_guard_install() {
                    GuardMode::Madvise
                } else {
                    GuardMode::Mprotect
                }
            }
        };
        GUARD_MODE.store(mode as u8, Ordering::Relaxed);
        let budget = env_usize("GR_GUARD_BUDGET").unwrap_or_else(|| max_map_count() / 4);
        GUARD_BUDGET.store(budget, Ordering::Relaxed);
        install_segv_handler();
    });
}

fn env_usize(name: &str) -> Option<usize> {
    let v = std::env::var(name).ok()?;
    let v = v.trim();
    let (num, mult) = match v.as_bytes().last()? {
        b'k' | b'K' => (&v[..v.len() - 1], 1 << 10),
        b'm' | b'M' => (&v[..v.len() - 1], 1 << 20),
        _ => (v, 1),
    };
    num.parse::<usize>().ok().map(|n| n * mult)
}

fn max_map_count() -> usize {
    let mut buf = [0u8; 32];
    crate::runtime::sys::read_file(b"/proc/sys/vm/max_map_count\0", &mut buf)
        .ok()
        .and_then(|s| core::str::from_utf8(s).ok()?.trim().parse().ok())
        .unwrap_or(65530)
}

fn kernel_has_guard_install() -> bool {
    // Probe on a scratch page: EINVAL means the kernel predates guard regions.
    // SAFETY: a private anonymous mapping we own and unmap.
    unsafe {
        let p = libc::mmap(
            ptr::null_mut(),
            PAGE,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        if p == libc::MAP_FAILED {
            return false;
        }
        let ok = libc::madvise(p, PAGE, MADV_GUARD_INSTALL) == 0;
        libc::munmap(p, PAGE);
        ok
    }
}

pub fn guard_mode() -> GuardMode {
    if GUARD_MODE.load(Ordering::Relaxed) == GuardMode::Mprotect as u8 {
        GuardMode::Mprotect
    } else {
        GuardMode::Madvise
    }
}

pub fn default_size() -> usize {
    DEFAULT_SIZE.load(Ordering::Relaxed)
}

#[inline]
pub fn default_class() -> usize {
    DEFAULT_CLASS.load(Ordering::Relaxed)
}

pub fn in_use() -> usize {
    IN_USE.load(Ordering::Relaxed)
}

pub fn guards_used() -> usize {
    GUARDS_USED.load(Ordering::Relaxed)
}

/// Size class of a requested stack size: 0 means the default; sizes are rounded up to
/// a power of two; below `MIN_STACK` or above `MAX_STACK` is `-EINVAL`.
pub fn class_of(size: usize) -> Result<usize, i32> {
    let size = if size == 0 { default_size() } else { size };
    if !(MIN_STACK..=MAX_STACK).contains(&size) {
        return Err(-libc::EINVAL);
    }
    let rounded = size.next_power_of_two();
    Ok((rounded.trailing_zeros() - MIN_STACK.trailing_zeros()) as usize)
}

pub fn class_size(class: usize) -> usize {
    MIN_STACK << class
}

fn note_draw() {
    LAST_DRAW.store(crate::runtime::lock::nanotime(), Ordering::Relaxed);
}

/// Reserves `n` stacks of `class`: afterwards `take` cannot fail for them. Carves new
/// slots (and slabs) as needed: -ENOMEM when the address space cannot be had, -EAGAIN
/// past the guard budget or the slot limit.
///
/// With MADV_GUARD_INSTALL a reservation only needs address space (a mapped slab);
/// guards are installed when stacks are carved, a batch at a time, as goroutines
/// start. With the mprotect fallback every reserved stack is carved (and its guard
/// counted against the budget) right away, so the budget is checked at spawn.
pub fn reserve(class: usize, n: usize) -> Result<(), i32> {
    let mut pool = pool(class);
    if guard_mode() == GuardMode::Mprotect {
        while pool.hot.len() + pool.cold.len() < pool.promised + n {
            if pool.uncarved == 0 {
                map_slab(&mut pool, class)?;
            }
            carve(&mut pool, 1)?;
        }
    } else {
        while pool.hot.len() + pool.cold.len() + pool.uncarved < pool.promised + n {
            map_slab(&mut pool, class)?;
        }
    }
    pool.promised += n;
    Ok(())
}

/// Gives back `n` reservations that will not be used.
pub fn unreserve(class: usize, n: usize) {
    pool(class).promised -= n;
}

/// A stack for a goroutine about to run for the first time, which holds one
/// reservation: the hottest stack of the P's cache (the reservation then goes back to
/// the P as a credit), or one from the global pool (using up the reservation).
pub fn take(class: usize, cache: Option<(&mut Vec<Stack>, &mut u32)>) -> Stack {
    let st = match cache {
        Some((stacks, credits)) if class == default_class() => match stacks.pop() {
            Some(s) => {
                *credits += 1;
                s
            }
            None => {
                // Refill the cache too, turning some of the P's credits into stacks
                // (each is backed by a free global stack, so the pool stays sound).
                let (st, extra) = take_global(class, (*credits).min(15) as usize, stacks);
                *credits -= extra as u32;
                st
            }
        },
        _ => take_global(class, 0, &mut Vec::new()).0,
    };
    IN_USE.fetch_add(1, Ordering::Relaxed);
    st
}

/// One stack for the caller's reservation plus up to `extra` for reservations the
/// caller gives up, pushed onto `into`; returns the stack and how many extra it took.
fn take_global(class: usize, extra: usize, into: &mut Vec<Stack>) -> (Stack, usize) {
    note_draw();
    let mut pool = pool(class);
    let pop = |pool: &mut Pool| match pool.hot.pop() {
        Some(s) => {
            HOT.fetch_sub(1, Ordering::Relaxed);
            s
        }
        None => pool
            .cold
            .pop()
            .unwrap_or_else(|| crate::runtime::fatal("stack reservation broken: no free stack")),
    };
    if pool.hot.len() + pool.cold.len() < 1 + extra && pool.uncarved > 0 {
        // Only with MADV_GUARD_INSTALL are reserved slots left uncarved; a batch of
        // guards costs one system call.
        let want = (1 + extra).max(32).min(pool.uncarved);
        let _ = carve(&mut pool, want);
    }
    let avail = pool.hot.len() + pool.cold.len();
    if avail == 0 {
        crate::runtime::fatal("stack reservation broken: no free stack");
    }
    let extra = extra.min(avail - 1);
    let st = pop(&mut pool);
    for _ in 0..extra {
        let s = pop(&mut pool);
        into.push(s);
    }
    // The cache is LIFO: the stack to use now should be the warmest, so hand the
    // first (hot) one out and keep the rest.
    pool.promised -= 1 + extra;
    (st, extra)
}

/// Returns a dead goroutine's stack: to the P's cache (kept at most `CACHE_MAX`
/// long, the overflow going to the global pool) or to the global pool.
pub fn put(class: usize, st: Stack, cache: Option<&mut Vec<Stack>>) {
    IN_USE.fetch_sub(1, Ordering::Relaxed);
    if let Some(cache) = cache {
        if class == default_class() {
            cache.push(st);
            if cache.len() > CACHE_MAX {
                let keep = CACHE_MAX / 2;
                let mut pool = pool(class);
                HOT.fetch_add(cache.len() - keep, Ordering::Relaxed);
                pool.hot.extend(cache.drain(keep..));
            }
            return;
        }
    }
    pool(class).hot.push(st);
    HOT.fetch_add(1, Ordering::Relaxed);
}

/// Moves a P's cache into the global pool (when the P retires or at shutdown).
pub fn flush_cache(cache: &mut Vec<Stack>) {
    if cache.is_empty() {
        return;
    }
    let mut pool = pool(default_class());
    HOT.fetch_add(cache.len(), Ordering::Relaxed);
    pool.hot.append(cache);
}

/// Records which goroutine runs on a slot's stack (read by the overflow handler).
#[inline]
pub fn set_owner(slot: u32, g: *mut G) {
    let slab = SLABS[(slot >> SLOT_BITS) as usize].load(Ordering::Relaxed);
    // SAFETY: a stack's slab is published before the stack is handed out.
    unsafe {
        (*(*slab).owners.add(slot as usize & (SLOTS_PER_SLAB_MAX - 1))).store(g, Ordering::Relaxed);
    }
}

/// True when the pools hold more warm stacks than `POOL_KEEP` (sysmon then calls
/// `scavenge` once they have gone unused for a while).
pub fn has_surplus() -> bool {
    HOT.load(Ordering::Relaxed) > POOL_KEEP
}

/// Returns hot free stacks beyond `keep` per class to the kernel, unless a pool was
/// drawn on within `min_idle_ns` (a burst is still going on). Cheap when there is no
/// surplus; called by sysmon, and at shutdown (`keep` = 0, `min_idle_ns` = 0).
pub fn scavenge(keep: usize, min_idle_ns: i64) -> usize {
    let keep = keep.min(POOL_KEEP);
    if crate::runtime::lock::nanotime() - LAST_DRAW.load(Ordering::Relaxed) < min_idle_ns {
        return 0;
    }
    let mut released = 0;
    for class_pool in POOLS.iter() {
        let mut pool = match class_pool.try_lock() {
            Ok(p) => p,
            Err(_) => continue,
        };
        if pool.hot.len() <= keep {
            continue;
        }
        let n = pool.hot.len() - keep;
        HOT.fetch_sub(n, Ordering::Relaxed);
        let mut batch: Vec<Stack> = pool.hot.drain(..n).collect();
        drop(pool);
        // Coalesce neighbouring stacks into one range per call: the guard regions in
        // between survive MADV_DONTNEED.
        batch.sort_unstable_by_key(|s| s.lo);
        let mut i = 0;
        while i < batch.len() {
            let (lo, mut hi) = (batch[i].lo, batch[i].hi);
            let mut j = i + 1;
            while j < batch.len() && batch[j].lo == hi + GUARD {
                hi = batch[j].hi;
                j += 1;
            }
            // SAFETY: the range covers only free stacks and the guards between them.
            unsafe { libc::madvise(lo as *mut libc::c_void, hi - lo, libc::MADV_DONTNEED) };
            i = j;
        }
        released += batch.len();
        class_pool
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .cold
            .extend(batch);
    }
    released
}

/// Maps one more slab for the class (address space only).
fn map_slab(pool: &mut Pool, class: usize) -> Result<(), i32> {
    let (slab, _) = new_slab(class)?;
    // SAFETY: a freshly published slab.
    pool.uncarved += unsafe { (*slab).nslots };
    pool.slabs.push_back((slab, 0));
    Ok(())
}

/// Carves the next `n` never-used slots into the free list, installing their guards
/// (one process_madvise call for a batch, or an mprotect each, within the budget).
fn carve(pool: &mut Pool, n: usize) -> Result<(), i32> {
    let mut done = 0;
    while done < n {
        let Some(&(slab, first)) = pool.slabs.front() else {
            return Err(-libc::ENOMEM);
        };
        // SAFETY: slabs in the queue are published and never freed.
        let s = unsafe { &*slab };
        let take = (n - done).min(s.nslots - first);
        let slab_no = s.index;
        if guard_mode() == GuardMode::Mprotect {
            for k in first..first + take {
                if GUARDS_USED.load(Ordering::Relaxed) >= GUARD_BUDGET.load(Ordering::Relaxed) {
                    return Err(-libc::EAGAIN);
                }
                let base = s.base + k * s.slot_size;
                // SAFETY: the guard lies inside our slab.
                if unsafe { libc::mprotect(base as *mut libc::c_void, GUARD, libc::PROT_NONE) } != 0
                {
                    return Err(-libc::EAGAIN);
                }
                GUARDS_USED.fetch_add(1, Ordering::Relaxed);
                push_carved(pool, s, slab_no, k);
            }
        } else {
            install_guards(s.base + first * s.slot_size, s.slot_size, take);
            for k in first..first + take {
                push_carved(pool, s, slab_no, k);
            }
        }
        done += take;
        if first + take == s.nslots {
            pool.slabs.pop_front();
        } else if let Some(front) = pool.slabs.front_mut() {
            front.1 = first + take;
        }
    }
    Ok(())
}

fn push_carved(pool: &mut Pool, s: &Slab, slab_no: usize, k: usize) {
    let base = s.base + k * s.slot_size;
    let st = Stack {
        lo: base + GUARD,
        hi: base + s.slot_size,
        slot: ((slab_no << SLOT_BITS) + k) as u32,
    };
    valgrind_stack_register(st.lo, st.hi);
    pool.uncarved -= 1;
    pool.cold.push(st);
}

fn new_slab(class: usize) -> Result<(*mut Slab, usize), i32> {
    static SLAB_LOCK: Mutex<()> = Mutex::new(());
    let _guard = SLAB_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let index = NSLABS.load(Ordering::Relaxed);
    if index >= MAX_SLABS {
        return Err(-libc::EAGAIN);
    }
    let slot_size = class_size(class) + GUARD;
    let nslots = (SLAB_BYTES / slot_size).clamp(1, SLOTS_PER_SLAB_MAX);
    let bytes = nslots * slot_size;
    let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE;
    // SAFETY: fresh anonymous mappings.
    let base = unsafe {
        libc::mmap(
            ptr::null_mut(),
            bytes,
            libc::PROT_READ | libc::PROT_WRITE,
            flags,
            -1,
            0,
        )
    };
    if base == libc::MAP_FAILED {
        return Err(-libc::ENOMEM);
    }
    let owner_bytes = (nslots * core::mem::size_of::<AtomicPtr<G>>() + PAGE - 1) & !(PAGE - 1);
    // SAFETY: as above.
    let owners = unsafe {
        libc::mmap(
            ptr::null_mut(),
            owner_bytes,
            libc::PROT_READ | libc::PROT_WRITE,
            flags,
            -1,
            0,
        )
    };
    if owners == libc::MAP_FAILED {
        // SAFETY: unmapping what we just mapped; nothing else has seen it.
        unsafe { libc::munmap(base, bytes) };
        return Err(-libc::ENOMEM);
    }
    let slab = Box::into_raw(Box::new(Slab {
        index,
        base: base as usize,
        slot_size,
        nslots,
        owners: owners as *mut AtomicPtr<G>,
    }));
    SLABS[index].store(slab, Ordering::Release);
    NSLABS.store(index + 1, Ordering::Release);
    Ok((slab, index))
}

fn install_guards(base: usize, slot_size: usize, nslots: usize) {
    const BATCH: usize = 512;
    let mut iov: Vec<libc::iovec> = Vec::with_capacity(BATCH);
    let mut i = 0;
    while i < nslots {
        iov.clear();
        let end = (i + BATCH).min(nslots);
        for k in i..end {
            iov.push(libc::iovec {
                iov_base: (base + k * slot_size) as *mut libc::c_void,
                iov_len: GUARD,
            });
        }
        // SAFETY: every range lies in our slab.
        let done = unsafe {
            libc::syscall(
                libc::SYS_process_madvise,
                PIDFD_SELF,
                iov.as_ptr(),
                iov.len(),
                MADV_GUARD_INSTALL,
                0,
            )
        };
        if done != (iov.len() * GUARD) as i64 {
            for v in &iov {
                // SAFETY: as above.
                unsafe { libc::madvise(v.iov_base, GUARD, MADV_GUARD_INSTALL) };
            }
        }
        i = end;
    }
}

/// Tells valgrind (when the process runs under it) that `[lo, hi)` is a stack, so
/// memcheck does not mistake a switch onto it for a wild stack-pointer change (a few
/// no-op instructions outside valgrind). Slots are never unmapped, so they are never
/// deregistered.
fn valgrind_stack_register(lo: usize, hi: usize) {
    const VG_USERREQ_STACK_REGISTER: usize = 0x1501;
    crate::arch::valgrind_request(&[VG_USERREQ_STACK_REGISTER, lo, hi, 0, 0, 0], 0);
}

/// The goroutine that owns the slot whose guard region contains `addr`.
/// Async-signal-safe: reads only the published slab table and owner arrays.
fn guard_owner(addr: usize) -> Option<*mut G> {
    let n = NSLABS.load(Ordering::Acquire);
    for s in SLABS.iter().take(n) {
        let s = s.load(Ordering::Acquire);
        if s.is_null() {
            continue;
        }
        // SAFETY: published slabs are never freed.
        let s = unsafe { &*s };
        if addr >= s.base && addr < s.base + s.nslots * s.slot_size {
            let idx = (addr - s.base) / s.slot_size;
            let off = (addr - s.base) % s.slot_size;
            if off >= GUARD {
                return None;
            }
            // SAFETY: idx < nslots.
            let g = unsafe { (*s.owners.add(idx)).load(Ordering::Relaxed) };
            return if g.is_null() { None } else { Some(g) };
        }
    }
    None
}

// ---------------------------------------------------------------------------------
// SIGSEGV handling

static OLD_SEGV: AtomicPtr<libc::sigaction> = AtomicPtr::new(ptr::null_mut());
static SEGV_INSTALLED: AtomicU32 = AtomicU32::new(0);

fn install_segv_handler() {
    if SEGV_INSTALLED.swap(1, Ordering::AcqRel) != 0 {
        return;
    }
    // SAFETY: plain sigaction calls with valid pointers; the old action is leaked on
    // purpose (it must outlive every future fault).
    unsafe {
        let old: *mut libc::sigaction = Box::into_raw(Box::new(core::mem::zeroed()));
        let mut sa: libc::sigaction = core::mem::zeroed();
        sa.sa_sigaction = on_segv as *const () as usize;
        sa.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_NODEFER;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(libc::SIGSEGV, &sa, old);
        OLD_SEGV.store(old, Ordering::Release);
    }
}

extern "C" fn on_segv(sig: i32, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo.
    let addr = unsafe { (*info).si_addr() } as usize;
    if let Some(g) = guard_owner(addr) {
        // SAFETY: descriptors are never freed.
        let g = unsafe { &*g };
        let mut buf = [0u8; 160];
        let mut w = Writer {
            buf: &mut buf,
            len: 0,
        };
        w.put(b"libgoroutine: fatal error: stack overflow in goroutine ");
        w.num(g.id());
        w.put(b" (");
        let name = g.name_str();
        w.put(if name.is_empty() { b"unnamed" } else { name });
        w.put(b")\n");
        let _ = crate::runtime::sys::write_all(2, &w.buf[..w.len]);
        // SAFETY: signal(2) and abort(3) are async-signal-safe.
        unsafe {
            libc::signal(libc::SIGABRT, libc::SIG_DFL);
            libc::abort();
        }
    }
    chain(sig, info, ctx);
}

fn chain(sig: i32, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    let old = OLD_SEGV.load(Ordering::Acquire);
    // SAFETY: old was filled by sigaction and is never freed.
    let old = unsafe { &*old };
    let h = old.sa_sigaction;
    if h == libc::SIG_IGN || h == libc::SIG_DFL {
        // Restore the default and return: the faulting instruction runs again and
        // the kernel applies the default action (core dump), as if we were absent.
        // SAFETY: signal(2) is async-signal-safe.
        unsafe { libc::signal(sig, libc::SIG_DFL) };
        return;
    }
    // SAFETY: calling the previously installed handler the way the kernel would.
    unsafe {
        if old.sa_flags & libc::SA_SIGINFO != 0 {
            let f: extern "C" fn(i32, *mut libc::siginfo_t, *mut libc::c_void) =
                core::mem::transmute(h);
            f(sig, info, ctx);
        } else {
            let f: extern "C" fn(i32) = core::mem::transmute(h);
            f(sig);
        }
    }
}

struct Writer<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl Writer<'_> {
    fn put(&mut self, s: &[u8]) {
        for &b in s {
            if self.len < self.buf.len() {
                self.buf[self.len] = b;
                self.len += 1;
            }
        }
    }
    fn num(&mut self, mut n: i64) {
        let mut d = [0u8; 20];
        let mut i = d.len();
        if n == 0 {
            self.put(b"0");
            return;
        }
        while n > 0 && i > 0 {
            i -= 1;
            d[i] = b'0' + (n % 10) as u8;
            n /= 10;
        }
        self.put(&d[i..]);
    }
}

/// An alternate signal stack for the calling worker thread, so the SIGSEGV handler
/// can run after a goroutine has exhausted its own stack.
pub struct AltStack {
    base: *mut libc::c_void,
    size: usize,
}

impl AltStack {
    pub fn install() -> Option<AltStack> {
        let size = 64 << 10;
        // SAFETY: a fresh anonymous mapping, registered with sigaltstack.
        unsafe {
            let base = libc::mmap(
                ptr::null_mut(),
                size,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            );
            if base == libc::MAP_FAILED {
                return None;
            }
            let ss = libc::stack_t {
                ss_sp: base,
                ss_flags: 0,
                ss_size: size,
            };
            if libc::sigaltstack(&ss, ptr::null_mut()) != 0 {
                libc::munmap(base, size);
                return None;
            }
            Some(AltStack { base, size })
        }
    }
}

impl Drop for AltStack {
    fn drop(&mut self) {
        // SAFETY: disable before unmapping; this thread installed it.
        unsafe {
            let ss = libc::stack_t {
                ss_sp: ptr::null_mut(),
                ss_flags: libc::SS_DISABLE,
                ss_size: 0,
            };
            libc::sigaltstack(&ss, ptr::null_mut());
            libc::munmap(self.base, self.size);
        }
    }
}
