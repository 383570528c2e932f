//! The scheduler: global state, the worker loop, spawn, exit, join, yield, thread
//! locking, GOMAXPROCS, init and shutdown. Go's design (`runtime/proc.go`), smaller.
//!
//! Where a goroutine goes:
//! - spawned or woken by a goroutine: the current P's `runnext`, so a hand-off stays
//!   on one core; the one it displaces goes to the P's ring (a wake-up) or its spawn
//!   stack (a spawn: taken newest first, so a tree of spawns runs depth first; p.rs);
//! - spawned or woken by a plain thread (or an M without a P): the global queue;
//! - a homed goroutine (see `home.rs`): its home's queue, whoever readies it;
//! - a P whose queue is empty takes from the global queue, then steals half of
//!   another P's ring or the oldest of its spawn stack (a `runnext` is its owner's:
//!   sysmon rescues one that sits behind a goroutine that runs for long).
//!
//! Switching: a goroutine that yields, parks or exits switches *directly* to the next
//! goroutine of its P (one switch, not two through g0); the deferred half of the
//! switch (requeue, unlock, free) runs on the next context (see `m.rs`). Only when the
//! P has nothing local does it switch to g0, whose loop (`find_runnable`) looks
//! further and finally puts the M to sleep.
//!
//! The wake-up protocol. Waking an idle vCPU costs 15-20 us here, so workers are woken
//! sparingly, yet work must never sit next to an idle P with nobody coming for it.
//! Every step is a function in the section "the wake-up protocol" below, with the
//! invariant it keeps:
//! - Who wakes whom: a producer that puts work where another P could take it (a P's
//!   stealable queue, the global queue; not a `runnext` hand-off, which stays on this
//!   core) calls `wakep` afterwards. `wakep` starts an M only if a P is idle and no M
//!   spins (`nmspinning`, counted before the M runs: `claim_spinning_wake`).
//! - Spinners carry the wake-ups of the producers that saw them: one that finds work
//!   and was the last spinner wakes another (`resetspinning`); one that finds nothing
//!   stops counting, releases its P, then looks at every queue once more before it
//!   sleeps (`stop_spinning`, `recheck_after_spinning`). A producer either saw it
//!   counted (and that last look finds the work) or saw it gone (and woke somebody).
//! - Who may sleep: an M without a P, after that look. A P goes idle only after a last
//!   look at the global queue under the scheduler lock (`release_idle_p`), so a global
//!   put either is seen or finds the idle P. The P of an M that blocks is handed on
//!   when it has work, when nobody spins, or when timers or fds have no poller
//!   (`handoffp`).
//! - The poller (the one idle M or home thread blocked in epoll_wait) is a sleeper that
//!   can be woken: `startm` with no idle M interrupts it rather than make a thread, and
//!   a spinning wake handed to it stays counted until it takes it up or gives it back
//!   (`hand_to_poller`, `take_handoff`, `release_poller`).
//! - sysmon's safety net counts and repairs a wake-up lost anyway (work, an idle P and
//!   no spinner at two looks in a row); `GRDEBUG=wakenet=0` turns it off, so that a
//!   test shows the protocol alone suffices.
//!
//! An M with nothing to do spins through one steal round and then sleeps on a futex:
//! an idle runtime uses no CPU.

use core::ptr;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::collections::VecDeque;
use std::sync::Mutex;

use crate::arch;
use crate::runtime::context::{self, Ctx};
use crate::runtime::g::{GPtr, GrFn, WaitReason, DEAD, G, RUNNABLE, RUNNING, WAITING};
use crate::runtime::lock::{futex_wait, futex_wake, nanotime, SpinLock};
use crate::runtime::m::{
    current_m, finish_switch, notesleep, notewakeup, set_current_m, Pending, PendingFn, DUE_CTX,
    DUE_POLL, DUE_TIMERS, M,
};
use crate::runtime::p::{P, P_DEAD, P_IDLE, P_RUNNING};
use crate::runtime::park::{Waiter, Wake};
use crate::runtime::stack;
use crate::runtime::{fatal, netpoll, sanitizer, timer};

pub const MAX_PROCS: usize = 256;

const UNINIT: u32 = 0;
const RUNNING_STATE: u32 = 1;
const STOPPING: u32 = 2;

struct Locked {
    pidle: Vec<*mut P>,
    midle: Vec<*mut M>,
    runq: VecDeque<GPtr>,
    allm: Vec<*mut M>,
    threads: Vec<std::thread::JoinHandle<()>>,
}
// SAFETY: the raw pointers are runtime objects shared by design; the mutex orders access.
unsafe impl Send for Locked {}

pub struct Sched {
    lock: Mutex<Locked>,
    pub npidle: AtomicU32,
    pub nmspinning: AtomicU32,
    pub gomaxprocs: AtomicU32,
    /// Length of the global queue (read without the lock as a hint).
    pub runqsize: AtomicUsize,
    /// Goroutines spawned and exited where no P was held (plain threads, homes); the
    /// rest are counted per P (`P::counts`; see `count`).
    spawned_off_p: AtomicU64,
    exited_off_p: AtomicU64,
    pub state: AtomicU32,
    allp: [AtomicPtr<P>; MAX_PROCS],
    /// One past the highest P id made so far: `count` looks at `allp[..nallp]` only.
    nallp: AtomicUsize,
    pub nthreads: AtomicUsize,
    pub steals: AtomicUsize,
    /// Extra Ps standing in for Ps whose M is stuck (see sysmon).
    pub rescue: AtomicU32,
    pub sysmon_rescues: AtomicUsize,
    /// Times sysmon found runnable work that no worker had been woken for.
    pub lost_wakeups: AtomicUsize,
}

pub static SCHED: Sched = Sched {
    lock: Mutex::new(Locked {
        pidle: Vec::new(),
        midle: Vec::new(),
        runq: VecDeque::new(),
        allm: Vec::new(),
        threads: Vec::new(),
    }),
    npidle: AtomicU32::new(0),
    nmspinning: AtomicU32::new(0),
    gomaxprocs: AtomicU32::new(0),
    runqsize: AtomicUsize::new(0),
    spawned_off_p: AtomicU64::new(0),
    exited_off_p: AtomicU64::new(0),
    state: AtomicU32::new(UNINIT),
    allp: [const { AtomicPtr::new(ptr::null_mut()) }; MAX_PROCS],
    nallp: AtomicUsize::new(0),
    nthreads: AtomicUsize::new(0),
    steals: AtomicUsize::new(0),
    rescue: AtomicU32::new(0),
    sysmon_rescues: AtomicUsize::new(0),
    lost_wakeups: AtomicUsize::new(0),
};

static INIT_LOCK: Mutex<()> = Mutex::new(());

/// Set in the child of a fork(): the runtime's threads did not come along.
static FORKED_CHILD: AtomicBool = AtomicBool::new(false);

#[inline]
pub fn in_forked_child() -> bool {
    FORKED_CHILD.load(Ordering::Relaxed)
}

extern "C" fn after_fork_in_child() {
    FORKED_CHILD.store(true, Ordering::Relaxed);
}

fn register_atfork() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: registering a child handler that only stores an atomic.
        unsafe { libc::pthread_atfork(None, None, Some(after_fork_in_child)) };
    });
}

fn locked() -> std::sync::MutexGuard<'static, Locked> {
    SCHED.lock.lock().unwrap_or_else(|e| e.into_inner())
}

#[inline]
fn gomaxprocs() -> usize {
    SCHED.gomaxprocs.load(Ordering::Relaxed) as usize
}

/// Ps that may run goroutines: GOMAXPROCS plus rescue Ps (see sysmon).
#[inline]
pub(crate) fn nprocs_limit() -> usize {
    gomaxprocs() + SCHED.rescue.load(Ordering::Relaxed) as usize
}

/// True when `p` is beyond the processor limit (`gr_maxprocs` lowered it, or a rescue
/// P's stuck M is back): whoever holds it, or takes it idle, retires it.
///
/// # Safety
/// `p` is a P (Ps are never freed).
#[inline]
unsafe fn beyond_limit(p: *const P) -> bool {
    // SAFETY: our contract; `id` never changes.
    unsafe { (*p).id >= nprocs_limit() }
}

#[inline]
pub(crate) fn allp(i: usize) -> *mut P {
    SCHED.allp[i].load(Ordering::Acquire)
}

// ---------------------------------------------------------------------------------
// init / shutdown

/// Starts the runtime if it is not running. Returns the number of processors it
/// started with, or `-EALREADY` when it was already running.
pub fn init(maxprocs: i32) -> i32 {
    if SCHED.state.load(Ordering::Acquire) == RUNNING_STATE {
        return -libc::EALREADY;
    }
    let _g = INIT_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    if SCHED.state.load(Ordering::Acquire) == RUNNING_STATE {
        return -libc::EALREADY;
    }
    stack::init();
    // Before any worker can become the poller: a break_poll() must always find the
    // eventfd it writes to, or an early wake-up would be lost.
    netpoll::init();
    crate::runtime::sanitizer::init();
    crate::runtime::sys::install_panic_hook();
    register_atfork();
    let n = if maxprocs > 0 {
        maxprocs as usize
    } else {
        std::env::var("GR_MAXPROCS")
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok())
            .filter(|&n| n > 0)
            .unwrap_or_else(|| {
                std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(1)
            })
    }
    .min(MAX_PROCS);
    crate::runtime::runq::prepare_heavy_barrier_if_single_threaded();
    // sysmon first: without a thread for it the runtime does not start, and nothing
    // has changed yet (the inits above are idempotent).
    if !crate::runtime::sysmon::start() {
        return -libc::EAGAIN;
    }
    let mut l = locked();
    SCHED.npidle.store(0, Ordering::SeqCst);
    for i in 0..n {
        activate_p(&mut l, i);
    }
    SCHED.gomaxprocs.store(n as u32, Ordering::SeqCst);
    SCHED.rescue.store(0, Ordering::SeqCst);
    SCHED.state.store(RUNNING_STATE, Ordering::Release);
    drop(l);
    crate::runtime::debug::install_sigquit();
    n as i32
}

/// Starts the runtime if it is not running (the lazy start of every entry point): 0,
/// or the negative errno value of a start that failed (-EAGAIN: no thread for sysmon).
#[inline]
pub fn ensure_init() -> i32 {
    if SCHED.state.load(Ordering::Acquire) == RUNNING_STATE {
        return 0;
    }
    init(0).min(0)
}

pub(crate) fn ensure_p(i: usize) -> *mut P {
    let p = allp(i);
    if !p.is_null() {
        return p;
    }
    let p = Box::into_raw(Box::new(P::new(i)));
    SCHED.allp[i].store(p, Ordering::Release);
    SCHED.nallp.fetch_max(i + 1, Ordering::SeqCst);
    p
}

/// Stops every worker and returns cached memory. `-EBUSY` while goroutines remain
/// (or when called from a goroutine); 0 otherwise, also when not running. The runtime
/// starts again lazily on the next call that needs it.
pub fn shutdown() -> i32 {
    if !current_m().is_null() {
        return -libc::EBUSY;
    }
    let _g = INIT_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    if SCHED.state.load(Ordering::Acquire) != RUNNING_STATE {
        return 0;
    }
    if count() != 0 {
        return -libc::EBUSY;
    }
    SCHED.state.store(STOPPING, Ordering::SeqCst);
    netpoll::break_poll();
    crate::runtime::sysmon::stop();
    let threads = {
        let mut l = locked();
        for &m in &l.midle {
            // SAFETY: idle Ms sleep in stopm; a null nextp tells them to exit.
            unsafe { (*m).nextp.store(ptr::null_mut(), Ordering::Relaxed) };
            notewakeup(m);
        }
        l.midle.clear();
        std::mem::take(&mut l.threads)
    };
    for t in threads {
        let _ = t.join();
    }
    let mut l = locked();
    for m in l.allm.drain(..) {
        // SAFETY: every worker thread has exited; nobody references its M.
        drop(unsafe { Box::from_raw(m) });
    }
    l.pidle.clear();
    l.runq.clear();
    SCHED.runqsize.store(0, Ordering::Relaxed);
    for i in 0..MAX_PROCS {
        let p = allp(i);
        if !p.is_null() {
            // SAFETY: no M holds a P any more.
            unsafe {
                flush_p_caches(p);
                (*p).status.store(P_DEAD, Ordering::Relaxed);
                (*p).m = ptr::null_mut();
            }
        }
    }
    drop(l);
    stack::release_all();
    netpoll::shutdown();
    SCHED.npidle.store(0, Ordering::SeqCst);
    SCHED.nmspinning.store(0, Ordering::SeqCst);
    POLLER_SPIN_HANDOFF.store(false, Ordering::SeqCst);
    SCHED.nthreads.store(0, Ordering::SeqCst);
    SCHED.state.store(UNINIT, Ordering::Release);
    0
}

// ---------------------------------------------------------------------------------
// run queues

/// Puts a runnable goroutine on the global queue. The caller then wakes a worker
/// (`wakep`).
pub(crate) fn globrunqput(g: *mut G) {
    let mut l = locked();
    l.runq.push_back(GPtr(g));
    SCHED.runqsize.store(l.runq.len(), Ordering::SeqCst);
}

/// Puts runnable goroutines on the global queue, in order, under the lock the caller
/// holds.
fn globrunqput_batch(l: &mut Locked, gs: impl IntoIterator<Item = GPtr>) {
    l.runq.extend(gs);
    SCHED.runqsize.store(l.runq.len(), Ordering::SeqCst);
}

/// Takes a fair share of the global queue into `p`'s queue and returns one to run.
///
/// # Safety
/// The caller holds `p`.
unsafe fn globrunqget(l: &mut Locked, p: *mut P) -> *mut G {
    let len = l.runq.len();
    if len == 0 {
        return ptr::null_mut();
    }
    let n = (len / gomaxprocs().max(1) + 1).min(len).min(128);
    let first = l.runq.pop_front().expect("n > 0").0;
    // SAFETY: the caller holds p, so it is the owner that may push to its queue.
    unsafe { (*p).runq.push_many(l.runq.drain(..n - 1).map(|g| g.0)) };
    SCHED.runqsize.store(l.runq.len(), Ordering::SeqCst);
    first
}

/// The next goroutine from the P's own queues, looking at the global queue (and due
/// timers and ready fds) every 61 schedules so they cannot starve (Go's constant).
/// Enters a scheduling step (`P::enter_sched`): the caller leaves it, or the switch
/// it makes does (`finish_switch`). Null, without a step, when that look finds `p`
/// beyond the processor limit (`periodic_look`): its M then goes to g0.
///
/// # Safety
/// The caller holds `p`.
#[inline(always)]
unsafe fn pick_local(p: *mut P) -> *mut G {
    // SAFETY: the caller holds p, so it may use the owner-only parts.
    unsafe {
        if (*p).check_due() {
            let Some(g) = periodic_look(p) else {
                return ptr::null_mut();
            };
            if !g.is_null() {
                (*p).enter_sched();
                return g;
            }
        }
        (*p).enter_sched();
        (*p).get()
    }
}

/// The look every `CHECK_EVERY` schedules, which a switch makes in `pick_local` and a
/// yield in `yield_slow`: None when `p` is beyond the processor limit (its M must go
/// to g0, which retires it; looked at here rather than at every schedule, since the
/// limit moves rarely), else what `periodic_checks` took from the global queue (or
/// null).
///
/// # Safety
/// The caller holds `p`.
#[inline(always)]
unsafe fn periodic_look(p: *mut P) -> Option<*mut G> {
    // SAFETY: the caller holds p.
    unsafe {
        if beyond_limit(p) {
            return None;
        }
        Some(periodic_checks(p))
    }
}

/// Fairness under a busy P: fires due timers, asks for a poll of ready fds (at most
/// once a millisecond), moves a spawned goroutine kept waiting too long to the ring
/// (`P::age_spawned`), and takes from the global queue.
///
/// It may run while a goroutine that is switching away still holds the lock of the
/// object it parks on, so then it must wait for no lock: the due timers (a shard's
/// lock, and callbacks that take channel and select locks), the expired contexts'
/// cancels and the fd poll (whose events take fd locks) are left to `finish_switch`,
/// after that lock is released (`M::due`).
///
/// Its system calls (the timer callbacks', a cancel's, the global queue's lock) may
/// set errno: a goroutine switching away has saved its own before it picks
/// (`switch_away`), and `yield_slow` keeps it around its own call.
///
/// # Safety
/// The caller holds `p`.
#[cold]
unsafe fn periodic_checks(p: *mut P) -> *mut G {
    // SAFETY: the caller holds p.
    unsafe {
        stack::trim_cache(&mut (*p).stacks);
        (*p).age_spawned();
    }
    // During a switch (the goroutine leaving may hold a lock that a timer callback
    // or a cancel needs), the switch's other side does that work.
    let switching = crate::runtime::m::switching();
    let when = timer::next_when();
    let now = if when == i64::MAX { 0 } else { nanotime() };
    if when <= now {
        if switching {
            // SAFETY: the caller holds p, so p.m is the calling thread's M.
            unsafe { (*(*p).m).due |= DUE_TIMERS };
        } else {
            timer::run_due(now);
        }
    }
    if context::expired_waiting() {
        if switching {
            // SAFETY: the caller holds p, so p.m is the calling thread's M.
            unsafe { (*(*p).m).due |= DUE_CTX };
        } else {
            context::cancel_expired();
        }
    }
    if fds_unpolled() && nanotime() - netpoll::LAST_POLL.load(Ordering::Relaxed) > 1_000_000 {
        // SAFETY: the caller holds p, so p.m is the calling thread's M.
        unsafe { (*(*p).m).due |= DUE_POLL };
    }
    if SCHED.runqsize.load(Ordering::Relaxed) > 0 {
        let mut l = locked();
        // SAFETY: the caller holds p.
        return unsafe { globrunqget(&mut l, p) };
    }
    ptr::null_mut()
}

/// Makes a waiting goroutine runnable.
///
/// # Safety
/// `g` is WAITING and this is its one wake-up.
#[inline]
pub unsafe fn ready(g: *mut G) {
    // SAFETY: g's descriptor is valid; the waker owns the wake-up, so it alone moves g
    // to RUNNABLE and queues it (no other thread writes its status meanwhile: a load
    // and a store, no locked instruction; a second wake-up is still caught).
    unsafe {
        let prev = (*g).status.load(Ordering::Relaxed);
        if prev != WAITING {
            bad_ready(g, prev);
        }
        (*g).status.store(RUNNABLE, Ordering::Release);
        (*g).wait_reason = WaitReason::None as u8;
        runqput_current(g);
    }
}

#[cold]
#[inline(never)]
fn bad_ready(g: *mut G, prev: u32) -> ! {
    // SAFETY: descriptors are never freed.
    fatal(&format!("ready of goroutine {} in state {prev}", unsafe {
        (*g).id()
    }));
}

/// Queues a runnable goroutine from the calling thread (`runqput` with the P it
/// holds); an M without a P that is polling collects it instead (its caller decides
/// where the batch goes, see `injectglist`).
///
/// # Safety
/// `g` is RUNNABLE and the caller's to queue (it is on no queue).
#[inline(always)]
unsafe fn runqput_current(g: *mut G) {
    let m = current_m();
    // SAFETY: g is ours to queue; a non-null M is the calling thread's, and so is its
    // P (if any).
    unsafe {
        let p = if m.is_null() { ptr::null_mut() } else { (*m).p };
        if p.is_null() && !m.is_null() && (*m).collecting && (*g).home.is_null() {
            (*g).link = (*m).collected;
            (*m).collected = g;
            return;
        }
        runqput(p, g, false);
    }
}

/// Queues a runnable goroutine where it should run (the rules at the top of this
/// file), then wakes a worker if another P could take it:
/// - a homed goroutine: its home's queue (the home thread is woken by the put);
/// - with `p`: p's `runnext`; what that displaces goes to p's ring (a wake-up) or
///   its spawn stack (`spawned`: a spawn, see p.rs), both stealable, so `wakep` (not
///   for the hand-off itself: it stays on this core);
/// - with no P: the global queue, and `wakep`.
///
/// # Safety
/// `g` is RUNNABLE and on no queue; `p` is null or held by the caller.
#[inline(always)]
unsafe fn runqput(p: *mut P, g: *mut G, spawned: bool) {
    // SAFETY: the caller's guarantees; a home outlives its goroutines.
    unsafe {
        let home = (*g).home;
        if !home.is_null() {
            (*home).put(g);
            return;
        }
        if !p.is_null() {
            let stealable = (*p).put_next(g, spawned);
            (*p).leave_sched();
            if stealable {
                wakep();
            }
            return;
        }
    }
    globrunqput(g);
    wakep();
}

// ---------------------------------------------------------------------------------
// the wake-up protocol (stated at the top of this file)

/// Wakes a worker for new work (Go's `wakep`). Every producer calls it after putting
/// work where another P could take it (a stealable queue, the global queue).
/// Invariant: a wake-up is needed only while a P is idle and no M spins; a spinner
/// finds the work itself, and the last spinner to stop passes the wake-up on
/// (`resetspinning`), so a burst of work wakes one M at a time.
#[inline]
pub fn wakep() {
    if SCHED.npidle.load(Ordering::SeqCst) > 0
        && SCHED.nmspinning.load(Ordering::SeqCst) == 0
        && claim_spinning_wake()
    {
        startm(ptr::null_mut(), true);
    }
}

/// Counts a spinner ahead of the M that is to spin, if none is counted (0 -> 1): true
/// for the one caller that must then start that M (`startm(.., true)`), which takes
/// the count over. Invariant: the count never stays without an M on its way to
/// spin, or every later `wakep` would stay quiet (`drop_spinning_wake` gives it back).
#[inline]
fn claim_spinning_wake() -> bool {
    SCHED
        .nmspinning
        .compare_exchange(0, 1, Ordering::SeqCst, Ordering::SeqCst)
        .is_ok()
}

/// Gives back the count of a spinning wake that no M took up. Invariant: only when no
/// M can take work now (no idle P, shutdown, no thread could be made: sysmon retries),
/// or when the caller looks for work again itself or calls `wakep` next.
fn drop_spinning_wake() {
    SCHED.nmspinning.fetch_sub(1, Ordering::SeqCst);
}

/// `m` starts looking for work in other Ps' queues. Counted in `nmspinning`, it takes
/// over the wake-ups of producers that see it: they wake nobody.
///
/// # Safety
/// `m` is the calling thread's M and is not spinning.
unsafe fn start_spinning(m: *mut M) {
    // SAFETY: m is ours.
    unsafe { (*m).spinning = true };
    SCHED.nmspinning.fetch_add(1, Ordering::SeqCst);
}

/// `m` stops spinning: the spinners counted before (0: `m` was not spinning).
/// Invariant: a spinner that stops without work must look at every queue once more
/// before it sleeps (`recheck_after_spinning`); one that stops with work must wake
/// another if it was the last (`resetspinning`). Either way no producer that saw it
/// counted is left unserved.
///
/// # Safety
/// `m` is the calling thread's M.
unsafe fn stop_spinning(m: *mut M) -> u32 {
    // SAFETY: m is ours.
    unsafe {
        if !(*m).spinning {
            return 0;
        }
        (*m).spinning = false;
    }
    SCHED.nmspinning.fetch_sub(1, Ordering::SeqCst)
}

/// `m` found work and stops spinning (Go's `resetspinning`). Invariant: the last
/// spinner to stop wakes another (`wakep`): producers that queued work while it was
/// counted woke nobody, and there may be more than the one goroutine it found.
///
/// # Safety
/// `m` is the calling thread's M.
unsafe fn resetspinning(m: *mut M) {
    // SAFETY: the caller's guarantee.
    if unsafe { stop_spinning(m) } == 1 {
        wakep();
    }
}

/// Whether `m` may look into other Ps' queues: it spins already, or fewer than half of
/// the busy Ps have a spinner looking (more would burn CPU for nothing: Go's limit).
///
/// # Safety
/// `m` is the calling thread's M.
unsafe fn may_spin(m: *mut M) -> bool {
    let busy = (nprocs_limit() as u32).saturating_sub(SCHED.npidle.load(Ordering::SeqCst));
    // SAFETY: m is ours.
    unsafe { (*m).spinning || 2 * SCHED.nmspinning.load(Ordering::SeqCst) < busy }
}

/// The look a spinner takes after it stopped spinning and released its P, before it
/// sleeps: an idle P to spin with again if there is work anywhere. Work queued after
/// its steal pass by a producer that saw it spinning (and so woke nobody) is found
/// here.
fn recheck_after_spinning() -> Option<*mut P> {
    if !work_anywhere() {
        return None;
    }
    pidleget_locked()
}

/// True when the global queue or some P's ring holds a goroutine that an idle P could
/// take (a `runnext` is its P's own: see p.rs).
pub(crate) fn work_anywhere() -> bool {
    if SCHED.runqsize.load(Ordering::SeqCst) > 0 {
        return true;
    }
    for i in 0..nprocs_limit() {
        let p = allp(i);
        // SAFETY: Ps are never freed; has_stealable_work only reads atomics.
        if !p.is_null() && unsafe { (*p).has_stealable_work() } {
            return true;
        }
    }
    false
}

// The poller role (`netpoll::POLLER`): the one idle M or home thread blocked in
// epoll_wait. It counts as a sleeper that can be woken: `startm` with no idle M
// interrupts its poll (and may hand it a spinning wake) rather than make a thread.

/// No thread blocks in epoll_wait: nobody notices ready fds or due timers unless a
/// thread that runs looks for them (or makes an M that will poll).
#[inline]
pub(crate) fn nobody_polling() -> bool {
    netpoll::POLLER.load(Ordering::SeqCst) == netpoll::POLLER_NONE
}

/// Goroutines wait on fds and no thread blocks in epoll_wait for them: a look with a
/// non-blocking poll is up to whoever comes by. A hint (relaxed loads): a stale answer
/// only moves that look to the next schedule or sysmon round.
#[inline]
pub(crate) fn fds_unpolled() -> bool {
    netpoll::WAITERS.load(Ordering::Relaxed) > 0
        && netpoll::POLLER.load(Ordering::Relaxed) == netpoll::POLLER_NONE
}

/// Takes the poller role for `who` (`POLLER_WORKER` or `POLLER_HOME`) if nobody holds
/// it. The holder blocks in epoll_wait, then gives the role back with `release_poller`.
pub(crate) fn take_poller_role(who: u32) -> bool {
    netpoll::POLLER
        .compare_exchange(
            netpoll::POLLER_NONE,
            who,
            Ordering::SeqCst,
            Ordering::SeqCst,
        )
        .is_ok()
}

/// A spinning wake handed to the blocked poller (see `hand_to_poller`), counted in
/// `nmspinning` until the poller takes it up or gives it back.
static POLLER_SPIN_HANDOFF: AtomicBool = AtomicBool::new(false);

/// Gives a wake-up for idle P `p` to the idle M blocked in epoll_wait instead of
/// making one more thread: `p` goes back to the idle list and the poll is
/// interrupted; the poller looks for work as soon as it wakes. A spinning wake stays
/// counted in `nmspinning` and is handed to the poller, which becomes the spinner when
/// it takes a P: until then further `wakep` calls see a spinner and stay quiet (no
/// storm of eventfd writes while it wakes up). Invariant: the hand-off is made under
/// the scheduler lock, and `release_poller` clears `POLLER` under it too, so a poller
/// on its way out either sees the hand-off or was gone before we looked. False when a
/// spinning wake is already on its way to the poller: the caller drops this one.
fn hand_to_poller(mut l: std::sync::MutexGuard<'_, Locked>, p: *mut P, spinning: bool) -> bool {
    pidleput(&mut l, p);
    let already_handed = spinning && POLLER_SPIN_HANDOFF.swap(true, Ordering::SeqCst);
    drop(l);
    if already_handed {
        return false;
    }
    netpoll::break_poll();
    true
}

/// The poller takes a spinning wake that was handed to it: true when it now counts as
/// a spinner. Without a P to spin with, the caller gives it back
/// (`drop_spinning_wake`) and looks for work once more before it blocks again.
fn take_handoff() -> bool {
    POLLER_SPIN_HANDOFF.swap(false, Ordering::SeqCst)
}

/// Gives up the poller role (a worker or a home thread leaving `epoll_wait` for
/// good). Invariant: `POLLER` is cleared under the scheduler lock, where `startm`
/// hands spinning wakes to the poller, so a hand-off that came too late for the
/// poller's last look is found here and passed on as an ordinary wake-up instead of
/// staying counted in `nmspinning` with nobody spinning (which would silence every
/// later `wakep`).
pub(crate) fn release_poller() {
    {
        let _l = locked();
        netpoll::POLLER.store(netpoll::POLLER_NONE, Ordering::SeqCst);
    }
    if take_handoff() {
        drop_spinning_wake();
        wakep();
    }
}

/// The wake-up protocol's state in one line, for sysmon's lost-wake-up note.
pub(crate) fn wake_state() -> String {
    let l = locked();
    let mut out = format!(
        "poller={} handoff={} idleprocs={} spinning={} runqueue={} idlethreads={} ps=[",
        netpoll::POLLER.load(Ordering::SeqCst),
        POLLER_SPIN_HANDOFF.load(Ordering::SeqCst),
        SCHED.npidle.load(Ordering::SeqCst),
        SCHED.nmspinning.load(Ordering::SeqCst),
        l.runq.len(),
        l.midle.len()
    );
    for i in 0..nprocs_limit() {
        let p = allp(i);
        if p.is_null() {
            continue;
        }
        // SAFETY: Ps are never freed; only atomics are read.
        unsafe {
            out.push_str(&format!(
                " {}:{}{}",
                i,
                (*p).status.load(Ordering::SeqCst),
                if (*p).has_work() { "+work" } else { "" }
            ));
        }
    }
    out.push(']');
    out
}

// ---------------------------------------------------------------------------------
// processors and workers

/// Adds a rescue P (sysmon found a P stuck with work behind it) to the idle list.
pub(crate) fn add_rescue_p() {
    let mut l = locked();
    let id = nprocs_limit();
    if id >= MAX_PROCS {
        return;
    }
    SCHED.rescue.fetch_add(1, Ordering::SeqCst);
    activate_p(&mut l, id);
}

/// Makes P `id` (now below the limit) usable. A P that has not finished retiring
/// since the limit last dropped below it is still running or idle: it simply stays.
fn activate_p(l: &mut Locked, id: usize) {
    let p = ensure_p(id);
    // SAFETY: a retired (DEAD) P is held by nobody; others are left alone.
    unsafe {
        if (*p).status.load(Ordering::Acquire) != P_DEAD {
            return;
        }
        (*p).status.store(P_IDLE, Ordering::Relaxed);
        (*p).m = ptr::null_mut();
    }
    l.pidle.push(p);
    SCHED.npidle.fetch_add(1, Ordering::SeqCst);
}

/// Runs an M on `p` (an idle P when null): an idle M, the poller, or a new thread.
/// `spinning`: the caller counted it in `nmspinning` (`claim_spinning_wake`); the M
/// takes the count over, or it is given back when no M will run.
fn startm(p: *mut P, spinning: bool) {
    crate::runtime::sysmon::wake_if_sleeping();
    if !hand_p_to_an_m(p, spinning) && spinning {
        drop_spinning_wake();
    }
}

/// `startm`'s work: true when an M (or the poller) will run `p`, false when none will
/// (no idle P, shutdown, no thread, or the poller already has a spinning wake).
fn hand_p_to_an_m(p: *mut P, spinning: bool) -> bool {
    let mut l = locked();
    let p = if p.is_null() {
        match pidleget(&mut l) {
            Some(p) => p,
            None => return false,
        }
    } else {
        p
    };
    if SCHED.state.load(Ordering::Acquire) != RUNNING_STATE {
        pidleput(&mut l, p);
        return false;
    }
    if let Some(m) = l.midle.pop() {
        drop(l);
        // SAFETY: an idle M sleeps in stopm and reads these after its wake-up.
        unsafe {
            (*m).spinning = spinning;
            (*m).nextp.store(p, Ordering::Release);
        }
        notewakeup(m);
        return true;
    }
    if netpoll::POLLER.load(Ordering::SeqCst) == netpoll::POLLER_WORKER {
        return hand_to_poller(l, p, spinning);
    }
    newm(l, p, spinning)
}

/// Creates a worker thread to run `p` (no idle M). False when no thread can be made:
/// the P goes back, nothing half-made remains, and the queued work waits for an
/// existing worker.
fn newm(mut l: std::sync::MutexGuard<'_, Locked>, p: *mut P, spinning: bool) -> bool {
    let id = l.allm.len();
    let m = Box::into_raw(Box::new(M::new(id)));
    // SAFETY: the new M is not shared yet.
    unsafe {
        (*m).spinning = spinning;
        (*m).nextp.store(p, Ordering::Relaxed);
    }
    let mp = MPtr(m);
    let spawned = std::thread::Builder::new()
        .name(format!("gr-worker-{id}"))
        .stack_size(256 << 10)
        .spawn(move || {
            let _counted = RuntimeThread::enter();
            let mp = mp;
            mstart(mp.0)
        });
    match spawned {
        Ok(h) => {
            l.allm.push(m);
            l.threads.push(h);
            SCHED.nthreads.fetch_add(1, Ordering::Relaxed);
            true
        }
        Err(_) => {
            pidleput(&mut l, p);
            drop(l);
            // SAFETY: the thread never started; the M was never shared.
            drop(unsafe { Box::from_raw(m) });
            false
        }
    }
}

struct MPtr(*mut M);
// SAFETY: the M is handed to the new thread, which becomes its only user.
unsafe impl Send for MPtr {}

fn pidleget(l: &mut Locked) -> Option<*mut P> {
    loop {
        let p = l.pidle.pop()?;
        SCHED.npidle.fetch_sub(1, Ordering::SeqCst);
        // SAFETY: an idle P is a P, held by nobody.
        if unsafe { beyond_limit(p) } {
            // SAFETY: taken off the idle list, p is held by nobody.
            unsafe { retire_p_queues(l, p) };
            continue;
        }
        return Some(p);
    }
}

/// Takes an idle P, if any.
pub(crate) fn pidleget_locked() -> Option<*mut P> {
    pidleget(&mut locked())
}

/// Puts a released P on the idle list. Invariant (Go's): an idle P queues nothing.
/// Whatever it still holds (a P handed on with work when no thread could take it:
/// `hand_to_poller`, a failed `newm`) goes to the global queue, where the poller's
/// `work_anywhere` and every worker look; its `runnext` would be seen by nobody, since
/// thieves leave it alone.
fn pidleput(l: &mut Locked, p: *mut P) {
    // SAFETY: the caller released p; no M holds it, so we may act as its owner.
    unsafe {
        if beyond_limit(p) {
            retire_p_queues(l, p);
            return;
        }
        if (*p).has_work() {
            requeue_globally(l, p);
        }
        (*p).status.store(P_IDLE, Ordering::Release);
        (*p).m = ptr::null_mut();
    }
    l.pidle.push(p);
    SCHED.npidle.fetch_add(1, Ordering::SeqCst);
}

/// Returns a P's free descriptors, free stacks and stack reservations to the global
/// pools.
///
/// # Safety
/// The caller holds `p`, or nobody does.
unsafe fn flush_p_caches(p: *mut P) {
    // SAFETY: the caller's guarantee: nobody else touches p's owner-only caches.
    unsafe {
        crate::runtime::g::flush_cache(&mut (*p).gcache);
        stack::flush_cache(&mut (*p).stacks);
        if (*p).credits > 0 {
            stack::unreserve(stack::default_class(), (*p).credits as usize);
            (*p).credits = 0;
        }
    }
}

/// A P beyond `gomaxprocs`: its goroutines move to the global queue.
///
/// # Safety
/// Nobody holds `p` (the caller released it).
unsafe fn retire_p_queues(l: &mut Locked, p: *mut P) {
    // SAFETY: nobody holds p, so the caller may act as its owner.
    unsafe {
        requeue_globally(l, p);
        flush_p_caches(p);
        (*p).status.store(P_DEAD, Ordering::Release);
        (*p).m = ptr::null_mut();
    }
}

/// Moves everything `p` queues (its `runnext` included) to the global queue.
///
/// # Safety
/// Nobody holds `p` (the caller released it).
unsafe fn requeue_globally(l: &mut Locked, p: *mut P) {
    let mut v = Vec::new();
    // SAFETY: our contract: nobody holds p, so we may act as its owner.
    unsafe { (*p).drain(&mut v) };
    globrunqput_batch(l, v);
}

/// `m` takes `p`.
///
/// # Safety
/// `m` is the calling thread's M, without a P; `p` was handed to it (taken from the
/// idle list or passed in `nextp`).
unsafe fn acquirep(m: *mut M, p: *mut P) {
    // A P going busy: sysmon must watch it again.
    crate::runtime::sysmon::wake_if_sleeping();
    // SAFETY: the caller's guarantee: p is ours now.
    unsafe {
        (*m).p = p;
        (*p).m = m;
        (*p).status.store(P_RUNNING, Ordering::Release);
    }
}

/// `m` lets go of its P (null if it had none) and returns it.
///
/// # Safety
/// `m` is the calling thread's M.
unsafe fn releasep(m: *mut M) -> *mut P {
    // SAFETY: m is ours.
    unsafe {
        let p = (*m).p;
        (*m).p = ptr::null_mut();
        p
    }
}

/// Puts the M to sleep until it is handed a P. Returns false when woken to exit.
///
/// # Safety
/// `m` is the calling thread's M, without a P.
pub(crate) unsafe fn stopm(m: *mut M) -> bool {
    {
        let mut l = locked();
        if SCHED.state.load(Ordering::Acquire) != RUNNING_STATE {
            return false;
        }
        l.midle.push(m);
    }
    notesleep(m);
    // SAFETY: m is ours; whoever woke us set nextp (or left it null to make us exit).
    unsafe {
        let p = (*m).nextp.swap(ptr::null_mut(), Ordering::Acquire);
        if p.is_null() {
            return false;
        }
        acquirep(m, p);
    }
    true
}

/// Gives a P whose M is about to block (or stop) to another M if there is work for
/// it, else to the idle list (Go's `handoffp`). Invariant: a P with work never goes
/// idle with no M on its way; with no spinner and no idle P, one M must spin (this P
/// may be the only one that could take new work); and timers or fd waits with nobody
/// polling need an M too, or nobody would fire the timer.
pub(crate) fn handoffp(p: *mut P) {
    // SAFETY: the caller released p; has_work reads atomics only.
    let has_work = unsafe { (*p).has_work() } || SCHED.runqsize.load(Ordering::SeqCst) > 0;
    if has_work {
        startm(p, false);
        return;
    }
    if SCHED.nmspinning.load(Ordering::SeqCst) + SCHED.npidle.load(Ordering::SeqCst) == 0
        && claim_spinning_wake()
    {
        startm(p, true);
        return;
    }
    // The M that takes the P becomes the poller once it finds no work. This happens
    // when the poller stopped in `startlockedm` to run a locked goroutine, which then
    // parked with a timeout.
    if nobody_polling()
        && (timer::next_when() != i64::MAX || netpoll::WAITERS.load(Ordering::SeqCst) > 0)
    {
        startm(p, false);
        return;
    }
    let mut l = locked();
    if SCHED.runqsize.load(Ordering::SeqCst) > 0 {
        drop(l);
        startm(p, false);
        return;
    }
    pidleput(&mut l, p);
}

// ---------------------------------------------------------------------------------
// the worker loop (g0)

fn mstart(m: *mut M) {
    set_current_m(m);
    let _alt = stack::AltStack::install();
    // SAFETY: m is this thread's own M.
    crate::runtime::sanitizer::for_thread(unsafe { &mut (*m).g0_fiber });
    // SAFETY: m is this thread's own M; it was handed its first P in nextp by startm.
    unsafe {
        (*m).thread = libc::pthread_self();
        (*m).tid.store(libc::gettid() as u32, Ordering::Relaxed);
        let p = (*m).nextp.swap(ptr::null_mut(), Ordering::Acquire);
        if !p.is_null() {
            acquirep(m, p);
            schedule_loop(m);
        }
    }
    set_current_m(ptr::null_mut());
}

/// The worker's loop on g0: runs goroutines until the runtime shuts down.
///
/// # Safety
/// `m` is the calling thread's M, holding a P, on its own stack (g0).
unsafe fn schedule_loop(m: *mut M) {
    // SAFETY: the caller's guarantees; every G run here was taken from a queue and so
    // is ours to run.
    unsafe {
        loop {
            if !(*m).handoff.is_null() {
                let g = core::mem::replace(&mut (*m).handoff, ptr::null_mut());
                if !startlockedm(m, g) {
                    return;
                }
                continue;
            }
            if !(*m).lockedg.is_null() {
                // Our locked goroutine is not running: give the P away until it is
                // runnable and somebody hands us a P to run it with.
                let p = releasep(m);
                if !p.is_null() {
                    handoffp(p);
                }
                notesleep(m);
                let p = (*m).nextp.swap(ptr::null_mut(), Ordering::Acquire);
                if p.is_null() {
                    return;
                }
                acquirep(m, p);
                execute(m, (*m).lockedg);
                continue;
            }
            let g = find_runnable(m);
            if g.is_null() {
                return;
            }
            let lm = (*g).lockedm.load(Ordering::Acquire);
            if !lm.is_null() && lm != m {
                if !startlockedm(m, g) {
                    return;
                }
                continue;
            }
            execute(m, g);
        }
    }
}

/// Hands our P to the M that `g` is locked to, then sleeps until given a P.
///
/// # Safety
/// `m` is the calling thread's M on g0, holding a P; `g` is runnable, ours to hand
/// over, and locked to another M that sleeps waiting for it.
unsafe fn startlockedm(m: *mut M, g: *mut G) -> bool {
    // SAFETY: the caller's guarantees.
    unsafe {
        let lm = (*g).lockedm.load(Ordering::Acquire);
        let p = releasep(m);
        (*lm).nextp.store(p, Ordering::Release);
        notewakeup(lm);
        stopm(m)
    }
}

/// Makes `g` the goroutine running on `m` (holding `p`, or null on a home thread) and
/// gives a goroutine that runs for the first time its stack. The caller counts the
/// schedule on `p` and switches to `g` next.
///
/// # Safety
/// `m` is the calling thread's M; `p` is null or held by `m`; `g` is runnable and now
/// owned by `m`.
#[inline(always)]
unsafe fn set_running(m: *mut M, p: *mut P, g: *mut G) {
    // SAFETY: the caller's guarantees.
    unsafe {
        (*g).status.store(RUNNING, Ordering::Relaxed);
        (*m).curg = g;
        if (*g).ctx.is_empty() {
            first_run(p, g);
        }
    }
}

/// Runs `g` on a worker, from its scheduler context (g0), until a switch comes back
/// to g0 (`g` may switch directly to others of its P in between).
///
/// # Safety
/// `m` is the calling thread's M, on g0, holding a P; `g` is runnable and now owned
/// by `m`.
#[inline(always)]
unsafe fn execute(m: *mut M, g: *mut G) {
    // SAFETY: the caller's guarantees.
    unsafe {
        let p = (*m).p;
        (*p).tick();
        set_running(m, p, g);
        switch_from_g0(m, g);
    }
}

/// `execute` for a home thread, whose M holds no P (see `home.rs`): `g` may switch
/// directly to others of its home before the switch comes back.
///
/// # Safety
/// `m` is the home's M, bound to the calling thread, on its scheduler context; `g` is
/// a runnable goroutine of the home, now owned by `m`.
pub(crate) unsafe fn execute_homed(m: *mut M, g: *mut G) {
    // SAFETY: the caller's guarantees.
    unsafe {
        set_running(m, ptr::null_mut(), g);
        switch_from_g0(m, g);
    }
}

/// The switch from m's scheduler context to `g` (made running by `set_running`), and
/// the deferred half of whichever switch comes back.
///
/// # Safety
/// `m` is the calling thread's M, on g0; `g` is its running goroutine.
#[inline(always)]
unsafe fn switch_from_g0(m: *mut M, g: *mut G) {
    // SAFETY: the caller's guarantees: g0's context is saved into m, g's resumed.
    unsafe {
        sanitizer::before(&mut (*m).g0_fiber, &(*g).fiber, false);
        let r = arch::switch(&mut (*m).g0, &(*g).ctx, m as usize);
        sanitizer::after(&mut (*m).g0_fiber);
        finish_switch(r as *mut M);
    }
}

/// Finds a goroutine to run (Go's `findRunnable`), stealing and finally sleeping as
/// needed. Returns null when the runtime is shutting down (the M then exits).
///
/// # Safety
/// `m` is the calling thread's M, on g0. It holds a P on every non-null return.
unsafe fn find_runnable(m: *mut M) -> *mut G {
    // SAFETY: the caller's guarantees; p is m's own P while m holds it.
    unsafe {
        loop {
            if SCHED.state.load(Ordering::Acquire) != RUNNING_STATE {
                leave_for_shutdown(m);
                return ptr::null_mut();
            }
            let p = (*m).p;
            if p.is_null() {
                // No P (back from a blocking call, or gave it up below): wait for one.
                if !idle_wait(m) {
                    return ptr::null_mut();
                }
                continue;
            }
            if beyond_limit(p) {
                retire_own_p(m);
                continue;
            }
            let mut g = look_for_work(m, p);
            if g.is_null() {
                // Nothing anywhere: give up the P (unless the global queue filled).
                (*p).leave_sched();
                g = release_idle_p(m, p);
            }
            if !g.is_null() {
                resetspinning(m);
                return g;
            }
            if stop_spinning(m) > 0 {
                // Work may have been queued after our steal pass by someone who saw us
                // spinning and so woke nobody: look once more before sleeping.
                if let Some(p) = recheck_after_spinning() {
                    acquirep(m, p);
                    start_spinning(m);
                }
            }
        }
    }
}

/// One look for a goroutine, nearest first: due timers, this P's queues, the global
/// queue, ready fds (unless the poller watches them), then the other Ps' queues (as a
/// spinner, when `may_spin`). Null when there is none.
///
/// # Safety
/// `m` is the calling thread's M, on g0, holding `p`.
unsafe fn look_for_work(m: *mut M, p: *mut P) -> *mut G {
    if timer::next_when() <= nanotime() {
        timer::run_due(nanotime());
    }
    context::cancel_expired();
    // SAFETY: the caller's guarantees.
    unsafe {
        let g = pick_local(p);
        if !g.is_null() {
            return g;
        }
        if SCHED.runqsize.load(Ordering::SeqCst) > 0 {
            let g = globrunqget(&mut locked(), p);
            if !g.is_null() {
                return g;
            }
        }
        if fds_unpolled() {
            netpoll::poll_ready();
            let g = pick_local(p);
            if !g.is_null() {
                return g;
            }
        }
        if may_spin(m) {
            if !(*m).spinning {
                start_spinning(m);
            }
            let g = steal_work(m);
            if !g.is_null() {
                SCHED.steals.fetch_add(1, Ordering::Relaxed);
                return g;
            }
        }
    }
    ptr::null_mut()
}

/// Found nothing: takes the global queue's share if work arrived there meanwhile,
/// else puts the P on the idle list, its caches flushed. Invariant: both under one
/// hold of the scheduler lock, so a producer that queues globally either is seen here
/// or finds the P idle afterwards (and wakes an M for it).
///
/// # Safety
/// `m` is the calling thread's M, holding `p`.
unsafe fn release_idle_p(m: *mut M, p: *mut P) -> *mut G {
    let mut l = locked();
    // SAFETY: the caller's guarantees; once released, p is held by nobody until the
    // idle list hands it out, after our unlock.
    unsafe {
        let g = globrunqget(&mut l, p);
        if g.is_null() {
            let p = releasep(m);
            // An idle P keeps no stacks or reservations: they could be all that a
            // spawn elsewhere is short of.
            flush_p_caches(p);
            pidleput(&mut l, p);
        }
        g
    }
}

/// `m`'s P is beyond the processor limit (GOMAXPROCS shrank, or a rescue P is no
/// longer needed): it retires, and a worker is woken for the goroutines it held (now
/// on the global queue).
///
/// # Safety
/// `m` is the calling thread's M, holding a P.
unsafe fn retire_own_p(m: *mut M) {
    // SAFETY: the caller's guarantees; released, the P is held by nobody.
    unsafe {
        let p = releasep(m);
        retire_p_queues(&mut locked(), p);
        stop_spinning(m);
    }
    wakep();
}

/// The runtime is stopping: `m` gives its P (if any) back and stops spinning (it is
/// about to exit).
///
/// # Safety
/// `m` is the calling thread's M.
unsafe fn leave_for_shutdown(m: *mut M) {
    // SAFETY: the caller's guarantee; released, the P is held by nobody.
    unsafe {
        let p = releasep(m);
        if !p.is_null() {
            pidleput(&mut locked(), p);
        }
        stop_spinning(m);
    }
}

/// Reverses a list linked through `G::link` (collected newest first; run oldest
/// first, so timers fired together run in deadline order).
///
/// # Safety
/// The list's goroutines are runnable and owned by the caller.
unsafe fn reverse_list(mut g: *mut G) -> *mut G {
    let mut out = ptr::null_mut();
    while !g.is_null() {
        // SAFETY: the caller's guarantee.
        unsafe {
            let next = (*g).link;
            (*g).link = out;
            out = g;
            g = next;
        }
    }
    out
}

/// The goroutines of a list linked through `G::link`, in order. Each link is read
/// before its goroutine is yielded, so the consumer may queue it at once.
///
/// # Safety
/// The list's goroutines are runnable and owned by the caller.
unsafe fn glist(mut g: *mut G) -> impl Iterator<Item = GPtr> {
    core::iter::from_fn(move || {
        if g.is_null() {
            return None;
        }
        let cur = g;
        // SAFETY: the caller's guarantee; nobody else reads or writes the links.
        g = unsafe { (*cur).link };
        Some(GPtr(cur))
    })
}

/// An M without a P and without work: becomes the poller (blocks in epoll_wait until
/// the next timer or fd event, readying what they wake) or, when another M polls,
/// sleeps until handed a P. Returns true holding a P, false at shutdown.
///
/// # Safety
/// `m` is the calling thread's M, on g0, without a P.
unsafe fn idle_wait(m: *mut M) -> bool {
    // SAFETY: the caller's guarantees.
    unsafe {
        loop {
            if SCHED.state.load(Ordering::Acquire) != RUNNING_STATE {
                return false;
            }
            if !crate::runtime::home::homes_do_polling() && take_poller_role(netpoll::POLLER_WORKER)
            {
                let got = poll_until_work(m);
                netpoll::set_poll_deadline(i64::MAX);
                release_poller();
                match got {
                    Some(true) => return true,
                    Some(false) => continue,
                    None => return false,
                }
            }
            return stopm(m);
        }
    }
}

/// The poller's loop. Some(true): holding a P with work; Some(false): readied
/// goroutines went to the global queue for busy Ps (or a home thread takes over the
/// polling); None: shutdown.
///
/// # Safety
/// As `idle_wait`, and `m` holds the poller role.
unsafe fn poll_until_work(m: *mut M) -> Option<bool> {
    // SAFETY: the caller's guarantees.
    unsafe {
        loop {
            if SCHED.state.load(Ordering::Acquire) != RUNNING_STATE {
                return None;
            }
            let when = netpoll::publish_poll_deadline(i64::MAX);
            // Work queued by someone who saw the poller and interrupted it.
            let handoff = take_handoff();
            if SCHED.npidle.load(Ordering::SeqCst) > 0 && work_anywhere() {
                if let Some(p) = pidleget_locked() {
                    acquirep(m, p);
                    if handoff {
                        (*m).spinning = true; // already counted in nmspinning
                    }
                    return Some(true);
                }
            }
            if handoff {
                // No P or no work: stop counting as a spinner, then look once more
                // before blocking. A producer that queued work after our look saw
                // us counted in nmspinning and so woke nobody (the rule every
                // spinner that gives up follows; see `stop_spinning`).
                drop_spinning_wake();
                continue;
            }
            let list = poll_once(m, when);
            if list.is_null() {
                if crate::runtime::home::homes_do_polling() {
                    return Some(false); // home threads take over the polling
                }
                continue;
            }
            return Some(injectglist(m, list));
        }
    }
}

/// The poller's blocking wait, until `when` (i64::MAX: until interrupted): the
/// goroutines that fd events and due timers readied, oldest first.
///
/// # Safety
/// As `poll_until_work`.
unsafe fn poll_once(m: *mut M, when: i64) -> *mut G {
    let timeout = if when == i64::MAX {
        -1
    } else {
        (when - nanotime()).max(0)
    };
    // SAFETY: the caller's guarantees: m is ours, and while it collects, goroutines
    // readied on this thread are linked to its list instead of queued.
    unsafe {
        (*m).collecting = true;
        netpoll::poll_as_poller(timeout);
        timer::run_due(nanotime());
        context::cancel_expired();
        (*m).collecting = false;
        reverse_list(core::mem::replace(&mut (*m).collected, ptr::null_mut()))
    }
}

/// Queues what the poller readied (Go's `injectglist`): on an idle P that `m` then
/// holds (true), waking a worker when there is more than `m` will run; with no idle P,
/// on the global queue for the busy Ps (false). Invariant: like any producer, `wakep`
/// after queueing globally: a P that went idle after our look must be woken (its M
/// checked the global queue under the lock before we filled it).
///
/// # Safety
/// As `poll_until_work`; `list` holds the goroutines the poller readied.
unsafe fn injectglist(m: *mut M, list: *mut G) -> bool {
    let mut l = locked();
    // SAFETY: the caller's guarantees; the P taken is m's from acquirep on.
    unsafe {
        if let Some(p) = pidleget(&mut l) {
            drop(l);
            acquirep(m, p);
            let mut n = 0;
            for g in glist(list) {
                (*p).push(g.0);
                n += 1;
            }
            if n > 1 {
                wakep();
            }
            return true;
        }
        globrunqput_batch(&mut l, glist(list));
    }
    drop(l);
    wakep();
    false
}

/// Steals from other Ps: half of a victim's ring (into ours) and one goroutine to
/// run, or else the oldest of its spawn stack. (Not a victim's `runnext`: that is its
/// owner's, see p.rs.)
///
/// # Safety
/// `m` is the calling thread's M, holding a P whose ring is empty.
unsafe fn steal_work(m: *mut M) -> *mut G {
    // SAFETY: m holds its P; other Ps are only touched through their rings.
    unsafe {
        let procs = nprocs_limit();
        let mine = (*m).p;
        for _ in 0..4 {
            let start = (*m).fastrand() as usize % procs;
            for i in 0..procs {
                let victim = allp((start + i) % procs);
                if victim.is_null() || victim == mine {
                    continue;
                }
                let g = (*victim).steal_for(&*mine);
                if !g.is_null() {
                    return g;
                }
            }
        }
        ptr::null_mut()
    }
}

// ---------------------------------------------------------------------------------
// the goroutine side of a switch

/// Switches from the running goroutine `cur` to the next one of this P (or to g0),
/// leaving `f(m, cur, arg)` to run once `cur` is saved. Returns, when `cur` runs
/// again, the M it now runs on.
///
/// # Safety
/// Runs on goroutine `cur`, which is `(*m).curg`; `cur`'s status is already what `f`
/// expects (RUNNABLE for a requeue, WAITING for a park; an exit uses `exit_away`).
pub unsafe fn switch_away(m: *mut M, cur: *mut G, f: PendingFn, arg: usize) -> *mut M {
    // SAFETY: the caller's guarantees; `next` comes from this M's queues (or its home's),
    // so it is runnable and ours to run.
    unsafe {
        leave_pending(m, cur, f, arg);
        let p = (*m).p;
        let next = pick_next(m, p);
        if !next.is_null() {
            set_running(m, p, next);
            switch_to(m, cur, next)
        } else {
            switch_to_g0(m, cur)
        }
    }
}

/// `switch_away` to g0 whatever this P has queued: for a P beyond the processor
/// limit, which g0 then retires, its queue going to the other Ps (`cur` among it, if
/// `f` requeues it).
///
/// # Safety
/// As `switch_away`.
#[inline(never)] // rare (a P retiring, a goroutine locked elsewhere): off the yield's path
unsafe fn switch_away_to_g0(m: *mut M, cur: *mut G, f: PendingFn, arg: usize) -> *mut M {
    // SAFETY: the caller's guarantees.
    unsafe {
        leave_pending(m, cur, f, arg);
        switch_to_g0(m, cur)
    }
}

/// The first half of a switch away from `cur`: its errno saved (first: the runtime's
/// work on the way, the periodic checks in `pick_next` or a first run's stack in
/// `set_running`, may make system calls that set it) and `f(m, cur, arg)` left to
/// run once it is saved.
///
/// # Safety
/// As `switch_away`.
#[inline(always)]
unsafe fn leave_pending(m: *mut M, cur: *mut G, f: PendingFn, arg: usize) {
    // SAFETY: the caller's guarantees: m is this thread's M, cur its goroutine.
    unsafe {
        (*cur).errno = *(*m).errno;
        (*m).pending = Pending {
            f: Some(f),
            g: cur,
            arg,
        };
    }
}

/// The next goroutine for `m` (holding `p`, or on a home thread) to switch to
/// directly, counted as a schedule; null when `m` must go through g0 instead (nothing
/// local, its goroutine is locked to it, its P is beyond the limit (seen at the
/// periodic look, `periodic_look`), or the next one is locked to another M: then it
/// is left in `m.handoff` for g0).
///
/// # Safety
/// `m` is the calling thread's M, on a goroutine that is switching away.
#[inline(always)]
unsafe fn pick_next(m: *mut M, p: *mut P) -> *mut G {
    // SAFETY: the caller's guarantees; p is m's own.
    unsafe {
        if !(*m).home.is_null() {
            let home = &*(*m).home;
            home.periodic_checks();
            let next = home.pop();
            if !next.is_null() && home.must_let_go_for(next) {
                (*m).due |= crate::runtime::m::DUE_LET_GO;
            }
            return next;
        }
        if !(*m).lockedg.is_null() || p.is_null() {
            return ptr::null_mut();
        }
        let next = pick_local(p);
        if next.is_null() {
            return next;
        }
        let lm = (*next).lockedm.load(Ordering::Acquire);
        if !lm.is_null() && locked_elsewhere(m, next, lm) {
            return ptr::null_mut();
        }
        (*p).tick();
        next
    }
}

/// `pick_next`'s rare case, out of line: `next` is locked to thread `lm`; when that is
/// not `m`'s, it is left in `m.handoff` for g0 to hand over (true).
///
/// # Safety
/// As `pick_next`; `next` is the goroutine it took.
#[cold]
#[inline(never)]
unsafe fn locked_elsewhere(m: *mut M, next: *mut G, lm: *mut M) -> bool {
    if lm == m {
        return false;
    }
    // SAFETY: m is the calling thread's M (our contract).
    unsafe { (*m).handoff = next };
    true
}

/// `switch_away` for a goroutine that has exited: its context is not saved, and
/// `release_dead` frees its stack and descriptor once the switch is made.
///
/// # Safety
/// Runs on goroutine `cur` (`(*m).curg`, DEAD), which never runs again.
unsafe fn exit_away(m: *mut M, cur: *mut G) -> ! {
    // SAFETY: the caller's guarantees, as in switch_away.
    unsafe {
        stack::check_on_own_stack(&*cur);
        (*m).pending = Pending {
            f: Some(release_dead),
            g: cur,
            arg: 0,
        };
        let p = (*m).p;
        let next = pick_next(m, p);
        if !next.is_null() {
            set_running(m, p, next);
            sanitizer::before(&mut (*cur).fiber, &(*next).fiber, true);
            arch::jump(&(*next).ctx, m as usize)
        } else {
            (*m).curg = ptr::null_mut();
            sanitizer::before(&mut (*cur).fiber, &(*m).g0_fiber, true);
            arch::jump(&(*m).g0, m as usize)
        }
    }
}

/// The switch from goroutine `cur` to goroutine `next` (already made running on `m`
/// by `set_running`), with `m`'s pending action set; returns, when `cur` runs again,
/// the M it runs on, after that switch's pending action, with `cur`'s errno back. The
/// check that `cur` still runs on its own stack travels here, so that every switch
/// away from a goroutine makes it.
///
/// # Safety
/// Runs on goroutine `cur` on `m` (the calling thread's M), whose errno value the
/// caller saved in `cur` before any runtime work of the switch (`switch_away`,
/// `yield_now`); `next` is runnable and owned by `m`, and nothing else runs it.
#[inline(always)]
unsafe fn switch_to(m: *mut M, cur: *mut G, next: *mut G) -> *mut M {
    // SAFETY: the caller's guarantees: cur's context is saved into its descriptor and
    // next's resumed.
    unsafe {
        stack::check_on_own_stack(&*cur);
        let r = switch_goroutine(cur, &(*next).ctx, &(*next).fiber, m);
        resumed(cur, r)
    }
}

/// `switch_to`, to `m`'s scheduler context (g0) instead of a goroutine.
///
/// # Safety
/// As `switch_to`, without `next`.
#[inline(never)]
unsafe fn switch_to_g0(m: *mut M, cur: *mut G) -> *mut M {
    // SAFETY: as in switch_to; g0 waits in its loop for a switch back.
    unsafe {
        stack::check_on_own_stack(&*cur);
        (*m).curg = ptr::null_mut();
        let r = switch_goroutine(cur, &(*m).g0, &(*m).g0_fiber, m);
        resumed(cur, r)
    }
}

/// `arch::switch` from goroutine `cur` to the context `load`, whose sanitizer record
/// is `to`: under a sanitizer, told to it on both sides (`switch_sanitized`); else the
/// plain switch behind one test. The test is made once per switch, not on each side:
/// `sanitizer::init` fixes the flag before any goroutine runs, so a goroutine that
/// switched away down one branch resumes down the same one.
///
/// # Safety
/// As `arch::switch`, from `cur`'s context, with `m` the transfer word.
#[inline(always)]
unsafe fn switch_goroutine(
    cur: *mut G,
    load: *const arch::Context,
    to: *const sanitizer::Fiber,
    m: *mut M,
) -> usize {
    // SAFETY: the caller's guarantees.
    unsafe {
        if sanitizer::active() {
            switch_sanitized(cur, load, to, m)
        } else {
            arch::switch(&mut (*cur).ctx, load, m as usize)
        }
    }
}

/// `switch_goroutine` under a sanitizer.
///
/// # Safety
/// As `switch_goroutine`.
#[cold]
#[inline(never)]
unsafe fn switch_sanitized(
    cur: *mut G,
    load: *const arch::Context,
    to: *const sanitizer::Fiber,
    m: *mut M,
) -> usize {
    // SAFETY: the caller's guarantees; cur's record is its own, to's the context's
    // switched to.
    unsafe {
        sanitizer::before(&mut (*cur).fiber, to, false);
        let r = arch::switch(&mut (*cur).ctx, load, m as usize);
        sanitizer::after(&mut (*cur).fiber);
        r
    }
}

/// The goroutine side of a switch coming back: `cur` runs again on the M `r` that
/// switched to it (the transfer word), whose pending action runs first.
///
/// # Safety
/// Right after `arch::switch` returned to `cur`, with `r` its transfer word.
#[inline(always)]
unsafe fn resumed(cur: *mut G, r: usize) -> *mut M {
    // SAFETY: the switch passes the M that now runs cur, the calling thread's.
    unsafe {
        let m2 = r as *mut M;
        finish_switch(m2);
        *(*m2).errno = (*cur).errno;
        m2
    }
}

// ---------------------------------------------------------------------------------
// spawn, exit, join, yield

#[derive(Default)]
pub struct SpawnAttr {
    pub stack_size: usize,
    pub name: *const libc::c_char,
    /// The context to bind the goroutine to (it takes a reference); None: the
    /// spawning goroutine's (none from a plain thread).
    pub ctx: Option<*const Ctx>,
}

/// Creates a goroutine running `f(arg)`. Returns its id, or a negative errno.
///
/// Only a descriptor is set up here; the stack is reserved (so running cannot fail)
/// but attached when the goroutine first runs (see `runtime/stack/`).
pub fn spawn(f: GrFn, arg: *mut libc::c_void, attr: &SpawnAttr) -> i64 {
    spawn_homed(f, arg, attr, ptr::null_mut())
}

/// `spawn`, pinning the goroutine to `home` when that is not null (it then runs
/// only on the home's thread; see `home.rs`).
pub(crate) fn spawn_homed(
    f: GrFn,
    arg: *mut libc::c_void,
    attr: &SpawnAttr,
    home: *mut crate::runtime::home::Home,
) -> i64 {
    let rc = ensure_init();
    if rc < 0 {
        return rc as i64;
    }
    let class = if attr.stack_size == 0 {
        stack::default_class()
    } else {
        match stack::class_of(attr.stack_size) {
            Ok(c) => c,
            Err(e) => return e as i64,
        }
    };
    let m = current_m();
    let p = if m.is_null() || !home.is_null() {
        ptr::null_mut()
    } else {
        // SAFETY: a non-null current M is ours, and so is its P.
        unsafe { (*m).p }
    };
    // SAFETY: p is ours when non-null.
    let g = match unsafe { new_descriptor(p, class) } {
        Ok(g) => g,
        Err(e) => return e as i64,
    };
    // SAFETY: g is a FREE descriptor we now own exclusively; a non-null M is ours,
    // and so is its current goroutine, whose context (if any) it holds a reference
    // to; an explicit context is referenced by the caller (SpawnAttr's rule).
    unsafe {
        let parent = if m.is_null() {
            ptr::null_mut()
        } else {
            (*m).curg
        };
        let ctx = match attr.ctx {
            Some(c) => c,
            None if !parent.is_null() => (*parent).context,
            None => ptr::null(),
        };
        init_g(g, f, arg, class, home, parent, attr.name, ctx);
    }
    // SAFETY: p is null or ours (the caller's M holds it).
    unsafe { count_spawn(p) };
    // SAFETY: g is ours until queued; p is ours when non-null (null for a homed one);
    // the caller keeps the home alive while it has goroutines.
    unsafe {
        let id = (*g).id();
        runqput(p, g, true);
        id
    }
}

/// A FREE descriptor for a new goroutine whose stack is certain: with its stack
/// attached already, or bare, with a stack reserved for its first run (`first_run`).
/// The negative errno value when no stack or descriptor can be had.
///
/// The stack comes at once (the P's cache kept a goroutine that exited here together
/// with its stack, and spawn takes both: one take) only when nothing else is queued
/// on the P, so that the new goroutine runs next, on a stack still in the CPU's cache.
/// Behind other goroutines it would run much later, and a stack taken now would be
/// cold by then (and the cache's most recent one gone to it): skynet's 10-ary tree of
/// 1,111,111 goroutines took 1.6 s instead of 0.7 s on one processor that way. Such
/// a goroutine takes the most recently freed stack when it first runs.
///
/// # Safety
/// `p` is null or held by the caller.
#[inline(always)]
unsafe fn new_descriptor(p: *mut P, class: usize) -> Result<*mut G, i32> {
    // SAFETY: the caller holds p when it is not null, so its caches are ours.
    unsafe {
        if !p.is_null() && class == stack::default_class() && (*p).local_empty() {
            if let Some(e) = (*p).stacks.pop() {
                let g = if e.g.is_null() {
                    match crate::runtime::g::alloc(Some(&mut (*p).gcache)) {
                        Ok(g) => {
                            stack::set_owner(e.stack.slot, g);
                            g
                        }
                        Err(err) => {
                            stack::put(class, e.stack, Some(&mut (*p).stacks));
                            return Err(err);
                        }
                    }
                } else {
                    e.g
                };
                (*g).stack = Some(e.stack);
                return Ok(g);
            }
        }
        let from_credits = reserve_stack(p, class)?;
        let cache = if p.is_null() {
            None
        } else {
            Some(&mut (*p).gcache)
        };
        match crate::runtime::g::alloc(cache) {
            Ok(g) => {
                (*g).stack = None;
                Ok(g)
            }
            Err(e) => {
                unreserve_stack(p, class, from_credits);
                Err(e)
            }
        }
    }
}

/// Reserves a stack of `class` for a new goroutine, so that running it cannot fail:
/// from `p`'s reservations (refilled a batch at a time) when `p` is not null and the
/// class is the default one, else from the global pool. Returns whether it came from
/// `p`'s reservations, or the negative errno value of the failure.
///
/// # Safety
/// `p` is null or held by the caller.
unsafe fn reserve_stack(p: *mut P, class: usize) -> Result<bool, i32> {
    if p.is_null() || class != stack::default_class() {
        return stack::reserve(class, 1).map(|()| false);
    }
    // SAFETY: the caller holds p.
    unsafe {
        if (*p).credits == 0 {
            if stack::shortage() || stack::reserve(class, stack::CREDIT_BATCH as usize).is_err() {
                // Short of stacks (guard budget, address space): give our cached
                // ones back and ask for just one.
                flush_p_caches(p);
                stack::reserve(class, 1)?;
                (*p).credits = 1;
            } else {
                (*p).credits = stack::CREDIT_BATCH;
            }
        }
        (*p).credits -= 1;
    }
    Ok(true)
}

/// Gives back what `reserve_stack` reserved (`from_credits`: its result).
///
/// # Safety
/// As `reserve_stack`, with the same `p`.
unsafe fn unreserve_stack(p: *mut P, class: usize, from_credits: bool) {
    if from_credits {
        // SAFETY: the caller holds p (from_credits implies a P).
        unsafe { (*p).credits += 1 };
    } else {
        stack::unreserve(class, 1);
    }
}

/// Sets up a new goroutine's descriptor, RUNNABLE (its stack, if it has none yet, is
/// attached when the goroutine first runs: `first_run`).
///
/// # Safety
/// `g` is a FREE descriptor the caller owns exclusively; `parent` is null or a live
/// goroutine; `name` is null or a NUL-terminated string; `ctx` is null or a live
/// context the caller holds a reference to (the goroutine takes its own).
#[allow(clippy::too_many_arguments)] // reason: one call site, each a field of the new G
unsafe fn init_g(
    g: *mut G,
    f: GrFn,
    arg: *mut libc::c_void,
    class: usize,
    home: *mut crate::runtime::home::Home,
    parent: *const G,
    name: *const libc::c_char,
    ctx: *const Ctx,
) {
    // SAFETY: the caller's guarantees.
    unsafe {
        if !ctx.is_null() {
            context::retain(ctx);
        }
        (*g).context = ctx;
        (*g).func = Some(f);
        (*g).arg = arg;
        (*g).errno = 0;
        (*g).class = class as u8;
        (*g).lockedm.store(ptr::null_mut(), Ordering::Relaxed);
        (*g).lock_depth = 0;
        (*g).joiners = ptr::null_mut();
        (*g).wait_reason = 0;
        (*g).flags = 0;
        (*g).home = home;
        (*g).set_parent(parent);
        (*g).set_name(name);
        (*g).status.store(RUNNABLE, Ordering::Release);
        sanitizer::hb_spawned(&(*g).fiber);
    }
}

/// Readies a goroutine about to run for the first time: gives it its stack if it has
/// none yet (it holds a reservation: from `p`'s when `p` is not null), and lays out
/// its entry frame.
///
/// # Safety
/// `p` is null or held by the caller; `g` is runnable, has never run, and is owned by
/// the caller's M.
#[inline(never)] // once per goroutine: kept out of the switch paths that call it
unsafe fn first_run(p: *mut P, g: *mut G) {
    // Taking a stack may make system calls (the pool's lock, mmap) that set errno: a
    // goroutine switching away saved its own first (switch_away, yield_now).
    // SAFETY: the caller's guarantees.
    unsafe {
        let st = match (*g).stack {
            Some(st) => st,
            None => {
                let class = (*g).class as usize;
                let st = if p.is_null() {
                    stack::take(class, None).0
                } else {
                    let (st, spare) =
                        stack::take(class, Some((&mut (*p).stacks, &mut (*p).credits)));
                    if !spare.is_null() {
                        // The cached stack came with a free descriptor.
                        crate::runtime::g::free(spare, Some(&mut (*p).gcache));
                    }
                    if (*p).credits > 2 * stack::CREDIT_BATCH {
                        stack::unreserve(stack::default_class(), stack::CREDIT_BATCH as usize);
                        (*p).credits -= stack::CREDIT_BATCH;
                    }
                    st
                };
                stack::set_owner(st.slot, g);
                (*g).stack = Some(st);
                st
            }
        };
        sanitizer::for_goroutine(&mut (*g).fiber, st.lo, st.hi);
        (*g).ctx = arch::prepare(st.hi as *mut u8, goroutine_entry, g as usize);
    }
}

/// The first frame of every goroutine (laid out by `attach_stack`): runs its function,
/// then exits it.
///
/// # Safety
/// Entered only by the switch to a goroutine's first run: `transfer` is the M that
/// switched, `arg` the goroutine, now running on that M.
unsafe extern "C" fn goroutine_entry(transfer: usize, arg: usize) -> ! {
    let g = arg as *mut G;
    // SAFETY: we were switched to by an M that passed itself; g is ours.
    unsafe {
        sanitizer::after(&mut (*g).fiber);
        let m = transfer as *mut M;
        finish_switch(m);
        *(*m).errno = 0;
        if let Some(f) = (*g).func {
            f((*g).arg);
        }
        goexit(g)
    }
}

/// The deferred half of an exit (a `PendingFn`): frees the dead goroutine's stack and
/// descriptor, into `m`'s P's caches when it has one: there both stay together, for
/// the next spawn on this P to take at once (`new_descriptor`).
///
/// # Safety
/// Runs as `m`'s pending action, after the switch away from `g`, which has exited.
unsafe fn release_dead(m: *mut M, g: *mut G, _arg: usize) {
    // SAFETY: g has exited and its context will never run again; m is ours.
    unsafe {
        let p = (*m).p;
        sanitizer::release(&mut (*g).fiber);
        if !p.is_null() && (*g).class as usize == stack::default_class() {
            if let Some(st) = (*g).stack {
                crate::runtime::g::mark_free(g);
                (*g).stack = None;
                if (*p).stacks.push_exited(st, g) {
                    give_back_if_short(p);
                    return;
                }
                (*g).stack = Some(st);
            }
        }
        if let Some(st) = (*g).stack.take() {
            let cache = if p.is_null() {
                None
            } else {
                Some(&mut (*p).stacks)
            };
            stack::put((*g).class as usize, st, cache);
        }
        let cache = if p.is_null() {
            None
        } else {
            Some(&mut (*p).gcache)
        };
        crate::runtime::g::free(g, cache);
        if !p.is_null() {
            give_back_if_short(p);
        }
    }
}

/// While stacks are short (`stack::shortage`), an exit hands the P's cached stacks
/// and reservations back: they may be what a spawn elsewhere is short of.
///
/// # Safety
/// The caller holds `p`.
#[inline(always)]
unsafe fn give_back_if_short(p: *mut P) {
    if stack::shortage() {
        // SAFETY: our contract.
        unsafe { flush_p_caches(p) };
    }
}

/// Ends the running goroutine `g`: wakes its joiners (and `wait_all`), then switches
/// away for good.
///
/// # Safety
/// `g` is the goroutine running on the calling thread, and it has returned.
unsafe fn goexit(g: *mut G) -> ! {
    let m = current_m();
    // SAFETY: g is the goroutine running on m.
    unsafe {
        sanitizer::hb_exited(&(*g).fiber);
        if !(*g).lockedm.load(Ordering::Relaxed).is_null() {
            (*g).lockedm.store(ptr::null_mut(), Ordering::Relaxed);
            (*g).lock_depth = 0;
            (*m).lockedg = ptr::null_mut();
        }
        let ctx = core::mem::replace(&mut (*g).context, ptr::null());
        if !ctx.is_null() {
            context::release(ctx);
        }
        // Not counted any more before anyone learns that it finished, so a joiner
        // sees gr_count() without it.
        count_exit((*m).p);
        (*g).join_lock.lock();
        (*g).status.store(DEAD, Ordering::Release);
        // Only an exit writes the generation, under the join lock.
        let gen = (*g).gen.load(Ordering::Relaxed);
        (*g).gen.store(gen.wrapping_add(1), Ordering::Release);
        // Claimed and woken under the lock: a joiner whose timeout or context won
        // leaves only after taking this lock to unlink itself, so it is never touched
        // once it may be gone.
        let mut w = core::mem::replace(&mut (*g).joiners, ptr::null_mut());
        while !w.is_null() {
            let next = (*w).next;
            if (*w).claim_if_shared() {
                Waiter::wake(w);
            }
            w = next;
        }
        (*g).join_lock.unlock();
        if WAITALL_WAITERS.load(Ordering::SeqCst) != 0 && !queued_here((*m).p) && count() <= 1 {
            wake_wait_all();
        }
        if !(*g).home.is_null() {
            (*(*g).home).exited();
        }
        // Still m: nothing above switches.
        exit_away(m, g)
    }
}

/// Takes `w` off `g`'s joiners if it is still there (after its wait ended otherwise
/// than by the exit).
///
/// # Safety
/// The caller holds `g`'s join lock; `w` is its own waiter.
unsafe fn unlink_joiner(g: *mut G, w: *mut Waiter) {
    // SAFETY: our contract: the join lock guards the list, whose waiters are alive
    // while listed.
    unsafe {
        let mut cur: *mut *mut Waiter = &mut (*g).joiners;
        while !(*cur).is_null() {
            if *cur == w {
                *cur = (*w).next;
                return;
            }
            cur = &mut (**cur).next;
        }
    }
}

/// Waits until goroutine `id` has finished: 0, `-ESRCH` (never issued), `-EDEADLK`
/// (itself), `-EINVAL` (id <= 0), or the context's error once the calling
/// goroutine's context is cancelled (a cancellation point).
pub fn join(id: i64) -> i32 {
    if id <= 0 {
        return -libc::EINVAL;
    }
    let Some((g, gen)) = crate::runtime::g::lookup(id) else {
        return -libc::ESRCH;
    };
    let me = crate::runtime::m::current_g();
    // SAFETY: descriptors are never freed; the join lock orders us with its exit.
    unsafe {
        (*g).join_lock.lock();
        let cur = (*g).gen.load(Ordering::Acquire);
        let status = (*g).status.load(Ordering::Acquire);
        if cur > gen {
            (*g).join_lock.unlock();
            return 0;
        }
        if cur < gen || status == crate::runtime::g::FREE {
            (*g).join_lock.unlock();
            return -libc::ESRCH;
        }
        if g == me {
            (*g).join_lock.unlock();
            return -libc::EDEADLK;
        }
        let mut w = Waiter::cancellable();
        w.next = (*g).joiners;
        (*g).joiners = &mut w;
        if !me.is_null() {
            return match w.wait(&(*g).join_lock, WaitReason::Join, -1) {
                Wake::Woken => 0,
                Wake::Cancelled(e) => {
                    (*g).join_lock.lock();
                    unlink_joiner(g, &mut w);
                    (*g).join_lock.unlock();
                    e
                }
                Wake::TimedOut => unreachable!("a join without a timeout timed out"),
            };
        }
        // A plain thread waits in slices and looks for a deadlock in between, since
        // nobody else could tell it that the goroutine will never finish.
        let mut slice = DEADLOCK_CHECK_FIRST_NS;
        loop {
            if w.block_timeout(&(*g).join_lock, WaitReason::Join, slice) {
                return 0;
            }
            (*g).join_lock.lock();
            unlink_joiner(g, &mut w);
            (*g).join_lock.unlock();
            if check_deadlock() {
                return -libc::EDEADLK;
            }
            slice = (slice * 2).min(DEADLOCK_CHECK_MAX_NS);
            (*g).join_lock.lock();
            if (*g).gen.load(Ordering::Acquire) != gen {
                (*g).join_lock.unlock();
                return 0;
            }
            w.reset();
            w.next = (*g).joiners;
            (*g).joiners = &mut w;
        }
    }
}

const DEADLOCK_CHECK_FIRST_NS: i64 = 100_000_000;
const DEADLOCK_CHECK_MAX_NS: i64 = 1_000_000_000;

/// The deferred half of a yield (a `PendingFn`): requeues `g`, now saved.
///
/// # Safety
/// Runs as `m`'s pending action, after the switch away from `g`, which is RUNNABLE.
unsafe fn requeue_after_switch(m: *mut M, g: *mut G, _arg: usize) {
    // SAFETY: g yielded and is saved; m is ours.
    unsafe {
        if !(*g).home.is_null() {
            (*(*g).home).put(g);
            return;
        }
        let p = (*m).p;
        if p.is_null() || !(*g).lockedm.load(Ordering::Relaxed).is_null() {
            globrunqput(g);
            if p.is_null() {
                wakep();
            }
        } else {
            (*p).push(g);
        }
    }
}

/// The deferred half of a yield on a P (`yield_now`'s own path, which has checked
/// what `requeue_after_switch` checks): `g`, now saved, goes to the tail of the P's
/// ring, where an idle P may take it (`wakep`).
///
/// # Safety
/// As `requeue_after_switch`, for an unhomed, unlocked `g` yielding on `m`'s P.
unsafe fn push_after_switch(m: *mut M, g: *mut G, _arg: usize) {
    // SAFETY: the caller's guarantees: m holds the P that g yielded on.
    unsafe { (*(*m).p).push(g) };
    wakep();
}

/// Lets other goroutines run; the caller goes to the back of its P's queue. On a plain
/// thread: `sched_yield`.
///
/// The common case is one other goroutine ready on this P, in `runnext`, with nothing
/// else queued: the two swap places through `runnext` (the yielder is the whole rest
/// of the queue then, so it is also its back), with no queue operation and no deferred
/// action. Otherwise the next goroutine comes from `runnext`, the spawn stack or the
/// ring, and the yielder goes to the ring's tail once it is saved. Every 61 schedules
/// (and on a home thread, without a P, or locked to its thread) the general path runs.
pub fn yield_now() {
    let m = current_m();
    if m.is_null() {
        // SAFETY: no preconditions.
        unsafe { libc::sched_yield() };
        return;
    }
    // SAFETY: we are a goroutine on m: m, its P and curg are ours.
    unsafe {
        let p = (*m).p;
        if p.is_null() || !(*m).home.is_null() || !(*m).lockedg.is_null() {
            yield_slow(m, false);
            return;
        }
        if (*p).check_due() {
            yield_slow(m, true);
            return;
        }
        let g = (*m).curg;
        (*p).enter_sched();
        // When nothing but g is left on this P, it waits in runnext, where nobody else
        // may take it before it is saved (finish_switch, on the other side, ends the
        // scheduling step). Not while a P is idle: then g goes where that P can take
        // it, so that two goroutines that yield run in parallel.
        if no_idle_p() {
            // The common case, in one look at each queue: the next one waits in
            // runnext and nothing else is queued. Its own copy of the switch below,
            // without the tests that cannot apply here.
            let next = (*p).yield_swap(g);
            if !next.is_null() {
                (*g).status.store(RUNNABLE, Ordering::Relaxed);
                (*g).errno = *(*m).errno;
                (*p).tick();
                set_running(m, p, next);
                switch_to(m, g, next);
                return;
            }
        }
        let next = (*p).get();
        if next.is_null() {
            (*p).leave_sched();
            if SCHED.runqsize.load(Ordering::Relaxed) > 0 {
                // Alone on this P, but not in the runtime: the global queue's turn.
                yield_slow(m, true);
            }
            return;
        }
        (*g).status.store(RUNNABLE, Ordering::Relaxed);
        let lm = (*next).lockedm.load(Ordering::Relaxed);
        if !lm.is_null() && lm != m {
            // Locked to another M: g0 hands it over (as after `pick_next`); g goes to
            // the ring.
            (*m).handoff = next;
            switch_away_to_g0(m, g, push_after_switch, 0);
            return;
        }
        if (*p).local_empty() && no_idle_p() {
            (*p).swap_runnext(g);
        } else {
            (*m).pending = Pending {
                f: Some(push_after_switch),
                g,
                arg: 0,
            };
        }
        (*g).errno = *(*m).errno; // before set_running's first run (as switch_away)
        (*p).tick();
        set_running(m, p, next);
        switch_to(m, g, next);
    }
}

/// True when no P is idle (a hint: `yield_now` keeps a yielder in `runnext` only
/// then, so that an idle P can take it otherwise).
#[inline(always)]
fn no_idle_p() -> bool {
    SCHED.npidle.load(Ordering::Relaxed) == 0
}

/// `yield_now`'s general path: on a home thread, inside `gr_blocking` (no P), locked
/// to the thread, or (`due`) at the periodic look at timers, fds and the global queue.
///
/// # Safety
/// We are a goroutine on `m`.
#[inline(never)]
unsafe fn yield_slow(m: *mut M, due: bool) {
    // SAFETY: the caller's guarantee.
    unsafe {
        let home = (*m).home;
        if !home.is_null() {
            if (*home).is_empty() {
                return;
            }
            let g = (*m).curg;
            (*g).status.store(RUNNABLE, Ordering::Relaxed);
            switch_away(m, g, requeue_after_switch, 0);
            return;
        }
        let p = (*m).p;
        if p.is_null() {
            // Inside gr_blocking: this thread holds no P, so there is nobody to yield to.
            libc::sched_yield();
            return;
        }
        let g = (*m).curg;
        let idle = (*p).local_empty() && SCHED.runqsize.load(Ordering::Relaxed) == 0;
        if due || idle {
            if idle {
                // Nothing else to run here; still count a schedule so that timers and
                // fds get their periodic look (and sysmon sees progress).
                (*p).tick();
            }
            if due || (*p).check_due() {
                // The runtime's calls below may set errno, and the yielder may go on
                // without a switch: it keeps its own, as across one.
                let errno = *(*m).errno;
                let Some(next) = periodic_look(p) else {
                    // Beyond the processor limit: g0 retires the P, and g and the
                    // rest of its queue go to the others.
                    (*g).status.store(RUNNABLE, Ordering::Relaxed);
                    switch_away_to_g0(m, g, requeue_after_switch, 0);
                    return;
                };
                if !next.is_null() {
                    (*p).push(next);
                }
                if (*m).due & DUE_POLL != 0 {
                    // Left to finish_switch on the switch paths (a parking goroutine
                    // may hold an fd's lock there); a yield holds none.
                    (*m).due &= !DUE_POLL;
                    netpoll::poll_ready();
                }
                *(*m).errno = errno;
            }
            if (*p).local_empty() {
                return;
            }
        }
        (*g).status.store(RUNNABLE, Ordering::Relaxed);
        switch_away(m, g, requeue_after_switch, 0);
    }
}

/// Number of goroutines alive: spawned less exited, each summed over the Ps (and the
/// off-P counts). Per P, so that spawns and exits on different processors do not
/// pass one counter's cache line back and forth (skynet at 2 procs spent ~15% of its
/// time on it). Exits are read first: a goroutine whose exit is seen had its spawn
/// counted before it could run, so that spawn is seen too (and the P it was counted
/// on, made before it); the count is never below the truth at the moment the exits
/// were read, and exact when nothing spawns or exits meanwhile. Among exits that run
/// at the same time, the one whose locked add comes last sees all of them, so the last
/// exit always finds the count at its end (`goexit`).
pub fn count() -> usize {
    let exited = sum_counts(&SCHED.exited_off_p, |p| &p.counts.exited);
    let spawned = sum_counts(&SCHED.spawned_off_p, |p| &p.counts.spawned);
    spawned.saturating_sub(exited) as usize
}

/// Counts a spawn made holding `p` (null: off a P).
///
/// # Safety
/// `p` is null or held by the caller, the only writer of its counts.
#[inline(always)]
unsafe fn count_spawn(p: *mut P) {
    if p.is_null() {
        SCHED.spawned_off_p.fetch_add(1, Ordering::SeqCst);
        return;
    }
    // SAFETY: our contract: we are the only writer (a plain load and store).
    let c = unsafe { &(*p).counts.spawned };
    c.store(c.load(Ordering::Relaxed) + 1, Ordering::Release);
}

/// Counts an exit on `p` (null: off a P). A locked add either way: its barrier orders
/// the count before the exit's look at wait_all's waiters (`goexit`; each side of
/// that handshake writes, then reads what the other writes).
///
/// # Safety
/// As `count_spawn`.
#[inline(always)]
unsafe fn count_exit(p: *mut P) {
    let c = if p.is_null() {
        &SCHED.exited_off_p
    } else {
        // SAFETY: our contract.
        unsafe { &(*p).counts.exited }
    };
    c.fetch_add(1, Ordering::SeqCst);
}

/// `off_p` plus one counter of each P made so far.
#[inline(always)]
fn sum_counts(off_p: &AtomicU64, of_p: impl Fn(&P) -> &AtomicU64) -> u64 {
    let mut total = off_p.load(Ordering::SeqCst);
    for i in 0..SCHED.nallp.load(Ordering::SeqCst) {
        let p = allp(i);
        if !p.is_null() {
            // SAFETY: Ps are never freed.
            total += of_p(unsafe { &*p }).load(Ordering::SeqCst);
        }
    }
    total
}

pub fn self_id() -> i64 {
    let g = crate::runtime::m::current_g();
    if g.is_null() {
        0
    } else {
        // SAFETY: the running goroutine's descriptor.
        unsafe { (*g).id() }
    }
}

// ---------------------------------------------------------------------------------
// thread locking

pub fn lock_thread() -> i32 {
    let m = current_m();
    if m.is_null() {
        return -libc::EPERM;
    }
    // SAFETY: we run on m; no switch can happen in between.
    unsafe {
        let g = (*m).curg;
        (*g).lock_depth += 1;
        (*g).lockedm.store(m, Ordering::Release);
        (*m).lockedg = g;
    }
    0
}

pub fn unlock_thread() -> i32 {
    let m = current_m();
    if m.is_null() {
        return -libc::EPERM;
    }
    // SAFETY: we run on m, as its current goroutine; no switch can happen in between.
    unsafe {
        let g = (*m).curg;
        if (*g).lock_depth == 0 {
            return -libc::EPERM;
        }
        (*g).lock_depth -= 1;
        if (*g).lock_depth == 0 {
            (*g).lockedm.store(ptr::null_mut(), Ordering::Release);
            (*m).lockedg = ptr::null_mut();
        }
    }
    0
}

// ---------------------------------------------------------------------------------
// GOMAXPROCS

/// Sets the number of processors (n >= 1) and returns the previous value; n < 1 only
/// queries.
pub fn set_maxprocs(n: i32) -> i32 {
    let rc = ensure_init();
    if rc < 0 {
        return rc;
    }
    let _g = INIT_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let old = gomaxprocs() as i32;
    if n < 1 {
        return old;
    }
    let n = (n as usize).min(MAX_PROCS);
    let mut l = locked();
    if n > old as usize {
        SCHED.gomaxprocs.store(n as u32, Ordering::SeqCst);
        for i in old as usize..n {
            activate_p(&mut l, i);
        }
        drop(l);
        wakep();
    } else {
        SCHED.gomaxprocs.store(n as u32, Ordering::SeqCst);
        let mut keep = Vec::new();
        for p in std::mem::take(&mut l.pidle) {
            // SAFETY: idle Ps are held by nobody.
            if unsafe { (*p).id } >= n {
                SCHED.npidle.fetch_sub(1, Ordering::SeqCst);
                // SAFETY: taken off the idle list, p is held by nobody.
                unsafe { retire_p_queues(&mut l, p) };
            } else {
                keep.push(p);
            }
        }
        l.pidle = keep;
        // Running Ps beyond n retire themselves at their next periodic check (within
        // CHECK_EVERY schedules; pick_local) or when they run out of work.
    }
    old
}

// ---------------------------------------------------------------------------------
// waiting for everything

static WAITALL_LOCK: SpinLock = SpinLock::new();
static WAITALL_EPOCH: AtomicU32 = AtomicU32::new(0);
static WAITALL_GS: AtomicPtr<Waiter> = AtomicPtr::new(ptr::null_mut());
static WAITALL_WAITERS: AtomicUsize = AtomicUsize::new(0);

/// True when `p` (this M's; null on a home thread) has a goroutine queued: one more
/// is alive besides the exiting goroutine, so its exit cannot be the one that a
/// `wait_all` waits for. (The queued one may be a goroutine `wait_all` woke already:
/// that one looks at the count itself when it runs.) Read before `count()`, which
/// reads a counter of every P, so a batch of exits behind a `wait_all` reads other
/// CPUs' counters only when its own queue runs dry. No wake is lost when a thief
/// takes the queued one after this look: that one's exit looks at the count in turn,
/// and sees this exit's, which was a locked add made before this look (and the take
/// is a locked write to a word this look read).
///
/// # Safety
/// `p` is null or the caller's own P.
#[inline(always)]
unsafe fn queued_here(p: *mut P) -> bool {
    // SAFETY: our contract: the owner reads its own queues (exact: only it adds).
    !p.is_null() && unsafe { !(*p).local_empty() }
}

fn wake_wait_all() {
    if WAITALL_WAITERS.load(Ordering::SeqCst) == 0 {
        return;
    }
    WAITALL_EPOCH.fetch_add(1, Ordering::SeqCst);
    futex_wake(&WAITALL_EPOCH, i32::MAX);
    WAITALL_LOCK.lock();
    let mut w = WAITALL_GS.swap(ptr::null_mut(), Ordering::AcqRel);
    // SAFETY: we hold the lock that guards the list.
    unsafe { WAITALL_LOCK.unlock() };
    while !w.is_null() {
        // SAFETY: each waiter is blocked on WAITALL_LOCK's list and woken once.
        unsafe {
            let next = (*w).next;
            Waiter::wake(w);
            w = next;
        }
    }
}

/// Blocks until no other goroutine is alive (from a goroutine: until it is the only
/// one left).
pub fn wait_all() -> i32 {
    let rc = ensure_init();
    if rc < 0 {
        return rc;
    }
    let me = crate::runtime::m::current_g();
    let target = if me.is_null() { 0 } else { 1 };
    WAITALL_WAITERS.fetch_add(1, Ordering::SeqCst);
    let mut slice = DEADLOCK_CHECK_FIRST_NS;
    let mut rc = 0;
    loop {
        if me.is_null() {
            let e = WAITALL_EPOCH.load(Ordering::SeqCst);
            if count() <= target {
                break;
            }
            futex_wait(&WAITALL_EPOCH, e, slice);
            if WAITALL_EPOCH.load(Ordering::SeqCst) == e && count() > target && check_deadlock() {
                rc = -libc::EDEADLK;
                break;
            }
            slice = (slice * 2).min(DEADLOCK_CHECK_MAX_NS);
        } else {
            WAITALL_LOCK.lock();
            if count() <= target {
                // SAFETY: we hold it.
                unsafe { WAITALL_LOCK.unlock() };
                break;
            }
            let mut w = Waiter::current();
            w.next = WAITALL_GS.load(Ordering::Relaxed);
            WAITALL_GS.store(&mut w, Ordering::Relaxed);
            // SAFETY: w is on our stack until woken; the lock is held.
            unsafe { w.block(&WAITALL_LOCK, WaitReason::WaitAll) };
        }
    }
    WAITALL_WAITERS.fetch_sub(1, Ordering::SeqCst);
    rc
}

/// Runs `f(arg)` as a goroutine and waits for it to return.
pub fn run_main(f: GrFn, arg: *mut libc::c_void) -> i32 {
    let id = spawn(
        f,
        arg,
        &SpawnAttr {
            stack_size: 0,
            name: c"main".as_ptr(),
            ..SpawnAttr::default()
        },
    );
    if id < 0 {
        return id as i32;
    }
    join(id)
}

// ---------------------------------------------------------------------------------
// blocking calls

/// Runs `f(arg)`, a call that may block its thread, after handing this M's P to
/// another worker (Go's entersyscall + handoffp), then takes a P back (exitsyscall):
/// an idle one at once, or else the goroutine queues and this thread waits its turn.
/// `f` must not call functions that park (it runs without a P).
///
/// # Safety
/// `f` is sound to call with `arg` on the calling thread.
pub unsafe fn blocking(f: GrFn, arg: *mut libc::c_void) -> i32 {
    let m = current_m();
    if m.is_null() {
        // SAFETY: the caller's guarantee: f is sound to call with arg here.
        unsafe { f(arg) };
        return 0;
    }
    // SAFETY: we are a goroutine on m (its current G), so m and its P are ours; f(arg)
    // by the caller's guarantee.
    unsafe {
        let g = (*m).curg;
        let p = releasep(m);
        if p.is_null() {
            f(arg); // already without a P (nested call)
            return 0;
        }
        (*g).wait_reason = WaitReason::Blocking as u8;
        (*g).wait_since = nanotime();
        handoffp(p);
        f(arg);
        (*g).wait_reason = WaitReason::None as u8;
        let m = current_m();
        if let Some(p) = pidleget_locked() {
            acquirep(m, p);
            return 0;
        }
        (*g).status.store(RUNNABLE, Ordering::Relaxed);
        switch_away(m, g, requeue_after_switch, 0);
    }
    0
}

// ---------------------------------------------------------------------------------
// deadlock detection

/// Threads the runtime started and runs (workers, sysmon): every other thread of
/// the process is the program's, and might still wake a goroutine.
static RUNTIME_THREADS: AtomicUsize = AtomicUsize::new(0);
/// Plain threads blocked in a runtime wait right now (they cannot wake anybody).
static PLAIN_BLOCKED: AtomicUsize = AtomicUsize::new(0);

/// Held by a runtime thread for as long as it runs (made first thing in the thread,
/// dropped last), so that it is never taken for one of the program's threads: the
/// kernel counts a thread a little before and after, which errs on the side of
/// reporting no deadlock.
pub(crate) struct RuntimeThread(());

impl RuntimeThread {
    pub(crate) fn enter() -> RuntimeThread {
        RUNTIME_THREADS.fetch_add(1, Ordering::SeqCst);
        RuntimeThread(())
    }
}

impl Drop for RuntimeThread {
    fn drop(&mut self) {
        RUNTIME_THREADS.fetch_sub(1, Ordering::SeqCst);
    }
}

/// How many threads the process has (the kernel's count, field 20 of
/// /proc/self/stat), or None if /proc cannot be read.
fn process_threads() -> Option<usize> {
    let mut buf = [0u8; 1024];
    let stat = crate::runtime::sys::read_file(b"/proc/self/stat\0", &mut buf).ok()?;
    let field = crate::runtime::sys::proc_stat_field(stat, 17)?;
    core::str::from_utf8(field).ok()?.parse().ok()
}

pub(crate) fn plain_blocked(delta: isize) {
    if delta > 0 {
        PLAIN_BLOCKED.fetch_add(delta as usize, Ordering::SeqCst);
    } else {
        PLAIN_BLOCKED.fetch_sub((-delta) as usize, Ordering::SeqCst);
    }
}

fn all_idle() -> bool {
    let l = locked();
    SCHED.npidle.load(Ordering::SeqCst) as usize >= nprocs_limit() && l.runq.is_empty()
}

/// True when goroutines remain and none can ever run again: every one waits on
/// something only another goroutine could end, no timer or fd wait is pending, no
/// goroutine is inside a blocking call, and no thread of the program other than the
/// caller is running (one blocked in the runtime cannot wake anybody; any other
/// might, whether it has used the runtime yet or not, so a program with a thread
/// that never ends gets no deadlock reports).
pub fn check_deadlock() -> bool {
    check_deadlock_except(1)
}

/// `check_deadlock`, allowing `running_plain` threads of the program (the callers)
/// to be running.
pub fn check_deadlock_except(running_plain: usize) -> bool {
    if count() == 0 || !all_idle() {
        return false;
    }
    if timer::armed() > 0 || netpoll::WAITERS.load(Ordering::SeqCst) > 0 {
        return false;
    }
    let Some(threads) = process_threads() else {
        return false;
    };
    let program_threads = threads.saturating_sub(RUNTIME_THREADS.load(Ordering::SeqCst));
    let blocked = PLAIN_BLOCKED.load(Ordering::SeqCst);
    if program_threads.saturating_sub(blocked) > running_plain {
        return false;
    }
    let mut dead = true;
    crate::runtime::g::for_each(|g| {
        let st = g.status.load(Ordering::Acquire);
        if st == crate::runtime::g::FREE {
            return;
        }
        let forever = st == WAITING
            && matches!(
                g.wait_reason,
                r if r == WaitReason::Join as u8
                    || r == WaitReason::WaitAll as u8
                    || r == WaitReason::ChanSend as u8
                    || r == WaitReason::ChanRecv as u8
                    || r == WaitReason::Select as u8
                    || r == WaitReason::WaitGroup as u8
                    || r == WaitReason::Mutex as u8
                    || r == WaitReason::RwMutexRead as u8
                    || r == WaitReason::RwMutexWrite as u8
                    || r == WaitReason::Cond as u8
                    || r == WaitReason::Semaphore as u8
                    || r == WaitReason::Once as u8
            );
        if !forever {
            dead = false;
        }
    });
    dead && all_idle() && count() > 0 && timer::armed() == 0
}
