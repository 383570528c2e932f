//! Contexts: the cancellation tree (`gr_ctx`, Go's `context.Context`; structured
//! cancellation as in trio's cancel scopes and libdill's bundles).
//!
//! A context is cancelled once, with an error (-ECANCELED by hand or through a
//! parent, -ETIMEDOUT by its deadline or an ancestor's), and that reaches its whole
//! subtree. A goroutine is bound to at most one context (`G::ctx`, a reference):
//! every cancellation point it is parked in or parks in later returns the error
//! (`park::Waiter::wait`). Nothing is killed; the goroutine sees the error and
//! returns.
//!
//! What a context keeps, under its spin lock:
//! - its error (also readable without the lock);
//! - the waiters of its bound goroutines that are parked at a cancellation point, in
//!   an intrusive list through the waiters themselves (on their stacks). A goroutine
//!   that is running is not on it: it sees the error when it next parks. So a cancel
//!   costs O(parked bound goroutines + children), and never a scan of all goroutines;
//! - its children (intrusive, through their `sib` links, guarded by this lock);
//! - the done channel (`gr_ctx_done`, made on first request) and the deadline timer.
//!
//! The park/cancel race: a goroutine puts its waiter on the list in the pending
//! action of its park (`park::arm_then_unlock`), after its registers are saved and
//! under the context's lock, and looks at the error there, under the same lock. A
//! cancel sets the error under that lock and claims every waiter on the list. So a
//! goroutine about to park either sees the error (and does not wait), or is on the
//! list when the error is set, and is claimed by the cancel unless a waker (or its
//! timeout) claimed it first: one compare-and-swap on the waiter decides, and the
//! `park.rs` hand-off decides who readies it. A woken goroutine takes its waiter off
//! the list under the lock (`delist`); a cancel that claims waiters does so under the
//! lock and wakes them after, touching nothing but the claimed ones.
//!
//! Reference counts: the creator's (`gr_ctx_free` drops it), one per bound goroutine,
//! one per child (on its parent), one while a deadline timer is armed. The last
//! release takes the context off its parent's list (under the parent's lock: a
//! cancel walking the parent's children takes a reference on each, and skips one
//! whose count already reached zero) and frees it, then releases the parent.
//!
//! Deadlines are timers on the runtime's timer heaps. A timer callback runs with its
//! heap's lock held, maybe while the goroutine switching away on that thread still holds the
//! lock of the object it parks on, so it must take no lock: it only pushes the
//! context on `EXPIRED` (lock-free). `cancel_expired` cancels what is there; the
//! scheduler calls it wherever it has run timers and holds no lock (and right after
//! a switch when the timers ran during one: `M::due`).
//!
//! Lock order: an object's lock, then a context's lock (a parking goroutine's pending
//! action); a context's lock, then the timer heap's (arming a deadline). A cancel
//! holds one context's lock at a time and wakes, closes the done channel and disarms
//! timers only after releasing it.

use core::cell::{Cell, UnsafeCell};
use core::ptr;
use core::sync::atomic::{fence, AtomicI32, AtomicPtr, AtomicUsize, Ordering};

use crate::runtime::lock::SpinLock;
use crate::runtime::park::Waiter;
use crate::runtime::timer::{self, TimerId};
use crate::sync::chan::Chan;

/// A node of the cancellation tree. Made by `new`, freed by the last `release`.
pub struct Ctx {
    refs: AtomicUsize,
    /// 0, -ECANCELED or -ETIMEDOUT: written once, under `lock`.
    err: AtomicI32,
    lock: SpinLock,
    /// Holds a reference; fixed at creation.
    parent: *const Ctx,
    /// Guarded by `lock`.
    st: UnsafeCell<State>,
    /// Links among the parent's children: guarded by the parent's lock.
    sib: UnsafeCell<Siblings>,
    /// Link on a cancel's work list: written by the one cancel that set the parent's
    /// error (it alone walks the parent's children), read by that cancel only.
    cancel_next: Cell<*const Ctx>,
    /// Link on `EXPIRED` (written by the deadline's callback before the push).
    expired_next: Cell<*const Ctx>,
}

/// A parked waiter's entry on its context's list: on the parked goroutine's stack
/// beside the waiter (`Waiter::wait`), linked while it is parked. The links and
/// `linked` are guarded by the context's lock.
pub(crate) struct CtxNode {
    waiter: *const Waiter,
    prev: Cell<*const CtxNode>,
    next: Cell<*const CtxNode>,
    linked: Cell<bool>,
}

impl CtxNode {
    pub(crate) fn new(waiter: *const Waiter) -> CtxNode {
        CtxNode {
            waiter,
            prev: Cell::new(ptr::null()),
            next: Cell::new(ptr::null()),
            linked: Cell::new(false),
        }
    }
}

struct State {
    /// Parked waiters of bound goroutines.
    waiters: *const CtxNode,
    children: *const Ctx,
    /// The done channel, once asked for (freed with the context).
    done: *mut Chan,
    /// The deadline timer while armed.
    timer: Option<TimerId>,
}

struct Siblings {
    prev: *const Ctx,
    next: *const Ctx,
    linked: bool,
}

// SAFETY: the plain fields are guarded by `lock` (or the parent's, for `sib`) or are
// fixed at creation; `cancel_next` and `expired_next` are each written by the one
// party the protocol above names and read after a release/acquire through a lock or
// the `EXPIRED` push.
unsafe impl Sync for Ctx {}
// SAFETY: as above: nothing in a Ctx is tied to the thread that made it.
unsafe impl Send for Ctx {}

impl Ctx {
    /// 0, or the error it was cancelled with.
    #[inline]
    pub fn err(&self) -> i32 {
        self.err.load(Ordering::Acquire)
    }

    /// # Safety
    /// `lock` is held.
    #[inline(always)]
    unsafe fn st(&self) -> *mut State {
        self.st.get()
    }
}

/// True when the calling goroutine is bound to a context (which a cancel or a
/// deadline may end): a wait with no event to park on then polls in cancellable
/// sleeps rather than block its thread (`child::poll_wait4`).
pub fn bound() -> bool {
    let g = crate::runtime::m::current_g();
    // SAFETY: the running goroutine's descriptor; only it writes its context.
    !g.is_null() && unsafe { !(*g).context.is_null() }
}

/// A new context, a child of `parent` (null: a root), with one reference (the
/// caller's). A child of a cancelled parent starts cancelled with its error. None
/// when memory runs out.
///
/// # Safety
/// `parent` is null or a live context the caller holds a reference to.
pub unsafe fn new(parent: *const Ctx) -> Option<*const Ctx> {
    let layout = std::alloc::Layout::new::<Ctx>();
    // SAFETY: Ctx has a nonzero size.
    let c = unsafe { std::alloc::alloc(layout) } as *mut Ctx;
    if c.is_null() {
        return None;
    }
    // SAFETY: c is fresh memory for one Ctx; parent is live (our contract), and we
    // link c under its lock, which guards its children list and c's `sib`.
    unsafe {
        c.write(Ctx {
            refs: AtomicUsize::new(1),
            err: AtomicI32::new(0),
            lock: SpinLock::new(),
            parent,
            st: UnsafeCell::new(State {
                waiters: ptr::null(),
                children: ptr::null(),
                done: ptr::null_mut(),
                timer: None,
            }),
            sib: UnsafeCell::new(Siblings {
                prev: ptr::null(),
                next: ptr::null(),
                linked: false,
            }),
            cancel_next: Cell::new(ptr::null()),
            expired_next: Cell::new(ptr::null()),
        });
        if !parent.is_null() {
            retain(parent);
            let p = &*parent;
            p.lock.lock();
            let e = p.err();
            if e != 0 {
                (*c).err.store(e, Ordering::Release);
            } else {
                let st = p.st();
                let head = (*st).children;
                *(*c).sib.get() = Siblings {
                    prev: ptr::null(),
                    next: head,
                    linked: true,
                };
                if !head.is_null() {
                    (*(*head).sib.get()).prev = c;
                }
                (*st).children = c;
            }
            p.lock.unlock();
        }
    }
    Some(c)
}

/// A child of `parent` cancelled with -ETIMEDOUT `ns` nanoseconds from now (at once
/// for `ns` <= 0), unless it is cancelled before. None when memory runs out.
///
/// # Safety
/// As for `new`.
pub unsafe fn with_timeout(parent: *const Ctx, ns: i64) -> Option<*const Ctx> {
    // SAFETY: our contract is new's.
    let c = unsafe { new(parent) }?;
    // SAFETY: c is live (we hold its only reference so far, and the parent's cancel
    // may see it, which is why its timer is set under its lock).
    unsafe {
        if ns <= 0 {
            cancel_with(c, -libc::ETIMEDOUT);
            return Some(c);
        }
        let when = timer::deadline_after(ns);
        (*c).lock.lock();
        if (*c).err() == 0 {
            // The timer's reference, dropped by whoever disarms it or after it fired.
            retain(c);
            let id = timer::add(when, deadline_fired, c as usize);
            (*(*c).st()).timer = Some(id);
        }
        (*c).lock.unlock();
    }
    Some(c)
}

/// Takes one more reference.
///
/// # Safety
/// `c` is live and the caller holds a reference (so the count is not zero).
#[inline]
pub unsafe fn retain(c: *const Ctx) {
    // SAFETY: our contract.
    unsafe { (*c).refs.fetch_add(1, Ordering::Relaxed) };
}

/// A reference for a cancel walking `c`'s parent's children, unless the count has
/// already reached zero (the context is on its way out: nothing bound to it).
///
/// # Safety
/// `c` is on a children list whose lock the caller holds (so it is not freed yet).
unsafe fn try_retain(c: *const Ctx) -> bool {
    // SAFETY: our contract: the memory is still there.
    let refs = unsafe { &(*c).refs };
    let mut n = refs.load(Ordering::Relaxed);
    loop {
        if n == 0 {
            return false;
        }
        match refs.compare_exchange_weak(n, n + 1, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return true,
            Err(cur) => n = cur,
        }
    }
}

/// Drops a reference; the last one frees the context (and so drops its reference to
/// its parent, and so on up the tree).
///
/// # Safety
/// The caller holds a reference to `c`, and does not use `c` afterwards.
pub unsafe fn release(mut c: *const Ctx) {
    loop {
        // SAFETY: the caller's reference keeps c live until this decrement.
        if unsafe { (*c).refs.fetch_sub(1, Ordering::Release) } != 1 {
            return;
        }
        fence(Ordering::Acquire);
        // SAFETY: the count is zero: nothing is bound to c, no child holds it, no
        // timer is armed for it, and nobody can take a reference (try_retain refuses
        // zero), so c is ours; its parent is live (c's reference to it). Taking c off
        // the parent's list under the parent's lock orders us after any cancel that
        // is walking that list.
        unsafe {
            let parent = (*c).parent;
            if !parent.is_null() {
                let p = &*parent;
                p.lock.lock();
                let sib = &mut *(*c).sib.get();
                if sib.linked {
                    if sib.prev.is_null() {
                        (*p.st()).children = sib.next;
                    } else {
                        (*(*sib.prev).sib.get()).next = sib.next;
                    }
                    if !sib.next.is_null() {
                        (*(*sib.next).sib.get()).prev = sib.prev;
                    }
                    sib.linked = false;
                }
                p.lock.unlock();
            }
            let done = (*(*c).st()).done;
            if !done.is_null() {
                drop(Box::from_raw(done));
            }
            ptr::drop_in_place(c as *mut Ctx);
            std::alloc::dealloc(c as *mut u8, std::alloc::Layout::new::<Ctx>());
            if parent.is_null() {
                return;
            }
            c = parent;
        }
    }
}

/// Cancels `c` and its subtree with -ECANCELED. Returns 0 (also when it was already
/// cancelled: the first error stays).
///
/// # Safety
/// `c` is live and the caller holds a reference.
pub unsafe fn cancel(c: *const Ctx) -> i32 {
    // SAFETY: our contract.
    unsafe { cancel_with(c, -libc::ECANCELED) };
    0
}

/// Cancels `c` and its subtree with `err`: every context of it that is not cancelled
/// yet gets `err`, its parked bound goroutines are woken, its done channel closed and
/// its deadline disarmed. Iterative (a work list through `cancel_next`), so a deep
/// tree does not grow the stack.
///
/// # Safety
/// `c` is live and the caller holds a reference.
pub unsafe fn cancel_with(c: *const Ctx, err: i32) {
    // SAFETY: our contract for c; every context on the work list carries a reference
    // taken by try_retain, dropped after its turn.
    unsafe {
        let mut work = cancel_one(c, err, ptr::null());
        while !work.is_null() {
            let next = (*work).cancel_next.get();
            let more = cancel_one(work, err, next);
            release(work);
            work = more;
        }
    }
}

/// Cancels one context (unless it already is) and returns the work list `rest` with
/// its children (each with a reference) pushed on it.
///
/// # Safety
/// `c` is live and referenced by the caller; `rest` is a work list of the caller's.
unsafe fn cancel_one(c: *const Ctx, err: i32, mut rest: *const Ctx) -> *const Ctx {
    // SAFETY: our contract; the lists are guarded by c's lock, held while we walk
    // them; a listed waiter is alive until it is woken or has taken itself off the
    // list (under this lock), and one that we claim cannot run until we wake it.
    unsafe {
        let ctx = &*c;
        ctx.lock.lock();
        if ctx.err() != 0 {
            ctx.lock.unlock();
            return rest;
        }
        // For ThreadSanitizer: what the canceller did before happens before what a
        // wait that this cancel ends does after it (`park::Waiter::wait`).
        crate::runtime::sanitizer::hb_release(c as *const core::ffi::c_void);
        ctx.err.store(err, Ordering::Release);
        let st = ctx.st();
        // Claim every listed waiter; the winners go on a private chain (`next`).
        let mut won: *const CtxNode = ptr::null();
        let mut n = (*st).waiters;
        while !n.is_null() {
            let next = (*n).next.get();
            (*n).linked.set(false);
            if (*(*n).waiter).claim_for_cancel() {
                (*n).next.set(won);
                won = n;
            }
            n = next;
        }
        (*st).waiters = ptr::null();
        let mut ch = (*st).children;
        while !ch.is_null() {
            if try_retain(ch) {
                (*ch).cancel_next.set(rest);
                rest = ch;
            }
            ch = (*(*ch).sib.get()).next;
        }
        let done = (*st).done;
        let timer = (*st).timer.take();
        ctx.lock.unlock();
        while !won.is_null() {
            let next = (*won).next.get();
            Waiter::wake((*won).waiter);
            won = next;
        }
        if !done.is_null() {
            (*done).close();
        }
        if let Some(id) = timer {
            if timer::cancel(id) {
                // Disarmed before it fired: its reference is ours to drop (the
                // caller's keeps c alive).
                release(c);
            }
        }
    }
    rest
}

/// The pending action of a cancellable park (`park::arm_then_unlock`): puts the
/// waiter's `node` on `c`'s list, unless `c` is cancelled: then claims the waiter
/// for the cancel and returns true (the caller readies the goroutine). Nothing is
/// linked either when someone else claimed it already.
///
/// # Safety
/// `c` is the context of the goroutine parked in `node`'s waiter (which keeps it
/// alive), and the node and its waiter stay where they are until it runs again.
pub(crate) unsafe fn enlist(c: *const Ctx, node: *const CtxNode) -> bool {
    // SAFETY: our contract; the list and the node's links are guarded by c's lock.
    unsafe {
        let ctx = &*c;
        let w = (*node).waiter;
        ctx.lock.lock();
        if ctx.err() != 0 {
            let won = (*w).claim_for_cancel();
            ctx.lock.unlock();
            return won;
        }
        if (*w).state.load(Ordering::Relaxed) != 0 {
            // Claimed already (a waker or the timeout): it will be woken anyway.
            ctx.lock.unlock();
            return false;
        }
        let st = ctx.st();
        let head = (*st).waiters;
        (*node).prev.set(ptr::null());
        (*node).next.set(head);
        if !head.is_null() {
            (*head).prev.set(node);
        }
        (*st).waiters = node;
        (*node).linked.set(true);
        ctx.lock.unlock();
    }
    false
}

/// Takes a woken waiter's node off its context's list, if a cancel has not done so.
///
/// # Safety
/// `c` is the context the node was enlisted with (kept alive by the goroutine, which
/// is the caller), and the node is the caller's.
pub(crate) unsafe fn delist(c: *const Ctx, node: *const CtxNode) {
    // SAFETY: our contract; the list and the links are guarded by c's lock.
    unsafe {
        let ctx = &*c;
        ctx.lock.lock();
        if (*node).linked.get() {
            let (p, n) = ((*node).prev.get(), (*node).next.get());
            if p.is_null() {
                (*ctx.st()).waiters = n;
            } else {
                (*p).next.set(n);
            }
            if !n.is_null() {
                (*n).prev.set(p);
            }
            (*node).linked.set(false);
        }
        ctx.lock.unlock();
    }
}

/// The done channel of `c` (element size 0), made on first request and closed once
/// `c` is cancelled (at once if it already is). Owned by `c`. None when memory runs
/// out.
///
/// # Safety
/// `c` is live and the caller holds a reference.
pub unsafe fn done(c: *const Ctx) -> Option<*mut Chan> {
    // SAFETY: our contract; `done` is guarded by c's lock. Closing the new channel
    // under the lock touches nobody: nobody else has it yet.
    unsafe {
        let ctx = &*c;
        ctx.lock.lock();
        let st = ctx.st();
        if (*st).done.is_null() {
            let Some(ch) = Chan::new(0, 0) else {
                ctx.lock.unlock();
                return None;
            };
            if ctx.err() != 0 {
                ch.close();
            }
            (*st).done = Box::into_raw(ch);
        }
        let d = (*st).done;
        ctx.lock.unlock();
        Some(d)
    }
}

// ---------------------------------------------------------------------------------
// deadlines

/// Contexts whose deadline passed, waiting for `cancel_expired` (a lock-free stack
/// through `Ctx::expired_next`; taken whole, so no ABA).
static EXPIRED: AtomicPtr<Ctx> = AtomicPtr::new(ptr::null_mut());

/// Timer callback of a deadline: pushes the context on `EXPIRED` (a callback may take
/// no lock; see the top of this file). The timer's reference goes with it.
///
/// # Safety
/// `arg` is a context holding a reference for this timer (`with_timeout`).
unsafe fn deadline_fired(arg: usize) {
    let c = arg as *mut Ctx;
    let mut head = EXPIRED.load(Ordering::Relaxed);
    loop {
        // SAFETY: the timer's reference keeps c alive; only this push writes its
        // `expired_next` (a context is armed, so fires, at most once).
        unsafe { (*c).expired_next.set(head) };
        match EXPIRED.compare_exchange_weak(head, c, Ordering::Release, Ordering::Relaxed) {
            Ok(_) => return,
            Err(cur) => head = cur,
        }
    }
}

/// True when deadlines have passed whose contexts `cancel_expired` has yet to cancel.
#[inline]
pub fn expired_waiting() -> bool {
    !EXPIRED.load(Ordering::Relaxed).is_null()
}

/// Cancels (with -ETIMEDOUT) the contexts whose deadline timer has fired. The caller
/// holds no lock (no object's, not the timer heap's). Returns how many.
pub fn cancel_expired() -> usize {
    if !expired_waiting() {
        return 0;
    }
    let mut c = EXPIRED.swap(ptr::null_mut(), Ordering::Acquire) as *const Ctx;
    let mut n = 0;
    while !c.is_null() {
        // SAFETY: each listed context holds its timer's reference, which we drop
        // after cancelling it; the link is read before that.
        unsafe {
            let next = (*c).expired_next.get();
            cancel_with(c, -libc::ETIMEDOUT);
            release(c);
            c = next;
        }
        n += 1;
    }
    n
}
