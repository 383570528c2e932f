//! sysmon: a monitor thread that needs no P (Go's sysmon, smaller).
//!
//! Every 20 us to 10 ms (backing off while nothing happens; every 100 ms while every
//! P is idle) it:
//! - fires due timers when no worker did (all of them busy in long-running code);
//! - starts a worker when runnable work sits next to an idle P with nobody looking
//!   for work (a safety net for lost wake-ups, counted in `SCHED.lost_wakeups`);
//! - returns surplus free stacks to the kernel once a burst has been over for a
//!   second (so RSS falls back, while back-to-back bursts reuse warm stacks);
//! - polls the netpoller when nobody has for 10 ms;
//! - rescues processors: a P whose M has run the same goroutine while goroutines wait
//!   behind it has them moved to the global queue for the other Ps: after 5 ms when
//!   its thread is asleep in the kernel (a blocking call nobody wrapped in
//!   `gr_blocking`: seen asleep in /proc at two looks 1 ms apart), after 20 ms when
//!   it runs (a loop that never yields). In the first case, when no P is idle, a
//!   rescue P is added beyond GOMAXPROCS and given to another worker, as Go hands off
//!   the P of a goroutine in a syscall; it retires once the stuck P schedules again.
//!   A thread that is running gets no rescue P: GOMAXPROCS bounds the CPUs used.
//!   Counted in `SCHED.sysmon_rescues`; with `GRDEBUG` set, each rescue prints a note.
//!
//! So that a rescue comes within ~12 ms of the call (the stall seen within 5 ms, 5 ms
//! of it, 1 ms to confirm), sysmon's rounds back off to 5 ms at most while any P
//! runs, and to 1 ms while one has stopped scheduling with goroutines queued behind
//! it; the long sleep while every P is idle is as before: an idle runtime pays
//! nothing for it.
//!
//! Moving goroutines out of a P owned by another thread is safe without stopping it:
//! its ring is stolen from as idle Ps do, and its `runnext` (private to the owner) is
//! taken through the handshake described in p.rs.

use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Mutex;

use crate::runtime::g::GPtr;
use crate::runtime::lock::{futex_wait, futex_wake, nanotime};
use crate::runtime::p::{P, P_RUNNING};
use crate::runtime::sched::{self, allp, SCHED};
use crate::runtime::{netpoll, timer};

/// A P that runs one goroutine this long, with goroutines waiting behind it, is
/// relieved of them (its thread running: a loop that never yields).
const STUCK_NS: i64 = 20_000_000;
/// The same when its thread sleeps in the kernel (a blocking call nobody wrapped).
const STUCK_ASLEEP_NS: i64 = 5_000_000;
/// How often a stalled thread's state is read from /proc.
const STAT_EVERY_NS: i64 = 1_000_000;
/// The longest sleep between rounds: while one P has stopped scheduling with
/// goroutines queued behind it, and otherwise (while any P runs).
const DELAY_STALLED_NS: i64 = 1_000_000;
const DELAY_MAX_NS: i64 = 5_000_000;
/// How often sysmon looks around while the runtime is idle.
const IDLE_CHECK_NS: i64 = 100_000_000;
/// Free stacks unused this long are returned to the kernel.
const SCAVENGE_AFTER_NS: i64 = 1_000_000_000;

static STOP: AtomicBool = AtomicBool::new(false);
static WAKE: AtomicU32 = AtomicU32::new(0);
static SLEEPING: AtomicBool = AtomicBool::new(false);
static THREAD: Mutex<Option<std::thread::JoinHandle<()>>> = Mutex::new(None);

/// Starts the sysmon thread (once). False when the thread cannot be made: the
/// runtime must not start without it (it is what makes workers again after thread
/// creation failed, and what rescues Ps from blocked threads).
pub fn start() -> bool {
    crate::runtime::lock::refresh_coarse_now();
    let mut t = THREAD.lock().unwrap_or_else(|e| e.into_inner());
    if t.is_some() {
        return true;
    }
    STOP.store(false, Ordering::SeqCst);
    *t = std::thread::Builder::new()
        .name("gr-sysmon".into())
        .stack_size(128 << 10)
        .spawn(run)
        .ok();
    t.is_some()
}

pub fn stop() {
    let t = THREAD.lock().unwrap_or_else(|e| e.into_inner()).take();
    STOP.store(true, Ordering::SeqCst);
    wake();
    if let Some(t) = t {
        let _ = t.join();
    }
}

/// Wakes sysmon if it sleeps because the runtime was idle.
#[inline]
pub fn wake_if_sleeping() {
    if SLEEPING.load(Ordering::Relaxed) {
        crate::runtime::lock::refresh_coarse_now();
        wake();
    }
}

fn wake() {
    WAKE.fetch_add(1, Ordering::SeqCst);
    futex_wake(&WAKE, 1);
}

/// From a signal handler: atomics and a futex call only.
pub fn wake_from_signal() {
    wake();
}

/// What sysmon remembers of one P between rounds.
struct Seen {
    tick: u32,
    since: i64,
    rescued: bool,
    /// Consecutive checks that found the stuck thread asleep in the kernel.
    asleep: u32,
    /// When its thread's state was last read from /proc.
    last_stat: i64,
}

/// sysmon's state from one round to the next.
struct Monitor {
    /// Notes on stderr (`GRDEBUG` set).
    debug: bool,
    /// The lost-wake-up safety net is on (`GRDEBUG=wakenet=0` turns it off).
    wake_net: bool,
    /// `GRDEBUG=schedtrace=MS`, in ns (0: off).
    trace_ns: i64,
    start: i64,
    last_trace: i64,
    seen: Vec<Seen>,
    /// Sleep between rounds (ns): 20 us while things happen, doubling up to 10 ms.
    delay: i64,
    /// Rounds in a row that did nothing.
    quiet: u32,
    last_scavenge: i64,
    /// The safety net found work stranded at the last round.
    stranded_before: bool,
    /// The last round saw a running P that has not scheduled since the round before,
    /// with goroutines waiting behind it: the next comes within `DELAY_STALLED_NS`.
    stalled_seen: bool,
}

fn run() {
    let _counted = sched::RuntimeThread::enter();
    crate::runtime::runq::prepare_heavy_barrier();
    let mut mon = Monitor::new();
    loop {
        let epoch = WAKE.load(Ordering::SeqCst);
        crate::runtime::lock::refresh_coarse_now();
        if STOP.load(Ordering::SeqCst) {
            return;
        }
        crate::runtime::debug::handle_sigquit();
        mon.trace();
        let stranded = mon.lost_wakeup_net();
        if mon.may_sleep_long(stranded) {
            mon.sleep_while_idle(epoch);
            continue;
        }
        futex_wait(&WAKE, epoch, mon.round_delay());
        if STOP.load(Ordering::SeqCst) {
            return;
        }
        mon.round(nanotime());
    }
}

impl Monitor {
    fn new() -> Monitor {
        let settings = crate::runtime::debug::settings();
        let start = nanotime();
        Monitor {
            debug: settings.notes,
            wake_net: settings.wake_net,
            trace_ns: settings.schedtrace_ms as i64 * 1_000_000,
            start,
            last_trace: start,
            seen: Vec::new(),
            delay: 20_000,
            quiet: 0,
            last_scavenge: 0,
            stranded_before: false,
            stalled_seen: false,
        }
    }

    /// `GRDEBUG=schedtrace=MS`: one line of scheduler state every MS.
    fn trace(&mut self) {
        if self.trace_ns > 0 && nanotime() - self.last_trace >= self.trace_ns {
            self.last_trace = nanotime();
            let line =
                crate::runtime::debug::schedtrace_line((self.last_trace - self.start) / 1_000_000);
            crate::runtime::sys::stderr(&line);
        }
    }

    /// A safety net under the wake-up protocol: runnable work, an idle P and nobody
    /// looking for work, seen at two rounds in a row (a producer's own wake-up may be
    /// just under way at the first), means a wake-up was lost somewhere: start a
    /// worker. Returns whether work is stranded now.
    fn lost_wakeup_net(&mut self) -> bool {
        let stranded = self.wake_net
            && SCHED.npidle.load(Ordering::SeqCst) > 0
            && SCHED.nmspinning.load(Ordering::SeqCst) == 0
            && sched::work_anywhere();
        let was_stranded = core::mem::replace(&mut self.stranded_before, stranded);
        if stranded && was_stranded {
            self.stranded_before = false;
            SCHED.lost_wakeups.fetch_add(1, Ordering::Relaxed);
            if self.debug {
                crate::runtime::sys::stderr(&format!(
                    "libgoroutine: sysmon: runnable work, an idle processor and nobody looking: waking a worker ({})\n",
                    sched::wake_state()
                ));
            }
            sched::wakep();
        }
        stranded
    }

    /// Whether sysmon may take its long sleep: every P idle for a while, and nothing
    /// it must watch (a trace, a running home, stranded work, timers with nobody
    /// polling: those it fires itself, every 10 ms at most while quiet).
    fn may_sleep_long(&self, stranded: bool) -> bool {
        let all_idle = SCHED.npidle.load(Ordering::SeqCst) as usize >= sched::nprocs_limit();
        let homes = crate::runtime::home::HOMES_RUNNING.load(Ordering::SeqCst) > 0;
        let unpolled_timers = sched::nobody_polling() && timer::next_when() != i64::MAX;
        all_idle && self.quiet > 50 && self.trace_ns == 0 && !homes && !stranded && !unpolled_timers
    }

    /// The long sleep of an idle runtime: the idle poller handles timers and fds, so
    /// nothing can get stuck. Not for ever: the lost-wake-up check must still run now
    /// and then (ten times a second costs an idle process microseconds), and stacks
    /// left over from a burst are given back after a second.
    fn sleep_while_idle(&mut self, epoch: u32) {
        SLEEPING.store(true, Ordering::SeqCst);
        if SCHED.npidle.load(Ordering::SeqCst) as usize >= sched::nprocs_limit()
            && !STOP.load(Ordering::SeqCst)
        {
            let surplus = crate::runtime::stack::has_surplus();
            futex_wait(
                &WAKE,
                epoch,
                if surplus {
                    SCAVENGE_AFTER_NS
                } else {
                    IDLE_CHECK_NS
                },
            );
            if surplus {
                crate::runtime::stack::scavenge(SCAVENGE_AFTER_NS);
            }
        }
        SLEEPING.store(false, Ordering::SeqCst);
        if WAKE.load(Ordering::SeqCst) != epoch {
            // Woken because a P went busy: watch closely again.
            self.delay = 20_000;
            self.quiet = 0;
        }
    }

    /// The sleep before the next round.
    fn round_delay(&self) -> i64 {
        if self.trace_ns > 0 {
            self.delay.min(self.trace_ns)
        } else {
            self.delay
        }
    }

    /// One round while the runtime is busy: timers and fds nobody attends to, stuck
    /// Ps, surplus stacks; then the next delay (short after doing something, backing
    /// off while nothing happens).
    fn round(&mut self, now: i64) {
        let mut acted = false;
        if sched::nobody_polling() && timer::next_when() <= now {
            acted |= timer::run_due(now) > 0;
        }
        acted |= crate::runtime::context::cancel_expired() > 0;
        if sched::fds_unpolled() && now - netpoll::LAST_POLL.load(Ordering::Relaxed) > 10_000_000 {
            acted |= netpoll::poll_ready() > 0;
        }
        acted |= self.retake(now);
        crate::runtime::blockprof::check(now);
        if crate::runtime::stack::has_surplus() && now - self.last_scavenge > 100_000_000 {
            self.last_scavenge = now;
            crate::runtime::stack::scavenge(SCAVENGE_AFTER_NS);
        }
        if acted {
            self.delay = 20_000;
            self.quiet = 0;
        } else {
            self.quiet = self.quiet.saturating_add(1);
            if self.quiet > 50 {
                self.delay = (self.delay * 2).min(DELAY_MAX_NS);
            }
        }
        // Never so long that a stuck P would wait for its rescue past its time.
        if self.stalled_seen {
            self.delay = self.delay.min(DELAY_STALLED_NS);
        }
    }

    /// Looks at every P for one stuck behind a goroutine (see `retake_p`). True when
    /// goroutines were moved or a rescue P was added.
    fn retake(&mut self, now: i64) -> bool {
        let limit = sched::nprocs_limit();
        if self.seen.len() < limit {
            self.seen.resize_with(limit, || Seen {
                tick: 0,
                since: now,
                rescued: false,
                asleep: 0,
                last_stat: 0,
            });
        }
        let mut acted = false;
        let mut stalled = false;
        for (i, s) in self.seen.iter_mut().enumerate().take(limit) {
            let p = allp(i);
            if !p.is_null() {
                acted |= retake_p(s, i, p, now, self.debug, &mut stalled);
            }
        }
        self.stalled_seen = stalled;
        acted
    }
}

/// P `i` (`p`, not null): when it has run the same goroutine with work queued behind
/// it for `STUCK_ASLEEP_NS` while its thread sleeps in the kernel, or `STUCK_NS`
/// while it runs, moves that work where it can run: to idle Ps (through the global
/// queue), or to a rescue P if the stuck thread sleeps in the kernel. A thread that is
/// running (a loop that never yields) with every P busy is left alone: GOMAXPROCS
/// bounds the CPUs in use. True when it acted; `stalled` is set when it is stalled
/// with work behind it (the next round must come soon).
fn retake_p(s: &mut Seen, i: usize, p: *mut P, now: i64, debug: bool, stalled: &mut bool) -> bool {
    // SAFETY: Ps are never freed; only atomics are read.
    let (status, tick) = unsafe {
        (
            (*p).status.load(Ordering::Acquire),
            (*p).schedtick.load(Ordering::Acquire),
        )
    };
    // SAFETY: Ps are never freed; has_work reads atomics only.
    let queued = || unsafe { (*p).has_work() } || SCHED.runqsize.load(Ordering::SeqCst) > 0;
    if status != P_RUNNING || tick != s.tick {
        s.tick = tick;
        s.since = now;
        s.asleep = 0;
        if s.rescued {
            // The stuck M is back: its stand-in P retires at its next periodic
            // check (within CHECK_EVERY schedules) or when it runs out of work.
            s.rescued = false;
            SCHED.rescue.fetch_sub(1, Ordering::SeqCst);
        }
        return false;
    }
    if s.rescued || !queued() {
        return false;
    }
    *stalled = true;
    let stalled_ns = now - s.since;
    if stalled_ns < STUCK_ASLEEP_NS {
        return false;
    }
    let asleep = in_blocking_call(s, p, now);
    if !asleep && stalled_ns < STUCK_NS {
        return false;
    }
    let idle_p = SCHED.npidle.load(Ordering::SeqCst) > 0;
    let need_p = !idle_p && asleep && sched::nprocs_limit() < sched::MAX_PROCS;
    if !idle_p && !need_p {
        return false;
    }
    // SAFETY: Ps are never freed; drain_foreign uses the concurrent-safe parts only.
    let moved = drain_foreign(unsafe { &*p });
    for g in &moved {
        sched::globrunqput(g.0);
    }
    if need_p {
        sched::add_rescue_p();
        s.rescued = true;
    }
    if moved.is_empty() && !s.rescued {
        return false;
    }
    sched::wakep();
    SCHED.sysmon_rescues.fetch_add(1, Ordering::Relaxed);
    if debug {
        crate::runtime::sys::stderr(&format!(
            "libgoroutine: sysmon: processor {i} ran one goroutine for {} ms; moved {} goroutines{}{}\n",
            (now - s.since) / 1_000_000,
            moved.len(),
            if s.rescued { " to a rescue processor" } else { "" },
            thread_wait(p)
        ));
    }
    true
}

/// The kernel thread id of P `p`'s M, or 0 when it has none.
fn thread_of(p: *mut P) -> u32 {
    // SAFETY: p.m is an M pointer (Ms are never freed while the runtime runs) or null.
    let m = unsafe { core::ptr::read_volatile(&(*p).m) };
    if m.is_null() {
        return 0;
    }
    // SAFETY: m is a live M (never freed while the runtime runs); tid is an atomic.
    unsafe { (*m).tid.load(Ordering::Relaxed) }
}

/// /proc/self/task/TID/WHAT as text (empty when it cannot be read).
fn task_file(tid: u32, what: &str) -> String {
    let mut buf = [0u8; 512];
    let path = format!("/proc/self/task/{tid}/{what}\0");
    crate::runtime::sys::read_file(path.as_bytes(), &mut buf)
        .map(|b| String::from_utf8_lossy(b).trim().to_string())
        .unwrap_or_default()
}

/// Where the thread of P `p` waits, for the rescue note: "; its thread: system call
/// N (kernel function)", from /proc (empty when unknown).
fn thread_wait(p: *mut P) -> String {
    let tid = thread_of(p);
    if tid == 0 {
        return String::new();
    }
    let call = task_file(tid, "syscall");
    let call = call.split_whitespace().next().unwrap_or("?");
    format!(
        "; its thread: system call {call} ({})",
        task_file(tid, "wchan")
    )
}

/// Whether the thread of stuck P `p` sits in a blocking call: seen asleep in the
/// kernel at two checks in a row, `STAT_EVERY_NS` apart at least (a running thread
/// also sleeps now and then: a page fault, a contended lock). Between reads of /proc,
/// the answer of the last two.
fn in_blocking_call(s: &mut Seen, p: *mut P, now: i64) -> bool {
    if now - s.last_stat < STAT_EVERY_NS {
        return s.asleep >= 2;
    }
    s.last_stat = now;
    if thread_sleeping(thread_of(p)) {
        s.asleep += 1;
    } else {
        s.asleep = 0;
    }
    s.asleep >= 2
}

/// Takes every queued goroutine of a P that another thread owns (its `runnext` only
/// when the owner is outside a scheduling step: otherwise at a later round).
fn drain_foreign(p: &P) -> Vec<GPtr> {
    let mut out = Vec::new();
    p.take_stealable(&mut out);
    let g = p.take_runnext_foreign();
    if !g.is_null() {
        out.push(GPtr(g));
    }
    out
}

/// True when the kernel says the thread is not running (state S or D in
/// /proc/self/task/TID/stat): it sits in a blocking system call.
fn thread_sleeping(tid: u32) -> bool {
    if tid == 0 {
        return false;
    }
    let stat = task_file(tid, "stat");
    matches!(
        crate::runtime::sys::proc_stat_field(stat.as_bytes(), 0),
        Some(b"S" | b"D")
    )
}
