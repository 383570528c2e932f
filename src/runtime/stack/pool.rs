//! The stack allocator: free stacks per size class, per-P caches, reservations, and
//! the return of surplus stacks to the kernel.
//!
//! A P's cache keeps a freed default-size stack together with the descriptor of the
//! goroutine that exited on it (an `Entry`): a spawn on that P takes both at once,
//! and the exit puts both back, so a spawn-exit cycle makes one take and one put on
//! one owner-only list, with no reservation, no shared counter and the stack's and
//! the descriptor's cache lines still warm (LIFO). A spawn that finds the cache empty
//! gets a bare descriptor, and its stack when it first *runs*, the most recently freed
//! one of its P: a burst of spawned goroutines then runs on a handful of stacks that
//! stay in cache and TLB, instead of touching a fresh page per goroutine. So that
//! running can never fail, such a spawn *reserves* a stack first (failing with
//! -ENOMEM/-EAGAIN right there): per size class, the global pool keeps
//! `free >= promised`, where `promised` counts reservations not yet turned into a
//! stack. Ps take reservations 32 at a time as plain counters (`credits`), so spawn
//! touches no shared cache line; stacks in a P's cache (bounded) do not back
//! reservations.
//!
//! "Stacks in use" (`gr_stats`) is counted without a shared counter per goroutine:
//! `OUTSIDE` counts the stacks out of the global pools (changed a batch at a time,
//! under a pool's lock), and each P's cache publishes its length in a relaxed mirror;
//! in use = outside - cached.
//!
//! Slots are carved from slabs lazily: with `MADV_GUARD_INSTALL` a reservation needs
//! only address space, and guards are installed a batch at a time as goroutines
//! start; with the `mprotect` fallback every reserved stack is carved (its guard
//! counted against the budget) at once, so that spawn is what fails past the budget.
//!
//! Idle stacks go back, a tier at a time, so that a burst does not pin memory: a P's
//! cache (hot, owner-only) -> the global pool's `hot` list (warm, under a mutex) ->
//! its `cold` list (pages returned to the kernel with `MADV_DONTNEED`). Each tier
//! keeps what it drew on during the last period (`IDLE_PERIOD_NS`, a second) and
//! passes the rest down: it records the fewest stacks it held since its last trim
//! (its low-water mark), and as the list is used LIFO, that many at the bottom sat
//! unused the whole period. A steady load keeps its working set warm and bursts a
//! second apart reuse warm stacks, yet after a burst RSS falls back within a few
//! seconds, also while the P it ran on stays busy with other work.
//!
//! A shortage (a reservation refused: the guard budget or the address space used up)
//! turns this slack off until the pool has a cache's worth of free stacks beyond its
//! promises again (`shortage`): the stacks and reservations that Ps keep to
//! themselves cannot back a reservation made elsewhere, so with a small budget they
//! could make a spawn fail while no goroutine runs at all (`tests/c/guard_budget`:
//! the stacks of 200 goroutines that had just exited, in a busy P's cache, and its
//! credits, left a plain thread's spawn -EAGAIN about 1 run in 10). Meanwhile each exit
//! hands its P's cached stacks and reservations back, and a P takes reservations one
//! at a time.
//!
//! Who trims: a P trims its own cache, at its periodic look around (every 61
//! schedules) once a period has passed on the coarse clock; the cache stays
//! owner-only and spawn and exit pay one compare for the low-water mark, nothing
//! shared. A P that goes idle hands its whole cache to the pool at once (the
//! scheduler's `flush_p_caches`). sysmon trims the global pools (`scavenge`).

use core::ptr;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};

use super::guard::{self, GuardMode};
use super::slab::{self, Slab};
use super::{default_class, Stack, GUARD, NCLASSES};
use crate::runtime::g::{GPtr, G};

/// A tier passes down the stacks it did not draw on for this long.
const IDLE_PERIOD_NS: i64 = 1_000_000_000;
/// Reservations a P takes from (and gives back to) the global pool at a time.
pub(crate) const CREDIT_BATCH: u32 = 32;
/// Free stacks a P keeps for reuse.
const CACHE_MAX: usize = 256;

/// Stacks out of the global pools: given to goroutines, or in a P's cache.
static OUTSIDE: AtomicUsize = AtomicUsize::new(0);
/// Stacks in the global pools' `hot` lists (a hint for sysmon).
static HOT: AtomicUsize = AtomicUsize::new(0);
/// Set when a reservation is refused, cleared when a pool has `CACHE_MAX` free stacks
/// beyond its promises again (see the top of this file).
static SHORTAGE: AtomicBool = AtomicBool::new(false);

/// True while stacks are short: Ps then keep no stacks or reservations to themselves
/// (their owners give them back at each exit, and reserve one at a time).
#[inline(always)]
pub fn shortage() -> bool {
    SHORTAGE.load(Ordering::Relaxed)
}

struct Pool {
    /// Free stacks whose pages may still be committed (warm), most recently freed
    /// last.
    hot: Vec<Stack>,
    /// The fewest stacks `hot` held since `trimmed_at`: that many at its bottom went
    /// unused all the while.
    hot_low: usize,
    trimmed_at: i64,
    /// Free stacks whose pages were returned to the kernel, or never touched.
    cold: Vec<Stack>,
    /// Reservations not yet turned into stacks; always <= hot + cold + uncarved
    /// (<= hot + cold with the mprotect fallback).
    promised: usize,
    /// Mapped slabs with slots not yet carved (guards not yet installed), oldest
    /// first, each with its next uncarved slot.
    slabs: VecDeque<(&'static Slab, usize)>,
    /// Uncarved slots in `slabs`.
    uncarved: usize,
}

static POOLS: [Mutex<Pool>; NCLASSES] = [const {
    Mutex::new(Pool {
        hot: Vec::new(),
        hot_low: 0,
        trimmed_at: 0,
        cold: Vec::new(),
        promised: 0,
        slabs: VecDeque::new(),
        uncarved: 0,
    })
}; NCLASSES];

fn pool(class: usize) -> MutexGuard<'static, Pool> {
    POOLS[class].lock().unwrap_or_else(|e| e.into_inner())
}

/// Goroutine stacks in use, given the caches of every P (each read through its
/// relaxed mirror: exact once the runtime is quiet, a snapshot otherwise).
///
/// # Safety
/// Each pointer is a live `Cache` (a P's; Ps are never freed).
pub unsafe fn in_use(caches: impl Iterator<Item = *const Cache>) -> usize {
    let mut cached = 0usize;
    for c in caches {
        // SAFETY: our contract; only the atomic mirror is read, never the owner's Vec.
        cached += unsafe { (*ptr::addr_of!((*c).len_mirror)).load(Ordering::Relaxed) };
    }
    OUTSIDE.load(Ordering::Relaxed).saturating_sub(cached)
}

/// One free stack in a P's cache, with the descriptor of the goroutine that last ran
/// on it when that one exited on this P (null: a bare stack).
#[derive(Clone, Copy)]
pub struct Entry {
    pub stack: Stack,
    pub g: *mut G,
}

/// A P's free default-size stacks (owner-only: no lock; `len_mirror` is for other
/// threads' statistics). Most recently freed last, and handed out from the end
/// (LIFO), so that the next goroutine runs on the stack whose pages are most likely
/// in cache.
pub struct Cache {
    entries: Vec<Entry>,
    /// The fewest entries held since `trimmed_at` (see the top of this file).
    low: usize,
    trimmed_at: i64,
    /// `entries.len()`, stored by the owner at each change (a plain store).
    len_mirror: AtomicUsize,
}

impl Cache {
    pub const fn new() -> Cache {
        Cache {
            entries: Vec::new(),
            low: 0,
            trimmed_at: 0,
            len_mirror: AtomicUsize::new(0),
        }
    }

    #[inline(always)]
    fn mirror(&self) {
        self.len_mirror.store(self.entries.len(), Ordering::Relaxed);
    }

    /// The most recently freed entry (spawn's one take), or None.
    #[inline(always)]
    pub fn pop(&mut self) -> Option<Entry> {
        let e = self.entries.pop()?;
        let len = self.entries.len();
        self.low = self.low.min(len);
        self.len_mirror.store(len, Ordering::Relaxed);
        Some(e)
    }

    /// Keeps a goroutine's stack and descriptor when it exits (its one put), while
    /// there is room: false when full (the caller frees both the slow way).
    #[inline(always)]
    pub fn push_exited(&mut self, stack: Stack, g: *mut G) -> bool {
        if self.entries.len() >= CACHE_MAX {
            return false;
        }
        self.entries.push(Entry { stack, g });
        self.mirror();
        true
    }

    /// Moves the `n` oldest stacks to the global pool (their descriptors to the
    /// global free list).
    fn give_back(&mut self, n: usize) {
        if n == 0 {
            return;
        }
        let mut gs = Vec::new();
        {
            let mut pool = pool(default_class());
            for e in self.entries.drain(..n) {
                pool.hot.push(e.stack);
                if !e.g.is_null() {
                    gs.push(GPtr(e.g));
                }
            }
            HOT.fetch_add(n, Ordering::Relaxed);
            OUTSIDE.fetch_sub(n, Ordering::Relaxed);
        }
        crate::runtime::g::free_batch(gs);
        self.low = self.low.saturating_sub(n);
        self.mirror();
    }
}

impl Default for Cache {
    fn default() -> Cache {
        Cache::new()
    }
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
    if let Err(e) = make_room(&mut pool, class, n) {
        SHORTAGE.store(true, Ordering::Relaxed);
        return Err(e);
    }
    pool.promised += n;
    if shortage() && pool.hot.len() + pool.cold.len() >= pool.promised + CACHE_MAX {
        SHORTAGE.store(false, Ordering::Relaxed);
    }
    Ok(())
}

/// Carves (or maps) until `pool` can back `n` more reservations.
fn make_room(pool: &mut Pool, class: usize, n: usize) -> Result<(), i32> {
    if guard::guard_mode() == GuardMode::Mprotect {
        while pool.hot.len() + pool.cold.len() < pool.promised + n {
            if pool.uncarved == 0 {
                map_slab(pool, class)?;
            }
            carve(pool, 1)?;
        }
    } else {
        while pool.hot.len() + pool.cold.len() + pool.uncarved < pool.promised + n {
            map_slab(pool, class)?;
        }
    }
    Ok(())
}

/// Gives back `n` reservations that will not be used.
pub fn unreserve(class: usize, n: usize) {
    pool(class).promised -= n;
}

/// A stack for a goroutine about to run for the first time, which holds one
/// reservation: the hottest stack of the P's cache (the reservation then goes back to
/// the P as a credit), or one from the global pool (using up the reservation). When
/// the cache entry came with a descriptor, that free descriptor is returned too (the
/// caller keeps it with its free ones).
pub fn take(class: usize, cache: Option<(&mut Cache, &mut u32)>) -> (Stack, *mut G) {
    match cache {
        Some((cache, credits)) if class == default_class() => match cache.pop() {
            Some(e) => {
                *credits += 1;
                (e.stack, e.g)
            }
            None => {
                // Refill the cache too, turning some of the P's credits into stacks
                // (each is backed by a free global stack, so the pool stays sound).
                let (st, extra) =
                    take_global(class, (*credits).min(15) as usize, &mut cache.entries);
                cache.mirror();
                *credits -= extra as u32;
                (st, ptr::null_mut())
            }
        },
        _ => (take_global(class, 0, &mut Vec::new()).0, ptr::null_mut()),
    }
}

/// One stack for the caller's reservation plus up to `extra` for reservations the
/// caller gives up, pushed onto `into` (bare); returns the stack and how many extra it
/// took.
fn take_global(class: usize, extra: usize, into: &mut Vec<Entry>) -> (Stack, usize) {
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
        into.push(Entry {
            stack: s,
            g: ptr::null_mut(),
        });
    }
    OUTSIDE.fetch_add(1 + extra, Ordering::Relaxed);
    // The cache is LIFO: the stack to use now should be the warmest, so hand the
    // first (hot) one out and keep the rest.
    pool.hot_low = pool.hot_low.min(pool.hot.len());
    pool.promised -= 1 + extra;
    (st, extra)
}

/// Returns a dead goroutine's stack that its P's cache did not keep with its
/// descriptor (`Cache::push_exited`): to the P's cache as a bare stack (past
/// `CACHE_MAX` its older half goes to the global pool), or to the global pool.
pub fn put(class: usize, st: Stack, cache: Option<&mut Cache>) {
    if let Some(cache) = cache {
        if class == default_class() {
            cache.entries.push(Entry {
                stack: st,
                g: ptr::null_mut(),
            });
            if cache.entries.len() > CACHE_MAX {
                cache.give_back(cache.entries.len() - CACHE_MAX / 2);
            }
            cache.mirror();
            return;
        }
    }
    let mut pool = pool(class);
    pool.hot.push(st);
    HOT.fetch_add(1, Ordering::Relaxed);
    OUTSIDE.fetch_sub(1, Ordering::Relaxed);
}

/// Moves a P's whole cache into the global pool (when the P goes idle or retires,
/// and at shutdown).
pub fn flush_cache(cache: &mut Cache) {
    cache.give_back(cache.entries.len());
}

/// Called by the P that owns `cache` now and then (its periodic look around): once a
/// period has passed, the stacks it did not draw on during it go to the global pool.
/// A load of the coarse clock and a compare otherwise.
#[inline]
pub fn trim_cache(cache: &mut Cache) {
    let now = crate::runtime::lock::coarse_now();
    if now - cache.trimmed_at >= IDLE_PERIOD_NS {
        trim_cache_now(cache, now);
    }
}

#[cold]
fn trim_cache_now(cache: &mut Cache, now: i64) {
    cache.give_back(cache.low.min(cache.entries.len()));
    cache.low = cache.entries.len();
    cache.trimmed_at = now;
}

/// True when the global pools hold warm free stacks (sysmon then calls `scavenge`
/// every period, and sleeps no longer than one while the runtime is idle).
pub fn has_surplus() -> bool {
    HOT.load(Ordering::Relaxed) > 0
}

/// Returns to the kernel the warm free stacks that no one drew on for a whole
/// `idle_ns` (in each pool whose last trim is that old). Cheap when there is nothing
/// to do; called by sysmon. Returns how many stacks it released.
pub fn scavenge(idle_ns: i64) -> usize {
    let now = crate::runtime::lock::nanotime();
    let mut released = 0;
    for class_pool in POOLS.iter() {
        // A pool busy right now is in use: skip it this time.
        let Ok(mut pool) = class_pool.try_lock() else {
            continue;
        };
        if now - pool.trimmed_at < idle_ns {
            continue;
        }
        let n = pool.hot_low.min(pool.hot.len());
        pool.trimmed_at = now;
        pool.hot_low = pool.hot.len() - n;
        released += release_hot(class_pool, pool, n);
    }
    released
}

/// Returns every warm free stack to the kernel (at shutdown, once no P holds any).
pub fn release_all() {
    for class_pool in POOLS.iter() {
        let pool = class_pool.lock().unwrap_or_else(|e| e.into_inner());
        let n = pool.hot.len();
        release_hot(class_pool, pool, n);
    }
}

/// Moves the `n` oldest stacks of a pool's `hot` list to its `cold` list, giving
/// their pages back to the kernel with the pool's lock released meanwhile. Returns `n`.
fn release_hot(class_pool: &Mutex<Pool>, mut pool: MutexGuard<'_, Pool>, n: usize) -> usize {
    if n == 0 {
        return 0;
    }
    HOT.fetch_sub(n, Ordering::Relaxed);
    let mut batch: Vec<Stack> = pool.hot.drain(..n).collect();
    pool.hot_low = pool.hot_low.min(pool.hot.len());
    drop(pool);
    release_pages(&mut batch);
    class_pool
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .cold
        .extend(batch);
    n
}

/// Gives free stacks' pages back to the kernel (`MADV_DONTNEED`), one call per run of
/// neighbouring stacks: the guard regions in between survive it.
fn release_pages(batch: &mut [Stack]) {
    batch.sort_unstable_by_key(|s| s.lo);
    let mut i = 0;
    while i < batch.len() {
        let (lo, mut hi) = (batch[i].lo, batch[i].hi);
        let mut j = i + 1;
        while j < batch.len() && batch[j].lo == hi + GUARD {
            hi = batch[j].hi;
            j += 1;
        }
        // SAFETY: the range covers only free stacks (nobody runs on them) and the
        // guards between them, all inside one of our slabs.
        unsafe { libc::madvise(lo as *mut libc::c_void, hi - lo, libc::MADV_DONTNEED) };
        i = j;
    }
}

/// Maps one more slab for the class (address space only).
fn map_slab(pool: &mut Pool, class: usize) -> Result<(), i32> {
    let slab = slab::map(class)?;
    pool.uncarved += slab.nslots;
    pool.slabs.push_back((slab, 0));
    Ok(())
}

/// Carves the next `n` never-used slots into the free list, installing their guards
/// (one process_madvise call for a batch, or an mprotect each, within the budget).
fn carve(pool: &mut Pool, n: usize) -> Result<(), i32> {
    let mut done = 0;
    while done < n {
        let Some(&(s, first)) = pool.slabs.front() else {
            return Err(-libc::ENOMEM);
        };
        let take = if guard::guard_mode() == GuardMode::Mprotect {
            // One at a time, so that a slot is carved exactly when its guard is.
            guard::protect_one(s.guard_base(first))?;
            1
        } else {
            let take = (n - done).min(s.nslots - first);
            guard::install_batch(s.guard_base(first), s.slot_size, take);
            take
        };
        for k in first..first + take {
            push_carved(pool, s, k);
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

fn push_carved(pool: &mut Pool, s: &Slab, k: usize) {
    let st = s.stack(k);
    slab::valgrind_stack_register(&st);
    pool.uncarved -= 1;
    pool.cold.push(st);
}
