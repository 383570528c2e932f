//! Home threads: one OS thread that runs a group of goroutines pinned to it.
//!
//! Python goroutines need this (CPython's per-thread state breaks if a thread state
//! moves between OS threads): the thread that calls `run` becomes, for as long as the
//! call lasts, an M without a P that runs only its home's goroutines, switching
//! directly between them. Everything else stays M:N: a homed goroutine that parks is
//! woken by whoever readies it (any thread), which puts it back on its home's queue
//! and wakes the home thread if it sleeps.
//!
//! A home with nothing to run does the netpoller's blocking wait itself (taking the
//! poller role from an idle worker, which yields it while `HOME_WANTS_POLL` is set):
//! a readiness event for a homed goroutine then wakes nobody but the thread that runs
//! it. While the home runs goroutines, it polls without blocking every 61 switches;
//! sysmon stays awake while a home runs, to cover long stretches of Python code.
//! While every goroutine alive is homed (`homes_do_polling`: a Python program),
//! idle workers do not poll at all, so that no event wakes a thread that would only
//! pass the goroutine on to the home thread.
//!
//! **Carrying.** The layer that owns a home may leave something held from one of its
//! goroutines to the next (the Python layer leaves the GIL held, with the parked
//! goroutine's thread state current: src/cpython/mod.rs, "Carrying the GIL"):
//! `carry` records it with the function that lets go of it. Only a goroutine flagged
//! `TAKES_CARRY` (parked where that layer takes the carried thing over on its return)
//! may run while something is carried; before the home thread runs any other, goes
//! idle or leaves `run`, it lets go (`let_go`). A direct switch to such a goroutine
//! leaves that to the switch's end (`m::DUE_LET_GO`): the goroutine switching away
//! may hold a lock until then.
//!
//! `run` works in slices: it returns after `slice_ns` with goroutines still alive,
//! so that its caller can do things only that thread may do (CPython runs signal
//! handlers only in the main thread state), then calls it again. Between slices the
//! thread is a plain thread, and homed goroutines that become runnable just queue.

use core::cell::{Cell, UnsafeCell};
use core::ptr;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::collections::VecDeque;

use crate::runtime::g::{GPtr, GrFn, G, TAKES_CARRY};
use crate::runtime::lock::{futex_wait, futex_wake, nanotime, SpinLock};
use crate::runtime::m::{current_m, set_current_m, DUE_CTX, DUE_POLL, DUE_TIMERS, M};
use crate::runtime::sched::{self, SpawnAttr};
use crate::runtime::{netpoll, timer};

/// Homes whose thread is inside `run` (sysmon stays awake while any is).
pub static HOMES_RUNNING: AtomicUsize = AtomicUsize::new(0);
/// Homed goroutines alive, all homes together.
static HOMED_ALIVE: AtomicUsize = AtomicUsize::new(0);

/// True while idle workers must leave the poller role to home threads: an idle home
/// wants it (`HOME_WANTS_POLL`), or a home is inside `run` and every goroutine alive
/// is homed (every fd event and timer is then for a goroutine that a home thread
/// runs; the homes poll when idle and every 61 switches), so that an event wakes
/// nobody but the thread that runs its goroutine.
pub fn homes_do_polling() -> bool {
    netpoll::HOME_WANTS_POLL.load(Ordering::SeqCst) > 0
        || (HOMES_RUNNING.load(Ordering::SeqCst) > 0
            && sched::count() <= HOMED_ALIVE.load(Ordering::SeqCst))
}

pub struct Home {
    lock: SpinLock,
    queue: UnsafeCell<VecDeque<GPtr>>,
    /// Futex word bumped on every put; the home thread sleeps on it.
    wake: AtomicU32,
    sleeping: AtomicBool,
    /// True while the home thread blocks in the netpoller (a put must break it).
    polling: AtomicBool,
    /// Switches until the next non-blocking poll (home thread only).
    pub(crate) check_countdown: core::cell::Cell<u32>,
    /// Homed goroutines alive.
    alive: AtomicUsize,
    /// True while some thread is inside `run`.
    running: AtomicBool,
    /// What a parked goroutine left held for the next one (see "Carrying" above), or
    /// null; and the function that lets go of it. Home thread only.
    carried: Cell<*mut libc::c_void>,
    let_go_fn: Cell<Option<unsafe fn(*mut libc::c_void)>>,
    m: *mut M,
}

// SAFETY: shared use is sound because the queue is touched only under `lock`, the
// counters and flags are atomics, `check_countdown`, the carried thing and the M are
// used only by the thread inside `run` (`running` admits one at a time) and the
// goroutines it runs.
unsafe impl Sync for Home {}
// SAFETY: nothing in a Home is tied to the thread that made it: the M it owns is
// bound to whichever thread calls `run`, and the queued G pointers are plain data.
unsafe impl Send for Home {}

/// A home is freed (with its M) only when no goroutine of it is alive and no thread
/// is in `run`: nothing uses the M then (`PyHome::free` checks both).
impl Drop for Home {
    fn drop(&mut self) {
        // SAFETY: the M was boxed by `new` for this home alone, and is unused now (no
        // goroutine of the home alive, no thread in `run`: the comment above).
        drop(unsafe { Box::from_raw(self.m) });
    }
}

impl Home {
    pub fn new() -> *mut Home {
        Box::into_raw(Box::new(Home {
            lock: SpinLock::new(),
            queue: UnsafeCell::new(VecDeque::new()),
            wake: AtomicU32::new(0),
            sleeping: AtomicBool::new(false),
            polling: AtomicBool::new(false),
            check_countdown: core::cell::Cell::new(0),
            alive: AtomicUsize::new(0),
            running: AtomicBool::new(false),
            carried: Cell::new(ptr::null_mut()),
            let_go_fn: Cell::new(None),
            m: Box::into_raw(Box::new(M::new(usize::MAX))),
        }))
    }

    pub fn alive(&self) -> usize {
        self.alive.load(Ordering::SeqCst)
    }

    /// True while a thread is inside `run` (its M is in use).
    pub fn is_running(&self) -> bool {
        self.running.load(Ordering::SeqCst)
    }

    /// Leaves `what` (not null) held for the next goroutine this thread runs, with
    /// `let_go(what)` to release it if that goroutine cannot take it over (see
    /// "Carrying" above). Called by a homed goroutine about to park, on the home thread.
    pub fn carry(&self, what: *mut libc::c_void, let_go: unsafe fn(*mut libc::c_void)) {
        self.let_go_fn.set(Some(let_go));
        self.carried.set(what);
    }

    /// Takes over what is carried (null: nothing). A `TAKES_CARRY` goroutine calls it
    /// when it runs again, on the home thread.
    pub fn take_carried(&self) -> *mut libc::c_void {
        self.carried.replace(ptr::null_mut())
    }

    /// True when something is carried and `g` cannot take it over (home thread only).
    ///
    /// # Safety
    /// `g` is a goroutine of this home that the home thread is about to run.
    #[inline]
    pub(crate) unsafe fn must_let_go_for(&self, g: *mut G) -> bool {
        // SAFETY: our contract; `flags` is written only by g itself on this thread.
        !self.carried.get().is_null() && unsafe { (*g).flags } & TAKES_CARRY == 0
    }

    /// Releases what is carried, if anything (home thread only, not while a goroutine
    /// switching away may still hold a lock: see "Carrying" above).
    pub(crate) fn let_go(&self) {
        let what = self.carried.replace(ptr::null_mut());
        if let (false, Some(f)) = (what.is_null(), self.let_go_fn.get()) {
            // SAFETY: `carry`'s caller gave f for this very thing, to run on this thread.
            unsafe { f(what) };
        }
    }

    /// Queues a runnable homed goroutine (from any thread).
    pub fn put(&self, g: *mut G) {
        self.lock.lock();
        // SAFETY: we hold `lock`, which guards the queue, and release it only after
        // the last use of the reference.
        unsafe {
            (*self.queue.get()).push_back(GPtr(g));
            self.lock.unlock();
        }
        self.wake.fetch_add(1, Ordering::SeqCst);
        if self.sleeping.load(Ordering::SeqCst) {
            futex_wake(&self.wake, 1);
        }
        if self.polling.load(Ordering::SeqCst) {
            netpoll::break_poll();
        }
    }

    /// Every 61 switches on the home thread: fire due timers, poll fds without
    /// blocking (nobody else may be polling while the home runs).
    pub(crate) fn periodic_checks(&self) {
        let c = self.check_countdown.get();
        if c > 0 {
            self.check_countdown.set(c - 1);
            return;
        }
        self.check_countdown.set(crate::runtime::p::CHECK_EVERY);
        if timer::next_when() <= nanotime() {
            // Not now: called while a goroutine switches away (sched::pick_next), which
            // may hold a lock that another thread's timer callback waits for while it
            // holds the shard's lock (see DUE_TIMERS).
            // SAFETY: as below: the home thread's own M.
            unsafe { (*self.m).due |= DUE_TIMERS };
        }
        if crate::runtime::context::expired_waiting() {
            // Not now either: the cancel takes locks (see sched::periodic_checks).
            // SAFETY: as below: the home thread's own M.
            unsafe { (*self.m).due |= DUE_CTX };
        }
        if sched::fds_unpolled() {
            // Not now: the goroutine switching away may hold an fd lock (see
            // sched::periodic_checks); the switch's other side polls.
            // SAFETY: periodic_checks runs on the home thread (inside `run`), whose M
            // this is; no other thread touches the M's plain fields.
            unsafe { (*self.m).due |= DUE_POLL };
        }
    }

    /// Waits for work until `until` (ns): as the netpoller when it can get the role
    /// (firing timers and readying goroutines itself), else on the wake futex.
    fn idle_wait(&self, until: i64) {
        let epoch = self.wake.load(Ordering::SeqCst);
        netpoll::HOME_WANTS_POLL.fetch_add(1, Ordering::SeqCst);
        if sched::take_poller_role(netpoll::POLLER_HOME) {
            self.polling.store(true, Ordering::SeqCst);
            let when = netpoll::publish_poll_deadline(until);
            if self.is_empty() && self.alive() > 0 {
                netpoll::poll_as_poller((when - nanotime()).max(0));
            }
            self.polling.store(false, Ordering::SeqCst);
            timer::run_due(nanotime());
            crate::runtime::context::cancel_expired();
            netpoll::set_poll_deadline(i64::MAX);
            sched::release_poller();
        } else {
            // An idle worker polls: it yields the role as soon as it sees that we
            // want it; meanwhile wait a little on the futex.
            netpoll::break_poll();
            self.sleeping.store(true, Ordering::SeqCst);
            if self.is_empty() && self.alive() > 0 {
                futex_wait(&self.wake, epoch, (until - nanotime()).clamp(0, 1_000_000));
            }
            self.sleeping.store(false, Ordering::SeqCst);
        }
        netpoll::HOME_WANTS_POLL.fetch_sub(1, Ordering::SeqCst);
    }

    /// The next runnable homed goroutine, if any (home thread only).
    pub fn pop(&self) -> *mut G {
        self.lock.lock();
        // SAFETY: we hold `lock`, which guards the queue, and release it only after
        // the last use of the reference.
        unsafe {
            let g = (*self.queue.get())
                .pop_front()
                .map_or(ptr::null_mut(), |g| g.0);
            self.lock.unlock();
            g
        }
    }

    pub fn is_empty(&self) -> bool {
        self.lock.lock();
        // SAFETY: we hold `lock`, which guards the queue, and release it only after
        // the last use of the reference.
        unsafe {
            let e = (*self.queue.get()).is_empty();
            self.lock.unlock();
            e
        }
    }

    pub(crate) fn exited(&self) {
        HOMED_ALIVE.fetch_sub(1, Ordering::SeqCst);
        if self.alive.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.wake.fetch_add(1, Ordering::SeqCst);
            futex_wake(&self.wake, 1);
        }
    }

    /// Starts a goroutine pinned to this home. Returns its id or a negative errno.
    pub fn spawn(&self, f: GrFn, arg: *mut libc::c_void, attr: &SpawnAttr) -> i64 {
        self.alive.fetch_add(1, Ordering::SeqCst);
        HOMED_ALIVE.fetch_add(1, Ordering::SeqCst);
        let id = sched::spawn_homed(f, arg, attr, self as *const Home as *mut Home);
        if id < 0 {
            self.exited();
        }
        id
    }

    /// Runs homed goroutines on the calling thread for up to `slice_ns` (negative: no
    /// limit). Returns 0 when none is left, 1 when the slice ended first, -EBUSY when
    /// called from a goroutine or while another thread runs this home, -EDEADLK when
    /// every goroutine is blocked for ever.
    pub fn run(&self, slice_ns: i64) -> i32 {
        if !current_m().is_null() {
            return -libc::EBUSY;
        }
        if self.running.swap(true, Ordering::SeqCst) {
            return -libc::EBUSY;
        }
        let rc = sched::ensure_init();
        if rc < 0 {
            self.running.store(false, Ordering::SeqCst);
            return rc;
        }
        let m = self.m;
        // SAFETY: m belongs to this home (alive as long as it) and is used only by the
        // thread in run(), which `running` just admitted: us.
        unsafe {
            (*m).home = self as *const Home as *mut Home;
            (*m).tid.store(libc::gettid() as u32, Ordering::Relaxed);
        }
        set_current_m(m);
        HOMES_RUNNING.fetch_add(1, Ordering::SeqCst);
        crate::runtime::sysmon::wake_if_sleeping();
        // SAFETY: m is this home's M, now bound to the calling thread.
        crate::runtime::sanitizer::for_thread(unsafe { &mut (*m).g0_fiber });
        let deadline = if slice_ns < 0 {
            i64::MAX
        } else {
            nanotime().saturating_add(slice_ns)
        };
        let mut check_after = nanotime() + 100_000_000;
        let rc = loop {
            let g = self.pop();
            if !g.is_null() {
                // SAFETY: g is a runnable goroutine of this home; we are its thread.
                unsafe {
                    if self.must_let_go_for(g) {
                        self.let_go();
                    }
                    sched::execute_homed(m, g)
                };
                continue;
            }
            self.let_go();
            if self.alive() == 0 {
                break 0;
            }
            let now = nanotime();
            if now >= deadline {
                break 1;
            }
            if now >= check_after {
                check_after = now + 1_000_000_000;
                if sched::check_deadlock_except(1) {
                    break -libc::EDEADLK;
                }
            }
            self.idle_wait(deadline.min(check_after));
        };
        set_current_m(ptr::null_mut());
        HOMES_RUNNING.fetch_sub(1, Ordering::SeqCst);
        self.running.store(false, Ordering::SeqCst);
        rc
    }
}

/// Who is calling, as seen by the layer that owns the homes (src/cpython/ keeps its
/// per-goroutine record in the spawn argument of homed goroutines).
pub enum Caller {
    /// A plain thread (not a goroutine).
    Plain,
    /// A goroutine pinned to a home: its spawn argument.
    Homed(*mut libc::c_void),
    /// A goroutine that belongs to no home (an M:N goroutine).
    Other,
}

/// Who is calling (see `Caller`). Never parks.
pub fn caller() -> Caller {
    let g = crate::runtime::m::current_g();
    if g.is_null() {
        return Caller::Plain;
    }
    // SAFETY: the running goroutine's own descriptor; `home` and `arg` are set before
    // it first runs and never change while it lives.
    unsafe {
        if (*g).home.is_null() {
            Caller::Other
        } else {
            Caller::Homed((*g).arg)
        }
    }
}
