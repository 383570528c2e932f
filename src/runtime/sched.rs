//! The scheduler: global state, the worker loop, spawn, exit, join, yield, thread
//! locking, GOMAXPROCS, init and shutdown. Go's design (`runtime/proc.go`), smaller.
//!
//! Where a goroutine goes:
//! - spawned or woken by a goroutine: the current P's `runnext` (the one it displaces
//!   goes to the P's queue), so a hand-off stays on one core;
//! - spawned or woken by a plain thread: the global queue;
//! - a P whose queue is empty takes from the global queue, then steals half of
//!   another P's queue (and, as a last resort, a `runnext` that has sat unrun for a
//!   few microseconds).
//!
//! Switching: a goroutine that yields, parks or exits switches *directly* to the next
//! goroutine of its P (one switch, not two through g0); the deferred half of the
//! switch (requeue, unlock, free) runs on the next context (see `m.rs`). Only when the
//! P has nothing local does it switch to g0, whose loop (`find_runnable`) looks
//! further and finally puts the M to sleep.
//!
//! Waking workers: waking an idle vCPU costs 15-20 us here, so an idle P is woken
//! only when stealable work appears (not for a `runnext` hand-off) and no M is already
//! spinning (looking for work); the last spinner to find work wakes one more, as in Go.
//! An M with nothing to do spins through one steal round and then sleeps on a futex:
//! an idle runtime uses no CPU.

use core::ptr;
use core::sync::atomic::{AtomicPtr, AtomicU32, AtomicUsize, Ordering};
use std::collections::VecDeque;
use std::sync::Mutex;

use crossbeam_deque::Steal;

use crate::arch;
use crate::runtime::g::{GPtr, GrFn, WaitReason, G, DEAD, RUNNABLE, RUNNING, WAITING};
use crate::runtime::lock::{futex_wait, futex_wake, nanotime, SpinLock};
use crate::runtime::m::{current_m, finish_switch, notesleep, notewakeup, set_current_m, Pending, PendingFn, M};
use crate::runtime::p::{P, P_DEAD, P_IDLE, P_RUNNING};
use crate::runtime::park::Waiter;
use crate::runtime::fatal;
use crate::stack;

pub(crate) const MAX_PROCS: usize = 256;

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
    pub ngoroutines: AtomicUsize,
    pub state: AtomicU32,
    allp: [AtomicPtr<P>; MAX_PROCS],
    pub nthreads: AtomicUsize,
    pub switches: AtomicUsize,
    pub steals: AtomicUsize,
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
    ngoroutines: AtomicUsize::new(0),
    state: AtomicU32::new(UNINIT),
    allp: [const { AtomicPtr::new(ptr::null_mut()) }; MAX_PROCS],
    nthreads: AtomicUsize::new(0),
    switches: AtomicUsize::new(0),
    steals: AtomicUsize::new(0),
};

static INIT_LOCK: Mutex<()> = Mutex::new(());

fn locked() -> std::sync::MutexGuard<'static, Locked> {
    SCHED.lock.lock().unwrap_or_else(|e| e.into_inner())
}

#[inline]
fn gomaxprocs() -> usize {
    SCHED.gomaxprocs.load(Ordering::Relaxed) as usize
}

#[inline]
fn allp(i: usize) -> *mut P {
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
    let n = if maxprocs > 0 {
        maxprocs as usize
    } else {
        std::env::var("GR_MAXPROCS")
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok())
            .filter(|&n| n > 0)
            .unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1))
    }
    .min(MAX_PROCS);
    let mut l = locked();
    for i in 0..n {
        let p = ensure_p(i);
        // SAFETY: no M runs yet; we own every P.
        unsafe { (*p).status.store(P_IDLE, Ordering::Relaxed) };
        l.pidle.push(p);
    }
    SCHED.npidle.store(n as u32, Ordering::SeqCst);
    SCHED.gomaxprocs.store(n as u32, Ordering::SeqCst);
    SCHED.state.store(RUNNING_STATE, Ordering::Release);
    n as i32
}

/// Lazy start for every entry point.
#[inline]
pub fn ensure_init() {
    if SCHED.state.load(Ordering::Acquire) != RUNNING_STATE {
        init(0);
    }
}

pub fn is_running() -> bool {
    SCHED.state.load(Ordering::Acquire) == RUNNING_STATE
}

fn ensure_p(i: usize) -> *mut P {
    let p = allp(i);
    if !p.is_null() {
        return p;
    }
    let p = Box::into_raw(Box::new(P::new(i)));
    SCHED.allp[i].store(p, Ordering::Release);
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
    if SCHED.ngoroutines.load(Ordering::SeqCst) != 0 {
        return -libc::EBUSY;
    }
    SCHED.state.store(STOPPING, Ordering::SeqCst);
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
                stack::flush_cache(&mut (*p).gcache);
                (*p).status.store(P_DEAD, Ordering::Relaxed);
                (*p).m = ptr::null_mut();
            }
        }
    }
    drop(l);
    stack::scavenge(0);
    SCHED.npidle.store(0, Ordering::SeqCst);
    SCHED.nmspinning.store(0, Ordering::SeqCst);
    SCHED.nthreads.store(0, Ordering::SeqCst);
    SCHED.state.store(UNINIT, Ordering::Release);
    0
}

// ---------------------------------------------------------------------------------
// run queues

fn globrunqput(g: *mut G) {
    let mut l = locked();
    l.runq.push_back(GPtr(g));
    SCHED.runqsize.store(l.runq.len(), Ordering::SeqCst);
}

/// Takes a fair share of the global queue into `p`'s queue and returns one to run.
unsafe fn globrunqget(l: &mut Locked, p: *mut P) -> *mut G {
    let len = l.runq.len();
    if len == 0 {
        return ptr::null_mut();
    }
    let n = (len / gomaxprocs().max(1) + 1).min(len).min(128);
    let first = l.runq.pop_front().expect("len > 0").0;
    for _ in 1..n {
        let g = l.runq.pop_front().expect("len >= n");
        // SAFETY: the caller holds p.
        unsafe { (*p).runq.push(g) };
    }
    SCHED.runqsize.store(l.runq.len(), Ordering::SeqCst);
    first
}

/// The next goroutine from the P's own queues, looking at the global queue every 61
/// schedules so it cannot starve (Go's constant).
#[inline]
unsafe fn pick_local(p: *mut P) -> *mut G {
    // SAFETY: the caller holds p.
    unsafe {
        let tick = (*p).schedtick.load(Ordering::Relaxed);
        if tick % 61 == 0 && SCHED.runqsize.load(Ordering::Relaxed) > 0 {
            let mut l = locked();
            let g = globrunqget(&mut l, p);
            if !g.is_null() {
                return g;
            }
        }
        (*p).get()
    }
}

/// Makes a waiting goroutine runnable.
///
/// # Safety
/// `g` is WAITING and this is its one wake-up.
pub unsafe fn ready(g: *mut G) {
    // SAFETY: g's descriptor is valid; the waker owns the wake-up.
    unsafe {
        let prev = (*g).status.swap(RUNNABLE, Ordering::AcqRel);
        if prev != WAITING {
            fatal(&format!("ready of goroutine {} in state {prev}", (*g).id()));
        }
        (*g).wait_reason = WaitReason::None as u8;
        runqput_current(g);
    }
}

/// Queues a runnable goroutine where the caller runs: its P's runnext, or the global
/// queue from a plain thread (or an M without a P).
unsafe fn runqput_current(g: *mut G) {
    let m = current_m();
    // SAFETY: a non-null M is ours; its P (if any) is ours too.
    unsafe {
        if !m.is_null() && !(*m).p.is_null() {
            if (*(*m).p).put(g, true) {
                wake_if_idle();
            }
            return;
        }
    }
    globrunqput(g);
    wakep();
}

#[inline]
fn wake_if_idle() {
    if SCHED.npidle.load(Ordering::SeqCst) > 0 && SCHED.nmspinning.load(Ordering::SeqCst) == 0 {
        wakep();
    }
}

// ---------------------------------------------------------------------------------
// waking and stopping Ms

/// Starts one more spinning M if there is an idle P and nobody is spinning.
pub fn wakep() {
    if SCHED.npidle.load(Ordering::SeqCst) == 0 {
        return;
    }
    if SCHED
        .nmspinning
        .compare_exchange(0, 1, Ordering::SeqCst, Ordering::SeqCst)
        .is_err()
    {
        return;
    }
    startm(ptr::null_mut(), true);
}

/// Runs an M on `p` (an idle P when null). `spinning`: the caller already counted it
/// in `nmspinning`.
fn startm(p: *mut P, spinning: bool) {
    let mut l = locked();
    let p = if p.is_null() {
        match pidleget(&mut l) {
            Some(p) => p,
            None => {
                drop(l);
                if spinning {
                    SCHED.nmspinning.fetch_sub(1, Ordering::SeqCst);
                }
                return;
            }
        }
    } else {
        p
    };
    if SCHED.state.load(Ordering::Acquire) != RUNNING_STATE {
        pidleput(&mut l, p);
        drop(l);
        if spinning {
            SCHED.nmspinning.fetch_sub(1, Ordering::SeqCst);
        }
        return;
    }
    if let Some(m) = l.midle.pop() {
        drop(l);
        // SAFETY: an idle M sleeps in stopm and reads these after its wake-up.
        unsafe {
            (*m).spinning = spinning;
            (*m).nextp.store(p, Ordering::Release);
        }
        notewakeup(m);
        return;
    }
    // No idle M: create a worker thread.
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
            let mp = mp;
            mstart(mp.0)
        });
    match spawned {
        Ok(h) => {
            l.allm.push(m);
            l.threads.push(h);
            SCHED.nthreads.fetch_add(1, Ordering::Relaxed);
        }
        Err(_) => {
            // No thread: the P goes back, nothing half-made remains. The queued work
            // waits for an existing worker.
            pidleput(&mut l, p);
            drop(l);
            // SAFETY: the thread never started; the M was never shared.
            drop(unsafe { Box::from_raw(m) });
            if spinning {
                SCHED.nmspinning.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }
}

struct MPtr(*mut M);
// SAFETY: the M is handed to the new thread, which becomes its only user.
unsafe impl Send for MPtr {}

fn pidleget(l: &mut Locked) -> Option<*mut P> {
    let p = l.pidle.pop()?;
    SCHED.npidle.fetch_sub(1, Ordering::SeqCst);
    Some(p)
}

fn pidleput(l: &mut Locked, p: *mut P) {
    // SAFETY: the caller released p; no M holds it.
    unsafe {
        if (*p).id >= gomaxprocs() {
            retire_p_queues(l, p);
            return;
        }
        (*p).status.store(P_IDLE, Ordering::Release);
        (*p).m = ptr::null_mut();
    }
    l.pidle.push(p);
    SCHED.npidle.fetch_add(1, Ordering::SeqCst);
}

/// A P beyond `gomaxprocs`: its goroutines move to the global queue.
unsafe fn retire_p_queues(l: &mut Locked, p: *mut P) {
    let mut v = Vec::new();
    // SAFETY: nobody holds p (the caller released it).
    unsafe {
        (*p).drain(&mut v);
        stack::flush_cache(&mut (*p).gcache);
        (*p).status.store(P_DEAD, Ordering::Release);
        (*p).m = ptr::null_mut();
    }
    l.runq.extend(v);
    SCHED.runqsize.store(l.runq.len(), Ordering::SeqCst);
}

unsafe fn acquirep(m: *mut M, p: *mut P) {
    // SAFETY: p was handed to m.
    unsafe {
        (*m).p = p;
        (*p).m = m;
        (*p).status.store(P_RUNNING, Ordering::Release);
    }
}

unsafe fn releasep(m: *mut M) -> *mut P {
    // SAFETY: m is ours.
    unsafe {
        let p = (*m).p;
        (*m).p = ptr::null_mut();
        p
    }
}

/// Puts the M to sleep until it is handed a P. Returns false when woken to exit.
unsafe fn stopm(m: *mut M) -> bool {
    {
        let mut l = locked();
        if SCHED.state.load(Ordering::Acquire) != RUNNING_STATE {
            return false;
        }
        l.midle.push(m);
    }
    notesleep(m);
    // SAFETY: whoever woke us set nextp (or left it null to make us exit).
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
/// it, else to the idle list.
fn handoffp(p: *mut P) {
    // SAFETY: the caller released p.
    let has_work = unsafe { (*p).has_work() } || SCHED.runqsize.load(Ordering::SeqCst) > 0;
    if has_work {
        startm(p, false);
        return;
    }
    if SCHED.nmspinning.load(Ordering::SeqCst) + SCHED.npidle.load(Ordering::SeqCst) == 0
        && SCHED.nmspinning.compare_exchange(0, 1, Ordering::SeqCst, Ordering::SeqCst).is_ok()
    {
        startm(p, true);
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

fn resetspinning(m: *mut M) {
    // SAFETY: m is ours.
    unsafe {
        if !(*m).spinning {
            return;
        }
        (*m).spinning = false;
    }
    let prev = SCHED.nmspinning.fetch_sub(1, Ordering::SeqCst);
    if prev == 1 {
        // We were the last spinner and found work: maybe there is more for another.
        wakep();
    }
}

// ---------------------------------------------------------------------------------
// the worker loop (g0)

fn mstart(m: *mut M) {
    set_current_m(m);
    let _alt = stack::AltStack::install();
    // SAFETY: the M was handed its first P in nextp by startm.
    unsafe {
        (*m).thread = libc::pthread_self();
        let p = (*m).nextp.swap(ptr::null_mut(), Ordering::Acquire);
        if !p.is_null() {
            acquirep(m, p);
            schedule_loop(m);
        }
    }
    set_current_m(ptr::null_mut());
}

unsafe fn schedule_loop(m: *mut M) {
    // SAFETY: runs on m's own thread, on its own stack (g0).
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
                handoffp(p);
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
unsafe fn startlockedm(m: *mut M, g: *mut G) -> bool {
    // SAFETY: g is runnable and ours to hand over; its locked M sleeps waiting for it.
    unsafe {
        let lm = (*g).lockedm.load(Ordering::Acquire);
        let p = releasep(m);
        (*lm).nextp.store(p, Ordering::Release);
        notewakeup(lm);
        stopm(m)
    }
}

unsafe fn execute(m: *mut M, g: *mut G) {
    // SAFETY: g is runnable and now owned by m; m runs on g0.
    unsafe {
        (*g).status.store(RUNNING, Ordering::Relaxed);
        (*m).curg = g;
        let p = (*m).p;
        (*p).schedtick.fetch_add(1, Ordering::Relaxed);
        let r = arch::switch(&mut (*m).g0, &(*g).ctx, m as usize);
        finish_switch(r as *mut M);
    }
}

/// Finds a goroutine to run, stealing and finally sleeping as needed. Returns null
/// when the runtime is shutting down (the M then exits).
unsafe fn find_runnable(m: *mut M) -> *mut G {
    // SAFETY: runs on m's g0; m holds a P on entry and on every non-null return.
    unsafe {
        loop {
            if SCHED.state.load(Ordering::Acquire) != RUNNING_STATE {
                let p = releasep(m);
                if !p.is_null() {
                    let mut l = locked();
                    pidleput(&mut l, p);
                }
                if (*m).spinning {
                    (*m).spinning = false;
                    SCHED.nmspinning.fetch_sub(1, Ordering::SeqCst);
                }
                return ptr::null_mut();
            }
            let p = (*m).p;
            if (*p).id >= gomaxprocs() {
                // GOMAXPROCS shrank below this P: retire it and stop.
                let p = releasep(m);
                {
                    let mut l = locked();
                    retire_p_queues(&mut l, p);
                }
                if (*m).spinning {
                    (*m).spinning = false;
                    SCHED.nmspinning.fetch_sub(1, Ordering::SeqCst);
                }
                wakep();
                if !stopm(m) {
                    return ptr::null_mut();
                }
                continue;
            }
            let g = pick_local(p);
            if !g.is_null() {
                resetspinning(m);
                return g;
            }
            if SCHED.runqsize.load(Ordering::SeqCst) > 0 {
                let g = {
                    let mut l = locked();
                    globrunqget(&mut l, p)
                };
                if !g.is_null() {
                    resetspinning(m);
                    return g;
                }
            }
            // Steal, unless half the busy Ps already have a spinner looking.
            let procs = gomaxprocs() as u32;
            let busy = procs.saturating_sub(SCHED.npidle.load(Ordering::SeqCst));
            if (*m).spinning || 2 * SCHED.nmspinning.load(Ordering::SeqCst) < busy {
                if !(*m).spinning {
                    (*m).spinning = true;
                    SCHED.nmspinning.fetch_add(1, Ordering::SeqCst);
                }
                let g = steal_work(m);
                if !g.is_null() {
                    SCHED.steals.fetch_add(1, Ordering::Relaxed);
                    resetspinning(m);
                    return g;
                }
            }
            // Nothing anywhere: give up the P.
            {
                let mut l = locked();
                let g = globrunqget(&mut l, p);
                if !g.is_null() {
                    drop(l);
                    resetspinning(m);
                    return g;
                }
                let p = releasep(m);
                pidleput(&mut l, p);
            }
            let was_spinning = (*m).spinning;
            if was_spinning {
                (*m).spinning = false;
                SCHED.nmspinning.fetch_sub(1, Ordering::SeqCst);
                // Work may have been queued after our steal pass by someone who saw
                // us spinning and so woke nobody: look once more before sleeping.
                if let Some(p) = recheck_after_spinning() {
                    acquirep(m, p);
                    (*m).spinning = true;
                    SCHED.nmspinning.fetch_add(1, Ordering::SeqCst);
                    continue;
                }
            }
            stack::scavenge(usize::MAX);
            if !stopm(m) {
                return ptr::null_mut();
            }
        }
    }
}

fn recheck_after_spinning() -> Option<*mut P> {
    let procs = gomaxprocs();
    let mut work = SCHED.runqsize.load(Ordering::SeqCst) > 0;
    if !work {
        for i in 0..procs {
            let p = allp(i);
            // SAFETY: Ps are never freed; has_work only reads atomics.
            if !p.is_null() && unsafe { (*p).has_work() } {
                work = true;
                break;
            }
        }
    }
    if !work {
        return None;
    }
    let mut l = locked();
    pidleget(&mut l)
}

unsafe fn steal_work(m: *mut M) -> *mut G {
    // SAFETY: m holds its P; other Ps are only touched through stealers and atomics.
    unsafe {
        let procs = gomaxprocs();
        let mine = (*m).p;
        for round in 0..4 {
            let start = (*m).fastrand() as usize % procs;
            for i in 0..procs {
                let victim = allp((start + i) % procs);
                if victim.is_null() || victim == mine {
                    continue;
                }
                loop {
                    match (*victim).stealer.steal_batch_and_pop(&(*mine).runq) {
                        Steal::Success(g) => return g.0,
                        Steal::Retry => continue,
                        Steal::Empty => break,
                    }
                }
                if round == 3 {
                    let g = steal_runnext(victim);
                    if !g.is_null() {
                        return g;
                    }
                }
            }
        }
        ptr::null_mut()
    }
}

/// Takes a running P's `runnext` if it stays unrun for ~3 us (its M is busy with a
/// long-running goroutine). Sooner would break up hand-off pairs for nothing.
unsafe fn steal_runnext(victim: *mut P) -> *mut G {
    // SAFETY: only atomics of the victim are touched.
    unsafe {
        if (*victim).status.load(Ordering::Acquire) != P_RUNNING {
            return ptr::null_mut();
        }
        let g = (*victim).runnext.load(Ordering::Acquire);
        if g.is_null() {
            return ptr::null_mut();
        }
        let tick = (*victim).schedtick.load(Ordering::Acquire);
        let deadline = nanotime() + 3_000;
        while nanotime() < deadline {
            core::hint::spin_loop();
        }
        if (*victim).schedtick.load(Ordering::Acquire) != tick {
            return ptr::null_mut();
        }
        if (*victim)
            .runnext
            .compare_exchange(g, ptr::null_mut(), Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            return g;
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
/// expects (RUNNABLE for a requeue, WAITING for a park, DEAD for an exit).
pub unsafe fn switch_away(m: *mut M, cur: *mut G, f: PendingFn, arg: usize) -> *mut M {
    // SAFETY: see above.
    unsafe {
        (*m).pending = Pending { f: Some(f), g: cur, arg };
        (*cur).errno = *libc::__errno_location();
        let p = (*m).p;
        let mut next = ptr::null_mut();
        if (*m).lockedg.is_null() && (*p).id < gomaxprocs() {
            next = pick_local(p);
            if !next.is_null() {
                let lm = (*next).lockedm.load(Ordering::Acquire);
                if !lm.is_null() && lm != m {
                    (*m).handoff = next;
                    next = ptr::null_mut();
                }
            }
        }
        let r = if !next.is_null() {
            (*next).status.store(RUNNING, Ordering::Relaxed);
            (*m).curg = next;
            (*p).schedtick.fetch_add(1, Ordering::Relaxed);
            arch::switch(&mut (*cur).ctx, &(*next).ctx, m as usize)
        } else {
            (*m).curg = ptr::null_mut();
            arch::switch(&mut (*cur).ctx, &(*m).g0, m as usize)
        };
        let m2 = r as *mut M;
        finish_switch(m2);
        *libc::__errno_location() = (*cur).errno;
        m2
    }
}

// ---------------------------------------------------------------------------------
// spawn, exit, join, yield

#[derive(Default)]
pub struct SpawnAttr {
    pub stack_size: usize,
    pub name: *const libc::c_char,
}

/// Creates a goroutine running `f(arg)`. Returns its id, or a negative errno.
pub fn spawn(f: GrFn, arg: *mut libc::c_void, attr: &SpawnAttr) -> i64 {
    ensure_init();
    let class = match stack::class_of(attr.stack_size) {
        Ok(c) => c,
        Err(e) => return e as i64,
    };
    let m = current_m();
    // SAFETY: a non-null current M is ours, and so is its P.
    let p = if m.is_null() { ptr::null_mut() } else { unsafe { (*m).p } };
    let cache = if p.is_null() { None } else { Some(unsafe { &mut (*p).gcache }) };
    let g = match stack::alloc(class, cache) {
        Ok(g) => g,
        Err(e) => return e as i64,
    };
    // SAFETY: g is a FREE descriptor we now own exclusively.
    unsafe {
        (*g).func = Some(f);
        (*g).arg = arg;
        (*g).errno = 0;
        (*g).lockedm.store(ptr::null_mut(), Ordering::Relaxed);
        (*g).lock_depth = 0;
        (*g).joiners = ptr::null_mut();
        (*g).wait_reason = 0;
        (*g).flags = 0;
        (*g).set_name(attr.name);
        (*g).ctx = arch::prepare((*g).stack_hi as *mut u8, goroutine_entry, g as usize);
        (*g).status.store(RUNNABLE, Ordering::Release);
    }
    SCHED.ngoroutines.fetch_add(1, Ordering::SeqCst);
    // SAFETY: as above.
    let id = unsafe { (*g).id() };
    if !p.is_null() {
        // SAFETY: p is ours.
        if unsafe { (*p).put(g, true) } {
            wake_if_idle();
        }
    } else {
        globrunqput(g);
        wakep();
    }
    id
}

unsafe extern "C" fn goroutine_entry(transfer: usize, arg: usize) -> ! {
    let g = arg as *mut G;
    // SAFETY: we were switched to by an M that passed itself; g is ours.
    unsafe {
        finish_switch(transfer as *mut M);
        *libc::__errno_location() = 0;
        if let Some(f) = (*g).func {
            f((*g).arg);
        }
        goexit(g)
    }
}

unsafe fn release_dead(m: *mut M, g: *mut G, _arg: usize) {
    // SAFETY: g has exited and its context will never run again; m is ours.
    unsafe {
        let p = (*m).p;
        let cache = if p.is_null() { None } else { Some(&mut (*p).gcache) };
        stack::free(g, cache);
    }
}

unsafe fn goexit(g: *mut G) -> ! {
    let m = current_m();
    // SAFETY: g is the goroutine running on m.
    unsafe {
        if !(*g).lockedm.load(Ordering::Relaxed).is_null() {
            (*g).lockedm.store(ptr::null_mut(), Ordering::Relaxed);
            (*g).lock_depth = 0;
            (*m).lockedg = ptr::null_mut();
        }
        (*g).join_lock.lock();
        (*g).status.store(DEAD, Ordering::Release);
        (*g).gen.fetch_add(1, Ordering::Release);
        let mut w = core::mem::replace(&mut (*g).joiners, ptr::null_mut());
        (*g).join_lock.unlock();
        while !w.is_null() {
            let next = (*w).next;
            Waiter::wake(w);
            w = next;
        }
        let left = SCHED.ngoroutines.fetch_sub(1, Ordering::SeqCst) - 1;
        if left <= 1 {
            wake_wait_all();
        }
        // The M may have changed while waking (no switch happens there, but be exact).
        let m = current_m();
        switch_away(m, g, release_dead, 0);
        fatal("a dead goroutine was resumed");
    }
}

/// Waits until goroutine `id` has finished: 0, `-ESRCH` (never issued), `-EDEADLK`
/// (itself), `-EINVAL` (id <= 0).
pub fn join(id: i64) -> i32 {
    if id <= 0 {
        return -libc::EINVAL;
    }
    let Some((g, gen)) = stack::lookup(id) else {
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
        let mut w = Waiter::current();
        w.next = (*g).joiners;
        (*g).joiners = &mut w;
        w.block(&(*g).join_lock, WaitReason::Join);
    }
    0
}

unsafe fn requeue_after_switch(m: *mut M, g: *mut G, _arg: usize) {
    // SAFETY: g yielded and is saved; m is ours and holds a P.
    unsafe {
        let p = (*m).p;
        if p.is_null() || !(*g).lockedm.load(Ordering::Relaxed).is_null() {
            globrunqput(g);
            if p.is_null() {
                wakep();
            }
        } else {
            (*p).runq.push(GPtr(g));
        }
    }
}

/// Lets other goroutines run; the caller goes to the back of its P's queue. On a plain
/// thread: `sched_yield`.
pub fn yield_now() {
    let m = current_m();
    if m.is_null() {
        // SAFETY: no preconditions.
        unsafe { libc::sched_yield() };
        return;
    }
    // SAFETY: we are a goroutine on m.
    unsafe {
        let p = (*m).p;
        let g = (*m).curg;
        let idle = (*p).runnext.load(Ordering::Relaxed).is_null()
            && (*p).runq.is_empty()
            && SCHED.runqsize.load(Ordering::Relaxed) == 0;
        if idle {
            return;
        }
        (*g).status.store(RUNNABLE, Ordering::Relaxed);
        switch_away(m, g, requeue_after_switch, 0);
    }
}

/// Number of goroutines alive.
pub fn count() -> usize {
    SCHED.ngoroutines.load(Ordering::SeqCst)
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
    // SAFETY: as above.
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
    ensure_init();
    let _g = INIT_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let old = gomaxprocs() as i32;
    if n < 1 {
        return old;
    }
    let n = (n as usize).min(MAX_PROCS);
    let mut l = locked();
    if n > old as usize {
        for i in old as usize..n {
            let p = ensure_p(i);
            // SAFETY: a P beyond the old count is held by nobody.
            unsafe {
                (*p).status.store(P_IDLE, Ordering::Relaxed);
                (*p).m = ptr::null_mut();
            }
            l.pidle.push(p);
            SCHED.npidle.fetch_add(1, Ordering::SeqCst);
        }
        SCHED.gomaxprocs.store(n as u32, Ordering::SeqCst);
        drop(l);
        wakep();
    } else {
        SCHED.gomaxprocs.store(n as u32, Ordering::SeqCst);
        let mut keep = Vec::new();
        for p in std::mem::take(&mut l.pidle) {
            // SAFETY: idle Ps are held by nobody.
            if unsafe { (*p).id } >= n {
                SCHED.npidle.fetch_sub(1, Ordering::SeqCst);
                // SAFETY: as above.
                unsafe { retire_p_queues(&mut l, p) };
            } else {
                keep.push(p);
            }
        }
        l.pidle = keep;
        // Running Ps beyond n retire themselves at their next schedule.
    }
    old
}

// ---------------------------------------------------------------------------------
// waiting for everything

static WAITALL_LOCK: SpinLock = SpinLock::new();
static WAITALL_EPOCH: AtomicU32 = AtomicU32::new(0);
static WAITALL_GS: AtomicPtr<Waiter> = AtomicPtr::new(ptr::null_mut());
static WAITALL_WAITERS: AtomicUsize = AtomicUsize::new(0);

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
    ensure_init();
    let me = crate::runtime::m::current_g();
    let target = if me.is_null() { 0 } else { 1 };
    WAITALL_WAITERS.fetch_add(1, Ordering::SeqCst);
    loop {
        if me.is_null() {
            let e = WAITALL_EPOCH.load(Ordering::SeqCst);
            if count() <= target {
                break;
            }
            futex_wait(&WAITALL_EPOCH, e, -1);
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
    0
}

/// Runs `f(arg)` as a goroutine and waits for it to return.
pub fn run_main(f: GrFn, arg: *mut libc::c_void) -> i32 {
    let id = spawn(f, arg, &SpawnAttr { stack_size: 0, name: c"main".as_ptr() });
    if id < 0 {
        return id as i32;
    }
    join(id)
}
