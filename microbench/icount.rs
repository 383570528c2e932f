//! The instruction-count program behind `make bench-check` (`bench/icount.py` runs it
//! under `valgrind --tool=callgrind`). A `harness = false` bench target so that it is
//! built with the bench profile (optimised like the library) by
//! `cargo bench --bench icount --no-run`, and never run by `cargo test`.
//!
//! For every operation of `microbench/common` it runs the operation's region once to
//! warm up (stacks carved, channels' and timers' memory allocated), then measures it
//! at N and at 2N iterations (N = the op's `icount_iters` times `--scale`), each as
//! one callgrind dump labelled `icount <name> <iters>`. The script subtracts the two
//! totals and divides by N: everything a region costs once (spawning the partner
//! goroutine's first switch, the client requests themselves) cancels out, and what is
//! left is instructions per operation. One processor (`gr_init(1)`) keeps the schedule
//! the same every run, so the counts repeat to well under 1%.
//!
//! Outside valgrind the client requests do nothing and the program prints the time
//! per operation of each region it ran (a rough figure; criterion's are the real
//! ones, `microbench/micro.rs`).
//!
//!   icount [--scale F] [--only NAME]...    run (all ops, or the NAMEd ones)
//!   icount --list                          print the op names and their N

mod common;

use std::ffi::CString;
use std::process::ExitCode;

use common::{Meter, Op, OPS};

struct Options {
    scale: f64,
    only: Vec<String>,
    list: bool,
}

fn parse_args() -> Result<Options, String> {
    let mut opts = Options {
        scale: 1.0,
        only: Vec::new(),
        list: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--scale" => {
                let v = args.next().ok_or("--scale needs a value")?;
                opts.scale = v
                    .parse()
                    .ok()
                    .filter(|s: &f64| *s > 0.0 && s.is_finite())
                    .ok_or_else(|| format!("bad --scale {v}"))?;
            }
            "--only" => opts.only.push(args.next().ok_or("--only needs a name")?),
            "--list" => opts.list = true,
            // cargo bench passes --bench to harness-less targets too.
            "--bench" => {}
            other => return Err(format!("unknown argument {other}")),
        }
    }
    for name in &opts.only {
        if !OPS.iter().any(|op| op.name == name) {
            return Err(format!("no op named {name} (see --list)"));
        }
    }
    Ok(opts)
}

/// Warm-up, then the two measured regions of one op.
fn measure(op: &Op, iters: u64) {
    let none = CString::default();
    (op.run)(iters, Meter::Clock, &none);
    for n in [iters, 2 * iters] {
        let label = CString::new(format!("icount {} {n}", op.name)).expect("no NUL in names");
        let took = (op.run)(n, Meter::Callgrind, &label);
        println!(
            "{:<40} {:>8} iterations {:>10.1} ns/op",
            op.name,
            n,
            took.as_nanos() as f64 / n as f64
        );
    }
}

fn main() -> ExitCode {
    let opts = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("icount: {e}");
            return ExitCode::from(2);
        }
    };
    let chosen = OPS
        .iter()
        .filter(|op| opts.only.is_empty() || opts.only.iter().any(|n| n == op.name));
    if opts.list {
        for op in chosen {
            println!("{} {}", op.name, op.icount_iters);
        }
        return ExitCode::SUCCESS;
    }
    common::init_runtime();
    for op in chosen {
        let iters = ((op.icount_iters as f64 * opts.scale).round() as u64).max(1);
        measure(op, iters);
    }
    ExitCode::SUCCESS
}
