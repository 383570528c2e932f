//! select: wait for the first of several channel operations (Go's `selectgo`).
//!
//! 1. Validate every case, then lock every distinct channel in address order (the
//!    one global lock order, so two selects over the same channels cannot deadlock;
//!    a channel named twice is locked once).
//! 2. Poll the cases in a random order (fairness among ready cases) and perform the
//!    first one that can proceed. A try (`timeout == 0`) or timed select never gives
//!    up while a case is ready, because this poll runs before any give-up path.
//! 3. Otherwise put one sudog per case on its channel's queue, all pointing at one
//!    [`SelectWait`], and block. Wakers race for the waiter's `claim` (so the select
//!    fires once); the winner records which sudog fired, completes the transfer under
//!    its channel's lock, and only then wakes the select.
//! 4. Once awake (or timed out: the timer won the claim), lock the channels again and
//!    unlink the sudogs nobody took. Not the channel that fired: its waker already
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

use super::chan::{wake_sudog, Chan, Found, State, Sudog};
use super::shim::{fastrand, hb_acquire, Guarded, SpinLock, WaitReason, Waiter};

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
            w: Waiter::current(),
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
                if sd == taken || c.chan as *const Chan != chan {
                    continue;
                }
                if c.op == SEND {
                    st.sendq.remove(sd);
                } else {
                    st.recvq.remove(sd);
                }
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

/// Locks every channel of the cases once, in lock order, except `skip` (may be null).
unsafe fn lock_all(cases: &[Case], lockorder: &[u32], skip: *mut Chan) {
    let mut prev: *mut Chan = ptr::null_mut();
    for &i in lockorder {
        let c = cases[i as usize].chan;
        if c != prev && c != skip {
            // SAFETY: validated non-null channel.
            unsafe { (*c).lock.lock() };
            prev = c;
        }
    }
}

/// Unlocks what `lock_all` with the same `skip` locked.
unsafe fn unlock_all(cases: &[Case], lockorder: &[u32], skip: *mut Chan) {
    let mut prev: *mut Chan = ptr::null_mut();
    for &i in lockorder {
        let c = cases[i as usize].chan;
        if c != prev && c != skip {
            // SAFETY: locked by lock_all.
            unsafe { (*c).lock.unlock() };
            prev = c;
        }
    }
}

/// Sleeps `timeout_ns` (the select with no cases).
fn sleep(timeout_ns: i64) -> i32 {
    let sel = SelectWait::new();
    sel.slock.lock();
    // SAFETY: slock is held; nobody can find `sel`, so only the timeout ends the wait.
    unsafe {
        sel.w
            .block_timeout(&sel.slock, WaitReason::Select, timeout_ns)
    };
    -libc::ETIMEDOUT
}

/// Runs a select: the index of the case that fired (its `closed` set to 1 when it
/// fired because the channel is closed, else 0), `-EAGAIN` (`timeout_ns == 0` and
/// nothing ready), `-ETIMEDOUT`, or `-EINVAL` (a NULL channel, an unknown op, a NULL
/// element with a non-zero element size, no cases and no timeout).
///
/// # Safety
/// Every case's channel is NULL or a live channel, and its element valid for the
/// channel's element size.
pub unsafe fn select(cases: &mut [Case], timeout_ns: i64) -> i32 {
    let n = cases.len();
    if n > i32::MAX as usize {
        return -libc::EINVAL;
    }
    for c in cases.iter() {
        if c.chan.is_null() || (c.op != SEND && c.op != RECV) {
            return -libc::EINVAL;
        }
        // SAFETY: non-null channels are live (caller's guarantee).
        if c.elem.is_null() && unsafe { (*c.chan).elem_size() } != 0 {
            return -libc::EINVAL;
        }
    }
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
    // A random permutation (Fisher-Yates, inside-out) to poll in.
    for i in 0..n {
        let j = (fastrand() as usize) % (i + 1);
        pollorder[i] = pollorder[j];
        pollorder[j] = i as u32;
    }
    for (i, l) in lockorder.iter_mut().enumerate() {
        *l = i as u32;
    }
    if n > 1 {
        lockorder.sort_unstable_by_key(|&i| cases[i as usize].chan as usize);
    }

    // SAFETY: validated channels; every lock is taken and released by this function,
    // and the sudogs stay on this stack until unlinked under those locks.
    unsafe {
        lock_all(cases, lockorder, ptr::null_mut());

        // Pass 1: anything ready?
        for &i in pollorder.iter() {
            let i = i as usize;
            let c = &*cases[i].chan;
            let found = if cases[i].op == SEND {
                c.try_send_locked(cases[i].elem)
            } else {
                c.try_recv_locked(cases[i].elem)
            };
            match found {
                Found::Block => {}
                Found::Done(rc) => {
                    unlock_all(cases, lockorder, ptr::null_mut());
                    cases[i].closed = (rc != 0) as i32;
                    return i as i32;
                }
                Found::Wake(sd) => {
                    unlock_all(cases, lockorder, ptr::null_mut());
                    wake_sudog(sd);
                    cases[i].closed = 0;
                    return i as i32;
                }
            }
        }
        if timeout_ns == 0 {
            unlock_all(cases, lockorder, ptr::null_mut());
            return -libc::EAGAIN;
        }

        // Pass 2: wait on every case.
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
        let same_chan_twice = (1..n)
            .any(|k| cases[lockorder[k] as usize].chan == cases[lockorder[k - 1] as usize].chan);
        if same_chan_twice {
            sel.cases = cases.as_ptr();
            sel.sds = sds.as_mut_ptr();
            sel.n = n;
        }
        let selp: *const SelectWait = &sel;
        for (i, sd) in sds.iter_mut().enumerate() {
            sd.waiter = &sel.w;
            sd.sel = selp;
            sd.elem = cases[i].elem;
            sd.index = i;
            let sdp: *mut Sudog = sd;
            let c = &*cases[i].chan;
            let send = cases[i].op == SEND;
            c.st.with(|st| {
                if send {
                    st.sendq.enqueue(sdp)
                } else {
                    st.recvq.enqueue(sdp)
                }
            });
        }
        sel.slock.lock();
        unlock_all(cases, lockorder, ptr::null_mut());
        let woken = if timeout_ns < 0 {
            sel.w.block(&sel.slock, WaitReason::Select);
            true
        } else {
            sel.w
                .block_timeout(&sel.slock, WaitReason::Select, timeout_ns)
        };

        // Pass 3: unlink what nobody took, on every channel but the one that fired
        // (its waker took our sudogs off it, and it may be freed by now).
        let fired = if woken {
            hb_acquire(&sel.w);
            sel.fired.with(|f| *f)
        } else {
            ptr::null_mut()
        };
        let skip = if fired.is_null() {
            ptr::null_mut()
        } else {
            cases[(*fired).index].chan
        };
        lock_all(cases, lockorder, skip);
        for (i, sd) in sds.iter_mut().enumerate() {
            if cases[i].chan == skip {
                continue;
            }
            let sdp: *mut Sudog = sd;
            let c = &*cases[i].chan;
            let send = cases[i].op == SEND;
            c.st.with(|st| {
                if send {
                    st.sendq.remove(sdp)
                } else {
                    st.recvq.remove(sdp)
                }
            });
        }
        unlock_all(cases, lockorder, skip);
        if !woken {
            return -libc::ETIMEDOUT;
        }
        let i = (*fired).index;
        cases[i].closed = !(*fired).success as i32;
        i as i32
    }
}
