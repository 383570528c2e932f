//! The fuzz harness's library: the script interpreter (`script`), one file shared with
//! the main crate's regression test (tests/fuzz_scripts.rs includes it by #[path]).
pub mod script;
