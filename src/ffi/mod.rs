//! The C ABI: every `#[no_mangle]` function of the library, one file per header
//! section. Each export checks its arguments, returns 0/a positive value or a
//! negative errno value, and runs inside `boundary` (`runtime::boundary`), so a Rust
//! panic never unwinds into C: it becomes a fatal one-line error naming the goroutine
//! (a panic here means a broken invariant, not bad input, which gets an error code
//! before any panic can happen). `boundary` also enforces the fork rule: in a forked
//! child every call fails at once (-ECHILD, NULL, 0).
//!
//! The C-visible value types the runtime fills (`gr_stats`) are defined in
//! `crate::types` and re-exported by the section that shows them.

pub mod core;
pub mod debug;
pub mod io;
pub mod pybinding;
pub mod sync;
// Go's toolbox beyond channels (issue 17): timers, the rest of sync, semaphores,
// signals and child processes.
pub mod cond;
pub mod once;
pub mod process;
pub mod pysync;
pub mod rwmutex;
pub mod sem;
pub mod timer;
// Contexts and groups (issue 17): cancellation, deadlines, errgroup.
pub mod context;

pub(crate) use crate::runtime::boundary::boundary;
