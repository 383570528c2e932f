//! The value types that the C header shows and the runtime fills in, defined once
//! here, below both `runtime` and `ffi`: the runtime fills them without reaching into
//! the C surface (`ffi` only leads in, the runtime never walks through it), and `ffi`
//! re-exports them next to the functions that take them. cbindgen reads this module
//! as well as `ffi` (only `/// cbindgen:ignore` modules in lib.rs are skipped), so they
//! still appear in include/goroutine.h.

/// Runtime counters, filled in by gr_stats. Set `size` first: `struct gr_stats st =
/// { .size = sizeof st };`. Later versions only append counters, and the library fills
/// only what fits in `size`, so a program built against this header works with them.
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Default, Debug, Clone, Copy)]
pub struct gr_stats {
    /// Set by the caller to `sizeof(struct gr_stats)`; gr_stats sets it to the bytes
    /// it filled (less when the library is older than the header, and knows fewer
    /// counters).
    pub size: usize,
    /// Goroutines alive.
    pub goroutines: u64,
    /// Worker threads started.
    pub threads: u64,
    /// Processors (GR_MAXPROCS, plus any that sysmon added for stuck ones).
    pub procs: u64,
    /// Processors with nothing to run.
    pub idle_procs: u64,
    /// Workers looking for work.
    pub spinning: u64,
    /// Goroutines in the global run queue.
    pub global_runq: u64,
    /// Goroutine switches (schedules) so far.
    pub switches: u64,
    /// Successful steals of work from another processor.
    pub steals: u64,
    /// Times sysmon moved goroutines away from a processor stuck for 20 ms (handing
    /// them to idle processors, or to a rescue processor when the stuck thread sleeps
    /// in a blocking call).
    pub sysmon_rescues: u64,
    /// Goroutine stacks in use.
    pub stacks_in_use: u64,
    /// 1: guard pages by MADV_GUARD_INSTALL; 2: by mprotect (budgeted).
    pub guard_mode: u32,
    /// mprotect guard pages installed (0 in MADV_GUARD_INSTALL mode).
    pub guards_used: u64,
    /// Armed timers (sleeps and timed waits).
    pub timers: u64,
    /// Goroutines waiting on file descriptors.
    pub fd_waiters: u64,
    /// Times sysmon started a worker for runnable work that nobody had been woken
    /// for (a lost wake-up it repaired).
    pub lost_wakeups: u64,
}

/// The size of `struct gr_stats` in 0.2.0, the first version with `size`: the least a
/// caller's struct can hold. Counters are only ever appended after this prefix (the
/// assertion below fails if one is inserted in it).
pub(crate) const GR_STATS_FIRST_SIZE: usize = 128;
const _: () = assert!(
    core::mem::offset_of!(gr_stats, size) == 0
        && core::mem::offset_of!(gr_stats, lost_wakeups) + 8 == GR_STATS_FIRST_SIZE
);
