//! Header section "debugging": counters (`gr_stats`), the goroutine dump (`gr_dump`),
//! and `gr_debug_table`, the table a debugger reads goroutines through.
//!
//! `struct gr_stats` is defined in `crate::types` (the runtime fills it, and cbindgen
//! reads it there) and re-exported here beside the function.
//!
//! `gr_debug_table` is for docs/goroutine-gdb.py (and any debugger script): the
//! release library carries only line tables (`debug = 1`), not Rust type layouts, so
//! instead of DWARF types the script reads this exported, versioned table of
//! addresses, sizes and field offsets, the way Go's runtime-gdb.py reads the runtime's
//! own symbols. It works the same on a live process and on a core file, and on a
//! stripped library (the symbol is in the dynamic symbol table). It is not part of
//! the C API (not in the header): its layout changes only with `version`.

use core::ffi::{c_char, c_void};
use core::mem::{offset_of, size_of};
use core::sync::atomic::{AtomicI64, AtomicPtr, AtomicUsize};
use std::ffi::c_int;

use super::boundary;
use crate::runtime::debug::{self, Names, STATUS_NAMES, WAIT_REASON_NAMES};
use crate::runtime::g::{self, G};
use crate::runtime::stack::Stack;
pub use crate::types::gr_stats;
use crate::types::GR_STATS_FIRST_SIZE;

/// Fills `*out` with the runtime's counters. Set `out->size = sizeof *out` first: the
/// library fills the counters that fit in `size` bytes, leaves any bytes beyond the
/// ones it knows alone, and sets `size` to the bytes it filled. Returns 0, or -EINVAL
/// for NULL or a `size` smaller than the first struct that had it (0.2.0's, 128
/// bytes; 0 included). Never parks; plain threads: yes.
///
/// # Safety
/// `out` is NULL or points to a struct gr_stats whose `size` the caller set, writable
/// for that many bytes.
#[no_mangle]
pub unsafe extern "C" fn gr_stats(out: *mut gr_stats) -> c_int {
    boundary("gr_stats", || {
        if out.is_null() {
            return -libc::EINVAL;
        }
        // SAFETY: a non-null out points to the caller's struct gr_stats (our contract),
        // whatever its version: every version begins with `size`.
        let size = unsafe { core::ptr::addr_of!((*out).size).read() };
        if size < GR_STATS_FIRST_SIZE {
            return -libc::EINVAL;
        }
        let stats = debug::stats();
        let n = size.min(size_of::<gr_stats>());
        // SAFETY: the caller's struct is writable for `size` >= n bytes (our contract)
        // and does not overlap our local copy; n covers `size`, which is written last.
        unsafe {
            core::ptr::copy_nonoverlapping(
                &stats as *const gr_stats as *const u8,
                out as *mut u8,
                n,
            );
            core::ptr::addr_of_mut!((*out).size).write(n);
        }
        0
    })
}

/// Writes every live goroutine to `fd`: id, name, state (and what it waits on, for
/// how long), the function it runs, and where it was created (the function of the
/// goroutine that spawned it, and that goroutine's id). Returns 0, or a negative
/// errno value from write(2) (-EBADF...). Never parks; plain threads: yes.
#[no_mangle]
pub extern "C" fn gr_dump(fd: c_int) -> c_int {
    boundary("gr_dump", || debug::dump(fd))
}

// ---------------------------------------------------------------------------------
// the debugger table

/// Where a debugger finds goroutines. Every field is 8 bytes (addresses, counts,
/// byte offsets into a descriptor), so a script reads it as an array of u64.
/// Version 1; fields are only ever appended (with `version` bumped).
/// Not in the header (for debuggers, not C programs):
/// cbindgen:ignore
#[repr(C)]
pub(crate) struct DebugTable {
    /// b"grdebug\0" as a little-endian u64.
    magic: u64,
    version: u64,
    /// sizeof(DebugTable): a reader checks it covers the fields it knows.
    size: u64,
    /// The descriptor table: `chunks` is an array of `max_chunks` pointers, each null
    /// or an array of `1 << chunk_bits` descriptors of `g_size` bytes; descriptor
    /// index i is at chunks[i >> chunk_bits] + (i & mask) * g_size, for i below the
    /// word at `carved`.
    chunks: *const AtomicPtr<G>,
    max_chunks: u64,
    chunk_bits: u64,
    carved: *const AtomicUsize,
    /// A goroutine's id is gen * max_descs + idx + 1.
    max_descs: u64,
    g_size: u64,
    /// Offsets in a descriptor. `saved_sp`: the stack pointer saved by
    /// gr_ctx_switch (see src/arch/x86_64.S) while the goroutine is not running.
    off_saved_sp: u64,
    off_status: u64,
    off_gen: u64,
    off_idx: u64,
    /// The entry function (`gr_fn`).
    off_func: u64,
    off_wait_reason: u64,
    /// i64, monotonic ns (compare with the word at `coarse_now`).
    off_wait_since: u64,
    /// Id of the spawning goroutine (0: a plain thread) and the function it ran.
    off_parent: u64,
    off_parent_func: u64,
    /// NUL-padded name of `name_len` bytes.
    off_name: u64,
    name_len: u64,
    /// The stack's usable range [lo, hi), valid once the goroutine has run (so for
    /// every running one: a thread whose stack pointer is inside runs it).
    off_stack_lo: u64,
    off_stack_hi: u64,
    /// Non-null while locked to a thread.
    off_lockedm: u64,
    /// Arrays of C strings naming `status` values and `wait_reason` values.
    status_names: *const *const c_char,
    n_status: u64,
    reason_names: *const *const c_char,
    n_reasons: u64,
    /// i64: the monotonic clock as sysmon last read it (the clock of `wait_since`).
    coarse_now: *const AtomicI64,
    /// Address of gr_ctx_switch: its CFI describes a saved context, so a debugger
    /// unwinds a parked goroutine from (pc inside gr_ctx_switch, sp = saved_sp).
    ctx_switch: Option<SwitchFn>,
}

type SwitchFn = unsafe extern "C" fn(*mut *mut c_void, *mut c_void, usize) -> usize;

// SAFETY: the pointers name statics that live as long as the process; the table
// itself is never written.
unsafe impl Sync for DebugTable {}

/// Offset of a `Stack` field inside `Option<Stack>` (the layout of an Option is
/// the compiler's choice, so it is measured, at compile time).
const fn offset_in_option_stack(hi: bool) -> usize {
    let s: Option<Stack> = Some(Stack {
        lo: 0,
        hi: 0,
        slot: 0,
    });
    let base = &s as *const Option<Stack> as *const u8;
    match &s {
        Some(st) => {
            let field = if hi { &st.hi } else { &st.lo };
            // SAFETY: both pointers point into `s`.
            unsafe { (field as *const usize as *const u8).offset_from(base) as usize }
        }
        None => panic!("Some is Some"),
    }
}

const fn table_names<const N: usize>(n: &'static Names<N>) -> *const *const c_char {
    n.0.as_ptr()
}

/// The table (see the top of this file). Not in the header:
/// cbindgen:ignore
#[no_mangle]
#[used]
static gr_debug_table: DebugTable = DebugTable {
    magic: u64::from_le_bytes(*b"grdebug\0"),
    version: 1,
    size: size_of::<DebugTable>() as u64,
    chunks: g::CHUNKS.as_ptr(),
    max_chunks: g::MAX_CHUNKS as u64,
    chunk_bits: g::CHUNK_BITS as u64,
    carved: &g::CARVED,
    max_descs: g::MAX_DESCS as u64,
    g_size: size_of::<G>() as u64,
    off_saved_sp: offset_of!(G, ctx) as u64,
    off_status: offset_of!(G, status) as u64,
    off_gen: offset_of!(G, gen) as u64,
    off_idx: offset_of!(G, idx) as u64,
    off_func: offset_of!(G, func) as u64,
    off_wait_reason: offset_of!(G, wait_reason) as u64,
    off_wait_since: offset_of!(G, wait_since) as u64,
    off_parent: offset_of!(G, parent) as u64,
    off_parent_func: offset_of!(G, parent_func) as u64,
    off_name: offset_of!(G, name) as u64,
    name_len: g::NAME_LEN as u64 + 1,
    off_stack_lo: (offset_of!(G, stack) + offset_in_option_stack(false)) as u64,
    off_stack_hi: (offset_of!(G, stack) + offset_in_option_stack(true)) as u64,
    off_lockedm: offset_of!(G, lockedm) as u64,
    status_names: table_names(&STATUS_NAMES),
    n_status: STATUS_NAMES.0.len() as u64,
    reason_names: table_names(&WAIT_REASON_NAMES),
    n_reasons: WAIT_REASON_NAMES.0.len() as u64,
    coarse_now: &crate::runtime::lock::COARSE_NOW,
    ctx_switch: Some(crate::arch::gr_ctx_switch),
};
