//! Build script: assembles the context switch (`src/arch/*.S`) with the `cc` crate,
//! sets the shared library's soname, and generates the C header with cbindgen.
//!
//! The soname carries the ABI version: `libgoroutine.so.MAJOR`, and while the major
//! version is 0 (when a new minor version may change the ABI, CHANGELOG.md)
//! `libgoroutine.so.0.MINOR`, so that the loader refuses to run a program with a
//! library whose ABI differs from the one it was built against. mk/install.mk names
//! the same files and checks that the built library has this soname; the tests read
//! it from `GR_SONAME` (set here for every target of the package).
//!
//! The header is generated into `$OUT_DIR/goroutine.h` on every build. The committed
//! copy in `include/goroutine.h` is rewritten only when `GR_WRITE_HEADER=1` is set
//! (`make header`), so that `tests/header.rs` can fail when the two differ: a stale
//! committed header is a bug a C user would hit first.
use std::env;
use std::path::PathBuf;

fn main() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());

    let arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap();
    let os = env::var("CARGO_CFG_TARGET_OS").unwrap();
    if arch != "x86_64" || os != "linux" {
        panic!("libgoroutine supports x86_64 Linux only (got {arch}-{os})");
    }
    let asm = manifest.join("src/arch/x86_64.S");
    println!("cargo:rerun-if-changed={}", asm.display());
    cc::Build::new().file(&asm).compile("grarch");

    let major = env::var("CARGO_PKG_VERSION_MAJOR").unwrap();
    let minor = env::var("CARGO_PKG_VERSION_MINOR").unwrap();
    let abi = if major == "0" {
        format!("0.{minor}")
    } else {
        major
    };
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libgoroutine.so.{abi}");
    println!("cargo:rustc-env=GR_SONAME=libgoroutine.so.{abi}");
    println!("cargo:rustc-env=GR_HOOK_SONAME=libgoroutine_hook.so.{abi}");

    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-env-changed=GR_WRITE_HEADER");
    let mut config =
        cbindgen::Config::from_file(manifest.join("cbindgen.toml")).expect("cbindgen.toml");
    config.after_includes = Some(version_macros());
    let header = cbindgen::Builder::new()
        .with_crate(&manifest)
        .with_config(config)
        .generate()
        .expect("cbindgen could not generate the header");
    let generated = out.join("goroutine.h");
    let mut text = Vec::new();
    header.write(&mut text);
    let text = untypedef_stats(&String::from_utf8(text).expect("utf-8 header"));
    let text = plain_once_init(&text);
    std::fs::write(&generated, text).expect("write the generated header");
    if env::var("GR_WRITE_HEADER").as_deref() == Ok("1") {
        std::fs::copy(&generated, manifest.join("include/goroutine.h"))
            .expect("write include/goroutine.h");
    }
}

/// `gr_stats` is both a function and a struct (`int gr_stats(struct gr_stats *)`, as
/// the API promises); C cannot also have a typedef of that name, which cbindgen's
/// "both" style would emit. So that one struct is written with its tag only.
fn untypedef_stats(h: &str) -> String {
    let h = h.replace("typedef struct gr_stats {", "struct gr_stats {");
    let h = h.replacen("} gr_stats;", "};", 1);
    h.replace("(gr_stats *", "(struct gr_stats *")
}

/// cbindgen writes a struct constant as a compound literal, `(gr_once){ ._private =
/// ... }`, which C accepts in a static initializer only as a GNU extension and C++
/// not at all. GR_ONCE_INIT is meant for exactly that (`static gr_once o =
/// GR_ONCE_INIT;`), so it becomes a plain initializer list.
fn plain_once_init(h: &str) -> String {
    let from = "#define GR_ONCE_INIT (gr_once){ ._private = { 0, 0, 0, } }";
    assert!(
        h.contains(from),
        "build.rs: cbindgen's GR_ONCE_INIT changed; update plain_once_init"
    );
    h.replace(from, "#define GR_ONCE_INIT { { 0, 0, 0 } }")
}

/// The header's version macros, from Cargo.toml's version (gr_version() returns the
/// same string at run time).
fn version_macros() -> String {
    let v = |k: &str| env::var(k).unwrap();
    let (major, minor, patch) = (
        v("CARGO_PKG_VERSION_MAJOR"),
        v("CARGO_PKG_VERSION_MINOR"),
        v("CARGO_PKG_VERSION_PATCH"),
    );
    format!(
        "\n/* The version of this header; gr_version() gives the library's. */\n\
         #define GR_VERSION_MAJOR {major}\n\
         #define GR_VERSION_MINOR {minor}\n\
         #define GR_VERSION_PATCH {patch}\n\
         #define GR_VERSION_STRING \"{major}.{minor}.{patch}\"\n\
         /* MAJOR*10000 + MINOR*100 + PATCH */\n\
         #define GR_VERSION_NUMBER ({major} * 10000 + {minor} * 100 + {patch})\n\
         /* True when this header is at least version maj.min.patch. */\n\
         #define GR_VERSION_CHECK(maj, min, patch) \\\n    (GR_VERSION_NUMBER >= ((maj) * 10000 + (min) * 100 + (patch)))\n"
    )
}
