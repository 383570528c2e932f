//! libgoroutine: Go's goroutines for C and Python programs.
//!
//! Read this first:
//! - `arch`: the assembly context switch (`x86_64.S`) behind two unsafe functions.
//! - `runtime`: the scheduler in Go's vocabulary — G (goroutine), M (worker thread),
//!   P (processor), `sched` (global state and the worker loop), `park` (how anything
//!   waits and is woken); `runtime::stack`: slab-carved stacks, their caches, guard
//!   pages, and the overflow and stack-switch checks.
//!   `runtime::context`: the cancellation tree (gr_ctx) and the goroutines bound to it.
//! - `sync`: what goroutines share, built on `park`: channels and select, WaitGroup,
//!   Mutex, RWMutex, Cond, Once, semaphores, timers as channels, groups (errgroup).
//! - `cpython`: the runtime side of Python goroutines (homes, tasks, the C builtins);
//!   it finds CPython's functions at run time and never links libpython.
//! - `ffi`: the whole C surface (`gr_*`); nothing else is `#[no_mangle]`. The header
//!   `include/goroutine.h` is generated from it by cbindgen (see `build.rs`).
//! - `types`: the C-visible value types the runtime fills (`gr_stats`), below both
//!   `runtime` and `ffi`, which re-exports them: the runtime never imports from `ffi`.
//!
//! Outside `src/`: `hook/` (libgoroutine_hook.so, the interposed libc calls),
//! `bindings/python/` (the package), `c_examples/`, `tests/` (Rust tests and the C
//! programs they run), `microbench/` (criterion) and `bench/` (the comparison suite
//! against Go, threads and gevent, and its report).
//!
//! Rings of unsafety: assembly only in `arch`, raw G pointers only in `runtime`,
//! `extern "C"` only in `ffi`.

// cbindgen reads src/ffi and src/types.rs only: the other modules are ignored, so that
// their extern blocks and public constants cannot leak into include/goroutine.h.
/// cbindgen:ignore
pub mod arch;
/// cbindgen:ignore
pub mod cpython;
pub mod ffi;
/// cbindgen:ignore
pub mod runtime;
/// cbindgen:ignore
pub mod sync;
pub mod types;
