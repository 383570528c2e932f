//! The committed C header must be the one build.rs generates: `include/goroutine.h`
//! is what C users (and the tests in tests/c/) compile against, while build.rs writes
//! the current one to `$OUT_DIR/goroutine.h` on every build. `make header` copies it.
//! Also checks that the header compiles on its own, as C and as C++ (the C++ check
//! skips without g++, which is not a prerequisite: tests/common/mod.rs).

mod common;

use std::path::Path;
use std::process::Command;

const GENERATED: &str = concat!(env!("OUT_DIR"), "/goroutine.h");
const COMMITTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/include/goroutine.h");

#[test]
fn committed_header_is_current() {
    let generated = std::fs::read_to_string(GENERATED)
        .unwrap_or_else(|e| panic!("{GENERATED}: {e} (build.rs generates it)"));
    let committed = std::fs::read_to_string(COMMITTED)
        .unwrap_or_else(|e| panic!("{COMMITTED}: {e}: run `make header` and commit it"));
    if generated != committed {
        let (line, (c, g)) = committed
            .lines()
            .chain(std::iter::repeat("<end of file>"))
            .zip(generated.lines().chain(std::iter::repeat("<end of file>")))
            .enumerate()
            .find(|(_, (c, g))| c != g)
            .expect("the files differ");
        panic!(
            "include/goroutine.h is stale: run `make header` and commit it.\n\
             first difference at line {}:\n  include/goroutine.h: {c}\n  generated:           {g}",
            line + 1
        );
    }
}

#[test]
fn header_compiles_alone_as_c_and_cpp() {
    let include = Path::new(env!("CARGO_MANIFEST_DIR")).join("include");
    for (compiler, lang, std) in [("gcc", "c", "-std=c11"), ("g++", "c++", "-std=c++11")] {
        if compiler == "g++"
            && !common::need_tool("header_compiles_alone_as_c_and_cpp (C++)", "g++", "g++")
        {
            continue;
        }
        let out = Command::new(compiler)
            .args([
                "-fsyntax-only",
                "-Wall",
                "-Wextra",
                "-Werror",
                std,
                "-x",
                lang,
                "-I",
            ])
            .arg(&include)
            .arg("-")
            .stdin(std::fs::File::open(include.join("goroutine.h")).expect("include/goroutine.h"))
            .output()
            .expect("compiler");
        assert!(
            out.status.success(),
            "include/goroutine.h does not compile alone as {lang}:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
