//! The programs in `c_examples/` (all but `demo.c`, which `tests/c_tests.rs` runs):
//! each is compiled with gcc against `include/goroutine.h` and the `libgoroutine.so`
//! cargo has just built (`common::lib_dir`, also the rpath), then run under a timeout;
//! those with a `--selftest` mode run it and must exit 0 with `ok` as the last line
//! of their stdout, the others must exit 0 (the `examples!` table below).
//! The servers are also started in their ordinary mode, on a port given on the
//! command line, and talked to over TCP from here.
//!
//! hook_fetch.c is linked with the hook library too (built by `make hook` beside the
//! library) and libcurl; without libcurl's headers it is skipped (one SKIP line).
//!
//! Run one: `cargo test --release --test examples example::http_hello -- --nocapture`.
//! The compiled programs are in `target/release/c-examples/`.

mod common;

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

const MANIFEST: &str = env!("CARGO_MANIFEST_DIR");

/// One row per program: `name(args...) timeout_secs check`. `selftest` rows must
/// also end their stdout with a line `ok`; `exit0` rows (examples that print a demo
/// rather than a verdict) must exit 0. `every_example_is_tested` keeps the table
/// complete: a new example needs a row.
macro_rules! examples {
    ($($name:ident($($arg:literal),*) $secs:literal $check:ident),* $(,)?) => {
        const TESTED: &[&str] = &[$(stringify!($name)),*];
        mod example {
            $(
                #[test]
                fn $name() {
                    super::run_example(stringify!($name), &[$($arg),*], $secs, super::Check::$check);
                }
            )*
        }
    };
}

examples! {
    // fast jobs answered, slow ones cut at 200 ms, a client that leaves cancels its
    // job, 200 mixed clients at once, shutdown with a job in flight.
    deadline_server("--selftest") 60 selftest,
    // 1,000 client goroutines x 64 KiB, every byte checked.
    echo_server("--selftest") 120 selftest,
    // keep-alive, pipelined, split, body, close, HTTP/1.0, 100 concurrent clients.
    http_hello("--selftest") 60 selftest,
    // 50 libcurl fetches at once through the hook layer, every body checked.
    hook_fetch("--selftest") 60 selftest,
    // 10,000 goroutines sleeping 0..199 x 10 ms, woken in order.
    sleep_sort("--selftest") 60 selftest,
    bridge() 60 exit0,
    hello() 30 exit0,
    pipeline() 60 exit0,
    tour("--quick") 120 exit0,
    wg_fanout("100000") 60 exit0,
    yield_ping("10000") 30 exit0,
}

#[derive(Clone, Copy, PartialEq)]
#[allow(non_camel_case_types)]
enum Check {
    /// exit 0 and `ok` as the last line of stdout
    selftest,
    /// exit 0
    exit0,
}

#[test]
fn every_example_is_tested() {
    let mut files: Vec<String> = fs::read_dir(Path::new(MANIFEST).join("c_examples"))
        .expect("c_examples/")
        .filter_map(|e| {
            let path = e.ok()?.path();
            (path.extension()? == "c")
                .then(|| path.file_stem().unwrap().to_string_lossy().into_owned())
        })
        .filter(|name| name != "demo")
        .collect();
    files.sort();
    let mut tested: Vec<String> = TESTED.iter().map(|s| s.to_string()).collect();
    tested.sort();
    assert_eq!(
        files, tested,
        "c_examples/*.c (but demo.c) and the examples! table in tests/examples.rs differ"
    );
}

/// `http_hello PORT`: a keep-alive connection gets the fixed response to every request.
#[test]
fn http_hello_serves_a_port_from_argv() {
    let port = free_port();
    let server = Server::start("http_hello", &[&port.to_string()]);
    let mut s = server.connect(port);
    const RESPONSE: &[u8] =
        b"HTTP/1.1 200 OK\r\nContent-Length: 14\r\nContent-Type: text/plain\r\n\r\nHello, World!\n";
    for i in 0..100 {
        s.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .unwrap();
        let mut got = vec![0u8; RESPONSE.len()];
        s.read_exact(&mut got)
            .unwrap_or_else(|e| panic!("response {i}: {e}\n{}", server.output()));
        assert_eq!(got, RESPONSE, "response {i}");
    }
    // Two pipelined requests, then Connection: close.
    s.write_all(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).unwrap();
    assert_eq!(rest, [RESPONSE, RESPONSE].concat());
}

/// `echo_server PORT`: what is sent comes back, on several connections at once.
#[test]
fn echo_server_serves_a_port_from_argv() {
    let port = free_port();
    let server = Server::start("echo_server", &[&port.to_string()]);
    let handles: Vec<_> = (0..8)
        .map(|k| {
            let mut s = server.connect(port);
            thread::spawn(move || {
                let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 + k) as u8).collect();
                let mut w = s.try_clone().unwrap();
                let sent = data.clone();
                let writer = thread::spawn(move || {
                    w.write_all(&sent).unwrap();
                    w.shutdown(std::net::Shutdown::Write).unwrap();
                });
                let mut back = Vec::new();
                s.read_to_end(&mut back).unwrap();
                writer.join().unwrap();
                assert!(back == data, "connection {k}: the echo differs");
            })
        })
        .collect();
    for h in handles {
        h.join()
            .unwrap_or_else(|_| panic!("a client failed\n{}", server.output()));
    }
}

/// `deadline_server PORT`: a job that fits the 200 ms deadline is answered, one that
/// does not gets 504 at the deadline (not before it).
#[test]
fn deadline_server_serves_a_port_from_argv() {
    let port = free_port();
    let server = Server::start("deadline_server", &[&port.to_string()]);
    for (request, want, min_ms) in [
        ("WORK 10\n", "200 done in ", 10),
        ("WORK 3000\n", "504 deadline exceeded\n", 200),
    ] {
        let mut s = server.connect(port);
        let t0 = Instant::now();
        s.write_all(request.as_bytes()).unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer)
            .unwrap_or_else(|e| panic!("{request:?}: {e}\n{}", server.output()));
        let ms = t0.elapsed().as_millis();
        assert!(
            answer.starts_with(want) && ms >= min_ms && ms < 2000,
            "{request:?}: answered {answer:?} after {ms} ms (expected {want:?} after \
             {min_ms} ms or more)\n{}",
            server.output()
        );
    }
}

// ---------------------------------------------------------------- machinery

fn run_example(name: &str, args: &[&str], timeout_secs: u64, check: Check) {
    if name == "hook_fetch" && !common::need_curl("example::hook_fetch") {
        return;
    }
    let exe = compiled(name);
    let r = common::run_captured(
        common::program(&exe).args(args),
        format!("{} {}", exe.display(), args.join(" ")),
        Duration::from_secs(timeout_secs),
    );
    let stdout = &r.stdout;
    let last = stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    assert!(
        !r.timed_out && r.status.success() && (check == Check::exit0 || last.trim() == "ok"),
        "{}",
        r.describe()
    );
    // The summary line (the sorted numbers are long: only the last lines).
    for l in stdout
        .lines()
        .rev()
        .take(3)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
    {
        println!("{l}");
    }
}

/// A port nobody listens on right now (the kernel's choice; released at once).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A server example running in the background; killed (with its process group)
/// when dropped.
struct Server {
    child: Mutex<Child>,
    out: Mutex<Option<thread::JoinHandle<String>>>,
}

impl Server {
    fn start(name: &str, args: &[&str]) -> Server {
        let exe = compiled(name);
        let mut child = Command::new(&exe)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", exe.display()));
        let err = common::read_all(child.stderr.take().unwrap());
        Server {
            child: Mutex::new(child),
            out: Mutex::new(Some(err)),
        }
    }

    /// Connects, retrying for up to 10 s while the server starts.
    fn connect(&self, port: u16) -> TcpStream {
        let start = Instant::now();
        loop {
            match TcpStream::connect(("127.0.0.1", port)) {
                // Before the server listens, a connect to a port in the ephemeral range
                // can be given that same port as its own and connect to itself (TCP's
                // simultaneous open): not the server, so try again.
                Ok(s) if s.local_addr().ok() == s.peer_addr().ok() => {
                    thread::sleep(Duration::from_millis(20));
                }
                Ok(s) => {
                    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                    s.set_write_timeout(Some(Duration::from_secs(20))).unwrap();
                    return s;
                }
                Err(e) => {
                    if let Ok(Some(status)) = self.child.lock().unwrap().try_wait() {
                        panic!(
                            "the server exited ({status}) before accepting\n{}",
                            self.output()
                        );
                    }
                    assert!(
                        start.elapsed() < Duration::from_secs(10),
                        "cannot connect to port {port}: {e}"
                    );
                    thread::sleep(Duration::from_millis(20));
                }
            }
        }
    }

    /// Kills the server and returns what it wrote on stderr.
    fn output(&self) -> String {
        self.kill();
        self.out
            .lock()
            .unwrap()
            .take()
            .map(|h| h.join().unwrap())
            .unwrap_or_default()
    }

    fn kill(&self) {
        let mut c = self.child.lock().unwrap();
        // SAFETY: kill(2) on the child's own process group.
        unsafe { libc::kill(-(c.id() as libc::pid_t), libc::SIGKILL) };
        let _ = c.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// What an example links besides libgoroutine: hook_fetch uses libcurl through the
/// hook layer, whose library `make hook` builds beside libgoroutine.so.
fn extra_libs(name: &str) -> Result<Vec<String>, String> {
    if name != "hook_fetch" {
        return Ok(vec![]);
    }
    common::hook_library(common::lib_dir())?;
    Ok([
        "-Wl,--no-as-needed",
        "-lgoroutine_hook",
        "-Wl,--as-needed",
        "-lcurl",
    ]
    .map(String::from)
    .to_vec())
}

/// Compiles c_examples/NAME.c once per test process into target/<profile>/c-examples/.
fn compiled(name: &str) -> PathBuf {
    static BUILT: Mutex<Vec<(String, Result<PathBuf, String>)>> = Mutex::new(Vec::new());
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, r)) = built.iter().find(|(n, _)| n == name) {
        return r.clone().unwrap_or_else(|e| panic!("{e}"));
    }
    let r = compile(name);
    built.push((name.to_string(), r.clone()));
    r.unwrap_or_else(|e| panic!("{e}"))
}

fn compile(name: &str) -> Result<PathBuf, String> {
    let lib = common::lib_dir();
    let src = Path::new(MANIFEST)
        .join("c_examples")
        .join(format!("{name}.c"));
    let out_dir = common::profile_dir().join("c-examples");
    fs::create_dir_all(&out_dir).map_err(|e| format!("{}: {e}", out_dir.display()))?;
    let exe = out_dir.join(name);
    let mut cmd = Command::new("gcc");
    cmd.args(["-O2", "-g", "-Wall", "-Wextra", "-Werror", "-pthread", "-I"])
        .arg(Path::new(MANIFEST).join("include"))
        .arg("-o")
        .arg(&exe)
        .arg(&src)
        .arg("-L")
        .arg(lib)
        .args(extra_libs(name)?)
        .arg("-lgoroutine")
        .arg(format!("-Wl,-rpath,{}", lib.display()));
    let out = cmd.output().map_err(|e| format!("cannot run gcc: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{} does not compile:\n{:?}\n{}",
            src.display(),
            cmd,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(exe)
}
