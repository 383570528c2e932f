//! Header section "channels, select, wait groups, mutexes" (`src/sync/`).
//!
//! Handles are opaque pointers to the Rust objects (`gr_chan` is a `sync::chan::Chan`,
//! and so on), created by `*_new` and destroyed by `*_free`. Every call checks for
//! NULL and returns a negative errno value for bad arguments before touching anything.

use std::ffi::{c_int, c_void};
use std::panic::AssertUnwindSafe;

use super::boundary;
use crate::sync::chan::Chan;
use crate::sync::mutex::Mutex;
use crate::sync::select::{self, Case};
use crate::sync::waitgroup::WaitGroup;

/// A channel of fixed-size elements (Go's `chan T`), created by gr_chan_new.
#[allow(non_camel_case_types)]
pub struct gr_chan {
    _opaque: [u8; 0],
}

/// A wait group (Go's `sync.WaitGroup`), created by gr_wg_new.
#[allow(non_camel_case_types)]
pub struct gr_wg {
    _opaque: [u8; 0],
}

/// A mutex that parks goroutines (Go's `sync.Mutex`), created by gr_mutex_new.
#[allow(non_camel_case_types)]
pub struct gr_mutex {
    _opaque: [u8; 0],
}

/// gr_case.op: send `*elem` on the channel.
pub const GR_SEND: c_int = 1;
/// gr_case.op: receive from the channel into `*elem`.
pub const GR_RECV: c_int = 2;

/// One case of gr_select.
#[repr(C)]
#[allow(non_camel_case_types)]
pub struct gr_case {
    /// The channel (not NULL).
    pub chan: *mut gr_chan,
    /// GR_SEND or GR_RECV.
    pub op: c_int,
    /// GR_SEND: the element to send; GR_RECV: where to store the received element.
    /// May be NULL only for a channel with element size 0.
    pub elem: *mut c_void,
    /// Output, written for the case that fired only: 1 when it fired because its
    /// channel is closed (a receive got no value: the channel is closed and drained;
    /// a send sent nothing), else 0.
    pub closed: c_int,
}

const _: () = {
    use core::mem::{align_of, offset_of, size_of};
    assert!(size_of::<gr_case>() == size_of::<Case>());
    assert!(align_of::<gr_case>() == align_of::<Case>());
    assert!(offset_of!(gr_case, chan) == offset_of!(Case, chan));
    assert!(offset_of!(gr_case, op) == offset_of!(Case, op));
    assert!(offset_of!(gr_case, elem) == offset_of!(Case, elem));
    assert!(offset_of!(gr_case, closed) == offset_of!(Case, closed));
    assert!(GR_SEND == select::SEND && GR_RECV == select::RECV);
};

/// The channel behind a handle, or None for NULL.
///
/// # Safety
/// `c` is NULL or a live channel from gr_chan_new, which outlives every use of the
/// returned reference.
#[inline(always)]
unsafe fn chan_of<'a>(c: *const gr_chan) -> Option<&'a Chan> {
    // SAFETY: our contract: a non-null handle is a live channel (a gr_chan is a Chan
    // boxed by gr_chan_new).
    unsafe { (c as *const Chan).as_ref() }
}

/// The element pointer is acceptable for this channel.
#[inline(always)]
fn elem_ok(c: &Chan, elem: *const c_void) -> bool {
    !elem.is_null() || c.elem_size() == 0
}

/// Creates a channel of `elem_size`-byte elements with room for `capacity` buffered
/// elements (0: unbuffered, every send waits for a receiver). `elem_size` may be 0
/// (a signal-only channel; elements may then be NULL). Returns NULL when
/// `elem_size * capacity` overflows or memory runs out. Never parks. Plain threads:
/// yes.
#[no_mangle]
pub extern "C" fn gr_chan_new(elem_size: usize, capacity: usize) -> *mut gr_chan {
    boundary("gr_chan_new", || match Chan::new(elem_size, capacity) {
        Some(b) => Box::into_raw(b) as *mut gr_chan,
        None => core::ptr::null_mut(),
    })
}

/// Sends the element at `elem` (`elem_size` bytes are copied): hands it to a waiting
/// receiver, else buffers it, else waits until a receiver takes it or the channel
/// is closed. Returns 0, -EPIPE (closed, also when closed while waiting: nothing
/// was sent), -EINVAL (NULL channel, or NULL elem with a non-zero element size).
/// May park; plain threads block.
///
/// # Safety
/// `c` is NULL or a channel from gr_chan_new that has not been freed; `elem` is NULL or
/// points to the channel's element size of readable bytes, which stay valid until the
/// call returns.
#[no_mangle]
pub unsafe extern "C" fn gr_chan_send(c: *mut gr_chan, elem: *const c_void) -> c_int {
    boundary(
        "gr_chan_send",
        AssertUnwindSafe(|| {
            // SAFETY: c is NULL or a live channel (our contract).
            let Some(ch) = (unsafe { chan_of(c) }) else {
                return -libc::EINVAL;
            };
            if !elem_ok(ch, elem) {
                return -libc::EINVAL;
            }
            // SAFETY: elem is non-null here or the element size is 0, and a non-null
            // elem is readable for elem_size bytes until we return (our contract).
            unsafe { ch.send(elem as *const u8, true) }
        }),
    )
}

/// Receives one element into `elem` (`elem_size` bytes are written): from a buffered
/// value, a waiting sender, or by waiting for one. Buffered values are received in
/// order even after close. Returns 0, -EPIPE (closed and drained: `elem` is not
/// written; every later call returns -EPIPE too), -EINVAL (NULL channel, or NULL
/// elem with a non-zero element size). May park; plain threads block.
///
/// # Safety
/// `c` is NULL or a channel from gr_chan_new that has not been freed; `elem` is NULL or
/// points to the channel's element size of writable bytes, which stay valid until the
/// call returns.
#[no_mangle]
pub unsafe extern "C" fn gr_chan_recv(c: *mut gr_chan, elem: *mut c_void) -> c_int {
    boundary(
        "gr_chan_recv",
        AssertUnwindSafe(|| {
            // SAFETY: c is NULL or a live channel (our contract).
            let Some(ch) = (unsafe { chan_of(c) }) else {
                return -libc::EINVAL;
            };
            if !elem_ok(ch, elem) {
                return -libc::EINVAL;
            }
            // SAFETY: elem is non-null here or the element size is 0, and a non-null
            // elem is writable for elem_size bytes until we return (our contract).
            unsafe { ch.recv(elem as *mut u8, true) }
        }),
    )
}

/// Like gr_chan_send, but never waits: -EAGAIN when no receiver waits and the
/// buffer is full (nothing was sent). Also 0, -EPIPE, -EINVAL. Never parks.
///
/// # Safety
/// As for gr_chan_send.
#[no_mangle]
pub unsafe extern "C" fn gr_chan_try_send(c: *mut gr_chan, elem: *const c_void) -> c_int {
    boundary(
        "gr_chan_try_send",
        AssertUnwindSafe(|| {
            // SAFETY: c is NULL or a live channel (our contract).
            let Some(ch) = (unsafe { chan_of(c) }) else {
                return -libc::EINVAL;
            };
            if !elem_ok(ch, elem) {
                return -libc::EINVAL;
            }
            // SAFETY: elem is non-null here or the element size is 0, and a non-null
            // elem is readable for elem_size bytes until we return (our contract).
            unsafe { ch.send(elem as *const u8, false) }
        }),
    )
}

/// Like gr_chan_recv, but never waits: -EAGAIN when nothing is buffered, no sender
/// waits and the channel is open. Also 0, -EPIPE (closed and drained), -EINVAL.
/// Never parks.
///
/// # Safety
/// As for gr_chan_recv.
#[no_mangle]
pub unsafe extern "C" fn gr_chan_try_recv(c: *mut gr_chan, elem: *mut c_void) -> c_int {
    boundary(
        "gr_chan_try_recv",
        AssertUnwindSafe(|| {
            // SAFETY: c is NULL or a live channel (our contract).
            let Some(ch) = (unsafe { chan_of(c) }) else {
                return -libc::EINVAL;
            };
            if !elem_ok(ch, elem) {
                return -libc::EINVAL;
            }
            // SAFETY: elem is non-null here or the element size is 0, and a non-null
            // elem is writable for elem_size bytes until we return (our contract).
            unsafe { ch.recv(elem as *mut u8, false) }
        }),
    )
}

/// Closes the channel: later sends fail with -EPIPE; receivers get the buffered
/// values, then -EPIPE. Every waiting sender and receiver (and select) is woken.
/// Returns 0, -EPIPE (already closed), -EINVAL (NULL). Never parks.
///
/// # Safety
/// `c` is NULL or a channel from gr_chan_new that has not been freed.
#[no_mangle]
pub unsafe extern "C" fn gr_chan_close(c: *mut gr_chan) -> c_int {
    boundary(
        "gr_chan_close",
        // SAFETY: c is NULL or a live channel (our contract).
        AssertUnwindSafe(|| match unsafe { chan_of(c) } {
            None => -libc::EINVAL,
            Some(ch) => ch.close(),
        }),
    )
}

/// Frees the channel and any values still buffered. Returns 0, -EBUSY (a sender,
/// receiver or select is waiting on it: nothing is freed), -EINVAL (NULL). Safe as
/// soon as your own last call on it has returned: a party that completed a transfer
/// with you never touches the channel after your call returns. Never parks.
///
/// # Safety
/// `c` is NULL or a channel from gr_chan_new that has not been freed. If this call
/// frees it, no other call on it is running then (a call parked in it makes this one
/// free nothing) and none starts later.
#[no_mangle]
pub unsafe extern "C" fn gr_chan_free(c: *mut gr_chan) -> c_int {
    boundary(
        "gr_chan_free",
        AssertUnwindSafe(|| {
            // SAFETY: c is NULL or a live channel (our contract).
            let Some(ch) = (unsafe { chan_of(c) }) else {
                return -libc::EINVAL;
            };
            if ch.has_waiters() {
                return -libc::EBUSY;
            }
            // SAFETY: a live channel boxed by gr_chan_new that nobody waits on, and the
            // caller does not use it again (our contract).
            drop(unsafe { Box::from_raw(c as *mut Chan) });
            0
        }),
    )
}

/// Number of values buffered now (0 for NULL or an unbuffered channel). Never parks.
///
/// # Safety
/// `c` is NULL or a channel from gr_chan_new that has not been freed.
#[no_mangle]
pub unsafe extern "C" fn gr_chan_len(c: *const gr_chan) -> usize {
    // SAFETY: c is NULL or a live channel (our contract).
    unsafe { chan_of(c) }.map_or(0, |ch| ch.len())
}

/// Capacity given to gr_chan_new (0 for NULL or an unbuffered channel). Never parks.
///
/// # Safety
/// `c` is NULL or a channel from gr_chan_new that has not been freed.
#[no_mangle]
pub unsafe extern "C" fn gr_chan_cap(c: *const gr_chan) -> usize {
    // SAFETY: c is NULL or a live channel (our contract).
    unsafe { chan_of(c) }.map_or(0, |ch| ch.cap())
}

/// Waits until one of `n` channel operations can proceed, performs exactly that
/// one and returns its index. When several are ready one is chosen at random (each
/// equally likely). The case that fired gets `closed` = 1 when it fired because its
/// channel is closed (a receive on a closed, drained channel; a send on a closed
/// channel), else 0. The same channel may appear in several cases.
///
/// `timeout_ns`: negative = wait for ever; 0 = try: -EAGAIN when no case is ready;
/// positive = wait at most that long, then -ETIMEDOUT. A ready case always wins over
/// the timeout. With `n` = 0 and a positive timeout it sleeps, then -ETIMEDOUT.
///
/// Returns the index, -EAGAIN, -ETIMEDOUT, or -EINVAL (NULL `cases` with `n` > 0, a
/// NULL channel, an op other than GR_SEND/GR_RECV, a NULL elem with a non-zero
/// element size, `n` = 0 with a negative timeout); on -EINVAL nothing was done. May
/// park; plain threads block.
///
/// # Safety
/// `cases` is NULL or points to `n` writable gr_case values; in each, `chan` is NULL or
/// a channel from gr_chan_new that has not been freed, and `elem` is NULL or points to
/// that channel's element size of bytes (readable for GR_SEND, writable for GR_RECV),
/// valid until the call returns.
#[no_mangle]
pub unsafe extern "C" fn gr_select(cases: *mut gr_case, n: usize, timeout_ns: i64) -> c_int {
    boundary(
        "gr_select",
        AssertUnwindSafe(|| {
            let cs: &mut [Case] = if n == 0 {
                &mut []
            } else if cases.is_null() {
                return -libc::EINVAL;
            } else {
                // SAFETY: a non-null `cases` points to n writable cases (our contract);
                // gr_case and Case have one layout (checked above).
                unsafe { core::slice::from_raw_parts_mut(cases as *mut Case, n) }
            };
            // SAFETY: each case's channel is NULL (select rejects it) or live, and its
            // elem valid for the element size until we return (our contract).
            unsafe { select::select(cs, timeout_ns) }
        }),
    )
}

/// The wait group behind a handle, or None for NULL.
///
/// # Safety
/// `wg` is NULL or a live wait group from gr_wg_new, which outlives every use of the
/// returned reference.
#[inline(always)]
unsafe fn wg_of<'a>(wg: *const gr_wg) -> Option<&'a WaitGroup> {
    // SAFETY: our contract: a non-null handle is a live wait group (a gr_wg is a
    // WaitGroup boxed by gr_wg_new).
    unsafe { (wg as *const WaitGroup).as_ref() }
}

/// Creates a wait group with counter 0. NULL when out of memory. Never parks.
#[no_mangle]
pub extern "C" fn gr_wg_new() -> *mut gr_wg {
    boundary("gr_wg_new", || {
        Box::into_raw(Box::new(WaitGroup::new())) as *mut gr_wg
    })
}

/// Adds `delta` (may be negative) to the counter; when it reaches 0 every
/// gr_wg_wait returns. Returns 0, -EINVAL (NULL, or the counter would go below 0
/// or overflow: nothing changes). Never parks.
///
/// # Safety
/// `wg` is NULL or a wait group from gr_wg_new that has not been freed.
#[no_mangle]
pub unsafe extern "C" fn gr_wg_add(wg: *mut gr_wg, delta: i64) -> c_int {
    boundary(
        "gr_wg_add",
        // SAFETY: wg is NULL or a live wait group (our contract).
        AssertUnwindSafe(|| match unsafe { wg_of(wg) } {
            None => -libc::EINVAL,
            Some(w) => w.add(delta),
        }),
    )
}

/// gr_wg_add(wg, -1). Once the gr_wg_wait it released has returned, this call never
/// touches the wait group again (so the waiter may free it). Returns 0, -EINVAL
/// (NULL, or the counter is already 0). Never parks.
///
/// # Safety
/// `wg` is NULL or a wait group from gr_wg_new that has not been freed.
#[no_mangle]
pub unsafe extern "C" fn gr_wg_done(wg: *mut gr_wg) -> c_int {
    boundary(
        "gr_wg_done",
        // SAFETY: wg is NULL or a live wait group (our contract).
        AssertUnwindSafe(|| match unsafe { wg_of(wg) } {
            None => -libc::EINVAL,
            Some(w) => w.add(-1),
        }),
    )
}

/// Waits until the counter is 0 (returns at once if it is). Returns 0, -EINVAL
/// (NULL). May park; plain threads block.
///
/// # Safety
/// `wg` is NULL or a wait group from gr_wg_new that has not been freed.
#[no_mangle]
pub unsafe extern "C" fn gr_wg_wait(wg: *mut gr_wg) -> c_int {
    boundary(
        "gr_wg_wait",
        // SAFETY: wg is NULL or a live wait group (our contract).
        AssertUnwindSafe(|| match unsafe { wg_of(wg) } {
            None => -libc::EINVAL,
            Some(w) => w.wait(),
        }),
    )
}

/// Frees the wait group. Returns 0, -EBUSY (somebody is waiting in gr_wg_wait:
/// nothing is freed), -EINVAL (NULL). Never parks.
///
/// # Safety
/// `wg` is NULL or a wait group from gr_wg_new that has not been freed. If this call
/// frees it, no other call on it is running then (a call parked in it makes this one
/// free nothing) and none starts later.
#[no_mangle]
pub unsafe extern "C" fn gr_wg_free(wg: *mut gr_wg) -> c_int {
    boundary(
        "gr_wg_free",
        AssertUnwindSafe(|| {
            // SAFETY: wg is NULL or a live wait group (our contract).
            let Some(w) = (unsafe { wg_of(wg) }) else {
                return -libc::EINVAL;
            };
            if w.has_waiters() {
                return -libc::EBUSY;
            }
            // SAFETY: a live wait group boxed by gr_wg_new that nobody waits on, and
            // the caller does not use it again (our contract).
            drop(unsafe { Box::from_raw(wg as *mut WaitGroup) });
            0
        }),
    )
}

/// The mutex behind a handle, or None for NULL.
///
/// # Safety
/// `m` is NULL or a live mutex from gr_mutex_new, which outlives every use of the
/// returned reference.
#[inline(always)]
unsafe fn mutex_of<'a>(m: *const gr_mutex) -> Option<&'a Mutex> {
    // SAFETY: our contract: a non-null handle is a live mutex (a gr_mutex is a Mutex
    // boxed by gr_mutex_new).
    unsafe { (m as *const Mutex).as_ref() }
}

/// Creates an unlocked mutex. NULL when out of memory. Never parks.
#[no_mangle]
pub extern "C" fn gr_mutex_new() -> *mut gr_mutex {
    boundary("gr_mutex_new", || {
        Box::into_raw(Box::new(Mutex::new())) as *mut gr_mutex
    })
}

/// Locks the mutex, waiting while another holds it (waiters are served about in
/// order; one that waited over 1 ms is handed the lock directly). Not recursive:
/// locking a mutex you hold waits for ever. The mutex belongs to no goroutine or
/// thread: any may unlock it. Returns 0, -EINVAL (NULL). May park; plain threads
/// block.
///
/// # Safety
/// `m` is NULL or a mutex from gr_mutex_new that has not been freed.
#[no_mangle]
pub unsafe extern "C" fn gr_mutex_lock(m: *mut gr_mutex) -> c_int {
    boundary(
        "gr_mutex_lock",
        // SAFETY: m is NULL or a live mutex (our contract).
        AssertUnwindSafe(|| match unsafe { mutex_of(m) } {
            None => -libc::EINVAL,
            Some(mx) => mx.lock(),
        }),
    )
}

/// Locks the mutex if it is free. Returns 0, -EBUSY (held by someone), -EINVAL
/// (NULL). Never parks.
///
/// # Safety
/// `m` is NULL or a mutex from gr_mutex_new that has not been freed.
#[no_mangle]
pub unsafe extern "C" fn gr_mutex_trylock(m: *mut gr_mutex) -> c_int {
    boundary(
        "gr_mutex_trylock",
        // SAFETY: m is NULL or a live mutex (our contract).
        AssertUnwindSafe(|| match unsafe { mutex_of(m) } {
            None => -libc::EINVAL,
            Some(mx) => mx.try_lock(),
        }),
    )
}

/// Unlocks the mutex and lets the first waiter (if any) have it. Returns 0, -EPERM
/// (it is not locked: nothing changes), -EINVAL (NULL). Never parks.
///
/// # Safety
/// `m` is NULL or a mutex from gr_mutex_new that has not been freed.
#[no_mangle]
pub unsafe extern "C" fn gr_mutex_unlock(m: *mut gr_mutex) -> c_int {
    boundary(
        "gr_mutex_unlock",
        // SAFETY: m is NULL or a live mutex (our contract).
        AssertUnwindSafe(|| match unsafe { mutex_of(m) } {
            None => -libc::EINVAL,
            Some(mx) => mx.unlock(),
        }),
    )
}

/// Frees the mutex. Returns 0, -EBUSY (locked, or somebody waits for it: nothing
/// is freed), -EINVAL (NULL). Never parks.
///
/// # Safety
/// `m` is NULL or a mutex from gr_mutex_new that has not been freed. If this call frees
/// it, no other call on it is running then (a call parked in it makes this one free
/// nothing) and none starts later.
#[no_mangle]
pub unsafe extern "C" fn gr_mutex_free(m: *mut gr_mutex) -> c_int {
    boundary(
        "gr_mutex_free",
        AssertUnwindSafe(|| {
            // SAFETY: m is NULL or a live mutex (our contract).
            let Some(mx) = (unsafe { mutex_of(m) }) else {
                return -libc::EINVAL;
            };
            if mx.is_busy() {
                return -libc::EBUSY;
            }
            // SAFETY: a live mutex boxed by gr_mutex_new, unlocked and unwaited, and
            // the caller does not use it again (our contract).
            drop(unsafe { Box::from_raw(m as *mut Mutex) });
            0
        }),
    )
}
