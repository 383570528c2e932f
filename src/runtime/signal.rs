//! Signals delivered on channels (`gr_signal_notify`, Go's `signal.Notify`), and the
//! SIGCHLD watch that `gr_waitpid` parks on when it cannot use a pidfd.
//!
//! The handler does only async-signal-safe work: it sets the signal's bit in
//! `PENDING` (and for SIGCHLD bumps `CHILD_EVENTS`), then wakes the delivery thread
//! with a futex wake (the two are atomics and one system call; errno is saved
//! around them). The delivery thread, a plain thread of the runtime started with the
//! first handler and gone with the last, takes the pending bits and, holding the
//! registry's lock, *tries* to send each signal number on every channel registered
//! for it: a full channel drops it, as Go's `signal.Notify` does. Then it wakes the
//! goroutines waiting for a SIGCHLD. Sending from a thread and not from the handler
//! is what makes delivery safe: a channel send takes locks and may wake a goroutine,
//! which a handler that interrupted the lock's holder could not do.
//!
//! A handler is installed for a signal when its first channel (or the first SIGCHLD
//! watch) comes, and the disposition found then is put back when the last goes. The
//! registry's lock is held while sending, so once `stop` has returned, nothing is
//! sent to that channel any more and the caller may free it.
//!
//! Signals the runtime itself owns are refused: SIGSEGV (stack overflow detection,
//! `runtime/stack`), the other synchronous faults (SIGBUS, SIGFPE, SIGILL: a handler
//! that returns re-runs the faulting instruction), SIGKILL and SIGSTOP (the kernel
//! refuses them), and SIGQUIT while `GRDEBUG=sigquit=1` has it (-EBUSY). glibc's own
//! two real-time signals (32, 33) fail in sigaction with -EINVAL.
//!
//! Chaining: a handler the program had installed before ours runs after ours only
//! for a signal nobody asked for on a channel, which happens only for SIGCHLD when
//! just `gr_waitpid` watches it: so a program's own SIGCHLD handler keeps working
//! while goroutines wait for children. A signal asked for on a channel goes to the
//! channels only, as in Go.
//!
//! The delivery thread counts as a plain thread that may wake goroutines (deadlock
//! detection does not report goroutines waiting on a signal channel while it lives).

use core::cell::UnsafeCell;
use core::ptr;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use crate::runtime::g::WaitReason;
use crate::runtime::lock::{futex_wait, futex_wake, SpinLock};
use crate::runtime::park::{Waiter, Wake};
use crate::runtime::waitlist::{waitlist_node, Links, List};

/// Signals 1..=64 (Linux's SIGRTMAX): index by number.
const NSIG: usize = 65;

/// Signals that arrived and are not yet delivered: bit `signo - 1`.
static PENDING: AtomicU64 = AtomicU64::new(0);
/// The delivery thread's futex word: set to 1 to wake it.
static WAKE: AtomicU32 = AtomicU32::new(0);
/// SIGCHLDs seen by the handler (a waiter that read it before looking for a child
/// parks only while it is unchanged).
static CHILD_EVENTS: AtomicU64 = AtomicU64::new(0);

/// Per signal, for the handler: channels registered, and the previous handler to
/// chain to (a function address, 0 for none) and whether it takes a siginfo.
static CHANNELS: [AtomicU32; NSIG] = [const { AtomicU32::new(0) }; NSIG];
static PREV_HANDLER: [AtomicUsize; NSIG] = [const { AtomicUsize::new(0) }; NSIG];
static PREV_SIGINFO: [AtomicBool; NSIG] = [const { AtomicBool::new(false) }; NSIG];

/// How a signal reaches a channel: `send(target, signo)` must try to send without
/// waiting (the registry's caller, `ffi`, passes a channel and its try-send; the
/// runtime does not know channels).
pub type Deliver = unsafe fn(target: *const (), signo: i32);

struct Sub {
    target: *const (),
    send: Deliver,
    signo: i32,
}

struct Registry {
    subs: Vec<Sub>,
    /// SIGCHLD watches of gr_waitpid (by signal, for symmetry; only SIGCHLD's is used).
    watches: [u32; NSIG],
    /// The disposition before ours, while ours is installed.
    prev: [Option<libc::sigaction>; NSIG],
    /// The delivery thread is running (or starting).
    thread: bool,
}

// SAFETY: the targets are used only under the registry's lock, while their owners
// keep them alive (`notify`'s contract: gr_signal_stop before gr_chan_free).
unsafe impl Send for Registry {}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    subs: Vec::new(),
    watches: [0; NSIG],
    prev: [None; NSIG],
    thread: false,
});

fn registry() -> MutexGuard<'static, Registry> {
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

fn bit(signo: i32) -> u64 {
    1u64 << (signo - 1)
}

/// Checks that `signo` may be delivered on a channel: 0, -EINVAL or -EBUSY.
fn check_signo(signo: i32) -> i32 {
    if !(1..NSIG as i32).contains(&signo) {
        return -libc::EINVAL;
    }
    match signo {
        libc::SIGKILL
        | libc::SIGSTOP
        | libc::SIGSEGV
        | libc::SIGBUS
        | libc::SIGFPE
        | libc::SIGILL => -libc::EINVAL,
        libc::SIGQUIT if crate::runtime::debug::settings().sigquit => -libc::EBUSY,
        _ => 0,
    }
}

impl Registry {
    fn wanted(&self, signo: i32) -> bool {
        self.watches[signo as usize] > 0 || self.subs.iter().any(|s| s.signo == signo)
    }

    /// Installs our handler for `signo` unless it is installed: 0 or -errno.
    fn install(&mut self, signo: i32) -> i32 {
        if self.prev[signo as usize].is_some() {
            return 0;
        }
        // SAFETY: sigaction with a zeroed (valid) struct filled with our handler, an
        // empty mask and valid pointers; the handler is async-signal-safe.
        unsafe {
            let mut sa: libc::sigaction = core::mem::zeroed();
            sa.sa_sigaction = on_signal as *const () as usize;
            sa.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            let mut old: libc::sigaction = core::mem::zeroed();
            // The chaining target first: our handler may run as soon as it is in.
            if libc::sigaction(signo, ptr::null(), &mut old) != 0 {
                return -*libc::__errno_location();
            }
            let h = old.sa_sigaction;
            let func = h != libc::SIG_DFL && h != libc::SIG_IGN;
            PREV_HANDLER[signo as usize].store(if func { h } else { 0 }, Ordering::SeqCst);
            PREV_SIGINFO[signo as usize]
                .store(old.sa_flags & libc::SA_SIGINFO != 0, Ordering::SeqCst);
            if libc::sigaction(signo, &sa, &mut old) != 0 {
                PREV_HANDLER[signo as usize].store(0, Ordering::SeqCst);
                return -*libc::__errno_location();
            }
            self.prev[signo as usize] = Some(old);
        }
        0
    }

    /// Puts the previous disposition back if nobody wants `signo` any more.
    fn release(&mut self, signo: i32) {
        if self.wanted(signo) {
            return;
        }
        if let Some(old) = self.prev[signo as usize].take() {
            // SAFETY: sigaction with the disposition sigaction gave us.
            unsafe { libc::sigaction(signo, &old, ptr::null_mut()) };
            PREV_HANDLER[signo as usize].store(0, Ordering::SeqCst);
        }
    }

    /// Starts the delivery thread unless it runs: 0 or -EAGAIN.
    fn start_thread(&mut self) -> i32 {
        if self.thread {
            return 0;
        }
        let ok = std::thread::Builder::new()
            .name("gr-signals".into())
            .stack_size(64 << 10)
            .spawn(deliver_loop)
            .is_ok();
        self.thread = ok;
        if ok {
            0
        } else {
            -libc::EAGAIN
        }
    }
}

/// `gr_signal_notify`: from now on, each arrival of `signo` calls `send(target,
/// signo)` on the delivery thread. 0 (also when already registered), -EINVAL,
/// -EBUSY, -EAGAIN.
///
/// # Safety
/// `send(target, signo)` is sound on any thread until `stop(target)` has returned.
pub unsafe fn notify(target: *const (), send: Deliver, signo: i32) -> i32 {
    let rc = check_signo(signo);
    if rc != 0 {
        return rc;
    }
    let mut reg = registry();
    if reg
        .subs
        .iter()
        .any(|s| s.target == target && s.signo == signo)
    {
        return 0;
    }
    let rc = reg.install(signo);
    if rc != 0 {
        return rc;
    }
    let rc = reg.start_thread();
    if rc != 0 {
        reg.release(signo);
        return rc;
    }
    reg.subs.push(Sub {
        target,
        send,
        signo,
    });
    CHANNELS[signo as usize].fetch_add(1, Ordering::SeqCst);
    0
}

/// `gr_signal_stop`: no more signals to `target`; dispositions nobody else wants go
/// back to what they were. Returns how many registrations it removed.
pub fn stop(target: *const ()) -> usize {
    let mut reg = registry();
    let mut gone = Vec::new();
    reg.subs.retain(|s| {
        if s.target == target {
            gone.push(s.signo);
            false
        } else {
            true
        }
    });
    for &signo in &gone {
        CHANNELS[signo as usize].fetch_sub(1, Ordering::SeqCst);
        reg.release(signo);
    }
    drop(reg);
    // The delivery thread leaves once nothing is installed.
    wake_thread();
    gone.len()
}

fn wake_thread() {
    WAKE.store(1, Ordering::SeqCst);
    futex_wake(&WAKE, 1);
}

/// The handler of every signal we deliver. Async-signal-safe: atomics and a futex
/// wake; errno is preserved. Chains to the program's handler for a signal no channel
/// asked for (see the file comment).
extern "C" fn on_signal(signo: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    if !(1..NSIG as i32).contains(&signo) {
        return;
    }
    // SAFETY: __errno_location is this thread's errno slot.
    let saved = unsafe { *libc::__errno_location() };
    if signo == libc::SIGCHLD {
        CHILD_EVENTS.fetch_add(1, Ordering::SeqCst);
    }
    PENDING.fetch_or(bit(signo), Ordering::SeqCst);
    wake_thread();
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = saved };
    let i = signo as usize;
    if CHANNELS[i].load(Ordering::SeqCst) == 0 {
        let h = PREV_HANDLER[i].load(Ordering::SeqCst);
        if h != 0 {
            // SAFETY: h is the handler the program had installed for this signal
            // (sigaction gave it to us), called as its flags say it expects.
            unsafe {
                if PREV_SIGINFO[i].load(Ordering::SeqCst) {
                    let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                        core::mem::transmute(h);
                    f(signo, info, ctx);
                } else {
                    let f: extern "C" fn(libc::c_int) = core::mem::transmute(h);
                    f(signo);
                }
            }
        }
    }
}

/// The delivery thread: sends pending signals until no handler is left. Not a
/// runtime thread for deadlock detection: a goroutine waiting for a signal may still
/// get one.
fn deliver_loop() {
    loop {
        WAKE.store(0, Ordering::SeqCst);
        let pending = PENDING.swap(0, Ordering::SeqCst);
        if pending != 0 {
            deliver(pending);
            continue;
        }
        {
            let mut reg = registry();
            if reg.prev.iter().all(|p| p.is_none()) {
                reg.thread = false;
                return;
            }
        }
        futex_wait(&WAKE, 0, -1);
    }
}

fn deliver(pending: u64) {
    {
        let reg = registry();
        for signo in 1..NSIG as i32 {
            if pending & bit(signo) == 0 {
                continue;
            }
            for s in reg.subs.iter().filter(|s| s.signo == signo) {
                // SAFETY: notify's contract: send(target) is sound until stop(target)
                // has returned, and stop takes the lock we hold.
                unsafe { (s.send)(s.target, signo) };
            }
        }
    }
    if pending & bit(libc::SIGCHLD) != 0 {
        wake_child_waiters();
    }
}

// ---------------------------------------------------------------------------------
// the SIGCHLD watch (gr_waitpid without a pidfd)

/// Starts watching SIGCHLD: true, or false when SIGCHLD is ignored (SIG_IGN or
/// SA_NOCLDWAIT: children are reaped by the kernel, and a handler would change that)
/// or no thread could be started. Pair with `unwatch_children`.
pub fn watch_children() -> bool {
    let mut reg = registry();
    let i = libc::SIGCHLD as usize;
    if reg.prev[i].is_none() {
        // SAFETY: sigaction only reads the current disposition into `cur`.
        let ignored = unsafe {
            let mut cur: libc::sigaction = core::mem::zeroed();
            libc::sigaction(libc::SIGCHLD, ptr::null(), &mut cur) != 0
                || cur.sa_sigaction == libc::SIG_IGN
                || cur.sa_flags & libc::SA_NOCLDWAIT != 0
        };
        if ignored || reg.install(libc::SIGCHLD) != 0 {
            return false;
        }
    }
    if reg.start_thread() != 0 {
        reg.release(libc::SIGCHLD);
        return false;
    }
    reg.watches[i] += 1;
    true
}

pub fn unwatch_children() {
    let mut reg = registry();
    reg.watches[libc::SIGCHLD as usize] -= 1;
    reg.release(libc::SIGCHLD);
}

/// SIGCHLDs so far: read it before looking for a child that changed state, then
/// `wait_child_event` with it.
pub fn child_events() -> u64 {
    CHILD_EVENTS.load(Ordering::SeqCst)
}

struct ChildWaiter {
    w: Waiter,
    links: Links<ChildWaiter>,
}

waitlist_node!(ChildWaiter, links);

/// The goroutines (and threads) waiting for the next SIGCHLD.
struct ChildWaiters {
    lock: SpinLock,
    list: UnsafeCell<List<ChildWaiter>>,
}

// SAFETY: the list is touched only under `lock`; its nodes are waiters on their
// owners' stacks, valid from any thread while linked.
unsafe impl Sync for ChildWaiters {}

static CHILD_WAITERS: ChildWaiters = ChildWaiters {
    lock: SpinLock::new(),
    list: UnsafeCell::new(List::new()),
};

/// Waits until a SIGCHLD arrives after `child_events()` returned `seen` (at once if
/// one did already). 0, or the goroutine's context error (a cancellation point of
/// gr_waitpid). Needs a watch (`watch_children`).
pub fn wait_child_event(seen: u64) -> i32 {
    let cw = &CHILD_WAITERS;
    let mut me = ChildWaiter {
        w: Waiter::cancellable(),
        links: Links::new(),
    };
    let mp: *mut ChildWaiter = &mut me;
    cw.lock.lock();
    if child_events() != seen {
        // SAFETY: taken above.
        unsafe { cw.lock.unlock() };
        return 0;
    }
    // SAFETY: the lock is held; `me` stays on this stack until it is off the list
    // (the waker unlinks it before the wake; on giving up, we do, below). The wake-up
    // comes from the delivery thread, which takes this lock after the handler's
    // CHILD_EVENTS bump, so a SIGCHLD after the check above finds us listed.
    unsafe {
        (*cw.list.get()).push(mp);
        let rc = park_child(&(*mp).w);
        if rc != 0 {
            cw.lock.lock();
            (*cw.list.get()).unlink(mp);
            cw.lock.unlock();
        }
        rc
    }
}

/// Parks a listed child waiter: 0 when a SIGCHLD woke it, else the context error
/// that ended the wait. The one place this wait's outcome is read.
///
/// # Safety
/// CHILD_WAITERS' lock is held and `w` is listed under it, pinned until unlinked.
unsafe fn park_child(w: &Waiter) -> i32 {
    // SAFETY: our contract is wait's.
    match unsafe { w.wait(&CHILD_WAITERS.lock, WaitReason::ChildWait, -1) } {
        Wake::Woken => 0,
        Wake::Cancelled(e) => e,
        Wake::TimedOut => unreachable!("a child wait without a timeout timed out"),
    }
}

fn wake_child_waiters() {
    let cw = &CHILD_WAITERS;
    cw.lock.lock();
    // SAFETY: the lock is held, so listed waiters are live; the ones we claim are
    // moved to a private list and woken once after the unlock (each taken off
    // it first: drain); a waiter whose claim is lost stays listed and unlinks itself.
    unsafe {
        let list = &mut *cw.list.get();
        let mut woken = List::new();
        List::walk(list.first(), |w| {
            if (*w).w.claim() {
                list.unlink(w);
                woken.push(w);
            }
            true
        });
        cw.lock.unlock();
        woken.drain(|w| Waiter::wake(&(*w).w));
    }
}
