//! Address space for stacks: slabs of slots, and who ran on each slot.
//!
//! A slab is one `mmap` of up to 4,096 slots of one size class (about 1 GiB of address
//! space, `MAP_NORESERVE`), so a million stacks cost a few hundred memory-map entries,
//! not a million, and the kernel commits a page only when a goroutine touches it.
//! Slabs are published in a fixed table and never unmapped: a slot number
//! (`slab index << SLOT_BITS | slot`) then names its slab with a shift, and a pointer
//! into a slab stays valid for the life of the process, which is what lets the
//! SIGSEGV handler read the table without a lock.
//!
//! Each slab has a parallel array of owner pointers (the goroutine a slot was last
//! given to), written when a stack is attached and read only to name a goroutine in a
//! fault message. It is a separate mapping so that touching it commits no stack page.

use core::ptr;
use core::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};
use std::sync::Mutex;

use super::{class_size, map_anon, Stack, GUARD, PAGE};
use crate::runtime::g::G;

const SLOT_BITS: u32 = 12;
const SLOTS_PER_SLAB_MAX: usize = 1 << SLOT_BITS;
const MAX_SLABS: usize = 4096;
/// Slab reservation target: a slab holds as many slots as fit in this (at least one).
const SLAB_BYTES: usize = 1 << 30;

pub(super) struct Slab {
    /// Its index in `SLABS`.
    index: usize,
    pub(super) base: usize,
    pub(super) slot_size: usize,
    pub(super) nslots: usize,
    /// The goroutine each slot's stack was last given to (for fault messages).
    owners: *mut AtomicPtr<G>,
}

// SAFETY: a slab's fields never change after it is published, and its owner array
// is read and written only through atomics.
unsafe impl Sync for Slab {}

impl Slab {
    /// Slot `k`'s stack (its usable range, above the guard).
    pub(super) fn stack(&self, k: usize) -> Stack {
        let base = self.guard_base(k);
        Stack {
            lo: base + GUARD,
            hi: base + self.slot_size,
            slot: ((self.index << SLOT_BITS) + k) as u32,
        }
    }

    /// Where slot `k` (and its guard) begins.
    pub(super) fn guard_base(&self, k: usize) -> usize {
        self.base + k * self.slot_size
    }
}

static SLABS: [AtomicPtr<Slab>; MAX_SLABS] = [const { AtomicPtr::new(ptr::null_mut()) }; MAX_SLABS];
static NSLABS: AtomicUsize = AtomicUsize::new(0);

/// Maps a new slab for `class` (address space only) and publishes it. -EAGAIN past
/// the slab limit, -ENOMEM when the address space cannot be had.
pub(super) fn map(class: usize) -> Result<&'static Slab, i32> {
    static SLAB_LOCK: Mutex<()> = Mutex::new(());
    let _guard = SLAB_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let index = NSLABS.load(Ordering::Relaxed);
    if index >= MAX_SLABS {
        return Err(-libc::EAGAIN);
    }
    let slot_size = class_size(class) + GUARD;
    let nslots = (SLAB_BYTES / slot_size).clamp(1, SLOTS_PER_SLAB_MAX);
    let bytes = nslots * slot_size;
    let base = map_anon(bytes).ok_or(-libc::ENOMEM)?;
    let owner_bytes = (nslots * core::mem::size_of::<AtomicPtr<G>>() + PAGE - 1) & !(PAGE - 1);
    let Some(owners) = map_anon(owner_bytes) else {
        // SAFETY: unmapping what we just mapped; nothing else has seen it.
        unsafe { libc::munmap(base as *mut libc::c_void, bytes) };
        return Err(-libc::ENOMEM);
    };
    let slab: &'static Slab = Box::leak(Box::new(Slab {
        index,
        base,
        slot_size,
        nslots,
        owners: owners as *mut AtomicPtr<G>,
    }));
    SLABS[index].store(slab as *const Slab as *mut Slab, Ordering::Release);
    NSLABS.store(index + 1, Ordering::Release);
    Ok(slab)
}

/// Records which goroutine runs on a slot's stack (read by the fault handler).
#[inline]
pub fn set_owner(slot: u32, g: *mut G) {
    let slab = SLABS[(slot >> SLOT_BITS) as usize].load(Ordering::Relaxed);
    // SAFETY: a stack's slab is published before the stack is handed out, never
    // freed, and its owner array has a word for every slot number it hands out.
    unsafe {
        (*(*slab).owners.add(slot as usize & (SLOTS_PER_SLAB_MAX - 1))).store(g, Ordering::Relaxed);
    }
}

/// Where an address lies among the stacks.
pub(super) enum Place {
    /// In the guard below a slot's stack, with the goroutine that slot was last
    /// given to (null: never given out).
    Guard(*mut G),
    /// In the usable part of a slot's stack, with the same goroutine.
    Stack(*mut G),
    /// Outside every slab.
    Elsewhere,
}

/// The slot containing `addr`, and the goroutine that slot was last given to.
/// Async-signal-safe: reads only the published slab table and owner arrays.
pub(super) fn place_of(addr: usize) -> Place {
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
            // SAFETY: idx < nslots, and the owner array has nslots words.
            let g = unsafe { (*s.owners.add(idx)).load(Ordering::Relaxed) };
            return if (addr - s.base) % s.slot_size < GUARD {
                Place::Guard(g)
            } else {
                Place::Stack(g)
            };
        }
    }
    Place::Elsewhere
}

/// Tells valgrind (when the process runs under it) that `[lo, hi)` is a stack, so
/// memcheck does not mistake a switch onto it for a wild stack-pointer change (a few
/// no-op instructions outside valgrind). Slots are never unmapped, so they are never
/// deregistered.
pub(super) fn valgrind_stack_register(st: &Stack) {
    const VG_USERREQ_STACK_REGISTER: usize = 0x1501;
    crate::arch::valgrind_request(&[VG_USERREQ_STACK_REGISTER, st.lo, st.hi, 0, 0, 0], 0);
}
