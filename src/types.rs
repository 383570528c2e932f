//! The value types that the C header shows and the runtime fills in, defined once
//! here, below both `runtime` and `ffi`: the runtime fills them without reaching into
//! the C surface (`ffi` only leads in, the runtime never walks through it), and `ffi`
//! re-exports them next to the functions that take them. cbindgen reads this module
//! as well as `ffi` (only `/// cbindgen:ignore` modules in lib.rs are skipped), so they
//! still appear in include/goroutine.h.

/// Runtime counters, filled in by gr_stats.
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Default, Debug, Clone, Copy)]
pub struct gr_stats {
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
