//! criterion micro-benchmarks of the core runtime (`cargo bench --bench micro`): time
//! per operation for every operation in `microbench/common` (raw switch, spawn, yield,
//! channel handoff, timer arm/cancel, netpoller wake; each described there), plus one
//! raw-switch variant that only makes sense timed:
//!
//! - `raw_switch/per_switch`: each side switches from its own call site (the bench
//!   loop, the coroutine loop), so the `ret` at the end of the switch goes to a
//!   different address than the one the CPU's return-stack predicts, every time.
//!   `raw_switch/per_switch_same_site` (from `common`): both sides run one shared
//!   (never inlined) loop, so they switch from the same call instruction, as two
//!   goroutines do (both switch from `switch_away`); the return is predicted.
//!   Boost.Context's 4.5 ns (whose switch returns with an indirect jmp, not `ret`)
//!   corresponds to this case.
//!
//! The same operations are counted in instructions by `microbench/icount.rs`
//! (`make bench-check`): time here, instructions there.
//!
//! Clock: wall time by default; `GR_BENCH_CLOCK=cpu` measures the process's CPU time
//! (see `common::Instant`). The runtime is global per process: `gr_init(1)` runs once
//! before any benchmark, and every goroutine measurement runs inside `gr_main` (the
//! measured region is inside the goroutine, so the plain thread's futex hand-off into
//! and out of the runtime is not counted). Each group uses 20 samples and a short
//! measurement time, so the whole file runs in about two minutes.

mod common;

use std::ffi::CString;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use common::{Instant, Meter, OPS};

fn quick<'a>(
    c: &'a mut Criterion,
    name: &str,
) -> criterion::BenchmarkGroup<'a, criterion::measurement::WallTime> {
    let mut g = c.benchmark_group(name);
    g.sample_size(20);
    g.warm_up_time(Duration::from_millis(500));
    g.measurement_time(Duration::from_secs(3));
    g.throughput(Throughput::Elements(1));
    g
}

/// `raw_switch/per_switch`: round trips from two different call sites, per switch.
fn bench_raw_switch_two_sites(c: &mut Criterion) {
    let mut g = quick(c, "raw_switch");
    let pair = common::start_coroutine(common::pong);
    g.bench_function("per_switch", |b| {
        b.iter_custom(|iters| {
            let t = Instant::now();
            for _ in 0..iters {
                // SAFETY: the coroutine is suspended in its loop, saved in `co`.
                unsafe {
                    goroutine::arch::switch(&mut (*pair).main, &(*pair).co, std::hint::black_box(0))
                };
            }
            // One iteration is a round trip: two switches.
            t.elapsed() / 2
        })
    });
    g.finish();
}

/// Every operation of `common::OPS`, grouped by the part of its name before the `/`.
fn bench_ops(c: &mut Criterion) {
    common::init_runtime();
    let unused_label = CString::default();
    for op in OPS {
        let (group, name) = op.name.split_once('/').expect("ops are named group/name");
        let mut g = quick(c, group);
        g.bench_function(name, |b| {
            b.iter_custom(|iters| (op.run)(iters, Meter::Clock, &unused_label))
        });
        g.finish();
    }
}

criterion_group!(benches, bench_raw_switch_two_sites, bench_ops);
criterion_main!(benches);
