//! The C ABI: every `#[no_mangle]` function of the library, one file per header
//! section. Each export checks its arguments, returns 0/a positive value or a
//! negative errno value, and runs inside `boundary`, so a Rust panic never unwinds
//! into C: it becomes a fatal one-line error naming the goroutine (a panic here means
//! a broken invariant, not bad input, which gets an error code before any panic can
//! happen).
//!
//! `boundary` also enforces the fork rule: the runtime's threads do not survive
//! fork(), so in a child process every call fails at once (-ECHILD, NULL, 0) without
//! touching runtime state (locks held by vanished threads included); exec works.

pub mod core;
pub mod debug;
pub mod io;
pub mod pybinding;
pub mod sync;

/// What an export returns in a forked child.
pub(crate) trait InChild {
    fn in_child() -> Self;
}
impl InChild for i32 {
    fn in_child() -> Self {
        -libc::ECHILD
    }
}
impl InChild for i64 {
    fn in_child() -> Self {
        -libc::ECHILD as i64
    }
}
impl InChild for isize {
    fn in_child() -> Self {
        -libc::ECHILD as isize
    }
}
impl InChild for usize {
    fn in_child() -> Self {
        0
    }
}
impl InChild for () {
    fn in_child() -> Self {}
}
impl<T> InChild for *mut T {
    fn in_child() -> Self {
        std::ptr::null_mut()
    }
}

/// Runs an export's body, turning a panic into a fatal error line.
#[inline(always)]
pub(crate) fn boundary<T: InChild>(
    name: &str,
    f: impl FnOnce() -> T + std::panic::UnwindSafe,
) -> T {
    if crate::runtime::sched::in_forked_child() {
        return T::in_child();
    }
    match std::panic::catch_unwind(f) {
        Ok(v) => v,
        Err(e) => {
            let msg = e
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| e.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            crate::runtime::fatal(&format!("panic in {name}: {msg}"))
        }
    }
}
