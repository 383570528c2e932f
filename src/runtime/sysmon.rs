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
//! - rescues processors: a P whose M has run the same goroutine for 20 ms (stuck in a
//!   blocking call nobody wrapped in `gr_blocking`, or in a loop that never yields)
//!   has its queued goroutines moved to the global queue for the other Ps. If its
//!   thread is asleep in the kernel (a blocking call: it uses no CPU) and no P is
//!   idle, a rescue P is added beyond GOMAXPROCS and given to another worker, as Go
//!   hands off the P of a goroutine in a syscall; it retires once the stuck P
//!   schedules again. A thread that is running (a loop that never yields) gets no
//!   rescue P: GOMAXPROCS bounds the CPUs used. Counted in `SCHED.sysmon_rescues`;
//!   with `GRDEBUG` set, each rescue prints a note.
//!
//! Moving goroutines out of a P owned by another thread is safe without stopping it:
//! its queue is stolen through the crossbeam stealer and its `runnext` by CAS, the
//! same operations idle Ps use.

use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Mutex;

use crossbeam_deque::Steal;

use crate::runtime::g::GPtr;
use crate::runtime::lock::{futex_wait, futex_wake, nanotime};
use crate::runtime::p::P_RUNNING;
use crate::runtime::sched::{self, allp, SCHED};
use crate::runtime::{netpoll, timer};

const STUCK_NS: i64 = 20_000_000;
/// How often a stuck thread's state is read from /proc.
const STAT_EVERY_NS: i64 = 2_000_000;
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

struct Seen {
    tick: u32,
    since: i64,
    rescued: bool,
    /// Consecutive checks that found the stuck thread asleep in the kernel.
    asleep: u32,
    /// When its thread's state was last read from /proc.
    last_stat: i64,
}

fn run() {
    sched::mark_runtime_thread();
    let settings = crate::runtime::debug::settings();
    let debug = settings.notes;
    let trace_ns = settings.schedtrace_ms as i64 * 1_000_000;
    let start = nanotime();
    let mut last_trace = start;
    let mut seen: Vec<Seen> = Vec::new();
    let mut delay: i64 = 20_000;
    let mut quiet = 0u32;
    let mut last_scavenge = 0i64;
    let mut stranded_before = false;
    loop {
        let epoch = WAKE.load(Ordering::SeqCst);
        crate::runtime::lock::refresh_coarse_now();
        if STOP.load(Ordering::SeqCst) {
            return;
        }
        crate::runtime::debug::handle_sigquit();
        if trace_ns > 0 && nanotime() - last_trace >= trace_ns {
            last_trace = nanotime();
            let line = crate::runtime::debug::schedtrace_line((last_trace - start) / 1_000_000);
            crate::runtime::sys::stderr(&line);
        }
        // A safety net under the wake-up protocol: runnable work, an idle P and
        // nobody looking for work, seen at two rounds in a row (a producer's own
        // wake-up may be just under way at the first), means a wake-up was lost
        // somewhere: start a worker.
        let stranded = settings.wake_net
            && SCHED.npidle.load(Ordering::SeqCst) > 0
            && SCHED.nmspinning.load(Ordering::SeqCst) == 0
            && sched::work_anywhere();
        let was_stranded = core::mem::replace(&mut stranded_before, stranded);
        if stranded && was_stranded {
            stranded_before = false;
            SCHED.lost_wakeups.fetch_add(1, Ordering::Relaxed);
            if debug {
                crate::runtime::sys::stderr(&format!(
                    "libgoroutine: sysmon: runnable work, an idle processor and nobody looking: waking a worker ({})\n",
                    sched::wake_state()
                ));
            }
            sched::wakep();
        }
        let all_idle = SCHED.npidle.load(Ordering::SeqCst) as usize >= sched::nprocs_limit();
        let homes = crate::runtime::home::HOMES_RUNNING.load(Ordering::SeqCst) > 0;
        // Timers with nobody polling are fired below (every 10 ms at most while
        // quiet), so sysmon must not take its long idle sleep then.
        let unpolled_timers = netpoll::POLLER.load(Ordering::SeqCst) == netpoll::POLLER_NONE
            && timer::next_when() != i64::MAX;
        if all_idle && quiet > 50 && trace_ns == 0 && !homes && !stranded && !unpolled_timers {
            // The idle poller handles timers and fds; nothing can get stuck. Wake once
            // more later only if there are stacks to give back.
            SLEEPING.store(true, Ordering::SeqCst);
            if SCHED.npidle.load(Ordering::SeqCst) as usize >= sched::nprocs_limit()
                && !STOP.load(Ordering::SeqCst)
            {
                // Not for ever: the lost-wake-up check above must still run now and
                // then (ten times a second costs an idle process microseconds).
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
                delay = 20_000;
                quiet = 0;
            }
            continue;
        }
        futex_wait(
            &WAKE,
            epoch,
            if trace_ns > 0 {
                delay.min(trace_ns)
            } else {
                delay
            },
        );
        if STOP.load(Ordering::SeqCst) {
            return;
        }
        let now = nanotime();
        let mut acted = false;
        if netpoll::POLLER.load(Ordering::SeqCst) == 0 && timer::next_when() <= now {
            acted |= timer::run_due(now) > 0;
        }
        if netpoll::WAITERS.load(Ordering::Relaxed) > 0
            && netpoll::POLLER.load(Ordering::SeqCst) == 0
            && now - netpoll::LAST_POLL.load(Ordering::Relaxed) > 10_000_000
        {
            acted |= netpoll::poll_ready() > 0;
        }
        acted |= retake(&mut seen, now, debug);
        crate::runtime::blockprof::check(now);
        if crate::runtime::stack::has_surplus() && now - last_scavenge > 100_000_000 {
            last_scavenge = now;
            crate::runtime::stack::scavenge(SCAVENGE_AFTER_NS);
        }
        if acted {
            delay = 20_000;
            quiet = 0;
        } else {
            quiet = quiet.saturating_add(1);
            if quiet > 50 {
                delay = (delay * 2).min(10_000_000);
            }
        }
    }
}

fn retake(seen: &mut Vec<Seen>, now: i64, debug: bool) -> bool {
    let limit = sched::nprocs_limit();
    if seen.len() < limit {
        seen.resize_with(limit, || Seen {
            tick: 0,
            since: now,
            rescued: false,
            asleep: 0,
            last_stat: 0,
        });
    }
    let mut acted = false;
    for (i, s) in seen.iter_mut().enumerate().take(limit) {
        let p = allp(i);
        if p.is_null() {
            continue;
        }
        // SAFETY: Ps are never freed; only atomics and the stealer are touched.
        let (status, tick) = unsafe {
            (
                (*p).status.load(Ordering::Acquire),
                (*p).schedtick.load(Ordering::Acquire),
            )
        };
        if status != P_RUNNING || tick != s.tick {
            s.tick = tick;
            s.since = now;
            s.asleep = 0;
            if s.rescued {
                // The stuck M is back: its stand-in P retires at its next schedule.
                s.rescued = false;
                SCHED.rescue.fetch_sub(1, Ordering::SeqCst);
            }
            continue;
        }
        if s.rescued || now - s.since < STUCK_NS {
            continue;
        }
        // Goroutines queued behind the stuck one go where they can run: to idle Ps
        // (through the global queue), or to a rescue P if the stuck thread sleeps in
        // the kernel. A thread that is running (a loop that never yields) with every
        // P busy is left alone: GOMAXPROCS bounds the CPUs in use.
        // SAFETY: Ps are never freed; runnext and the stealer are concurrent-safe.
        if !unsafe { (*p).has_work() } && SCHED.runqsize.load(Ordering::SeqCst) == 0 {
            continue;
        }
        let idle_p = SCHED.npidle.load(Ordering::SeqCst) > 0;
        let mut need_p = false;
        if !idle_p && now - s.last_stat >= STAT_EVERY_NS {
            s.last_stat = now;
            // SAFETY: p.m is an M pointer (never freed while running) or null.
            let m = unsafe { core::ptr::read_volatile(&(*p).m) };
            // A running thread also sleeps now and then (a page fault, a contended
            // lock): only one seen asleep at two checks in a row is in a blocking call.
            if !m.is_null() && thread_sleeping(unsafe { (*m).tid.load(Ordering::Relaxed) }) {
                s.asleep += 1;
            } else {
                s.asleep = 0;
            }
            need_p = s.asleep >= 2 && sched::nprocs_limit() < sched::MAX_PROCS;
        }
        if !idle_p && !need_p {
            continue;
        }
        // SAFETY: as above.
        let moved = unsafe { drain_foreign(p) };
        for g in &moved {
            sched::globrunqput(g.0);
        }
        if need_p {
            sched::add_rescue_p();
            s.rescued = true;
        }
        if moved.is_empty() && !s.rescued {
            continue;
        }
        sched::wakep();
        SCHED.sysmon_rescues.fetch_add(1, Ordering::Relaxed);
        acted = true;
        if debug {
            crate::runtime::sys::stderr(&format!(
                "libgoroutine: sysmon: processor {i} ran one goroutine for {} ms; moved {} goroutines{}\n",
                (now - s.since) / 1_000_000,
                moved.len(),
                if s.rescued { " to a rescue processor" } else { "" }
            ));
        }
    }
    acted
}

/// Takes every queued goroutine of a P that another thread owns.
unsafe fn drain_foreign(p: *mut crate::runtime::p::P) -> Vec<GPtr> {
    let mut out = Vec::new();
    // SAFETY: stealer and runnext are the concurrent-safe parts of a P.
    unsafe {
        loop {
            match (*p).stealer.steal() {
                Steal::Success(g) => out.push(g),
                Steal::Retry => continue,
                Steal::Empty => break,
            }
        }
        let g = (*p).runnext.swap(core::ptr::null_mut(), Ordering::AcqRel);
        if !g.is_null() {
            out.push(GPtr(g));
        }
    }
    out
}

/// True when the kernel says the thread is not running (state S or D in
/// /proc/self/task/TID/stat): it sits in a blocking system call.
fn thread_sleeping(tid: u32) -> bool {
    if tid == 0 {
        return false;
    }
    let mut buf = [0u8; 512];
    let path = format!("/proc/self/task/{tid}/stat\0");
    let Ok(stat) = crate::runtime::sys::read_file(path.as_bytes(), &mut buf) else {
        return false;
    };
    let stat = String::from_utf8_lossy(stat);
    // The state follows the parenthesised command name, which may contain spaces.
    match stat
        .rfind(')')
        .and_then(|i| stat[i + 1..].trim_start().chars().next())
    {
        Some(c) => c == 'S' || c == 'D',
        None => false,
    }
}
