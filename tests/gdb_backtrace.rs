//! gdb and goroutines. Needs gdb: without it both tests skip (tests/common/mod.rs;
//! `.ci/run` installs it).
//!
//! - The context switch's CFI lets a debugger walk a goroutine's stack: gdb stops a
//!   goroutine inside nested calls and its backtrace must go through the goroutine's
//!   frames to the entry trampoline and end there cleanly (no "corrupt stack", no
//!   frames past the trampoline).
//! - docs/goroutine-gdb.py: with goroutines parked in distinct functions
//!   (tests/gdb/goroutines.c), `info goroutines` lists each with its name, state,
//!   thread (for the running one), function and spawn site, and `goroutine ID bt`
//!   prints a parked goroutine's own frames (from its saved context) and a running
//!   one's thread; afterwards gdb's own `bt` is the stopped thread's again. The same
//!   on a core file the kernel wrote of that program (skipped, with a note, where
//!   core_pattern hands cores to a program instead of writing a file).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Compiles tests/gdb/`name`.c against the library in target/release; returns the
/// executable (in a temporary directory `dir`).
fn compile(name: &str, opt: &str, dir: &Path) -> PathBuf {
    let lib = root().join("target/release");
    common::soname_link(&lib);
    let out = dir.join(name);
    let st = Command::new("gcc")
        .args([opt, "-g", "-Wall", "-I"])
        .arg(root().join("include"))
        .arg(root().join(format!("tests/gdb/{name}.c")))
        .arg("-L")
        .arg(&lib)
        .arg("-lgoroutine")
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .arg("-o")
        .arg(&out)
        .status()
        .expect("gcc");
    assert!(st.success(), "gcc failed on {name}.c");
    out
}

/// A fresh temporary directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(what: &str) -> TempDir {
        let d = std::env::temp_dir().join(format!("gr-gdb-{what}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("temp dir");
        TempDir(d)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs gdb in batch mode with `args` (-ex commands and files); stdout + stderr.
fn gdb(args: &[&str], cwd: &Path) -> String {
    let res = Command::new("timeout")
        .args(["120", "gdb", "-q", "-nx", "-batch"])
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("run gdb under timeout");
    String::from_utf8_lossy(&res.stdout).to_string() + &String::from_utf8_lossy(&res.stderr)
}

#[test]
fn gdb_backtraces_a_running_goroutine() {
    if !common::need_tool("gdb_backtraces_a_running_goroutine", "gdb", "gdb") {
        return;
    }
    let dir = TempDir::new("backtrace");
    let exe = compile("backtrace", "-O1", &dir.0);
    let text = gdb(&["-ex", "run", "-ex", "bt", exe.to_str().unwrap()], &dir.0);
    let bt: Vec<&str> = text.lines().filter(|l| l.starts_with('#')).collect();
    assert!(!bt.is_empty(), "no backtrace from gdb:\n{text}");
    let pos = |needle: &str| bt.iter().position(|l| l.contains(needle));
    let inner = pos("deep_inside").unwrap_or_else(|| panic!("no deep_inside frame:\n{text}"));
    let body = pos(" body ").unwrap_or_else(|| panic!("no body frame:\n{text}"));
    let tramp = pos("gr_ctx_trampoline")
        .unwrap_or_else(|| panic!("backtrace does not reach the trampoline:\n{text}"));
    assert!(inner < body && body < tramp, "frames out of order:\n{text}");
    assert_eq!(tramp, bt.len() - 1, "frames past the trampoline:\n{text}");
    assert!(
        !text.contains("corrupt stack") && !text.contains("previous frame identical"),
        "{text}"
    );
}

/// The goroutines of tests/gdb/goroutines.c: name, the state `info goroutines`
/// shows, and the program's functions its backtrace must show, innermost first.
const SCENE: &[(&str, &str, &[&str])] = &[
    (
        "receiver",
        "waiting: chan receive",
        &["park_in_receive", "receiver"],
    ),
    ("sleeper", "waiting: sleep", &["nap_in_sleep", "sleeper"]),
    ("joiner", "waiting: join", &["wait_for_receiver", "joiner"]),
    ("trapper", "running", &["stop_here", "trapper"]),
];

/// The ids the program printed: "ids receiver=1 sleeper=2 ...".
fn ids_printed(text: &str) -> Vec<(String, u64)> {
    let line = text
        .lines()
        .find(|l| l.starts_with("ids "))
        .unwrap_or_else(|| panic!("the program printed no ids:\n{text}"));
    line[4..]
        .split_whitespace()
        .map(|kv| {
            let (k, v) = kv.split_once('=').expect("name=id");
            (k.to_string(), v.parse().expect("id"))
        })
        .collect()
}

/// The gdb commands of both runs: the program's four goroutines are the first of a
/// fresh process, ids 1 to 4 (`check_script_output` checks that it said so).
fn gdb_commands() -> Vec<String> {
    let script = root().join("docs/goroutine-gdb.py");
    let mut cmds = vec![
        format!("source {}", script.display()),
        "info goroutines".to_string(),
    ];
    for id in 1..=SCENE.len() {
        cmds.push(format!("goroutine {id} bt"));
    }
    // gdb's own view of the stopped thread must be intact afterwards.
    cmds.push("echo ---- plain bt\\n".to_string());
    cmds.push("bt".to_string());
    cmds
}

/// Checks what the script printed about the scene (live or from a core).
fn check_script_output(text: &str, ids: &[(String, u64)]) {
    let id_of = |name: &str| ids.iter().find(|(n, _)| n == name).expect("id").1;
    let mut all: Vec<u64> = ids.iter().map(|(_, id)| *id).collect();
    all.sort();
    assert_eq!(all, (1..=SCENE.len() as u64).collect::<Vec<_>>(), "ids");
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines.iter().any(|l| l.trim() == "4 goroutines"),
        "info goroutines does not count 4:\n{text}"
    );
    for (name, state, funcs) in SCENE {
        let id = id_of(name);
        // info goroutines: "[* ] ID NAME STATE THREAD FUNCTION (file:line)", then
        // "created by ...".
        let at = lines
            .iter()
            .position(|l| {
                let w: Vec<&str> = l.split_whitespace().collect();
                let w = if w.first() == Some(&"*") {
                    &w[1..]
                } else {
                    &w[..]
                };
                w.len() > 2 && w[0] == id.to_string() && w[1] == *name
            })
            .unwrap_or_else(|| panic!("goroutine {id} ({name}) not listed:\n{text}"));
        let row = lines[at];
        assert!(
            row.contains(state),
            "{name}: expected state {state:?}:\n{row}"
        );
        assert!(
            row.contains(&format!(" {name} (")) && row.contains("goroutines.c:"),
            "{name}: the function it runs is not named:\n{row}"
        );
        if *state == "running" {
            assert!(row.contains("(LWP "), "{name}: no thread:\n{row}");
        } else {
            let ms: u64 = row
                .split(", ")
                .nth(1)
                .and_then(|s| s.split(' ').next())
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| panic!("{name}: no wait time:\n{row}"));
            assert!(
                (100..60_000).contains(&ms),
                "{name}: waited {ms} ms?\n{row}"
            );
        }
        let created = lines[at + 1];
        if *name == "joiner" {
            let by = "created by sleeper (";
            let parent = format!(" in goroutine {}", id_of("sleeper"));
            assert!(
                created.contains(by) && created.ends_with(&parent),
                "joiner: spawn site:\n{created}"
            );
        } else {
            assert!(
                created.contains("created by a plain thread"),
                "{name}:\n{created}"
            );
        }

        // goroutine ID bt: the section from its header to the next header.
        let header = format!("goroutine {id} ({name}) [");
        let start = lines
            .iter()
            .position(|l| l.starts_with(&header))
            .unwrap_or_else(|| panic!("no backtrace section for {name}:\n{text}"));
        let section: Vec<&str> = lines[start + 1..]
            .iter()
            .take_while(|l| !l.starts_with("goroutine ") && !l.starts_with("----"))
            .copied()
            .collect();
        let frames: Vec<&str> = section
            .iter()
            .copied()
            .filter(|l| l.starts_with('#'))
            .collect();
        let whole = section.join("\n");
        let pos = |f: &str| {
            frames
                .iter()
                .position(|l| l.contains(&format!(" {f} (")))
                .unwrap_or_else(|| panic!("{name}: no frame {f}:\n{whole}"))
        };
        let inner = pos(funcs[0]);
        let outer = pos(funcs[1]);
        assert!(inner < outer, "{name}: frames out of order:\n{whole}");
        let last = frames.last().copied().unwrap_or("");
        assert!(
            last.contains("gr_ctx_trampoline"),
            "{name}: backtrace does not end at the trampoline:\n{whole}"
        );
        assert!(
            !whole.contains("corrupt stack") && !whole.contains("previous frame identical"),
            "{name}:\n{whole}"
        );
        if *state == "running" {
            assert!(whole.contains("running on thread"), "{name}:\n{whole}");
        } else {
            // Unwound from the saved context: first gr_ctx_switch, and not the
            // current thread's own frame #0.
            assert!(
                frames[0].starts_with("#1 ") && frames[0].contains("gr_ctx_switch"),
                "{name}: not unwound from its saved context:\n{whole}"
            );
        }
    }
    let plain = text
        .split("---- plain bt")
        .nth(1)
        .unwrap_or_else(|| panic!("no plain bt:\n{text}"));
    assert!(
        plain.lines().any(|l| l.starts_with("#0 "))
            && plain.contains(" stop_here (")
            && !plain.contains("gr_ctx_switch"),
        "the stopped thread's own backtrace changed:\n{plain}"
    );
}

#[test]
fn gdb_script_lists_goroutines_and_backtraces_parked_ones() {
    if !common::need_tool(
        "gdb_script_lists_goroutines_and_backtraces_parked_ones",
        "gdb",
        "gdb",
    ) {
        return;
    }
    let dir = TempDir::new("script");
    let exe = compile("goroutines", "-O0", &dir.0);
    let exe = exe.to_str().unwrap();

    // Live: run under gdb until the trapper's SIGTRAP, then ask the script.
    let cmds = gdb_commands();
    let mut args = vec!["-ex", "run"];
    for c in &cmds {
        args.extend(["-ex", c.as_str()]);
    }
    args.push(exe);
    let text = gdb(&args, &dir.0);
    assert!(
        text.contains("received signal SIGTRAP"),
        "the program did not stop:\n{text}"
    );
    check_script_output(&text, &ids_printed(&text));

    // A core file the kernel wrote (SIGTRAP's default action dumps core).
    let pattern = std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap_or_default();
    if pattern.starts_with('|') || pattern.trim().is_empty() {
        eprintln!("note: core_pattern is {pattern:?}: no core file to read; core part skipped");
        return;
    }
    let run = Command::new("timeout")
        .args(["60", "sh", "-c", "ulimit -c unlimited && exec \"$0\"", exe])
        .current_dir(&dir.0)
        .output()
        .expect("run the program");
    let out = String::from_utf8_lossy(&run.stdout).to_string();
    let core = std::fs::read_dir(&dir.0)
        .expect("read dir")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| {
            let n = p.file_name().unwrap().to_string_lossy().to_string();
            n.starts_with("core") && p.is_file()
        });
    let Some(core) = core else {
        eprintln!("note: no core file written (core_pattern {pattern:?}); core part skipped");
        return;
    };
    let ids = ids_printed(&out);
    let cmds = gdb_commands();
    let mut args = vec![];
    for c in &cmds {
        args.extend(["-ex", c.as_str()]);
    }
    args.push(exe);
    args.push(core.to_str().unwrap());
    let text = gdb(&args, &dir.0);
    check_script_output(&text, &ids);
}
