//! The libc hook layer, `libgoroutine_hook.so` (hook/): the C programs in
//! `tests/hook/` call plain libc (usleep, read, accept, poll...) on goroutines and
//! check what libc promises and that no thread is spent; each is built against the
//! `libgoroutine.so` cargo has just built and either linked with the hook library
//! (`-Wl,--no-as-needed -lgoroutine_hook`) or run with it in `LD_PRELOAD`, the two
//! ways a program enables it. The hook library itself is built by `make hook` (the
//! one place that knows how; `make build` runs it too).
//!
//! Also here: the runtime never reaches a hooked libc function itself (it would enter
//! its own hooks): `runtime_calls_no_hooked_libc_function` checks libgoroutine.so's
//! undefined symbols and the source.
//!
//! Run one: `cargo test --release --test hook echo -- --nocapture`. The programs are
//! built into `target/release/hook-tests/` (NAME linked, NAME-plain for LD_PRELOAD).

mod common;
use common::Outcome;

use std::collections::HashMap;
use std::fs;
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

const MANIFEST: &str = env!("CARGO_MANIFEST_DIR");

/// The functions the hook layer interposes (hook/*.c's EXPORTs). The test
/// `hooked_list_matches_the_library` keeps this list equal to what the built
/// library exports.
const HOOKED: &[&str] = &[
    "__poll_chk",
    "__ppoll_chk",
    "__read_chk",
    "__recv_chk",
    "__recvfrom_chk",
    "accept",
    "accept4",
    "clock_nanosleep",
    "close",
    "connect",
    "dup",
    "dup2",
    "dup3",
    "epoll_create",
    "epoll_create1",
    "epoll_pwait",
    "epoll_wait",
    "fclose",
    "fcntl",
    "fcntl64",
    "getaddrinfo",
    "gethostbyname",
    "gethostbyname2",
    "gethostbyname2_r",
    "gethostbyname_r",
    "getnameinfo",
    "ioctl",
    "nanosleep",
    "pipe",
    "pipe2",
    "poll",
    "ppoll",
    "pselect",
    "read",
    "readv",
    "recv",
    "recvfrom",
    "recvmsg",
    "select",
    "send",
    "sendmsg",
    "sendto",
    "setsockopt",
    "sleep",
    "socket",
    "socketpair",
    "usleep",
    "write",
    "writev",
];

// ---------------------------------------------------------------- plain libc

/// 1,000 goroutines x usleep(100 ms) on 1 proc: under 0.6 s, no thread added; the
/// other sleep calls' results.
#[test]
fn sleeps() {
    run_ok("sleeps", Link::Linked, &[], &[]);
}

/// The same program with the layer preloaded into a binary that does not link it.
#[test]
fn sleeps_preloaded() {
    run_ok("sleeps", Link::Preloaded, &[], &[]);
}

/// Blocking pipe reads park; writes complete; EBADF from read(-1), from close and
/// dup2 of a waited fd; no stale readiness; a plain thread's read is untouched.
#[test]
fn pipes() {
    run_ok("pipes", Link::Linked, &[], &[]);
}

/// O_NONBLOCK, timeouts, connect, completing writes, poll/select/epoll_wait, close.
#[test]
fn sockets() {
    run_ok("sockets", Link::Linked, &[], &[]);
}

/// Blocking-style echo, 200 clients, 1 proc: well under 1 s, no thread added.
#[test]
fn echo() {
    run_ok("echo", Link::Linked, &[], &[]);
}

#[test]
fn echo_preloaded() {
    run_ok("echo", Link::Preloaded, &[], &[]);
}

/// A cancelled context fails each hooked call that would wait with errno
/// ECANCELED (ETIMEDOUT for a deadline): read, recv, write, accept, poll, select,
/// epoll_wait, the sleeps.
#[test]
fn cancel_calls() {
    run_ok("cancel_calls", Link::Linked, &[], &[]);
}

/// GR_HOOK=0 turns the layer off: a goroutine's usleep then blocks its thread in the
/// kernel; with the layer on it does not.
#[test]
fn gr_hook_0_turns_the_layer_off() {
    run_ok("layer_off", Link::Preloaded, &["on"], &[]);
    run_ok("layer_off", Link::Preloaded, &["off"], &[("GR_HOOK", "0")]);
}

// ---------------------------------------------------------------- GRDEBUG=blockprof=1

/// The blocking-call report: a waitpid that holds the processor (not covered by the
/// hook layer) is named once, with its goroutine and caller; a terminal read the
/// hook layer passes through, and a usleep it parks, are not.
#[test]
fn blockprof_names_calls_that_hold_a_processor() {
    let exe = compiled("blockprof", Link::Linked, &["-rdynamic"]);
    let env = [("GRDEBUG".to_string(), "blockprof=1".to_string())];
    let r = run(&exe, &[], &env, Duration::from_secs(60));
    assert!(r.status.success(), "{}", r.describe());
    let lines: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.starts_with("libgoroutine: blockprof:"))
        .collect();
    print!("{}", lines.join("\n"));
    assert_eq!(
        lines.len(),
        1,
        "expected one blockprof line\n{}",
        r.describe()
    );
    let l = lines[0];
    assert!(
        l.contains("(reaper)") && l.contains("wait") && l.contains("called from reap_child+"),
        "the line should name the goroutine (reaper), the call (wait4/waitpid) and its \
         caller (reap_child):\n{l}"
    );
}

// ---------------------------------------------------------------- real libraries, unchanged

/// hiredis: 500 goroutines x `BLPOP key 1` against a redis-server started here, 2
/// procs: about 1 s, at most 8 threads added (the program is built without the hook
/// library and run with it preloaded).
#[test]
fn hiredis_blpop() {
    let test = "hiredis_blpop";
    if !common::need_tool(test, "redis-server", "redis-server")
        || !common::need_file(
            test,
            "hiredis/hiredis.h",
            "libhiredis-dev",
            &["/usr/include/hiredis/hiredis.h"],
        )
    {
        return;
    }
    let dir = TempDir::new("redis");
    let port = free_port();
    let redis = Server(
        Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--maxclients", "4096"])
            .arg("--dir")
            .arg(&dir.0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts"),
    );
    wait_for_port(port, Duration::from_secs(20));
    let exe = compiled(test, Link::Preloaded, &["-lhiredis"]);
    run_ok_exe(test, &exe, Link::Preloaded, &[&port.to_string()], &[]);
    drop(redis);
}

/// Structured cancellation through hiredis: `BLPOP key 5` in a goroutine whose
/// context times out after 100 ms returns hiredis's own error within 110 ms; a
/// cancel by another goroutine gives its I/O error with errno ECANCELED.
#[test]
fn hiredis_deadline() {
    let test = "hiredis_deadline";
    if !common::need_tool(test, "redis-server", "redis-server")
        || !common::need_file(
            test,
            "hiredis/hiredis.h",
            "libhiredis-dev",
            &["/usr/include/hiredis/hiredis.h"],
        )
    {
        return;
    }
    let dir = TempDir::new("redis");
    let port = free_port();
    let redis = Server(
        Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&dir.0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts"),
    );
    wait_for_port(port, Duration::from_secs(20));
    let exe = compiled(test, Link::Preloaded, &["-lhiredis"]);
    run_ok_exe(test, &exe, Link::Preloaded, &[&port.to_string()], &[]);
    drop(redis);
}

/// libcurl's easy API: 100 goroutines x GET from a server (goroutines in the same
/// program) that answers after 300 ms, 2 procs: about 0.35 s, at most 8 threads
/// added.
#[test]
fn curl_get() {
    let test = "curl_get";
    if !common::need_curl(test) {
        return;
    }
    let exe = compiled(test, Link::Preloaded, &["-lcurl"]);
    run_ok_exe(test, &exe, Link::Preloaded, &[], &[]);
}

/// libpq: 50 goroutines x `SELECT pg_sleep(0.2)` against a PostgreSQL server started
/// here with initdb/pg_ctl in a temporary directory (as the `postgres` user when
/// running as root, since PostgreSQL refuses root), 2 procs.
#[test]
fn libpq_pg_sleep() {
    let test = "pq_sleep";
    let bin = ["15", "16", "17", "14", "13"]
        .iter()
        .map(|v| PathBuf::from(format!("/usr/lib/postgresql/{v}/bin")))
        .find(|d| d.join("initdb").exists() && d.join("pg_ctl").exists());
    if !common::need(test, "initdb and pg_ctl", "postgresql", bin.is_some())
        || !common::need_file(
            test,
            "libpq-fe.h",
            "libpq-dev",
            &["/usr/include/postgresql/libpq-fe.h"],
        )
    {
        return;
    }
    let bin = bin.unwrap();
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let owner = if root {
        Some(user_ids("postgres"))
    } else {
        None
    };
    if root
        && !common::need(
            test,
            "a postgres user",
            "postgresql",
            owner.unwrap().is_some(),
        )
    {
        return;
    }
    let owner = owner.flatten();
    // Under /tmp: the server's user must reach it (target/ may be private).
    let dir = TempDir::in_dir(&std::env::temp_dir(), "pg");
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::chown(&dir.0, Some(uid), Some(gid)).expect("chown");
    }
    let data = dir.0.join("data");
    let as_owner = |cmd: &mut Command| {
        if let Some((uid, gid)) = owner {
            cmd.uid(uid).gid(gid);
        }
    };
    let mut initdb = Command::new(bin.join("initdb"));
    initdb
        .args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"])
        .arg(&data);
    as_owner(&mut initdb);
    let out = initdb.output().expect("initdb runs");
    assert!(
        out.status.success(),
        "initdb failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let port = free_port();
    let opts = format!(
        "-p {port} -k {} -c listen_addresses=127.0.0.1 -c max_connections=100 -c fsync=off",
        dir.0.display()
    );
    let pg_ctl = |args: &[&str]| {
        let mut c = Command::new(bin.join("pg_ctl"));
        c.arg("-D").arg(&data).args(args);
        as_owner(&mut c);
        c.stdout(Stdio::null()).stderr(Stdio::null());
        c
    };
    let log = dir.0.join("log");
    let started = pg_ctl(&[
        "-w",
        "-t",
        "60",
        "-l",
        log.to_str().unwrap(),
        "-o",
        &opts,
        "start",
    ])
    .status()
    .expect("pg_ctl runs");
    // Stopped however the test ends.
    struct Stop<F: FnMut()>(F);
    impl<F: FnMut()> Drop for Stop<F> {
        fn drop(&mut self) {
            (self.0)();
        }
    }
    let _stop = Stop(|| {
        let _ = pg_ctl(&["-w", "-m", "immediate", "stop"]).status();
    });
    assert!(
        started.success(),
        "pg_ctl start failed:\n{}",
        fs::read_to_string(&log).unwrap_or_default()
    );
    let exe = compiled(
        test,
        Link::Preloaded,
        &["-I", "/usr/include/postgresql", "-lpq"],
    );
    let conninfo =
        format!("host=127.0.0.1 port={port} user=postgres dbname=postgres sslmode=disable");
    run_ok_exe(test, &exe, Link::Preloaded, &[&conninfo], &[]);
}

/// The uid and gid of a user, from the password database.
fn user_ids(name: &str) -> Option<(u32, u32)> {
    let cname = std::ffi::CString::new(name).unwrap();
    // SAFETY: getpwnam returns NULL or a pointer to a static record, read at once.
    unsafe {
        let pw = libc::getpwnam(cname.as_ptr());
        (!pw.is_null()).then(|| ((*pw).pw_uid, (*pw).pw_gid))
    }
}

/// A port on 127.0.0.1 that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

fn wait_for_port(port: u16, limit: Duration) {
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < limit,
            "nothing listens on port {port} after {limit:?}"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// A server process, killed when dropped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A directory removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(what: &str) -> TempDir {
        TempDir::in_dir(Path::new(env!("CARGO_TARGET_TMPDIR")), what)
    }

    fn in_dir(parent: &Path, what: &str) -> TempDir {
        let dir = parent.join(format!("gr-hook-{what}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("a temporary directory");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

// ---------------------------------------------------------------- the runtime's own calls

/// Every system call the runtime makes that the layer interposes goes through
/// src/runtime/sys.rs, straight to the kernel: otherwise the runtime would enter its
/// own hooks (and park inside the scheduler). Checked two ways:
///
/// 1. libgoroutine.so's undefined dynamic symbols (`nm -D --undefined-only`) include
///    no hooked function but those on `ALLOWED`, each referenced only by std code that
///    cannot run on a goroutine (the reason is given with it);
/// 2. no code from src/ refers to those (every instruction that loads their GOT slot
///    comes from a std or core source line, inlined or not);
/// 3. no file in src/ but sys.rs calls a hooked function through the libc crate, nor
///    the parts of std that do (std::fs, std::io::stderr/stdout, eprintln!/println!,
///    std::thread::sleep, std::net).
#[test]
fn runtime_calls_no_hooked_libc_function() {
    /// (symbol, who references it and why that never runs on a goroutine)
    const ALLOWED: &[(&str, &str)] = &[
        (
            "write",
            "std's stderr: its default panic hook, which the runtime replaces when it \
             starts (sys::install_panic_hook; before that no goroutine exists), and the \
             last words of __rust_drop_panic/__rust_foreign_exception before an abort",
        ),
        ("writev", "the same (std's stderr, vectored)"),
        (
            "read",
            "std::fs in std's backtrace symbolisation (the default panic hook, replaced) \
             and in std::thread::available_parallelism (cgroup quota files), called by \
             sched::init, which runs before any goroutine exists",
        ),
        ("close", "the same (std::fs)"),
    ];
    let lib = common::lib_dir().join("libgoroutine.so");
    let out = Command::new("nm")
        .args(["-D", "--undefined-only"])
        .arg(&lib)
        .output()
        .expect("nm (binutils) runs");
    assert!(out.status.success(), "nm failed on {}", lib.display());
    let undefined: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().last())
        .map(|s| s.split('@').next().unwrap_or(s).to_string())
        .collect();
    let bad: Vec<&String> = undefined
        .iter()
        .filter(|s| HOOKED.contains(&s.as_str()))
        .filter(|s| !ALLOWED.iter().any(|(a, _)| a == s))
        .collect();
    assert!(
        bad.is_empty(),
        "libgoroutine.so calls hooked libc functions {bad:?}: make the system call through \
         src/runtime/sys.rs instead"
    );

    // 2: who refers to the allowed ones. Calls go through GOT slots (relocations
    // naming the symbol); objdump annotates each reference with the slot's symbol.
    let relocs = Command::new("readelf")
        .args(["-r", "-W"])
        .arg(&lib)
        .output()
        .expect("readelf (binutils) runs");
    let slots: Vec<String> = String::from_utf8_lossy(&relocs.stdout)
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let sym = f.get(4)?.split('@').next()?;
            let addr = u64::from_str_radix(f[0], 16).ok()?;
            ALLOWED
                .iter()
                .any(|(a, _)| *a == sym)
                .then(|| format!("# {addr:x} <"))
        })
        .collect();
    let referenced = ALLOWED
        .iter()
        .filter(|(a, _)| undefined.iter().any(|u| u == a))
        .count();
    assert!(
        slots.len() >= referenced,
        "readelf -r lists no GOT slot for some of {ALLOWED:?}: this check must be updated"
    );
    // objdump -l names the source line of each instruction (the innermost one where
    // code was inlined): a reference from a line in src/ is the runtime's own.
    let dis = Command::new("objdump")
        .args(["-d", "-l", "--no-show-raw-insn"])
        .arg(&lib)
        .output()
        .expect("objdump (binutils) runs");
    let src = format!("{MANIFEST}/src/");
    let mut place = "";
    let mut ours = Vec::new();
    let text = String::from_utf8_lossy(&dis.stdout);
    for line in text.lines() {
        if line.starts_with('/') && line.contains(".rs:") {
            place = line;
        } else if slots.iter().any(|s| line.contains(s.as_str())) && place.starts_with(&src) {
            ours.push(format!("{place}: {}", line.trim()));
        }
    }
    assert!(
        ours.is_empty(),
        "the runtime's own code calls hooked libc functions:\n{}",
        ours.join("\n")
    );

    // 3: the source.
    let forbidden_std = [
        "std::fs",
        "std::io::stderr",
        "std::io::stdout",
        "eprintln!",
        "eprint!",
        "println!",
        "print!",
        "std::thread::sleep",
        "std::net",
    ];
    let mut found = Vec::new();
    for path in rust_files(&Path::new(MANIFEST).join("src")) {
        if path.ends_with("runtime/sys.rs") {
            continue;
        }
        let text = fs::read_to_string(&path).unwrap();
        for (i, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for f in HOOKED {
                if code.contains(&format!("libc::{f}(")) {
                    found.push(format!("{}:{}: libc::{f}", path.display(), i + 1));
                }
            }
            for s in forbidden_std {
                if code.contains(s) {
                    found.push(format!("{}:{}: {s}", path.display(), i + 1));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "hooked libc calls outside src/runtime/sys.rs:\n{}",
        found.join("\n")
    );
}

/// `HOOKED` is what libgoroutine_hook.so exports (so the check above knows them all).
#[test]
fn hooked_list_matches_the_library() {
    let lib = hook_lib();
    let out = Command::new("nm")
        .args(["-D", "--defined-only"])
        .arg(&lib)
        .output()
        .expect("nm (binutils) runs");
    let mut exported: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().last().map(String::from))
        .collect();
    exported.sort();
    let want: Vec<String> = HOOKED.iter().map(|s| s.to_string()).collect();
    assert_eq!(exported, want, "update HOOKED in tests/hook.rs");
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(rust_files(&p));
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
    out
}

// ---------------------------------------------------------------- machinery

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Link {
    /// Linked with -lgoroutine_hook (kept under --as-needed).
    Linked,
    /// Linked with libgoroutine only, run with LD_PRELOAD=libgoroutine_hook.so.
    Preloaded,
}

/// Runs tests/hook/NAME.c; it must exit 0 with `ok` as its last line.
fn run_ok(name: &str, link: Link, args: &[&str], env: &[(&str, &str)]) {
    run_ok_exe(name, &compiled(name, link, &[]), link, args, env);
}

fn run_ok_exe(name: &str, exe: &Path, link: Link, args: &[&str], env: &[(&str, &str)]) {
    let mut env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    if link == Link::Preloaded {
        env.push(("LD_PRELOAD".into(), hook_lib().display().to_string()));
    }
    let r = run(exe, args, &env, Duration::from_secs(90));
    let last = r.stdout.lines().rev().find(|l| !l.trim().is_empty());
    assert!(
        r.status.success() && last == Some("ok"),
        "tests/hook/{name}.c ({link:?}) {args:?} failed{}\n{}",
        if r.timed_out {
            " (killed after 90 s)"
        } else {
            ""
        },
        r.describe()
    );
    print!("{}", r.stdout);
}

/// libgoroutine_hook.so beside that libgoroutine.so, built by `make hook` (once per
/// test process).
fn hook_lib() -> PathBuf {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BUILT
        .get_or_init(|| common::hook_library(common::lib_dir()))
        .clone()
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Compiles tests/hook/NAME.c (with `extra` gcc arguments after the libraries) once
/// per test process and link mode.
fn compiled(name: &str, link: Link, extra: &[&str]) -> PathBuf {
    type Slot = Arc<OnceLock<Result<PathBuf, String>>>;
    static BUILT: OnceLock<Mutex<HashMap<(String, Link), Slot>>> = OnceLock::new();
    let slot = BUILT
        .get_or_init(Default::default)
        .lock()
        .unwrap()
        .entry((name.to_string(), link))
        .or_default()
        .clone();
    slot.get_or_init(|| compile(name, link, extra))
        .clone()
        .unwrap_or_else(|e| panic!("{e}"))
}

fn compile(name: &str, link: Link, extra: &[&str]) -> Result<PathBuf, String> {
    let lib = common::lib_dir();
    hook_lib();
    let out_dir = lib
        .parent()
        .filter(|_| lib.ends_with("deps"))
        .unwrap_or(lib)
        .join("hook-tests");
    fs::create_dir_all(&out_dir).map_err(|e| format!("{}: {e}", out_dir.display()))?;
    let file = match link {
        Link::Linked => name.to_string(),
        Link::Preloaded => format!("{name}-plain"),
    };
    let exe = out_dir.join(&file);
    // One temporary per output file: the two link modes of one program are compiled
    // at once by tests running in parallel.
    let tmp = out_dir.join(format!(".{file}.{}", std::process::id()));
    let src = Path::new(MANIFEST)
        .join("tests/hook")
        .join(format!("{name}.c"));
    let mut cmd = Command::new("gcc");
    cmd.args(["-O2", "-g", "-Wall", "-Werror", "-pthread", "-I"])
        .arg(Path::new(MANIFEST).join("include"))
        .arg("-I")
        .arg(Path::new(MANIFEST).join("tests/c"))
        .arg("-o")
        .arg(&tmp)
        .arg(&src)
        .arg("-L")
        .arg(lib);
    if link == Link::Linked {
        cmd.args(["-Wl,--no-as-needed", "-lgoroutine_hook", "-Wl,--as-needed"]);
    }
    cmd.arg("-lgoroutine")
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .args(extra);
    let out = cmd.output().map_err(|e| format!("cannot run gcc: {e}"))?;
    if !out.status.success() {
        let _ = fs::remove_file(&tmp);
        return Err(format!(
            "{} does not compile:\n{cmd:?}\n{}",
            src.display(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    fs::rename(&tmp, &exe).map_err(|e| format!("{}: {e}", exe.display()))?;
    Ok(exe)
}

/// Runs a program in its own process group with the GR_* variables of this
/// environment removed (plus `env`), killing the group after `timeout`. One program
/// at a time: they measure time (timeouts within 50%, thread counts), and on two CPUs
/// 500 hiredis clients beside a 100 ms select would measure each other.
fn run(exe: &Path, args: &[&str], env: &[(String, String)], timeout: Duration) -> Outcome {
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut cmd = common::program(exe);
    cmd.args(args).envs(env.iter().map(|(k, v)| (k, v)));
    let what = format!("{} {}", exe.display(), args.join(" "));
    common::run_captured(&mut cmd, what, timeout)
}
