//! What a C programmer does with libgoroutine, done in a staging directory:
//! `make install DESTDIR=$tmp PREFIX=/usr` (mk/install.mk), then
//!
//! - the installed files are exactly the expected ones: the shared library as
//!   `libgoroutine.so.MAJOR.MINOR.PATCH` with the `.so.ABI` (soname) and `.so` links,
//!   `libgoroutine.a`, the header (the committed one), `goroutine.pc` and the CMake
//!   package; none of them mentions the staging directory;
//! - the libc hook layer is installed too: `libgoroutine_hook.so.MAJOR.MINOR.PATCH`
//!   with its links and `goroutine-hook.pc`, whose Libs keep the library in a
//!   program linked with `-Wl,--as-needed` (it then needs libgoroutine_hook.so.ABI);
//! - `readelf -d` shows the soname, whose ABI version is MAJOR, or 0.MINOR while MAJOR
//!   is 0 (a new minor version may change the ABI then), and `nm -D --defined-only`
//!   shows that the library exports exactly the functions the header declares, all
//!   named `gr_*`, and one data symbol for debuggers (`gr_debug_table`);
//! - the header's version macros match Cargo.toml, `gr_version()` and the .pc file;
//! - every `c_examples/*.c` builds with `make -C c_examples`, which knows the library
//!   only through `pkg-config --cflags --libs goroutine` (PKG_CONFIG_SYSROOT_DIR and
//!   PKG_CONFIG_PATH point into the staged tree), and runs, with LD_LIBRARY_PATH on the
//!   staged lib/, in its self-test or short mode (`make -C c_examples list-checks`),
//!   under a timeout;
//! - a program links statically with libgoroutine.a and the .pc file's Libs.private;
//! - examples build through the CMake package (`find_package(goroutine)`,
//!   `goroutine::goroutine`, `goroutine::static`, and `goroutine::hook` for
//!   c_examples/hook_fetch.c, run in its self-test mode);
//! - `make uninstall` with the same variables removes every file install wrote and
//!   nothing else.
//!
//! Needs make, gcc and binutils (readelf, nm; gcc brings them). pkg-config and cmake
//! are optional: without them the parts that use them skip (tests/common/mod.rs), and
//! `.ci/run` installs both; so is libcurl's header (libcurl4-openssl-dev), without
//! which hook_fetch is left out of the examples. The staged tree is left in
//! target/install-test/ when something fails.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const MANIFEST: &str = env!("CARGO_MANIFEST_DIR");
const VERSION: &str = env!("CARGO_PKG_VERSION");
const MAJOR: &str = env!("CARGO_PKG_VERSION_MAJOR");
/// The sonames build.rs gives the libraries; `sonames_carry_the_abi_version` checks
/// them against the rule.
const SONAME: &str = env!("GR_SONAME");
const HOOK_SONAME: &str = env!("GR_HOOK_SONAME");
/// Seconds an example may run in its self-test / short mode.
const EXAMPLE_TIMEOUT: u64 = 90;

/// The sonames follow the ABI rule of CHANGELOG.md: while the major version is 0 a
/// new minor version may change the ABI, so the soname names the minor version too
/// and the loader refuses to run a program with a library of another ABI.
#[test]
fn sonames_carry_the_abi_version() {
    let abi = if MAJOR == "0" {
        format!("0.{}", env!("CARGO_PKG_VERSION_MINOR"))
    } else {
        MAJOR.to_string()
    };
    assert_eq!(SONAME, format!("libgoroutine.so.{abi}"));
    assert_eq!(HOOK_SONAME, format!("libgoroutine_hook.so.{abi}"));
}

#[test]
fn install_build_examples_uninstall() {
    let work = scratch_dir("main");
    let stage = work.join("stage");
    let prefix = stage.join("usr");
    let lib = prefix.join("lib");

    make(&["install", &destdir(&stage), "PREFIX=/usr"]);

    check_installed_files(&stage);
    check_soname(&lib.join(format!("libgoroutine.so.{VERSION}")), SONAME);
    check_soname(
        &lib.join(format!("libgoroutine_hook.so.{VERSION}")),
        HOOK_SONAME,
    );
    check_exported_symbols(
        &lib.join(format!("libgoroutine.so.{VERSION}")),
        &prefix.join("include/goroutine.h"),
    );
    check_pc_file(&lib.join("pkgconfig/goroutine.pc"));
    let mut example_failures = Vec::new();
    if common::need_tool(
        "install_build_examples_uninstall (version macros, --as-needed, examples, static link)",
        "pkg-config",
        "pkg-config",
    ) {
        check_version_macros(&stage, &work);
        check_hook_survives_as_needed(&stage, &work);
        // Example failures are reported at the end, after the checks that follow.
        example_failures = build_and_run_examples(&stage, &work);
        check_static_link(&stage, &work);
    }
    if common::need_tool(
        "install_build_examples_uninstall (the CMake package)",
        "cmake",
        "cmake",
    ) {
        build_with_cmake(&prefix, &work);
    }

    // Files install did not write must survive uninstall.
    let foreign = [
        lib.join("libother.so"),
        lib.join("cmake/other/otherConfig.cmake"),
        prefix.join("include/other.h"),
    ];
    for f in &foreign {
        fs::create_dir_all(f.parent().unwrap()).unwrap();
        fs::write(f, "not libgoroutine's").unwrap();
    }
    make(&["uninstall", &destdir(&stage), "PREFIX=/usr"]);
    let left = files_under(&stage);
    let foreign_rel: BTreeSet<String> = foreign.iter().map(|f| rel(&stage, f)).collect();
    assert_eq!(
        left, foreign_rel,
        "after `make uninstall` the staged tree should hold only the files install did not \
         write;\nleft: {left:#?}"
    );
    assert!(
        !lib.join("cmake/goroutine").exists(),
        "make uninstall left the empty lib/cmake/goroutine directory"
    );
    assert!(
        example_failures.is_empty(),
        "{} example(s) failed:\n\n{}",
        example_failures.len(),
        example_failures.join("\n\n")
    );
    let _ = fs::remove_dir_all(&work);
}

/// The GNU directory variables: a multiarch LIBDIR and a separate INCLUDEDIR, with the
/// .pc file and the CMake package still finding everything.
#[test]
fn install_with_other_directories() {
    let work = scratch_dir("dirs");
    let stage = work.join("stage");
    let libdir = "/usr/lib/x86_64-linux-gnu";
    make(&[
        "install",
        &destdir(&stage),
        "PREFIX=/usr",
        &format!("LIBDIR={libdir}"),
        "INCLUDEDIR=/usr/include/gr",
    ]);
    let want: BTreeSet<String> = [
        format!("usr/lib/x86_64-linux-gnu/libgoroutine.so.{VERSION}"),
        format!("usr/lib/x86_64-linux-gnu/{SONAME}"),
        "usr/lib/x86_64-linux-gnu/libgoroutine.so".into(),
        "usr/lib/x86_64-linux-gnu/libgoroutine.a".into(),
        format!("usr/lib/x86_64-linux-gnu/libgoroutine_hook.so.{VERSION}"),
        format!("usr/lib/x86_64-linux-gnu/{HOOK_SONAME}"),
        "usr/lib/x86_64-linux-gnu/libgoroutine_hook.so".into(),
        "usr/include/gr/goroutine.h".into(),
        "usr/lib/x86_64-linux-gnu/pkgconfig/goroutine.pc".into(),
        "usr/lib/x86_64-linux-gnu/pkgconfig/goroutine-hook.pc".into(),
        "usr/lib/x86_64-linux-gnu/cmake/goroutine/goroutineConfig.cmake".into(),
        "usr/lib/x86_64-linux-gnu/cmake/goroutine/goroutineConfigVersion.cmake".into(),
    ]
    .into_iter()
    .collect();
    assert_eq!(
        files_under(&stage),
        want,
        "files installed with LIBDIR={libdir} INCLUDEDIR=/usr/include/gr"
    );
    let pcdir = stage.join("usr/lib/x86_64-linux-gnu/pkgconfig");
    if common::need_tool(
        "install_with_other_directories (pkg-config flags)",
        "pkg-config",
        "pkg-config",
    ) {
        let flags = pkg_config(&stage, &pcdir, &["--cflags", "--libs", "goroutine"]);
        let want_flags = format!(
            "-I{0}/usr/include/gr -L{0}/usr/lib/x86_64-linux-gnu -lgoroutine",
            stage.display()
        );
        assert_eq!(
            flags.trim(),
            want_flags,
            "pkg-config flags with a multiarch LIBDIR"
        );
        let hook_flags = pkg_config(&stage, &pcdir, &["--cflags", "--libs", "goroutine-hook"]);
        let want_hook_flags = format!(
            "-I{0}/usr/include/gr -L{0}/usr/lib/x86_64-linux-gnu -Wl,--push-state,--no-as-needed \
             -lgoroutine_hook -Wl,--pop-state -lgoroutine",
            stage.display()
        );
        assert_eq!(
            hook_flags.trim(),
            want_hook_flags,
            "pkg-config flags of goroutine-hook with a multiarch LIBDIR"
        );
    }
    let cfg = fs::read_to_string(
        stage.join("usr/lib/x86_64-linux-gnu/cmake/goroutine/goroutineConfig.cmake"),
    )
    .unwrap();
    assert!(
        cfg.contains("\"${CMAKE_CURRENT_LIST_DIR}/../../../../include/gr\"")
            && cfg.contains("\"${CMAKE_CURRENT_LIST_DIR}/../..\""),
        "goroutineConfig.cmake should find include/gr and the library relative to itself:\n{cfg}"
    );
    make(&[
        "uninstall",
        &destdir(&stage),
        "PREFIX=/usr",
        &format!("LIBDIR={libdir}"),
        "INCLUDEDIR=/usr/include/gr",
    ]);
    assert_eq!(
        files_under(&stage),
        BTreeSet::new(),
        "make uninstall left files behind"
    );
    let _ = fs::remove_dir_all(&work);
}

// ---------------------------------------------------------------- the checks

fn check_installed_files(stage: &Path) {
    let want: BTreeSet<String> = [
        format!("usr/lib/libgoroutine.so.{VERSION}"),
        format!("usr/lib/{SONAME}"),
        "usr/lib/libgoroutine.so".into(),
        "usr/lib/libgoroutine.a".into(),
        format!("usr/lib/libgoroutine_hook.so.{VERSION}"),
        format!("usr/lib/{HOOK_SONAME}"),
        "usr/lib/libgoroutine_hook.so".into(),
        "usr/include/goroutine.h".into(),
        "usr/lib/pkgconfig/goroutine.pc".into(),
        "usr/lib/pkgconfig/goroutine-hook.pc".into(),
        "usr/lib/cmake/goroutine/goroutineConfig.cmake".into(),
        "usr/lib/cmake/goroutine/goroutineConfigVersion.cmake".into(),
    ]
    .into_iter()
    .collect();
    assert_eq!(
        files_under(stage),
        want,
        "make install DESTDIR=... PREFIX=/usr installed other files"
    );

    let lib = stage.join("usr/lib");
    let link = |name: &str| {
        fs::read_link(lib.join(name)).unwrap_or_else(|e| panic!("usr/lib/{name}: {e}"))
    };
    assert_eq!(
        link(SONAME),
        Path::new(&format!("libgoroutine.so.{VERSION}"))
    );
    assert_eq!(link("libgoroutine.so"), Path::new(SONAME));
    assert_eq!(
        link(HOOK_SONAME),
        Path::new(&format!("libgoroutine_hook.so.{VERSION}"))
    );
    assert_eq!(link("libgoroutine_hook.so"), Path::new(HOOK_SONAME));
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    for name in ["libgoroutine", "libgoroutine_hook"] {
        let real = lib.join(format!("{name}.so.{VERSION}"));
        assert!(
            fs::symlink_metadata(&real).unwrap().file_type().is_file(),
            "{} is not a file",
            real.display()
        );
        assert_eq!(mode(&real), 0o755, "mode of {name}.so");
    }
    for f in [
        "usr/lib/libgoroutine.a",
        "usr/include/goroutine.h",
        "usr/lib/pkgconfig/goroutine.pc",
        "usr/lib/pkgconfig/goroutine-hook.pc",
    ] {
        assert_eq!(mode(&stage.join(f)), 0o644, "mode of {f}");
    }

    let header = fs::read(stage.join("usr/include/goroutine.h")).unwrap();
    let committed = fs::read(Path::new(MANIFEST).join("include/goroutine.h")).unwrap();
    assert!(
        header == committed,
        "the installed header differs from include/goroutine.h"
    );

    // DESTDIR is for staging only: nothing installed may point into it.
    let stage_str = stage.to_str().unwrap();
    for f in [
        "usr/lib/pkgconfig/goroutine.pc",
        "usr/lib/pkgconfig/goroutine-hook.pc",
        "usr/lib/cmake/goroutine/goroutineConfig.cmake",
        "usr/lib/cmake/goroutine/goroutineConfigVersion.cmake",
    ] {
        let text = fs::read_to_string(stage.join(f)).unwrap();
        assert!(
            !text.contains(stage_str),
            "{f} mentions the staging directory:\n{text}"
        );
        assert!(
            !text.contains('@'),
            "{f} has an unsubstituted @VARIABLE@:\n{text}"
        );
    }
}

fn check_soname(lib: &Path, want: &str) {
    let out = run_ok(Command::new("readelf").arg("-d").arg(lib));
    let soname = out
        .lines()
        .find(|l| l.contains("(SONAME)"))
        .and_then(|l| l.split('[').nth(1))
        .and_then(|s| s.split(']').next())
        .unwrap_or_else(|| panic!("no SONAME in readelf -d {}:\n{out}", lib.display()));
    assert_eq!(soname, want, "the soname of {}", lib.display());
}

/// The dynamic symbol table defines exactly the functions of the header (a Rust cdylib
/// exports its `#[no_mangle] pub extern` functions through a version script and hides
/// everything else, linker-defined symbols such as _init, _fini, _edata, _end and
/// __bss_start included, so there is nothing to allow for).
/// The one exported data symbol, not part of the C API (not in the header): the
/// table docs/goroutine-gdb.py reads goroutines through (src/ffi/debug.rs).
const DEBUGGER_DATA: &[&str] = &["gr_debug_table"];

fn check_exported_symbols(lib: &Path, header: &Path) {
    let out = run_ok(Command::new("nm").args(["-D", "--defined-only"]).arg(lib));
    let mut exported = BTreeSet::new();
    let mut bad = Vec::new();
    for line in out.lines().filter(|l| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (kind, name) = match fields.as_slice() {
            [_addr, kind, name] => (*kind, *name),
            _ => {
                bad.push(format!("unexpected nm line: {line}"));
                continue;
            }
        };
        let name = name.split('@').next().unwrap();
        if DEBUGGER_DATA.contains(&name) && kind != "T" {
            continue;
        }
        if !name.starts_with("gr_") || kind != "T" {
            bad.push(format!("{kind} {name}"));
        }
        exported.insert(name.to_string());
    }
    assert!(
        bad.is_empty(),
        "libgoroutine.so exports symbols other than gr_* functions (nm -D --defined-only):\n  {}",
        bad.join("\n  ")
    );
    let declared = header_functions(&fs::read_to_string(header).unwrap());
    let undeclared: Vec<_> = exported.difference(&declared).collect();
    let missing: Vec<_> = declared.difference(&exported).collect();
    assert!(
        undeclared.is_empty() && missing.is_empty(),
        "the library's exports and the header's functions differ:\n  exported, not in the \
         header: {undeclared:?}\n  declared in the header, not exported (a C program calling \
         them fails to link): {missing:?}"
    );
}

fn check_pc_file(pc: &Path) {
    let text = fs::read_to_string(pc).unwrap();
    for field in ["Name:", "Description:", "Libs:", "Libs.private:", "Cflags:"] {
        assert!(
            text.lines().any(|l| l.starts_with(field)),
            "goroutine.pc has no {field} line:\n{text}"
        );
    }
    assert!(
        text.lines().any(|l| l == format!("Version: {VERSION}")),
        "goroutine.pc should say Version: {VERSION}:\n{text}"
    );
    assert!(
        text.lines().any(|l| l == "prefix=/usr"),
        "goroutine.pc: prefix=/usr expected:\n{text}"
    );
}

/// `pkg-config --libs goroutine-hook` keeps the hook library in a program that calls no
/// hooked function itself, linked with -Wl,--as-needed (as Ubuntu's gcc does by
/// default), and the hook layer is then at work in it: a goroutine's usleep does not
/// hold the thread.
fn check_hook_survives_as_needed(stage: &Path, work: &Path) {
    let pcdir = stage.join("usr/lib/pkgconfig");
    let src = work.join("as_needed.c");
    fs::write(
        &src,
        r#"#include <goroutine.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>
static void nap(void *arg) { (void)arg; usleep(200000); }
int main(void)
{
    gr_init(1);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int i = 0; i < 20; i++)
        gr_spawn(nap, NULL);
    gr_wait_all();
    clock_gettime(CLOCK_MONOTONIC, &b);
    double s = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
    printf("%.3f\n", s);
    return s < 1.0 ? 0 : 1;
}
"#,
    )
    .unwrap();
    let exe = work.join("as_needed");
    let flags = pkg_config(stage, &pcdir, &["--cflags", "--libs", "goroutine-hook"]);
    run_ok(
        Command::new("gcc")
            .args(["-O2", "-Wl,--as-needed", "-o"])
            .arg(&exe)
            .arg(&src)
            .args(flags.split_whitespace()),
    );
    let needed = run_ok(Command::new("readelf").arg("-d").arg(&exe));
    assert!(
        needed.contains(&format!("[{HOOK_SONAME}]")),
        "linked with -Wl,--as-needed and `pkg-config --libs goroutine-hook`, the program does \
         not need libgoroutine_hook:\n{needed}"
    );
    // 20 goroutines x usleep(200 ms) on one processor: 0.2 s when the hooks park them,
    // 4 s when each holds the thread.
    let out = run_ok(Command::new(&exe).env("LD_LIBRARY_PATH", stage.join("usr/lib")));
    assert!(out.trim().parse::<f64>().is_ok(), "printed {out}");
}

/// GR_VERSION_* against Cargo.toml, gr_version() and pkg-config --modversion.
fn check_version_macros(stage: &Path, work: &Path) {
    let pcdir = stage.join("usr/lib/pkgconfig");
    let modversion = pkg_config(stage, &pcdir, &["--modversion", "goroutine"]);
    assert_eq!(
        modversion.trim(),
        VERSION,
        "pkg-config --modversion goroutine"
    );
    let (maj, min, pat) = (
        MAJOR,
        env!("CARGO_PKG_VERSION_MINOR"),
        env!("CARGO_PKG_VERSION_PATCH"),
    );
    let src = work.join("version.c");
    fs::write(
        &src,
        format!(
            r#"#include <goroutine.h>
#include <stdio.h>
#include <string.h>
#if !defined(GR_VERSION_MAJOR) || !defined(GR_VERSION_MINOR) || !defined(GR_VERSION_PATCH) || \
    !defined(GR_VERSION_NUMBER) || !defined(GR_VERSION_CHECK)
#error "the header lacks the GR_VERSION_* macros"
#endif
#if GR_VERSION_MAJOR != {maj} || GR_VERSION_MINOR != {min} || GR_VERSION_PATCH != {pat}
#error "GR_VERSION_MAJOR/MINOR/PATCH differ from Cargo.toml ({VERSION})"
#endif
#if GR_VERSION_NUMBER != {maj} * 10000 + {min} * 100 + {pat}
#error "GR_VERSION_NUMBER is not MAJOR*10000 + MINOR*100 + PATCH"
#endif
#if !GR_VERSION_CHECK({maj}, {min}, {pat}) || !GR_VERSION_CHECK(0, 0, 0) || \
    GR_VERSION_CHECK({maj}, {min}, {pat} + 1) || GR_VERSION_CHECK({maj}, {min} + 1, 0) || \
    GR_VERSION_CHECK({maj} + 1, 0, 0)
#error "GR_VERSION_CHECK is wrong"
#endif
int main(void)
{{
    char want[32];
    snprintf(want, sizeof want, "%d.%d.%d", GR_VERSION_MAJOR, GR_VERSION_MINOR, GR_VERSION_PATCH);
    if (strcmp(gr_version(), want) != 0) {{
        fprintf(stderr, "gr_version() = %s, the header says %s\n", gr_version(), want);
        return 1;
    }}
    puts(gr_version());
    return 0;
}}
"#
        ),
    )
    .unwrap();
    let exe = work.join("version");
    let flags = pkg_config(stage, &pcdir, &["--cflags", "--libs", "goroutine"]);
    run_ok(
        Command::new("gcc")
            .args(["-Wall", "-Werror", "-o"])
            .arg(&exe)
            .arg(&src)
            .args(flags.split_whitespace()),
    );
    let out = run_ok(Command::new(&exe).env("LD_LIBRARY_PATH", stage.join("usr/lib")));
    assert_eq!(out.trim(), VERSION);
}

/// `make -C c_examples` through the staged pkg-config, then every example in its
/// self-test / short mode. Returns what failed.
fn build_and_run_examples(stage: &Path, work: &Path) -> Vec<String> {
    let bin = work.join("examples");
    let pcdir = stage.join("usr/lib/pkgconfig");
    let examples_dir = Path::new(MANIFEST).join("c_examples");
    let skip = if common::need_curl("install: hook_fetch") {
        ""
    } else {
        "hook_fetch"
    };
    let mut cmd = Command::new("make");
    cmd.arg("-C")
        .arg(&examples_dir)
        .arg(format!("OUT={}", bin.display()))
        .arg(format!("SKIP={skip}"))
        .args(["CC=gcc", "CFLAGS=-O2 -g -Wall -Wextra -Werror"]);
    pkg_env(&mut cmd, stage, &pcdir);
    quiet_make_env(&mut cmd);
    run_ok(&mut cmd);

    let mut list = Command::new("make");
    list.args(["-s", "--no-print-directory", "-C"])
        .arg(&examples_dir)
        .arg(format!("SKIP={skip}"))
        .arg("list-checks");
    quiet_make_env(&mut list);
    let checks = run_ok(&mut list);
    let sources: BTreeSet<String> = fs::read_dir(&examples_dir)
        .unwrap()
        .filter_map(|e| {
            let p = e.ok()?.path();
            (p.extension()? == "c").then(|| p.file_stem()?.to_str().map(String::from))?
        })
        .filter(|name| name != skip)
        .collect();
    let listed: BTreeSet<String> = checks
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(String::from)
        .collect();
    assert_eq!(
        listed, sources,
        "`make -C c_examples list-checks` should name every c_examples/*.c"
    );

    let mut failures = Vec::new();
    for line in checks.lines().filter(|l| !l.trim().is_empty()) {
        let mut words = line.split_whitespace();
        let name = words.next().unwrap();
        let args: Vec<&str> = words.collect();
        let exe = bin.join(name);
        // Built against the staged header and .so, through the soname.
        let needed = run_ok(Command::new("readelf").arg("-d").arg(&exe));
        if !needed.contains(&format!("Shared library: [{SONAME}]")) {
            failures.push(format!("{name}: not linked against {SONAME}:\n{needed}"));
            continue;
        }
        let mut cmd = Command::new(&exe);
        cmd.args(&args)
            .env("LD_LIBRARY_PATH", stage.join("usr/lib"))
            .current_dir(work);
        let (status, stdout, stderr, elapsed, timed_out) =
            run_with_timeout(cmd, Duration::from_secs(EXAMPLE_TIMEOUT));
        eprintln!(
            "c_examples/{name} {}: {:?} in {:.2} s",
            args.join(" "),
            status,
            elapsed.as_secs_f64()
        );
        if timed_out || !status.is_some_and(|s| s.success()) {
            failures.push(format!(
                "c_examples/{name}.c run as `{name} {}` {} after {:.1} s\n--- stdout (last lines)\n{}\n--- stderr (last lines)\n{}",
                args.join(" "),
                if timed_out { "was killed by the timeout".to_string() } else { format!("failed ({status:?})") },
                elapsed.as_secs_f64(),
                tail(&stdout, 15),
                tail(&stderr, 15)
            ));
        }
    }
    failures
}

/// A program linked with libgoroutine.a and the .pc file's Libs.private, run without
/// LD_LIBRARY_PATH: proof that Libs.private lists what the static library needs.
fn check_static_link(stage: &Path, work: &Path) {
    let pcdir = stage.join("usr/lib/pkgconfig");
    let cflags = pkg_config(stage, &pcdir, &["--cflags", "goroutine"]);
    let private = pkg_config(stage, &pcdir, &["--static", "--libs-only-l", "goroutine"]);
    let exe = work.join("hello-static");
    run_ok(
        Command::new("gcc")
            .args(["-O2", "-o"])
            .arg(&exe)
            .arg(Path::new(MANIFEST).join("c_examples/hello.c"))
            .args(cflags.split_whitespace())
            .arg(stage.join("usr/lib/libgoroutine.a"))
            .args(private.split_whitespace().filter(|f| *f != "-lgoroutine")),
    );
    let dynamic = run_ok(Command::new("readelf").arg("-d").arg(&exe));
    assert!(
        !dynamic.contains("libgoroutine"),
        "the static build still needs libgoroutine.so:\n{dynamic}"
    );
    let out = run_ok(Command::new(&exe).env_remove("LD_LIBRARY_PATH"));
    assert!(out.contains("done"), "hello (static) printed:\n{out}");
}

/// find_package(goroutine) in a fresh CMake project, both imported targets.
fn build_with_cmake(prefix: &Path, work: &Path) {
    let project = work.join("cmake-project");
    fs::create_dir_all(&project).unwrap();
    let curl = common::need_curl("install: hook_fetch");
    let examples = Path::new(MANIFEST).join("c_examples");
    fs::write(
        project.join("CMakeLists.txt"),
        format!(
            r#"cmake_minimum_required(VERSION 3.10)
project(goroutine_consumer C)
find_package(Threads REQUIRED)
find_package(goroutine {MAJOR}.{minor} REQUIRED)
if(NOT goroutine_VERSION STREQUAL "{VERSION}")
  message(FATAL_ERROR "goroutine_VERSION is ${{goroutine_VERSION}}, expected {VERSION}")
endif()
add_executable(bridge "{bridge}")
target_link_libraries(bridge PRIVATE goroutine::goroutine Threads::Threads)
add_executable(hello_static "{hello}")
target_link_libraries(hello_static PRIVATE goroutine::static)
{hook}"#,
            minor = env!("CARGO_PKG_VERSION_MINOR"),
            bridge = examples.join("bridge.c").display(),
            hello = examples.join("hello.c").display(),
            hook = if curl {
                format!(
                    "find_package(CURL REQUIRED)\nadd_executable(hook_fetch \"{}\")\n\
                     target_link_libraries(hook_fetch PRIVATE goroutine::hook CURL::libcurl)\n\
                     target_link_options(hook_fetch PRIVATE -Wl,--as-needed)\n",
                    examples.join("hook_fetch.c").display()
                )
            } else {
                String::new()
            },
        ),
    )
    .unwrap();
    let build = project.join("build");
    run_ok(
        Command::new("cmake")
            .arg("-S")
            .arg(&project)
            .arg("-B")
            .arg(&build)
            .arg(format!("-DCMAKE_PREFIX_PATH={}", prefix.display()))
            .arg("-DCMAKE_C_COMPILER=gcc"),
    );
    run_ok(Command::new("cmake").arg("--build").arg(&build));
    let out = run_ok(Command::new(build.join("bridge")).env("LD_LIBRARY_PATH", prefix.join("lib")));
    assert!(
        out.contains("every answer arrived"),
        "bridge (CMake build) printed:\n{out}"
    );
    let out = run_ok(Command::new(build.join("hello_static")).env_remove("LD_LIBRARY_PATH"));
    assert!(
        out.contains("done"),
        "hello_static (CMake build) printed:\n{out}"
    );
    if curl {
        // goroutine::hook, even with --as-needed: the fetches overlap (its self-test).
        let out = run_ok(
            Command::new(build.join("hook_fetch"))
                .arg("--selftest")
                .env("LD_LIBRARY_PATH", prefix.join("lib")),
        );
        assert!(
            out.trim_end().ends_with("ok"),
            "hook_fetch (CMake build) printed:\n{out}"
        );
    }

    // A version the package is not compatible with is refused.
    let refused = project.join("refused");
    fs::create_dir_all(&refused).unwrap();
    let next_major: u32 = MAJOR.parse::<u32>().unwrap() + 1;
    fs::write(
        refused.join("CMakeLists.txt"),
        format!("cmake_minimum_required(VERSION 3.10)\nproject(r C)\nfind_package(goroutine {next_major}.0 REQUIRED)\n"),
    )
    .unwrap();
    let out = Command::new("cmake")
        .arg("-S")
        .arg(&refused)
        .arg("-B")
        .arg(refused.join("build"))
        .arg(format!("-DCMAKE_PREFIX_PATH={}", prefix.display()))
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "find_package(goroutine {next_major}.0) accepted version {VERSION}"
    );
}

// ---------------------------------------------------------------- machinery

/// A fresh directory under target/install-test/.
fn scratch_dir(what: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|t| {
            if t.is_absolute() {
                t
            } else {
                Path::new(MANIFEST).join(t)
            }
        })
        .unwrap_or_else(|| Path::new(MANIFEST).join("target"));
    let dir = target
        .join("install-test")
        .join(format!("{what}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

fn destdir(stage: &Path) -> String {
    format!("DESTDIR={}", stage.display())
}

/// Runs `make ARGS` at the top of the tree, as a user would.
fn make(args: &[&str]) {
    let mut cmd = Command::new("make");
    cmd.current_dir(MANIFEST).args(args);
    quiet_make_env(&mut cmd);
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run make: {e}"));
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let hint = if stderr.contains("No rule to make target") {
            "\n(the Makefile has no install/uninstall rules: it needs `include mk/install.mk`)"
        } else {
            ""
        };
        panic!(
            "make {} failed ({}){hint}\n--- stdout\n{}\n--- stderr\n{}",
            args.join(" "),
            out.status,
            tail(&String::from_utf8_lossy(&out.stdout), 30),
            tail(&stderr, 30)
        );
    }
}

/// The environment of a nested make (and the cargo it runs): without the outer make's
/// jobserver and without what cargo sets for this test binary.
fn quiet_make_env(cmd: &mut Command) {
    for var in [
        "MAKEFLAGS",
        "MFLAGS",
        "MAKELEVEL",
        "MAKEOVERRIDES",
        "OUT_DIR",
        "CARGO_MANIFEST_DIR",
        "CARGO_MANIFEST_PATH",
        "CARGO_CRATE_NAME",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_TARGET_TMPDIR",
        "CARGO_MANIFEST_LINKS",
        "CARGO_RUSTC_CURRENT_DIR",
    ] {
        cmd.env_remove(var);
    }
    for (k, _) in std::env::vars_os() {
        if k.to_str()
            .is_some_and(|k| k.starts_with("CARGO_PKG_") || k.starts_with("CARGO_BIN_"))
        {
            cmd.env_remove(k);
        }
    }
}

/// pkg-config sees only the staged tree.
fn pkg_env(cmd: &mut Command, stage: &Path, pcdir: &Path) {
    cmd.env("PKG_CONFIG_SYSROOT_DIR", stage)
        .env("PKG_CONFIG_PATH", pcdir)
        .env("PKG_CONFIG_LIBDIR", pcdir);
}

fn pkg_config(stage: &Path, pcdir: &Path, args: &[&str]) -> String {
    let mut cmd = Command::new("pkg-config");
    cmd.args(args);
    pkg_env(&mut cmd, stage, pcdir);
    run_ok(&mut cmd)
}

fn run_ok(cmd: &mut Command) -> String {
    let out: Output = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({})\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        tail(&String::from_utf8_lossy(&out.stdout), 40),
        tail(&String::from_utf8_lossy(&out.stderr), 40)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

type Run = (
    Option<std::process::ExitStatus>,
    String,
    String,
    Duration,
    bool,
);

/// Runs `cmd`, killing it after `limit`.
fn run_with_timeout(mut cmd: Command, limit: Duration) -> Run {
    let start = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = out.read_to_end(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = err.read_to_end(&mut s);
        s
    });
    let mut timed_out = false;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break Some(st);
        }
        if start.elapsed() > limit {
            timed_out = true;
            let _ = child.kill();
            break child.wait().ok();
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stdout = String::from_utf8_lossy(&out_reader.join().unwrap()).into_owned();
    let stderr = String::from_utf8_lossy(&err_reader.join().unwrap()).into_owned();
    (status, stdout, stderr, start.elapsed(), timed_out)
}

/// Every file and symlink under `root`, relative to it (directories are not listed).
fn files_under(root: &Path) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(dir) = todo.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            let ft = e.file_type().unwrap();
            if ft.is_dir() {
                todo.push(p);
            } else {
                found.insert(rel(root, &p));
            }
        }
    }
    found
}

fn rel(root: &Path, p: &Path) -> String {
    p.strip_prefix(root).unwrap().to_string_lossy().into_owned()
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The names of the functions a C header declares: comments and preprocessor lines
/// removed, every top-level statement with a '(' that is neither a typedef nor a
/// struct/enum/union definition (a braced body) is a prototype, named by the
/// identifier before its first '('.
fn header_functions(h: &str) -> BTreeSet<String> {
    // The C++ guard: `extern "C" {` and `}  // extern "C"` on lines of their own.
    let h: String = h
        .lines()
        .filter(|l| {
            let t = l.trim();
            !(t.starts_with("extern \"C\"") || (t.starts_with('}') && t.contains("extern \"C\"")))
        })
        .collect::<Vec<_>>()
        .join("\n");
    let mut text = String::new();
    let mut rest = h.as_str();
    while let Some(i) = rest.find("/*") {
        text.push_str(&rest[..i]);
        rest = &rest[i + 2..];
        rest = &rest[rest.find("*/").map_or(rest.len(), |j| j + 2)..];
    }
    text.push_str(rest);
    // Preprocessor lines go, with their backslash continuations.
    let mut kept = Vec::new();
    let mut continued = false;
    for l in text.lines() {
        let l = l.split("//").next().unwrap();
        let directive = continued || l.trim_start().starts_with('#');
        continued = directive && l.trim_end().ends_with('\\');
        if !directive {
            kept.push(l);
        }
    }
    let text = kept.join("\n");
    let mut names = BTreeSet::new();
    let (mut depth, mut stmt, mut has_body) = (0usize, String::new(), false);
    for c in text.chars() {
        match c {
            '{' => {
                depth += 1;
                has_body = true;
                continue;
            }
            '}' => {
                depth -= 1;
                continue;
            }
            ';' if depth == 0 => {
                let s = stmt.trim();
                // typedefs and struct/enum/union definitions are not prototypes
                if !s.starts_with("typedef") && !has_body {
                    if let Some(paren) = s.find('(') {
                        let name: String = s[..paren]
                            .trim_end()
                            .chars()
                            .rev()
                            .take_while(|c| c.is_alphanumeric() || *c == '_')
                            .collect::<Vec<_>>()
                            .into_iter()
                            .rev()
                            .collect();
                        names.insert(name);
                    }
                }
                stmt.clear();
                has_body = false;
                continue;
            }
            _ => {}
        }
        if depth == 0 {
            stmt.push(c);
        }
    }
    names
}
