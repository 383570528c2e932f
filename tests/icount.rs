//! Keeps the instruction-count benchmark honest (`microbench/icount.rs`,
//! `bench/icount.py`, `make bench-check`).
//!
//! - `every_op_runs_natively`: every operation of `microbench/common` (the code both
//!   bench targets measure, compiled into this test too) runs a few iterations in
//!   both meters, natively: the callgrind client requests must be harmless outside
//!   valgrind, and each operation checks its own work (values in order, wakes
//!   counted) and aborts otherwise. Fast, so it runs in `make test`, and the benches
//!   cannot rot between `make bench-check` runs.
//! - `bench_check_under_valgrind` (ignored: `make stress`): the real thing, `make
//!   bench-check`: builds the program, counts under callgrind, compares with the
//!   committed baseline. Fails on a > 10% rise, or if anything cannot be measured.

#[path = "../microbench/common/mod.rs"]
mod common;

use std::ffi::CString;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Meter, OPS};

#[test]
fn every_op_runs_natively() {
    common::init_runtime();
    let mut names = std::collections::HashSet::new();
    for op in OPS {
        assert!(names.insert(op.name), "{} listed twice", op.name);
        assert!(
            op.name.split_once('/').is_some(),
            "{}: names are group/name",
            op.name
        );
        let iters = (op.icount_iters / 1000).max(4);
        let label = CString::new(format!("icount {} {iters}", op.name)).unwrap();
        for meter in [Meter::Clock, Meter::Callgrind] {
            let took = (op.run)(iters, meter, &label);
            // Generous: a few dozen operations, on a shared 2-CPU machine.
            assert!(
                took < Duration::from_secs(5),
                "{}: {iters} ops took {took:?}",
                op.name
            );
        }
    }
}

#[test]
#[ignore = "runs valgrind (about 2 minutes with the build); make stress"]
fn bench_check_under_valgrind() {
    if Command::new("valgrind").arg("--version").output().is_err() {
        panic!("valgrind is not installed: make bench-check cannot run");
    }
    let mut child = Command::new("make")
        .arg("bench-check")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("make");
    let deadline = Instant::now() + Duration::from_secs(900);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("make bench-check ran over 15 minutes");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(status.success(), "make bench-check failed: {status}");
}
