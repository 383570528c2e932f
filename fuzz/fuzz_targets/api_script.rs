//! The libFuzzer target: each input is a script of C API calls run by several
//! goroutines on the process-wide runtime (decoding, execution and checks live in
//! src/script.rs, shared with tests/fuzz_scripts.rs). A finding aborts the process,
//! which libFuzzer records as a crash with the input. Built and run by mk/fuzz.mk.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    goroutine_fuzz::script::run(data);
});
