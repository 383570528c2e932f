//! The fuzz harness's regression test, run by `make test`: the same script interpreter
//! as the libFuzzer target (fuzz/src/script.rs, included here by #[path] so that no
//! code is duplicated and no libFuzzer is needed) over the committed seed corpus
//! (fuzz/corpus_seed/) and a fixed-seed stream of pseudo-random scripts (4,000 here,
//! 60,000 in the #[ignore]d test that make stress runs). A finding
//! aborts this test process with the failing input in hex; replay it with
//! `fuzz/target/x86_64-unknown-linux-gnu/release/api_script FILE` (mk/fuzz.mk).

#[allow(dead_code)]
#[path = "../fuzz/src/script.rs"]
mod script;

use std::time::Instant;

/// Pseudo-random scripts per run; GR_FUZZ_SCRIPTS overrides (and GR_FUZZ_SEED the seed).
const SCRIPTS: u64 = 4000;
/// The same for make stress (about a minute here).
const STRESS_SCRIPTS: u64 = 60_000;

fn env(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok())
}

/// What make test runs: every op, gr_lock_thread included (it found a scheduler bug:
/// a thread-locked goroutine parked with a timeout was never woken when the poller
/// had stopped to hand it its processor; handoffp now starts a worker that becomes
/// the poller, and sysmon fires timers nobody polls for).
const MAKE_TEST_FEATURES: script::Features = script::Features::ALL;

/// Runs `n` scripts from the generator seeded `seed`; returns how many decoded.
fn random_scripts(n: u64, seed: u64, features: script::Features) -> u64 {
    let t0 = Instant::now();
    let mut gen = script::ScriptBytes::new(seed);
    let mut ran = 0;
    for _ in 0..n {
        if script::run_with(&gen.input(), features) {
            ran += 1;
        }
    }
    assert!(
        ran > n * 9 / 10,
        "only {ran} of {n} random inputs decoded to a script"
    );
    eprintln!(
        "{ran} random scripts (seed {seed:#x}) in {:?}",
        t0.elapsed()
    );
    for (name, n) in script::events() {
        eprintln!("  {name}: {n}");
    }
    ran
}

#[test]
fn seed_corpus_and_random_scripts() {
    if let Ok(hex) = std::env::var("GR_FUZZ_INPUT") {
        // Replay one input given in hex (as a finding prints it), showing its script;
        // GR_FUZZ_REPEAT times (a finding may need a particular interleaving).
        let bytes: Vec<u8> = (0..hex.trim().len() / 2)
            .map(|i| u8::from_str_radix(&hex.trim()[2 * i..2 * i + 2], 16).expect("hex input"))
            .collect();
        eprintln!("{:#?}", script::Script::decode(&bytes));
        for _ in 0..env("GR_FUZZ_REPEAT").unwrap_or(1) {
            script::run(&bytes);
        }
        return;
    }
    let t0 = Instant::now();
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/corpus_seed");
    let mut seeds: Vec<_> = std::fs::read_dir(dir)
        .expect("fuzz/corpus_seed")
        .map(|e| e.expect("corpus entry").path())
        .collect();
    seeds.sort();
    assert!(!seeds.is_empty(), "fuzz/corpus_seed is empty");
    for path in &seeds {
        let bytes = std::fs::read(path).expect("seed input");
        assert!(
            script::run_with(&bytes, MAKE_TEST_FEATURES),
            "{}: names no goroutine",
            path.display()
        );
    }
    eprintln!("{} seeds in {:?}", seeds.len(), t0.elapsed());
    random_scripts(
        env("GR_FUZZ_SCRIPTS").unwrap_or(SCRIPTS),
        env("GR_FUZZ_SEED").unwrap_or(0x5eed_f022),
        MAKE_TEST_FEATURES,
    );
}

#[test]
#[ignore = "long: make stress"]
fn random_scripts_long() {
    random_scripts(
        env("GR_FUZZ_SCRIPTS").unwrap_or(STRESS_SCRIPTS),
        env("GR_FUZZ_SEED").unwrap_or(0x0057_2e55),
        MAKE_TEST_FEATURES,
    );
}
