//! Guard regions: the 64 KiB below each stack that must fault when touched.
//!
//! Two mechanisms, chosen once at start:
//! - `MADV_GUARD_INSTALL` (Linux 6.13+): the kernel marks the range as a guard inside
//!   the slab's one mapping, so guards cost no memory-map entry at all. Installed a
//!   batch at a time with one `process_madvise` call (falling back to one `madvise`
//!   per guard where that call is refused), as slots are carved.
//! - `mprotect(PROT_NONE)` where the kernel lacks it, under valgrind (below), or with
//!   `GR_GUARD=mprotect`: each guard splits the slab's mapping, and the process has
//!   only `vm.max_map_count` (65,530 by default) entries for everything, malloc and
//!   thread stacks included. So guards are counted against a budget (a quarter of
//!   `vm.max_map_count`, or `GR_GUARD_BUDGET`), and past it carving fails with
//!   -EAGAIN, which spawn returns, instead of the next malloc failing somewhere else.
//!
//! A guard is installed once, when its slot is first carved, and stays for the life of
//! the process (`MADV_DONTNEED` on a free stack leaves it in place).

use core::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

use super::{map_anon, GUARD, PAGE};

/// `madvise` advice and pidfd values not yet in every libc.
const MADV_GUARD_INSTALL: i32 = 102;
const PIDFD_SELF: i32 = -10000;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub enum GuardMode {
    Madvise = 1,
    Mprotect = 2,
}

static GUARD_MODE: AtomicU8 = AtomicU8::new(0);
static GUARDS_USED: AtomicUsize = AtomicUsize::new(0);
static GUARD_BUDGET: AtomicUsize = AtomicUsize::new(0);

/// Chooses the mechanism (`mprotect` when forced, under valgrind, or when the kernel
/// lacks guard regions) and the budget for `mprotect` guards (`budget`, or a quarter
/// of `vm.max_map_count`; under valgrind at most `VALGRIND_GUARDS`).
pub(super) fn init(force_mprotect: bool, budget: Option<usize>) {
    let valgrind = under_valgrind();
    let mode = if !force_mprotect && !valgrind && kernel_has_guard_install() {
        GuardMode::Madvise
    } else {
        GuardMode::Mprotect
    };
    GUARD_MODE.store(mode as u8, Ordering::Relaxed);
    let mut budget = budget.unwrap_or_else(|| max_map_count() / 4);
    if valgrind {
        budget = budget.min(VALGRIND_GUARDS);
    }
    GUARD_BUDGET.store(budget, Ordering::Relaxed);
}

/// valgrind (3.19, Debian 12's) passes `MADV_GUARD_INSTALL` to the kernel without
/// knowing what it did, and takes a guard for readable memory: memcheck's leak check
/// at exit reads every word of every guard, each read a fault it catches and steps
/// over (tests/c/guard_valgrind's 2,000 goroutines: 41 s to end, 2 s with `mprotect`
/// guards), and tests/c's latency programs woke up to seconds late. `mprotect` guards it knows.
/// Each splits a mapping, which costs entries in a fixed table of valgrind's, and it
/// dies of that (`VG_N_SEGMENTS is too low`) between 12,000 and 16,000 guards: past
/// `VALGRIND_GUARDS`, spawn says -EAGAIN instead.
const VALGRIND_GUARDS: usize = 11_000;

fn under_valgrind() -> bool {
    const VG_USERREQ_RUNNING_ON_VALGRIND: usize = 0x1001;
    crate::arch::valgrind_request(&[VG_USERREQ_RUNNING_ON_VALGRIND, 0, 0, 0, 0, 0], 0) != 0
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
    let Some(p) = map_anon(PAGE) else {
        return false;
    };
    // SAFETY: a page we just mapped, that nothing else knows of, unmapped after.
    unsafe {
        let ok = libc::madvise(p as *mut libc::c_void, PAGE, MADV_GUARD_INSTALL) == 0;
        libc::munmap(p as *mut libc::c_void, PAGE);
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

/// `mprotect` guards installed (0 with `MADV_GUARD_INSTALL`).
pub fn guards_used() -> usize {
    GUARDS_USED.load(Ordering::Relaxed)
}

/// Makes the guard at `base` (the start of a slot in a slab) fault, with `mprotect`,
/// counted against the budget: -EAGAIN past it (or if the kernel refuses).
pub(super) fn protect_one(base: usize) -> Result<(), i32> {
    if GUARDS_USED.load(Ordering::Relaxed) >= GUARD_BUDGET.load(Ordering::Relaxed) {
        return Err(-libc::EAGAIN);
    }
    // SAFETY: the range is the guard of a slot in one of our slabs; no stack is there.
    if unsafe { libc::mprotect(base as *mut libc::c_void, GUARD, libc::PROT_NONE) } != 0 {
        return Err(-libc::EAGAIN);
    }
    GUARDS_USED.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// Installs `MADV_GUARD_INSTALL` guards at the start of `nslots` consecutive slots of
/// `slot_size` bytes from `base`, in batches of one `process_madvise` call.
pub(super) fn install_batch(base: usize, slot_size: usize, nslots: usize) {
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
        // SAFETY: every range is a guard of a slot in one of our slabs, and the iovec
        // array outlives the call.
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
                // SAFETY: as above, one range at a time.
                unsafe { libc::madvise(v.iov_base, GUARD, MADV_GUARD_INSTALL) };
            }
        }
        i = end;
    }
}
