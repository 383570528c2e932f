//! Header section "one-time initialisation" (`sync::once`): Go's `sync.Once`, in
//! memory the caller provides (a `static gr_once`, or one set to GR_ONCE_INIT).

use std::ffi::{c_int, c_void};
use std::panic::AssertUnwindSafe;

use super::boundary;
use super::core::gr_fn;
use crate::sync::once::Once;

/// One-time initialisation state (Go's `sync.Once`). Allocated by the caller and
/// valid when all zero: static storage, `gr_once o = GR_ONCE_INIT;`, or memset to 0.
/// Its fields are private. Do not copy it once in use.
#[repr(C)]
#[allow(non_camel_case_types)]
pub struct gr_once {
    pub _private: [u64; 3],
}

/// The initial value of a gr_once (all zero).
pub const GR_ONCE_INIT: gr_once = gr_once {
    _private: [0, 0, 0],
};

const _: () = {
    use core::mem::{align_of, size_of};
    assert!(size_of::<gr_once>() == size_of::<Once>());
    assert!(align_of::<gr_once>() == align_of::<Once>());
};

/// Runs `fn_(arg)` if no gr_once_do on `o` has run it yet; otherwise waits until the
/// call that runs it has returned (concurrent callers park meanwhile), so every
/// caller returns after `fn_` has returned, exactly once. A failing `fn_` still
/// counts as run. Returns 0, -EDEADLK (`fn_` itself called gr_once_do on the same `o`: that
/// inner call returns at once, without running anything), -EINVAL (NULL `o` or
/// `fn_`). May park; plain threads block.
///
/// # Safety
/// `o` is NULL or points to a gr_once that was all zero before its first use and is
/// used only through gr_once_do (it stays valid while any call on it runs); `fn_`
/// is NULL or a function that is sound to call with `arg`.
#[no_mangle]
pub unsafe extern "C" fn gr_once_do(o: *mut gr_once, fn_: gr_fn, arg: *mut c_void) -> c_int {
    boundary(
        "gr_once_do",
        AssertUnwindSafe(|| {
            let Some(f) = fn_ else {
                return -libc::EINVAL;
            };
            // SAFETY: a non-null o points to a live gr_once, zeroed before first use
            // and touched only here (our contract): an Once (same size and
            // alignment, all-zero is its initial state).
            let Some(once) = (unsafe { (o as *const Once).as_ref() }) else {
                return -libc::EINVAL;
            };
            // SAFETY: f is sound to call with arg (our contract).
            once.do_once(|| unsafe { f(arg) })
        }),
    )
}
