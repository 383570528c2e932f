//! Cache hints for the scheduler's hot paths: bring the lines of an object that the
//! next operation will touch into this CPU's cache while the current one still runs.
//!
//! Two kinds, because they pay off in different places:
//! - `for_read`: the descriptor a run queue's next `pop` will return (`runq.rs`); the
//!   switch to it reads it first.
//! - `for_write`: the free descriptor a P's next spawn will fill (`g::alloc`). Under
//!   a spawner on one processor and its goroutines exiting on another, each free
//!   descriptor was last written by the other CPU, and the spawn's first store to it
//!   waited for its lines. `prefetchw` asks for them in the state a store needs;
//!   where the CPU lacks it (no PRFCHW in CPUID, checked once) a read prefetch does.
//!
//! A prefetch never faults and changes nothing a program can see, so the address may
//! be anything (a queue slot a thief has taken meanwhile). Under loom, and off
//! x86_64, these do nothing.
#![allow(unexpected_cfgs)] // `loom` is set by RUSTFLAGS for the model (as in runq.rs)

/// Every 64-byte line that `[x, x + span)` touches (`span` of at least 1).
#[inline(always)]
fn each_line(x: *const u8, span: usize, mut hint: impl FnMut(*const u8)) {
    for off in (0..span).step_by(64) {
        hint(x.wrapping_add(off));
    }
    hint(x.wrapping_add(span - 1));
}

/// Prefetches the first `span` bytes (at least 1) of `*x` for reading.
#[inline(always)]
pub(crate) fn for_read<T>(x: *const T, span: usize) {
    #[cfg(all(target_arch = "x86_64", not(loom)))]
    {
        use core::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // SAFETY: a prefetch reads nothing architecturally and never faults.
        each_line(x as *const u8, span, |p| unsafe {
            _mm_prefetch(p as *const i8, _MM_HINT_T0)
        });
    }
    #[cfg(not(all(target_arch = "x86_64", not(loom))))]
    let _ = (x, span);
}

/// Prefetches the first `span` bytes (at least 1) of `*x` for writing.
#[inline(always)]
pub(crate) fn for_write<T>(x: *const T, span: usize) {
    #[cfg(all(target_arch = "x86_64", not(loom)))]
    {
        if !has_prefetchw() {
            return for_read(x, span);
        }
        each_line(x as *const u8, span, |p| {
            // SAFETY: the CPU has PRFCHW (checked above); a prefetch writes nothing
            // architecturally and never faults.
            unsafe {
                core::arch::asm!(
                    "prefetchw [{0}]",
                    in(reg) p,
                    options(nostack, readonly, preserves_flags)
                )
            }
        });
    }
    #[cfg(not(all(target_arch = "x86_64", not(loom))))]
    let _ = (x, span);
}

/// True when the CPU has `prefetchw` (CPUID 0x8000_0001, ECX bit 8), asked once.
#[cfg(all(target_arch = "x86_64", not(loom)))]
#[inline(always)]
fn has_prefetchw() -> bool {
    use core::sync::atomic::{AtomicU8, Ordering};
    const UNKNOWN: u8 = 0;
    const YES: u8 = 1;
    const NO: u8 = 2;
    static PRFCHW: AtomicU8 = AtomicU8::new(UNKNOWN);
    match PRFCHW.load(Ordering::Relaxed) {
        YES => true,
        NO => false,
        _ => {
            // Leaf 0x8000_0001 is within the extended range every x86_64 CPU reports.
            let has = core::arch::x86_64::__cpuid(0x8000_0001).ecx & (1 << 8) != 0;
            PRFCHW.store(if has { YES } else { NO }, Ordering::Relaxed);
            has
        }
    }
}
