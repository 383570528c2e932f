//! Telling sanitizers about stack switches, so C programs built with
//! `-fsanitize=address` or `-fsanitize=thread` can use goroutines.
//!
//! AddressSanitizer must know which stack is current (else it reports a stack
//! overflow or poisons the wrong memory): `__sanitizer_start_switch_fiber` before a
//! switch, `__sanitizer_finish_switch_fiber` in the context switched to.
//! ThreadSanitizer keeps a shadow state per fiber: `__tsan_create_fiber` per
//! goroutine descriptor (kept for its later goroutines), `__tsan_switch_to_fiber`
//! before each switch.
//!
//! Detection is at run time: the sanitizer runtimes live in the C program, and the
//! hooks are looked up with dlsym when the runtime starts. Without them every hook is
//! one predictable branch on `ACTIVE`.
//!
//! ThreadSanitizer also needs happens-before edges. The library is not instrumented,
//! so TSan sees none of its atomics and locks: a value sent over a channel by a
//! goroutine on one worker and read by a goroutine on another would look like a race.
//! The `hb_*` functions below give TSan the edges the API promises, at the API's
//! own points (Go's memory model, made conservative: operations on one channel are
//! ordered like a lock's):
//!
//! | edge | released by | acquired by |
//! |---|---|---|
//! | channel operations, close | every op, under the channel lock (`chan.rs`) | the same |
//! | a parked party's wake-up | the waker, on the waiter (`chan.rs`) | the woken party, after `block` |
//! | mutex | unlock (`mutex.rs`) | lock, try_lock |
//! | wait group | add / done (`waitgroup.rs`) | wait's return |
//! | spawn | `sched::spawn`, on the new G | the G's first run (`for_goroutine`) |
//! | exit | `sched::goexit`, on the G and on `ALL_EXITED` | `gr_join` (the G), `gr_main`/`gr_wait_all` (`ALL_EXITED`) |
//! | fd | the fd wrappers (`gr_read` ... `gr_block_io`) before the call, `gr_close` | the fd wrappers after the call (a wait that `gr_close` ended included) |
//! | a reused goroutine stack | `release`, on the stack's address | `for_goroutine`, before its new fiber exists |
//!
//! The fd edges stand in for the ones TSan draws itself for read/write/close called
//! from instrumented code: the library's own calls are invisible to it (see
//! tests/sanitize/tsan.supp). The stack edge: a stack freed by a goroutine that
//! exited on one worker may start another goroutine on another worker; without the
//! edge TSan takes the new goroutine's first writes to it for races with the old one's.
//!
//! The keys are addresses TSan uses as sync objects: the object itself, a waiter on
//! the waiting party's stack (alive until its wake-up, unlike the channel, which the
//! other party may free as soon as its own call returns), a G's `Fiber` record (G
//! descriptors are never freed, so a join after exit still finds it).
//!
//! LeakSanitizer scans a thread's *current* stack, which ASan takes to be the
//! goroutine stack after `__sanitizer_finish_switch_fiber`: a worker's own stack
//! (where `std::thread` keeps its closure, for one) would go unscanned while the
//! worker runs a goroutine or is caught mid-switch at exit, and what only it points to
//! would be reported as leaked. So `for_thread` registers a worker's stack as a root
//! region (`__lsan_register_root_region`) the first time it describes it. Pointers
//! held only by goroutines still parked at exit are not scanned (their stacks are not
//! registered: one region per goroutine would make every spawn and exit pay LSan's
//! global lock and linear search); programs under LeakSanitizer end their goroutines
//! before exit.

use core::ffi::c_void;
use core::ptr;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};

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
static TSAN_SWITCH: AtomicUsize = AtomicUsize::new(0);
static TSAN_ACQUIRE: AtomicUsize = AtomicUsize::new(0);
static TSAN_RELEASE: AtomicUsize = AtomicUsize::new(0);
static LSAN_ROOT: AtomicUsize = AtomicUsize::new(0);

/// Whether the `hb_*` edges are on: not looked up yet, off, on. Channels and mutexes
/// work before the runtime starts, so the first edge may do the lookup.
static HB: AtomicU8 = AtomicU8::new(HB_UNKNOWN);
const HB_UNKNOWN: u8 = 0;
const HB_OFF: u8 = 1;
const HB_ON: u8 = 2;

/// Keys for fds (the fd number modulo their count: a collision only adds an edge).
static FD_KEYS: [AtomicU64; 1024] = [const { AtomicU64::new(0) }; 1024];

/// The key every exiting goroutine releases and `gr_main`/`gr_wait_all` acquire.
static ALL_EXITED: AtomicU64 = AtomicU64::new(0);

type AsanStart = unsafe extern "C" fn(*mut *mut c_void, *const c_void, usize);
type AsanFinish = unsafe extern "C" fn(*mut c_void, *mut *const c_void, *mut usize);
type TsanCurrent = unsafe extern "C" fn() -> *mut c_void;
type TsanCreate = unsafe extern "C" fn(u32) -> *mut c_void;
type TsanSwitch = unsafe extern "C" fn(*mut c_void, u32);
type TsanSync = unsafe extern "C" fn(*mut c_void);
type LsanRoot = unsafe extern "C" fn(*const c_void, usize);

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
            lookup(c"__tsan_switch_to_fiber"),
        ];
        if t.iter().all(|&a| a != 0) {
            TSAN_CURRENT.store(t[0], Ordering::Relaxed);
            TSAN_CREATE.store(t[1], Ordering::Relaxed);
            TSAN_SWITCH.store(t[2], Ordering::Relaxed);
        }
        let (acq, rel) = (lookup(c"__tsan_acquire"), lookup(c"__tsan_release"));
        if acq != 0 && rel != 0 {
            TSAN_ACQUIRE.store(acq, Ordering::Relaxed);
            TSAN_RELEASE.store(rel, Ordering::Relaxed);
        }
        LSAN_ROOT.store(lookup(c"__lsan_register_root_region"), Ordering::Relaxed);
        let on =
            ASAN_START.load(Ordering::Relaxed) != 0 || TSAN_SWITCH.load(Ordering::Relaxed) != 0;
        ACTIVE.store(on, Ordering::Release);
        let hb = if acq != 0 && rel != 0 { HB_ON } else { HB_OFF };
        HB.store(hb, Ordering::Release);
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
            let root = LSAN_ROOT.load(Ordering::Relaxed);
            if root != 0 && f.lo == 0 && size != 0 {
                core::mem::transmute::<usize, LsanRoot>(root)(addr, size);
            }
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
        // The spawner released on this record (hb_spawned), the stack's last user
        // on its address (release). This context acquires both; a new fiber starts
        // with its clock, and so does a reused one at its first (synchronising)
        // switch.
        hb_acquire(f as *const Fiber as *const c_void);
        hb_acquire(lo as *const c_void);
        // The descriptor's previous goroutine left its fiber here (see `release`):
        // reused, since TSan zeroes about 0.8 MB for every fiber it creates.
        if f.tsan.is_null() {
            // SAFETY: the hook found by dlsym, with its documented signature.
            f.tsan = unsafe { core::mem::transmute::<usize, TsanCreate>(create)(0) };
        }
    }
}

/// Forgets a goroutine's state after it exited (never for the running context).
pub fn release(f: &mut Fiber) {
    if !active() {
        return;
    }
    if !f.tsan.is_null() {
        // The dead goroutine switched here with TSan's synchronising switch, so this
        // context carries its past to the stack's next user.
        hb_release(f.lo as *const c_void);
    }
    // The TSan fiber stays with the descriptor for its next goroutine (descriptors
    // are never freed; a goroutine ends by returning, so the fiber's shadow call
    // stack is back at its base).
}

/// Before switching from `from` to `to` (`dying`: `from` never runs again). Every
/// switch calls it: without a sanitizer it is one load and a branch, inline.
///
/// # Safety
/// Both point at live Fiber records of the two contexts.
#[inline(always)]
pub unsafe fn before(from: *mut Fiber, to: *const Fiber, dying: bool) {
    if active() {
        // SAFETY: our contract.
        unsafe { before_active(from, to, dying) }
    }
}

/// `before` under a sanitizer.
///
/// # Safety
/// As `before`.
#[inline(never)]
unsafe fn before_active(from: *mut Fiber, to: *const Fiber, dying: bool) {
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

/// First thing in the context switched to (`cur` is its own record); inline, as
/// `before`.
///
/// # Safety
/// `cur` is the running context's live Fiber record.
#[inline(always)]
pub unsafe fn after(cur: *mut Fiber) {
    if active() {
        // SAFETY: our contract.
        unsafe { after_active(cur) }
    }
}

/// `after` under a sanitizer.
///
/// # Safety
/// As `after`.
#[inline(never)]
unsafe fn after_active(cur: *mut Fiber) {
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

/// A happens-before edge for ThreadSanitizer: what the caller did so far becomes
/// visible to whoever later calls `hb_acquire` on the same key.
#[inline(always)]
pub fn hb_release(key: *const c_void) {
    if HB.load(Ordering::Relaxed) != HB_OFF {
        hb_call(&TSAN_RELEASE, key);
    }
}

/// The other end of `hb_release`: the caller sees everything released on `key`.
#[inline(always)]
pub fn hb_acquire(key: *const c_void) {
    if HB.load(Ordering::Relaxed) != HB_OFF {
        hb_call(&TSAN_ACQUIRE, key);
    }
}

/// Both: an operation ordered with every other one on `key` (a lock's edges).
#[inline(always)]
pub fn hb_acquire_release(key: *const c_void) {
    if HB.load(Ordering::Relaxed) != HB_OFF {
        hb_call(&TSAN_ACQUIRE, key);
        hb_call(&TSAN_RELEASE, key);
    }
}

#[cold]
#[inline(never)]
fn hb_call(hook: &AtomicUsize, key: *const c_void) {
    if HB.load(Ordering::Acquire) == HB_UNKNOWN {
        init();
    }
    let f = hook.load(Ordering::Relaxed);
    if f != 0 {
        // SAFETY: __tsan_acquire/__tsan_release found by dlsym; they only record the
        // address as a sync object (it is never dereferenced).
        unsafe { core::mem::transmute::<usize, TsanSync>(f)(key as *mut c_void) };
    }
}

/// A goroutine about to be queued for its first run: its creator's past happens
/// before its body (acquired in `for_goroutine`).
#[inline(always)]
pub fn hb_spawned(f: &Fiber) {
    hb_release(f as *const Fiber as *const c_void);
}

/// A goroutine that is exiting: its body happens before a join that sees it
/// finished, and before `gr_main`/`gr_wait_all` return.
#[inline(always)]
pub fn hb_exited(f: &Fiber) {
    hb_release(f as *const Fiber as *const c_void);
    hb_release(ALL_EXITED.as_ptr() as *const c_void);
}

/// After `gr_join(id)` returned 0: the goroutine's body happened before.
#[inline(always)]
pub fn hb_joined(id: i64) {
    if HB.load(Ordering::Relaxed) != HB_OFF {
        if let Some((g, _)) = crate::runtime::g::lookup(id) {
            // SAFETY: descriptors are never freed; only the field's address is taken.
            hb_acquire(unsafe { ptr::addr_of!((*g).fiber) } as *const c_void);
        }
    }
}

/// After `gr_main` or `gr_wait_all` returned: every exited goroutine's body
/// happened before.
#[inline(always)]
pub fn hb_all_exited() {
    hb_acquire(ALL_EXITED.as_ptr() as *const c_void);
}

/// Before a call on fd `fd` that others may observe (any fd wrapper, a close).
#[inline(always)]
pub fn hb_fd_release(fd: i32) {
    hb_release(FD_KEYS[fd as usize % FD_KEYS.len()].as_ptr() as *const c_void);
}

/// After a call on fd `fd` (it may have observed others' calls, or a close).
#[inline(always)]
pub fn hb_fd_acquire(fd: i32) {
    hb_acquire(FD_KEYS[fd as usize % FD_KEYS.len()].as_ptr() as *const c_void);
}
