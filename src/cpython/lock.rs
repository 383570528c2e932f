//! `Lock`, `RLock` and `get_ident` for `goroutine.monkey.patch_threading`: what
//! `threading`, `queue`, `concurrent.futures`, logging and every library's locks
//! use once patched, so they are builtins (a Python-level lock cost a Python call
//! per acquire and per release, about half of what patching added to a
//! `requests.get`).
//!
//! - **Lock.** The state is a real CPython lock (`PyThread_type_lock`): an
//!   uncontended acquire or release is that lock's own try/release, and a plain
//!   thread (or C goroutine) that must wait blocks on it exactly as on
//!   `_thread.lock` (timeouts; signals interrupt it and their handlers run). A
//!   goroutine that finds it taken queues a runtime `Waiter` on the lock and parks;
//!   `release` releases the real lock, then wakes the first queued goroutine, which
//!   tries again (a newcomer may win: then it queues again). Any thread or goroutine
//!   may release. The park has a timeout (`RECHECK_NS`, renewed until the lock's
//!   own): the holder may be an OS thread that the runtime does not see, so a
//!   goroutine waiting here is never taken for deadlocked (`gr.Deadlock`); a real
//!   deadlock through these locks hangs, as it does with threads.
//! - **RLock.** Owner and count over the same lock, the owner being `get_ident()`.
//! - **get_ident.** A goroutine's id inside goroutines, but for the goroutine
//!   `gr.run` started, which stands for its thread and gets the thread's id (that of
//!   `_thread.get_ident`: `pthread_self`), as it does elsewhere.
//!
//! `__repr__` of both is Python's (`goroutine._threads`), set on the types.

use core::cell::Cell;
use core::ffi::{c_int, c_long, c_void};
use core::ptr;

use super::task::Task;
use super::{
    api, free_instance, method, none, parked, py_entry, raise_rc, Api, MemberDef, MethodDef,
    ObjHead, PyObj, Static, TypeSlot, TypeSpec, METHODS_END, METH_FASTCALL, METH_KEYWORDS,
    METH_NOARGS, METH_O, METH_VARARGS, PY_TP_DEALLOC, PY_TP_DOC, PY_TP_MEMBERS, PY_TP_METHODS,
    PY_TP_NEW, RAISE_GENERAL, RAISE_LOCK, READONLY, TPFLAGS_BASETYPE, T_PYSSIZET,
};
use crate::runtime::g::WaitReason;
use crate::runtime::home::{self, Caller};
use crate::runtime::lock::{nanotime, SpinLock};
use crate::runtime::park::{Waiter, Wake};

/// A goroutine waiting on a lock wakes at least this often (see the module docs).
const RECHECK_NS: i64 = 1_000_000_000;
/// `_thread.TIMEOUT_MAX` on Linux, in seconds.
const TIMEOUT_MAX: f64 = 9_223_372_036.0;
/// `PyLockStatus`.
const PY_LOCK_ACQUIRED: c_int = 1;
const PY_LOCK_INTR: c_int = 2;

/// The lock state shared by `Lock` and `RLock`. `locked` is used under the GIL.
#[repr(C)]
struct Core {
    lock: *mut c_void,
    locked: Cell<bool>,
    /// Guards the waiter queue.
    spin: SpinLock,
    /// Queued goroutines, oldest first, linked through `Waiter::next`.
    head: Cell<*mut Waiter>,
    tail: Cell<*mut Waiter>,
}

/// How an acquire ended.
enum Acquired {
    Yes,
    No,
    /// A Python exception is set (a signal handler raised).
    Error,
}

impl Core {
    /// A try without waiting.
    ///
    /// # Safety
    /// The GIL is held (for `locked`); `self.lock` is a live CPython lock.
    unsafe fn try_acquire(&self, api: &Api) -> bool {
        // SAFETY: our contract.
        if unsafe { (api.lock_acquire_timed)(self.lock, 0, 0) } == PY_LOCK_ACQUIRED {
            self.locked.set(true);
            true
        } else {
            false
        }
    }

    /// Acquires, waiting for at most `timeout_ns` (negative: no limit) once a try
    /// failed (see the module docs).
    ///
    /// # Safety
    /// The GIL is held; `self` lives across the call (the caller holds a reference
    /// to its object).
    unsafe fn acquire_slow(&self, api: &Api, timeout_ns: i64) -> Acquired {
        let deadline = if timeout_ns < 0 {
            i64::MAX
        } else {
            nanotime().saturating_add(timeout_ns)
        };
        if let Caller::Homed(_) = home::caller() {
            // SAFETY: the GIL is held (our contract).
            match unsafe { parked(|| self.park_until(api, deadline)) } {
                Ok(Ok(true)) => {
                    self.locked.set(true);
                    return Acquired::Yes;
                }
                Ok(Ok(false)) => return Acquired::No,
                Ok(Err(rc)) => {
                    // The goroutine's context is cancelled.
                    // SAFETY: the GIL is held (our contract).
                    unsafe { raise_rc(rc, RAISE_GENERAL) };
                    return Acquired::Error;
                }
                Err(_) => {} // refused here: block the thread, as below
            }
        }
        // SAFETY: the GIL is held (our contract).
        unsafe { self.block_thread(api, deadline) }
    }

    /// A goroutine's wait (without the GIL): true once acquired, false at the
    /// deadline, or its context's error once that is cancelled (a goroutine's wait
    /// here is a cancellation point, unlike gr.Mutex's: `threading` builds every wait,
    /// `Event`, `Condition`, `queue`, `Thread.join`, on a lock's acquire).
    fn park_until(&self, api: &Api, deadline: i64) -> Result<bool, i32> {
        let mut w = Waiter::cancellable();
        loop {
            self.spin.lock();
            // SAFETY: a live CPython lock (acquire_slow's contract); a try needs no GIL.
            if unsafe { (api.lock_acquire_timed)(self.lock, 0, 0) } == PY_LOCK_ACQUIRED {
                // SAFETY: taken just above by this thread.
                unsafe { self.spin.unlock() };
                return Ok(true);
            }
            let left = deadline.saturating_sub(nanotime());
            if left <= 0 {
                // SAFETY: as above.
                unsafe { self.spin.unlock() };
                return Ok(false);
            }
            self.push(&mut w);
            // SAFETY: we hold `spin`, under which w is findable; w stays on our stack
            // until wait returns, and unless woken we unlink it below.
            let wake = unsafe { w.wait(&self.spin, WaitReason::Mutex, left.min(RECHECK_NS)) };
            if wake != Wake::Woken {
                self.spin.lock();
                self.unlink(&mut w);
                // SAFETY: taken just above by this thread.
                unsafe { self.spin.unlock() };
            }
            if let Wake::Cancelled(rc) = wake {
                return Err(rc);
            }
            w.reset();
        }
    }

    /// A plain thread's (or a C goroutine's) wait: on the real lock, GIL released,
    /// running signal handlers when a signal interrupts it (as `_thread.lock`).
    ///
    /// # Safety
    /// The GIL is held.
    unsafe fn block_thread(&self, api: &Api, deadline: i64) -> Acquired {
        loop {
            let us = if deadline == i64::MAX {
                -1
            } else {
                let left = deadline - nanotime();
                if left <= 0 {
                    return Acquired::No;
                }
                (left / 1000).max(1)
            };
            // SAFETY: the GIL is held (our contract) and released around the wait,
            // as CPython's own lock does.
            let r = unsafe {
                let ts = (api.save_thread)();
                let r = (api.lock_acquire_timed)(self.lock, us, 1);
                (api.restore_thread)(ts);
                r
            };
            match r {
                PY_LOCK_ACQUIRED => {
                    self.locked.set(true);
                    return Acquired::Yes;
                }
                PY_LOCK_INTR => {
                    // SAFETY: the GIL is held again (restored above).
                    if unsafe { (api.check_signals)() } < 0 {
                        return Acquired::Error;
                    }
                }
                _ => {
                    if us >= 0 {
                        return Acquired::No;
                    }
                }
            }
        }
    }

    /// Releases (the caller checked that it is held) and wakes the first queued
    /// goroutine.
    ///
    /// # Safety
    /// The GIL is held; the lock is held.
    unsafe fn release(&self, api: &Api) {
        self.locked.set(false);
        // SAFETY: our contract: a held, live CPython lock.
        unsafe { (api.lock_release)(self.lock) };
        self.spin.lock();
        let mut woken = ptr::null_mut();
        loop {
            let w = self.head.get();
            if w.is_null() {
                break;
            }
            // SAFETY: queued waiters are alive until woken or unlinked by their
            // owners, both under `spin`, which we hold.
            unsafe {
                self.head.set((*w).next);
                if self.head.get().is_null() {
                    self.tail.set(ptr::null_mut());
                }
                (*w).next = ptr::null_mut();
                if (*w).claim() {
                    woken = w;
                    break;
                }
            }
        }
        // SAFETY: taken above by this thread.
        unsafe { self.spin.unlock() };
        if !woken.is_null() {
            // SAFETY: we won its claim; after the wake we never touch it.
            unsafe { Waiter::wake(woken) };
        }
    }

    /// Queues `w` last. `spin` is held.
    fn push(&self, w: *mut Waiter) {
        let tail = self.tail.get();
        if tail.is_null() {
            self.head.set(w);
        } else {
            // SAFETY: a queued waiter, alive while queued (spin is held).
            unsafe { (*tail).next = w };
        }
        self.tail.set(w);
    }

    /// Takes `w` off the queue if it is there. `spin` is held.
    fn unlink(&self, w: *mut Waiter) {
        let mut prev: *mut Waiter = ptr::null_mut();
        let mut cur = self.head.get();
        // SAFETY: queued waiters are alive while queued; spin is held.
        unsafe {
            while !cur.is_null() {
                if cur == w {
                    let next = (*cur).next;
                    if prev.is_null() {
                        self.head.set(next);
                    } else {
                        (*prev).next = next;
                    }
                    if self.tail.get() == w {
                        self.tail.set(prev);
                    }
                    return;
                }
                prev = cur;
                cur = (*cur).next;
            }
        }
    }
}

/// An instance of `Lock` or `RLock` (RLock uses `owner` and `count`).
#[repr(C)]
struct LockObj {
    head: ObjHead,
    core: Core,
    owner: Cell<u64>,
    count: Cell<u64>,
    weaklist: *mut PyObj,
}

/// The calling thread's or goroutine's identity (see the module docs).
fn ident() -> u64 {
    match home::caller() {
        // SAFETY: a homed goroutine's argument is its live Task.
        Caller::Homed(arg) if !unsafe { &*(arg as *const Task) }.is_main() => {
            crate::runtime::sched::self_id() as u64
        }
        // SAFETY: pthread_self has no preconditions.
        _ => unsafe { libc::pthread_self() as u64 },
    }
}

/// `acquire(blocking=True, timeout=-1)`'s arguments: `(blocking, timeout_ns)`, or
/// None with a Python exception set.
///
/// # Safety
/// The GIL is held; the arguments are what CPython passes a METH_FASTCALL |
/// METH_KEYWORDS method.
unsafe fn acquire_args(
    api: &Api,
    args: *const *mut PyObj,
    nargs: isize,
    kwnames: *mut PyObj,
) -> Option<(bool, i64)> {
    // SAFETY: our contract: args has nargs + len(kwnames) live items.
    unsafe {
        let mut blocking: *mut PyObj = ptr::null_mut();
        let mut timeout: *mut PyObj = ptr::null_mut();
        if nargs > 2 {
            (api.set_string)(
                api.exc_type_error,
                c"acquire() takes at most 2 arguments".as_ptr(),
            );
            return None;
        }
        if nargs > 0 {
            blocking = *args;
        }
        if nargs > 1 {
            timeout = *args.add(1);
        }
        if !kwnames.is_null() {
            for i in 0..(api.tuple_size)(kwnames) {
                let name = (api.tuple_get_item)(kwnames, i);
                let v = *args.add((nargs + i) as usize);
                if (api.unicode_eq_ascii)(name, c"blocking".as_ptr()) == 0 && blocking.is_null() {
                    blocking = v;
                } else if (api.unicode_eq_ascii)(name, c"timeout".as_ptr()) == 0
                    && timeout.is_null()
                {
                    timeout = v;
                } else {
                    (api.set_string)(
                        api.exc_type_error,
                        c"acquire() got an unexpected keyword argument".as_ptr(),
                    );
                    return None;
                }
            }
        }
        let blocking = if blocking.is_null() {
            true
        } else {
            match (api.object_is_true)(blocking) {
                r if r < 0 => return None,
                r => r != 0,
            }
        };
        if timeout.is_null() {
            return Some((blocking, -1));
        }
        let secs = (api.float_as_double)(timeout);
        if secs == -1.0 && !(api.err_occurred)().is_null() {
            return None;
        }
        if secs == -1.0 {
            return Some((blocking, -1));
        }
        // The checks and messages of _thread.lock.acquire (the binding words them).
        let bad = if !blocking {
            -libc::ENOTSUP
        } else if secs < 0.0 || secs.is_nan() {
            -libc::EINVAL
        } else if secs > TIMEOUT_MAX {
            -libc::ERANGE
        } else {
            0
        };
        if bad != 0 {
            raise_rc(bad, RAISE_LOCK);
            return None;
        }
        Some((blocking, (secs * 1e9) as i64))
    }
}

/// Acquires `core` as `acquire(blocking, timeout)` does: True, False, or null with
/// an exception.
///
/// # Safety
/// The GIL is held; `core` belongs to a live object the caller holds.
unsafe fn acquire_core(api: &Api, core: &Core, blocking: bool, timeout_ns: i64) -> Option<bool> {
    // SAFETY: our contract.
    unsafe {
        if core.try_acquire(api) {
            return Some(true);
        }
        if !blocking || timeout_ns == 0 {
            return Some(false);
        }
        match core.acquire_slow(api, timeout_ns) {
            Acquired::Yes => Some(true),
            Acquired::No => Some(false),
            Acquired::Error => None,
        }
    }
}

/// The object as a LockObj.
///
/// # Safety
/// `o` is a live instance of `Lock` or `RLock` (or a subclass).
#[inline]
unsafe fn obj<'a>(o: *mut PyObj) -> &'a LockObj {
    // SAFETY: our contract.
    unsafe { &*(o as *const LockObj) }
}

/// Python's bool for `b` (a new reference).
///
/// # Safety
/// The GIL is held.
#[inline]
unsafe fn py_bool(api: &Api, b: bool) -> *mut PyObj {
    // SAFETY: our contract.
    unsafe { (api.bool_from)(b as c_long) }
}

// ---------------------------------------------------------------------------------
// Lock

/// `Lock.acquire(blocking=True, timeout=-1)` (also `acquire_lock`, `__enter__`).
///
/// # Safety
/// Called by CPython as the method: the GIL is held, the instance is live and
/// of the type, and the arguments are what the method's flags promise.
unsafe extern "C" fn lock_acquire(
    o: *mut PyObj,
    args: *const *mut PyObj,
    nargs: isize,
    kwnames: *mut PyObj,
) -> *mut PyObj {
    py_entry("Lock.acquire", |api| {
        // SAFETY: CPython calls the method with the GIL held on a live instance.
        unsafe {
            let core = &obj(o).core;
            if nargs == 0 && kwnames.is_null() && core.try_acquire(api) {
                return py_bool(api, true);
            }
            let Some((blocking, timeout)) = acquire_args(api, args, nargs, kwnames) else {
                return ptr::null_mut();
            };
            match acquire_core(api, core, blocking, timeout) {
                Some(b) => py_bool(api, b),
                None => ptr::null_mut(),
            }
        }
    })
}

/// `Lock.release()` (also `release_lock`).
///
/// # Safety
/// Called by CPython as the method: the GIL is held, the instance is live and
/// of the type, and the arguments are what the method's flags promise.
unsafe extern "C" fn lock_release(o: *mut PyObj, _: *mut PyObj) -> *mut PyObj {
    py_entry("Lock.release", |api| {
        // SAFETY: CPython calls the method with the GIL held on a live instance.
        unsafe {
            let core = &obj(o).core;
            if !core.locked.get() {
                (api.set_string)(api.exc_runtime_error, c"release unlocked lock".as_ptr());
                return ptr::null_mut();
            }
            core.release(api);
            none(api)
        }
    })
}

/// `Lock.__exit__(*exc)`.
///
/// # Safety
/// Called by CPython as the method: the GIL is held, the instance is live and
/// of the type, and the arguments are what the method's flags promise.
unsafe extern "C" fn lock_exit(o: *mut PyObj, _args: *mut PyObj) -> *mut PyObj {
    // SAFETY: CPython calls the method with the GIL held on a live instance.
    unsafe { lock_release(o, ptr::null_mut()) }
}

/// `locked()` of both types.
///
/// # Safety
/// Called by CPython as the method: the GIL is held, the instance is live and
/// of the type, and the arguments are what the method's flags promise.
unsafe extern "C" fn lock_locked(o: *mut PyObj, _: *mut PyObj) -> *mut PyObj {
    py_entry("Lock.locked", |api| {
        // SAFETY: CPython calls the method with the GIL held on a live instance.
        unsafe { py_bool(api, obj(o).core.locked.get()) }
    })
}

/// `_at_fork_reinit()` of both types.
///
/// # Safety
/// Called by CPython as the method: the GIL is held, the instance is live and
/// of the type, and the arguments are what the method's flags promise.
unsafe extern "C" fn lock_at_fork_reinit(o: *mut PyObj, _: *mut PyObj) -> *mut PyObj {
    py_entry("Lock._at_fork_reinit", |api| {
        // SAFETY: CPython calls the method with the GIL held on a live instance, in
        // a child after fork: the lock may be in any state, and no waiter exists
        // any more (their threads are gone). The old CPython lock is left behind.
        unsafe {
            let fresh = (api.lock_allocate)();
            if fresh.is_null() {
                return raise_rc(-libc::ENOMEM, super::RAISE_GENERAL);
            }
            let l = o as *mut LockObj;
            ptr::addr_of_mut!((*l).core).write(Core {
                lock: fresh,
                locked: Cell::new(false),
                spin: SpinLock::new(),
                head: Cell::new(ptr::null_mut()),
                tail: Cell::new(ptr::null_mut()),
            });
            let l = &*l;
            l.owner.set(0);
            l.count.set(0);
            none(api)
        }
    })
}

/// `tp_new` of both types: no arguments.
///
/// # Safety
/// Called by CPython as tp_new: the GIL is held, `tp` is the type or a subclass,
/// `args` a tuple and `kw` NULL or a dict.
unsafe extern "C" fn lock_new(tp: *mut PyObj, args: *mut PyObj, kw: *mut PyObj) -> *mut PyObj {
    py_entry("Lock.__new__", |api| {
        // SAFETY: CPython calls tp_new with the GIL held, the type (ours or a
        // subclass), an args tuple and a kwargs dict or null.
        unsafe {
            if (api.tuple_size)(args) != 0 || (!kw.is_null() && (api.dict_size)(kw) != 0) {
                (api.set_string)(api.exc_type_error, c"Lock() takes no arguments".as_ptr());
                return ptr::null_mut();
            }
            let lock = (api.lock_allocate)();
            if lock.is_null() {
                return raise_rc(-libc::ENOMEM, super::RAISE_GENERAL);
            }
            let o = (api.type_generic_alloc)(tp, 0) as *mut LockObj;
            if o.is_null() {
                (api.lock_free)(lock);
                return ptr::null_mut();
            }
            // The allocation is zeroed (owner, count, weaklist); the core is written.
            ptr::addr_of_mut!((*o).core).write(Core {
                lock,
                locked: Cell::new(false),
                spin: SpinLock::new(),
                head: Cell::new(ptr::null_mut()),
                tail: Cell::new(ptr::null_mut()),
            });
            o as *mut PyObj
        }
    })
}

/// `tp_dealloc` of both types.
///
/// # Safety
/// Called by CPython as tp_dealloc: the GIL is held, and the instance's reference
/// count reached zero.
unsafe extern "C" fn lock_dealloc(o: *mut PyObj) {
    crate::runtime::boundary::boundary("Lock.__del__", || {
        let Some(api) = api() else { return };
        // SAFETY: CPython calls tp_dealloc with the GIL held on an instance whose
        // count reached zero: no method of it runs, so nobody waits on it.
        unsafe {
            let l = obj(o);
            if !l.weaklist.is_null() {
                (api.clear_weakrefs)(o);
            }
            if !l.core.lock.is_null() {
                if l.core.locked.get() {
                    (api.lock_release)(l.core.lock);
                }
                (api.lock_free)(l.core.lock);
            }
            free_instance(api, o);
        }
    })
}

// ---------------------------------------------------------------------------------
// RLock

/// `RLock.acquire(blocking=True, timeout=-1)` (also `__enter__`).
///
/// # Safety
/// Called by CPython as the method: the GIL is held, the instance is live and
/// of the type, and the arguments are what the method's flags promise.
unsafe extern "C" fn rlock_acquire(
    o: *mut PyObj,
    args: *const *mut PyObj,
    nargs: isize,
    kwnames: *mut PyObj,
) -> *mut PyObj {
    py_entry("RLock.acquire", |api| {
        // SAFETY: CPython calls the method with the GIL held on a live instance.
        unsafe {
            let l = obj(o);
            let me = ident();
            let (blocking, timeout) = if nargs == 0 && kwnames.is_null() {
                (true, -1)
            } else {
                match acquire_args(api, args, nargs, kwnames) {
                    Some(a) => a,
                    None => return ptr::null_mut(),
                }
            };
            if l.count.get() > 0 && l.owner.get() == me {
                l.count.set(l.count.get() + 1);
                return py_bool(api, true);
            }
            match acquire_core(api, &l.core, blocking, timeout) {
                Some(true) => {
                    l.owner.set(me);
                    l.count.set(1);
                    py_bool(api, true)
                }
                Some(false) => py_bool(api, false),
                None => ptr::null_mut(),
            }
        }
    })
}

/// `RLock.release()`.
///
/// # Safety
/// Called by CPython as the method: the GIL is held, the instance is live and
/// of the type, and the arguments are what the method's flags promise.
unsafe extern "C" fn rlock_release(o: *mut PyObj, _: *mut PyObj) -> *mut PyObj {
    py_entry("RLock.release", |api| {
        // SAFETY: CPython calls the method with the GIL held on a live instance.
        unsafe {
            let l = obj(o);
            if l.count.get() == 0 || l.owner.get() != ident() {
                (api.set_string)(
                    api.exc_runtime_error,
                    c"cannot release un-acquired lock".as_ptr(),
                );
                return ptr::null_mut();
            }
            let c = l.count.get() - 1;
            l.count.set(c);
            if c == 0 {
                l.owner.set(0);
                l.core.release(api);
            }
            none(api)
        }
    })
}

/// `RLock.__exit__(*exc)`.
///
/// # Safety
/// Called by CPython as the method: the GIL is held, the instance is live and
/// of the type, and the arguments are what the method's flags promise.
unsafe extern "C" fn rlock_exit(o: *mut PyObj, _args: *mut PyObj) -> *mut PyObj {
    // SAFETY: CPython calls the method with the GIL held on a live instance.
    unsafe { rlock_release(o, ptr::null_mut()) }
}

/// `RLock._is_owned()`.
///
/// # Safety
/// Called by CPython as the method: the GIL is held, the instance is live and
/// of the type, and the arguments are what the method's flags promise.
unsafe extern "C" fn rlock_is_owned(o: *mut PyObj, _: *mut PyObj) -> *mut PyObj {
    py_entry("RLock._is_owned", |api| {
        // SAFETY: CPython calls the method with the GIL held on a live instance.
        unsafe {
            let l = obj(o);
            py_bool(api, l.count.get() > 0 && l.owner.get() == ident())
        }
    })
}

/// `RLock._recursion_count()`.
///
/// # Safety
/// Called by CPython as the method: the GIL is held, the instance is live and
/// of the type, and the arguments are what the method's flags promise.
unsafe extern "C" fn rlock_recursion_count(o: *mut PyObj, _: *mut PyObj) -> *mut PyObj {
    py_entry("RLock._recursion_count", |api| {
        // SAFETY: CPython calls the method with the GIL held on a live instance.
        unsafe {
            let l = obj(o);
            let n = if l.count.get() > 0 && l.owner.get() == ident() {
                l.count.get()
            } else {
                0
            };
            (api.long_from)(n as c_long)
        }
    })
}

/// `_release_save()`: releases completely; returns `(count, owner)` for
/// `_acquire_restore` (threading.Condition.wait).
///
/// # Safety
/// Called by CPython as the method: the GIL is held, the instance is live and
/// of the type, and the arguments are what the method's flags promise.
unsafe extern "C" fn rlock_release_save(o: *mut PyObj, _: *mut PyObj) -> *mut PyObj {
    py_entry("RLock._release_save", |api| {
        // SAFETY: CPython calls the method with the GIL held on a live instance; the
        // ints are new references the tuple copies, dropped here.
        unsafe {
            let l = obj(o);
            if l.count.get() == 0 {
                (api.set_string)(
                    api.exc_runtime_error,
                    c"cannot release un-acquired lock".as_ptr(),
                );
                return ptr::null_mut();
            }
            let count = (api.long_from)(l.count.get() as c_long);
            let owner = (api.long_from_u64)(l.owner.get());
            let state = if count.is_null() || owner.is_null() {
                ptr::null_mut()
            } else {
                (api.tuple_pack)(2, count, owner)
            };
            for x in [count, owner] {
                if !x.is_null() {
                    (api.decref)(x);
                }
            }
            if state.is_null() {
                return ptr::null_mut();
            }
            l.count.set(0);
            l.owner.set(0);
            l.core.release(api);
            state
        }
    })
}

/// `_acquire_restore((count, owner))`.
///
/// # Safety
/// Called by CPython as the method: the GIL is held, the instance is live and
/// of the type, and the arguments are what the method's flags promise.
unsafe extern "C" fn rlock_acquire_restore(o: *mut PyObj, state: *mut PyObj) -> *mut PyObj {
    py_entry("RLock._acquire_restore", |api| {
        // SAFETY: CPython calls the method with the GIL held on a live instance,
        // with a live argument.
        unsafe {
            let l = obj(o);
            if (api.tuple_size)(state) != 2 {
                if (api.err_occurred)().is_null() {
                    (api.set_string)(
                        api.exc_type_error,
                        c"_acquire_restore() needs (count, owner)".as_ptr(),
                    );
                }
                return ptr::null_mut();
            }
            let count = (api.long_as_long)((api.tuple_get_item)(state, 0));
            let owner = (api.long_as_u64)((api.tuple_get_item)(state, 1));
            if !(api.err_occurred)().is_null() {
                return ptr::null_mut();
            }
            match acquire_core(api, &l.core, true, -1) {
                Some(_) => {
                    l.count.set(count as u64);
                    l.owner.set(owner);
                    none(api)
                }
                None => ptr::null_mut(),
            }
        }
    })
}

/// `RLock._owner`.
///
/// # Safety
/// Called by CPython as the getter: the GIL is held and the instance is live and
/// of the type.
unsafe extern "C" fn rlock_owner(o: *mut PyObj, _: *mut c_void) -> *mut PyObj {
    py_entry("RLock._owner", |api| {
        // SAFETY: CPython calls the getter with the GIL held on a live instance.
        unsafe {
            let l = obj(o);
            if l.count.get() == 0 {
                none(api)
            } else {
                (api.long_from_u64)(l.owner.get())
            }
        }
    })
}

/// `RLock._count`.
///
/// # Safety
/// Called by CPython as the getter: the GIL is held and the instance is live and
/// of the type.
unsafe extern "C" fn rlock_count(o: *mut PyObj, _: *mut c_void) -> *mut PyObj {
    py_entry("RLock._count", |api| {
        // SAFETY: CPython calls the getter with the GIL held on a live instance.
        unsafe { (api.long_from)(obj(o).count.get() as c_long) }
    })
}

/// `get_ident()`.
///
/// # Safety
/// Called by CPython as the builtin: the GIL is held and the arguments are what
/// the function's flags promise.
unsafe extern "C" fn py_get_ident(_self: *mut PyObj, _: *mut PyObj) -> *mut PyObj {
    py_entry("get_ident", |api| {
        // SAFETY: CPython calls builtins with the GIL held.
        unsafe { (api.long_from_u64)(ident()) }
    })
}

// ---------------------------------------------------------------------------------
// the types

const ACQUIRE_DOC: &core::ffi::CStr = c"acquire($self, /, blocking=True, timeout=-1)\n--\n\nAcquires the lock (see threading.Lock.acquire); a goroutine that waits parks.";

static LOCK_METHODS: Static<[MethodDef; 10]> = Static::new([
    method(
        c"acquire",
        lock_acquire as *const c_void,
        METH_FASTCALL | METH_KEYWORDS,
        ACQUIRE_DOC,
    ),
    method(
        c"acquire_lock",
        lock_acquire as *const c_void,
        METH_FASTCALL | METH_KEYWORDS,
        ACQUIRE_DOC,
    ),
    method(
        c"__enter__",
        lock_acquire as *const c_void,
        METH_FASTCALL | METH_KEYWORDS,
        ACQUIRE_DOC,
    ),
    method(
        c"release",
        lock_release as *const c_void,
        METH_NOARGS,
        c"release($self, /)\n--\n\nReleases the lock; any thread or goroutine may.",
    ),
    method(
        c"release_lock",
        lock_release as *const c_void,
        METH_NOARGS,
        c"release_lock($self, /)\n--\n\nrelease().",
    ),
    method(
        c"__exit__",
        lock_exit as *const c_void,
        METH_VARARGS,
        c"__exit__($self, /, *exc)\n--\n\nrelease().",
    ),
    method(
        c"locked",
        lock_locked as *const c_void,
        METH_NOARGS,
        c"locked($self, /)\n--\n\nTrue while held.",
    ),
    method(
        c"locked_lock",
        lock_locked as *const c_void,
        METH_NOARGS,
        c"locked_lock($self, /)\n--\n\nlocked().",
    ),
    method(
        c"_at_fork_reinit",
        lock_at_fork_reinit as *const c_void,
        METH_NOARGS,
        c"_at_fork_reinit($self, /)\n--\n\nA fresh, unlocked lock (in a child after fork).",
    ),
    METHODS_END,
]);

static RLOCK_METHODS: Static<[MethodDef; 11]> = Static::new([
    method(c"acquire", rlock_acquire as *const c_void, METH_FASTCALL | METH_KEYWORDS, ACQUIRE_DOC),
    method(c"__enter__", rlock_acquire as *const c_void, METH_FASTCALL | METH_KEYWORDS, ACQUIRE_DOC),
    method(c"release", rlock_release as *const c_void, METH_NOARGS, c"release($self, /)\n--\n\nReleases one level; RuntimeError unless the caller owns the lock."),
    method(c"__exit__", rlock_exit as *const c_void, METH_VARARGS, c"__exit__($self, /, *exc)\n--\n\nrelease()."),
    method(c"locked", lock_locked as *const c_void, METH_NOARGS, c"locked($self, /)\n--\n\nTrue while held."),
    method(c"_is_owned", rlock_is_owned as *const c_void, METH_NOARGS, c"_is_owned($self, /)\n--\n\nFor threading.Condition."),
    method(c"_recursion_count", rlock_recursion_count as *const c_void, METH_NOARGS, c"_recursion_count($self, /)\n--\n\nThe caller's acquire count."),
    method(c"_release_save", rlock_release_save as *const c_void, METH_NOARGS, c"_release_save($self, /)\n--\n\nFor threading.Condition."),
    method(c"_acquire_restore", rlock_acquire_restore as *const c_void, METH_O, c"_acquire_restore($self, state, /)\n--\n\nFor threading.Condition."),
    method(c"_at_fork_reinit", lock_at_fork_reinit as *const c_void, METH_NOARGS, c"_at_fork_reinit($self, /)\n--\n\nA fresh, unlocked lock (in a child after fork)."),
    METHODS_END,
]);

static RLOCK_GETSET: Static<[super::GetSetDef; 3]> = Static::new([
    super::GetSetDef {
        name: c"_owner".as_ptr(),
        get: Some(rlock_owner),
        set: ptr::null(),
        doc: c"The owner's get_ident(), or None.".as_ptr(),
        closure: ptr::null_mut(),
    },
    super::GetSetDef {
        name: c"_count".as_ptr(),
        get: Some(rlock_count),
        set: ptr::null(),
        doc: c"The owner's acquire count.".as_ptr(),
        closure: ptr::null_mut(),
    },
    super::GetSetDef {
        name: ptr::null(),
        get: None,
        set: ptr::null(),
        doc: ptr::null(),
        closure: ptr::null_mut(),
    },
]);

static WEAKLIST_MEMBER: Static<[MemberDef; 2]> = Static::new([
    MemberDef {
        name: c"__weaklistoffset__".as_ptr(),
        type_code: T_PYSSIZET,
        offset: core::mem::offset_of!(LockObj, weaklist) as isize,
        flags: READONLY,
        doc: ptr::null(),
    },
    MemberDef {
        name: ptr::null(),
        type_code: 0,
        offset: 0,
        flags: 0,
        doc: ptr::null(),
    },
]);

/// Makes a lock type (a new reference), or null with an exception set.
///
/// # Safety
/// The GIL is held; called once per type, by `install`.
unsafe fn make(
    api: &Api,
    name: &'static core::ffi::CStr,
    doc: &'static core::ffi::CStr,
    methods: *mut MethodDef,
    getset: *mut super::GetSetDef,
) -> *mut PyObj {
    let mut slots = [
        TypeSlot {
            slot: PY_TP_NEW,
            pfunc: lock_new as *const c_void,
        },
        TypeSlot {
            slot: PY_TP_DEALLOC,
            pfunc: lock_dealloc as *const c_void,
        },
        TypeSlot {
            slot: PY_TP_METHODS,
            pfunc: methods as *const c_void,
        },
        TypeSlot {
            slot: PY_TP_MEMBERS,
            pfunc: WEAKLIST_MEMBER.get() as *const c_void,
        },
        TypeSlot {
            slot: PY_TP_DOC,
            pfunc: doc.as_ptr() as *const c_void,
        },
        TypeSlot {
            slot: super::PY_TP_GETSET,
            pfunc: getset as *const c_void,
        },
        TypeSlot {
            slot: 0,
            pfunc: ptr::null(),
        },
    ];
    if getset.is_null() {
        slots[5] = TypeSlot {
            slot: 0,
            pfunc: ptr::null(),
        };
    }
    let mut spec = TypeSpec {
        name: name.as_ptr(),
        basicsize: core::mem::size_of::<LockObj>() as c_int,
        itemsize: 0,
        flags: TPFLAGS_BASETYPE,
        slots: slots.as_mut_ptr(),
    };
    // SAFETY: the GIL is held (our contract); the spec and slots are valid for the
    // call (CPython copies them), the tables they point to are statics.
    unsafe { (api.type_from_spec)(&mut spec) }
}

/// # Safety
/// The GIL is held; called once, by `install`.
pub(super) unsafe fn make_lock_type(api: &Api) -> *mut PyObj {
    // SAFETY: our contract.
    unsafe {
        make(
            api,
            c"goroutine._threads.Lock",
            c"threading.Lock that parks goroutines (see goroutine._threads).",
            LOCK_METHODS.get() as *mut MethodDef,
            ptr::null_mut(),
        )
    }
}

/// # Safety
/// The GIL is held; called once, by `install`.
pub(super) unsafe fn make_rlock_type(api: &Api) -> *mut PyObj {
    // SAFETY: our contract.
    unsafe {
        make(
            api,
            c"goroutine._threads.RLock",
            c"threading.RLock over a goroutine Lock; the owner is get_ident().",
            RLOCK_METHODS.get() as *mut MethodDef,
            RLOCK_GETSET.get() as *mut super::GetSetDef,
        )
    }
}

static GET_IDENT_DEF: Static<MethodDef> = Static::new(method(
    c"get_ident",
    py_get_ident as *const c_void,
    METH_NOARGS,
    c"get_ident()\n--\n\nthreading.get_ident for goroutines (see goroutine._threads).",
));

/// The builtin function called `name` of this file, if any.
pub(super) fn function(name: &str) -> Option<*mut MethodDef> {
    match name {
        "get_ident" => Some(GET_IDENT_DEF.get()),
        _ => None,
    }
}
