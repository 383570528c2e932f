//! What every entry from C runs inside: the exports of `ffi`, and the functions the
//! runtime hands to C as pointers (`cpython`'s builtin `yield_`).
//!
//! A Rust panic must never unwind into C (Rust >= 1.81 aborts the process with a
//! generic message when one tries): `boundary` catches it and turns it into the
//! runtime's one-line fatal error naming the goroutine. A panic there means a broken
//! invariant, not bad input, which gets an error code before any panic can happen.
//!
//! It also enforces the fork rule: the runtime's threads do not survive fork(), so in
//! a child process every call fails at once (-ECHILD, NULL, 0) without touching
//! runtime state (locks held by vanished threads included); exec works.
//!
//! It lives in the runtime, not in `ffi`, because callers below `ffi` need it too and
//! the runtime never imports from the C surface.

/// What an entry returns in a forked child.
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

/// Runs an entry's body, turning a panic into a fatal error line.
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
        Err(e) => panicked(name, e),
    }
}

/// The fatal line for a panic that reached an entry. Out of line, so that an entry's
/// landing pad is only this call: it then needs no registers of its own, and the
/// entry's fast path saves none for it (gr_yield: 4 pushes and 4 pops fewer).
#[cold]
#[inline(never)]
fn panicked(name: &str, e: Box<dyn std::any::Any + Send>) -> ! {
    crate::runtime::fatal(&panic_what(name, &*e))
}

/// What the fatal line says of a panic in entry `name` with payload `e`.
fn panic_what(name: &str, e: &(dyn std::any::Any + Send)) -> String {
    let msg = e
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| e.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into());
    format!("panic in {name}: {msg}")
}

#[cfg(test)]
mod tests {
    use super::panic_what;

    /// The payloads a panic carries (a literal, a formatted message, anything else)
    /// become the message of the fatal line, caught as `boundary` catches them.
    #[test]
    fn panic_payloads_become_the_fatal_line() {
        let quiet = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let literal = std::panic::catch_unwind(|| panic!("broken")).unwrap_err();
        let n = 7;
        let formatted = std::panic::catch_unwind(|| panic!("broken {n}")).unwrap_err();
        let other = std::panic::catch_unwind(|| std::panic::panic_any(3u8)).unwrap_err();
        std::panic::set_hook(quiet);
        assert_eq!(panic_what("gr_x", &*literal), "panic in gr_x: broken");
        assert_eq!(panic_what("gr_x", &*formatted), "panic in gr_x: broken 7");
        assert_eq!(panic_what("gr_x", &*other), "panic in gr_x: unknown panic");
    }
}
