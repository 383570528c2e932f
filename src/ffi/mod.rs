//! The C ABI: every `#[no_mangle]` function of the library, one file per header
//! section. Each export checks its arguments, returns 0/a positive value or a
//! negative errno value, and runs inside `boundary`, so a Rust panic never unwinds
//! into C: it becomes a fatal one-line error naming the goroutine (a panic here means
//! a broken invariant, not bad input, which gets an error code before any panic can
//! happen).

pub mod core;
pub mod debug;
pub mod io;
pub mod sync;

/// Runs an export's body, turning a panic into a fatal error line.
#[inline(always)]
pub(crate) fn boundary<T>(name: &str, f: impl FnOnce() -> T + std::panic::UnwindSafe) -> T {
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
