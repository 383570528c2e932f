//! The runtime side of Python goroutines. The library never links libpython.
//!
//! The Python package (`bindings/python/goroutine`, pure Python over ctypes) hands
//! over the few CPython C-API entry points this needs through `gr_py_init` (see
//! `Api`), taken from `ctypes.pythonapi` of the running interpreter. With them:
//!
//! - **Each Python goroutine has its own `PyThreadState`** and its own C stack (2 MiB
//!   reserved, committed as touched: CPython recursion and 3.13's bigger frames need
//!   it). `entry` creates the thread state, attaches it (`PyEval_RestoreThread`
//!   takes the GIL), calls the callable the binding gave (`PyObject_CallObject`),
//!   records its result for `gr_py_join`/`gr_py_task_result`, and tears the thread
//!   state down again.
//! - **All Python goroutines of one `gr_py_run` caller run on that one OS thread**
//!   (they are spawned on a `runtime::home::Home`): CPython's per-thread bookkeeping
//!   (thread ids bound in each thread state, the GIL's last holder, 3.13's
//!   thread-local current state) breaks when a thread state moves between OS
//!   threads. C goroutines stay M:N.
//! - **Every call that may park goes through `parked`**: it detaches the caller's
//!   thread state (`PyEval_SaveThread` releases the GIL), parks, and re-attaches it
//!   when the goroutine runs again. Switching between two Python goroutines is thus
//!   a GIL release by one and a GIL take by the other, which keeps the GIL's
//!   bookkeeping (last holder, drop requests from other threads) exact.
//!   `parked` also refuses, with `-EPERM`, to park in two situations that would
//!   corrupt CPython's state: Python code entered from C on an M:N goroutine (it
//!   could resume on another thread), and, on 3.11, a ctypes callback that runs on
//!   the OS thread's own thread state instead of the goroutine's (detected because
//!   the state `PyEval_SaveThread` returns is not the goroutine's).
//! - **Slices.** `gr_py_run` runs the home for a slice (the binding uses ~50 ms) and
//!   returns, so that the caller's own thread state runs signal handlers (from 3.13
//!   on only the main thread state sees signals). Homed goroutines switch directly
//!   to each other without passing through the home's scheduler loop, so a slice
//!   would never end while they keep each other busy: once the slice is over,
//!   `parked` first parks the goroutine on the home's "next slice" list (a
//!   checkpoint), so the home's queue drains and `Home::run` returns; the next
//!   `gr_py_run` puts those goroutines back on the queue first.
//!
//! Reference counts: every object the runtime keeps (a callable until its goroutine
//! ends, a result until the task is released, a value in a channel until received)
//! holds a strong reference, taken with the GIL held. Channels carry `PyObject*`
//! as 8-byte elements: the sender's reference moves to the receiver.

use core::cell::{Cell, UnsafeCell};
use core::ffi::c_void;
use core::ptr;
use core::sync::atomic::{AtomicBool, AtomicI64, AtomicPtr, AtomicU32, Ordering};

use crate::runtime::g::WaitReason;
use crate::runtime::home::{self, Caller, Home};
use crate::runtime::lock::{nanotime, SpinLock};
use crate::runtime::park::Waiter;
use crate::runtime::sched::{self, SpawnAttr};
use crate::sync::chan::Chan;
use crate::sync::select::{self, Case};

/// A `PyObject` (opaque here).
pub type PyObj = c_void;

/// Stack reserved for each Python goroutine (committed only as touched). 256 KiB
/// segfaults below Python's default recursion limit; 3.13 needs about 2 MiB.
pub const PY_STACK_SIZE: usize = 2 << 20;

/// The CPython entry points the runtime calls, and the objects it needs.
#[derive(Clone, Copy)]
pub struct Api {
    pub interp: *mut c_void,
    pub thread_state_new: unsafe extern "C" fn(*mut c_void) -> *mut c_void,
    pub restore_thread: unsafe extern "C" fn(*mut c_void),
    pub save_thread: unsafe extern "C" fn() -> *mut c_void,
    pub thread_state_clear: unsafe extern "C" fn(*mut c_void),
    pub thread_state_delete: unsafe extern "C" fn(*mut c_void),
    pub call_object: unsafe extern "C" fn(*mut PyObj, *mut PyObj) -> *mut PyObj,
    pub incref: unsafe extern "C" fn(*mut PyObj),
    pub decref: unsafe extern "C" fn(*mut PyObj),
    pub write_unraisable: unsafe extern "C" fn(*mut PyObj),
    pub set_object: unsafe extern "C" fn(*mut PyObj, *mut PyObj),
    pub bytes_from: unsafe extern "C" fn(*const u8, isize) -> *mut PyObj,
    pub long_from: unsafe extern "C" fn(libc::c_long) -> *mut PyObj,
    pub cfunction_new: unsafe extern "C" fn(*mut MethodDef, *mut PyObj, *mut PyObj) -> *mut PyObj,
    /// `None`.
    pub none: *mut PyObj,
    /// Raised by a receive from a closed, drained channel.
    pub exc_closed: *mut PyObj,
    /// Raised by a park that `parked` refuses (see the module docs).
    pub exc_context: *mut PyObj,
}

// SAFETY: plain function pointers and process-lifetime objects (the exception types
// get a reference in `install`, None is immortal), called and used under the GIL by
// whichever thread holds it.
unsafe impl Send for Api {}
// SAFETY: shared only as an immutable table (`API` is never changed once published);
// every use of its entries happens under the GIL.
unsafe impl Sync for Api {}

static API: AtomicPtr<Api> = AtomicPtr::new(ptr::null_mut());

/// Installs the table (once per process; a second call for the same interpreter is
/// accepted and ignored). 0 or `-EALREADY` (another interpreter).
///
/// # Safety
/// The GIL is held, and `api` holds the running interpreter's entry points (with the
/// signatures `Api` gives them) and live objects.
pub unsafe fn install(api: Api) -> i32 {
    let fresh = Box::into_raw(Box::new(api));
    match API.compare_exchange(ptr::null_mut(), fresh, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => {
            // SAFETY: our contract: the GIL is held and incref and the exception types
            // are the interpreter's; the references taken keep them alive for good.
            unsafe {
                (api.incref)(api.exc_closed);
                (api.incref)(api.exc_context);
            }
            0
        }
        Err(old) => {
            // SAFETY: `fresh` came from Box::into_raw above and lost the race to be
            // published, so nobody else has seen it.
            drop(unsafe { Box::from_raw(fresh) });
            // SAFETY: `old` is the published table, which is never freed.
            if unsafe { (*old).interp } == api.interp {
                0
            } else {
                -libc::EALREADY
            }
        }
    }
}

/// The installed table, if any.
#[inline]
pub fn api() -> Option<&'static Api> {
    // SAFETY: API is null or a table leaked by `install`, never freed or changed
    // once published (Acquire pairs with install's AcqRel exchange).
    unsafe { API.load(Ordering::Acquire).as_ref() }
}

/// CPython's `PyMethodDef` (stable ABI).
#[repr(C)]
pub struct MethodDef {
    pub name: *const libc::c_char,
    pub meth: Option<unsafe extern "C" fn(*mut PyObj, *mut PyObj) -> *mut PyObj>,
    pub flags: libc::c_int,
    pub doc: *const libc::c_char,
}

const METH_NOARGS: libc::c_int = 0x0004;

/// The method table entry behind the binding's `yield_` (CPython keeps the pointer).
struct SyncDef(UnsafeCell<MethodDef>);
// SAFETY: the MethodDef is never written after its static initialisation: CPython
// only reads through the pointer `builtin` gives it.
unsafe impl Sync for SyncDef {}

static YIELD_DEF: SyncDef = SyncDef(UnsafeCell::new(MethodDef {
    name: c"yield_".as_ptr(),
    meth: Some(py_yield),
    flags: METH_NOARGS,
    doc: c"yield_()\n--\n\nLets the other runnable goroutines run; returns when this one's turn comes.".as_ptr(),
}));

static SELF_ID_DEF: SyncDef = SyncDef(UnsafeCell::new(MethodDef {
    name: c"self_id".as_ptr(),
    meth: Some(py_self_id),
    flags: METH_NOARGS,
    doc: c"self_id()\n--\n\nThe calling goroutine's id, or 0 outside goroutines.".as_ptr(),
}));

/// `yield_` as a builtin function: the hottest call of all, so it skips ctypes'
/// argument conversion (a builtin call costs ~40 ns, a ctypes call ~170 ns here).
///
/// # Safety
/// Called by CPython as a METH_NOARGS builtin: the GIL is held.
unsafe extern "C" fn py_yield(_self: *mut PyObj, _args: *mut PyObj) -> *mut PyObj {
    crate::runtime::boundary::boundary("yield_", || {
        let Some(api) = api() else {
            return ptr::null_mut();
        };
        // SAFETY: the GIL is held (our contract).
        match unsafe { parked(sched::yield_now) } {
            // SAFETY: the GIL is held (our contract), and `parked` gave it back; None
            // is immortal.
            Ok(()) => unsafe {
                (api.incref)(api.none);
                api.none
            },
            Err(e) => {
                // SAFETY: the GIL is held (our contract; parked refused without
                // releasing it).
                unsafe { raise(e) };
                ptr::null_mut()
            }
        }
    })
}

/// `self_id` as a builtin function: `goroutine.monkey`'s patched functions ask it on
/// every call (inside a goroutine or not?), so it skips ctypes too.
///
/// # Safety
/// Called by CPython as a METH_NOARGS builtin: the GIL is held.
unsafe extern "C" fn py_self_id(_self: *mut PyObj, _args: *mut PyObj) -> *mut PyObj {
    crate::ffi::boundary("self_id", || {
        let Some(api) = api() else {
            return ptr::null_mut();
        };
        // SAFETY: the GIL is held (our contract).
        unsafe { (api.long_from)(sched::self_id() as libc::c_long) }
    })
}

/// A new reference to a builtin function object implemented here: 0 = `yield_`,
/// 1 = `self_id`. Null for an unknown one.
///
/// # Safety
/// The GIL is held.
pub unsafe fn builtin(which: i32) -> *mut PyObj {
    let Some(api) = api() else {
        return ptr::null_mut();
    };
    let def = match which {
        0 => YIELD_DEF.0.get(),
        1 => SELF_ID_DEF.0.get(),
        _ => return ptr::null_mut(),
    };
    // SAFETY: the GIL is held (our contract); the definition is a static, as
    // PyCFunction_NewEx requires (CPython keeps the pointer).
    // Its `self` and module may be NULL.
    unsafe { (api.cfunction_new)(def, ptr::null_mut(), ptr::null_mut()) }
}

// ---------------------------------------------------------------------------------
// homes

/// A home (the OS thread that runs a group of Python goroutines) plus the slice
/// state of `gr_py_run`.
pub struct PyHome {
    home: *mut Home,
    /// End of the current slice (ns, monotonic); past it, `parked` checkpoints.
    deadline: AtomicI64,
    slice_lock: SpinLock,
    /// Goroutines parked at a checkpoint, linked through `Waiter::next` (guarded by
    /// `slice_lock`).
    slice_waiters: UnsafeCell<*mut Waiter>,
    /// When `run` next looks for a deadlock (0: after the next slice).
    next_check: Cell<i64>,
    /// Thread states of ended goroutines, cleared, for the next ones (home thread
    /// only). A fresh thread state costs an mmap of its 16 KiB frame stack on first
    /// use and a munmap when deleted, about 8 us here; a cleared one is as good as new
    /// (its dict, exception state, context and hooks are dropped) and stays bound to
    /// this thread, the only one that runs it.
    tstates: UnsafeCell<Vec<*mut c_void>>,
}

// SAFETY: the waiter list is guarded by slice_lock; `next_check` and `tstates` are
// used only by the one thread in gr_py_run (Home::run refuses a second one), or by
// the goroutines it runs on that same thread.
unsafe impl Sync for PyHome {}
// SAFETY: nothing in a PyHome is tied to the thread that made it: the cached thread
// states are bound to whichever thread runs the home, and are used only there.
unsafe impl Send for PyHome {}

const CHECK_EVERY_NS: i64 = 100_000_000;
/// Cleared thread states a home keeps for reuse (each holds ~1 KiB plus the touched
/// pages of its frame stack).
const TSTATE_CACHE: usize = 256;

impl PyHome {
    pub fn new() -> *mut PyHome {
        Box::into_raw(Box::new(PyHome {
            home: Home::new(),
            deadline: AtomicI64::new(i64::MAX),
            slice_lock: SpinLock::new(),
            slice_waiters: UnsafeCell::new(ptr::null_mut()),
            next_check: Cell::new(0),
            tstates: UnsafeCell::new(Vec::new()),
        }))
    }

    /// Goroutines of this home still alive.
    pub fn alive(&self) -> usize {
        // SAFETY: `home` is boxed by `new` and freed only with the PyHome (`free`).
        unsafe { (*self.home).alive() }
    }

    /// Frees the home: `-EBUSY` while goroutines are alive.
    ///
    /// # Safety
    /// `h` came from `new`, is not freed yet, and is not used again on success.
    pub unsafe fn free(h: *mut PyHome) -> i32 {
        // SAFETY: our contract: h is a live PyHome from `new`; it and its Home are
        // boxes freed only here, once nothing runs on or in them (alive == 0, no
        // thread in run: Home's Drop relies on the same).
        unsafe {
            if (*h).alive() != 0 || (*(*h).home).is_running() {
                return -libc::EBUSY;
            }
            // The Home (and its M) go too: LeakSanitizer found them lost here.
            let home = (*h).home;
            drop(Box::from_raw(h));
            drop(Box::from_raw(home));
        }
        0
    }

    /// Parks the calling goroutine until the next `run` (see the module docs).
    fn checkpoint(&self) {
        if nanotime() < self.deadline.load(Ordering::Relaxed) {
            return;
        }
        self.slice_lock.lock();
        let mut w = Waiter::current();
        // SAFETY: we hold slice_lock, which guards slice_waiters and is what block
        // releases; w stays on our stack until resume_checkpointed wakes it.
        unsafe {
            w.next = *self.slice_waiters.get();
            *self.slice_waiters.get() = &mut w;
            w.block(&self.slice_lock, WaitReason::Sleep);
        }
    }

    /// Puts the goroutines parked at a checkpoint back on the queue, oldest first.
    fn resume_checkpointed(&self) {
        self.slice_lock.lock();
        // SAFETY: we hold slice_lock, which guards slice_waiters.
        let mut w = unsafe { core::mem::replace(&mut *self.slice_waiters.get(), ptr::null_mut()) };
        // SAFETY: this thread took slice_lock above and still holds it.
        unsafe { self.slice_lock.unlock() };
        let mut list = Vec::new();
        while !w.is_null() {
            list.push(w);
            // SAFETY: a linked waiter is alive until woken, and nobody else wakes it.
            w = unsafe { (*w).next };
        }
        for &w in list.iter().rev() {
            // SAFETY: a listed waiter is alive until woken, and only we can wake it
            // (it was taken off the list under the lock); after the wake we never
            // touch it.
            unsafe {
                if (*w).claim() {
                    Waiter::wake(w);
                }
            }
        }
    }

    /// Runs the home's goroutines on the calling thread for up to `slice_ns`: 0 when
    /// none is left, 1 when the slice ended, `-EDEADLK` when all of them (and every
    /// other goroutine) are blocked for ever, `-EBUSY` from a goroutine or when
    /// another thread runs this home.
    pub fn run(&self, slice_ns: i64) -> i32 {
        if !crate::runtime::m::current_m().is_null() {
            return -libc::EBUSY;
        }
        let rc = sched::ensure_init();
        if rc < 0 {
            return rc;
        }
        let now = nanotime();
        let deadline = if slice_ns < 0 {
            i64::MAX
        } else {
            now.saturating_add(slice_ns)
        };
        self.deadline.store(deadline, Ordering::Relaxed);
        self.resume_checkpointed();
        // Timers and fd readiness of homed goroutines are served by the idle worker
        // that blocks in epoll_wait (the poller). With only Python goroutines no
        // worker may exist yet: start one, which becomes the poller once idle.
        if sched::nobody_polling() {
            sched::wakep();
        }
        // SAFETY: `home` is boxed by `new` and freed only with self (`free`).
        let rc = unsafe { (*self.home).run(slice_ns) };
        if rc == 1 {
            let now = nanotime();
            if self.next_check.get() == 0 {
                self.next_check.set(now + CHECK_EVERY_NS);
            } else if now >= self.next_check.get() {
                self.next_check.set(now + CHECK_EVERY_NS);
                if sched::check_deadlock_except(1) {
                    return -libc::EDEADLK;
                }
            }
        } else {
            self.next_check.set(0);
        }
        rc
    }
}

// ---------------------------------------------------------------------------------
// tasks (one per Python goroutine)

/// The record of one Python goroutine, shared by its goroutine (until it ends) and
/// the binding's handle (until released).
pub struct Task {
    refs: AtomicU32,
    home: *const PyHome,
    /// Owned until the goroutine ends.
    callable: Cell<*mut PyObj>,
    /// The callable's return value (owned), or null.
    result: Cell<*mut PyObj>,
    /// The goroutine's thread state while it runs.
    tstate: Cell<*mut c_void>,
    id: AtomicI64,
    finished: AtomicBool,
    /// Closed when the goroutine has ended (joiners receive from it).
    done: Box<Chan>,
}

/// Starts a Python goroutine on `h` that calls `callable()`. Returns the task, or a
/// negative errno (`-ENOMEM`, `-EAGAIN`, `-EINVAL` without `gr_py_init`).
///
/// # Safety
/// The GIL is held; `callable` is a live object; `h` a live home (from
/// `PyHome::new`, not freed); `name` is NULL or a NUL-terminated string.
pub unsafe fn spawn(
    h: *const PyHome,
    callable: *mut PyObj,
    name: *const libc::c_char,
) -> Result<*mut Task, i32> {
    let Some(api) = api() else {
        return Err(-libc::EINVAL);
    };
    let Some(done) = Chan::new(0, 0) else {
        return Err(-libc::ENOMEM);
    };
    // SAFETY: the GIL is held and callable is live (our contract).
    unsafe { (api.incref)(callable) };
    let t = Box::into_raw(Box::new(Task {
        refs: AtomicU32::new(2),
        home: h,
        callable: Cell::new(callable),
        result: Cell::new(ptr::null_mut()),
        tstate: Cell::new(ptr::null_mut()),
        id: AtomicI64::new(0),
        finished: AtomicBool::new(false),
        done,
    }));
    let attr = SpawnAttr {
        stack_size: PY_STACK_SIZE,
        name,
        ..SpawnAttr::default()
    };
    // SAFETY: h is a live home and name NULL or a C string (our contract); `entry`
    // may run with t: the task outlives its goroutine (the goroutine holds a ref).
    let id = unsafe { (*(*h).home).spawn(entry, t as *mut c_void, &attr) };
    if id < 0 {
        // SAFETY: the GIL is held (our contract); the goroutine never started, so the
        // task (a box from above) was never shared.
        unsafe {
            (api.decref)(callable);
            drop(Box::from_raw(t));
        }
        return Err(id as i32);
    }
    // SAFETY: t is alive: of its two references, we have not given ours back yet.
    unsafe { (*t).id.store(id, Ordering::Release) };
    Ok(t)
}

/// The goroutine body of a Python goroutine.
///
/// # Safety
/// `arg` is a `Task` from `spawn` holding a reference for this goroutine, which runs
/// on the task's home thread.
unsafe extern "C" fn entry(arg: *mut c_void) {
    let t = arg as *mut Task;
    let Some(api) = api() else { return };
    // SAFETY: t is alive (the goroutine holds a reference); the API functions are
    // called in the states CPython requires: New and Delete without the GIL, the
    // rest with it (after RestoreThread, before SaveThread).
    unsafe {
        let h = &*(*t).home;
        // The cache is touched only on the home thread, by one goroutine at a time.
        let cached = (*h.tstates.get()).pop();
        let ts = match cached {
            Some(ts) => ts,
            None => (api.thread_state_new)(api.interp),
        };
        if ts.is_null() {
            // No memory for a thread state: the task ends without a result.
            finish_without_gil(t);
            return;
        }
        (api.restore_thread)(ts);
        (*t).tstate.set(ts);
        let callable = (*t).callable.get();
        let r = (api.call_object)(callable, ptr::null_mut());
        if r.is_null() {
            // The binding's wrapper catches everything; anything else goes to
            // sys.unraisablehook (which clears the error).
            (api.write_unraisable)(callable);
        }
        (*t).result.set(r);
        (*t).callable.set(ptr::null_mut());
        (api.decref)(callable);
        (*t).tstate.set(ptr::null_mut());
        (*t).finished.store(true, Ordering::Release);
        (*t).done.close();
        release(t);
        (api.thread_state_clear)(ts);
        let _ = (api.save_thread)();
        let cache = &mut *h.tstates.get();
        if cache.len() < TSTATE_CACHE {
            cache.push(ts);
        } else {
            (api.thread_state_delete)(ts);
        }
    }
}

/// Ends a task whose goroutine could not get a thread state (out of memory). Without
/// the GIL the callable's reference and the runtime's reference to the task cannot
/// be dropped: both are leaked, joiners see a finished task with no result.
///
/// # Safety
/// `t` is a live task (the caller holds a reference to it).
unsafe fn finish_without_gil(t: *mut Task) {
    // SAFETY: t is alive (our contract); only atomics and the channel are touched,
    // which any thread may do.
    unsafe {
        (*t).finished.store(true, Ordering::Release);
        (*t).done.close();
    }
}

/// Drops one reference to the task; the last one frees it (and its result).
///
/// # Safety
/// The GIL is held; the caller owns one reference, and gives it up.
pub unsafe fn release(t: *mut Task) {
    // SAFETY: our contract: t is alive (we own a reference) and the GIL is held for
    // decref; the last reference's owner frees the box, and nobody else can see it.
    unsafe {
        if (*t).refs.fetch_sub(1, Ordering::AcqRel) != 1 {
            return;
        }
        if let Some(api) = api() {
            let r = (*t).result.replace(ptr::null_mut());
            if !r.is_null() {
                (api.decref)(r);
            }
        }
        drop(Box::from_raw(t));
    }
}

impl Task {
    pub fn id(&self) -> i64 {
        self.id.load(Ordering::Acquire)
    }

    pub fn finished(&self) -> bool {
        self.finished.load(Ordering::Acquire)
    }

    /// The result (borrowed), or null (not finished, or the call failed).
    pub fn result(&self) -> *mut PyObj {
        if self.finished() {
            self.result.get()
        } else {
            ptr::null_mut()
        }
    }

    /// Waits until the goroutine has ended: 0, `-ETIMEDOUT`, `-EDEADLK` (itself),
    /// `-EPERM` (refused, see `parked`).
    ///
    /// # Safety
    /// The GIL is held.
    pub unsafe fn join(&self, timeout_ns: i64) -> i32 {
        if self.finished() {
            return 0;
        }
        if sched::self_id() == self.id() {
            return -libc::EDEADLK;
        }
        let chan = &*self.done as *const Chan as *mut Chan;
        let wait = || {
            if timeout_ns < 0 {
                // SAFETY: `done` lives as long as self; its elements are 0 bytes, so
                // no buffer is touched.
                unsafe { (*chan).recv(ptr::null_mut(), true) }
            } else {
                let mut c = [Case {
                    chan,
                    op: select::RECV,
                    elem: ptr::null_mut(),
                    closed: 0,
                }];
                // SAFETY: a live channel (as above) with 0-byte elements.
                unsafe { select::select(&mut c, timeout_ns) }
            }
        };
        // SAFETY: the GIL is held (our contract).
        let rc = unsafe { parked(wait) };
        match rc {
            Err(e) => e,
            Ok(r) if r == -libc::EAGAIN || r == -libc::ETIMEDOUT => -libc::ETIMEDOUT,
            Ok(_) => 0,
        }
    }
}

// ---------------------------------------------------------------------------------
// parking from Python

/// Runs `f`, which may park, with the caller's thread state detached (see the module
/// docs). `Err(-EPERM)`: refused, nothing was done; `Err(-EINVAL)`: no `gr_py_init`.
/// The GIL is held on entry and on return.
///
/// # Safety
/// The calling thread holds the GIL (with its own thread state, or a homed
/// goroutine's).
pub unsafe fn parked<R>(f: impl FnOnce() -> R) -> Result<R, i32> {
    let Some(api) = api() else {
        return Err(-libc::EINVAL);
    };
    match home::caller() {
        // Python code called from C on an M:N goroutine: parking could resume it on
        // another OS thread.
        Caller::Other => Err(-libc::EPERM),
        // SAFETY: this plain thread holds the GIL (our contract): detach, block,
        // re-attach the same thread state.
        Caller::Plain => unsafe {
            let ts = (api.save_thread)();
            let r = f();
            (api.restore_thread)(ts);
            Ok(r)
        },
        // SAFETY: a homed goroutine's argument is its live Task (entry's reference);
        // we hold the GIL (our contract) and run on its home thread, and the
        // goroutine comes back to this thread (pinned) to re-attach.
        Caller::Homed(arg) => unsafe {
            let t = &*(arg as *const Task);
            let ts = (api.save_thread)();
            if ts != t.tstate.get() {
                // 3.11: a ctypes callback running on the OS thread's own state.
                (api.restore_thread)(ts);
                return Err(-libc::EPERM);
            }
            (*t.home).checkpoint();
            let r = f();
            (api.restore_thread)(ts);
            Ok(r)
        },
    }
}

/// Sets the binding's exception for a refused or failed operation.
///
/// # Safety
/// The GIL is held.
pub unsafe fn raise(code: i32) {
    let Some(api) = api() else { return };
    let exc = if code == -libc::EPIPE {
        api.exc_closed
    } else {
        api.exc_context
    };
    // SAFETY: the GIL is held (our contract); exc is an exception type kept alive by
    // install, and a NULL value means "no arguments".
    unsafe { (api.set_object)(exc, ptr::null_mut()) };
}
