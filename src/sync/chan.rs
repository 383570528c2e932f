//! Channels: Go's `chan` for fixed-size elements copied in and out by `memcpy`.
//!
//! The design is Go's `runtime/chan.go`, smaller:
//!
//! - One spin lock guards everything: the ring buffer (`cap` slots of `elem_size`
//!   bytes; none for an unbuffered channel), the closed flag and two FIFO queues of
//!   parked parties, receivers (`recvq`) and senders (`sendq`).
//! - A parked party is a [`Sudog`] on its own stack: which waiter to wake, where its
//!   element is, and (for a select) which case it stands for. Whoever dequeues it
//!   copies the element directly to or from the parked party's memory, so a send to a
//!   parked receiver is one lock, one `memcpy`, one unlock and one wake-up (which puts
//!   the receiver in the waker's `runnext`: a ping-pong pair stays on one processor).
//! - Invariants (under the lock): receivers wait only while the buffer is empty;
//!   senders wait only while it is full (for an unbuffered channel: always); after
//!   close nobody new waits, and close empties both queues.
//! - A buffered channel stays FIFO when a sender is parked on a full buffer: a
//!   receiver takes the head of the buffer and moves the parked sender's value to
//!   the tail (the slot it just freed), as Go does.
//!
//! Freeing after return is safe: a waker does all its channel work (copy, queue
//! updates, unlock) *before* it wakes the parked party, and touches only the parked
//! party's sudog/waiter afterwards — never the channel. So once a receive returns, the
//! sender that handed it the value is done with the channel.
//!
//! A select waits on several queues with one waiter; a waker that dequeues a select's
//! sudog must first win `Waiter::claim` (one select fires once); sudogs that lose are
//! dropped from the queue and their select removes the rest itself (see `select.rs`),
//! except on the channel that fired: the waker takes the select's other sudogs off
//! that channel too (`unlink_select_siblings`), so the woken select never touches
//! it again and freeing after return stays safe with selects as well.

use core::ptr;

use super::shim::{
    hb_acquire, hb_acquire_release, hb_release, AtomicUsize, Guarded, Ordering, SpinLock,
    WaitReason, Waiter, Wake,
};
use crate::sync::select::SelectWait;

/// One party parked on one channel queue (Go's sudog). Lives on the parked party's
/// stack; the channel's lock guards its links.
pub(crate) struct Sudog {
    /// The waiter to wake (for a select: `(*sel).w`).
    pub(crate) waiter: *const Waiter,
    /// Null for a plain send/receive; the select this case belongs to otherwise.
    pub(crate) sel: *const SelectWait,
    /// The element: source for a sender, destination for a receiver.
    pub(crate) elem: *mut u8,
    pub(crate) prev: *mut Sudog,
    pub(crate) next: *mut Sudog,
    /// The select case index.
    pub(crate) index: usize,
    /// On a channel queue (cleared by whoever takes it off).
    pub(crate) queued: bool,
    /// Set by the waker: true when the value moved, false when woken by close.
    pub(crate) success: bool,
}

impl Sudog {
    pub(crate) const EMPTY: Sudog = Sudog {
        waiter: ptr::null(),
        sel: ptr::null(),
        elem: ptr::null_mut(),
        prev: ptr::null_mut(),
        next: ptr::null_mut(),
        index: 0,
        queued: false,
        success: false,
    };
}

/// A FIFO of sudogs (intrusive, doubly linked so a select can unlink any of its own).
pub(crate) struct WaitQ {
    first: *mut Sudog,
    last: *mut Sudog,
}

impl WaitQ {
    const fn new() -> Self {
        WaitQ {
            first: ptr::null_mut(),
            last: ptr::null_mut(),
        }
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.first.is_null()
    }

    /// # Safety
    /// `sd` is valid and on no queue; the channel lock is held.
    #[inline]
    pub(crate) unsafe fn enqueue(&mut self, sd: *mut Sudog) {
        // SAFETY: our contract: sd is valid and on no queue, and the channel lock is
        // held, so this queue and its linked sudogs (valid while queued) are ours.
        unsafe {
            (*sd).next = ptr::null_mut();
            (*sd).prev = self.last;
            (*sd).queued = true;
            if self.last.is_null() {
                self.first = sd;
            } else {
                (*self.last).next = sd;
            }
            self.last = sd;
        }
    }

    /// Takes a queued sudog off (a select removing its cases). No-op if it is not
    /// queued any more (a waker dropped it).
    ///
    /// # Safety
    /// `sd` is valid; the lock of this queue's channel is held.
    pub(crate) unsafe fn remove(&mut self, sd: *mut Sudog) {
        // SAFETY: our contract: sd is valid and the channel lock is held, so this
        // queue and its linked sudogs (valid while queued) are ours to change.
        unsafe {
            if !(*sd).queued {
                return;
            }
            let (p, n) = ((*sd).prev, (*sd).next);
            if p.is_null() {
                self.first = n;
            } else {
                (*p).next = n;
            }
            if n.is_null() {
                self.last = p;
            } else {
                (*n).prev = p;
            }
            (*sd).prev = ptr::null_mut();
            (*sd).next = ptr::null_mut();
            (*sd).queued = false;
        }
    }

    /// Takes the first sudog that may be woken: a plain one whose claim this call wins
    /// (always, unless its waiter has a context that may cancel it), or a select's
    /// whose claim this call wins (its `fired` is then set to it). Sudogs already
    /// claimed by someone else (a select's other case, a cancel) are dropped from the
    /// queue on the way: their owners find them unlinked.
    ///
    /// # Safety
    /// The channel lock is held.
    #[inline]
    pub(crate) unsafe fn dequeue(&mut self) -> *mut Sudog {
        // SAFETY: queued sudogs are valid (their owners are parked or spinning on the
        // lock we hold to unlink them).
        unsafe {
            loop {
                let sd = self.first;
                if sd.is_null() {
                    return sd;
                }
                let n = (*sd).next;
                self.first = n;
                if n.is_null() {
                    self.last = ptr::null_mut();
                } else {
                    (*n).prev = ptr::null_mut();
                }
                (*sd).next = ptr::null_mut();
                (*sd).queued = false;
                let sel = (*sd).sel;
                if sel.is_null() {
                    if (*(*sd).waiter).claim_untimed() {
                        return sd;
                    }
                    continue;
                }
                if (*sel).w.claim() {
                    (*sel).set_fired(sd);
                    return sd;
                }
            }
        }
    }
}

/// After `dequeue` took `sd` off a queue of channel `chan`: if it is a select's,
/// takes that select's other sudogs on `chan` off too (a select naming `chan` in
/// two cases), so that the woken select never comes back to `chan` (select.rs,
/// pass 3). Close needs no call: it drains both queues, dropping the rest.
///
/// # Safety
/// `chan`'s lock is held (`st` is its state); `sd` came from `dequeue`.
#[inline]
pub(crate) unsafe fn unlink_select_siblings(st: &mut State, chan: &Chan, sd: *mut Sudog) {
    // SAFETY: our contract (the lock held, sd from dequeue): a select's claim was won
    // by that dequeue, so it is parked or parking and its cases and sudogs are live.
    unsafe {
        let sel = (*sd).sel;
        if !sel.is_null() {
            (*sel).unlink_others_on(chan, st, sd);
        }
    }
}

/// Wakes the owner of a sudog taken by `dequeue` (after the channel lock is
/// released). After this the caller must not touch `sd`.
///
/// # Safety
/// `sd` came from `dequeue` (and for a select, its claim was won there).
#[inline(always)]
pub(crate) unsafe fn wake_sudog(sd: *mut Sudog) {
    // SAFETY: sd came from dequeue (our contract), so it is off every queue and ours
    // to wake; the sudog and its select stay valid until their owner is woken, and
    // neither is touched after the wake.
    unsafe {
        hb_release((*sd).waiter);
        let sel = (*sd).sel;
        if sel.is_null() {
            Waiter::wake((*sd).waiter);
        } else {
            SelectWait::wake(sel);
        }
    }
}

/// Copies one element. The commonest sizes, a word (a pointer, a `long`) and none (a
/// signal), take one compare each here; the others are out of line (a `match` over
/// all of them inline compiles to a jump table, several instructions more for all).
///
/// # Safety
/// `src` and `dst` are valid for `n` bytes (they may overlap).
#[inline(always)]
pub(crate) unsafe fn copy_elem(src: *const u8, dst: *mut u8, n: usize) {
    // SAFETY: src and dst are valid for n bytes (our contract), so the unaligned read
    // and write of a word stay inside them.
    unsafe {
        if n == 8 {
            ptr::write_unaligned(dst as *mut u64, ptr::read_unaligned(src as *const u64));
        } else if n != 0 {
            copy_elem_sized(src, dst, n);
        }
    }
}

/// `copy_elem` for sizes other than 0 and 8: small powers of two are one load and
/// store.
///
/// # Safety
/// As `copy_elem`.
#[inline(never)]
unsafe fn copy_elem_sized(src: *const u8, dst: *mut u8, n: usize) {
    // SAFETY: src and dst are valid for n bytes (our contract), so the unaligned
    // reads and writes of n bytes stay inside them; ptr::copy allows overlap.
    unsafe {
        match n {
            4 => ptr::write_unaligned(dst as *mut u32, ptr::read_unaligned(src as *const u32)),
            16 => ptr::write_unaligned(dst as *mut u128, ptr::read_unaligned(src as *const u128)),
            _ => ptr::copy(src, dst, n),
        }
    }
}

/// The lock-guarded part of a channel.
pub(crate) struct State {
    /// Index of the next slot to receive from / send into.
    recvx: usize,
    sendx: usize,
    /// Values in the buffer.
    pub(crate) qcount: usize,
    pub(crate) closed: bool,
    pub(crate) recvq: WaitQ,
    pub(crate) sendq: WaitQ,
}

/// A channel. Created by [`Chan::new`] as a `Box`; freed by dropping that box.
pub struct Chan {
    pub(crate) lock: SpinLock,
    pub(crate) st: Guarded<State>,
    /// `qcount` mirrored for lock-free `len`.
    count: AtomicUsize,
    elem_size: usize,
    cap: usize,
    buf: *mut u8,
}

// SAFETY: a Chan owns its buffer (plain bytes) and holds no thread-bound state; the
// sudog pointers in its queues point at parked parties, valid from any thread.
unsafe impl Send for Chan {}
// SAFETY: all shared mutable state (`st`, the buffer) is touched only under `lock`;
// `count` is atomic and the rest is immutable after `new`.
unsafe impl Sync for Chan {}

/// What an operation found under the lock.
pub(crate) enum Found {
    /// Done with this return code.
    Done(i32),
    /// Done; wake this sudog once the lock is released.
    Wake(*mut Sudog),
    /// Would block.
    Block,
}

const BUF_ALIGN: usize = 16;

impl Chan {
    /// A channel for `elem_size`-byte elements with `cap` buffer slots (0:
    /// unbuffered). None when the buffer size overflows or cannot be allocated.
    pub fn new(elem_size: usize, cap: usize) -> Option<Box<Chan>> {
        let bytes = elem_size.checked_mul(cap)?;
        if bytes > isize::MAX as usize / 2 {
            return None;
        }
        let buf = if bytes == 0 {
            ptr::NonNull::<u128>::dangling().as_ptr() as *mut u8
        } else {
            let layout = std::alloc::Layout::from_size_align(bytes, BUF_ALIGN).ok()?;
            // SAFETY: `layout` has a nonzero size (bytes != 0).
            let p = unsafe { std::alloc::alloc(layout) };
            if p.is_null() {
                return None;
            }
            p
        };
        Some(Box::new(Chan::on(elem_size, cap, buf)))
    }

    /// An empty, open channel over the buffer at `buf` (its owner frees it).
    fn on(elem_size: usize, cap: usize, buf: *mut u8) -> Chan {
        Chan {
            lock: SpinLock::new(),
            st: Guarded::new(State {
                recvx: 0,
                sendx: 0,
                qcount: 0,
                closed: false,
                recvq: WaitQ::new(),
                sendq: WaitQ::new(),
            }),
            count: AtomicUsize::new(0),
            elem_size,
            cap,
            buf,
        }
    }

    /// A channel whose buffer is memory its owner provides (`cap` slots of
    /// `elem_size` bytes at `buf`), for an object that embeds its channel and the
    /// buffer beside it (`sync::timerchan`): one allocation instead of two. It comes
    /// in `ManuallyDrop` because dropping it would free `buf` as if `new` had
    /// allocated it; the owner simply forgets it (a `Chan` holds nothing else).
    ///
    /// # Safety
    /// `buf` is valid for reads and writes of `elem_size * cap` bytes, and stays
    /// where it is, for as long as the channel is used.
    pub(crate) unsafe fn with_buffer(
        elem_size: usize,
        cap: usize,
        buf: *mut u8,
    ) -> core::mem::ManuallyDrop<Chan> {
        core::mem::ManuallyDrop::new(Chan::on(elem_size, cap, buf))
    }

    #[inline]
    pub fn elem_size(&self) -> usize {
        self.elem_size
    }

    #[inline]
    pub fn cap(&self) -> usize {
        self.cap
    }

    /// Values buffered now (a snapshot).
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    #[inline]
    fn slot(&self, i: usize) -> *mut u8 {
        // SAFETY (of the arithmetic): i < cap, inside the allocation.
        self.buf.wrapping_add(i * self.elem_size)
    }

    /// Send half under the lock: hand to a parked receiver, or buffer.
    ///
    /// # Safety
    /// The lock is held (and stays held); `elem` is valid for `elem_size` bytes.
    #[inline(always)]
    pub(crate) unsafe fn try_send_locked(&self, elem: *const u8) -> Found {
        hb_acquire_release(self);
        // SAFETY: the lock is held (our contract), so `st` and the buffer are ours, and
        // dequeue/unlink_select_siblings may run; a dequeued sudog's elem is valid for
        // elem_size bytes (its owner is parked on it), as `elem` is (our contract).
        unsafe {
            self.st.with(
                #[inline(always)]
                |st| {
                    if st.closed {
                        return Found::Done(-libc::EPIPE);
                    }
                    let sd = st.recvq.dequeue();
                    if !sd.is_null() {
                        unlink_select_siblings(st, self, sd);
                        copy_elem(elem, (*sd).elem, self.elem_size);
                        (*sd).success = true;
                        return Found::Wake(sd);
                    }
                    if st.qcount < self.cap {
                        copy_elem(elem, self.slot(st.sendx), self.elem_size);
                        st.sendx += 1;
                        if st.sendx == self.cap {
                            st.sendx = 0;
                        }
                        st.qcount += 1;
                        self.count.store(st.qcount, Ordering::Relaxed);
                        return Found::Done(0);
                    }
                    Found::Block
                },
            )
        }
    }

    /// Receive half under the lock: take from a parked sender, the buffer, or report
    /// closed (`Done(-EPIPE)`).
    ///
    /// # Safety
    /// As `try_send_locked` (`elem` is the destination).
    #[inline(always)]
    pub(crate) unsafe fn try_recv_locked(&self, elem: *mut u8) -> Found {
        hb_acquire_release(self);
        // SAFETY: as in try_send_locked: the lock is held, so `st` and the buffer are
        // ours; a dequeued sender's elem and `elem` are valid for elem_size bytes.
        unsafe {
            self.st.with(
                #[inline(always)]
                |st| {
                    let sd = st.sendq.dequeue();
                    if !sd.is_null() {
                        unlink_select_siblings(st, self, sd);
                        if self.cap == 0 {
                            copy_elem((*sd).elem, elem, self.elem_size);
                        } else {
                            // Full buffer: take the head, put the sender's value at the
                            // tail (the slot just freed).
                            let s = self.slot(st.recvx);
                            copy_elem(s, elem, self.elem_size);
                            copy_elem((*sd).elem, s, self.elem_size);
                            st.recvx += 1;
                            if st.recvx == self.cap {
                                st.recvx = 0;
                            }
                            st.sendx = st.recvx;
                        }
                        (*sd).success = true;
                        return Found::Wake(sd);
                    }
                    if st.qcount > 0 {
                        copy_elem(self.slot(st.recvx), elem, self.elem_size);
                        st.recvx += 1;
                        if st.recvx == self.cap {
                            st.recvx = 0;
                        }
                        st.qcount -= 1;
                        self.count.store(st.qcount, Ordering::Relaxed);
                        return Found::Done(0);
                    }
                    if st.closed {
                        return Found::Done(-libc::EPIPE);
                    }
                    Found::Block
                },
            )
        }
    }

    /// Sends one element (copied from `elem`): 0, `-EPIPE` when closed (also when
    /// closed while waiting), `-EAGAIN` when `!block` and it would wait, or the
    /// context's error when the waiting goroutine's context is cancelled (nothing
    /// was sent).
    ///
    /// # Safety
    /// `elem` is valid for `elem_size` bytes.
    #[inline(always)]
    pub unsafe fn send(&self, elem: *const u8, block: bool) -> i32 {
        self.lock.lock();
        // SAFETY: we just took the lock; elem is valid for elem_size bytes (our
        // contract).
        match unsafe { self.try_send_locked(elem) } {
            Found::Done(rc) => {
                // SAFETY: this thread took the lock above and still holds it.
                unsafe { self.lock.unlock() };
                rc
            }
            Found::Wake(sd) => {
                // SAFETY: this thread still holds the lock; sd came from dequeue, and
                // is woken only once the lock is released (wake_sudog's contract).
                unsafe {
                    self.lock.unlock();
                    wake_sudog(sd);
                }
                0
            }
            Found::Block => {
                if !block {
                    // SAFETY: this thread took the lock above and still holds it.
                    unsafe { self.lock.unlock() };
                    return -libc::EAGAIN;
                }
                // SAFETY: the lock is still held, and elem stays valid for elem_size
                // bytes while we wait (our contract covers the whole call).
                unsafe { self.park(elem as *mut u8, true) }
            }
        }
    }

    /// Receives one element into `elem`: 0, `-EPIPE` once closed and drained,
    /// `-EAGAIN` when `!block` and it would wait, or the context's error when the
    /// waiting goroutine's context is cancelled (nothing was received).
    ///
    /// # Safety
    /// `elem` is valid for `elem_size` bytes.
    #[inline(always)]
    pub unsafe fn recv(&self, elem: *mut u8, block: bool) -> i32 {
        self.lock.lock();
        // SAFETY: we just took the lock; elem is valid for elem_size bytes (our
        // contract).
        match unsafe { self.try_recv_locked(elem) } {
            Found::Done(rc) => {
                // SAFETY: this thread took the lock above and still holds it.
                unsafe { self.lock.unlock() };
                rc
            }
            Found::Wake(sd) => {
                // SAFETY: this thread still holds the lock; sd came from dequeue, and
                // is woken only once the lock is released (wake_sudog's contract).
                unsafe {
                    self.lock.unlock();
                    wake_sudog(sd);
                }
                0
            }
            Found::Block => {
                if !block {
                    // SAFETY: this thread took the lock above and still holds it.
                    unsafe { self.lock.unlock() };
                    return -libc::EAGAIN;
                }
                // SAFETY: the lock is still held, and elem stays valid for elem_size
                // bytes while we wait (our contract covers the whole call).
                unsafe { self.park(elem, false) }
            }
        }
    }

    /// Queues the caller and waits (the lock is held on entry, released by `wait`).
    /// A cancelled wait takes its sudog off the queue again (unless a waker dropped it
    /// after losing the claim).
    ///
    /// # Safety
    /// The caller holds the lock; `elem` is valid for `elem_size` bytes (read for a
    /// send, written for a receive) until this returns.
    #[inline(never)]
    unsafe fn park(&self, elem: *mut u8, send: bool) -> i32 {
        let w = Waiter::cancellable();
        let mut sd = Sudog {
            waiter: &w,
            elem,
            ..Sudog::EMPTY
        };
        let sdp: *mut Sudog = &mut sd;
        // SAFETY: the lock is held (our contract), so the queues are ours; sd and w
        // stay on this stack until we are woken (nobody but the waker that dequeues
        // sd touches them, and only before the wake), which meets enqueue's and
        // block's contracts.
        unsafe {
            self.st.with(|st| {
                if send {
                    st.sendq.enqueue(sdp);
                } else {
                    st.recvq.enqueue(sdp);
                }
            });
            let reason = if send {
                WaitReason::ChanSend
            } else {
                WaitReason::ChanRecv
            };
            match w.wait(&self.lock, reason, -1) {
                Wake::Woken => {
                    hb_acquire(&w);
                    if (*sdp).success {
                        0
                    } else {
                        -libc::EPIPE
                    }
                }
                not_woken => self.unqueue(sdp, send, not_woken),
            }
        }
    }

    /// After a wait that its context ended: takes the sudog off its queue (unless a
    /// waker that lost the claim dropped it already) and returns the context's error.
    /// Out of line: the un-cancelled path stays as short as it was.
    ///
    /// # Safety
    /// `sd` is the caller's sudog, queued on this channel's send (`send`) or receive
    /// queue by `park`, whose wait ended with `how`.
    #[cold]
    #[inline(never)]
    unsafe fn unqueue(&self, sd: *mut Sudog, send: bool, how: Wake) -> i32 {
        let Wake::Cancelled(e) = how else {
            unreachable!("a channel wait without a timeout timed out")
        };
        self.lock.lock();
        // SAFETY: we hold the lock; sd is ours and valid (our contract).
        unsafe {
            self.st.with(|st| {
                if send {
                    st.sendq.remove(sd);
                } else {
                    st.recvq.remove(sd);
                }
            });
            self.lock.unlock();
        }
        e
    }

    /// Closes the channel: 0, or `-EPIPE` if it was already closed. Every parked
    /// receiver and sender is woken (and gets `-EPIPE`); buffered values stay
    /// receivable.
    pub fn close(&self) -> i32 {
        self.lock.lock();
        hb_acquire_release(self);
        // SAFETY: we took the lock, so the queues are ours (dequeue's contract);
        // dequeued sudogs are ours to wake, linked through `next` on a private list
        // until then, and each is woken only after the unlock.
        unsafe {
            let list = self.st.with(|st| {
                if st.closed {
                    return Err(());
                }
                st.closed = true;
                let mut list: *mut Sudog = ptr::null_mut();
                for q in [&mut st.recvq, &mut st.sendq] {
                    loop {
                        let sd = q.dequeue();
                        if sd.is_null() {
                            break;
                        }
                        (*sd).success = false;
                        (*sd).next = list;
                        list = sd;
                    }
                }
                Ok(list)
            });
            self.lock.unlock();
            let Ok(mut sd) = list else {
                return -libc::EPIPE;
            };
            while !sd.is_null() {
                let next = (*sd).next;
                wake_sudog(sd);
                sd = next;
            }
        }
        0
    }

    /// True while a party is parked on the channel (a select counts until it has
    /// removed its cases).
    pub fn has_waiters(&self) -> bool {
        self.lock.lock();
        // SAFETY: we took the lock, which guards `st`.
        let busy = unsafe {
            self.st
                .with(|st| !st.recvq.is_empty() || !st.sendq.is_empty())
        };
        // SAFETY: this thread took the lock above and still holds it.
        unsafe { self.lock.unlock() };
        busy
    }
}

impl Drop for Chan {
    fn drop(&mut self) {
        let bytes = self.elem_size * self.cap;
        if bytes != 0 {
            // SAFETY: buf was allocated in `new` with exactly this layout (bytes != 0,
            // BUF_ALIGN, checked there), and is freed only here.
            unsafe {
                std::alloc::dealloc(
                    self.buf,
                    std::alloc::Layout::from_size_align_unchecked(bytes, BUF_ALIGN),
                )
            };
        }
    }
}
