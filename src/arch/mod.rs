//! The only door to the assembly in `x86_64.S`: a saved context is one stack pointer,
//! `switch` moves from one context to another carrying a word (`jump` leaves one for
//! good), and `prepare` lays out a fresh stack so that the first switch into it starts
//! `entry(transfer, arg)`.
//! It also holds the thread's current-M word (`tls_m`), an initial-exec thread-local
//! that costs two instructions to read, the number of the CPU the thread runs on
//! (`cpu_hint`, from glibc's restartable-sequences area), and valgrind's
//! client-request sequence (`valgrind_request`), the other machine code the crate needs.
//!
//! Another architecture is one more `.S` file exporting the same symbols, plus the
//! frame layout in `prepare` and the thread-local read in `tls_m` (inline assembly, so
//! that reading the current M is not a call).

use core::ffi::c_void;

extern "C" {
    /// Also read by the debugger table (`ffi::debug`): gdb finds saved contexts by it.
    pub(crate) fn gr_ctx_switch(
        save_sp: *mut *mut c_void,
        load_sp: *mut c_void,
        transfer: usize,
    ) -> usize;
    fn gr_ctx_jump(load_sp: *mut c_void, transfer: usize) -> !;
    fn gr_ctx_trampoline();
    fn gr_tls_set_m(m: *mut c_void);
}

/// Sends a client request to valgrind when the process runs under it (`args`: the
/// request code and up to five arguments, as valgrind.h lays them out) and returns its
/// answer; on a real CPU the sequence is a few no-op instructions (rotations of rdi
/// adding up to 128 bits, `xchg rbx, rbx`) and the answer is `default`.
#[inline(always)]
pub fn valgrind_request(args: &[usize; 6], default: usize) -> usize {
    let mut result = default;
    // SAFETY: valgrind's documented x86_64 client-request preamble: it reads the block
    // at rax (and what the request's arguments point at), writes only rdx, and leaves
    // rdi as it was (four rotations by 128 bits in total).
    unsafe {
        core::arch::asm!(
            "rol rdi, 3",
            "rol rdi, 13",
            "rol rdi, 61",
            "rol rdi, 51",
            "xchg rbx, rbx",
            in("rax") args.as_ptr(),
            inout("rdx") result,
            inout("rdi") 0usize => _,
            options(nostack),
        );
    }
    result
}

/// The calling thread's current-M word (an initial-exec thread-local in the
/// assembly; null until set). Each call reads it anew.
#[inline(always)]
pub fn tls_m() -> *mut c_void {
    let m: *mut c_void;
    // SAFETY: reads the calling thread's own TLS word (gr_tls_m in x86_64.S, an
    // initial-exec thread-local: its offset from %fs comes from the GOT). Not `pure`:
    // every call reads anew, as the word's owner may change across a switch.
    unsafe {
        core::arch::asm!(
            "movq gr_tls_m@gottpoff(%rip), {m}",
            "movq %fs:({m}), {m}",
            m = out(reg) m,
            options(att_syntax, nostack, readonly, preserves_flags),
        );
    }
    m
}

/// Sets the calling thread's current-M word.
///
/// # Safety
/// `m` is null or points to an M that stays alive for as long as it is this thread's
/// M: everything that reads the word back (`runtime::m::current_m`) dereferences it.
#[inline(always)]
pub unsafe fn set_tls_m(m: *mut c_void) {
    // SAFETY: gr_tls_set_m only stores `m` in the calling thread's own TLS word (no
    // other thread reads it); the pointer's validity is this function's contract.
    unsafe { gr_tls_set_m(m) }
}

/// Entry point of a fresh context: receives the switch's transfer word and the `arg`
/// given to [`prepare`]. It must never return (the trampoline traps if it does).
pub type Entry = unsafe extern "C" fn(transfer: usize, arg: usize) -> !;

/// A saved execution context: the stack pointer of a suspended goroutine (or of a
/// worker thread's scheduler loop). Null means "nothing saved".
#[repr(transparent)]
pub struct Context {
    sp: *mut c_void,
}

impl Context {
    pub const fn empty() -> Self {
        Context {
            sp: core::ptr::null_mut(),
        }
    }

    /// True when nothing is saved (a context that has never run).
    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.sp.is_null()
    }
}

/// Default MXCSR (all exceptions masked, round to nearest) and x87 control word
/// (extended precision, all exceptions masked) of a fresh goroutine, as the SysV ABI
/// specifies for process start.
const MXCSR_DEFAULT: u32 = 0x1F80;
const FPUCW_DEFAULT: u32 = 0x037F;

/// Lays out a fresh stack whose highest usable address is `top` (exclusive) so that
/// switching to the returned context calls `entry(transfer, arg)` on a 16-byte
/// aligned stack.
///
/// # Safety
/// `top` must be the end of writable memory with at least 128 bytes below it that
/// nobody else uses.
pub unsafe fn prepare(top: *mut u8, entry: Entry, arg: usize) -> Context {
    let top = (top as usize) & !15;
    // Two zero words above the return address: a null "caller" for debuggers, and the
    // alignment slot that makes rsp 16-byte aligned when the trampoline is entered.
    let ret_slot = top - 24;
    let frame = ret_slot - 56;
    let w = frame as *mut u64;
    // SAFETY: the 80 bytes written, [top-80, top) after rounding `top` down to 16, lie
    // within the [top-128, top) this function's contract gives us to write.
    unsafe {
        core::ptr::write_bytes((top - 24) as *mut u8, 0, 24);
        *w = (MXCSR_DEFAULT as u64) | ((FPUCW_DEFAULT as u64) << 32);
        *w.add(1) = 0; // r15
        *w.add(2) = 0; // r14
        *w.add(3) = 0; // r13
        *w.add(4) = arg as u64; // r12: the entry argument
        *w.add(5) = entry as usize as u64; // rbx: the entry function
        *w.add(6) = 0; // rbp
        *w.add(7) = gr_ctx_trampoline as *const () as usize as u64; // return address
    }
    Context {
        sp: frame as *mut c_void,
    }
}

/// Saves the running context into `save`, resumes `load`, and returns the transfer
/// word that whoever switches back to `save` passes.
///
/// # Safety
/// `load` must hold a context saved by `switch` or made by `prepare` that nothing else
/// is running or about to run; `save` must stay valid until it is resumed.
#[inline(always)]
pub unsafe fn switch(save: *mut Context, load: *const Context, transfer: usize) -> usize {
    // SAFETY: this function's contract: `load` holds a resumable context nobody else
    // runs and `save` outlives its resumption. Context is repr(transparent) over the
    // saved sp, so `save` is a valid `*mut *mut c_void` for the assembly.
    unsafe { gr_ctx_switch(save as *mut *mut c_void, (*load).sp, transfer) }
}

/// Resumes `load` like `switch`, saving nothing: the running context is left for good.
///
/// # Safety
/// As for `switch`'s `load`; nothing may ever resume the running context.
#[inline(always)]
pub unsafe fn jump(load: *const Context, transfer: usize) -> ! {
    // SAFETY: this function's contract: `load` holds a resumable context nobody else
    // runs, and nothing needs the current one again.
    unsafe { gr_ctx_jump((*load).sp, transfer) }
}

/// `__rseq_offset + 4` (the `cpu_id` word of this thread's `struct rseq`, from the
/// thread pointer) when glibc registered restartable sequences, else 0 (not looked
/// up yet, or not available: `cpu_hint` then says 0).
static RSEQ_CPU_ID: core::sync::atomic::AtomicIsize = core::sync::atomic::AtomicIsize::new(0);

/// Looks up glibc's restartable-sequences area (glibc 2.35 and later register one
/// for every thread, unless told not to by `glibc.pthread.rseq=0`) so that
/// `cpu_hint` can read it. Looked up with dlsym, so that an older glibc loads the
/// library all the same (every hint is then 0). Idempotent.
pub fn init_cpu_hint() {
    use core::sync::atomic::Ordering;
    if RSEQ_CPU_ID.load(Ordering::Relaxed) != 0 {
        return;
    }
    // SAFETY: dlsym on the global scope with NUL-terminated names; glibc documents
    // both as `const` objects: ptrdiff_t __rseq_offset, unsigned int __rseq_size.
    unsafe {
        let off = libc::dlsym(libc::RTLD_DEFAULT, c"__rseq_offset".as_ptr()) as *const isize;
        let size = libc::dlsym(libc::RTLD_DEFAULT, c"__rseq_size".as_ptr()) as *const u32;
        if !off.is_null() && !size.is_null() && *size >= 8 && *off != 0 {
            RSEQ_CPU_ID.store(*off + 4, Ordering::Relaxed);
        }
    }
}

/// The CPU the calling thread runs on, as the kernel last wrote it into the
/// thread's restartable-sequences area: a hint (the thread may move right after),
/// two loads and no system call. 0 before `init_cpu_hint`, or without the area.
#[inline(always)]
pub fn cpu_hint() -> usize {
    let off = RSEQ_CPU_ID.load(core::sync::atomic::Ordering::Relaxed);
    if off == 0 {
        return 0;
    }
    let cpu: u32;
    // SAFETY: `off` is glibc's offset of this thread's registered `struct rseq` plus
    // the offset of its `cpu_id` word, from the thread pointer (fs), which the kernel
    // keeps current for every thread glibc starts (and the main thread).
    unsafe {
        core::arch::asm!(
            "mov {cpu:e}, fs:[{off}]",
            cpu = out(reg) cpu,
            off = in(reg) off,
            options(nostack, readonly, preserves_flags),
        );
    }
    cpu as usize
}
