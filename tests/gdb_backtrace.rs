//! The context switch's CFI lets a debugger walk a goroutine's stack: gdb stops a
//! goroutine inside nested calls and its backtrace must go through the goroutine's
//! frames to the entry trampoline and end there cleanly (no "corrupt stack", no
//! frames past the trampoline). Needs gdb (`.ci/run` installs it).

use std::path::Path;
use std::process::Command;

#[test]
fn gdb_backtraces_a_running_goroutine() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let lib = root.join("target/release");
    let so0 = lib.join("libgoroutine.so.0");
    if !so0.exists() {
        let _ = std::os::unix::fs::symlink("libgoroutine.so", &so0);
    }
    let out = std::env::temp_dir().join(format!("gr-gdb-backtrace-{}", std::process::id()));
    let st = Command::new("gcc")
        .args(["-O1", "-g", "-I"])
        .arg(root.join("include"))
        .arg(root.join("tests/gdb/backtrace.c"))
        .arg("-L")
        .arg(&lib)
        .arg("-lgoroutine")
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .arg("-o")
        .arg(&out)
        .status()
        .expect("gcc");
    assert!(st.success(), "gcc failed");
    let res = Command::new("timeout")
        .args(["120", "gdb", "-q", "-batch", "-ex", "run", "-ex", "bt"])
        .arg(&out)
        .output()
        .expect("gdb must be installed (apt-get install gdb)");
    let _ = std::fs::remove_file(&out);
    let text =
        String::from_utf8_lossy(&res.stdout).to_string() + &String::from_utf8_lossy(&res.stderr);
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
