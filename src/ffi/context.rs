//! Header section "contexts and groups": cancellation and deadlines
//! (`runtime/context.rs`) and groups of goroutines that fail together
//! (`sync/group.rs`).
//!
//! A `gr_ctx` is reference-counted: each constructor returns one reference, which
//! gr_ctx_free drops; a goroutine bound to a context and a child context hold their
//! own, so a context lives as long as anything uses it. Once a goroutine's context
//! is cancelled, every cancellation point it is parked in or reaches returns the
//! context's error (-ECANCELED, or -ETIMEDOUT for a deadline) at once: gr_sleep,
//! gr_block_io, gr_poll, gr_io_wait, gr_read, gr_write, gr_accept, gr_connect,
//! gr_chan_send, gr_chan_recv, gr_select (unless a case is ready), gr_join,
//! gr_wg_wait, gr_cond_wait (the mutex is locked again when it returns),
//! gr_sem_acquire, gr_waitpid, gr_group_wait, and gr_group_go while it waits for a
//! slot. Mutex and RWMutex locks and gr_once_do are not cancellation points; calls
//! that do not park are unaffected; a plain thread has no context. Nothing is
//! killed: the goroutine sees the error and returns.

use std::ffi::{c_int, c_void};
use std::panic::AssertUnwindSafe;

use super::boundary;
use super::core::{gr_fn, gr_id};
use super::sync::gr_chan;
use crate::runtime::context::{self, Ctx};
use crate::runtime::sched::{self, SpawnAttr};
use crate::sync::group::Group;

/// A context (Go's `context.Context`): cancelled once, by gr_ctx_cancel, by its
/// deadline, or through its parent; reference-counted.
#[allow(non_camel_case_types)]
pub struct gr_ctx {
    _opaque: [u8; 0],
}

/// A group of goroutines (Go's `errgroup.Group`, a nursery): the first member that
/// fails cancels the others, and gr_group_wait returns its result.
#[allow(non_camel_case_types)]
pub struct gr_group {
    _opaque: [u8; 0],
}

/// A group member's body: called with the argument given to gr_group_go; 0 is
/// success, anything else fails the group (a negative errno value, by convention).
#[allow(non_camel_case_types)]
pub type gr_task_fn = Option<unsafe extern "C" fn(arg: *mut c_void) -> c_int>;

#[inline(always)]
fn ctx_of(c: *const gr_ctx) -> *const Ctx {
    c as *const Ctx
}

#[inline(always)]
fn to_handle(c: Option<*const Ctx>) -> *mut gr_ctx {
    c.map_or(core::ptr::null_mut(), |c| c as *mut gr_ctx)
}

/// The group behind a handle, or None for NULL.
///
/// # Safety
/// `g` is NULL or a live group from gr_group_new, which outlives every use of the
/// returned reference.
#[inline(always)]
unsafe fn group_of<'a>(g: *const gr_group) -> Option<&'a Group> {
    // SAFETY: our contract: a non-null handle is a Group boxed by gr_group_new.
    unsafe { (g as *const Group).as_ref() }
}

/// Creates a cancellable context, a child of `parent` (NULL: a root, cancelled only
/// by gr_ctx_cancel). Cancelling the parent cancels it, with the parent's error; a
/// child of a cancelled parent starts cancelled. Returns a new reference (drop it
/// with gr_ctx_free), or NULL when memory runs out. Never parks. Plain threads: yes.
///
/// # Safety
/// `parent` is NULL or a context the caller holds a reference to.
#[no_mangle]
pub unsafe extern "C" fn gr_ctx_new(parent: *mut gr_ctx) -> *mut gr_ctx {
    boundary("gr_ctx_new", || {
        // SAFETY: parent is NULL or referenced by the caller (our contract).
        to_handle(unsafe { context::new(ctx_of(parent)) })
    })
}

/// Like gr_ctx_new, and the context is cancelled with -ETIMEDOUT `ns` nanoseconds
/// from now (at once for `ns` <= 0; huge values saturate), unless it is cancelled
/// before. Returns a new reference, or NULL when memory runs out. Never parks.
/// Plain threads: yes.
///
/// # Safety
/// `parent` is NULL or a context the caller holds a reference to.
#[no_mangle]
pub unsafe extern "C" fn gr_ctx_with_timeout(parent: *mut gr_ctx, ns: i64) -> *mut gr_ctx {
    boundary("gr_ctx_with_timeout", || {
        // SAFETY: parent is NULL or referenced by the caller (our contract).
        to_handle(unsafe { context::with_timeout(ctx_of(parent), ns) })
    })
}

/// Cancels `ctx` and all its descendants with -ECANCELED: the goroutines bound to
/// them return from their cancellation points, their done channels are closed.
/// Returns 0 (also when it was already cancelled: the first error stays), -EINVAL
/// (NULL). Never parks. Plain threads: yes.
///
/// # Safety
/// `ctx` is NULL or a context the caller holds a reference to.
#[no_mangle]
pub unsafe extern "C" fn gr_ctx_cancel(ctx: *mut gr_ctx) -> c_int {
    boundary("gr_ctx_cancel", || {
        if ctx.is_null() {
            return -libc::EINVAL;
        }
        // SAFETY: a non-null ctx is referenced by the caller (our contract).
        unsafe { context::cancel(ctx_of(ctx)) }
    })
}

/// The context's error: 0 while it is not cancelled, -ECANCELED, or -ETIMEDOUT (its
/// deadline, or an ancestor's, passed first); -EINVAL (NULL). Never parks. Plain
/// threads: yes.
///
/// # Safety
/// `ctx` is NULL or a context the caller holds a reference to.
#[no_mangle]
pub unsafe extern "C" fn gr_ctx_err(ctx: *mut gr_ctx) -> c_int {
    boundary("gr_ctx_err", || {
        // SAFETY: a non-null ctx is referenced by the caller (our contract).
        match unsafe { ctx_of(ctx).as_ref() } {
            None => -libc::EINVAL,
            Some(c) => c.err(),
        }
    })
}

/// A channel (element size 0) that is closed once `ctx` is cancelled: a GR_RECV
/// case on it fires with `closed` = 1 in gr_select. The same channel every time;
/// owned by the context (do not free it; it goes with the context's last
/// reference). NULL for a NULL ctx or when memory runs out. Never parks. Plain
/// threads: yes.
///
/// # Safety
/// `ctx` is NULL or a context the caller holds a reference to.
#[no_mangle]
pub unsafe extern "C" fn gr_ctx_done(ctx: *mut gr_ctx) -> *mut gr_chan {
    boundary("gr_ctx_done", || {
        if ctx.is_null() {
            return core::ptr::null_mut();
        }
        // SAFETY: a non-null ctx is referenced by the caller (our contract).
        unsafe { context::done(ctx_of(ctx)) }.map_or(core::ptr::null_mut(), |c| c as *mut gr_chan)
    })
}

/// Drops the caller's reference to `ctx`. Goroutines bound to it and its children
/// keep it alive; it is not cancelled by this (cancel it first if that is meant).
/// Returns 0, -EINVAL (NULL). Never parks. Plain threads: yes.
///
/// # Safety
/// `ctx` is NULL or a context the caller holds a reference to, which it gives up
/// (it does not use `ctx` again unless it holds another reference).
#[no_mangle]
pub unsafe extern "C" fn gr_ctx_free(ctx: *mut gr_ctx) -> c_int {
    boundary("gr_ctx_free", || {
        if ctx.is_null() {
            return -libc::EINVAL;
        }
        // SAFETY: the caller's reference, given up (our contract).
        unsafe { context::release(ctx_of(ctx)) };
        0
    })
}

/// Starts a goroutine running `fn(arg)` bound to `ctx` (it takes its own reference):
/// its cancellation points return the context's error once it is cancelled. (A
/// goroutine started with gr_spawn is bound to its spawner's context, if any.)
/// Returns the id (> 0), or -EINVAL (NULL ctx or fn), -ENOMEM, -EAGAIN as gr_spawn.
/// Never parks. Plain threads: yes.
///
/// # Safety
/// `ctx` is NULL or a context the caller holds a reference to; `fn` is NULL or a
/// function that may be called with `arg` on any thread.
#[no_mangle]
pub unsafe extern "C" fn gr_spawn_ctx(ctx: *mut gr_ctx, fn_: gr_fn, arg: *mut c_void) -> gr_id {
    boundary("gr_spawn_ctx", || {
        let Some(f) = fn_ else {
            return -libc::EINVAL as i64;
        };
        if ctx.is_null() {
            return -libc::EINVAL as i64;
        }
        let attr = SpawnAttr {
            ctx: Some(ctx_of(ctx)),
            ..SpawnAttr::default()
        };
        sched::spawn(f, arg, &attr)
    })
}

/// The calling goroutine's context, or NULL (none, or a plain thread). The reference
/// is the goroutine's: valid while it stays bound (until it returns or rebinds with
/// gr_ctx_swap); do not gr_ctx_free it. Pass it as a parent to derive a narrower
/// context. Never parks.
#[no_mangle]
pub extern "C" fn gr_ctx_current() -> *mut gr_ctx {
    boundary("gr_ctx_current", || {
        let g = crate::runtime::m::current_g();
        if g.is_null() {
            return core::ptr::null_mut();
        }
        // SAFETY: the running goroutine's descriptor; only it writes its context.
        unsafe { (*g).context as *mut gr_ctx }
    })
}

/// Binds the calling goroutine to `ctx` (NULL: to none) from now on, and stores its
/// previous context (or NULL) in `*prev`. References move, none is taken: the
/// goroutine takes over the caller's reference to `ctx`, and the caller gets the
/// goroutine's reference to the previous one. The usual scope (what Python's
/// `gr.timeout` does): `c = gr_ctx_with_timeout(gr_ctx_current(), ns);
/// gr_ctx_swap(c, &prev); ...calls...; gr_ctx_swap(prev, &c); gr_ctx_free(c);`.
/// Goroutines spawned meanwhile (gr_spawn) are bound to `ctx` too. Returns 0,
/// -EINVAL (NULL prev), -EPERM (not on a goroutine: nothing changes). Never parks.
///
/// # Safety
/// `ctx` is NULL or a context the caller holds a reference to (which it hands over);
/// `prev` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn gr_ctx_swap(ctx: *mut gr_ctx, prev: *mut *mut gr_ctx) -> c_int {
    boundary("gr_ctx_swap", || {
        if prev.is_null() {
            return -libc::EINVAL;
        }
        let g = crate::runtime::m::current_g();
        if g.is_null() {
            return -libc::EPERM;
        }
        // SAFETY: the running goroutine's descriptor, whose context only it writes
        // (it is running, so no wait of it is enlisted anywhere); prev is writable.
        unsafe {
            let old = core::mem::replace(&mut (*g).context, ctx_of(ctx));
            *prev = old as *mut gr_ctx;
        }
        0
    })
}

/// Creates a group with its own context, a child of `parent` (NULL: a root). NULL
/// when memory runs out. Never parks. Plain threads: yes.
///
/// # Safety
/// `parent` is NULL or a context the caller holds a reference to.
#[no_mangle]
pub unsafe extern "C" fn gr_group_new(parent: *mut gr_ctx) -> *mut gr_group {
    boundary("gr_group_new", || {
        // SAFETY: parent is NULL or referenced by the caller (our contract).
        unsafe { Group::new(ctx_of(parent)) }
            .map_or(core::ptr::null_mut(), |g| Box::into_raw(g) as *mut gr_group)
    })
}

/// At most `n` members run at once from now on: gr_group_go waits while `n` run
/// (first come, first served); 0 = no limit. Returns 0, -EINVAL (NULL, n < 0). Never
/// parks. Plain threads: yes.
///
/// # Safety
/// `g` is NULL or a group from gr_group_new that has not been freed.
#[no_mangle]
pub unsafe extern "C" fn gr_group_limit(g: *mut gr_group, n: c_int) -> c_int {
    boundary(
        "gr_group_limit",
        // SAFETY: g is NULL or a live group (our contract).
        AssertUnwindSafe(|| match unsafe { group_of(g) } {
            None => -libc::EINVAL,
            Some(g) => g.limit(n),
        }),
    )
}

/// Starts `fn(arg)` as a member: a goroutine bound to the group's context. The
/// first member that returns non-zero cancels the group's context (so the others'
/// cancellation points return) and its result is what gr_group_wait returns. While
/// the limit's number of members run, waits for one to end (a cancellation point of
/// the caller's context). Returns the member's goroutine id (> 0), -EINVAL (NULL g or
/// fn), -ENOMEM, -EAGAIN (as gr_spawn), or the caller's context error (nothing
/// started). May park; plain threads block.
///
/// # Safety
/// `g` is NULL or a group from gr_group_new that has not been freed; `fn` is NULL or
/// a function that may be called with `arg` on any thread.
#[no_mangle]
pub unsafe extern "C" fn gr_group_go(g: *mut gr_group, fn_: gr_task_fn, arg: *mut c_void) -> gr_id {
    boundary(
        "gr_group_go",
        // SAFETY: g is NULL or a live group (our contract).
        AssertUnwindSafe(|| match (unsafe { group_of(g) }, fn_) {
            (Some(g), Some(f)) => g.go(f, arg),
            _ => -libc::EINVAL as i64,
        }),
    )
}

/// Waits until every member has returned, then cancels the group's context (as Go's
/// errgroup does) and returns the first non-zero member result, or 0. A cancellation
/// point of the caller's context: its error if that is cancelled first (the members
/// go on). -EINVAL (NULL). May park; plain threads block.
///
/// # Safety
/// `g` is NULL or a group from gr_group_new that has not been freed.
#[no_mangle]
pub unsafe extern "C" fn gr_group_wait(g: *mut gr_group) -> c_int {
    boundary(
        "gr_group_wait",
        // SAFETY: g is NULL or a live group (our contract).
        AssertUnwindSafe(|| match unsafe { group_of(g) } {
            None => -libc::EINVAL,
            Some(g) => g.wait(),
        }),
    )
}

/// The group's context (the group's reference: valid until gr_group_free; do not
/// gr_ctx_free it). NULL for a NULL group. Never parks. Plain threads: yes.
///
/// # Safety
/// `g` is NULL or a group from gr_group_new that has not been freed.
#[no_mangle]
pub unsafe extern "C" fn gr_group_ctx(g: *mut gr_group) -> *mut gr_ctx {
    boundary(
        "gr_group_ctx",
        // SAFETY: g is NULL or a live group (our contract).
        AssertUnwindSafe(|| match unsafe { group_of(g) } {
            None => core::ptr::null_mut(),
            Some(g) => g.ctx() as *mut gr_ctx,
        }),
    )
}

/// Cancels the group's context (every member's cancellation points return
/// -ECANCELED). Returns 0, -EINVAL (NULL). Never parks. Plain threads: yes.
///
/// # Safety
/// `g` is NULL or a group from gr_group_new that has not been freed.
#[no_mangle]
pub unsafe extern "C" fn gr_group_cancel(g: *mut gr_group) -> c_int {
    boundary(
        "gr_group_cancel",
        // SAFETY: g is NULL or a live group (our contract).
        AssertUnwindSafe(|| match unsafe { group_of(g) } {
            None => -libc::EINVAL,
            Some(g) => g.cancel(),
        }),
    )
}

/// Frees the group and drops its reference to its context. Returns 0, -EBUSY
/// (members still run, or somebody waits in gr_group_wait or gr_group_go: nothing is
/// freed), -EINVAL (NULL). Never parks. Plain threads: yes.
///
/// # Safety
/// `g` is NULL or a group from gr_group_new that has not been freed. If this call
/// frees it, no other call on it is running then (one parked in it makes this one
/// free nothing) and none starts later.
#[no_mangle]
pub unsafe extern "C" fn gr_group_free(g: *mut gr_group) -> c_int {
    boundary(
        "gr_group_free",
        AssertUnwindSafe(|| {
            // SAFETY: g is NULL or a live group (our contract).
            let Some(grp) = (unsafe { group_of(g) }) else {
                return -libc::EINVAL;
            };
            if grp.busy() {
                return -libc::EBUSY;
            }
            // SAFETY: a live group boxed by gr_group_new that nobody uses now and
            // nobody will (our contract).
            drop(unsafe { Box::from_raw(g as *mut Group) });
            0
        }),
    )
}
