//! Header section "timers and tickers" (`sync::timerchan`): Go's `time.Timer` and
//! `time.Ticker`, whose firings arrive on a channel, for gr_chan_recv or a GR_RECV
//! case of gr_select.
//!
//! A `gr_timer` is a `sync::timerchan::Timer` boxed by gr_timer_new; its channel
//! lives inside it. Every call checks for NULL and returns a negative errno value for
//! bad arguments before touching anything.

use std::ffi::c_int;
use std::panic::AssertUnwindSafe;

use super::boundary;
use super::sync::gr_chan;
use crate::runtime::sched;
use crate::sync::timerchan::Timer;

/// A timer or ticker (Go's `time.Timer` / `time.Ticker`), created by gr_timer_new.
#[allow(non_camel_case_types)]
pub struct gr_timer {
    _opaque: [u8; 0],
}

/// The timer behind a handle, or None for NULL.
///
/// # Safety
/// `t` is NULL or a live timer from gr_timer_new, which outlives every use of the
/// returned reference.
#[inline(always)]
unsafe fn timer_of<'a>(t: *const gr_timer) -> Option<&'a Timer> {
    // SAFETY: our contract: a non-null handle is a live Timer (boxed by gr_timer_new).
    unsafe { (t as *const Timer).as_ref() }
}

/// Creates a timer that fires `ns` nanoseconds from now (<= 0: at once), then every
/// `period_ns` if that is > 0 (a ticker; 0: fires once). Each firing tries to send
/// the monotonic time of the firing (CLOCK_MONOTONIC, ns) on the timer's channel
/// (gr_timer_chan); while a value is unread the channel is full and the firing is
/// dropped, so a slow reader of a ticker gets the latest tick it had room for, never
/// a backlog. A timer costs no thread: it is one entry on the runtime's timer heap
/// (O(log n) to arm and cancel). Starts the runtime if needed. Returns NULL when
/// `period_ns` is negative, when out of memory, or when the runtime cannot start.
/// Never parks; plain threads: yes.
#[no_mangle]
pub extern "C" fn gr_timer_new(ns: i64, period_ns: i64) -> *mut gr_timer {
    boundary("gr_timer_new", || {
        if period_ns < 0 || sched::ensure_init() != 0 {
            return core::ptr::null_mut();
        }
        match Timer::new(ns, period_ns) {
            Some(t) => Box::into_raw(t) as *mut gr_timer,
            None => core::ptr::null_mut(),
        }
    })
}

/// The timer's channel: `int64_t` elements (the monotonic time of a firing, ns),
/// capacity 1. Receive from it with gr_chan_recv or in gr_select; it belongs to the
/// timer (valid until gr_timer_free; never gr_chan_free or gr_chan_close it). NULL
/// for a NULL timer. Never parks; plain threads: yes.
///
/// # Safety
/// `t` is NULL or a timer from gr_timer_new that has not been freed.
#[no_mangle]
pub unsafe extern "C" fn gr_timer_chan(t: *mut gr_timer) -> *mut gr_chan {
    boundary(
        "gr_timer_chan",
        // SAFETY: t is NULL or a live timer (our contract).
        AssertUnwindSafe(|| match unsafe { timer_of(t) } {
            None => core::ptr::null_mut(),
            Some(tm) => tm.chan() as *const _ as *mut gr_chan,
        }),
    )
}

/// Stops the timer (or ticker). Returns 1 if that prevented a firing from being
/// received (the timer was pending, or its value was still unread in the channel,
/// where it is now dropped), 0 if it had already fired and its value was received
/// (or it was stopped already), -EINVAL (NULL). Once it returns, no value from
/// before the call is received (Go 1.23's rule): a gr_chan_recv that starts after
/// it waits for a firing of a later gr_timer_reset. Never parks; plain threads: yes.
///
/// # Safety
/// `t` is NULL or a timer from gr_timer_new that has not been freed.
#[no_mangle]
pub unsafe extern "C" fn gr_timer_stop(t: *mut gr_timer) -> c_int {
    boundary(
        "gr_timer_stop",
        // SAFETY: t is NULL or a live timer (our contract).
        AssertUnwindSafe(|| match unsafe { timer_of(t) } {
            None => -libc::EINVAL,
            Some(tm) => tm.stop(),
        }),
    )
}

/// Stops the timer as gr_timer_stop does, then arms it again: it fires `ns` from
/// now (<= 0: at once), then every `period_ns` if that is > 0. Returns gr_timer_stop's
/// result (1: a firing was prevented, 0: none was pending), or -EINVAL (NULL, or a
/// negative `period_ns`: nothing changes). After it returns, only firings of the
/// new arming are received. Never parks; plain threads: yes.
///
/// # Safety
/// `t` is NULL or a timer from gr_timer_new that has not been freed.
#[no_mangle]
pub unsafe extern "C" fn gr_timer_reset(t: *mut gr_timer, ns: i64, period_ns: i64) -> c_int {
    boundary(
        "gr_timer_reset",
        // SAFETY: t is NULL or a live timer (our contract).
        AssertUnwindSafe(|| match unsafe { timer_of(t) } {
            None => -libc::EINVAL,
            Some(tm) => tm.reset(ns, period_ns),
        }),
    )
}

/// Stops the timer and frees it with its channel. Returns 0, -EBUSY (a goroutine,
/// thread or select waits on its channel: nothing is freed, the timer goes on),
/// -EINVAL (NULL). Never parks; plain threads: yes.
///
/// # Safety
/// `t` is NULL or a timer from gr_timer_new that has not been freed. If this call
/// frees it, no other call on it or its channel is running then (a receive parked on
/// the channel makes this one free nothing) and none starts later.
#[no_mangle]
pub unsafe extern "C" fn gr_timer_free(t: *mut gr_timer) -> c_int {
    boundary(
        "gr_timer_free",
        AssertUnwindSafe(|| {
            // SAFETY: t is NULL or a live timer (our contract).
            let Some(tm) = (unsafe { timer_of(t) }) else {
                return -libc::EINVAL;
            };
            if tm.has_waiters() {
                return -libc::EBUSY;
            }
            // SAFETY: a live timer boxed by gr_timer_new that nobody waits on, and the
            // caller does not use it again (our contract). Its Drop cancels the heap
            // node before the memory goes.
            drop(unsafe { Box::from_raw(t as *mut Timer) });
            0
        }),
    )
}
