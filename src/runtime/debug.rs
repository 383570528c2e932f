//! Seeing inside: `GRDEBUG` settings, counters (`gr_stats`), the goroutine dump
//! (`gr_dump`, and SIGQUIT under `GRDEBUG=sigquit=1`), and `schedtrace` lines.
//!
//! `GRDEBUG` is a comma-separated list, read once at start:
//! - `schedtrace=MS`: sysmon prints one line of scheduler state every MS ms;
//! - `sigquit=1`: SIGQUIT dumps every goroutine to stderr and exits with status 2,
//!   as Go does (without it the runtime leaves SIGQUIT alone);
//! - `wakenet=0`: sysmon's safety net for lost wake-ups (work beside an idle
//!   processor with nobody looking) stays off, so that a test can show the wake-up
//!   protocol works without it (tests/c_tests.rs `wakeups_without_safety_net`);
//! - any other non-empty value (e.g. `notes=1`): sysmon prints a note when it rescues
//!   a stuck processor, and a deadlock report dumps the goroutines.
//!
//! The SIGQUIT handler only sets a flag and wakes sysmon (async-signal-safe); sysmon
//! writes the dump, from an ordinary thread.
//!
//! The names of goroutine states and wait reasons are C strings here, once: the dump
//! uses them, and so does gdb, through the debugger table in `ffi::debug` (read by
//! docs/goroutine-gdb.py). A goroutine's spawn site is the function its spawner was
//! running (`G::parent_func`, recorded at spawn): the call site's own address would
//! need the caller's return address, which stable Rust cannot read in `gr_spawn`.

use core::ffi::{c_char, CStr};
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::fmt::Write as _;
use std::sync::OnceLock;

use crate::runtime::g::{self, WaitReason, DEAD, FREE, G, RUNNABLE, RUNNING, WAITING};
use crate::runtime::lock::nanotime;
use crate::runtime::sched::{self, SCHED};
use crate::runtime::stack;
use crate::runtime::{netpoll, timer};
use crate::types::gr_stats;

pub struct Settings {
    pub schedtrace_ms: u64,
    pub sigquit: bool,
    pub notes: bool,
    /// sysmon starts a worker for stranded work (`wakenet=0` turns it off).
    pub wake_net: bool,
    /// sysmon names calls that hold a processor in the kernel (`blockprof.rs`).
    pub blockprof: bool,
}

pub fn settings() -> &'static Settings {
    static S: OnceLock<Settings> = OnceLock::new();
    S.get_or_init(|| {
        let v = std::env::var("GRDEBUG").unwrap_or_default();
        let mut s = Settings {
            schedtrace_ms: 0,
            sigquit: false,
            notes: !v.trim().is_empty(),
            wake_net: true,
            blockprof: false,
        };
        for part in v.split(',') {
            let (k, val) = part.split_once('=').unwrap_or((part, ""));
            match k.trim() {
                "schedtrace" => s.schedtrace_ms = val.trim().parse().unwrap_or(0),
                "sigquit" => s.sigquit = val.trim() != "0",
                "wakenet" => s.wake_net = val.trim() != "0",
                "blockprof" => s.blockprof = val.trim() != "0",
                _ => {}
            }
        }
        s
    })
}

/// The counters of `gr_stats`, in the C struct itself (`crate::types`), so that there
/// is one list of them.
pub fn stats() -> gr_stats {
    let mut switches = 0u64;
    for i in 0..sched::MAX_PROCS {
        let p = sched::allp(i);
        if !p.is_null() {
            // SAFETY: Ps are never freed; schedtick is atomic.
            switches += unsafe { (*p).schedtick.load(Ordering::Relaxed) } as u64;
        }
    }
    gr_stats {
        size: core::mem::size_of::<gr_stats>(),
        goroutines: crate::runtime::sched::count() as u64,
        threads: SCHED.nthreads.load(Ordering::Relaxed) as u64,
        procs: sched::nprocs_limit() as u64,
        idle_procs: SCHED.npidle.load(Ordering::Relaxed) as u64,
        spinning: SCHED.nmspinning.load(Ordering::Relaxed) as u64,
        global_runq: SCHED.runqsize.load(Ordering::Relaxed) as u64,
        switches,
        steals: SCHED.steals.load(Ordering::Relaxed) as u64,
        sysmon_rescues: SCHED.sysmon_rescues.load(Ordering::Relaxed) as u64,
        // SAFETY: Ps are never freed; in_use reads only their caches' atomic mirrors.
        stacks_in_use: unsafe {
            stack::in_use(
                (0..crate::runtime::sched::MAX_PROCS)
                    .map(crate::runtime::sched::allp)
                    .filter(|p| !p.is_null())
                    .map(|p| core::ptr::addr_of!((*p).stacks)),
            )
        } as u64,
        guard_mode: stack::guard_mode() as u32,
        guards_used: stack::guards_used() as u64,
        timers: timer::armed() as u64,
        fd_waiters: netpoll::WAITERS.load(Ordering::Relaxed) as u64,
        lost_wakeups: SCHED.lost_wakeups.load(Ordering::Relaxed) as u64,
    }
}

/// One `schedtrace` line, Go's format.
pub fn schedtrace_line(since_start_ms: i64) -> String {
    let s = stats();
    let mut line = format!(
        "SCHED {since_start_ms}ms: gomaxprocs={} idleprocs={} threads={} spinningthreads={} runqueue={} [",
        s.procs, s.idle_procs, s.threads, s.spinning, s.global_runq
    );
    for i in 0..s.procs as usize {
        let p = sched::allp(i);
        if i > 0 {
            line.push(' ');
        }
        // SAFETY: Ps are never freed; only concurrent-safe parts are read.
        let n = if p.is_null() {
            0
        } else {
            // SAFETY: as above.
            unsafe { (*p).queued() }
        };
        let _ = write!(line, "{n}");
    }
    line.push_str("]\n");
    line
}

/// C strings indexed by a small number (a status or a wait reason): the dump and the
/// debugger table (`ffi::debug`, read by docs/goroutine-gdb.py) share these arrays,
/// so a name is written once.
pub(crate) struct Names<const N: usize>(pub [*const c_char; N]);
// SAFETY: pointers to immutable string literals.
unsafe impl<const N: usize> Sync for Names<N> {}

impl<const N: usize> Names<N> {
    fn get(&self, i: usize) -> Option<&'static str> {
        let p = *self.0.get(i)?;
        // SAFETY: every entry is a NUL-terminated ASCII literal.
        unsafe { CStr::from_ptr(p) }.to_str().ok()
    }
}

/// Goroutine states by `G::status` (FREE, RUNNABLE, RUNNING, WAITING, DEAD).
pub(crate) static STATUS_NAMES: Names<5> = Names([
    c"free".as_ptr(),
    c"runnable".as_ptr(),
    c"running".as_ptr(),
    c"waiting".as_ptr(),
    c"exiting".as_ptr(),
]);
const _: () = assert!(FREE == 0 && RUNNABLE == 1 && RUNNING == 2 && WAITING == 3 && DEAD == 4);

/// What a goroutine waits on, by `WaitReason` (`G::wait_reason`).
pub(crate) static WAIT_REASON_NAMES: Names<18> = Names([
    c"waiting".as_ptr(),
    c"join".as_ptr(),
    c"wait all".as_ptr(),
    c"chan send".as_ptr(),
    c"chan receive".as_ptr(),
    c"select".as_ptr(),
    c"wait group".as_ptr(),
    c"mutex".as_ptr(),
    c"sleep".as_ptr(),
    c"IO wait".as_ptr(),
    c"blocking call".as_ptr(),
    c"locked thread".as_ptr(),
    c"rwmutex read".as_ptr(),
    c"rwmutex write".as_ptr(),
    c"cond wait".as_ptr(),
    c"semaphore".as_ptr(),
    c"once".as_ptr(),
    c"child wait".as_ptr(),
]);
const _: () = assert!(
    WaitReason::None as usize == 0
        && WaitReason::Select as usize == 5
        && WaitReason::ChildWait as usize + 1 == WAIT_REASON_NAMES.0.len()
);

fn reason_name(r: u8) -> &'static str {
    WAIT_REASON_NAMES.get(r as usize).unwrap_or("waiting")
}

/// A code address as `function+offset` (dladdr), or in hex.
pub(crate) fn symbol(addr: usize) -> String {
    // SAFETY: dladdr only reads the loader's tables.
    unsafe {
        let mut info: libc::Dl_info = core::mem::zeroed();
        if addr != 0
            && libc::dladdr(addr as *const libc::c_void, &mut info) != 0
            && !info.dli_sname.is_null()
        {
            let name = CStr::from_ptr(info.dli_sname).to_string_lossy();
            let off = addr - info.dli_saddr as usize;
            return if off == 0 {
                name.into_owned()
            } else {
                format!("{name}+{off:#x}")
            };
        }
    }
    format!("{addr:#x}")
}

fn describe(g: &G, now: i64, out: &mut String) {
    let st = g.status.load(Ordering::Acquire);
    let waited_ms = (now - g.wait_since).max(0) / 1_000_000;
    let state = match st {
        RUNNING if g.wait_reason == WaitReason::Blocking as u8 => {
            format!("blocking call, {waited_ms} ms")
        }
        WAITING => format!("{}, {waited_ms} ms", reason_name(g.wait_reason)),
        _ => STATUS_NAMES
            .get(st as usize)
            .unwrap_or("unknown")
            .to_string(),
    };
    let _ = writeln!(
        out,
        "{} [{state}]{}:",
        crate::runtime::goroutine_label(g),
        if g.is_locked() {
            " locked to thread"
        } else {
            ""
        }
    );
    let _ = writeln!(out, "\truns {}", symbol(g.func.map_or(0, |f| f as usize)));
    if g.parent > 0 {
        let site = symbol(g.parent_func.map_or(0, |f| f as usize));
        let _ = writeln!(out, "\tcreated by {site} in goroutine {}", g.parent);
    } else {
        let _ = writeln!(out, "\tcreated by a plain thread");
    }
    let _ = writeln!(out);
}

/// Writes every live goroutine to `fd`. Returns 0 or a negative errno from write(2).
pub fn dump(fd: i32) -> i32 {
    let now = nanotime();
    let mut out = String::new();
    let mut n = 0;
    g::for_each(|g| {
        if g.status.load(Ordering::Acquire) != FREE {
            n += 1;
            describe(g, now, &mut out);
        }
    });
    let out = format!("libgoroutine: {n} goroutines\n\n{out}");
    match crate::runtime::sys::write_all(fd, out.as_bytes()) {
        Ok(()) => 0,
        Err(e) => e,
    }
}

// ---------------------------------------------------------------------------------
// SIGQUIT

static SIGQUIT_PENDING: AtomicBool = AtomicBool::new(false);
static SIGQUIT_INSTALLED: AtomicU32 = AtomicU32::new(0);

/// Installs the SIGQUIT handler when `GRDEBUG=sigquit=1`.
pub fn install_sigquit() {
    if !settings().sigquit || SIGQUIT_INSTALLED.swap(1, Ordering::AcqRel) != 0 {
        return;
    }
    // SAFETY: installing a handler that only touches atomics and makes a futex call.
    unsafe {
        let mut sa: libc::sigaction = core::mem::zeroed();
        sa.sa_sigaction = on_sigquit as *const () as usize;
        sa.sa_flags = libc::SA_ONSTACK | libc::SA_RESTART;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(libc::SIGQUIT, &sa, core::ptr::null_mut());
    }
}

extern "C" fn on_sigquit(_sig: i32) {
    SIGQUIT_PENDING.store(true, Ordering::SeqCst);
    crate::runtime::sysmon::wake_from_signal();
}

/// Called by sysmon: dumps and exits if SIGQUIT arrived.
pub fn handle_sigquit() {
    if SIGQUIT_PENDING.swap(false, Ordering::SeqCst) {
        let _ = dump(2);
        crate::runtime::sys::stderr("libgoroutine: SIGQUIT: exiting\n");
        // SAFETY: _exit(2) has no preconditions.
        unsafe { libc::_exit(2) };
    }
}
