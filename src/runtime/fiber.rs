//! Telling sanitizers about stack switches, so C programs built with
//! `-fsanitize=address` or `-fsanitize=thread` can use goroutines.
//!
//! AddressSanitizer must know which stack is current (else it reports a stack
//! overflow or poisons the wrong memory): `__sanitizer_start_switch_fiber` before a
//! switch, `__sanitizer_finish_switch_fiber` in the context switched to.
//! ThreadSanitizer keeps a shadow state per fiber: `__tsan_create_fiber` per
//! goroutine, `__tsan_switch_to_fiber` before each switch.
//!
//! Detection is at run time: the sanitizer runtimes live in the C program, and the
//! hooks are looked up with dlsym when the runtime starts. Without them every hook is
//! one predictable branch on `ACTIVE`.

use core::ffi::c_void;
use core::ptr;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// A context's sanitizer state: its stack and the sanitizers' handles for it.
pub struct Fiber {
    /// ASan's fake-stack handle, saved while switched out.
    fake: *mut c_void,
    /// TSan's fiber.
    tsan: *mut c_void,
    lo: usize,
    size: usize,
}

impl Fiber {
    pub const fn empty() -> Fiber {
        Fiber {
            fake: ptr::null_mut(),
            tsan: ptr::null_mut(),
            lo: 0,
            size: 0,
        }
    }
}

static ACTIVE: AtomicBool = AtomicBool::new(false);
static ASAN_START: AtomicUsize = AtomicUsize::new(0);
static ASAN_FINISH: AtomicUsize = AtomicUsize::new(0);
static TSAN_CURRENT: AtomicUsize = AtomicUsize::new(0);
static TSAN_CREATE: AtomicUsize = AtomicUsize::new(0);
static TSAN_DESTROY: AtomicUsize = AtomicUsize::new(0);
static TSAN_SWITCH: AtomicUsize = AtomicUsize::new(0);

type AsanStart = unsafe extern "C" fn(*mut *mut c_void, *const c_void, usize);
type AsanFinish = unsafe extern "C" fn(*mut c_void, *mut *const c_void, *mut usize);
type TsanCurrent = unsafe extern "C" fn() -> *mut c_void;
type TsanCreate = unsafe extern "C" fn(u32) -> *mut c_void;
type TsanDestroy = unsafe extern "C" fn(*mut c_void);
type TsanSwitch = unsafe extern "C" fn(*mut c_void, u32);

fn lookup(name: &core::ffi::CStr) -> usize {
    // SAFETY: dlsym on the global scope with a NUL-terminated name.
    unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) as usize }
}

/// Looks the hooks up (once, at runtime start).
pub fn init() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let (s, f) = (
            lookup(c"__sanitizer_start_switch_fiber"),
            lookup(c"__sanitizer_finish_switch_fiber"),
        );
        if s != 0 && f != 0 {
            ASAN_START.store(s, Ordering::Relaxed);
            ASAN_FINISH.store(f, Ordering::Relaxed);
        }
        let t = [
            lookup(c"__tsan_get_current_fiber"),
            lookup(c"__tsan_create_fiber"),
            lookup(c"__tsan_destroy_fiber"),
            lookup(c"__tsan_switch_to_fiber"),
        ];
        if t.iter().all(|&a| a != 0) {
            TSAN_CURRENT.store(t[0], Ordering::Relaxed);
            TSAN_CREATE.store(t[1], Ordering::Relaxed);
            TSAN_DESTROY.store(t[2], Ordering::Relaxed);
            TSAN_SWITCH.store(t[3], Ordering::Relaxed);
        }
        let on =
            ASAN_START.load(Ordering::Relaxed) != 0 || TSAN_SWITCH.load(Ordering::Relaxed) != 0;
        ACTIVE.store(on, Ordering::Release);
    });
}

#[inline(always)]
pub fn active() -> bool {
    ACTIVE.load(Ordering::Relaxed)
}

/// Describes the calling thread's own stack (a worker's scheduler context).
pub fn for_thread(f: &mut Fiber) {
    if !active() {
        return;
    }
    // SAFETY: querying the calling thread's attributes.
    unsafe {
        let mut attr: libc::pthread_attr_t = core::mem::zeroed();
        if libc::pthread_getattr_np(libc::pthread_self(), &mut attr) == 0 {
            let mut addr: *mut c_void = ptr::null_mut();
            let mut size = 0usize;
            libc::pthread_attr_getstack(&attr, &mut addr, &mut size);
            libc::pthread_attr_destroy(&mut attr);
            f.lo = addr as usize;
            f.size = size;
        }
        let cur = TSAN_CURRENT.load(Ordering::Relaxed);
        if cur != 0 {
            f.tsan = core::mem::transmute::<usize, TsanCurrent>(cur)();
        }
    }
}

/// Describes a goroutine stack `[lo, hi)` that is about to be used.
pub fn for_goroutine(f: &mut Fiber, lo: usize, hi: usize) {
    if !active() {
        return;
    }
    f.lo = lo;
    f.size = hi - lo;
    f.fake = ptr::null_mut();
    let create = TSAN_CREATE.load(Ordering::Relaxed);
    if create != 0 {
        // SAFETY: the hook found by dlsym, with its documented signature.
        f.tsan = unsafe { core::mem::transmute::<usize, TsanCreate>(create)(0) };
    }
}

/// Forgets a goroutine's state after it exited (never for the running context).
pub fn release(f: &mut Fiber) {
    if !active() {
        return;
    }
    let destroy = TSAN_DESTROY.load(Ordering::Relaxed);
    if destroy != 0 && !f.tsan.is_null() {
        // SAFETY: a fiber created by for_goroutine that is not running.
        unsafe { core::mem::transmute::<usize, TsanDestroy>(destroy)(f.tsan) };
    }
    f.tsan = ptr::null_mut();
}

/// Before switching from `from` to `to` (`dying`: `from` never runs again).
///
/// # Safety
/// Both point at live Fiber records of the two contexts.
#[inline]
pub unsafe fn before(from: *mut Fiber, to: *const Fiber, dying: bool) {
    if !active() {
        return;
    }
    // SAFETY: the hooks found by dlsym, with their documented signatures.
    unsafe {
        let s = ASAN_START.load(Ordering::Relaxed);
        if s != 0 {
            let save = if dying {
                ptr::null_mut()
            } else {
                &mut (*from).fake as *mut *mut c_void
            };
            core::mem::transmute::<usize, AsanStart>(s)(
                save,
                (*to).lo as *const c_void,
                (*to).size,
            );
        }
        let t = TSAN_SWITCH.load(Ordering::Relaxed);
        if t != 0 && !(*to).tsan.is_null() {
            core::mem::transmute::<usize, TsanSwitch>(t)((*to).tsan, 0);
        }
    }
}

/// First thing in the context switched to (`cur` is its own record).
///
/// # Safety
/// `cur` is the running context's live Fiber record.
#[inline]
pub unsafe fn after(cur: *mut Fiber) {
    if !active() {
        return;
    }
    let f = ASAN_FINISH.load(Ordering::Relaxed);
    if f != 0 {
        // SAFETY: the hook found by dlsym, with its documented signature.
        unsafe {
            core::mem::transmute::<usize, AsanFinish>(f)(
                (*cur).fake,
                ptr::null_mut(),
                ptr::null_mut(),
            )
        };
    }
}
