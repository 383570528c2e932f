//! The fuzz script interpreter: turns any byte string into a bounded script of C API
//! calls (channels, select, wait groups, mutexes, sleeps, spawn/join, gr_block_io on a
//! pipe, gr_close of a pipe waited on) run by several goroutines on the global runtime, checks every return value
//! against the documented ones (docs/api.md) and a cheap model, and aborts the process
//! on a finding. One file, used by the libFuzzer target (fuzz/fuzz_targets) and
//! compiled into the main crate's test tests/fuzz_scripts.rs by #[path], so `make test`
//! replays the same logic without libFuzzer. It needs only the `goroutine` and `libc`
//! crates for that reason (no `arbitrary`: the decoder below is total by hand).
//!
//! Why it is built this way:
//! - Decoding is total: every byte string is a valid script; missing bytes end it.
//!   Programs may spawn only programs with a higher index and a script has at most
//!   `MAX_GOROUTINES`, so every script is finite.
//! - Every wait ends. Timed waits have bounds of at most a millisecond. Untimed ones
//!   (send, recv, select for ever, wg_wait, mutex_lock, join) are made only by a
//!   goroutine holding nothing (no mutex, no wait-group count), so holders always make
//!   progress and release at their end; a goroutine joins only its own children. When
//!   every live goroutine sits in an untimed wait (or after `SOFT_DEADLINE`), the
//!   supervising thread closes every channel, which ends the rest with -EPIPE.
//! - Freeing is legal only when no other party can still be inside a call on the
//!   object (the C contract), so objects are reached through a `Slot`: callers pin it
//!   for the length of their call (and holders of a mutex or of wait-group counts for as
//!   long as they hold), a freer first stops new pins, and frees when the pins are gone
//!   (must be 0) or when the only pinned party is provably parked in the object (must be
//!   -EBUSY; 0 only where that party's own timeout may have taken it out).
//! - Model checks where they are cheap: values carry (sender, seq, channel) with a
//!   checksum and a fill pattern, so a receiver sees each sender's values in order, no
//!   value twice, none corrupted, and at the end sent = received + drained + dropped
//!   per channel; untouched receive buffers and `closed` fields stay untouched; -EPIPE
//!   only after a close; mutual exclusion by an owner word; sleeps and timeouts last
//!   at least as long as asked; goroutine ids match gr_self; nothing is left after an
//!   input (gr_wait_all, gr_stats).

use std::ffi::{c_int, c_void};
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex as StdMutex, Once};
use std::time::{Duration, Instant};

use goroutine::ffi::core::{
    gr_attr, gr_id, gr_init, gr_join, gr_lock_thread, gr_self, gr_spawn, gr_spawn_attr,
    gr_strerror, gr_unlock_thread, gr_wait_all, gr_yield,
};
use goroutine::ffi::debug::{gr_dump, gr_stats};
use goroutine::ffi::io::{gr_block_io, gr_close, gr_sleep, gr_write, GR_READ, GR_WRITE};
use goroutine::ffi::sync::{
    gr_case, gr_chan, gr_chan_cap, gr_chan_close, gr_chan_free, gr_chan_len, gr_chan_new,
    gr_chan_recv, gr_chan_send, gr_chan_try_recv, gr_chan_try_send, gr_mutex, gr_mutex_free,
    gr_mutex_lock, gr_mutex_new, gr_mutex_trylock, gr_mutex_unlock, gr_select, gr_wg, gr_wg_add,
    gr_wg_done, gr_wg_free, gr_wg_new, gr_wg_wait, GR_RECV, GR_SEND,
};
use goroutine::sync::chan::Chan;
use goroutine::sync::mutex::Mutex as GrMutex;
use goroutine::sync::waitgroup::WaitGroup;

use libc::{
    EAGAIN, EBADF, EBUSY, ECANCELED, EDEADLK, EINVAL, ENOMEM, EPERM, EPIPE, ESRCH, ETIMEDOUT,
};

/// Goroutines one script may start (roots included).
pub const MAX_GOROUTINES: usize = 12;
const MAX_PROGRAMS: usize = 8;
const MAX_OPS: usize = 24;
const MAX_CHANS: usize = 4;
const MAX_CASES: usize = 4;
/// Element sizes a channel may have: signal-only, short (pattern only), and long
/// enough to carry (sender, seq, channel, checksum) and a fill pattern.
const ELEM_SIZES: [usize; 6] = [0, 1, 8, 16, 64, 200];
const MAX_ELEM: usize = 200;
/// How long a goroutine holding something waits at most where an untimed wait was asked.
const HOLDER_TIMEOUT_NS: i64 = 300_000;
/// After this the supervisor closes every channel even if goroutines still run.
const SOFT_DEADLINE: Duration = Duration::from_millis(50);
/// How long the timer and fd-waiter counts may lag once every goroutine has gone.
const STATS_SETTLE: Duration = Duration::from_millis(200);
/// An input still running after this is a hang: dump and abort.
const HARD_DEADLINE: Duration = Duration::from_secs(20);
/// Rounds of 10 us a freer waits for the pins on an object to go before giving up.
const FREE_ATTEMPTS: usize = 64;
/// A fresh receive buffer and an untouched `closed` field hold these.
const UNTOUCHED: u8 = 0xEE;
const CLOSED_UNTOUCHED: c_int = 7;

// ---------------------------------------------------------------------------------
// Decoding.

/// A script: the objects of one input and the programs its goroutines run.
#[derive(Debug, Clone)]
pub struct Script {
    pub chans: Vec<ChanSpec>,
    pub wgs: usize,
    pub mutexes: usize,
    /// Programs 0..roots start from the supervising thread; the others by Spawn.
    pub roots: usize,
    pub programs: Vec<Vec<Op>>,
}

#[derive(Debug, Clone, Copy)]
pub struct ChanSpec {
    pub elem_size: usize,
    pub cap: usize,
}

#[derive(Debug, Clone, Copy)]
pub enum Timeout {
    Forever,
    Poll,
    Micros(u32),
}

#[derive(Debug, Clone)]
pub enum Op {
    Yield,
    Sleep {
        us: u32,
    },
    /// Start program `prog` (ignored unless `prog` is after the running one), with a
    /// 64 KiB stack when `small_stack`.
    Spawn {
        prog: usize,
        small_stack: bool,
    },
    /// Join the last child not joined yet.
    Join,
    Send {
        ch: usize,
    },
    Recv {
        ch: usize,
    },
    TrySend {
        ch: usize,
    },
    TryRecv {
        ch: usize,
    },
    /// Cases: (channel, is_send).
    Select {
        cases: Vec<(usize, bool)>,
        timeout: Timeout,
    },
    Close {
        ch: usize,
    },
    FreeChan {
        ch: usize,
    },
    ChanInfo {
        ch: usize,
    },
    WgAdd {
        wg: usize,
        delta: i64,
    },
    WgDone {
        wg: usize,
    },
    WgWait {
        wg: usize,
    },
    FreeWg {
        wg: usize,
    },
    Lock {
        m: usize,
    },
    TryLock {
        m: usize,
    },
    Unlock {
        m: usize,
    },
    FreeMutex {
        m: usize,
    },
    BlockIo {
        write: bool,
        timeout_us: u32,
    },
    PipePut,
    PipeTake,
    /// Make a private pipe, start a goroutine waiting in gr_block_io on its read end,
    /// then (after `delay_us`, having written a byte if `write_first`) gr_close both
    /// ends: the waiter sees readiness, -ETIMEDOUT, -ECANCELED, or -EBADF.
    CancelIo {
        write_first: bool,
        delay_us: u32,
    },
    /// A call with bad arguments that must fail with its documented code.
    /// gr_lock_thread (up to 2 deep) or gr_unlock_thread; while locked, the goroutine
    /// must stay on its thread across every later op.
    ThreadLock {
        lock: bool,
    },
    BadArgs {
        which: u8,
    },
}

/// A cursor over the input: bytes past the end read as "end of script".
struct Input<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Input<'_> {
    fn byte(&mut self) -> Option<u8> {
        let b = self.data.get(self.pos).copied();
        self.pos += 1;
        b
    }
    fn below(&mut self, n: usize) -> Option<usize> {
        self.byte().map(|b| b as usize % n)
    }
}

impl Script {
    /// Decodes any byte string; None when too short to name any goroutine.
    pub fn decode(data: &[u8]) -> Option<Script> {
        let mut inp = Input { data, pos: 0 };
        let nchans = 1 + inp.below(MAX_CHANS)?;
        let mut chans = Vec::new();
        for _ in 0..nchans {
            let b = inp.byte()? as usize;
            chans.push(ChanSpec {
                elem_size: ELEM_SIZES[b % ELEM_SIZES.len()],
                cap: (b / ELEM_SIZES.len()) % 4,
            });
        }
        let b = inp.byte()? as usize;
        let (wgs, mutexes) = (b % 3, (b / 3) % 3);
        let nprograms = 1 + inp.below(MAX_PROGRAMS)?;
        let roots = 1 + inp.below(nprograms.min(4))?;
        let mut programs = Vec::new();
        'programs: for _ in 0..nprograms {
            let Some(len) = inp.below(MAX_OPS + 1) else {
                break;
            };
            let mut ops = Vec::new();
            for _ in 0..len {
                match decode_op(&mut inp, nchans, wgs, mutexes) {
                    Some(op) => ops.push(op),
                    None => {
                        programs.push(ops);
                        break 'programs;
                    }
                }
            }
            programs.push(ops);
        }
        if programs.is_empty() {
            return None;
        }
        let roots = roots.min(programs.len());
        Some(Script {
            chans,
            wgs,
            mutexes,
            roots,
            programs,
        })
    }
}

fn decode_op(inp: &mut Input, nchans: usize, wgs: usize, mutexes: usize) -> Option<Op> {
    let tag = inp.byte()?;
    let ch = |inp: &mut Input| inp.below(nchans);
    // Ops on wait groups or mutexes of a script that has none become yields.
    let wg = |inp: &mut Input| {
        if wgs == 0 {
            inp.byte().map(|_| usize::MAX)
        } else {
            inp.below(wgs)
        }
    };
    let mx = |inp: &mut Input| {
        if mutexes == 0 {
            inp.byte().map(|_| usize::MAX)
        } else {
            inp.below(mutexes)
        }
    };
    let op = match tag % 26 {
        0 => Op::Yield,
        1 => Op::Sleep {
            us: inp.byte()? as u32 % 200,
        },
        2 => {
            let b = inp.byte()? as usize;
            Op::Spawn {
                prog: b % MAX_PROGRAMS,
                small_stack: b >= 128,
            }
        }
        3 => Op::Join,
        4 => Op::Send { ch: ch(inp)? },
        5 => Op::Recv { ch: ch(inp)? },
        6 => Op::TrySend { ch: ch(inp)? },
        7 => Op::TryRecv { ch: ch(inp)? },
        8 | 9 => {
            let b = inp.byte()? as usize;
            let n = b % (MAX_CASES + 1);
            let timeout = match (b / 8) % 4 {
                0 => Timeout::Forever,
                1 => Timeout::Poll,
                _ => Timeout::Micros(1 + (inp.byte()? as u32 % 250) * 2),
            };
            let mut cases = Vec::new();
            for _ in 0..n {
                let c = inp.byte()? as usize;
                cases.push((c % nchans, c / nchans % 2 == 0));
            }
            Op::Select { cases, timeout }
        }
        10 => Op::Close { ch: ch(inp)? },
        11 => Op::FreeChan { ch: ch(inp)? },
        12 => Op::ChanInfo { ch: ch(inp)? },
        13 => {
            let b = inp.byte()? as usize;
            Op::WgAdd {
                wg: if wgs == 0 { usize::MAX } else { b % wgs },
                delta: 1 + (b / 4 % 3) as i64,
            }
        }
        14 => Op::WgDone { wg: wg(inp)? },
        15 => Op::WgWait { wg: wg(inp)? },
        16 => Op::FreeWg { wg: wg(inp)? },
        17 => Op::Lock { m: mx(inp)? },
        18 => Op::TryLock { m: mx(inp)? },
        19 | 20 => Op::Unlock { m: mx(inp)? },
        21 => Op::FreeMutex { m: mx(inp)? },
        22 => {
            let b = inp.byte()?;
            Op::BlockIo {
                write: b & 1 == 1,
                timeout_us: (b as u32 >> 1) * 4,
            }
        }
        23 => match inp.byte()? {
            b if b & 1 == 0 => Op::PipePut,
            b if b & 3 == 1 => Op::PipeTake,
            b => Op::CancelIo {
                write_first: b & 4 != 0,
                delay_us: (b as u32 >> 3) * 8,
            },
        },
        24 => Op::BadArgs { which: inp.byte()? },
        _ => Op::ThreadLock {
            lock: inp.byte()? & 1 == 0,
        },
    };
    Some(op)
}

// ---------------------------------------------------------------------------------
// Counting what ran (for the regression test's report: which paths a run reached).

/// Events counted over the process, named by `EVENT_NAMES`.
#[derive(Clone, Copy)]
pub enum Event {
    Calls,
    Sent,
    Received,
    Epipe,
    Eagain,
    TimedOut,
    SelectFiredClosed,
    FreedIdle,
    FreeBusy,
    FreedParked,
    FreeGaveUp,
    LockedContended,
    SupervisorClosed,
    Canceled,
    StatsLagged,
}
pub const EVENT_NAMES: [&str; 15] = [
    "calls checked",
    "values sent",
    "values received",
    "-EPIPE",
    "-EAGAIN",
    "-ETIMEDOUT",
    "select fired on close",
    "freed idle",
    "free -EBUSY (party parked)",
    "freed with a party just gone",
    "free gave up (busy too long)",
    "mutex lock waited",
    "channels closed by the supervisor",
    "gr_block_io woken by gr_close",
    "stats polls before timers/fd waiters reached 0",
];
static EVENTS: [AtomicU64; 15] = [const { AtomicU64::new(0) }; 15];

fn count(e: Event) {
    EVENTS[e as usize].fetch_add(1, Ordering::Relaxed);
}

/// The event counts so far, with their names.
pub fn events() -> Vec<(&'static str, u64)> {
    EVENT_NAMES
        .iter()
        .zip(&EVENTS)
        .map(|(n, c)| (*n, c.load(Ordering::Relaxed)))
        .collect()
}

// ---------------------------------------------------------------------------------
// Failing.

static CURRENT_INPUT: StdMutex<Vec<u8>> = StdMutex::new(Vec::new());

/// A finding: say what broke and on which input, then abort (libFuzzer saves the
/// input as a crash; a test process dies with the message). Written to the stderr
/// handle, not with `eprintln!`: libtest captures that macro's output in a test that
/// runs without --nocapture and loses it when the process aborts.
#[cold]
fn fail(msg: &str) -> ! {
    let input = CURRENT_INPUT.lock().map(|v| v.clone()).unwrap_or_default();
    let hex: String = input
        .iter()
        .take(4096)
        .map(|b| format!("{b:02x}"))
        .collect();
    let _ = writeln!(
        std::io::stderr(),
        "fuzz script finding: {msg}\n  goroutine {}\n  input ({} bytes): {hex}",
        gr_self(),
        input.len()
    );
    std::process::abort();
}

fn errname(rc: i64) -> String {
    // SAFETY: gr_strerror returns a static NUL-terminated string.
    let s = unsafe { std::ffi::CStr::from_ptr(gr_strerror(rc as c_int)) };
    s.to_string_lossy().into_owned()
}

/// The call returned one of the codes it may return, or it is a finding.
fn expect(call: &str, rc: i64, allowed: &[c_int]) {
    count(Event::Calls);
    match rc as c_int {
        r if r == -EPIPE => count(Event::Epipe),
        r if r == -EAGAIN => count(Event::Eagain),
        r if r == -ETIMEDOUT => count(Event::TimedOut),
        _ => {}
    }
    if !allowed.iter().any(|&a| a as i64 == rc) {
        fail(&format!(
            "{call} returned {rc} ({}), documented: {allowed:?}",
            errname(rc)
        ));
    }
}

fn check(cond: bool, what: impl FnOnce() -> String) {
    if !cond {
        fail(&what());
    }
}

// ---------------------------------------------------------------------------------
// Objects and their slots.

const FREED: u32 = 1 << 31;
const CLOSING: u32 = 1 << 30;
const PINS: u32 = CLOSING - 1;

/// Who may call into an object: pinned callers; a freer stops new pins (CLOSING)
/// and frees once it may (FREED: nobody calls again).
#[derive(Default)]
struct Slot {
    state: AtomicU32,
    /// Pinned parties inside a call that may park on the object.
    blocking: AtomicU32,
}

impl Slot {
    fn pin(&self) -> bool {
        let mut s = self.state.load(Ordering::SeqCst);
        loop {
            if s & (FREED | CLOSING) != 0 {
                return false;
            }
            match self
                .state
                .compare_exchange(s, s + 1, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => return true,
                Err(now) => s = now,
            }
        }
    }
    fn unpin(&self) {
        let prev = self.state.fetch_sub(1, Ordering::SeqCst);
        check(prev & PINS > 0, || "harness: unpin without a pin".into());
    }
    fn pins(&self) -> u32 {
        self.state.load(Ordering::SeqCst) & PINS
    }
    fn is_freed(&self) -> bool {
        self.state.load(Ordering::SeqCst) & FREED != 0
    }
    /// Stops new pins; false when another freer got there first or it is freed.
    fn start_closing(&self) -> bool {
        let prev = self.state.fetch_or(CLOSING, Ordering::SeqCst);
        if prev & (CLOSING | FREED) != 0 {
            if prev & CLOSING == 0 {
                // It was freed: put nothing back (FREED already stops pins).
                self.state.fetch_and(!CLOSING, Ordering::SeqCst);
            }
            return false;
        }
        true
    }
    fn stop_closing(&self) {
        self.state.fetch_and(!CLOSING, Ordering::SeqCst);
    }
    fn mark_freed(&self) {
        self.state.store(FREED, Ordering::SeqCst);
    }
    fn enter_blocking(&self) {
        self.blocking.fetch_add(1, Ordering::SeqCst);
    }
    fn leave_blocking(&self) {
        self.blocking.fetch_sub(1, Ordering::SeqCst);
    }
}

struct ChanState {
    slot: Slot,
    ptr: *mut gr_chan,
    spec: ChanSpec,
    close_attempted: AtomicBool,
    closes_ok: AtomicU32,
    /// (sender, seq) of values sent (send returned 0) and received, for channels
    /// whose elements carry them; plain counts for the others.
    sent: StdMutex<Vec<(u16, u32)>>,
    received: StdMutex<Vec<(u16, u32)>>,
    sent_count: AtomicU64,
    received_count: AtomicU64,
    /// Values still buffered when the channel was freed.
    dropped: AtomicU64,
}

struct WgState {
    slot: Slot,
    ptr: *mut gr_wg,
}

struct MutexState {
    slot: Slot,
    ptr: *mut gr_mutex,
    /// 0, or the goroutine index + 1 of the holder (set after lock, cleared before
    /// unlock): two holders at once is a finding.
    owner: AtomicUsize,
}

/// Everything one input's goroutines share. Lives on the supervising thread's stack
/// until every goroutine of the input has ended.
struct Shared {
    script: Script,
    features: Features,
    chans: Vec<ChanState>,
    wgs: Vec<WgState>,
    mutexes: Vec<MutexState>,
    /// [read end, write end], non-blocking.
    pipe: [c_int; 2],
    pipe_put: AtomicU64,
    pipe_taken: AtomicU64,
    /// Goroutines of the input not finished (counted before their spawn).
    running: AtomicUsize,
    /// Of those, how many sit in an untimed wait.
    waiting: AtomicUsize,
    /// Goroutine indices handed out (roots included).
    started: AtomicUsize,
    spawn_ids: Vec<AtomicI64>,
    self_ids: Vec<AtomicI64>,
}

// SAFETY: the raw object pointers are shared on purpose: the library's objects are
// made for concurrent use, and the slots above keep calls and frees apart.
unsafe impl Sync for Shared {}
// SAFETY: as for Sync: nothing in Shared is tied to the thread that made it (the
// handles are the library's, usable from any thread).
unsafe impl Send for Shared {}

impl Shared {
    fn new(script: Script, features: Features) -> Shared {
        let chans = script
            .chans
            .iter()
            .map(|&spec| {
                let ptr = gr_chan_new(spec.elem_size, spec.cap);
                check(!ptr.is_null(), || {
                    format!(
                        "gr_chan_new({}, {}) returned NULL",
                        spec.elem_size, spec.cap
                    )
                });
                ChanState {
                    slot: Slot::default(),
                    ptr,
                    spec,
                    close_attempted: AtomicBool::new(false),
                    closes_ok: AtomicU32::new(0),
                    sent: StdMutex::new(Vec::new()),
                    received: StdMutex::new(Vec::new()),
                    sent_count: AtomicU64::new(0),
                    received_count: AtomicU64::new(0),
                    dropped: AtomicU64::new(0),
                }
            })
            .collect();
        let wgs = (0..script.wgs)
            .map(|_| {
                let ptr = gr_wg_new();
                check(!ptr.is_null(), || "gr_wg_new returned NULL".into());
                WgState {
                    slot: Slot::default(),
                    ptr,
                }
            })
            .collect();
        let mutexes = (0..script.mutexes)
            .map(|_| {
                let ptr = gr_mutex_new();
                check(!ptr.is_null(), || "gr_mutex_new returned NULL".into());
                MutexState {
                    slot: Slot::default(),
                    ptr,
                    owner: AtomicUsize::new(0),
                }
            })
            .collect();
        let mut pipe = [-1; 2];
        // SAFETY: pipe2 writes two fds into the array.
        let rc = unsafe { libc::pipe2(pipe.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) };
        check(rc == 0, || "harness: pipe2 failed".into());
        Shared {
            script,
            features,
            chans,
            wgs,
            mutexes,
            pipe,
            pipe_put: AtomicU64::new(0),
            pipe_taken: AtomicU64::new(0),
            running: AtomicUsize::new(0),
            waiting: AtomicUsize::new(0),
            started: AtomicUsize::new(0),
            spawn_ids: (0..MAX_GOROUTINES).map(|_| AtomicI64::new(0)).collect(),
            self_ids: (0..MAX_GOROUTINES).map(|_| AtomicI64::new(0)).collect(),
        }
    }
}

// ---------------------------------------------------------------------------------
// Channel values.

/// Writes value (sender, seq) for channel `ch` into `buf` (the element).
fn make_value(buf: &mut [u8], ch: usize, sender: u16, seq: u32) {
    if buf.len() < 8 {
        buf.fill(0xC0 | ch as u8);
        return;
    }
    buf[0..2].copy_from_slice(&sender.to_le_bytes());
    buf[2..6].copy_from_slice(&seq.to_le_bytes());
    buf[6] = ch as u8;
    buf[7] = buf[..7].iter().fold(0xA5, |a, b| a ^ b);
    for (i, b) in buf.iter_mut().enumerate().skip(8) {
        *b = (seq as u8).wrapping_mul(31).wrapping_add(i as u8) ^ sender as u8;
    }
}

/// Checks a received element; returns (sender, seq) for elements that carry them.
fn check_value(buf: &[u8], ch: usize) -> Option<(u16, u32)> {
    if buf.len() < 8 {
        check(buf.iter().all(|&b| b == 0xC0 | ch as u8), || {
            format!("chan {ch}: corrupt short value {buf:02x?}")
        });
        return None;
    }
    let sender = u16::from_le_bytes([buf[0], buf[1]]);
    let seq = u32::from_le_bytes([buf[2], buf[3], buf[4], buf[5]]);
    let mut want = vec![0u8; buf.len()];
    make_value(&mut want, ch, sender, seq);
    check(want == buf, || {
        format!(
            "chan {ch}: corrupt or foreign value {:02x?}",
            &buf[..buf.len().min(16)]
        )
    });
    Some((sender, seq))
}

/// The calling OS thread's id (a system call: no thread-local caching across parks).
fn gettid() -> i64 {
    // SAFETY: gettid has no arguments and cannot fail.
    unsafe { libc::syscall(libc::SYS_gettid) }
}

fn untouched(buf: &[u8]) -> bool {
    buf.iter().all(|&b| b == UNTOUCHED)
}

// ---------------------------------------------------------------------------------
// One goroutine.

/// What one goroutine of the script holds and has seen.
struct Local<'a> {
    sh: &'a Shared,
    gidx: usize,
    prog: usize,
    next_seq: u32,
    /// Last seq received per (channel, sender): each sender's values arrive in order.
    last_seq: [[Option<u32>; MAX_GOROUTINES]; MAX_CHANS],
    held: Vec<bool>,
    /// Wait-group counts added and not yet done (a pin on the slot while > 0).
    wg_units: Vec<i64>,
    children: Vec<gr_id>,
    /// gr_lock_thread depth, and the thread (gettid) it was locked to.
    thread_locks: u32,
    locked_tid: i64,
}

impl Local<'_> {
    fn holds_anything(&self) -> bool {
        self.held.iter().any(|&h| h) || self.wg_units.iter().any(|&u| u > 0)
    }

    fn value(&mut self, ch: usize, buf: &mut [u8]) -> (u16, u32) {
        let seq = self.next_seq;
        self.next_seq += 1;
        make_value(buf, ch, self.gidx as u16, seq);
        (self.gidx as u16, seq)
    }

    fn record_sent(&self, ch: usize, id: (u16, u32)) {
        count(Event::Sent);
        let c = &self.sh.chans[ch];
        c.sent_count.fetch_add(1, Ordering::SeqCst);
        if c.spec.elem_size >= 8 {
            c.sent.lock().unwrap().push(id);
        }
    }

    fn record_received(&mut self, ch: usize, buf: &[u8]) {
        count(Event::Received);
        let c = &self.sh.chans[ch];
        c.received_count.fetch_add(1, Ordering::SeqCst);
        if let Some((sender, seq)) = check_value(buf, ch) {
            check((sender as usize) < MAX_GOROUTINES, || {
                format!("chan {ch}: value from sender {sender}")
            });
            let last = &mut self.last_seq[ch][sender as usize];
            check(last.is_none_or(|l| seq > l), || {
                format!("chan {ch}: from sender {sender} got seq {seq} after {last:?} (order/duplicate)")
            });
            *last = Some(seq);
            c.received.lock().unwrap().push((sender, seq));
        }
    }

    fn run(&mut self) {
        let sh = self.sh;
        let ops = &sh.script.programs[self.prog];
        for op in ops {
            self.op(op);
            if self.thread_locks > 0 {
                let tid = gettid();
                check(tid == self.locked_tid, || {
                    format!(
                        "locked to thread {} by gr_lock_thread, ran on {tid} after {op:?}",
                        self.locked_tid
                    )
                });
            }
        }
        while self.thread_locks > 0 {
            self.thread_lock(false);
        }
        // Release what is held, so that everyone waiting on it ends.
        for m in 0..self.held.len() {
            if self.held[m] {
                self.unlock(m);
            }
        }
        for w in 0..self.wg_units.len() {
            while self.wg_units[w] > 0 {
                self.wg_done(w);
            }
        }
    }

    fn op(&mut self, op: &Op) {
        let sh = self.sh;
        match *op {
            Op::Yield => gr_yield(),
            Op::Sleep { us } => {
                let t0 = Instant::now();
                let rc = gr_sleep(us as i64 * 1000);
                expect("gr_sleep", rc as i64, &[0]);
                let took = t0.elapsed();
                check(took >= Duration::from_micros(us as u64), || {
                    format!("gr_sleep({us} us) returned after {took:?}")
                });
            }
            Op::Spawn { prog, small_stack } => self.spawn(prog, small_stack),
            Op::Join => {
                if self.holds_anything() {
                    return;
                }
                let Some(id) = self.children.pop() else {
                    return;
                };
                sh.waiting.fetch_add(1, Ordering::SeqCst);
                let rc = gr_join(id);
                sh.waiting.fetch_sub(1, Ordering::SeqCst);
                expect("gr_join(child)", rc as i64, &[0]);
            }
            Op::Send { ch } => {
                if self.holds_anything() {
                    self.select(&[(ch, true)], HOLDER_TIMEOUT_NS);
                } else {
                    self.send(ch, true);
                }
            }
            Op::Recv { ch } => {
                if self.holds_anything() {
                    self.select(&[(ch, false)], HOLDER_TIMEOUT_NS);
                } else {
                    self.recv(ch, true);
                }
            }
            Op::TrySend { ch } => self.send(ch, false),
            Op::TryRecv { ch } => self.recv(ch, false),
            Op::Select { ref cases, timeout } => {
                let ns = match timeout {
                    Timeout::Forever if self.holds_anything() => HOLDER_TIMEOUT_NS,
                    Timeout::Forever => -1,
                    Timeout::Poll => 0,
                    Timeout::Micros(us) => us as i64 * 1000,
                };
                self.select(cases, ns);
            }
            Op::Close { ch } => {
                let c = &sh.chans[ch];
                if c.slot.pin() {
                    close_chan(c);
                    c.slot.unpin();
                }
            }
            Op::FreeChan { ch } => self.free_chan(ch),
            Op::ChanInfo { ch } => {
                let c = &sh.chans[ch];
                if c.slot.pin() {
                    // SAFETY: the slot is pinned, so the channel is live for the call.
                    let (len, cap) = unsafe { (gr_chan_len(c.ptr), gr_chan_cap(c.ptr)) };
                    c.slot.unpin();
                    check(cap == c.spec.cap && len <= cap, || {
                        format!("chan {ch}: gr_chan_len {len}, gr_chan_cap {cap}, made with capacity {}", c.spec.cap)
                    });
                }
            }
            Op::WgAdd { wg, delta } => self.wg_add(wg, delta),
            Op::WgDone { wg } => {
                if wg < self.wg_units.len() && self.wg_units[wg] > 0 {
                    self.wg_done(wg);
                }
            }
            Op::WgWait { wg } => self.wg_wait(wg),
            Op::FreeWg { wg } => self.free_wg(wg),
            Op::Lock { m } => self.lock(m, true),
            Op::TryLock { m } => self.lock(m, false),
            Op::Unlock { m } => {
                if m < self.held.len() && self.held[m] {
                    self.unlock(m);
                }
            }
            Op::FreeMutex { m } => self.free_mutex(m),
            Op::BlockIo { write, timeout_us } => {
                let (fd, ev) = if write {
                    (sh.pipe[1], GR_WRITE)
                } else {
                    (sh.pipe[0], GR_READ)
                };
                let ns = timeout_us as i64 * 1000;
                let t0 = Instant::now();
                let rc = gr_block_io(fd, ev, ns);
                let took = t0.elapsed();
                if write {
                    // The pipe never fills (a script writes a few hundred bytes at most).
                    check(rc > 0 && rc & GR_WRITE != 0, || {
                        format!("gr_block_io(pipe, GR_WRITE) returned {rc}")
                    });
                } else if rc < 0 {
                    expect("gr_block_io(pipe, GR_READ)", rc as i64, &[-ETIMEDOUT]);
                    check(took >= Duration::from_nanos(ns as u64), || {
                        format!("gr_block_io timed out after {took:?}, timeout {ns} ns")
                    });
                } else {
                    check(rc & GR_READ != 0 && rc & !(GR_READ | GR_WRITE) == 0, || {
                        format!("gr_block_io(pipe, GR_READ) returned mask {rc}")
                    });
                }
            }
            Op::PipePut => {
                sh.pipe_put.fetch_add(1, Ordering::SeqCst);
                let b = 0x42u8;
                // SAFETY: one readable byte, a local.
                let rc = unsafe { gr_write(sh.pipe[1], &b as *const u8 as *const c_void, 1) };
                expect("gr_write(pipe, 1 byte)", rc as i64, &[1]);
            }
            Op::PipeTake => {
                let rc = gr_block_io(sh.pipe[0], GR_READ, 200_000);
                if rc > 0 {
                    let mut b = 0u8;
                    // SAFETY: one byte into a local.
                    let n = unsafe { libc::read(sh.pipe[0], &mut b as *mut u8 as *mut c_void, 1) };
                    if n == 1 {
                        check(b == 0x42, || format!("pipe: read byte {b:#x}"));
                        sh.pipe_taken.fetch_add(1, Ordering::SeqCst);
                    } else {
                        let e = std::io::Error::last_os_error().raw_os_error();
                        check(n == -1 && e == Some(EAGAIN), || {
                            format!("pipe read: {n} ({e:?})")
                        });
                    }
                } else {
                    expect(
                        "gr_block_io(pipe, GR_READ, 200 us)",
                        rc as i64,
                        &[-ETIMEDOUT],
                    );
                }
            }
            Op::CancelIo {
                write_first,
                delay_us,
            } => self.cancel_io(write_first, delay_us),
            Op::ThreadLock { .. } if !sh.features.thread_lock => gr_yield(),
            Op::ThreadLock { lock } => self.thread_lock(lock),
            Op::BadArgs { which } => self.bad_args(which),
        }
    }

    fn thread_lock(&mut self, lock: bool) {
        if lock {
            if self.thread_locks < 2 {
                expect("gr_lock_thread", gr_lock_thread() as i64, &[0]);
                if self.thread_locks == 0 {
                    self.locked_tid = gettid();
                }
                self.thread_locks += 1;
            }
        } else if self.thread_locks > 0 {
            expect("gr_unlock_thread", gr_unlock_thread() as i64, &[0]);
            self.thread_locks -= 1;
        } else {
            expect(
                "gr_unlock_thread (not locked)",
                gr_unlock_thread() as i64,
                &[-EPERM],
            );
        }
    }

    fn cancel_io(&mut self, write_first: bool, delay_us: u32) {
        let sh = self.sh;
        let gidx = sh.started.fetch_add(1, Ordering::SeqCst);
        if gidx >= MAX_GOROUTINES {
            sh.started.fetch_sub(1, Ordering::SeqCst);
            return;
        }
        let mut p = [-1; 2];
        // SAFETY: pipe2 writes two fds into the array.
        let rc = unsafe { libc::pipe2(p.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) };
        check(rc == 0, || "harness: pipe2 failed".into());
        sh.running.fetch_add(1, Ordering::SeqCst);
        let arg = Box::into_raw(Box::new(IoWaiterArg {
            shared: sh as *const Shared,
            fd: p[0],
        }));
        let f: unsafe extern "C" fn(*mut c_void) = io_waiter_main;
        // SAFETY: io_waiter_main takes its IoWaiterArg box (and frees it), on any
        // thread; Shared outlives every goroutine of the input.
        let id = unsafe { gr_spawn(Some(f), arg as *mut c_void) };
        if id < 0 {
            expect("gr_spawn (io waiter)", id, &[-ENOMEM, -EAGAIN]);
            // SAFETY: not started: the box is still ours.
            drop(unsafe { Box::from_raw(arg) });
            sh.running.fetch_sub(1, Ordering::SeqCst);
        }
        if delay_us > 0 {
            expect("gr_sleep", gr_sleep(delay_us as i64 * 1000) as i64, &[0]);
        } else {
            gr_yield();
        }
        if write_first {
            let b = 1u8;
            // SAFETY: one readable byte, a local.
            let rc = unsafe { gr_write(p[1], &b as *const u8 as *const c_void, 1) };
            expect("gr_write(private pipe)", rc as i64, &[1]);
        }
        expect("gr_close(read end, waited on)", gr_close(p[0]) as i64, &[0]);
        expect("gr_close(write end)", gr_close(p[1]) as i64, &[0]);
    }

    fn spawn(&mut self, prog: usize, small_stack: bool) {
        let sh = self.sh;
        if prog <= self.prog || prog >= sh.script.programs.len() {
            return;
        }
        let gidx = sh.started.fetch_add(1, Ordering::SeqCst);
        if gidx >= MAX_GOROUTINES {
            sh.started.fetch_sub(1, Ordering::SeqCst);
            return;
        }
        if let Some(id) = start_goroutine(sh, prog, gidx, small_stack) {
            self.children.push(id);
        }
    }

    /// Makes an untimed call that may park on the object in `slot`, counted as such
    /// (`blocking` for the free protocol, `waiting` for the supervisor).
    fn untimed_wait(&self, slot: &Slot, call: impl FnOnce() -> c_int) -> c_int {
        slot.enter_blocking();
        self.sh.waiting.fetch_add(1, Ordering::SeqCst);
        let rc = call();
        self.sh.waiting.fetch_sub(1, Ordering::SeqCst);
        slot.leave_blocking();
        rc
    }

    fn send(&mut self, ch: usize, block: bool) {
        let c = &self.sh.chans[ch];
        if !c.slot.pin() {
            return;
        }
        let mut buf = [0u8; MAX_ELEM];
        let elem = &mut buf[..c.spec.elem_size];
        let id = self.value(ch, elem);
        let p = elem.as_ptr() as *const c_void;
        let rc = if block {
            // SAFETY: the slot is pinned, so the channel is live for the call, and p is an element of its size (buf, alive across the
            // call).
            self.untimed_wait(&c.slot, || unsafe { gr_chan_send(c.ptr, p) })
        } else {
            // SAFETY: as for the blocking send.
            unsafe { gr_chan_try_send(c.ptr, p) }
        };
        check_transfer(ch, c, "send", block, rc);
        if rc == 0 {
            self.record_sent(ch, id);
        }
        c.slot.unpin();
    }

    fn recv(&mut self, ch: usize, block: bool) {
        let c = &self.sh.chans[ch];
        if !c.slot.pin() {
            return;
        }
        let mut buf = [UNTOUCHED; MAX_ELEM];
        let elem = &mut buf[..c.spec.elem_size];
        let p = elem.as_mut_ptr() as *mut c_void;
        let rc = if block {
            // SAFETY: the slot is pinned, so the channel is live for the call, and p is a writable element of its size (buf, alive
            // across the call).
            self.untimed_wait(&c.slot, || unsafe { gr_chan_recv(c.ptr, p) })
        } else {
            // SAFETY: as for the blocking receive.
            unsafe { gr_chan_try_recv(c.ptr, p) }
        };
        check_transfer(ch, c, "recv", block, rc);
        if rc == 0 {
            self.record_received(ch, elem);
        } else {
            check(untouched(elem), || {
                format!("chan {ch}: a failed receive ({rc}) wrote the element")
            });
        }
        c.slot.unpin();
    }

    fn select(&mut self, cases: &[(usize, bool)], timeout_ns: i64) {
        let sh = self.sh;
        // Pin each channel once; a case on a channel being freed drops the whole op.
        let mut pinned: Vec<usize> = Vec::new();
        for &(ch, _) in cases {
            if pinned.contains(&ch) {
                continue;
            }
            if !sh.chans[ch].slot.pin() {
                for &p in &pinned {
                    sh.chans[p].slot.unpin();
                }
                return;
            }
            pinned.push(ch);
        }
        let mut bufs = [[UNTOUCHED; MAX_ELEM]; MAX_CASES];
        let mut ids = [(0u16, 0u32); MAX_CASES];
        let mut gcases: Vec<gr_case> = Vec::with_capacity(cases.len());
        for (i, &(ch, is_send)) in cases.iter().enumerate() {
            let size = sh.chans[ch].spec.elem_size;
            if is_send {
                ids[i] = self.value(ch, &mut bufs[i][..size]);
            }
            gcases.push(gr_case {
                chan: sh.chans[ch].ptr,
                op: if is_send { GR_SEND } else { GR_RECV },
                elem: bufs[i].as_mut_ptr() as *mut c_void,
                closed: CLOSED_UNTOUCHED,
            });
        }
        if timeout_ns != 0 {
            for &p in &pinned {
                sh.chans[p].slot.enter_blocking();
            }
        }
        if timeout_ns < 0 {
            sh.waiting.fetch_add(1, Ordering::SeqCst);
        }
        let t0 = Instant::now();
        // SAFETY: every case's channel is pinned (live for the call), and its elem is
        // a buffer of MAX_ELEM bytes in `bufs`, alive across the call.
        let rc = unsafe { gr_select(gcases.as_mut_ptr(), gcases.len(), timeout_ns) };
        let took = t0.elapsed();
        if timeout_ns < 0 {
            sh.waiting.fetch_sub(1, Ordering::SeqCst);
        }
        if timeout_ns != 0 {
            for &p in &pinned {
                sh.chans[p].slot.leave_blocking();
            }
        }
        let n = cases.len();
        let name = || format!("gr_select({n} cases, timeout {timeout_ns})");
        if n == 0 && timeout_ns < 0 {
            expect(&name(), rc as i64, &[-EINVAL]);
        } else if rc < 0 {
            let allowed: &[c_int] = match timeout_ns {
                0 => &[-EAGAIN],
                t if t > 0 => &[-ETIMEDOUT],
                _ => &[],
            };
            expect(&name(), rc as i64, allowed);
            if timeout_ns > 0 {
                check(took >= Duration::from_nanos(timeout_ns as u64), || {
                    format!("{} timed out after {took:?}", name())
                });
            }
        } else {
            check((rc as usize) < n, || {
                format!("{} returned index {rc}", name())
            });
        }
        for (i, &(ch, is_send)) in cases.iter().enumerate() {
            let c = &sh.chans[ch];
            let elem = &bufs[i][..c.spec.elem_size];
            if i as c_int != rc {
                check(gcases[i].closed == CLOSED_UNTOUCHED, || {
                    format!("{}: case {i} (not fired) got closed written", name())
                });
                if !is_send {
                    check(untouched(elem), || {
                        format!("{}: case {i} (not fired) got its element written", name())
                    });
                }
                continue;
            }
            let closed = gcases[i].closed;
            check(closed == 0 || closed == 1, || {
                format!("{}: fired case {i} has closed = {closed}", name())
            });
            if closed == 1 {
                count(Event::SelectFiredClosed);
                check(c.close_attempted.load(Ordering::SeqCst), || {
                    format!(
                        "{}: case {i} fired closed on chan {ch}, never closed",
                        name()
                    )
                });
                if !is_send {
                    check(untouched(elem), || {
                        format!("{}: closed receive case {i} wrote its element", name())
                    });
                }
            } else if is_send {
                self.record_sent(ch, ids[i]);
            } else {
                self.record_received(ch, elem);
            }
        }
        for &p in &pinned {
            sh.chans[p].slot.unpin();
        }
    }

    fn free_chan(&mut self, ch: usize) {
        let c = &self.sh.chans[ch];
        // SAFETY: free_object calls this only while the slot is not FREED and this
        // freer holds CLOSING, so the channel is live.
        let chan = || unsafe { &*(c.ptr as *const Chan) };
        let mut len_before = 0;
        free_object(
            &c.slot,
            "gr_chan_free",
            || chan().has_waiters(),
            // SAFETY: free_object calls this only when the channel may be freed: live,
            // nobody inside a call but (at most) one party parked in it.
            || unsafe {
                len_before = gr_chan_len(c.ptr) as u64;
                gr_chan_free(c.ptr)
            },
            // A parked party may leave by its own timeout just before the free.
            &[0, -EBUSY],
        );
        if c.slot.is_freed() && len_before > 0 {
            c.dropped.fetch_add(len_before, Ordering::SeqCst);
        }
    }

    fn wg_add(&mut self, wg: usize, delta: i64) {
        let Some(w) = self.sh.wgs.get(wg) else { return };
        if self.wg_units[wg] == 0 && !w.slot.pin() {
            return;
        }
        // SAFETY: the slot is pinned (by this call, or by our own count), so the wait
        // group is live.
        let rc = unsafe { gr_wg_add(w.ptr, delta) };
        expect("gr_wg_add", rc as i64, &[0]);
        self.wg_units[wg] += delta;
    }

    fn wg_done(&mut self, wg: usize) {
        let w = &self.sh.wgs[wg];
        // SAFETY: our own count keeps the slot pinned, so the wait group is live.
        let rc = unsafe { gr_wg_done(w.ptr) };
        expect("gr_wg_done (own count)", rc as i64, &[0]);
        self.wg_units[wg] -= 1;
        if self.wg_units[wg] == 0 {
            w.slot.unpin();
        }
    }

    fn wg_wait(&mut self, wg: usize) {
        let Some(w) = self.sh.wgs.get(wg) else { return };
        if self.holds_anything() || !w.slot.pin() {
            return;
        }
        // SAFETY: the slot is pinned, so the wait group is live.
        let rc = self.untimed_wait(&w.slot, || unsafe { gr_wg_wait(w.ptr) });
        expect("gr_wg_wait", rc as i64, &[0]);
        // A count far above anything added is refused and changes nothing.
        // SAFETY: still pinned.
        let rc = unsafe { gr_wg_add(w.ptr, -(1 << 40)) };
        expect("gr_wg_add(-2^40)", rc as i64, &[-EINVAL]);
        w.slot.unpin();
    }

    fn free_wg(&mut self, wg: usize) {
        let Some(w) = self.sh.wgs.get(wg) else { return };
        if self.wg_units[wg] > 0 {
            // Our own count pins it: freeing would pull it from under our done.
            return;
        }
        // SAFETY: live while not FREED, under CLOSING.
        let group = || unsafe { &*(w.ptr as *const WaitGroup) };
        free_object(
            &w.slot,
            "gr_wg_free",
            || group().has_waiters(),
            // SAFETY: free_object calls this only when the wait group may be freed.
            || unsafe { gr_wg_free(w.ptr) },
            &[0, -EBUSY],
        );
    }

    fn lock(&mut self, m: usize, block: bool) {
        let Some(mx) = self.sh.mutexes.get(m) else {
            return;
        };
        if self.held[m] {
            // Not recursive: a try on our own lock must fail.
            // SAFETY: holding the mutex keeps our pin, so it is live.
            let rc = unsafe { gr_mutex_trylock(mx.ptr) };
            expect("gr_mutex_trylock (held by caller)", rc as i64, &[-EBUSY]);
            return;
        }
        if !mx.slot.pin() {
            return;
        }
        let rc = if block && !self.holds_anything() {
            if mx.owner.load(Ordering::SeqCst) != 0 {
                count(Event::LockedContended);
            }
            // SAFETY: the slot is pinned, so the mutex is live.
            let rc = self.untimed_wait(&mx.slot, || unsafe { gr_mutex_lock(mx.ptr) });
            expect("gr_mutex_lock", rc as i64, &[0]);
            rc
        } else {
            // SAFETY: the slot is pinned, so the mutex is live.
            let rc = unsafe { gr_mutex_trylock(mx.ptr) };
            expect("gr_mutex_trylock", rc as i64, &[0, -EBUSY]);
            rc
        };
        if rc != 0 {
            mx.slot.unpin();
            return;
        }
        let me = self.gidx + 1;
        if let Err(other) = mx
            .owner
            .compare_exchange(0, me, Ordering::SeqCst, Ordering::SeqCst)
        {
            fail(&format!(
                "mutex {m}: locked by goroutine {} while goroutine {} holds it",
                me - 1,
                other - 1
            ));
        }
        self.held[m] = true;
    }

    fn unlock(&mut self, m: usize) {
        let mx = &self.sh.mutexes[m];
        let me = self.gidx + 1;
        if let Err(other) = mx
            .owner
            .compare_exchange(me, 0, Ordering::SeqCst, Ordering::SeqCst)
        {
            fail(&format!(
                "mutex {m}: holder {} found owner word {other}",
                me - 1
            ));
        }
        // SAFETY: holding the mutex keeps our pin (released below), so it is live.
        let rc = unsafe { gr_mutex_unlock(mx.ptr) };
        expect("gr_mutex_unlock", rc as i64, &[0]);
        self.held[m] = false;
        mx.slot.unpin();
    }

    fn free_mutex(&mut self, m: usize) {
        let Some(mx) = self.sh.mutexes.get(m) else {
            return;
        };
        if self.held[m] {
            // Locked by us: refused, and our pin keeps it alive.
            // SAFETY: our pin keeps it live, and a locked mutex is never freed.
            let rc = unsafe { gr_mutex_free(mx.ptr) };
            expect("gr_mutex_free (locked)", rc as i64, &[-EBUSY]);
            return;
        }
        // SAFETY: live while not FREED, under CLOSING.
        let mutex = || unsafe { &*(mx.ptr as *const GrMutex) };
        // The only pinned party is inside gr_mutex_lock and the mutex is busy: it
        // stays locked or waited on until that party has it, so it must be -EBUSY.
        free_object(
            &mx.slot,
            "gr_mutex_free",
            || mutex().is_busy(),
            // SAFETY: free_object calls this only when the mutex may be freed.
            || unsafe { gr_mutex_free(mx.ptr) },
            &[-EBUSY],
        );
    }

    fn bad_args(&mut self, which: u8) {
        let sh = self.sh;
        let null_chan = std::ptr::null_mut::<gr_chan>();
        let mut x = [0u8; MAX_ELEM];
        let xp = x.as_mut_ptr() as *mut c_void;
        match which % 10 {
            // SAFETY: a NULL channel is allowed (and refused); x is MAX_ELEM bytes.
            0 => expect(
                "gr_chan_send(NULL)",
                unsafe { gr_chan_send(null_chan, xp) } as i64,
                &[-EINVAL],
            ),
            // SAFETY: as above.
            1 => expect(
                "gr_chan_try_recv(NULL)",
                unsafe { gr_chan_try_recv(null_chan, xp) } as i64,
                &[-EINVAL],
            ),
            // SAFETY: NULL handles are allowed (and refused).
            2 => unsafe {
                expect(
                    "gr_chan_close(NULL)",
                    gr_chan_close(null_chan) as i64,
                    &[-EINVAL],
                );
                expect(
                    "gr_chan_free(NULL)",
                    gr_chan_free(null_chan) as i64,
                    &[-EINVAL],
                );
                expect(
                    "gr_wg_free(NULL)",
                    gr_wg_free(std::ptr::null_mut()) as i64,
                    &[-EINVAL],
                );
                expect(
                    "gr_mutex_free(NULL)",
                    gr_mutex_free(std::ptr::null_mut()) as i64,
                    &[-EINVAL],
                );
            },
            3 | 4 | 9 => {
                // A bad op or a NULL element in a select, or a NULL element in a send,
                // on a live channel: -EINVAL, and nothing happens.
                let ch = which as usize / 10 % sh.chans.len();
                let c = &sh.chans[ch];
                if !c.slot.pin() {
                    return;
                }
                let nonzero = c.spec.elem_size != 0;
                if which % 10 == 9 {
                    if nonzero {
                        // SAFETY: the slot is pinned, so the channel is live for the call; a NULL elem is allowed
                        // (and refused for a non-zero element size).
                        unsafe {
                            expect(
                                "gr_chan_send(NULL elem)",
                                gr_chan_send(c.ptr, std::ptr::null()) as i64,
                                &[-EINVAL],
                            );
                            expect(
                                "gr_chan_recv(NULL elem)",
                                gr_chan_recv(c.ptr, std::ptr::null_mut()) as i64,
                                &[-EINVAL],
                            );
                        }
                    }
                } else if which % 10 == 3 || nonzero {
                    let mut cs = [gr_case {
                        chan: c.ptr,
                        op: if which % 10 == 3 { 7 } else { GR_RECV },
                        elem: if which % 10 == 3 {
                            xp
                        } else {
                            std::ptr::null_mut()
                        },
                        closed: CLOSED_UNTOUCHED,
                    }];
                    // SAFETY: the slot is pinned, so the channel is live for the call; the elem is x (MAX_ELEM bytes) or NULL.
                    let rc = unsafe { gr_select(cs.as_mut_ptr(), 1, -1) };
                    expect("gr_select(bad case)", rc as i64, &[-EINVAL]);
                    check(cs[0].closed == CLOSED_UNTOUCHED, || {
                        "gr_select -EINVAL wrote a case".into()
                    });
                }
                c.slot.unpin();
                // SAFETY: NULL cases are allowed (and refused).
                let rc = unsafe { gr_select(std::ptr::null_mut(), 1, 0) };
                expect("gr_select(NULL, 1)", rc as i64, &[-EINVAL]);
            }
            5 => {
                expect(
                    "gr_block_io(no events)",
                    gr_block_io(sh.pipe[0], 0, 0) as i64,
                    &[-EINVAL],
                );
                expect(
                    "gr_block_io(bad bits)",
                    gr_block_io(sh.pipe[0], 64, 0) as i64,
                    &[-EINVAL],
                );
                expect(
                    "gr_block_io(-1)",
                    gr_block_io(-1, GR_READ, 0) as i64,
                    &[-EBADF],
                );
            }
            // SAFETY: NULL handles are allowed (and refused).
            6 => unsafe {
                expect(
                    "gr_wg_add(NULL)",
                    gr_wg_add(std::ptr::null_mut(), 1) as i64,
                    &[-EINVAL],
                );
                expect(
                    "gr_wg_wait(NULL)",
                    gr_wg_wait(std::ptr::null_mut()) as i64,
                    &[-EINVAL],
                );
                expect(
                    "gr_mutex_lock(NULL)",
                    gr_mutex_lock(std::ptr::null_mut()) as i64,
                    &[-EINVAL],
                );
                expect(
                    "gr_mutex_unlock(NULL)",
                    gr_mutex_unlock(std::ptr::null_mut()) as i64,
                    &[-EINVAL],
                );
            },
            7 => {
                expect("gr_join(0)", gr_join(0) as i64, &[-EINVAL]);
                expect(
                    "gr_join(never started)",
                    gr_join(i64::MAX) as i64,
                    &[-ESRCH],
                );
                expect("gr_join(self)", gr_join(gr_self()) as i64, &[-EDEADLK]);
            }
            _ => {
                let bad_size = gr_attr {
                    stack_size: 1000,
                    name: std::ptr::null(),
                    flags: 0,
                };
                let bad_flags = gr_attr {
                    stack_size: 0,
                    name: std::ptr::null(),
                    flags: 1,
                };
                let f: unsafe extern "C" fn(*mut c_void) = never_runs;
                for (what, a) in [("stack 1000", &bad_size), ("flags 1", &bad_flags)] {
                    // SAFETY: a readable gr_attr with a NULL name; never_runs would
                    // ignore its argument (the spawn is refused).
                    let id = unsafe { gr_spawn_attr(Some(f), std::ptr::null_mut(), a) };
                    expect(&format!("gr_spawn_attr({what})"), id, &[-EINVAL]);
                }
                // SAFETY: a NULL function is allowed (and refused).
                let id = unsafe { gr_spawn(None, std::ptr::null_mut()) };
                expect("gr_spawn(NULL)", id, &[-EINVAL]);
            }
        }
    }
}

extern "C" fn never_runs(_: *mut c_void) {
    fail("a goroutine refused by gr_spawn_attr ran");
}

/// Checks the result of gr_chan_{send,recv} (`block`) or gr_chan_try_{send,recv}:
/// a documented code, and -EPIPE only after somebody closed the channel.
fn check_transfer(ch: usize, c: &ChanState, what: &str, block: bool, rc: c_int) {
    let (name, allowed): (_, &[c_int]) = if block {
        (format!("gr_chan_{what}"), &[0, -EPIPE])
    } else {
        (format!("gr_chan_try_{what}"), &[0, -EPIPE, -EAGAIN])
    };
    expect(&name, rc as i64, allowed);
    if rc == -EPIPE {
        check(c.close_attempted.load(Ordering::SeqCst), || {
            format!("chan {ch}: {name} returned -EPIPE, never closed")
        });
    }
}

/// Closes a pinned channel and keeps the model's close record.
fn close_chan(c: &ChanState) {
    c.close_attempted.store(true, Ordering::SeqCst);
    // SAFETY: the caller pinned the channel, so it is live.
    let rc = unsafe { gr_chan_close(c.ptr) };
    expect("gr_chan_close", rc as i64, &[0, -EPIPE]);
    if rc == 0 {
        c.closes_ok.fetch_add(1, Ordering::SeqCst);
    }
}

/// The free protocol (see the file comment). `busy` asks the library whether a party
/// is parked on the object; `free` calls gr_*_free; `busy_rcs` are the codes allowed
/// when the only pinned party is parked there.
fn free_object(
    slot: &Slot,
    call: &str,
    busy: impl Fn() -> bool,
    mut free: impl FnMut() -> c_int,
    busy_rcs: &[c_int],
) {
    if !slot.start_closing() {
        return;
    }
    for _ in 0..FREE_ATTEMPTS {
        if slot.pins() == 0 {
            let rc = free();
            expect(&format!("{call} (nobody inside)"), rc as i64, &[0]);
            count(Event::FreedIdle);
            slot.mark_freed();
            return;
        }
        if slot.pins() == 1 && slot.blocking.load(Ordering::SeqCst) == 1 && busy() {
            let rc = free();
            expect(
                &format!("{call} (a party parked on it)"),
                rc as i64,
                busy_rcs,
            );
            if rc == 0 {
                count(Event::FreedParked);
                slot.mark_freed();
                return;
            }
            count(Event::FreeBusy);
        }
        gr_sleep(10_000);
    }
    count(Event::FreeGaveUp);
    slot.stop_closing();
}

/// Starts goroutine `gidx` running program `prog`; None when the spawn was refused
/// (as documented: no memory).
fn start_goroutine(sh: &Shared, prog: usize, gidx: usize, small_stack: bool) -> Option<gr_id> {
    sh.running.fetch_add(1, Ordering::SeqCst);
    let ctx = Box::into_raw(Box::new(GoroutineArg {
        shared: sh as *const Shared,
        prog,
        gidx,
    }));
    let f: unsafe extern "C" fn(*mut c_void) = goroutine_main;
    let id = if small_stack {
        let attr = gr_attr {
            stack_size: 64 << 10,
            name: c"fuzz".as_ptr(),
            flags: 0,
        };
        // SAFETY: goroutine_main takes its GoroutineArg box (and frees it), on any
        // thread; Shared outlives every goroutine of the input. The attr and its name
        // are readable for the call.
        unsafe { gr_spawn_attr(Some(f), ctx as *mut c_void, &attr) }
    } else {
        // SAFETY: as for gr_spawn_attr.
        unsafe { gr_spawn(Some(f), ctx as *mut c_void) }
    };
    if id < 0 {
        expect("gr_spawn", id, &[-ENOMEM, -EAGAIN]);
        // SAFETY: not started, so the box is still ours.
        drop(unsafe { Box::from_raw(ctx) });
        sh.running.fetch_sub(1, Ordering::SeqCst);
        return None;
    }
    check(id > 0, || format!("gr_spawn returned {id}"));
    sh.spawn_ids[gidx].store(id, Ordering::SeqCst);
    Some(id)
}

struct IoWaiterArg {
    shared: *const Shared,
    fd: c_int,
}

/// The waiter of Op::CancelIo. Its fd may already be closed (-EBADF), or closed and
/// its number taken by another pipe of the script by the time it waits (any
/// documented result): the outcomes allowed are the documented ones.
extern "C" fn io_waiter_main(arg: *mut c_void) {
    // SAFETY: made by cancel_io for this goroutine alone.
    let arg = unsafe { Box::from_raw(arg as *mut IoWaiterArg) };
    // SAFETY: the supervisor keeps Shared alive until `running` is 0.
    let sh = unsafe { &*arg.shared };
    let rc = gr_block_io(arg.fd, GR_READ, 2_000_000);
    if rc > 0 {
        check(rc & !(GR_READ | GR_WRITE) == 0, || {
            format!("gr_block_io(private pipe) returned mask {rc}")
        });
    } else {
        if rc == -ECANCELED {
            count(Event::Canceled);
        }
        expect(
            "gr_block_io(private pipe, closed meanwhile)",
            rc as i64,
            &[-ETIMEDOUT, -ECANCELED, -EBADF],
        );
    }
    sh.running.fetch_sub(1, Ordering::SeqCst);
}

struct GoroutineArg {
    shared: *const Shared,
    prog: usize,
    gidx: usize,
}

extern "C" fn goroutine_main(arg: *mut c_void) {
    // SAFETY: made by start_goroutine for this goroutine alone.
    let arg = unsafe { Box::from_raw(arg as *mut GoroutineArg) };
    // SAFETY: the supervisor keeps Shared alive until `running` is 0.
    let sh = unsafe { &*arg.shared };
    sh.self_ids[arg.gidx].store(gr_self(), Ordering::SeqCst);
    let mut local = Local {
        sh,
        gidx: arg.gidx,
        prog: arg.prog,
        next_seq: 0,
        last_seq: [[None; MAX_GOROUTINES]; MAX_CHANS],
        held: vec![false; sh.mutexes.len()],
        wg_units: vec![0; sh.wgs.len()],
        children: Vec::new(),
        thread_locks: 0,
        locked_tid: 0,
    };
    local.run();
    sh.running.fetch_sub(1, Ordering::SeqCst);
}

// ---------------------------------------------------------------------------------
// The supervisor (the calling thread, outside the runtime).

static INIT: Once = Once::new();
/// One input at a time per process: the runtime is global, and the end-of-input
/// checks (gr_wait_all, gr_stats) see every goroutine in it.
static ONE_INPUT: StdMutex<()> = StdMutex::new(());

/// Runs one input: decodes it, runs its goroutines on the global runtime (started
/// once with 2 processors), waits for all of them, checks the model and frees
/// everything. Returns whether the input named any goroutine. Aborts on a finding.
pub fn run(data: &[u8]) -> bool {
    run_with(data, Features::ALL)
}

/// Which kinds of op a run executes (an op left out runs as a yield, so the same
/// bytes decode to the same script either way).
#[derive(Debug, Clone, Copy)]
pub struct Features {
    /// Op::ThreadLock (gr_lock_thread / gr_unlock_thread).
    pub thread_lock: bool,
}

impl Features {
    pub const ALL: Features = Features { thread_lock: true };
}

/// `run` with some kinds of op left out.
pub fn run_with(data: &[u8], features: Features) -> bool {
    INIT.call_once(|| {
        let rc = gr_init(2);
        check(rc == 2 || rc == -libc::EALREADY, || {
            format!("gr_init(2) returned {rc}")
        });
    });
    let Some(script) = Script::decode(data) else {
        return false;
    };
    let _one = ONE_INPUT.lock().unwrap_or_else(|e| e.into_inner());
    if let Ok(mut cur) = CURRENT_INPUT.lock() {
        cur.clear();
        cur.extend_from_slice(data);
    }
    let sh = Shared::new(script, features);
    // Root indices first: running roots spawn children meanwhile.
    sh.started.store(sh.script.roots, Ordering::SeqCst);
    for prog in 0..sh.script.roots {
        start_goroutine(&sh, prog, prog, false);
    }
    supervise(&sh);
    let rc = gr_wait_all();
    expect("gr_wait_all (supervisor)", rc as i64, &[0]);
    check_nothing_left();
    teardown(&sh);
    true
}

/// After gr_wait_all: no goroutine is left, and no armed timer or fd waiter stays
/// behind. The timer and fd-waiter counts are snapshots that the runtime updates just
/// after waking the waiter (a goroutine woken by a timer may end before the timer is
/// uncounted), so those two get up to `STATS_SETTLE` to reach 0; staying above is a
/// leak.
fn check_nothing_left() {
    let t0 = Instant::now();
    loop {
        let mut st = gr_stats {
            size: std::mem::size_of::<gr_stats>(),
            ..gr_stats::default()
        };
        // SAFETY: st is a gr_stats of the size its `size` says, writable.
        let rc = unsafe { goroutine::ffi::debug::gr_stats(&mut st) };
        expect("gr_stats", rc as i64, &[0]);
        check(st.goroutines == 0, || {
            format!(
                "gr_wait_all returned with {} goroutines alive",
                st.goroutines
            )
        });
        if st.fd_waiters == 0 && st.timers == 0 {
            return;
        }
        if t0.elapsed() > STATS_SETTLE {
            fail(&format!(
                "after an input: {} fd waiters, {} armed timers left",
                st.fd_waiters, st.timers
            ));
        }
        count(Event::StatsLagged);
        std::thread::sleep(Duration::from_micros(100));
    }
}

fn supervise(sh: &Shared) {
    let start = Instant::now();
    let mut to_close: Vec<usize> = Vec::new();
    let mut closing = false;
    let mut stuck_polls = 0;
    loop {
        let running = sh.running.load(Ordering::SeqCst);
        if running == 0 {
            return;
        }
        if !closing {
            if running == sh.waiting.load(Ordering::SeqCst) {
                stuck_polls += 1;
            } else {
                stuck_polls = 0;
            }
            if stuck_polls >= 4 || start.elapsed() > SOFT_DEADLINE {
                closing = true;
                to_close = (0..sh.chans.len()).collect();
            }
        }
        // Close what can be pinned now; a channel being freed is retried later.
        to_close.retain(|&ch| {
            let c = &sh.chans[ch];
            if c.slot.pin() {
                count(Event::SupervisorClosed);
                close_chan(c);
                c.slot.unpin();
                false
            } else {
                !c.slot.is_freed()
            }
        });
        if start.elapsed() > HARD_DEADLINE {
            gr_dump(2);
            fail(&format!(
                "hang: {running} goroutines of the input still running after {HARD_DEADLINE:?}"
            ));
        }
        std::thread::sleep(Duration::from_micros(50));
    }
}

/// After every goroutine has ended: drain and free what is left, and check the model.
fn teardown(sh: &Shared) {
    for i in 0..sh.started.load(Ordering::SeqCst).min(MAX_GOROUTINES) {
        let (spawned, selfid) = (
            sh.spawn_ids[i].load(Ordering::SeqCst),
            sh.self_ids[i].load(Ordering::SeqCst),
        );
        check(spawned == selfid, || {
            format!("goroutine {i}: gr_spawn gave id {spawned}, gr_self said {selfid}")
        });
    }
    for (ch, c) in sh.chans.iter().enumerate() {
        if !c.slot.is_freed() {
            // SAFETY: every goroutine has ended and the channel is not freed, so it is
            // live and ours alone until it is freed below.
            let len = unsafe { gr_chan_len(c.ptr) };
            let mut drained = 0;
            let mut buf = [UNTOUCHED; MAX_ELEM];
            let elem = &mut buf[..c.spec.elem_size];
            loop {
                // SAFETY: as above; elem is a writable element of the channel's size.
                let rc = unsafe { gr_chan_try_recv(c.ptr, elem.as_mut_ptr() as *mut c_void) };
                if rc != 0 {
                    expect("gr_chan_try_recv (drain)", rc as i64, &[-EAGAIN, -EPIPE]);
                    break;
                }
                drained += 1;
                c.received_count.fetch_add(1, Ordering::SeqCst);
                if let Some(id) = check_value(elem, ch) {
                    c.received.lock().unwrap().push(id);
                }
            }
            check(drained == len, || {
                format!("chan {ch}: gr_chan_len said {len}, drained {drained}")
            });
            // SAFETY: as above; nothing uses it after this.
            let rc = unsafe { gr_chan_free(c.ptr) };
            expect("gr_chan_free (end)", rc as i64, &[0]);
        }
        let (attempted, oks) = (
            c.close_attempted.load(Ordering::SeqCst),
            c.closes_ok.load(Ordering::SeqCst),
        );
        check(oks == attempted as u32, || {
            format!("chan {ch}: close attempted {attempted}, succeeded {oks} times")
        });
        let sent = c.sent_count.load(Ordering::SeqCst);
        let received = c.received_count.load(Ordering::SeqCst);
        let dropped = c.dropped.load(Ordering::SeqCst);
        check(sent == received + dropped, || {
            format!(
                "chan {ch} {:?}: sent {sent}, received {received}, dropped when freed {dropped}",
                c.spec
            )
        });
        if c.spec.elem_size >= 8 {
            let mut s = std::mem::take(&mut *c.sent.lock().unwrap());
            let mut r = std::mem::take(&mut *c.received.lock().unwrap());
            s.sort_unstable();
            r.sort_unstable();
            check(r.windows(2).all(|w| w[0] != w[1]), || {
                format!("chan {ch}: a value received twice")
            });
            check(r.iter().all(|v| s.binary_search(v).is_ok()), || {
                format!("chan {ch}: received a value never sent")
            });
        }
    }
    for w in &sh.wgs {
        if !w.slot.is_freed() {
            // SAFETY: every goroutine has ended and the wait group is not freed, so it
            // is live and ours alone; nothing uses it after the free.
            let (add, free) = unsafe { (gr_wg_add(w.ptr, -1), gr_wg_free(w.ptr)) };
            expect("gr_wg_add(-1) on a zero count", add as i64, &[-EINVAL]);
            expect("gr_wg_free (end)", free as i64, &[0]);
        }
    }
    for (m, mx) in sh.mutexes.iter().enumerate() {
        if !mx.slot.is_freed() {
            check(mx.owner.load(Ordering::SeqCst) == 0, || {
                format!("mutex {m} still owned at the end")
            });
            // SAFETY: every goroutine has ended and the mutex is not freed, so it is
            // live and ours alone; nothing uses it after the free.
            let (unlock, free) = unsafe { (gr_mutex_unlock(mx.ptr), gr_mutex_free(mx.ptr)) };
            expect("gr_mutex_unlock (unlocked)", unlock as i64, &[-EPERM]);
            expect("gr_mutex_free (end)", free as i64, &[0]);
        }
    }
    let mut left = 0u64;
    let mut b = [0u8; 512];
    loop {
        // SAFETY: reads into a local buffer from our own non-blocking pipe.
        let n = unsafe { libc::read(sh.pipe[0], b.as_mut_ptr() as *mut c_void, b.len()) };
        if n <= 0 {
            break;
        }
        left += n as u64;
    }
    let (put, taken) = (
        sh.pipe_put.load(Ordering::SeqCst),
        sh.pipe_taken.load(Ordering::SeqCst),
    );
    check(put == taken + left, || {
        format!("pipe: {put} bytes written, {taken} read, {left} left")
    });
    expect("gr_close(pipe read end)", gr_close(sh.pipe[0]) as i64, &[0]);
    expect(
        "gr_close(pipe write end)",
        gr_close(sh.pipe[1]) as i64,
        &[0],
    );
}

/// A fixed-seed generator of script bytes (xorshift64*), for the regression test
/// and for writing the seed corpus: byte strings biased to decode into busy scripts.
pub struct ScriptBytes(u64);

impl ScriptBytes {
    pub fn new(seed: u64) -> ScriptBytes {
        ScriptBytes(seed | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// The next input: 16 to 400 random bytes.
    pub fn input(&mut self) -> Vec<u8> {
        let len = 16 + (self.next() % 385) as usize;
        (0..len).map(|_| (self.next() >> 32) as u8).collect()
    }
}
