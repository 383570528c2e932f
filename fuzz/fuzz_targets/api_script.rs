//! The libFuzzer target: each input is a script of C API calls run by several
//! goroutines on the process-wide runtime (decoding, execution and checks live in
//! src/script.rs, shared with tests/fuzz_scripts.rs). A finding aborts the process,
//! which libFuzzer records as a crash with the input. Built and run by mk/fuzz.mk.
//! GR_FUZZ_THREAD_LOCK=0 leaves out the gr_lock_thread ops (to look past the
//! locked-goroutine timeout hang while it is open).
#![no_main]

use std::sync::OnceLock;

use goroutine_fuzz::script::{self, Features};

fn features() -> Features {
    static FEATURES: OnceLock<Features> = OnceLock::new();
    *FEATURES.get_or_init(|| Features {
        thread_lock: std::env::var("GR_FUZZ_THREAD_LOCK").map_or(true, |v| v != "0"),
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    script::run_with(data, features());
});
