//! The scheduler and everything that decides which goroutine runs where.
//!
//! - `g`, `m`, `p`: Go's G (goroutine), M (worker thread), P (processor); `runq`:
//!   a P's local run queue; `lifo`: a P's spawn stack (siblings a spawn displaced).
//! - `sched`: the global state, the schedule loop, spawn, exit, join, yield.
//! - `park`: how a goroutine (or a plain thread) waits and is woken.
//! - `context`: the cancellation tree (`gr_ctx`) whose cancel ends the waits of the
//!   goroutines bound to it.
//! - `lock`: the spin lock and futex calls everything above is built from.
//! - `timer`: deadlines (sleep, timed waits); `netpoll`: fd readiness via epoll;
//!   `sysmon`: the monitor thread that rescues stuck processors.
//! - `sys`: the system calls that the hook layer interposes (read, poll, close...),
//!   made directly, so the runtime never enters its own hooks.
//! - `home`: a thread running a group of goroutines pinned to it (Python's).
//! - `debug`: GRDEBUG, counters, goroutine dumps, schedtrace; `blockprof`: the
//!   blocking-call report (`GRDEBUG=blockprof=1`).
//! - `boundary`: what every entry from C runs inside (panics, the fork rule).
//! - `sanitizer`: telling ASan/TSan about stack switches; `prefetch`: cache hints
//!   for the descriptor the next pop or spawn will touch.
//! - `signal`: signals delivered to channels, and the SIGCHLD watch; `child`:
//!   waiting for child processes without blocking a thread (`gr_waitpid`).
//! - `waitlist`: the intrusive FIFO that waiters able to leave early queue on.
//!
//! Raw G pointers stay inside this module (and the `sync` objects that park through
//! `park::Waiter`); the FFI layer sees ids and handles only.

pub mod blockprof;
pub mod boundary;
pub mod child;
pub mod context;
pub mod debug;
pub mod g;
pub mod home;
pub(crate) mod lifo;
pub mod lock;
pub mod m;
pub mod netpoll;
pub mod p;
pub mod park;
pub(crate) mod prefetch;
pub(crate) mod runq;
pub mod sanitizer;
pub mod sched;
pub mod signal;
pub mod stack;
pub mod sys;
pub mod sysmon;
pub mod timer;
pub mod waitlist;

/// A broken invariant: one line naming the goroutine, then abort.
#[cold]
pub fn fatal(what: &str) -> ! {
    let g = m::current_g();
    let mut line = format!("libgoroutine: fatal error: {what}");
    if !g.is_null() {
        // SAFETY: descriptors are never freed.
        line.push_str(&format!(" in {}", goroutine_label(unsafe { &*g })));
    }
    line.push('\n');
    sys::stderr(&line);
    std::process::abort();
}

/// "goroutine N (name)", as fatal errors and dumps name a goroutine ("unnamed" when it
/// has no name).
pub(crate) fn goroutine_label(g: &g::G) -> String {
    let name = String::from_utf8_lossy(g.name_str());
    let name = if name.is_empty() { "unnamed" } else { &name };
    format!("goroutine {} ({name})", g.id())
}
