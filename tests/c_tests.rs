//! The C ABI tests: each program in `tests/c/` is compiled with gcc against
//! `include/goroutine.h` and the `libgoroutine.so` cargo has just built, run under a
//! timeout, and must exit 0 with `ok` as the last line of its stdout. One `#[test]`
//! per program (the `c_tests!` list below; `every_c_file_is_listed` keeps it
//! complete).
//!
//! Crash tests run a program in a mode that must kill the process (stack overflow,
//! NULL dereference) as a child and check its stderr and how it died, as Go's own
//! runtime tests do. `c_example_demo` builds and runs `c_examples/demo.c`.
//!
//! Run one: `cargo test --release --test c_tests join -- --nocapture` prints what the
//! program printed. The compiled programs are in `target/release/c-tests/`; they run
//! by hand as well (their rpath points at the library they were tested with, in
//! `target/release/deps/`).
//!
//! Sanitizers and valgrind (`make sanitize`, `make valgrind`): with
//! `GR_TEST_SANITIZE=address` the programs are built with gcc's AddressSanitizer and
//! UndefinedBehaviorSanitizer (any report fails the program; LeakSanitizer runs at
//! exit), with `thread` under ThreadSanitizer, and with `valgrind` they run under
//! memcheck (`--leak-check=full`, definite leaks and invalid accesses are errors).
//! Each mode builds into its own `c-tests-MODE/` directory and allows more time; the
//! programs that cannot run in a mode (and why) are listed in `sanitize_skip`, the
//! one place for that. ThreadSanitizer reads `tests/sanitize/tsan.supp`, which says
//! why the library's own (uninstrumented) calls are left out.

mod common;
use common::Outcome;

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

const MANIFEST: &str = env!("CARGO_MANIFEST_DIR");

/// Seconds a program may run before it is killed, unless its entry says otherwise
/// (longer than the programs' own 60 s watchdogs, so that theirs speaks first).
const DEFAULT_TIMEOUT: u64 = 90;

macro_rules! timeout {
    () => {
        DEFAULT_TIMEOUT
    };
    ($secs:literal) => {
        $secs
    };
}

/// `name` or `name(seconds)`, optionally preceded by attributes such as `#[ignore]`.
macro_rules! c_tests {
    ($($(#[$attr:meta])* $name:ident $(($secs:literal))?),* $(,)?) => {
        /// The programs in tests/c/ that have a test here.
        const LISTED: &[&str] = &[$(stringify!($name)),*];
        $(
            $(#[$attr])*
            #[test]
            fn $name() {
                run_ok(stringify!($name), timeout!($($secs)?));
            }
        )*
    };
}

c_tests! {
    abi,
    alternation,
    api_signatures,
    bad_input,
    bad_input_table,
    big_locals,
    blocking_plain,
    blocking_usleep,
    chan_basic,
    chan_free_after_select,
    chan_go,
    chan_threads,
    cond,
    cpu_state,
    ctx_cancel,
    ctx_deadline_load,
    ctx_group,
    ctx_tree,
    deadlock_detect,
    debug_dump,
    fork,
    guard_budget,
    guard_valgrind,
    handoff_runnext,
    idle_cpu,
    io_bad_input,
    io_close,
    io_hangup,
    io_drained,
    io_park_mem,
    io_pingpong,
    io_read_block,
    io_timeout,
    io_two_waiters,
    io_wait_cpu,
    join,
    lock_thread,
    many_goroutines,
    maxprocs,
    #[ignore = "1,000,000 goroutines within 30 s, 4 GiB RSS: make stress"]
    million_alive(120),
    million_parked(180),
    mutex_basic,
    once,
    plain_thread,
    rss_fallback,
    rwmutex,
    select_basic,
    select_uniform,
    sem,
    shutdown,
    signal_notify,
    signals,
    sleep_busy_yielder,
    sleep_eintr,
    sleep_idle_cpu,
    sleep_many,
    spawn_enomem,
    spawn_join_cycles,
    spawn_order,
    stack_cache_return,
    stack_overflow,
    stack_size,
    sysmon_spin,
    sysmon_usleep,
    thread_create_fail,
    timer_basic,
    timer_million,
    timer_races,
    timer_select_park,
    timers_cancel,
    tree,
    unique_ids,
    unwind_escape,
    wait_all,
    waitpid,
    wg_basic,
    yield_starvation,
}

#[test]
fn every_c_file_is_listed() {
    let files: Vec<String> = fs::read_dir(Path::new(MANIFEST).join("tests/c"))
        .expect("tests/c")
        .filter_map(|e| {
            let path = e.ok()?.path();
            (path.extension()? == "c").then(|| path.file_stem()?.to_str().map(String::from))?
        })
        .collect();
    let unlisted: Vec<&String> = files
        .iter()
        .filter(|f| !LISTED.contains(&f.as_str()))
        .collect();
    let missing: Vec<&&str> = LISTED
        .iter()
        .filter(|n| !files.iter().any(|f| f == *n))
        .collect();
    assert!(
        unlisted.is_empty() && missing.is_empty(),
        "add {unlisted:?} to the c_tests! list in tests/c_tests.rs; remove {missing:?} from it"
    );
}

/// `make stress`: every program again and again (GR_TEST_REPEAT times, default 20;
/// programs that take more than 5 s once run 3 times), to shake out races that show
/// once in a hundred runs. Reports every failure at the end.
#[test]
#[ignore]
fn stress_repeat_every_program() {
    let repeat: usize = std::env::var("GR_TEST_REPEAT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let mut failures = Vec::new();
    for name in LISTED {
        let mut runs = repeat;
        let mut i = 0;
        while i < runs {
            let r = run_program(name, &[], &[], DEFAULT_TIMEOUT.max(180));
            if i == 0 && r.elapsed > Duration::from_secs(5) {
                runs = runs.min(3);
            }
            if !passed(&r) {
                eprintln!("{name}: run {} of {runs} failed", i + 1);
                failures.push(format!("run {} of {name}: {}", i + 1, r.describe()));
            }
            i += 1;
        }
        eprintln!("{name}: {runs} runs");
    }
    assert!(
        failures.is_empty(),
        "{} failed runs:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

// ---------------------------------------------------------------- crash tests

#[test]
fn stack_overflow_is_fatal() {
    expect_stack_overflow("overflow", "deep", &[]);
}

#[test]
fn stack_overflow_unnamed() {
    expect_stack_overflow("unnamed", "unnamed", &[]);
}

#[test]
fn stack_overflow_on_a_1mib_stack() {
    expect_stack_overflow("big", "big", &[]);
}

#[test]
fn stack_overflow_with_mprotect_guard() {
    expect_stack_overflow("overflow", "deep", &[("GR_GUARD", "mprotect")]);
}

#[test]
fn stack_overflow_on_a_1mib_stack_with_mprotect_guard() {
    expect_stack_overflow("big", "big", &[("GR_GUARD", "mprotect")]);
}

/// An ordinary SIGSEGV in a goroutine is not reported as a stack overflow: the
/// process dies of SIGSEGV (the default action).
#[test]
fn null_dereference_is_not_a_stack_overflow() {
    if skipped("stack_overflow null") {
        return;
    }
    let r = run_program("stack_overflow", &["null"], &[], DEFAULT_TIMEOUT);
    assert!(
        !r.stderr.contains("stack overflow"),
        "a NULL dereference was called a stack overflow\n{}",
        r.describe()
    );
    assert_eq!(
        r.status.signal(),
        Some(libc::SIGSEGV),
        "expected death by SIGSEGV\n{}",
        r.describe()
    );
}

/// A SIGSEGV handler the program installed before the runtime started still runs.
#[test]
fn earlier_sigsegv_handler_is_chained() {
    if skipped("stack_overflow chain") {
        return;
    }
    let r = run_program("stack_overflow", &["chain"], &[], DEFAULT_TIMEOUT);
    assert!(
        r.status.code() == Some(42) && r.stderr.contains("user SIGSEGV handler ran"),
        "the program's own SIGSEGV handler did not run (it exits 42)\n{}",
        r.describe()
    );
    assert!(!r.stderr.contains("stack overflow"), "{}", r.describe());
}

/// Catalogue entries 28-29: with GRDEBUG set, sysmon prints a note each time it
/// moves goroutines away from a processor stuck in an unwrapped blocking call.
#[test]
fn sysmon_rescue_is_noted_under_grdebug() {
    if skipped("sysmon_usleep notes") {
        return;
    }
    let r = run_program(
        "sysmon_usleep",
        &[],
        &[("GRDEBUG", "notes=1")],
        DEFAULT_TIMEOUT,
    );
    assert!(passed(&r), "{}", r.describe());
    assert!(
        r.stderr
            .contains("libgoroutine: sysmon: processor 0 ran one goroutine for"),
        "no sysmon note on stderr\n{}",
        r.describe()
    );
}

/// Catalogue entry 37: an exception raised in a callback the runtime calls (here
/// gr_blocking's) and caught by nobody reaches the export's panic guard, and Rust
/// aborts the process (it cannot catch foreign exceptions): SIGABRT, never a return.
#[test]
fn exception_escaping_a_runtime_callback_aborts() {
    let r = run_program("unwind_escape", &["blocking"], &[], DEFAULT_TIMEOUT);
    assert_eq!(
        r.status.signal(),
        Some(libc::SIGABRT),
        "expected death by SIGABRT\n{}",
        r.describe()
    );
    assert!(
        r.stderr.contains("foreign exception") && !r.stderr.contains("FAIL"),
        "expected Rust's foreign-exception abort\n{}",
        r.describe()
    );
}

/// Catalogue entry 37: a longjmp from goroutine "jumper" onto the stack of the parked
/// goroutine "victim" is caught at the jumper's next switch: one fatal line naming
/// both, then SIGABRT.
#[test]
fn longjmp_onto_another_goroutine_is_fatal() {
    expect_stack_switched("longjmp-goroutine", |r| {
        format!(
            "the stack of goroutine {} (victim)",
            printed_id(r, "victim")
        )
    });
}

/// Catalogue entry 37: a longjmp from a goroutine onto the main thread's stack is
/// caught at the goroutine's next switch.
#[test]
fn longjmp_onto_a_thread_stack_is_fatal() {
    expect_stack_switched("longjmp-thread", |_| {
        "a stack that is no goroutine's (a thread's own?)".into()
    });
}

/// Runs `unwind_escape MODE`, in which goroutine "jumper" longjmps off its stack and
/// then sleeps: stderr must hold exactly one fatal line, "stack switched outside the
/// runtime", saying that it runs on `on(run)` and naming the jumper, and the process
/// must die of SIGABRT.
fn expect_stack_switched(mode: &str, on: impl Fn(&Outcome) -> String) {
    if skipped(&format!("unwind_escape {mode}")) {
        return;
    }
    let r = run_program("unwind_escape", &[mode], &[], DEFAULT_TIMEOUT);
    let want = format!(
        "libgoroutine: fatal error: stack switched outside the runtime (longjmp out of a \
         goroutine?): running on {} instead of its own, in goroutine {} (jumper)",
        on(&r),
        printed_id(&r, "jumper")
    );
    expect_fatal_abort(&r, &want);
}

/// The run printed exactly one fatal line, `want`, and died of SIGABRT.
fn expect_fatal_abort(r: &Outcome, want: &str) {
    let fatal: Vec<&str> = r
        .stderr
        .lines()
        .map(str::trim_end)
        .filter(|l| l.starts_with("libgoroutine: fatal error:"))
        .collect();
    assert_eq!(
        fatal,
        [want],
        "expected exactly one fatal line\n{}",
        r.describe()
    );
    assert_eq!(
        r.status.signal(),
        Some(libc::SIGABRT),
        "expected death by SIGABRT\n{}",
        r.describe()
    );
}

/// The id a crash-test program printed as `WHAT N` before it crashed.
fn printed_id(r: &Outcome, what: &str) -> String {
    let prefix = format!("{what} ");
    r.stdout
        .lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .unwrap_or_else(|| panic!("the program did not print `{what} N`\n{}", r.describe()))
        .to_string()
}

/// Runs `stack_overflow MODE`, which prints `id N` and then overflows the stack of
/// goroutine N, named NAME: stderr must hold exactly one fatal line, naming it, and
/// the process must die of SIGABRT.
fn expect_stack_overflow(mode: &str, name: &str, env: &[(&str, &str)]) {
    if skipped("stack_overflow") {
        return;
    }
    let r = run_program("stack_overflow", &[mode], env, DEFAULT_TIMEOUT);
    let id = printed_id(&r, "id");
    let want = format!("libgoroutine: fatal error: stack overflow in goroutine {id} ({name})");
    expect_fatal_abort(&r, &want);
}

// ---------------------------------------------------------------- long runs (make stress)

/// Catalogue entry 31 at full size: 1,000,000 timers armed at once, half of them
/// cancelled, five rounds (about a minute).
#[test]
#[ignore = "1M timers x 5 rounds, about a minute: make stress"]
fn timers_cancel_million() {
    run_ok_with_args("timers_cancel", &["1000000", "5"], 900);
}

/// Catalogue entry 43, ten times longer: 100,000 spawn/park/join cycles.
#[test]
#[ignore = "100,000 cycles, about 10 s: make stress"]
fn spawn_join_cycles_100k() {
    run_ok_with_args("spawn_join_cycles", &["100000"], 300);
}

/// Catalogue entry 26, the fork loop: 2,000 forks while goroutines run.
#[test]
#[ignore = "2,000 forks: make stress"]
fn fork_loop_2000() {
    run_ok_with_args("fork", &["2000"], 600);
}

/// The wake-up protocol without sysmon's safety net (`GRDEBUG=wakenet=0`): plain
/// threads and goroutines trading values over channels, where a lost wake-up leaves
/// a goroutine runnable with every processor idle and the program hangs until the
/// runner's timeout. Before the fix (a spinning hand-off to the poller given back
/// without a second look; break_poll swallowed by non-blocking polls) about 1 run
/// in 35 hung; 20 runs here.
#[test]
fn wakeups_without_safety_net() {
    if skipped("chan_threads wakenet") {
        return;
    }
    for run in 1..=20 {
        let r = run_program("chan_threads", &[], &[("GRDEBUG", "wakenet=0")], 20);
        assert!(passed(&r), "run {run} of 20\n{}", r.describe());
    }
}

/// Catalogue entry 27 at the first start: no thread can be made when the runtime
/// starts: gr_init and the lazy start in gr_spawn return -EAGAIN (no sysmon thread,
/// nothing changed), and the runtime starts once threads can be made again.
#[test]
fn thread_create_fail_at_start() {
    run_ok_with_args("thread_create_fail", &["start"], 30);
}

/// Runs tests/c/NAME.c with arguments; it must exit 0 with `ok` as its last line.
fn run_ok_with_args(name: &str, args: &[&str], timeout_secs: u64) {
    if skipped(name) {
        return;
    }
    let r = run_program(name, args, &[], timeout_secs);
    assert!(
        passed(&r),
        "tests/c/{name}.c {args:?} failed\n{}",
        r.describe()
    );
    print!("{}", r.stdout);
}

// ---------------------------------------------------------------- examples

/// `make demo`'s program, with 100,000 goroutines instead of a million.
#[test]
fn c_example_demo() {
    if skipped("example-demo") {
        return;
    }
    let src = Path::new(MANIFEST).join("c_examples/demo.c");
    let exe = compiled("example-demo", &src);
    let r = run(&exe, &["100000"], &[], Duration::from_secs(DEFAULT_TIMEOUT));
    assert!(
        r.status.success() && r.stdout.contains("100,000 goroutines"),
        "c_examples/demo.c failed\n{}",
        r.describe()
    );
    println!("{}", r.stdout);
}

// ---------------------------------------------------------------- machinery

/// Compiles and runs tests/c/NAME.c; it must exit 0 with `ok` as its last line.
fn run_ok(name: &str, timeout_secs: u64) {
    if skipped(name) {
        return;
    }
    let r = run_program(name, &[], &[], timeout_secs);
    assert!(passed(&r), "tests/c/{name}.c failed\n{}", r.describe());
    print!("{}", r.stdout);
}

/// Exit status 0 and `ok` as the last line of stdout.
fn passed(r: &Outcome) -> bool {
    let last = r
        .stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    r.status.success() && last.trim() == "ok"
}

fn run_program(name: &str, args: &[&str], env: &[(&str, &str)], timeout_secs: u64) -> Outcome {
    let src = Path::new(MANIFEST)
        .join("tests/c")
        .join(format!("{name}.c"));
    let exe = compiled(name, &src);
    run(&exe, args, env, Duration::from_secs(timeout_secs))
}

/// Compiles `src` once per test process (tests that share a program wait for the
/// first compile) into target/<profile>/c-tests/NAME.
fn compiled(name: &str, src: &Path) -> PathBuf {
    type Slot = Arc<OnceLock<Result<PathBuf, String>>>;
    static BUILT: OnceLock<Mutex<HashMap<String, Slot>>> = OnceLock::new();
    let slot = BUILT
        .get_or_init(Default::default)
        .lock()
        .unwrap()
        .entry(name.to_string())
        .or_default()
        .clone();
    let result = slot.get_or_init(|| compile(name, src));
    match result {
        Ok(exe) => exe.clone(),
        Err(e) => panic!("{e}"),
    }
}

fn compile(name: &str, src: &Path) -> Result<PathBuf, String> {
    let lib = common::lib_dir();
    let out_dir = common::profile_dir().join(sanitize_mode().out_dir());
    fs::create_dir_all(&out_dir).map_err(|e| format!("{}: {e}", out_dir.display()))?;
    // Written under a temporary name and renamed into place: another `cargo test`
    // sharing this target directory may be running the previous build of it.
    let exe = out_dir.join(name);
    let tmp = out_dir.join(format!(".{name}.{}", std::process::id()));
    // Not taken again by `run` while held: `compiled` returns before `run` starts.
    let _shared = RUNNING.read().unwrap_or_else(|e| e.into_inner());
    let mut cmd = Command::new("gcc");
    cmd.args(["-O2", "-g", "-Wall", "-Werror", "-pthread", "-I"])
        .arg(Path::new(MANIFEST).join("include"))
        .arg("-o")
        .arg(&tmp)
        .arg(src)
        .arg("-L")
        .arg(lib)
        .arg("-lgoroutine")
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .arg("-lm")
        .args(sanitize_mode().cflags());
    let out = cmd.output().map_err(|e| format!("cannot run gcc: {e}"))?;
    if !out.status.success() {
        let _ = fs::remove_file(&tmp);
        return Err(format!(
            "{} does not compile:\n{:?}\n{}",
            src.display(),
            cmd,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    fs::rename(&tmp, &exe).map_err(|e| format!("{}: {e}", exe.display()))?;
    Ok(exe)
}

/// Runs a program in its own process group with the GR_* variables of this
/// environment removed (plus `env`), and kills the group after `timeout`.
/// Programs whose pass depends on wake-up latency of a few milliseconds: each runs
/// with no other program of this file beside it and no gcc compiling the next one
/// (the others run two at a time, as cargo's threads do), so that a neighbour's
/// 10,000 goroutines or a compiler on the same 2 cores cannot make their bounds fail.
/// Their bounds are unchanged.
const RUN_ALONE: &[&str] = &[
    "ctx_deadline_load",
    "io_read_block",
    "io_timeout",
    "blocking_usleep",
];

/// Held shared while a program runs or compiles, and exclusively by a RUN_ALONE
/// program.
static RUNNING: std::sync::RwLock<()> = std::sync::RwLock::new(());

fn run(exe: &Path, args: &[&str], env: &[(&str, &str)], timeout: Duration) -> Outcome {
    let alone = exe
        .file_stem()
        .is_some_and(|s| RUN_ALONE.iter().any(|n| s == *n));
    // A failed program's panic poisons the lock; the () it guards cannot be broken.
    let _exclusive = alone.then(|| RUNNING.write().unwrap_or_else(|e| e.into_inner()));
    let _shared = (!alone).then(|| RUNNING.read().unwrap_or_else(|e| e.into_inner()));
    let mode = sanitize_mode();
    let mut cmd = match mode.wrapper() {
        Some(wrapper) => {
            let mut c = common::program(wrapper[0]);
            c.args(&wrapper[1..]).arg(exe);
            c
        }
        None => common::program(exe),
    };
    cmd.args(args).envs(mode.env()).envs(env.iter().copied());
    let what = format!("{}{} {}", mode.describe(), exe.display(), args.join(" "));
    common::run_captured(&mut cmd, what, timeout * mode.slowdown())
}

// ---------------------------------------------------------------- sanitizers and valgrind

/// How the C programs are built and run: `GR_TEST_SANITIZE` unset or empty (plain),
/// `address` (gcc ASan + UBSan), `thread` (gcc TSan) or `valgrind` (memcheck).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum SanitizeMode {
    Plain,
    Address,
    Thread,
    Valgrind,
}

fn sanitize_mode() -> SanitizeMode {
    static MODE: OnceLock<SanitizeMode> = OnceLock::new();
    *MODE.get_or_init(|| {
        match std::env::var("GR_TEST_SANITIZE")
            .unwrap_or_default()
            .as_str()
        {
            "" => SanitizeMode::Plain,
            "address" => SanitizeMode::Address,
            "thread" => SanitizeMode::Thread,
            "valgrind" => SanitizeMode::Valgrind,
            other => panic!("GR_TEST_SANITIZE={other}: expected address, thread or valgrind"),
        }
    })
}

/// A suppression file in tests/sanitize/, as a sanitizer option value.
fn suppressions(file: &str) -> String {
    format!("suppressions={MANIFEST}/tests/sanitize/{file}")
}

impl SanitizeMode {
    /// Where its programs are compiled (each mode its own, so they never mix).
    fn out_dir(self) -> &'static str {
        match self {
            SanitizeMode::Plain | SanitizeMode::Valgrind => "c-tests",
            SanitizeMode::Address => "c-tests-address",
            SanitizeMode::Thread => "c-tests-thread",
        }
    }

    /// Extra gcc flags. UBSan does not recover, so a report fails the program.
    fn cflags(self) -> &'static [&'static str] {
        match self {
            SanitizeMode::Plain | SanitizeMode::Valgrind => &[],
            SanitizeMode::Address => &[
                "-fsanitize=address,undefined",
                "-fno-sanitize-recover=all",
                "-fno-omit-frame-pointer",
            ],
            SanitizeMode::Thread => &["-fsanitize=thread", "-fno-omit-frame-pointer"],
        }
    }

    /// The command a program runs under, if any.
    fn wrapper(self) -> Option<&'static [&'static str]> {
        match self {
            SanitizeMode::Valgrind => Some(&[
                "valgrind",
                "--quiet",
                "--error-exitcode=99",
                "--leak-check=full",
                "--show-leak-kinds=definite",
                "--errors-for-leak-kinds=definite",
                // Spin locks make progress under valgrind's one big lock only if
                // the waiting thread lets the holder run (a ticket lock).
                "--fair-sched=yes",
            ]),
            _ => None,
        }
    }

    /// The sanitizer's options: a report fails the run (exit code or abort). And
    /// GR_TEST_LATENCY_SCALE, by which check.h's `latency_bound` stretches the
    /// programs' "promptly" bounds under the tool's slowdown; GR_TEST_UNDER_VALGRIND
    /// for guard_valgrind.
    fn env(self) -> Vec<(String, String)> {
        let mut pairs: Vec<(&str, String)> = match self {
            SanitizeMode::Plain | SanitizeMode::Valgrind => vec![],
            SanitizeMode::Address => vec![
                ("ASAN_OPTIONS", "detect_leaks=1:halt_on_error=1".into()),
                ("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1".into()),
            ],
            SanitizeMode::Thread => vec![(
                "TSAN_OPTIONS",
                format!(
                    "halt_on_error=1:second_deadlock_stack=1:{}",
                    suppressions("tsan.supp")
                ),
            )],
        };
        if self != SanitizeMode::Plain {
            pairs.push(("GR_TEST_LATENCY_SCALE", self.latency_scale().to_string()));
        }
        if self == SanitizeMode::Valgrind {
            pairs.push(("GR_TEST_UNDER_VALGRIND", "1".into()));
        }
        pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
    }

    /// How much later than plain a prompt wake may come under the tool: memcheck
    /// runs one thread at a time, ~20-50x slower; ctx_cancel's worst cancel took 2.8
    /// to 4.2 ms and ctx_group's 11.5 to 12.3 ms there (plain bounds 1 and 10 ms).
    fn latency_scale(self) -> u32 {
        match self {
            SanitizeMode::Plain => 1,
            SanitizeMode::Address => 4,
            SanitizeMode::Thread => 10,
            SanitizeMode::Valgrind => 25,
        }
    }

    /// How much longer a program may take than its plain timeout.
    fn slowdown(self) -> u32 {
        match self {
            SanitizeMode::Plain => 1,
            SanitizeMode::Address => 2,
            SanitizeMode::Thread => 4,
            SanitizeMode::Valgrind => 6,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            SanitizeMode::Plain => "",
            SanitizeMode::Address => "[ASan+UBSan] ",
            SanitizeMode::Thread => "[TSan] ",
            SanitizeMode::Valgrind => "[valgrind] ",
        }
    }
}

/// The one list of programs that cannot run in a sanitizer mode, with the reason.
/// `name` is a program in tests/c/ (or `example-demo`), or `PROGRAM MODE` for one
/// crash-test mode of it.
fn sanitize_skip(mode: SanitizeMode, name: &str) -> Option<&'static str> {
    use SanitizeMode::*;
    // Reasons shared by several entries.
    const FIBERS: &str = "has thousands of goroutines at a time: each goroutine descriptor \
                          keeps a TSan fiber, and TSan stops at 8,128 threads";
    const TIMING: &str = "asserts latencies of a few ms, which the sanitizer's slowdown breaks";
    match (mode, name) {
        (Plain, _) => None,
        // A deliberate NULL store: UBSan reports it (and stops) before the SIGSEGV the
        // test is about; TSan turns the SIGSEGV into its own report.
        (Address | Thread, "stack_overflow null") => {
            Some("its deliberate NULL store is reported by the sanitizer before it can fault")
        }
        (Address, "stack_overflow chain") => {
            Some("UBSan reports the deliberate NULL store before the program's handler runs")
        }
        (Address | Thread | Valgrind, "timer_million") => Some(
            "bounds the bytes per pending timer, to which the tool's redzones and \
             allocator metadata add",
        ),
        (Thread, "sysmon_usleep") => Some(TIMING),
        (Thread, "deadlock_detect") => Some(
            "TSan runs a thread of its own, which the deadlock check counts as a thread that \
             could still wake a goroutine, so no deadlock is ever reported",
        ),
        (Valgrind, "stack_overflow null" | "stack_overflow chain") => {
            Some("memcheck reports its deliberate NULL store as an invalid write")
        }
        (Valgrind, "cpu_state") => Some(
            "valgrind does not emulate x87 precision control or MXCSR modes (its manual's \
             known limitations), which this program sets and checks",
        ),
        (Valgrind, "sysmon_spin") => Some(TIMING),
        (Valgrind, "many_goroutines" | "example-demo" | "unique_ids" | "sleep_many" | "tree") => {
            Some(
                "up to 31,000 (tree's eight at once) or 100,000 goroutines or more at once: \
                 under valgrind the runtime makes at most 11,000 stacks (mprotect guards, \
                 which cost entries in a fixed table of valgrind's)",
            )
        }
        (Valgrind, "io_wait_cpu" | "idle_cpu") => {
            Some("measures the CPU time the runtime uses, which valgrind's translation multiplies")
        }
        (
            Valgrind,
            "spawn_join_cycles" | "stack_cache_return" | "timers_cancel" | "io_park_mem",
        ) => Some("measures RSS and memory maps, which valgrind's own bookkeeping changes"),
        (Valgrind, "million_parked" | "rss_fallback") => Some(
            "1,000,000 (100,000) parked goroutines under memcheck: its shadow memory runs out \
             of address space at ~400,000 (ENOMEM), and 100,000 outlast the timeout",
        ),
        (Valgrind, "guard_budget" | "maxprocs" | "spawn_enomem" | "signal_notify") => Some(
            "re-executes itself through /proc/self/exe, which under valgrind is valgrind's \
             own tool binary",
        ),
        (
            Thread,
            "many_goroutines" | "million_parked" | "timers_cancel" | "wait_all" | "idle_cpu"
            | "tree" | "unique_ids" | "example-demo" | "ctx_deadline_load",
        ) => Some(FIBERS),
        (Thread, "io_park_mem") => {
            Some("measures RSS per goroutine, and TSan keeps ~800 KiB of its own state per fiber")
        }
        (Thread, "guard_budget") => Some(
            "sizes its guard-page budget by the process's memory maps, and TSan maps memory \
             for every fiber",
        ),
        // The rescue must come before the sleeps it measures are over.
        (Thread | Valgrind, "sysmon_usleep notes") => Some(TIMING),
        (Thread, "io_timeout" | "sleep_many" | "sleep_idle_cpu") => Some(TIMING),
        (
            Address | Thread,
            "rss_fallback" | "spawn_join_cycles" | "stack_cache_return" | "timers_cancel",
        ) => Some(
            "measures RSS and memory maps, which shadow memory and ASan's quarantine of \
             freed blocks change",
        ),
        (Thread, "unwind_escape longjmp-goroutine" | "unwind_escape longjmp-thread") => Some(
            "TSan's longjmp interceptor aborts first: it finds no jump buffer set by the \
             jumping thread (\"can't find longjmp buf\")",
        ),
        (Thread, "shutdown") => {
            Some("counts the process's threads, and TSan adds a background thread of its own")
        }
        (Thread, "stack_size") => Some(
            "runs code sized to fit the smallest stacks, and TSan-instrumented frames are larger",
        ),
        (Thread, "spawn_enomem") => Some(
            "lowers RLIMIT_AS, and TSan's own allocator then runs out of memory (fatal in TSan)",
        ),
        (Thread, "signals") => Some(
            "dies of SIGSEGV under TSan, which defers and re-delivers signal handlers itself \
             (not investigated further)",
        ),
        _ => None,
    }
}

/// True (and says why) when program `name` is not run in this mode.
fn skipped(name: &str) -> bool {
    let mode = sanitize_mode();
    match sanitize_skip(mode, name) {
        Some(reason) => {
            // Straight to stderr, past the test harness's capture: `make sanitize`
            // shows what it did not run.
            let _ = writeln!(
                std::io::stderr(),
                "skipped under GR_TEST_SANITIZE={mode:?}: {name}: {reason}"
            );
            true
        }
        None => false,
    }
}
