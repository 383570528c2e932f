//! Python goroutines: the `go` builtin, the `Goroutine` handle type, and the
//! goroutine body that runs the function (`entry`).
//!
//! A `Task` is the record shared by the goroutine (until it ends) and its
//! `Goroutine` handle (until the handle dies): two references, the last one frees it.
//! The goroutine runs `fn(*args, **kw)` in a copy of the spawner's `contextvars`
//! context and keeps what it returned, or the exception it raised:
//!
//! - `KeyboardInterrupt` / `SystemExit` go to the home for `gr.run` to raise (Ctrl-C
//!   on 3.11/3.12 runs signal handlers in whichever goroutine runs; `sys.exit()` in a
//!   goroutine ends the run);
//! - any exception of a goroutine whose handle is gone goes to `sys.unraisablehook`
//!   when it happens; one that nobody retrieved with `join` goes there when the
//!   handle dies.
//!
//! `join` parks on the task's own waiter list (woken when the goroutine ends), so a
//! goroutine costs no channel. The function, arguments and context are dropped when
//! the goroutine ends; the function is kept until the task is freed, for the
//! handle's repr and for reports ("Exception ignored in: <function ...>").

use core::cell::Cell;
use core::ffi::{c_char, c_int, c_void};
use core::ptr;
use core::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, Ordering};

use super::{
    api, free_instance, method, new_ref, parked, py_entry, raise_rc, timeout_ns, type_of, Api,
    GetSetDef, MemberDef, MethodDef, ObjHead, PyHome, PyObj, Static, TypeSlot, TypeSpec,
    METHODS_END, METH_CLASS, METH_FASTCALL, METH_KEYWORDS, METH_NOARGS, METH_O, METH_VARARGS,
    PY_STACK_SIZE, PY_TP_DEALLOC, PY_TP_DOC, PY_TP_GETSET, PY_TP_MEMBERS, PY_TP_METHODS,
    PY_TP_REPR, RAISE_GENERAL, RAISE_JOIN, READONLY, TPFLAGS_DISALLOW_INSTANTIATION, T_PYSSIZET,
};
use crate::runtime::context::Ctx;
use crate::runtime::g::WaitReason;
use crate::runtime::home::{self, Caller};
use crate::runtime::lock::SpinLock;
use crate::runtime::park::{Waiter, Wake};
use crate::runtime::sched::{self, SpawnAttr};

/// `spawn` flags: a daemon goroutine (`gr.run` does not wait for it).
pub const SPAWN_DAEMON: u32 = 1;
/// `spawn` flags: the goroutine `gr.run` starts, which stands for its OS thread
/// (`get_ident` gives it the thread's id).
pub const SPAWN_MAIN: u32 = 2;

/// The record of one Python goroutine (see the module docs). The `Cell`s are used
/// under the GIL only.
pub struct Task {
    refs: AtomicU32,
    home: *const PyHome,
    /// The function (owned until the task is freed).
    func: *mut PyObj,
    /// Its arguments (a tuple), keywords (a dict or null) and context: owned until
    /// the goroutine ends.
    args: Cell<*mut PyObj>,
    kw: Cell<*mut PyObj>,
    ctx: Cell<*mut PyObj>,
    /// What the function returned, or the exception it raised (owned), or null.
    result: Cell<*mut PyObj>,
    failed: Cell<bool>,
    /// `failed`, and nobody has retrieved the exception with `join` yet.
    unreported: Cell<bool>,
    /// The handle is gone: an exception is reported when it happens.
    orphan: Cell<bool>,
    flags: u32,
    /// The goroutine's thread state while it runs.
    tstate: Cell<*mut c_void>,
    id: AtomicI64,
    /// Set (under `lock`) when the goroutine has ended; `joiners` are woken then.
    finished: AtomicBool,
    lock: SpinLock,
    /// Parked joiners, linked through `Waiter::next` (guarded by `lock`).
    joiners: Cell<*mut Waiter>,
}

impl Task {
    pub fn id(&self) -> i64 {
        self.id.load(Ordering::Acquire)
    }

    pub fn finished(&self) -> bool {
        self.finished.load(Ordering::Acquire)
    }

    /// The goroutine `gr.run` started for its thread.
    pub fn is_main(&self) -> bool {
        self.flags & SPAWN_MAIN != 0
    }

    pub(super) fn tstate(&self) -> *mut c_void {
        self.tstate.get()
    }

    pub(super) fn home(&self) -> &PyHome {
        // SAFETY: a task's home outlives it: PyHome::free refuses while goroutines of
        // the home are alive, and the binding frees a home only after its run.
        unsafe { &*self.home }
    }

    /// Parks until the goroutine has ended: 0, -ETIMEDOUT after `timeout_ns`
    /// (negative: no limit; 0: do not wait), or the caller's context error once that
    /// is cancelled (a cancellation point, as gr_join).
    fn wait_done(&self, timeout_ns: i64) -> i32 {
        self.lock.lock();
        if self.finished() {
            // SAFETY: taken just above by this thread.
            unsafe { self.lock.unlock() };
            return 0;
        }
        if timeout_ns == 0 {
            // SAFETY: as above.
            unsafe { self.lock.unlock() };
            return -libc::ETIMEDOUT;
        }
        let mut w = Waiter::cancellable();
        w.next = self.joiners.get();
        self.joiners.set(&mut w);
        // SAFETY: we hold `lock`, under which w is findable; w stays on our stack
        // until wait returns, and unless woken we unlink it below before returning.
        let rc = match unsafe { w.wait(&self.lock, WaitReason::Join, timeout_ns) } {
            Wake::Woken => return 0,
            Wake::TimedOut => -libc::ETIMEDOUT,
            Wake::Cancelled(e) => e,
        };
        self.lock.lock();
        let me: *mut Waiter = &mut w;
        let mut cur = self.joiners.get();
        let mut prev: *mut Waiter = ptr::null_mut();
        // SAFETY: the list is guarded by `lock`, which we hold; linked waiters are
        // alive until woken or unlinked by their owners (under the same lock).
        unsafe {
            while !cur.is_null() {
                if cur == me {
                    if prev.is_null() {
                        self.joiners.set((*cur).next);
                    } else {
                        (*prev).next = (*cur).next;
                    }
                    break;
                }
                prev = cur;
                cur = (*cur).next;
            }
            self.lock.unlock();
        }
        rc
    }

    /// Marks the task finished and wakes its joiners. They are claimed under `lock`:
    /// one whose claim its timeout or context won may return as soon as it has taken
    /// the lock after us, so nothing of it is touched once the lock is released.
    fn finish(&self) {
        self.lock.lock();
        self.finished.store(true, Ordering::Release);
        let mut w = self.joiners.replace(ptr::null_mut());
        let mut won: *mut Waiter = ptr::null_mut();
        // SAFETY: linked waiters are alive while `lock` (held) keeps them linked; the
        // ones we win stay parked until we wake them, so relinking them is ours.
        unsafe {
            while !w.is_null() {
                let next = (*w).next;
                if (*w).claim() {
                    (*w).next = won;
                    won = w;
                }
                w = next;
            }
            self.lock.unlock();
        }
        while !won.is_null() {
            // SAFETY: we won its claim, so it stays parked until this wake; we read its
            // link before the wake and never touch it after.
            unsafe {
                let next = (*won).next;
                Waiter::wake(won);
                won = next;
            }
        }
    }
}

/// Drops one reference to the task; the last one frees it (its function and result).
///
/// # Safety
/// The GIL is held; the caller owns one reference, and gives it up.
unsafe fn release(t: *mut Task) {
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
            (api.decref)((*t).func);
        }
        drop(Box::from_raw(t));
    }
}

/// Reports `exc` through `sys.unraisablehook` as raised in `obj`, keeping whatever
/// exception is set meanwhile.
///
/// # Safety
/// The GIL is held; `exc` and `obj` are live objects.
unsafe fn report(api: &Api, exc: *mut PyObj, obj: *mut PyObj) {
    // SAFETY: our contract; Fetch/Restore move the pending exception's references
    // out and back; WriteUnraisable clears the error it reports.
    unsafe {
        let (mut t, mut v, mut tb) = (ptr::null_mut(), ptr::null_mut(), ptr::null_mut());
        (api.err_fetch)(&mut t, &mut v, &mut tb);
        (api.set_object)(type_of(exc), exc);
        (api.write_unraisable)(obj);
        (api.err_restore)(t, v, tb);
    }
}

// ---------------------------------------------------------------------------------
// spawning

/// Starts a Python goroutine on `h` that calls `func(*args, **kw)` in a copy of the
/// caller's `contextvars` context, bound to the cancellation context `bind` (None:
/// the caller's, as gr_spawn). Takes over the references to `args` (a tuple) and
/// `kw` (a dict or null) on every path. Returns its `Goroutine` handle (a new
/// reference), or null with a Python exception set.
///
/// # Safety
/// The GIL is held; `h` is a live home (from `PyHome::new`, not freed); `func` is a
/// live object; `args` a tuple and `kw` null or a dict, both owned by the caller;
/// `name` is NULL or a NUL-terminated string; `bind` is None or a live context the
/// caller holds a reference to.
pub unsafe fn spawn(
    h: *const PyHome,
    func: *mut PyObj,
    args: *mut PyObj,
    kw: *mut PyObj,
    name: *const c_char,
    flags: u32,
    bind: Option<*const Ctx>,
) -> *mut PyObj {
    let Some(api) = api() else {
        return ptr::null_mut();
    };
    // SAFETY: the GIL is held and the objects are live (our contract); every
    // reference taken is either stored in the task or dropped on the failure paths.
    unsafe {
        let drop_args = || {
            (api.decref)(args);
            if !kw.is_null() {
                (api.decref)(kw);
            }
        };
        let tp = GOROUTINE_TYPE.load(Ordering::Acquire);
        if tp.is_null() {
            drop_args(); // cannot happen: install made the type or failed
            return raise_rc(-libc::EINVAL, RAISE_GENERAL);
        }
        let g = (api.type_generic_alloc)(tp, 0) as *mut GoroutineObj;
        if g.is_null() {
            drop_args();
            return ptr::null_mut();
        }
        let ctx = (api.context_copy_current)();
        if ctx.is_null() {
            drop_args();
            (api.decref)(g as *mut PyObj);
            return ptr::null_mut();
        }
        (api.incref)(func);
        let t = Box::into_raw(Box::new(Task {
            refs: AtomicU32::new(2),
            home: h,
            func,
            args: Cell::new(args),
            kw: Cell::new(kw),
            ctx: Cell::new(ctx),
            result: Cell::new(ptr::null_mut()),
            failed: Cell::new(false),
            unreported: Cell::new(false),
            orphan: Cell::new(false),
            flags,
            tstate: Cell::new(ptr::null_mut()),
            id: AtomicI64::new(0),
            finished: AtomicBool::new(false),
            lock: SpinLock::new(),
            joiners: Cell::new(ptr::null_mut()),
        }));
        if flags & SPAWN_DAEMON != 0 {
            (*h).daemon_started();
        }
        let attr = SpawnAttr {
            stack_size: PY_STACK_SIZE,
            name,
            ctx: bind,
        };
        // `entry` may run with t: the task outlives its goroutine (it holds a ref).
        let id = (*h).home().spawn(entry, t as *mut c_void, &attr);
        if id < 0 {
            // The goroutine never started: the task (a box from above) was never
            // shared; dropping both references frees it and its objects.
            if flags & SPAWN_DAEMON != 0 {
                (*h).daemon_ended();
            }
            drop_args();
            (api.decref)(ctx);
            (*t).args.set(ptr::null_mut());
            (*t).kw.set(ptr::null_mut());
            (*t).ctx.set(ptr::null_mut());
            (*t).refs.store(1, Ordering::Relaxed);
            release(t);
            (api.decref)(g as *mut PyObj);
            return raise_rc(id as i32, RAISE_GENERAL);
        }
        (*t).id.store(id, Ordering::Release);
        (*g).task = t;
        g as *mut PyObj
    }
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
    // rest with it (after RestoreThread, before SaveThread). The thread state cache
    // is used on the home thread, by one goroutine at a time.
    unsafe {
        let task = &*t;
        let h = task.home();
        let ts = match h.cached_tstate() {
            Some(ts) => ts,
            None => (api.thread_state_new)(api.interp),
        };
        if ts.is_null() {
            // No memory for a thread state: the task ends without a result. Without
            // the GIL the references cannot be dropped: they are leaked; joiners see
            // a finished task with no result.
            task.finish();
            return;
        }
        (api.restore_thread)(ts);
        task.tstate.set(ts);
        run_function(api, task);
        if task.flags & SPAWN_DAEMON != 0 {
            h.daemon_ended();
        }
        task.tstate.set(ptr::null_mut());
        task.finish();
        release(t);
        (api.thread_state_clear)(ts);
        let _ = (api.save_thread)();
        if !h.cache_tstate(ts) {
            (api.thread_state_delete)(ts);
        }
    }
}

/// Calls the task's function in its context and keeps the outcome (see the module
/// docs); drops the arguments and the context.
///
/// # Safety
/// The GIL is held by the goroutine of `task`, with its thread state attached.
unsafe fn run_function(api: &Api, task: &Task) {
    // SAFETY: our contract; the task's objects are owned by it until dropped here.
    unsafe {
        let ctx = task.ctx.replace(ptr::null_mut());
        let args = task.args.replace(ptr::null_mut());
        let kw = task.kw.replace(ptr::null_mut());
        let r = if (api.context_enter)(ctx) < 0 {
            ptr::null_mut()
        } else {
            let r = (api.call)(task.func, args, kw);
            let (mut et, mut ev, mut tb) = (ptr::null_mut(), ptr::null_mut(), ptr::null_mut());
            if r.is_null() {
                (api.err_fetch)(&mut et, &mut ev, &mut tb);
            }
            // Leaving the context we entered cannot fail (a context is never left
            // twice, and Python code cannot leave one it did not enter).
            if (api.context_exit)(ctx) < 0 {
                (api.write_unraisable)(task.func);
            }
            if r.is_null() {
                (api.err_restore)(et, ev, tb);
            }
            r
        };
        (api.decref)(ctx);
        (api.decref)(args);
        if !kw.is_null() {
            (api.decref)(kw);
        }
        if !r.is_null() {
            task.result.set(r);
            return;
        }
        let (mut et, mut ev, mut tb) = (ptr::null_mut(), ptr::null_mut(), ptr::null_mut());
        (api.err_fetch)(&mut et, &mut ev, &mut tb);
        (api.err_normalize)(&mut et, &mut ev, &mut tb);
        if !tb.is_null() && !ev.is_null() {
            (api.exception_set_traceback)(ev, tb);
        }
        for o in [et, tb] {
            if !o.is_null() {
                (api.decref)(o);
            }
        }
        if ev.is_null() {
            return; // cannot happen: a failed call sets an exception
        }
        task.failed.set(true);
        task.result.set(ev);
        if (api.given_exception_matches)(ev, api.exc_keyboard_interrupt) != 0
            || (api.given_exception_matches)(ev, api.exc_system_exit) != 0
        {
            task.home().set_fatal(ev);
        } else if task.orphan.get() {
            report(api, ev, task.func);
        } else {
            task.unreported.set(true);
        }
    }
}

// ---------------------------------------------------------------------------------
// the builtin go

static GO_DEF: Static<MethodDef> = Static::new(method(
    c"go",
    py_go as *const c_void,
    METH_VARARGS | METH_KEYWORDS,
    c"go(fn, /, *args, **kw)\n--\n\nStarts ``fn(*args, **kw)`` as a goroutine on this thread's ``run`` and returns\nits handle. The function and its arguments stay referenced until it ends. Its body\nruns in a copy of the caller's ``contextvars`` context.",
));

/// `go(fn, *args, **kw)`: in a homed goroutine, spawns on its home; elsewhere the
/// binding's `hook_go` finds the caller's home (or raises).
///
/// # Safety
/// Called by CPython as a METH_VARARGS | METH_KEYWORDS builtin: the GIL is held,
/// `args` is a tuple and `kw` null or a dict.
unsafe extern "C" fn py_go(_self: *mut PyObj, args: *mut PyObj, kw: *mut PyObj) -> *mut PyObj {
    py_entry("go", |api| {
        // SAFETY: the GIL is held and args/kw are what CPython passes (our contract).
        unsafe {
            let Caller::Homed(arg) = home::caller() else {
                return (api.call)(api.hook_go, args, kw);
            };
            let n = (api.tuple_size)(args);
            if n < 1 {
                (api.set_string)(
                    api.exc_type_error,
                    c"go() needs the function to run".as_ptr(),
                );
                return ptr::null_mut();
            }
            let func = (api.tuple_get_item)(args, 0);
            if (api.callable_check)(func) == 0 {
                return (api.call)(api.hook_go, args, kw); // it raises the TypeError
            }
            let rest = (api.tuple_get_slice)(args, 1, n);
            if rest.is_null() {
                return ptr::null_mut();
            }
            // A fresh dict: `go(f, **d)` may pass the caller's own.
            let kw = if kw.is_null() || (api.dict_size)(kw) == 0 {
                ptr::null_mut()
            } else {
                let d = (api.dict_copy)(kw);
                if d.is_null() {
                    (api.decref)(rest);
                    return ptr::null_mut();
                }
                d
            };
            let t = &*(arg as *const Task);
            spawn(t.home, func, rest, kw, ptr::null(), 0, None)
        }
    })
}

/// The builtin function called `name` of this file, if any.
pub(super) fn function(name: &str) -> Option<*mut MethodDef> {
    match name {
        "go" => Some(GO_DEF.get()),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------
// the Goroutine type

/// An instance of `Goroutine`.
#[repr(C)]
struct GoroutineObj {
    head: ObjHead,
    /// The task (the handle's reference), or null (alloc'd but not spawned).
    task: *mut Task,
    weaklist: *mut PyObj,
}

static GOROUTINE_TYPE: core::sync::atomic::AtomicPtr<PyObj> =
    core::sync::atomic::AtomicPtr::new(ptr::null_mut());

static GOROUTINE_METHODS: Static<[MethodDef; 4]> = Static::new([
    method(
        c"join",
        g_join as *const c_void,
        METH_FASTCALL | METH_KEYWORDS,
        c"join($self, /, timeout=None)\n--\n\nWaits until the goroutine ends and returns its value, or re-raises its\nexception. Raises TimeoutError after ``timeout`` seconds (the goroutine goes\non).",
    ),
    method(
        c"done",
        g_done as *const c_void,
        METH_NOARGS,
        c"done($self, /)\n--\n\nTrue once the goroutine has returned or raised.",
    ),
    method(
        c"__class_getitem__",
        g_class_getitem as *const c_void,
        METH_O | METH_CLASS,
        c"Goroutine[T], for type hints.",
    ),
    METHODS_END,
]);

static GOROUTINE_GETSET: Static<[GetSetDef; 2]> = Static::new([
    GetSetDef {
        name: c"id".as_ptr(),
        get: Some(g_id),
        set: ptr::null(),
        doc: c"The goroutine's id (as ``self_id()`` returns inside it); never reused.".as_ptr(),
        closure: ptr::null_mut(),
    },
    GetSetDef {
        name: ptr::null(),
        get: None,
        set: ptr::null(),
        doc: ptr::null(),
        closure: ptr::null_mut(),
    },
]);

static GOROUTINE_MEMBERS: Static<[MemberDef; 2]> = Static::new([
    MemberDef {
        name: c"__weaklistoffset__".as_ptr(),
        type_code: T_PYSSIZET,
        offset: core::mem::offset_of!(GoroutineObj, weaklist) as isize,
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

/// Makes the `Goroutine` type (a new reference), or null with an exception set.
///
/// # Safety
/// The GIL is held; called once, by `install`.
pub(super) unsafe fn make_type(api: &Api) -> *mut PyObj {
    let mut slots = [
        TypeSlot {
            slot: PY_TP_DEALLOC,
            pfunc: g_dealloc as *const c_void,
        },
        TypeSlot {
            slot: PY_TP_REPR,
            pfunc: g_repr as *const c_void,
        },
        TypeSlot {
            slot: PY_TP_METHODS,
            pfunc: GOROUTINE_METHODS.get() as *const c_void,
        },
        TypeSlot {
            slot: PY_TP_GETSET,
            pfunc: GOROUTINE_GETSET.get() as *const c_void,
        },
        TypeSlot {
            slot: PY_TP_MEMBERS,
            pfunc: GOROUTINE_MEMBERS.get() as *const c_void,
        },
        TypeSlot {
            slot: PY_TP_DOC,
            pfunc: c"A running (or finished) goroutine, returned by ``go``.".as_ptr()
                as *const c_void,
        },
        TypeSlot {
            slot: 0,
            pfunc: ptr::null(),
        },
    ];
    let mut spec = TypeSpec {
        name: c"goroutine.Goroutine".as_ptr(),
        basicsize: core::mem::size_of::<GoroutineObj>() as c_int,
        itemsize: 0,
        flags: TPFLAGS_DISALLOW_INSTANTIATION,
        slots: slots.as_mut_ptr(),
    };
    // SAFETY: the GIL is held (our contract); the spec and slots are valid for the
    // call (CPython copies them), the tables they point to are statics.
    let tp = unsafe { (api.type_from_spec)(&mut spec) };
    if !tp.is_null() {
        // SAFETY: as above; the stored reference keeps the type alive for good.
        unsafe { (api.incref)(tp) };
        GOROUTINE_TYPE.store(tp, Ordering::Release);
    }
    tp
}

/// The task behind a handle.
///
/// # Safety
/// `g` is a live `Goroutine` (methods are only called on instances of the type).
#[inline]
unsafe fn task_of<'a>(g: *mut PyObj) -> Option<&'a Task> {
    // SAFETY: our contract: g is a GoroutineObj; a non-null task is alive while the
    // handle holds its reference.
    unsafe { (*(g as *mut GoroutineObj)).task.as_ref() }
}

/// `tp_dealloc` of `Goroutine`: gives up the handle's reference to the task,
/// after reporting an exception nobody joined.
///
/// # Safety
/// Called by CPython as tp_dealloc: the GIL is held, and the instance's reference
/// count reached zero.
unsafe extern "C" fn g_dealloc(g: *mut PyObj) {
    crate::runtime::boundary::boundary("Goroutine.__del__", || {
        let Some(api) = api() else { return };
        // SAFETY: CPython calls tp_dealloc with the GIL held, on an instance of the
        // type whose count reached zero; the handle's task reference is given up
        // here, after a last report of an exception nobody joined.
        unsafe {
            let o = &mut *(g as *mut GoroutineObj);
            if !o.weaklist.is_null() {
                (api.clear_weakrefs)(g);
            }
            let t = core::mem::replace(&mut o.task, ptr::null_mut());
            if let Some(task) = t.as_ref() {
                task.orphan.set(true);
                if task.unreported.replace(false) {
                    report(api, task.result.get(), task.func);
                }
                release(t);
            }
            free_instance(api, g);
        }
    })
}

/// `join(timeout=None)`.
///
/// # Safety
/// Called by CPython as a METH_FASTCALL | METH_KEYWORDS method: the GIL is held,
/// `args` holds `nargs` objects followed by the values of the names in `kwnames`.
unsafe extern "C" fn g_join(
    g: *mut PyObj,
    args: *const *mut PyObj,
    nargs: isize,
    kwnames: *mut PyObj,
) -> *mut PyObj {
    py_entry("Goroutine.join", |api| {
        // SAFETY: the GIL is held and the arguments are what CPython passes (our
        // contract); g is an instance of the type.
        unsafe {
            let Some(timeout) = one_optional_arg(api, args, nargs, kwnames, c"timeout") else {
                return ptr::null_mut();
            };
            let Some(t) = task_of(g) else {
                return raise_rc(-libc::EINVAL, RAISE_GENERAL);
            };
            if !t.finished() {
                let ns = match timeout {
                    None => -1,
                    Some(o) => match timeout_ns(api, o) {
                        Some(ns) => ns,
                        None => return ptr::null_mut(),
                    },
                };
                if sched::self_id() == t.id() {
                    return raise_rc(-libc::EDEADLK, RAISE_JOIN);
                }
                let rc = parked(|| t.wait_done(ns)).unwrap_or_else(|e| e);
                if rc != 0 {
                    return raise_rc(rc, RAISE_JOIN);
                }
            }
            let r = t.result.get();
            if r.is_null() {
                // The goroutine never ran its function (no memory for its thread
                // state).
                return raise_rc(-libc::ENOMEM, RAISE_JOIN);
            }
            if t.failed.get() {
                t.unreported.set(false);
                (api.set_object)(type_of(r), r);
                return ptr::null_mut();
            }
            new_ref(api, r)
        }
    })
}

/// The one optional argument of a METH_FASTCALL | METH_KEYWORDS method, given by
/// position or as `name=`: `Some(None)` when absent, `None` with a TypeError set when
/// the call is wrong.
///
/// # Safety
/// The GIL is held; the arguments are what CPython passes such a method.
pub(super) unsafe fn one_optional_arg(
    api: &Api,
    args: *const *mut PyObj,
    nargs: isize,
    kwnames: *mut PyObj,
    name: &core::ffi::CStr,
) -> Option<Option<*mut PyObj>> {
    // SAFETY: our contract: args has nargs + len(kwnames) items.
    unsafe {
        let nkw = if kwnames.is_null() {
            0
        } else {
            (api.tuple_size)(kwnames)
        };
        let ok = match (nargs, nkw) {
            (0, 0) => return Some(None),
            (1, 0) => return Some(Some(*args)),
            (0, 1) => (api.unicode_eq_ascii)((api.tuple_get_item)(kwnames, 0), name.as_ptr()) == 0,
            _ => false,
        };
        if ok {
            return Some(Some(*args));
        }
        (api.set_string)(api.exc_type_error, c"takes one optional argument".as_ptr());
        None
    }
}

/// `Goroutine.done()`.
///
/// # Safety
/// Called by CPython as the method: the GIL is held, the instance is live and
/// of the type, and the arguments are what the method's flags promise.
unsafe extern "C" fn g_done(g: *mut PyObj, _: *mut PyObj) -> *mut PyObj {
    py_entry("Goroutine.done", |api| {
        // SAFETY: CPython calls it with the GIL held on an instance of the type.
        unsafe { (api.bool_from)(task_of(g).is_some_and(|t| t.finished()) as _) }
    })
}

/// `Goroutine.id`.
///
/// # Safety
/// Called by CPython as the getter: the GIL is held and the instance is live and
/// of the type.
unsafe extern "C" fn g_id(g: *mut PyObj, _: *mut c_void) -> *mut PyObj {
    py_entry("Goroutine.id", |api| {
        // SAFETY: CPython calls it with the GIL held on an instance of the type.
        unsafe { (api.long_from)(task_of(g).map_or(0, |t| t.id()) as _) }
    })
}

/// `Goroutine.__repr__`.
///
/// # Safety
/// Called by CPython as tp_repr: the GIL is held and the instance is live and of
/// the type.
unsafe extern "C" fn g_repr(g: *mut PyObj) -> *mut PyObj {
    py_entry("Goroutine.__repr__", |api| {
        // SAFETY: CPython calls it with the GIL held on an instance of the type; the
        // format's arguments match its conversions (%lld: i64, %s: a C string, %R:
        // an object).
        unsafe {
            match task_of(g) {
                None => (api.unicode_from_format)(c"<Goroutine (not started)>".as_ptr()),
                Some(t) => (api.unicode_from_format)(
                    c"<Goroutine %lld %s %R>".as_ptr(),
                    t.id() as core::ffi::c_longlong,
                    if t.finished() { c"done" } else { c"running" }.as_ptr(),
                    t.func,
                ),
            }
        }
    })
}

/// `Goroutine.__class_getitem__(item)`.
///
/// # Safety
/// Called by CPython as the class method: the GIL is held, with the class and a
/// live item.
unsafe extern "C" fn g_class_getitem(cls: *mut PyObj, item: *mut PyObj) -> *mut PyObj {
    py_entry("Goroutine.__class_getitem__", |api| {
        // SAFETY: CPython calls it with the GIL held, with the class and the item.
        unsafe { (api.generic_alias)(cls, item) }
    })
}
