//! Header section "debugging": counters and the goroutine dump.

use std::ffi::c_int;

use super::boundary;
use crate::runtime::debug;

/// Runtime counters, filled in by gr_stats.
#[repr(C)]
#[allow(non_camel_case_types)]
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
    /// Times sysmon moved goroutines away from a processor stuck for 20 ms.
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
}

/// Fills `*out` with the runtime's counters. Returns 0, or -EINVAL for NULL.
/// Never parks; plain threads: yes.
#[no_mangle]
pub extern "C" fn gr_stats(out: *mut gr_stats) -> c_int {
    boundary("gr_stats", || {
        if out.is_null() {
            return -libc::EINVAL;
        }
        let s = debug::stats();
        // SAFETY: out is a caller-provided, writable gr_stats.
        unsafe {
            *out = gr_stats {
                goroutines: s.goroutines,
                threads: s.threads,
                procs: s.procs,
                idle_procs: s.idle_procs,
                spinning: s.spinning,
                global_runq: s.global_runq,
                switches: s.switches,
                steals: s.steals,
                sysmon_rescues: s.sysmon_rescues,
                stacks_in_use: s.stacks_in_use,
                guard_mode: s.guard_mode,
                guards_used: s.guards_used,
                timers: s.timers,
                fd_waiters: s.fd_waiters,
            };
        }
        0
    })
}

/// Writes every live goroutine to `fd`: id, name, state (and what it waits on, for
/// how long), the function it runs, and which goroutine created it. Returns 0, or a
/// negative errno value from write(2) (-EBADF...). Never parks; plain threads: yes.
#[no_mangle]
pub extern "C" fn gr_dump(fd: c_int) -> c_int {
    boundary("gr_dump", || debug::dump(fd))
}
