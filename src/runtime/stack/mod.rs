//! Goroutine stacks: where they come from, what guards them, and what happens when a
//! goroutine leaves its own.
//!
//! A stack is a slot `[guard (64 KiB)][usable stack (the size class)]` carved from a
//! large slab of address space; the stack grows down towards its guard. The code is in
//! four parts, each with its own reasons written at its top:
//! - `slab`: address space. Slabs of up to 4,096 slots reserved with one `mmap` each
//!   (`MAP_NORESERVE`: the kernel commits pages only as they are touched), a slot
//!   numbering that finds a slot's slab without a search, and for each slot the
//!   goroutine that last ran on it (for fault messages). Slabs are never unmapped.
//! - `pool`: the allocator. Free stacks per size class in a global pool, per-P caches
//!   so that spawn and exit take no lock, reservations so that spawn fails (and not
//!   running), and the return of idle stacks: from a P's cache to the pool, from the
//!   pool to the kernel.
//! - `guard`: guard regions, by `MADV_GUARD_INSTALL` (no memory-map entry) or by
//!   `mprotect` within a budget that keeps `vm.max_map_count` for the rest of the
//!   process.
//! - `overflow`: the SIGSEGV handler on each worker's alternate signal stack, which
//!   turns a fault in a guard into "stack overflow in goroutine N (name)", and the
//!   check at every switch that a goroutine still runs on its own stack (a `longjmp`
//!   out of it is caught there).
//!
//! This file holds what all four share: the sizes, the size classes, `Stack`, and the
//! one-time setup from the environment (`GR_STACK_SIZE`, `GR_GUARD`,
//! `GR_GUARD_BUDGET`).

mod guard;
mod overflow;
mod pool;
mod slab;

use core::ptr;
use core::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Once;

pub use guard::{guard_mode, guards_used, GuardMode};
pub use overflow::{check_on_own_stack, AltStack};
pub(crate) use pool::CREDIT_BATCH;
pub use pool::{
    flush_cache, has_surplus, in_use, put, release_all, reserve, scavenge, shortage, take,
    trim_cache, unreserve, Cache, Entry,
};
pub use slab::set_owner;

const PAGE: usize = 4096;
/// Guard region below each stack. Large, so that a C frame with big locals cannot
/// jump over it into the neighbouring stack; it costs no memory.
const GUARD: usize = 64 << 10;
/// The smallest stack: runtime calls may use up to 8 KiB of the calling goroutine's
/// stack (they run on it; only the worker's own loop runs on its thread stack).
const MIN_STACK: usize = 32 << 10;
const MAX_STACK: usize = 1 << 30;
const DEFAULT_STACK: usize = 256 << 10;
/// Size classes: 32 KiB << 0..=15.
const NCLASSES: usize = 16;

/// A stack: usable range `[lo, hi)` and its global slot number.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Stack {
    pub lo: usize,
    pub hi: usize,
    pub slot: u32,
}

static DEFAULT_SIZE: AtomicUsize = AtomicUsize::new(DEFAULT_STACK);
static DEFAULT_CLASS: AtomicUsize = AtomicUsize::new(4);
static INIT: Once = Once::new();

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
        guard::init(
            std::env::var("GR_GUARD").ok().as_deref() == Some("mprotect"),
            env_usize("GR_GUARD_BUDGET"),
        );
        overflow::install_segv_handler();
    });
}

/// A size from the environment: a number of bytes, with an optional K or M suffix.
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

fn default_size() -> usize {
    DEFAULT_SIZE.load(Ordering::Relaxed)
}

#[inline]
pub fn default_class() -> usize {
    DEFAULT_CLASS.load(Ordering::Relaxed)
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

fn class_size(class: usize) -> usize {
    MIN_STACK << class
}

/// A fresh private anonymous read-write mapping of `bytes`, committed lazily (stack
/// slabs, their owner arrays, alternate signal stacks, the guard probe's page).
fn map_anon(bytes: usize) -> Option<usize> {
    // SAFETY: a new anonymous mapping at an address of the kernel's choosing touches
    // nothing that exists.
    let p = unsafe {
        libc::mmap(
            ptr::null_mut(),
            bytes,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    (p != libc::MAP_FAILED).then_some(p as usize)
}
