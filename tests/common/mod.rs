//! Skips for tests that need an optional tool: anything the README does not list as a
//! prerequisite (Rust, gcc, GNU make, Python 3 with venv), such as cmake, gdb, wrk or
//! Go. A test file uses it with `mod common;` and asks before it uses the tool:
//!
//! ```ignore
//! if !common::need_tool("gdb_backtraces_a_running_goroutine", "gdb", "gdb") {
//!     return;
//! }
//! ```
//!
//! A missing tool is one line, `SKIP <test>: needs <what> (Debian package <package>)`,
//! and the test goes on without that part (or returns, and passes). With
//! `GR_REQUIRE_ALL=1` (set by `.ci/run`, which installs every tool) the same line is a
//! panic instead, so CI proves that everything runs.
//!
//! libtest captures what a passing test prints, so the line is written to the
//! process's stderr directly (shown at once, also under capture) and appended to the
//! skip log that `make test`'s closing summary counts and lists: the file named by
//! `GR_SKIP_LOG` (make test sets one per suite), else `target/tmp/skips.log`.

// Each test binary compiles its own copy of this module and uses only some of it.
#![allow(dead_code, reason = "each test binary uses part of this module")]

use std::ffi::OsStr;
use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// True if `tool` is an executable on PATH (or, for a name with a `/`, that file);
/// otherwise reports the skip as `need` does and returns false.
pub fn need_tool(test: &str, tool: &str, package: &str) -> bool {
    need(test, tool, package, which(tool).is_some())
}

/// For what `need_tool` cannot see on PATH (a header, a library, a module): the caller
/// says whether `what` is `present`. Returns `present`; when false, prints and logs
/// the SKIP line, or panics with it under `GR_REQUIRE_ALL=1`.
pub fn need(test: &str, what: &str, package: &str, present: bool) -> bool {
    if present {
        return true;
    }
    let line = format!("SKIP {test}: needs {what} (Debian package {package})");
    if std::env::var_os("GR_REQUIRE_ALL").is_some_and(|v| v == "1") {
        panic!("{line} [GR_REQUIRE_ALL=1: a skip is a failure]");
    }
    // Not eprintln!: libtest would capture it. One write, so that the line stays whole
    // among libtest's own lines.
    let entry = format!("{line}\n");
    let _ = std::io::stderr().write_all(entry.as_bytes());
    let log = skip_log();
    if let Some(dir) = log.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    // One write of one short line with O_APPEND: tests running in parallel threads (or
    // processes) do not interleave their lines.
    match OpenOptions::new().create(true).append(true).open(&log) {
        Ok(mut f) => {
            let _ = f.write_all(entry.as_bytes());
        }
        Err(e) => {
            let _ = writeln!(
                std::io::stderr(),
                "cannot append to the skip log {}: {e}",
                log.display()
            );
        }
    }
    false
}

/// Like `need`, for a file: present when any of `paths` exists (a header, say).
pub fn need_file(test: &str, what: &str, package: &str, paths: &[&str]) -> bool {
    need(
        test,
        what,
        package,
        paths.iter().any(|p| Path::new(p).exists()),
    )
}

/// libcurl's headers (for the programs that use libcurl), or the SKIP line.
pub fn need_curl(test: &str) -> bool {
    need_file(
        test,
        "curl/curl.h",
        "libcurl4-openssl-dev",
        &[
            "/usr/include/curl/curl.h",
            "/usr/include/x86_64-linux-gnu/curl/curl.h",
        ],
    )
}

/// `target/<profile>`, the test binary's `deps/`'s parent: where test programs are
/// compiled to (`c-tests/`, `c-examples/`).
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>")
        .to_path_buf()
}

/// The directory holding the libgoroutine.so this test binary was built with, with
/// the link its soname asks for (`soname_link`). The test binary is
/// `target/<profile>/deps/NAME-HASH`, and `cargo test` leaves the library it has just
/// built next to it in `deps/`; only `cargo build` copies it up to `target/<profile>/`,
/// where an older one may lie. This follows CARGO_TARGET_DIR and the profile.
pub fn lib_dir() -> &'static Path {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let deps = std::env::current_exe()
            .expect("the test binary's path")
            .parent()
            .unwrap()
            .to_path_buf();
        let dir = [deps.clone(), profile_dir()]
            .into_iter()
            .find(|d| d.join("libgoroutine.so").exists())
            .unwrap_or_else(|| panic!("no libgoroutine.so in {} or its parent", deps.display()));
        soname_link(&dir);
        dir
    })
}

/// Makes `dir/GR_SONAME` (build.rs: the soname, libgoroutine.so.ABI) a link to the
/// libgoroutine.so there, as the top Makefile's `soname-link` does: cargo does not
/// make it, and programs linked against that library look for it when they run.
pub fn soname_link(dir: &Path) {
    let soname = dir.join(env!("GR_SONAME"));
    if std::fs::read_link(&soname).ok().as_deref() != Some(Path::new("libgoroutine.so")) {
        let _ = std::fs::remove_file(&soname);
        if let Err(e) = std::os::unix::fs::symlink("libgoroutine.so", &soname) {
            assert!(soname.exists(), "cannot link {}: {e}", soname.display());
        }
    }
}

/// Builds libgoroutine_hook.so beside the libgoroutine.so in `libdir` with the one
/// build command there is for it (`make hook`, mk/hook.mk) and returns its path.
pub fn hook_library(libdir: &Path) -> Result<PathBuf, String> {
    let out = std::process::Command::new("make")
        .args([
            "-s",
            "--no-print-directory",
            "-C",
            env!("CARGO_MANIFEST_DIR"),
            "hook",
        ])
        .arg(format!("HOOK_LIBDIR={}", libdir.display()))
        .env_remove("MAKEFLAGS")
        .env_remove("MFLAGS")
        .output()
        .map_err(|e| format!("cannot run make: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "make hook failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(libdir.join("libgoroutine_hook.so"))
}

/// Where `tool` is: the first executable of that name in a PATH directory, or for a
/// name with a `/`, that file if it is executable.
pub fn which(tool: &str) -> Option<PathBuf> {
    let executable = |p: &Path| {
        use std::os::unix::fs::PermissionsExt;
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if tool.contains('/') {
        return executable(Path::new(tool)).then(|| PathBuf::from(tool));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(tool))
        .find(|p| executable(p))
}

fn skip_log() -> PathBuf {
    match std::env::var_os("GR_SKIP_LOG") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        // cargo sets CARGO_TARGET_TMPDIR (target/tmp) for integration tests.
        _ => Path::new(env!("CARGO_TARGET_TMPDIR")).join("skips.log"),
    }
}

// ---------------------------------------------------------------- running test programs

/// What a test program did: `run_captured`'s answer.
pub struct Outcome {
    pub what: String,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
    pub timed_out: bool,
}

impl Outcome {
    /// How it ended and the last 8 KiB of each output, for a failure message.
    pub fn describe(&self) -> String {
        let how = if self.timed_out {
            "killed after its timeout".to_string()
        } else if let Some(sig) = self.status.signal() {
            format!("killed by signal {sig}")
        } else {
            format!("exit status {}", self.status.code().unwrap_or(-1))
        };
        format!(
            "{}: {how} after {:.2} s\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.what,
            self.elapsed.as_secs_f64(),
            tail(&self.stdout),
            tail(&self.stderr)
        )
    }
}

/// The last 8 KiB of a long output.
pub fn tail(s: &str) -> &str {
    let mut start = s.len().saturating_sub(8192);
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

/// A command for a test program: stdin closed, output captured, its own process
/// group (so a timeout can kill all of it), and this environment's GR_* variables
/// removed (the caller adds the ones the test wants after this).
pub fn program(exe: impl AsRef<OsStr>) -> Command {
    let mut cmd = Command::new(exe);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("GR_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// Whether child `pid` has ended, leaving it to be reaped (waitid's WNOWAIT).
fn exited_unreaped(pid: libc::pid_t) -> bool {
    // SAFETY: a zeroed siginfo_t is a valid out-parameter; waitid writes only into it.
    unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        let rc = libc::waitid(
            libc::P_PID,
            pid as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        );
        rc == 0 && info.si_pid() == pid
    }
}

/// Reads a child's pipe to its end on a thread of its own (so that a child filling
/// the other pipe cannot stall it), as text.
pub fn read_all(mut pipe: impl Read + Send + 'static) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    })
}

/// Runs a command made by `program` to its end, killing its process group after
/// `timeout`; `what` names it in `describe`. Whatever the command left running in its
/// group when it ended (a child it forked and a failure's `_exit` did not stop) is
/// killed too: it would hold the output pipes open, and this wait would never end.
pub fn run_captured(cmd: &mut Command, what: String, timeout: Duration) -> Outcome {
    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    let out = read_all(child.stdout.take().unwrap());
    let err = read_all(child.stderr.take().unwrap());
    let group = child.id() as libc::pid_t;
    let timed_out = loop {
        if exited_unreaped(group) {
            break false;
        }
        if start.elapsed() > timeout {
            break true;
        }
        thread::sleep(Duration::from_millis(10));
    };
    // SAFETY: kill(2) on the child's own process group (`program` made one), before
    // the child is reaped: until then its id cannot go to another process.
    unsafe { libc::kill(-group, libc::SIGKILL) };
    let status = child.wait().expect("wait");
    let elapsed = start.elapsed();
    Outcome {
        what,
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
        elapsed,
        timed_out,
    }
}
