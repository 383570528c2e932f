//! criterion micro-benchmarks of the core runtime (`cargo bench --bench micro`).
//!
//! - `raw_switch`: two contexts ping-ponging through `arch::switch` on a stack this
//!   file mmaps itself, no scheduler at all: the floor every other figure sits on.
//!   Reported per switch (one iteration = one round trip, timed and halved).
//!   `per_switch`: each side switches from its own call site (the bench loop, the
//!   coroutine loop), so the `ret` at the end of the switch goes to a different
//!   address than the one the CPU's return-stack predicts, every time.
//!   `per_switch_same_site`: both sides run one shared (never inlined) loop, so
//!   they switch from the same call instruction, as two goroutines do (both switch
//!   from `switch_away`); the return is predicted. Boost.Context's 4.5 ns (whose
//!   switch returns with an indirect jmp, not `ret`) corresponds to this case.
//! - `spawn_join`: spawn one trivial goroutine and join it, through the C ABI
//!   (`gr_spawn` + `gr_join`, called as Rust functions) from inside a goroutine.
//! - `spawn_batch`: spawn trivial goroutines 1,000 at a time and `gr_wait_all`;
//!   per goroutine (the shape of `bench/spawn.c`, warm stacks).
//! - `yield_1proc`: two goroutines calling `gr_yield` in a loop on one processor;
//!   per switch (= time / total yields), the shape of `bench/yield.c`.
//!
//! Clock: wall time by default. With `GR_BENCH_CLOCK=cpu` every timed region is
//! measured in the process's CPU time instead (CLOCK_PROCESS_CPUTIME_ID), which leaves
//! out the time this process sat descheduled while the (shared, 2-vCPU) machine ran
//! something else; all these benches keep exactly one thread busy, so on an idle
//! machine the two clocks agree.
//!
//! The runtime is global per process: `gr_init(1)` runs once before any benchmark,
//! and every measurement runs inside `gr_main` (the timed region is inside the
//! goroutine, so the plain thread's futex hand-off into and out of the runtime is not
//! counted). Each group uses 20 samples and a short measurement time, so the whole
//! file runs in well under two minutes.

use std::ffi::c_void;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use goroutine::arch::{self, Context};
use goroutine::ffi::core::{gr_init, gr_join, gr_main, gr_spawn, gr_wait_all, gr_yield};

/// A point in time on the clock chosen by `GR_BENCH_CLOCK` (see the file comment).
#[derive(Clone, Copy)]
struct Instant(u64);

impl Instant {
    fn now() -> Instant {
        static CPU: OnceLock<bool> = OnceLock::new();
        let cpu = *CPU.get_or_init(|| std::env::var("GR_BENCH_CLOCK").is_ok_and(|v| v == "cpu"));
        let id = if cpu {
            libc::CLOCK_PROCESS_CPUTIME_ID
        } else {
            libc::CLOCK_MONOTONIC
        };
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime with a valid clock id and out-pointer.
        unsafe { libc::clock_gettime(id, &mut ts) };
        Instant(ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64)
    }

    fn elapsed(self) -> Duration {
        Duration::from_nanos(Instant::now().0.saturating_sub(self.0))
    }
}

fn quick<'a>(
    c: &'a mut Criterion,
    name: &str,
) -> criterion::BenchmarkGroup<'a, criterion::measurement::WallTime> {
    let mut g = c.benchmark_group(name);
    g.sample_size(20);
    g.warm_up_time(Duration::from_millis(500));
    g.measurement_time(Duration::from_secs(3));
    g
}

// ---------------------------------------------------------------------------------
// raw switch

/// The two contexts of the ping-pong, shared between the bench and the coroutine.
struct Pair {
    main: Context,
    co: Context,
}

/// The loop both sides run in `per_switch_same_site`: `n` switches from `save` to
/// `load`, all from one call instruction, so every switch returns to the address the
/// return-stack predictor expects.
#[inline(never)]
unsafe fn pingpong(save: *mut Context, load: *const Context, n: u64) {
    for _ in 0..n {
        // SAFETY: forwarded from the callers.
        unsafe { arch::switch(save, load, black_box(0)) };
    }
}

unsafe extern "C" fn pong_same_site(_transfer: usize, arg: usize) -> ! {
    let pair = arg as *mut Pair;
    loop {
        // SAFETY: as in `pong`.
        unsafe { pingpong(&mut (*pair).co, &(*pair).main, u64::MAX) };
    }
}

unsafe extern "C" fn pong(_transfer: usize, arg: usize) -> ! {
    let pair = arg as *mut Pair;
    loop {
        // SAFETY: `pair` outlives the coroutine (the bench never drops it while the
        // coroutine is suspended mid-loop; the stack is simply abandoned at the end).
        unsafe { arch::switch(&mut (*pair).co, &(*pair).main, 0) };
    }
}

/// A coroutine suspended in `entry` on a stack of its own (leaked on purpose: it
/// stays suspended until the process exits).
fn start_coroutine(entry: arch::Entry) -> *mut Pair {
    const STACK: usize = 64 << 10;
    // SAFETY: a private anonymous mapping that we own.
    let stack = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            STACK,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    assert_ne!(stack, libc::MAP_FAILED);
    let pair = Box::into_raw(Box::new(Pair {
        main: Context::empty(),
        co: Context::empty(),
    }));
    // SAFETY: the top 128 bytes of the fresh mapping are ours.
    unsafe {
        (*pair).co = arch::prepare((stack as *mut u8).add(STACK), entry, pair as usize);
        // The first switch starts the coroutine, which immediately switches back.
        arch::switch(&mut (*pair).main, &(*pair).co, 0);
    }
    pair
}

fn bench_raw_switch(c: &mut Criterion) {
    let mut g = quick(c, "raw_switch");
    g.throughput(Throughput::Elements(1));
    let pair = start_coroutine(pong);
    g.bench_function("per_switch", |b| {
        b.iter_custom(|iters| {
            let t = Instant::now();
            for _ in 0..iters {
                // SAFETY: the coroutine is suspended in its loop, saved in `co`.
                unsafe { arch::switch(&mut (*pair).main, &(*pair).co, black_box(0)) };
            }
            // One iteration is a round trip: two switches.
            t.elapsed() / 2
        })
    });
    let pair = start_coroutine(pong_same_site);
    g.bench_function("per_switch_same_site", |b| {
        b.iter_custom(|iters| {
            let t = Instant::now();
            // SAFETY: as above.
            unsafe { pingpong(&mut (*pair).main, &(*pair).co, iters) };
            t.elapsed() / 2
        })
    });
    g.finish();
}

// ---------------------------------------------------------------------------------
// goroutine benches: helpers

/// Arguments passed into a timed `gr_main` body; `ns` is what it measured.
struct Job {
    iters: u64,
    ns: u64,
}

/// Runs `body` as the main goroutine and returns the time it measured itself.
fn run_main(body: unsafe extern "C" fn(*mut c_void), iters: u64) -> Duration {
    let mut job = Job { iters, ns: 0 };
    let rc = gr_main(Some(body), &mut job as *mut Job as *mut c_void);
    assert_eq!(rc, 0, "gr_main failed: {rc}");
    Duration::from_nanos(job.ns)
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

unsafe extern "C" fn trivial(_arg: *mut c_void) {
    COUNTER.fetch_add(1, Ordering::Relaxed);
}

// ---------------------------------------------------------------------------------
// spawn + join

unsafe extern "C" fn spawn_join_body(arg: *mut c_void) {
    // SAFETY: run_main passes a live Job.
    let job = unsafe { &mut *(arg as *mut Job) };
    let t = Instant::now();
    for _ in 0..job.iters {
        let id = gr_spawn(Some(trivial), std::ptr::null_mut());
        assert!(id > 0, "gr_spawn failed: {id}");
        let rc = gr_join(id);
        debug_assert_eq!(rc, 0);
    }
    job.ns = t.elapsed().as_nanos() as u64;
}

unsafe extern "C" fn spawn_batch_body(arg: *mut c_void) {
    const BATCH: u64 = 1000;
    // SAFETY: run_main passes a live Job.
    let job = unsafe { &mut *(arg as *mut Job) };
    let t = Instant::now();
    let mut left = job.iters;
    while left > 0 {
        let n = left.min(BATCH);
        for _ in 0..n {
            let id = gr_spawn(Some(trivial), std::ptr::null_mut());
            assert!(id > 0, "gr_spawn failed: {id}");
        }
        gr_wait_all();
        left -= n;
    }
    job.ns = t.elapsed().as_nanos() as u64;
}

fn bench_spawn(c: &mut Criterion) {
    let mut g = quick(c, "spawn");
    g.throughput(Throughput::Elements(1));
    g.bench_function("spawn_join_each_1proc", |b| {
        b.iter_custom(|iters| run_main(spawn_join_body, iters))
    });
    g.bench_function("spawn_batch1000_waitall_1proc", |b| {
        b.iter_custom(|iters| run_main(spawn_batch_body, iters))
    });
    g.finish();
}

// ---------------------------------------------------------------------------------
// yield between two goroutines on one processor

unsafe extern "C" fn yielder(arg: *mut c_void) {
    let n = arg as usize as u64;
    for _ in 0..n {
        gr_yield();
    }
}

unsafe extern "C" fn yield_body(arg: *mut c_void) {
    // SAFETY: run_main passes a live Job.
    let job = unsafe { &mut *(arg as *mut Job) };
    // Two goroutines, each yielding half of the total: time / total yields.
    let half = job.iters.div_ceil(2).max(1);
    let t = Instant::now();
    for _ in 0..2 {
        let id = gr_spawn(Some(yielder), half as usize as *mut c_void);
        assert!(id > 0, "gr_spawn failed: {id}");
    }
    gr_wait_all();
    let ns = t.elapsed().as_nanos() as u64;
    // Report per yield of the two (criterion divides by `iters`).
    job.ns = ns * job.iters / (2 * half);
}

fn bench_yield(c: &mut Criterion) {
    let mut g = quick(c, "yield");
    g.throughput(Throughput::Elements(1));
    g.bench_function("per_switch_2g_1proc", |b| {
        b.iter_custom(|iters| run_main(yield_body, iters))
    });
    g.finish();
}

fn init_runtime(_c: &mut Criterion) {
    let rc = gr_init(1);
    assert!(rc == 1 || rc == -libc::EALREADY, "gr_init(1) returned {rc}");
}

criterion_group!(
    benches,
    init_runtime,
    bench_raw_switch,
    bench_spawn,
    bench_yield
);
criterion_main!(benches);
