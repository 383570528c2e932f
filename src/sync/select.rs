//! select: wait for the first of several channel operations (Go's `selectgo`).
//!
//! 1. Validate every case, then lock every distinct channel in address order (the
//!    one global lock order, so two selects over the same channels cannot deadlock;
//!    a channel named twice is locked once).
//! 2. Poll the cases in a random order (fairness among ready cases) and perform the
//!    first one that can proceed. A try (`timeout == 0`) or timed select never gives
//!    up while a case is ready, because this poll runs before any give-up path.
//! 3. Otherwise put one sudog per case on its channel's queue, all pointing at one
//!    [`SelectWait`], and block. The sudogs are queued in the random poll order, so
//!    that when several cases wait on one channel, which of them a later partner
//!    completes (the first in the queue) is uniform too, as in Go. Wakers race for the waiter's `claim` (so the select
//!    fires once); the winner records which sudog fired, completes the transfer under
//!    its channel's lock, and only then wakes the select.
//! 4. Once awake (or timed out or cancelled: the timer or the context won the
//!    claim), lock the channels again and unlink the sudogs nobody took. Not the
//!    channel that fired: its waker already
//!    took this select's sudogs off it (the fired one, and any other case naming the
//!    same channel, see [`SelectWait::unlink_others_on`]; close takes them all), so a
//!    woken select never touches that channel again, and the party that completed
//!    the transfer may free it as soon as its own call returns (as for plain sends
//!    and receives).
//!
//! The select-wide lock `slock`: one waiter is findable through several channel
//! locks, but `Waiter::block` releases only one lock once the goroutine is saved.
//! So the selector takes `slock` before it releases the channel locks and blocks on
//! `slock`; a waker that won the claim takes and drops `slock` before `wake`, which
//! therefore always finds the selector fully parked (the park/wake rule of
//! `runtime/park.rs`). This costs a waker of a select one uncontended lock/unlock.

use core::ptr;

use super::chan::{wake_sudog, Chan, Found, State, Sudog, WaitQ};
use super::shim::{fastrand, hb_acquire, Guarded, SpinLock, WaitReason, Waiter, Wake};

/// Operation codes of a select case.
pub(crate) const SEND: i32 = 1;
pub(crate) const RECV: i32 = 2;

/// One case: same layout as the C `gr_case`.
#[repr(C)]
pub struct Case {
    pub chan: *mut Chan,
    pub op: i32,
    pub elem: *mut u8,
    /// Output: 1 when the case fired because its channel is closed.
    pub closed: i32,
}

/// The shared part of a blocked select (on the selector's stack).
pub(crate) struct SelectWait {
    pub(crate) w: Waiter,
    slock: SpinLock,
    /// The sudog that fired; written once, by the claim winner, before the wake.
    fired: Guarded<*mut Sudog>,
    /// The cases and their sudogs (on the selector's side while it waits), for a
    /// waker's `unlink_others_on`; only set when a channel appears in two cases.
    cases: *const Case,
    sds: *mut Sudog,
    n: usize,
}

impl SelectWait {
    fn new() -> Self {
        SelectWait {
            w: Waiter::cancellable(),
            slock: SpinLock::new(),
            fired: Guarded::new(ptr::null_mut()),
            cases: ptr::null(),
            sds: ptr::null_mut(),
            n: 0,
        }
    }

    /// A waker that won this select's claim through `taken`, a sudog on channel
    /// `chan`, takes the select's other sudogs on `chan` (cases naming the same
    /// channel) off its queues, under `chan`'s lock, so the woken select need not
    /// come back to `chan`.
    ///
    /// # Safety
    /// The caller holds `chan`'s lock (`st` is its state) and won the claim; the
    /// selector is parked or parking (its cases and sudogs are live).
    #[inline]
    pub(crate) unsafe fn unlink_others_on(
        &self,
        chan: *const Chan,
        st: &mut State,
        taken: *mut Sudog,
    ) {
        // SAFETY: the caller's guarantees; `n` is 0 unless the arrays were set.
        unsafe {
            for i in 0..self.n {
                let c = &*self.cases.add(i);
                let sd = self.sds.add(i);
                if sd == taken || !ptr::eq(c.chan, chan) {
                    continue;
                }
                waitq(st, c.op).remove(sd);
            }
        }
    }

    /// # Safety
    /// The caller just won `self.w.claim()`.
    #[inline]
    pub(crate) unsafe fn set_fired(&self, sd: *mut Sudog) {
        // SAFETY: only the claim winner writes, and the selector reads after its wake.
        unsafe { self.fired.with(|f| *f = sd) };
    }

    /// Wakes the select (after its claim was won and the transfer done): waits for
    /// it to finish parking, then wakes it. The caller must not touch it afterwards.
    ///
    /// # Safety
    /// `sel` is a blocked (or blocking) select whose claim the caller won.
    pub(crate) unsafe fn wake(sel: *const SelectWait) {
        // SAFETY: `sel` lives until the wake below.
        unsafe {
            (*sel).slock.lock();
            (*sel).slock.unlock();
            Waiter::wake(&(*sel).w);
        }
    }
}

/// Cases handled without allocating.
const INLINE: usize = 16;

/// The queue of a channel (state `st`) where a case with op `op` waits.
#[inline(always)]
fn waitq(st: &mut State, op: i32) -> &mut WaitQ {
    if op == SEND {
        &mut st.sendq
    } else {
        &mut st.recvq
    }
}

/// Locks every channel of the cases once, in lock order, except `skip` (may be null).
///
/// # Safety
/// Every case's channel is live; the caller holds none of their locks.
unsafe fn lock_all(cases: &[Case], lockorder: &[u32], skip: *mut Chan) {
    let mut prev: *mut Chan = ptr::null_mut();
    for &i in lockorder {
        let c = cases[i as usize].chan;
        if c != prev && c != skip {
            // SAFETY: a validated, live channel (the caller's guarantee).
            unsafe { (*c).lock.lock() };
            prev = c;
        }
    }
}

/// Unlocks what `lock_all` with the same `skip` locked.
///
/// # Safety
/// The caller holds exactly those locks.
unsafe fn unlock_all(cases: &[Case], lockorder: &[u32], skip: *mut Chan) {
    let mut prev: *mut Chan = ptr::null_mut();
    for &i in lockorder {
        let c = cases[i as usize].chan;
        if c != prev && c != skip {
            // SAFETY: locked by lock_all (the caller's guarantee).
            unsafe { (*c).lock.unlock() };
            prev = c;
        }
    }
}

/// Sleeps `timeout_ns` (the select with no cases): -ETIMEDOUT, or the context's
/// error.
fn sleep(timeout_ns: i64) -> i32 {
    let sel = SelectWait::new();
    sel.slock.lock();
    // SAFETY: slock is held; nobody can find `sel`, so only the timeout or the
    // context ends the wait.
    match unsafe { sel.w.wait(&sel.slock, WaitReason::Select, timeout_ns) } {
        Wake::Cancelled(e) => e,
        Wake::Woken | Wake::TimedOut => -libc::ETIMEDOUT,
    }
}

/// Runs a select: the index of the case that fired (its `closed` set to 1 when it
/// fired because the channel is closed, else 0), `-EAGAIN` (`timeout_ns == 0` and
/// nothing ready), `-ETIMEDOUT`, `-EINVAL` (a NULL channel, an unknown op, a NULL
/// element with a non-zero element size, no cases and no timeout), or the context's
/// error when the waiting goroutine's context is cancelled (a ready case wins).
///
/// # Safety
/// Every case's channel is NULL or a live channel, and its element valid for the
/// channel's element size.
pub unsafe fn select(cases: &mut [Case], timeout_ns: i64) -> i32 {
    // SAFETY: the caller's guarantee.
    if unsafe { !cases_valid(cases) } {
        return -libc::EINVAL;
    }
    let n = cases.len();
    if n == 0 {
        return match timeout_ns {
            0 => -libc::EAGAIN,
            t if t < 0 => -libc::EINVAL,
            t => sleep(t),
        };
    }
    let mut order_inline = [0u32; 2 * INLINE];
    let mut order_heap: Vec<u32>;
    let order: &mut [u32] = if n <= INLINE {
        &mut order_inline[..2 * n]
    } else {
        order_heap = vec![0; 2 * n];
        &mut order_heap
    };
    let (pollorder, lockorder) = order.split_at_mut(n);
    fill_orders(cases, pollorder, lockorder);
    // SAFETY: validated channels; every lock is taken and released by these steps.
    unsafe {
        lock_all(cases, lockorder, ptr::null_mut());
        if let Some(i) = perform_ready(cases, pollorder, lockorder) {
            return i;
        }
        if timeout_ns == 0 {
            unlock_all(cases, lockorder, ptr::null_mut());
            return -libc::EAGAIN;
        }
        wait_on_all(cases, pollorder, lockorder, timeout_ns)
    }
}

/// Step 1: false for too many cases, a NULL channel, an unknown op, or a NULL element
/// with a non-zero element size.
///
/// # Safety
/// Every case's channel is NULL or a live channel.
#[inline(always)]
unsafe fn cases_valid(cases: &[Case]) -> bool {
    if cases.len() > i32::MAX as usize {
        return false;
    }
    cases.iter().all(|c| {
        !c.chan.is_null()
            && (c.op == SEND || c.op == RECV)
            // SAFETY: non-null channels are live (the caller's guarantee).
            && (!c.elem.is_null() || unsafe { (*c.chan).elem_size() } == 0)
    })
}

/// Step 1: the order to poll the cases in (a random permutation, for fairness among
/// ready cases) and the order to lock their channels in (by address: the one global
/// lock order).
#[inline(always)]
fn fill_orders(cases: &[Case], pollorder: &mut [u32], lockorder: &mut [u32]) {
    // Fisher-Yates, inside-out.
    for i in 0..pollorder.len() {
        let j = (fastrand() as usize) % (i + 1);
        pollorder[i] = pollorder[j];
        pollorder[j] = i as u32;
    }
    for (i, l) in lockorder.iter_mut().enumerate() {
        *l = i as u32;
    }
    if lockorder.len() > 1 {
        lockorder.sort_unstable_by_key(|&i| cases[i as usize].chan as usize);
    }
}

/// Step 2, with every channel locked: performs the first case, in poll order, that
/// can proceed, unlocks, and returns its index. None (still locked): none can.
///
/// # Safety
/// The caller holds every case's channel lock (`lock_all`); the elements are valid.
#[inline(always)]
unsafe fn perform_ready(cases: &mut [Case], pollorder: &[u32], lockorder: &[u32]) -> Option<i32> {
    for &i in pollorder {
        let i = i as usize;
        // SAFETY: the caller's guarantees.
        unsafe {
            let c = &*cases[i].chan;
            let found = if cases[i].op == SEND {
                c.try_send_locked(cases[i].elem)
            } else {
                c.try_recv_locked(cases[i].elem)
            };
            match found {
                Found::Block => continue,
                Found::Done(rc) => {
                    unlock_all(cases, lockorder, ptr::null_mut());
                    cases[i].closed = (rc != 0) as i32;
                }
                Found::Wake(sd) => {
                    unlock_all(cases, lockorder, ptr::null_mut());
                    wake_sudog(sd);
                    cases[i].closed = 0;
                }
            }
        }
        return Some(i as i32);
    }
    None
}

/// Steps 3 and 4, entered with every channel locked: a sudog per case on its channel's
/// queue, block until one fires, the timeout (negative: none) passes or the context
/// is cancelled, then take the sudogs nobody took off their queues. The index of the
/// case that fired, `-ETIMEDOUT`, or the context's error.
///
/// # Safety
/// As `perform_ready`; returns with no lock held.
unsafe fn wait_on_all(
    cases: &mut [Case],
    pollorder: &[u32],
    lockorder: &[u32],
    timeout_ns: i64,
) -> i32 {
    let n = cases.len();
    let mut sel = SelectWait::new();
    let mut sd_inline = [Sudog::EMPTY; INLINE];
    let mut sd_heap: Vec<Sudog>;
    let sds: &mut [Sudog] = if n <= INLINE {
        &mut sd_inline[..n]
    } else {
        sd_heap = (0..n).map(|_| Sudog::EMPTY).collect();
        &mut sd_heap
    };
    // A channel named in two cases: its waker must take both sudogs off it.
    let same_chan_twice =
        (1..n).any(|k| cases[lockorder[k] as usize].chan == cases[lockorder[k - 1] as usize].chan);
    if same_chan_twice {
        sel.cases = cases.as_ptr();
        sel.sds = sds.as_mut_ptr();
        sel.n = n;
    }
    // SAFETY: the caller's guarantees; the sudogs and `sel` stay on this stack until
    // the sudogs are off every queue (below, or by the waker that fired).
    unsafe {
        enqueue_sudogs(cases, sds, pollorder, &sel);
        sel.slock.lock();
        unlock_all(cases, lockorder, ptr::null_mut());
        let wake = sel.w.wait(&sel.slock, WaitReason::Select, timeout_ns);
        let fired = if wake == Wake::Woken {
            hb_acquire(&sel.w);
            sel.fired.with(|f| *f)
        } else {
            ptr::null_mut()
        };
        // Not the channel that fired: its waker took our sudogs off it, and it may be
        // freed by now.
        let skip = if fired.is_null() {
            ptr::null_mut()
        } else {
            cases[(*fired).index].chan
        };
        lock_all(cases, lockorder, skip);
        dequeue_sudogs(cases, sds, skip);
        unlock_all(cases, lockorder, skip);
        match wake {
            Wake::Woken => {}
            Wake::TimedOut => return -libc::ETIMEDOUT,
            Wake::Cancelled(e) => return e,
        }
        let i = (*fired).index;
        cases[i].closed = !(*fired).success as i32;
        i as i32
    }
}

/// Step 3: one sudog per case, all pointing at `sel`, on its channel's queue, in
/// `order` (the random poll order: of the cases waiting on one channel, the first
/// queued is the one a partner completes).
///
/// # Safety
/// The caller holds every case's channel lock, and keeps `sds` and `sel` where they
/// are until each sudog is off its queue again.
#[inline(always)]
unsafe fn enqueue_sudogs(cases: &[Case], sds: &mut [Sudog], order: &[u32], sel: &SelectWait) {
    for &i in order {
        let i = i as usize;
        let sd = &mut sds[i];
        sd.waiter = &sel.w;
        sd.sel = sel;
        sd.elem = cases[i].elem;
        sd.index = i;
        let sdp: *mut Sudog = sd;
        let op = cases[i].op;
        // SAFETY: the caller's guarantees: the channel is live and locked.
        unsafe { (*cases[i].chan).st.with(|st| waitq(st, op).enqueue(sdp)) };
    }
}

/// Step 4: takes the sudogs off their queues, except on channel `skip` (the one that
/// fired, whose waker took them off; null after a timeout).
///
/// # Safety
/// The caller holds the lock of every case's channel but `skip`; the sudogs were
/// enqueued by `enqueue_sudogs`.
#[inline(always)]
unsafe fn dequeue_sudogs(cases: &[Case], sds: &mut [Sudog], skip: *mut Chan) {
    for (i, sd) in sds.iter_mut().enumerate() {
        if cases[i].chan == skip {
            continue;
        }
        let sdp: *mut Sudog = sd;
        let op = cases[i].op;
        // SAFETY: the caller's guarantees: the channel is live and locked.
        unsafe { (*cases[i].chan).st.with(|st| waitq(st, op).remove(sdp)) };
    }
}
