//! docs/reliability.md maps every entry of the reliability catalogue (faults and bad
//! input, 43 numbered entries) to the tests that prove it. This test keeps that map
//! honest: it parses the table and fails unless
//!
//! - every entry 1..=43 has exactly one row, and each row names at least one test;
//! - every test named exists: `tests/c/NAME.c` is a C program in the `c_tests!` list
//!   of tests/c_tests.rs; `tests/FILE.rs::NAME` or `src/PATH.rs::NAME` is a Rust
//!   function marked `#[test]`; `bindings/python/tests/FILE.py::NAME` (or
//!   `FILE.py::Class::NAME`) is a pytest function;
//! - the "runs in" column agrees with the tests: a row naming a test marked
//!   `#[ignore]` says `stress`, a row naming any other test says `fast`.
//!
//! Parsing is plain string work on purpose (no Markdown crate): the table format is
//! ours, and described at the top of docs/reliability.md.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

const MANIFEST: &str = env!("CARGO_MANIFEST_DIR");
const ENTRIES: u32 = 43;

struct Row {
    line: usize,
    tests: Vec<String>,
    runs_in: String,
}

fn read(rel: &str) -> Option<String> {
    fs::read_to_string(Path::new(MANIFEST).join(rel)).ok()
}

/// Rows of the table, by entry number.
fn rows(doc: &str) -> Result<BTreeMap<u32, Row>, String> {
    let mut out = BTreeMap::new();
    for (i, line) in doc.lines().enumerate() {
        let cells: Vec<&str> = line.trim().split('|').map(str::trim).collect();
        // "| n | entry | tests | runs in | differs |" splits into 7 cells.
        if cells.len() < 6 || !cells[0].is_empty() {
            continue;
        }
        let Ok(n) = cells[1].parse::<u32>() else {
            continue;
        };
        let tests = cells[3]
            .split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect();
        let row = Row {
            line: i + 1,
            tests,
            runs_in: cells[4].to_lowercase(),
        };
        if let Some(old) = out.insert(n, row) {
            return Err(format!(
                "entry {n} has two rows (lines {} and {})",
                old.line,
                i + 1
            ));
        }
    }
    Ok(out)
}

/// The programs in the `c_tests!` list, each with whether it is `#[ignore]`d.
fn c_programs() -> BTreeMap<String, bool> {
    let src = read("tests/c_tests.rs").expect("tests/c_tests.rs");
    let start = src.find("\nc_tests! {").expect("the c_tests! list");
    let body = &src[start + "\nc_tests! {".len()..];
    let body = &body[..body.find("\n}").expect("the end of the c_tests! list")];
    let mut out = BTreeMap::new();
    let mut ignored = false;
    for item in body.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if item.starts_with("#[") {
            ignored |= item.starts_with("#[ignore");
            continue;
        }
        if item.starts_with("//") {
            continue;
        }
        let name: String = item
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        out.insert(name, ignored);
        ignored = false;
    }
    out
}

/// Whether `file` has a `#[test]` function `name`: Some(ignored) or None.
fn rust_test(file: &str, name: &str) -> Option<bool> {
    let src = read(file)?;
    let lines: Vec<&str> = src.lines().collect();
    let at = lines.iter().position(|l| {
        let l = l.trim_start();
        let l = l.strip_prefix("pub ").unwrap_or(l);
        l.strip_prefix("fn ")
            .and_then(|r| r.strip_prefix(name))
            .is_some_and(|r| r.starts_with('('))
    })?;
    // The attributes (and doc comments) right above it.
    let mut is_test = false;
    let mut ignored = false;
    for l in lines[..at].iter().rev().map(|l| l.trim()) {
        if l.starts_with("#[") {
            is_test |= l == "#[test]" || l.starts_with("#[test]");
            ignored |= l.starts_with("#[ignore");
        } else if !l.starts_with("//") {
            break;
        }
    }
    is_test.then_some(ignored)
}

fn pytest_function(file: &str, name: &str) -> bool {
    read(file).is_some_and(|src| {
        src.lines().any(|l| {
            l.trim_start()
                .strip_prefix("def ")
                .or_else(|| l.trim_start().strip_prefix("async def "))
                .and_then(|r| r.strip_prefix(name))
                .is_some_and(|r| r.starts_with('('))
        })
    })
}

/// Resolves one named test: Ok(ignored) or Err(why not).
fn resolve(test: &str, programs: &BTreeMap<String, bool>) -> Result<bool, String> {
    if let Some(name) = test
        .strip_prefix("tests/c/")
        .and_then(|r| r.strip_suffix(".c"))
    {
        if read(test).is_none() {
            return Err(format!("{test} does not exist"));
        }
        return programs
            .get(name)
            .copied()
            .ok_or_else(|| format!("{name} is not in the c_tests! list of tests/c_tests.rs"));
    }
    let Some((file, name)) = test.split_once("::") else {
        return Err(format!(
            "`{test}`: expected tests/c/NAME.c, FILE.rs::NAME or FILE.py::NAME"
        ));
    };
    if file.ends_with(".rs") && (file.starts_with("tests/") || file.starts_with("src/")) {
        return rust_test(file, name).ok_or_else(|| format!("{file} has no #[test] fn {name}"));
    }
    if file.starts_with("bindings/python/tests/") && file.ends_with(".py") {
        let func = name.rsplit("::").next().unwrap_or(name);
        return if pytest_function(file, func) {
            Ok(false)
        } else {
            Err(format!("{file} has no function {func}"))
        };
    }
    Err(format!("`{test}`: not a test location the map knows"))
}

#[test]
fn every_catalogue_entry_is_mapped_to_tests_that_exist() {
    let doc = read("docs/reliability.md").expect("docs/reliability.md");
    let rows = rows(&doc).unwrap_or_else(|e| panic!("docs/reliability.md: {e}"));
    let programs = c_programs();
    let mut problems = Vec::new();
    for n in 1..=ENTRIES {
        let Some(row) = rows.get(&n) else {
            problems.push(format!("entry {n} has no row"));
            continue;
        };
        let at = format!("docs/reliability.md:{} (entry {n})", row.line);
        if row.tests.is_empty() {
            problems.push(format!("{at}: names no test"));
        }
        let (mut fast, mut stress) = (false, false);
        for t in &row.tests {
            match resolve(t, &programs) {
                Ok(true) => stress = true,
                Ok(false) => fast = true,
                Err(e) => problems.push(format!("{at}: {e}")),
            }
        }
        if fast && !row.runs_in.contains("fast") {
            problems.push(format!(
                "{at}: names a make-test test, but does not say `fast`"
            ));
        }
        if stress && !row.runs_in.contains("stress") {
            problems.push(format!(
                "{at}: names an #[ignore] test, but does not say `stress`"
            ));
        }
    }
    if let Some(extra) = rows.keys().find(|&&n| n == 0 || n > ENTRIES) {
        problems.push(format!(
            "entry {extra} is not in the catalogue (1..={ENTRIES})"
        ));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The checker itself tells a good map from a bad one.
#[test]
fn the_checker_rejects_what_it_should() {
    let programs = c_programs();
    assert_eq!(resolve("tests/c/bad_input_table.c", &programs), Ok(false));
    assert_eq!(resolve("tests/c/million_alive.c", &programs), Ok(true));
    assert!(resolve("tests/c/no_such_program.c", &programs).is_err());
    assert_eq!(
        resolve("tests/sync_mpmc.rs::mpmc_soak_60s", &programs),
        Ok(true)
    );
    assert_eq!(resolve("tests/sync_mpmc.rs::mpmc_5s", &programs), Ok(false));
    // A helper that is not a #[test].
    assert!(resolve("tests/sync_mpmc.rs::run", &programs).is_err());
    assert!(resolve("tests/sync_mpmc.rs::no_such_fn", &programs).is_err());
    assert!(resolve(
        "bindings/python/tests/test_chan.py::no_such_test",
        &programs
    )
    .is_err());
    assert!(resolve("somewhere/else.txt", &programs).is_err());
    let two = "| 1 | a | `tests/c/join.c` | fast | |\n| 1 | b | `tests/c/join.c` | fast | |\n";
    assert!(rows(two).is_err());
    let one = rows("| 7 | spawn NULL | `tests/c/join.c`, `x.rs::y` | fast | - |\n").unwrap();
    assert_eq!(one[&7].tests, ["tests/c/join.c", "x.rs::y"]);
}
