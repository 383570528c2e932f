//! The stack allocator: free stacks per size class, per-P caches, reservations, and
//! the return of surplus stacks to the kernel.
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
//! Slots are carved from slabs lazily: with `MADV_GUARD_INSTALL` a reservation needs
//! only address space, and guards are installed a batch at a time as goroutines
//! start; with the `mprotect` fallback every reserved stack is carved (its guard
//! counted against the budget) at once, so that spawn is what fails past the budget.
//!
//! A surplus beyond `POOL_KEEP` hot stacks that nobody has drawn on for a second is
//! returned to the kernel (`MADV_DONTNEED`, by sysmon), so RSS falls back after a
//! burst while back-to-back bursts reuse warm stacks.

use core::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};

use super::guard::{self, GuardMode};
use super::slab::{self, Slab};
use super::{default_class, Stack, GUARD, NCLASSES};

/// Hot free stacks a size class keeps before returning the rest to the kernel.
const POOL_KEEP: usize = 4096;
/// Reservations a P takes from (and gives back to) the global pool at a time.
pub(crate) const CREDIT_BATCH: u32 = 32;
/// Free stacks a P keeps for reuse.
const CACHE_MAX: usize = 256;

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
    slabs: VecDeque<(&'static Slab, usize)>,
    /// Uncarved slots in `slabs`.
    uncarved: usize,
}

static POOLS: [Mutex<Pool>; NCLASSES] = [const {
    Mutex::new(Pool {
        hot: Vec::new(),
        cold: Vec::new(),
        promised: 0,
        slabs: VecDeque::new(),
        uncarved: 0,
    })
}; NCLASSES];

fn pool(class: usize) -> MutexGuard<'static, Pool> {
    POOLS[class].lock().unwrap_or_else(|e| e.into_inner())
}

pub fn in_use() -> usize {
    IN_USE.load(Ordering::Relaxed)
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
    if guard::guard_mode() == GuardMode::Mprotect {
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
        release_pages(&mut batch);
        released += batch.len();
        class_pool
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .cold
            .extend(batch);
    }
    released
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
