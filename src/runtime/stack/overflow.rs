//! A goroutine that leaves its stack: by overflowing it (the SIGSEGV handler and the
//! alternate signal stacks it runs on), or by jumping off it (the check at every
//! switch).
//!
//! A goroutine that overflows touches its guard, and the kernel sends SIGSEGV to the
//! thread running it. The handler cannot run on the exhausted stack, so every worker
//! installs an alternate signal stack (`AltStack`, 64 KiB) and the handler is installed
//! with `SA_ONSTACK`. It maps the fault address to a slot's guard and the slot to the
//! goroutine last given it (`slab::place_of`), without any lock, allocation or
//! thread-local (only async-signal-safe work is allowed there), writes
//! "libgoroutine: fatal error: stack overflow in goroutine N (NAME)" with write(2),
//! and aborts.
//!
//! Any other fault is not ours: it is passed to the handler installed before ours
//! (with the arguments the kernel gave), or, when there was none, the default action
//! is restored and the faulting instruction runs again, so the process dies of
//! SIGSEGV (and dumps core) as if the runtime were not there.
//!
//! A `longjmp` (or `setcontext`) from a goroutine to a jump buffer set on another
//! stack (another goroutine's, or a thread's own) moves the thread onto that stack
//! behind the runtime's back: the runtime still takes it for the goroutine that was
//! running, and the first switch would save that goroutine's context pointing into a
//! stack it does not own. Every switch away from a goroutine therefore first checks
//! that the stack pointer lies inside the running goroutine's stack
//! (`check_on_own_stack`: two compares on a path that already reads the goroutine)
//! and reports "stack switched outside the runtime" naming it, then aborts. Between
//! the jump and that switch the program runs on the wrong stack undetected (a
//! goroutine that never switches again is never caught). C++ exceptions cannot take
//! this path: the unwinder stops at the base of a goroutine's stack, where the C++
//! runtime calls `std::terminate` (tests/c/unwind_escape.c).

use core::ptr;
use core::sync::atomic::{AtomicBool, AtomicPtr, Ordering};

use super::map_anon;
use super::slab::{self, Place};
use crate::runtime::g::G;

static OLD_SEGV: AtomicPtr<libc::sigaction> = AtomicPtr::new(ptr::null_mut());
static SEGV_INSTALLED: AtomicBool = AtomicBool::new(false);

/// Installs the SIGSEGV handler (once), keeping the one it replaces for `chain`.
pub(super) fn install_segv_handler() {
    if SEGV_INSTALLED.swap(true, Ordering::AcqRel) {
        return;
    }
    // SAFETY: sigaction with valid pointers. The old action is leaked on purpose: it
    // must outlive every future fault.
    unsafe {
        let old: *mut libc::sigaction = Box::into_raw(Box::new(core::mem::zeroed()));
        let mut sa: libc::sigaction = core::mem::zeroed();
        sa.sa_sigaction = on_segv as *const () as usize;
        sa.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_NODEFER;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(libc::SIGSEGV, &sa, old);
        OLD_SEGV.store(old, Ordering::Release);
    }
}

extern "C" fn on_segv(sig: i32, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler.
    let addr = unsafe { (*info).si_addr() } as usize;
    if let Place::Guard(g) = slab::place_of(addr) {
        if !g.is_null() {
            let mut buf = [0u8; 160];
            let mut w = Writer {
                buf: &mut buf,
                len: 0,
            };
            w.put(b"libgoroutine: fatal error: stack overflow in goroutine ");
            // SAFETY: descriptors are never freed.
            let g = unsafe { &*g };
            w.num(g.id());
            w.put(b" (");
            let name = g.name_str();
            w.put(if name.is_empty() { b"unnamed" } else { name });
            w.put(b")\n");
            // sys::write_all is the write system call itself: async-signal-safe.
            let _ = crate::runtime::sys::write_all(2, &w.buf[..w.len]);
            // SAFETY: signal(2) and abort(3) are async-signal-safe.
            unsafe {
                libc::signal(libc::SIGABRT, libc::SIG_DFL);
                libc::abort();
            }
        }
    }
    chain(sig, info, ctx);
}

/// Hands a fault that is not a stack overflow to the handler installed before ours,
/// or to the default action.
fn chain(sig: i32, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    let old = OLD_SEGV.load(Ordering::Acquire);
    // SAFETY: OLD_SEGV was filled by sigaction before our handler could run, and is
    // never freed.
    let old = unsafe { &*old };
    let h = old.sa_sigaction;
    if h == libc::SIG_IGN || h == libc::SIG_DFL {
        // Restore the default and return: the faulting instruction runs again and
        // the kernel applies the default action (core dump), as if we were absent.
        // SAFETY: signal(2) is async-signal-safe.
        unsafe { libc::signal(sig, libc::SIG_DFL) };
        return;
    }
    // SAFETY: calling the previously installed handler the way the kernel would: with
    // three arguments when it asked for SA_SIGINFO, with one otherwise.
    unsafe {
        if old.sa_flags & libc::SA_SIGINFO != 0 {
            let f: extern "C" fn(i32, *mut libc::siginfo_t, *mut libc::c_void) =
                core::mem::transmute(h);
            f(sig, info, ctx);
        } else {
            let f: extern "C" fn(i32) = core::mem::transmute(h);
            f(sig);
        }
    }
}

/// Checks that the calling thread runs on the stack of `g`, the goroutine its M runs
/// (called at every switch away from a goroutine); aborts with a fatal error naming
/// `g` otherwise. The address of a local stands for the stack pointer (left
/// uninitialised: nothing is stored there, it only has to have an address).
#[inline(always)]
pub fn check_on_own_stack(g: &G) {
    let here = core::mem::MaybeUninit::<u8>::uninit();
    let sp = here.as_ptr() as usize;
    if let Some(st) = &g.stack {
        if sp.wrapping_sub(st.lo) >= st.hi - st.lo {
            stack_switched(sp);
        }
    }
}

#[cold]
#[inline(never)]
fn stack_switched(sp: usize) -> ! {
    let on = match slab::place_of(sp) {
        Place::Stack(g) if !g.is_null() => {
            // SAFETY: descriptors are never freed.
            let g = unsafe { &*g };
            format!("the stack of {}", crate::runtime::goroutine_label(g))
        }
        Place::Stack(_) | Place::Guard(_) => "a free goroutine stack".into(),
        Place::Elsewhere => "a stack that is no goroutine's (a thread's own?)".into(),
    };
    crate::runtime::fatal(&format!(
        "stack switched outside the runtime (longjmp out of a goroutine?): running on {on} \
         instead of its own,"
    ))
}

/// Formats into a fixed buffer (a signal handler may not allocate).
struct Writer<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl Writer<'_> {
    fn put(&mut self, s: &[u8]) {
        for &b in s {
            if self.len < self.buf.len() {
                self.buf[self.len] = b;
                self.len += 1;
            }
        }
    }
    fn num(&mut self, mut n: i64) {
        let mut d = [0u8; 20];
        let mut i = d.len();
        if n == 0 {
            self.put(b"0");
            return;
        }
        while n > 0 && i > 0 {
            i -= 1;
            d[i] = b'0' + (n % 10) as u8;
            n /= 10;
        }
        self.put(&d[i..]);
    }
}

/// An alternate signal stack for the calling worker thread, so the SIGSEGV handler
/// can run after a goroutine has exhausted its own stack.
pub struct AltStack {
    base: *mut libc::c_void,
    size: usize,
}

impl AltStack {
    pub fn install() -> Option<AltStack> {
        let size = 64 << 10;
        let base = map_anon(size)? as *mut libc::c_void;
        let ss = libc::stack_t {
            ss_sp: base,
            ss_flags: 0,
            ss_size: size,
        };
        // SAFETY: registers a fresh mapping of our own as this thread's signal stack;
        // unmapped again if that fails.
        unsafe {
            if libc::sigaltstack(&ss, ptr::null_mut()) != 0 {
                libc::munmap(base, size);
                return None;
            }
        }
        Some(AltStack { base, size })
    }
}

impl Drop for AltStack {
    fn drop(&mut self) {
        // SAFETY: this thread installed the stack (an AltStack never leaves it);
        // disabled before it is unmapped, and no handler runs on it at this point.
        unsafe {
            let ss = libc::stack_t {
                ss_sp: ptr::null_mut(),
                ss_flags: libc::SS_DISABLE,
                ss_size: 0,
            };
            libc::sigaltstack(&ss, ptr::null_mut());
            libc::munmap(self.base, self.size);
        }
    }
}
