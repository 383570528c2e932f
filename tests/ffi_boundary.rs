//! No Rust panic crosses the C ABI (reliability catalogue entry 36). This file owns
//! the check that every exported function either runs its body inside
//! `ffi::boundary` (which turns a panic into one `libgoroutine: fatal error:` line and
//! an abort, and answers -ECHILD after fork) or is on a short list of exports whose
//! bodies cannot panic, each with the reason. It reads the source rather than the
//! binary because "inside boundary" is a property of the code: a new export that
//! forgets it fails here, by name.
//!
//! The exports on the list are also called here with the inputs most likely to
//! break them (every extreme return code, NULL handles).

use std::fs;
use std::path::Path;

/// Exports that do not go through `boundary`, and why their bodies cannot panic.
const PANIC_FREE: &[(&str, &str)] = &[
    ("gr_version", "returns a pointer to a constant string"),
    (
        "gr_strerror",
        "a match on rc.wrapping_neg() returning constant strings or strerror(3)",
    ),
    ("gr_chan_len", "NULL check, then an atomic load"),
    ("gr_chan_cap", "NULL check, then a field read"),
    ("gr_py_home_alive", "NULL check, then an atomic load"),
    ("gr_py_home_daemons", "NULL check, then an atomic load"),
    (
        "gr_rwmutex_rlock",
        "NULL and fork checks, one atomic add; a wait for a writer (and NULL) goes to \
         rlock_rest, whose body is boundary(...)",
    ),
    (
        "gr_rwmutex_runlock",
        "NULL and fork checks, one atomic subtraction; waking a writer (and NULL) goes \
         to runlock_rest, whose body is boundary(...)",
    ),
];

/// (file, export name, body) of every `#[no_mangle]` function under src/.
fn exports() -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    let mut files = vec![];
    collect_rs(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    for path in files {
        let text = fs::read_to_string(&path).unwrap();
        // Attribute lines only (the words also occur in comments).
        let mut offset = 0;
        for line in text.split_inclusive('\n') {
            let start = offset;
            offset += line.len();
            if line.trim() != "#[no_mangle]" {
                continue;
            }
            let rest = &text[start + line.len()..];
            let sig_end = rest.find('{').expect("a function body");
            let sig = &rest[..sig_end];
            if !sig.contains("fn ") && sig.contains("static ") {
                continue; // exported data (the debugger's table): no code to panic
            }
            let name = sig
                .split("fn ")
                .nth(1)
                .and_then(|s| s.split(['(', '<']).next())
                .unwrap_or_else(|| panic!("{}: no fn after #[no_mangle]", path.display()))
                .trim()
                .to_string();
            let body = body_of(&rest[sig_end..]);
            out.push((path.display().to_string(), name, body.to_string()));
        }
    }
    out
}

fn collect_rs(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            collect_rs(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The text between a `{` and its matching `}` (braces in strings and char literals
/// do not occur in export bodies).
fn body_of(s: &str) -> &str {
    let mut depth = 0;
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return &s[1..i];
                }
            }
            _ => {}
        }
    }
    panic!("unbalanced braces")
}

#[test]
fn every_export_runs_inside_boundary_or_cannot_panic() {
    let all = exports();
    assert!(
        all.len() > 50,
        "found only {} exports: the scan is broken",
        all.len()
    );
    let mut bad = Vec::new();
    for (file, name, body) in &all {
        if !file.contains("/src/ffi/") {
            bad.push(format!(
                "{name} in {file}: exports live in src/ffi/ (behind boundary)"
            ));
            continue;
        }
        let first = body.trim_start();
        let guarded = first.starts_with("boundary(");
        let listed = PANIC_FREE.iter().any(|(n, _)| n == name);
        if !guarded && !listed {
            bad.push(format!(
                "{name} in {file}: its body does not start with boundary(...) and it is not \
                 in PANIC_FREE"
            ));
        }
        if guarded && listed {
            bad.push(format!(
                "{name} in {file}: in PANIC_FREE but guarded: take it off the list"
            ));
        }
    }
    for (n, _) in PANIC_FREE {
        if !all.iter().any(|(_, name, _)| name == n) {
            bad.push(format!("PANIC_FREE names {n}, which is not an export"));
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

/// The unguarded exports with their worst inputs: no panic (which would abort the
/// test process), and the documented answers.
#[test]
fn panic_free_exports_take_any_input() {
    use goroutine::ffi::core::{gr_strerror, gr_version};
    use goroutine::ffi::pybinding::{gr_py_home_alive, gr_py_home_daemons};
    use goroutine::ffi::rwmutex::{
        gr_rwmutex_free, gr_rwmutex_new, gr_rwmutex_rlock, gr_rwmutex_runlock,
    };
    use goroutine::ffi::sync::{gr_chan_cap, gr_chan_len};
    use std::ffi::CStr;

    assert!(!gr_version().is_null());
    let extremes = [
        i32::MIN,
        i32::MIN + 1,
        -4096,
        -4095,
        -1,
        0,
        1,
        4096,
        i32::MAX,
    ];
    for rc in extremes.into_iter().chain(-5000..5000) {
        let s = gr_strerror(rc);
        assert!(!s.is_null(), "gr_strerror({rc}) is NULL");
        // SAFETY: gr_strerror returns a NUL-terminated static string.
        let text = unsafe { CStr::from_ptr(s) }.to_string_lossy();
        assert!(!text.is_empty(), "gr_strerror({rc}) is empty");
    }
    // SAFETY: the C library's message for an errno value.
    let unknown = unsafe { CStr::from_ptr(gr_strerror(i32::MIN)) };
    assert_eq!(unknown.to_str().unwrap(), "unknown error");
    // SAFETY: NULL is a handle every one of these accepts (their contracts: NULL or a
    // live object).
    unsafe {
        assert_eq!(gr_chan_len(std::ptr::null()), 0);
        assert_eq!(gr_chan_cap(std::ptr::null()), 0);
        assert_eq!(gr_py_home_alive(std::ptr::null()), 0);
        assert_eq!(gr_py_home_daemons(std::ptr::null()), 0);
        assert_eq!(gr_rwmutex_rlock(std::ptr::null_mut()), -libc::EINVAL);
        assert_eq!(gr_rwmutex_runlock(std::ptr::null_mut()), -libc::EINVAL);
    }
    // The fast paths of a live rwmutex, and the read unlock of one nobody read-locked.
    let m = gr_rwmutex_new();
    assert!(!m.is_null());
    // SAFETY: m is a live rwmutex from gr_rwmutex_new, freed last.
    unsafe {
        assert_eq!(gr_rwmutex_runlock(m), -libc::EPERM);
        assert_eq!(gr_rwmutex_rlock(m), 0);
        assert_eq!(gr_rwmutex_runlock(m), 0);
        assert_eq!(gr_rwmutex_runlock(m), -libc::EPERM);
        assert_eq!(gr_rwmutex_free(m), 0);
    }
}
