//! The micro-operations measured by both bench targets: `microbench/micro.rs` (criterion,
//! time per operation) and `microbench/icount.rs` (instructions per operation under
//! callgrind, for `make bench-check`). One body per operation lives here, so that the
//! two measure exactly the same code; `tests/icount.rs` runs them too (natively, a
//! few iterations) so that neither can rot.
//!
//! Every body measures one region (`Meter::begin` .. `Region::end`): the loop of
//! operations, nothing before or after it. With `Meter::Clock` the region is timed
//! (wall or CPU time, see `Instant`); with `Meter::Callgrind` it is bracketed by
//! callgrind client requests: ZERO_STATS before, DUMP_STATS_AT(label) after, so each
//! region becomes one callgrind dump whose total is the region's instruction count
//! over all threads (outside valgrind the requests are a few no-op instructions).
//!
//! Goroutine bodies run inside `gr_main` with the runtime started by `init_runtime`
//! (`gr_init(1)`: one processor, so the schedule, and with it the instruction count,
//! is the same every run). Each body checks its own work (values received in order,
//! wakes counted) and panics otherwise, which aborts the process: a broken operation
//! cannot produce a figure.
//!
//! (Each including target uses a different subset, hence the `dead_code` allowance.)
#![allow(dead_code)]

use std::ffi::{c_int, c_void, CString};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use goroutine::arch::{self, Context};
use goroutine::ffi::core::{gr_init, gr_join, gr_main, gr_spawn, gr_wait_all, gr_yield};
use goroutine::ffi::io::{gr_block_io, gr_close, GR_READ};
use goroutine::ffi::sync::{
    gr_case, gr_chan, gr_chan_free, gr_chan_new, gr_chan_recv, gr_chan_send, gr_select, GR_RECV,
};
use goroutine::runtime::timer;

// ---------------------------------------------------------------------------------
// clocks and meters

/// A point in time on the clock chosen by `GR_BENCH_CLOCK`: wall time by default;
/// with `GR_BENCH_CLOCK=cpu` the process's CPU time (CLOCK_PROCESS_CPUTIME_ID), which
/// leaves out the time the process sat descheduled while the shared machine ran
/// something else. Every region here keeps one thread busy, so on an idle machine
/// the two agree.
#[derive(Clone, Copy)]
pub struct Instant(u64);

impl Instant {
    pub fn now() -> Instant {
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

    pub fn elapsed(self) -> Duration {
        Duration::from_nanos(Instant::now().0.saturating_sub(self.0))
    }
}

/// Callgrind client requests (the codes of valgrind's `callgrind.h`), sent through
/// the crate's one copy of the client-request sequence.
mod callgrind {
    const TOOL_BASE: usize = ((b'C' as usize) << 24) | ((b'T' as usize) << 16);
    /// VG_USERREQ__ZERO_STATS: zero every thread's counters.
    pub const ZERO_STATS: usize = TOOL_BASE + 1;
    /// VG_USERREQ__DUMP_STATS_AT: write a dump (all threads) described by a string.
    pub const DUMP_STATS_AT: usize = TOOL_BASE + 3;

    #[inline(always)]
    pub fn request(code: usize, arg1: usize) {
        let block: [usize; 6] = [code, arg1, 0, 0, 0, 0];
        goroutine::arch::valgrind_request(&block, 0);
        core::hint::black_box(&block);
    }
}

/// How a region is measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Meter {
    /// Time it (`Instant`).
    Clock,
    /// Make it one callgrind dump (see the file comment).
    Callgrind,
}

/// A region being measured.
pub struct Region {
    meter: Meter,
    start: Instant,
}

impl Meter {
    pub fn begin(self) -> Region {
        if self == Meter::Callgrind {
            callgrind::request(callgrind::ZERO_STATS, 0);
        }
        Region {
            meter: self,
            start: Instant::now(),
        }
    }
}

impl Region {
    /// Ends the region: its duration (Clock) or a dump described by `label`.
    pub fn end(self, label: &CString) -> Duration {
        let d = self.start.elapsed();
        if self.meter == Meter::Callgrind {
            callgrind::request(callgrind::DUMP_STATS_AT, label.as_ptr() as usize);
        }
        d
    }
}

/// The runtime is global per process: one processor, started once.
pub fn init_runtime() {
    let rc = gr_init(1);
    assert!(rc == 1 || rc == -libc::EALREADY, "gr_init(1) returned {rc}");
}

// ---------------------------------------------------------------------------------
// the operations

/// One micro-operation: `run(iters, meter, label)` performs `iters` operations inside
/// one measured region and returns its duration (meaningful with `Meter::Clock`).
pub struct Op {
    /// `group/name`, as criterion and the instruction-count JSON name it.
    pub name: &'static str,
    pub run: fn(iters: u64, meter: Meter, label: &CString) -> Duration,
    /// Iterations `microbench/icount.rs` runs under callgrind (the region is measured at
    /// this count and at twice it; the difference is per operation).
    pub icount_iters: u64,
}

/// Every operation, in the order they are reported.
pub const OPS: &[Op] = &[
    Op {
        name: "raw_switch/per_switch_same_site",
        run: raw_switch,
        icount_iters: 200_000,
    },
    Op {
        name: "spawn/spawn_join_each_1proc",
        run: spawn_join,
        icount_iters: 10_000,
    },
    Op {
        name: "spawn/spawn_batch1000_waitall_1proc",
        run: spawn_batch,
        icount_iters: 10_000,
    },
    Op {
        name: "yield/per_switch_2g_1proc",
        run: yield_switch,
        icount_iters: 50_000,
    },
    Op {
        name: "chan/handoff_unbuffered_1proc",
        run: chan_handoff,
        icount_iters: 50_000,
    },
    Op {
        name: "timer/arm_cancel",
        run: timer_arm_cancel,
        icount_iters: 50_000,
    },
    Op {
        name: "timer/select_wake_untimed_1proc",
        run: select_wake_untimed,
        icount_iters: 20_000,
    },
    Op {
        name: "timer/select_wake_timed_1proc",
        run: select_wake_timed,
        icount_iters: 20_000,
    },
    Op {
        name: "netpoll/wake_socketpair_1proc",
        run: netpoll_wake,
        icount_iters: 10_000,
    },
];

// ---------------------------------------------------------------------------------
// raw switch: two contexts ping-ponging through `arch::switch`, no scheduler

/// The two contexts of the ping-pong, shared between the bench and the coroutine.
pub struct Pair {
    pub main: Context,
    pub co: Context,
}

/// `n` switches from `save` to `load`, all from one call instruction, so every switch
/// returns to the address the return-stack predictor expects (as two goroutines do:
/// both switch from `switch_away`).
///
/// # Safety
/// As for `arch::switch`, on every one of the `n` switches: `load` holds a context
/// that nothing else runs, and `save` stays valid until resumed.
#[inline(never)]
pub unsafe fn pingpong(save: *mut Context, load: *const Context, n: u64) {
    for _ in 0..n {
        // SAFETY: our contract, which is arch::switch's.
        unsafe { arch::switch(save, load, black_box(0)) };
    }
}

/// Coroutine entry: answers every switch from the shared `pingpong` loop.
///
/// # Safety
/// `arg` is a `Pair` that outlives the coroutine, whose `main` the first switch in
/// saved.
pub unsafe extern "C" fn pong_same_site(_transfer: usize, arg: usize) -> ! {
    let pair = arg as *mut Pair;
    loop {
        // SAFETY: `pair` outlives the coroutine (it is leaked with it).
        unsafe { pingpong(&mut (*pair).co, &(*pair).main, u64::MAX) };
    }
}

/// Coroutine entry: answers every switch from its own call site.
///
/// # Safety
/// As for `pong_same_site`.
pub unsafe extern "C" fn pong(_transfer: usize, arg: usize) -> ! {
    let pair = arg as *mut Pair;
    loop {
        // SAFETY: `pair` outlives the coroutine (the bench never drops it while the
        // coroutine is suspended mid-loop; the stack is simply abandoned at the end).
        unsafe { arch::switch(&mut (*pair).co, &(*pair).main, 0) };
    }
}

/// A coroutine suspended in `entry` on a stack of its own (leaked on purpose: it
/// stays suspended until the process exits).
pub fn start_coroutine(entry: arch::Entry) -> *mut Pair {
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

/// Per switch: `iters` switches (half of them into the coroutine, half back).
fn raw_switch(iters: u64, meter: Meter, label: &CString) -> Duration {
    struct Shared(*mut Pair);
    // SAFETY: only this thread ever switches into the coroutine (its Pair is used
    // by one thread at a time; the OnceLock just keeps one coroutine per process).
    unsafe impl Send for Shared {}
    // SAFETY: as for Send: the pointer is shared, but only one thread at a time
    // dereferences it.
    unsafe impl Sync for Shared {}
    static PAIR: OnceLock<Shared> = OnceLock::new();
    let pair = PAIR
        .get_or_init(|| Shared(start_coroutine(pong_same_site)))
        .0;
    let round_trips = iters.div_ceil(2);
    let r = meter.begin();
    // SAFETY: the coroutine is suspended in `pingpong`, saved in `co`.
    unsafe { pingpong(&mut (*pair).main, &(*pair).co, round_trips) };
    scale(r.end(label), iters, 2 * round_trips)
}

// ---------------------------------------------------------------------------------
// goroutine bodies: helpers

/// What a timed `gr_main` body gets, and what it measured.
struct Job<'a> {
    iters: u64,
    meter: Meter,
    label: &'a CString,
    /// A body's own parameter (the select's timeout).
    param: i64,
    took: Duration,
}

/// Runs `body` as the main goroutine and returns the duration it measured itself.
///
/// # Safety
/// `body` takes its argument as this function's `Job` (through `job`).
unsafe fn run_main(
    body: unsafe extern "C" fn(*mut c_void),
    iters: u64,
    meter: Meter,
    label: &CString,
    param: i64,
) -> Duration {
    let mut job = Job {
        iters,
        meter,
        label,
        param,
        took: Duration::ZERO,
    };
    // SAFETY: body takes the Job (our contract), which outlives gr_main: it returns
    // once body has.
    let rc = unsafe { gr_main(Some(body), &mut job as *mut Job as *mut c_void) };
    assert_eq!(rc, 0, "gr_main failed: {rc}");
    job.took
}

/// The Job a body was given.
///
/// # Safety
/// `arg` is the pointer `run_main` passed.
unsafe fn job<'a>(arg: *mut c_void) -> &'a mut Job<'a> {
    // SAFETY: our contract: arg is run_main's Job, alive and used by nobody else
    // while the body runs.
    unsafe { &mut *(arg as *mut Job) }
}

/// `d * num / den`, for a region that ran `den` operations where `num` were asked.
fn scale(d: Duration, num: u64, den: u64) -> Duration {
    Duration::from_nanos((d.as_nanos() * num as u128 / den.max(1) as u128) as u64)
}

/// Spawns `f(arg)`; panics if the spawn fails.
///
/// # Safety
/// `f` may run with `arg` on any worker thread, and `arg` stays valid until the
/// goroutine has ended (the caller joins it, or waits for all).
unsafe fn spawn(f: unsafe extern "C" fn(*mut c_void), arg: *mut c_void) -> i64 {
    // SAFETY: our contract.
    let id = unsafe { gr_spawn(Some(f), arg) };
    assert!(id > 0, "gr_spawn failed: {id}");
    id
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A goroutine that counts itself.
///
/// # Safety
/// None beyond being a goroutine body: it ignores `_arg`.
unsafe extern "C" fn trivial(_arg: *mut c_void) {
    COUNTER.fetch_add(1, Ordering::Relaxed);
}

// ---------------------------------------------------------------------------------
// spawn

/// Per goroutine: spawn one trivial goroutine and join it.
fn spawn_join(iters: u64, meter: Meter, label: &CString) -> Duration {
    /// # Safety
    /// `arg` is run_main's Job.
    unsafe extern "C" fn body(arg: *mut c_void) {
        // SAFETY: run_main's Job.
        let job = unsafe { job(arg) };
        let before = COUNTER.load(Ordering::Relaxed);
        let r = job.meter.begin();
        for _ in 0..job.iters {
            // SAFETY: trivial ignores its argument.
            let id = unsafe { spawn(trivial, std::ptr::null_mut()) };
            let rc = gr_join(id);
            debug_assert_eq!(rc, 0);
        }
        job.took = r.end(job.label);
        assert_eq!(COUNTER.load(Ordering::Relaxed) - before, job.iters);
    }
    // SAFETY: body takes run_main's Job.
    unsafe { run_main(body, iters, meter, label, 0) }
}

const SPAWN_BATCH: u64 = 1000;

/// Per goroutine: spawn trivial goroutines 1,000 at a time, then `gr_wait_all` (the
/// shape of `bench/spawn.c`, warm stacks).
fn spawn_batch(iters: u64, meter: Meter, label: &CString) -> Duration {
    /// # Safety
    /// `arg` is run_main's Job.
    unsafe extern "C" fn body(arg: *mut c_void) {
        // SAFETY: run_main's Job.
        let job = unsafe { job(arg) };
        let before = COUNTER.load(Ordering::Relaxed);
        let r = job.meter.begin();
        let mut left = job.iters;
        while left > 0 {
            let n = left.min(SPAWN_BATCH);
            for _ in 0..n {
                // SAFETY: trivial ignores its argument.
                unsafe { spawn(trivial, std::ptr::null_mut()) };
            }
            gr_wait_all();
            left -= n;
        }
        job.took = r.end(job.label);
        assert_eq!(COUNTER.load(Ordering::Relaxed) - before, job.iters);
    }
    // SAFETY: body takes run_main's Job.
    unsafe { run_main(body, iters, meter, label, 0) }
}

// ---------------------------------------------------------------------------------
// yield

/// Per switch: two goroutines on one processor call `gr_yield`, `iters / 2` times
/// each (the shape of `bench/yield.c`).
fn yield_switch(iters: u64, meter: Meter, label: &CString) -> Duration {
    /// # Safety
    /// None: `arg` is a count, not a pointer.
    unsafe extern "C" fn yielder(arg: *mut c_void) {
        for _ in 0..arg as usize {
            gr_yield();
        }
    }
    /// # Safety
    /// `arg` is run_main's Job.
    unsafe extern "C" fn body(arg: *mut c_void) {
        // SAFETY: run_main's Job.
        let job = unsafe { job(arg) };
        let half = job.iters.div_ceil(2).max(1);
        let r = job.meter.begin();
        for _ in 0..2 {
            // SAFETY: yielder takes its argument as a count, not a pointer.
            unsafe { spawn(yielder, half as usize as *mut c_void) };
        }
        gr_wait_all();
        let took = r.end(job.label);
        // Scaled to `iters` yields when `iters` is odd.
        job.took = scale(took, job.iters, 2 * half);
    }
    // SAFETY: body takes run_main's Job.
    unsafe { run_main(body, iters, meter, label, 0) }
}

// ---------------------------------------------------------------------------------
// channel handoff

/// An unbuffered channel of u64 and the count to pass through it.
struct Stream {
    chan: *mut gr_chan,
    count: u64,
}

/// Receives `count` values and checks they are 0, 1, 2, ...
///
/// # Safety
/// `arg` is a `Stream` (with a live channel) that outlives the goroutine.
unsafe extern "C" fn receive_in_order(arg: *mut c_void) {
    // SAFETY: the spawner keeps the Stream alive until it has joined us.
    let s = unsafe { &*(arg as *const Stream) };
    for want in 0..s.count {
        let mut v = u64::MAX;
        // SAFETY: the channel lives as long as the Stream; v is its u64 element.
        let rc = unsafe { gr_chan_recv(s.chan, &mut v as *mut u64 as *mut c_void) };
        assert!(rc == 0 && v == want, "recv: rc {rc}, {v} instead of {want}");
    }
}

fn new_u64_chan() -> *mut gr_chan {
    let c = gr_chan_new(size_of::<u64>(), 0);
    assert!(!c.is_null(), "gr_chan_new failed");
    c
}

/// Frees a channel from `new_u64_chan`; panics if that fails.
///
/// # Safety
/// `c` came from `new_u64_chan`, is not freed yet, and is not used again.
unsafe fn free_chan(c: *mut gr_chan) {
    // SAFETY: our contract.
    let rc = unsafe { gr_chan_free(c) };
    assert_eq!(rc, 0, "gr_chan_free: {rc}");
}

/// Per value: the main goroutine sends `iters` values over an unbuffered channel to
/// a receiving goroutine on the same processor (one send + one receive).
fn chan_handoff(iters: u64, meter: Meter, label: &CString) -> Duration {
    /// # Safety
    /// `arg` is run_main's Job.
    unsafe extern "C" fn body(arg: *mut c_void) {
        // SAFETY: run_main's Job.
        let job = unsafe { job(arg) };
        let stream = Stream {
            chan: new_u64_chan(),
            count: job.iters,
        };
        // SAFETY: receive_in_order takes a Stream, which lives until the join below.
        let rx = unsafe { spawn(receive_in_order, &stream as *const Stream as *mut c_void) };
        let r = job.meter.begin();
        for v in 0..job.iters {
            // SAFETY: the channel is live until free_chan below; v is its u64 element.
            let rc = unsafe { gr_chan_send(stream.chan, &v as *const u64 as *const c_void) };
            assert_eq!(rc, 0, "send: {rc}");
        }
        job.took = r.end(job.label);
        assert_eq!(gr_join(rx), 0);
        // SAFETY: the receiver is joined: nothing uses the channel any more.
        unsafe { free_chan(stream.chan) };
    }
    // SAFETY: body takes run_main's Job.
    unsafe { run_main(body, iters, meter, label, 0) }
}

// ---------------------------------------------------------------------------------
// timers

/// A timer callback that must not run.
///
/// # Safety
/// None: it touches nothing (if it runs, it panics).
unsafe fn never_fires(_arg: usize) {
    panic!("a timer armed a minute ahead fired during the benchmark");
}

/// Per arm + cancel, on the runtime's timer heap directly
/// (`goroutine::runtime::timer::add` then `cancel`, as every timed wait does), from
/// a goroutine. The deadline is a minute ahead: it never fires.
fn timer_arm_cancel(iters: u64, meter: Meter, label: &CString) -> Duration {
    /// # Safety
    /// `arg` is run_main's Job.
    unsafe extern "C" fn body(arg: *mut c_void) {
        // SAFETY: run_main's Job.
        let job = unsafe { job(arg) };
        let when = timer::deadline_after(60_000_000_000);
        let r = job.meter.begin();
        for i in 0..job.iters {
            // SAFETY: never_fires touches nothing (the deadline is a minute ahead and
            // the timer is cancelled at once; if it ever ran, it only panics).
            let id = unsafe { timer::add(black_box(when + i as i64), never_fires, 0) };
            let cancelled = timer::cancel(id);
            assert!(cancelled, "timer fired or vanished before cancel");
        }
        job.took = r.end(job.label);
    }
    // SAFETY: body takes run_main's Job.
    unsafe { run_main(body, iters, meter, label, 0) }
}

/// The channel a selecting goroutine waits on, and the select's timeout.
struct Selected {
    chan: *mut gr_chan,
    count: u64,
    timeout_ns: i64,
}

/// `count` times: select on one receive case with `timeout_ns`, check the value.
///
/// # Safety
/// `arg` is a `Selected` (with a live channel) that outlives the goroutine.
unsafe extern "C" fn select_receive(arg: *mut c_void) {
    // SAFETY: the spawner keeps the Selected alive until it has joined us.
    let s = unsafe { &*(arg as *const Selected) };
    for want in 0..s.count {
        let mut v = u64::MAX;
        let mut case = gr_case {
            chan: s.chan,
            op: GR_RECV,
            elem: &mut v as *mut u64 as *mut c_void,
            closed: 0,
        };
        // SAFETY: the channel lives as long as the Selected; the elem is v, a u64.
        let rc = unsafe { gr_select(&mut case, 1, s.timeout_ns) };
        assert!(
            rc == 0 && v == want,
            "select: rc {rc}, {v} instead of {want}"
        );
    }
}

/// Per wake of a parked select: a goroutine waits in `gr_select` (one receive case,
/// `timeout_ns`); the main goroutine yields (so that the selecting goroutine runs
/// until it has parked in its next select: with one processor nothing else can
/// run), then sends the value that wakes it. With `timeout_ns` > 0 every select
/// arms its timeout when it parks and cancels it when the send wakes it, so
/// `timed - untimed` is what arming and cancelling a timeout costs through the
/// public API (`park::Waiter::block_timeout`: `timer::add` after the switch,
/// `timer::cancel` after the wake).
fn select_wake(iters: u64, meter: Meter, label: &CString, timeout_ns: i64) -> Duration {
    /// # Safety
    /// `arg` is run_main's Job.
    unsafe extern "C" fn body(arg: *mut c_void) {
        // SAFETY: run_main's Job.
        let job = unsafe { job(arg) };
        let selected = Selected {
            chan: new_u64_chan(),
            count: job.iters,
            timeout_ns: job.param,
        };
        // SAFETY: select_receive takes a Selected, which lives until the join below.
        let rx = unsafe { spawn(select_receive, &selected as *const Selected as *mut c_void) };
        let r = job.meter.begin();
        for v in 0..job.iters {
            gr_yield();
            // SAFETY: the channel is live until free_chan below; v is its u64 element.
            let rc = unsafe { gr_chan_send(selected.chan, &v as *const u64 as *const c_void) };
            assert_eq!(rc, 0, "send: {rc}");
        }
        job.took = r.end(job.label);
        assert_eq!(gr_join(rx), 0);
        // SAFETY: the receiver is joined: nothing uses the channel any more.
        unsafe { free_chan(selected.chan) };
    }
    // SAFETY: body takes run_main's Job.
    unsafe { run_main(body, iters, meter, label, timeout_ns) }
}

fn select_wake_untimed(iters: u64, meter: Meter, label: &CString) -> Duration {
    select_wake(iters, meter, label, -1)
}

/// A minute: never reached, the send always comes first.
fn select_wake_timed(iters: u64, meter: Meter, label: &CString) -> Duration {
    select_wake(iters, meter, label, 60_000_000_000)
}

// ---------------------------------------------------------------------------------
// netpoller wake

/// One end of a socketpair and the number of bytes to bounce.
struct Bouncer {
    fd: c_int,
    count: u64,
}

/// Waits in `gr_block_io` until a byte arrives, reads it (checking it), writes it
/// back; `count` times.
///
/// # Safety
/// `arg` is a `Bouncer` that outlives the goroutine.
unsafe extern "C" fn bounce(arg: *mut c_void) {
    // SAFETY: the spawner keeps the Bouncer alive until it has joined us.
    let b = unsafe { &*(arg as *const Bouncer) };
    for i in 0..b.count {
        let byte = await_byte(b.fd);
        assert_eq!(byte, i as u8, "bounced byte out of order");
        put_byte(b.fd, byte);
    }
}

/// Parks in the netpoller until `fd` is readable, then reads one byte.
fn await_byte(fd: c_int) -> u8 {
    let rc = gr_block_io(fd, GR_READ, -1);
    assert!(rc > 0 && rc & GR_READ != 0, "gr_block_io: {rc}");
    let mut byte = 0u8;
    // SAFETY: one byte into a local.
    let n = unsafe { libc::read(fd, &mut byte as *mut u8 as *mut c_void, 1) };
    assert_eq!(n, 1, "read after readiness");
    byte
}

fn put_byte(fd: c_int, byte: u8) {
    // SAFETY: one byte from a local.
    let n = unsafe { libc::write(fd, &byte as *const u8 as *const c_void, 1) };
    assert_eq!(n, 1, "write");
}

/// Per wake: two goroutines bounce a byte over a socketpair; each waits for it in
/// `gr_block_io` (parked in the netpoller, woken when the scheduler's epoll sees the
/// other side's write). One round trip is two wakes.
fn netpoll_wake(iters: u64, meter: Meter, label: &CString) -> Duration {
    /// # Safety
    /// `arg` is run_main's Job.
    unsafe extern "C" fn body(arg: *mut c_void) {
        // SAFETY: run_main's Job.
        let job = unsafe { job(arg) };
        let mut fds = [0 as c_int; 2];
        // SAFETY: a socketpair into a local array.
        let rc = unsafe {
            libc::socketpair(
                libc::AF_UNIX,
                libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
                0,
                fds.as_mut_ptr(),
            )
        };
        assert_eq!(rc, 0, "socketpair");
        let round_trips = job.iters.div_ceil(2);
        let bouncer = Bouncer {
            fd: fds[1],
            count: round_trips,
        };
        // SAFETY: bounce takes a Bouncer, which lives until the join below.
        let echo = unsafe { spawn(bounce, &bouncer as *const Bouncer as *mut c_void) };
        let r = job.meter.begin();
        for i in 0..round_trips {
            put_byte(fds[0], i as u8);
            assert_eq!(await_byte(fds[0]), i as u8, "byte came back changed");
        }
        let took = r.end(job.label);
        job.took = scale(took, job.iters, 2 * round_trips);
        assert_eq!(gr_join(echo), 0);
        // gr_close: the netpoller forgets the fds before their numbers are reused.
        for fd in fds {
            assert_eq!(gr_close(fd), 0);
        }
    }
    // SAFETY: body takes run_main's Job.
    unsafe { run_main(body, iters, meter, label, 0) }
}
