//! The runtime side of Python goroutines. The library never links libpython.
//!
//! The Python package (`bindings/python/goroutine`) hands over the CPython C-API
//! entry points this needs through `gr_py_init` (see `Api`), taken from
//! `ctypes.pythonapi` of the running interpreter. With them:
//!
//! - **Each Python goroutine has its own `PyThreadState`** and its own C stack (2 MiB
//!   reserved, committed as touched: CPython recursion and 3.13's bigger frames need
//!   it). `task::entry` creates the thread state, attaches it (`PyEval_RestoreThread`
//!   takes the GIL), calls the function, records its result for `join`, and tears
//!   the thread state down again.
//! - **All Python goroutines of one `gr_py_run` caller run on that one OS thread**
//!   (they are spawned on a `runtime::home::Home`, see `home.rs`): CPython's
//!   per-thread bookkeeping (thread ids bound in each thread state, the GIL's last
//!   holder, 3.13's thread-local current state) breaks when a thread state moves
//!   between OS threads. C goroutines stay M:N.
//! - **Every call that may park goes through `parked`**: it detaches the caller's
//!   thread state, parks, and re-attaches it when the goroutine runs again.
//!   On 3.12 and later detaching releases the GIL (`PyEval_SaveThread`) and
//!   re-attaching takes it, so a switch between two Python goroutines is a GIL
//!   release by one and a take by the other.
//! - **Carrying the GIL (3.11).** There `PyThreadState_Swap` changes the current
//!   thread state and leaves the GIL alone, so `parked` detaches with it, keeping
//!   the GIL, and leaves the GIL to the next goroutine (`Home::carry`; the goroutine
//!   is flagged `TAKES_CARRY`): a goroutine that resumes in `parked` just attaches
//!   its own state (`parked_carrying`). A release and a take of the GIL (a mutex, a
//!   condition variable and their bookkeeping: a third of the instructions of a Python switch,
//!   about half its time; bench/python/RESULTS.md) are gone from every switch
//!   between two goroutines that park through `parked`. Any other goroutine (one
//!   starting, or one that parked inside a C call made with the GIL released:
//!   ctypes, a C extension under the hook layer) would take the GIL itself, which
//!   this thread already holds; so before the home thread runs such a goroutine, goes idle or ends its
//!   slice, it lets go of the GIL (`let_go_gil`, a `PyEval_SaveThread` on the last
//!   parked goroutine's thread state, which also keeps the GIL's last holder right).
//!   Other threads get the GIL as from any thread that runs Python code: through
//!   the eval loop's drop request.
//! - `parked` also refuses, with `-EPERM`, to park in two situations that would
//!   corrupt CPython's state: Python code entered from C on an M:N goroutine (it
//!   could resume on another thread), and, on 3.11, a ctypes callback that runs on
//!   the OS thread's own thread state instead of the goroutine's (detected because
//!   the state `PyEval_SaveThread` returns is not the goroutine's).
//! - **The hot calls are CPython builtins made here** (`builtin`), not ctypes calls:
//!   a ctypes call converts every argument through Python-level type objects and
//!   costs about four builtin calls. So `go` and the `Goroutine` type (`task.rs`),
//!   the socket operations, `yield_`, `sleep` and fd waits (`io.rs`), a channel's
//!   send and receive and `select` (`chan.rs`), and the `Lock`/`RLock` that
//!   `goroutine.monkey` puts in `threading` (`lock.rs`) are builtin functions and
//!   types; a spawn and a join are one call each, a socket read or write on a ready
//!   socket one, a channel send or receive one. The package takes them with
//!   `gr_py_builtin(name)`; ctypes remains for calls made once per run or per
//!   object.
//!
//! Reference counts: every object the runtime keeps (a goroutine's function and
//! arguments until it ends, its result until its handle and goroutine are both gone,
//! a value in a channel until received) holds a strong reference, taken with the GIL
//! held. Channels carry `PyObject*` as 8-byte elements: the sender's reference moves
//! to the receiver.
//!
//! Layout assumptions: only the object header (`ob_refcnt`, `ob_type`: 16 bytes in
//! every non-debug, GIL build of 3.11-3.13, checked by `gr_py_init`) and the stable
//! structs (`PyType_Spec`, `PyMethodDef`, `PyMemberDef`, `PyGetSetDef`, `Py_buffer`).

use core::ffi::{c_char, c_int, c_long, c_uint, c_void};
use core::ptr;
use core::sync::atomic::{AtomicPtr, Ordering};

use crate::runtime::g::TAKES_CARRY;
use crate::runtime::home::{self, Caller};

pub(crate) mod chan;
mod io;
mod lock;
mod pyhome;
mod task;

pub use pyhome::PyHome;
pub use task::{spawn, SPAWN_DAEMON, SPAWN_MAIN};

/// A `PyObject` (opaque here, but for its header: `ObjHead`).
pub type PyObj = c_void;

/// The header every object starts with (non-debug, GIL builds).
#[repr(C)]
pub struct ObjHead {
    pub refcnt: isize,
    pub ob_type: *mut PyObj,
}

/// `sizeof(PyObject)` of the builds supported (`gr_py_init` checks it).
pub const OBJECT_HEAD_SIZE: usize = core::mem::size_of::<ObjHead>();

/// Stack reserved for each Python goroutine (committed only as touched). 256 KiB
/// segfaults below Python's default recursion limit; 3.13 needs about 2 MiB.
pub const PY_STACK_SIZE: usize = 2 << 20;

type Fn0 = unsafe extern "C" fn() -> *mut PyObj;
type Fn1 = unsafe extern "C" fn(*mut PyObj) -> *mut PyObj;
type Fn2 = unsafe extern "C" fn(*mut PyObj, *mut PyObj) -> *mut PyObj;
type Fn3 = unsafe extern "C" fn(*mut PyObj, *mut PyObj, *mut PyObj) -> *mut PyObj;
type Void1 = unsafe extern "C" fn(*mut PyObj);
type Int1 = unsafe extern "C" fn(*mut PyObj) -> c_int;

/// The CPython entry points the runtime calls, and the objects it needs (the same
/// order as `gr_py_api`, which carries them as addresses).
#[derive(Clone, Copy)]
pub struct Api {
    pub interp: *mut c_void,
    pub thread_state_new: unsafe extern "C" fn(*mut c_void) -> *mut c_void,
    pub restore_thread: unsafe extern "C" fn(*mut c_void),
    pub save_thread: unsafe extern "C" fn() -> *mut c_void,
    pub thread_state_clear: unsafe extern "C" fn(*mut c_void),
    pub thread_state_delete: unsafe extern "C" fn(*mut c_void),
    pub call: Fn3,
    pub incref: Void1,
    pub decref: Void1,
    pub write_unraisable: Void1,
    pub set_object: unsafe extern "C" fn(*mut PyObj, *mut PyObj),
    pub set_string: unsafe extern "C" fn(*mut PyObj, *const c_char),
    pub err_occurred: Fn0,
    pub err_fetch: unsafe extern "C" fn(*mut *mut PyObj, *mut *mut PyObj, *mut *mut PyObj),
    pub err_restore: unsafe extern "C" fn(*mut PyObj, *mut PyObj, *mut PyObj),
    pub err_normalize: unsafe extern "C" fn(*mut *mut PyObj, *mut *mut PyObj, *mut *mut PyObj),
    pub exception_set_traceback: unsafe extern "C" fn(*mut PyObj, *mut PyObj) -> c_int,
    pub given_exception_matches: unsafe extern "C" fn(*mut PyObj, *mut PyObj) -> c_int,
    pub bytes_from: unsafe extern "C" fn(*const u8, isize) -> *mut PyObj,
    pub long_from: unsafe extern "C" fn(c_long) -> *mut PyObj,
    pub bool_from: unsafe extern "C" fn(c_long) -> *mut PyObj,
    pub long_from_ssize: unsafe extern "C" fn(isize) -> *mut PyObj,
    pub long_from_u64: unsafe extern "C" fn(u64) -> *mut PyObj,
    pub long_as_long: unsafe extern "C" fn(*mut PyObj) -> c_long,
    pub long_as_u64: unsafe extern "C" fn(*mut PyObj) -> u64,
    pub float_as_double: unsafe extern "C" fn(*mut PyObj) -> f64,
    pub object_is_true: Int1,
    pub callable_check: Int1,
    pub tuple_size: unsafe extern "C" fn(*mut PyObj) -> isize,
    pub tuple_pack: unsafe extern "C" fn(isize, ...) -> *mut PyObj,
    pub tuple_get_slice: unsafe extern "C" fn(*mut PyObj, isize, isize) -> *mut PyObj,
    pub tuple_get_item: unsafe extern "C" fn(*mut PyObj, isize) -> *mut PyObj,
    pub unicode_eq_ascii: unsafe extern "C" fn(*mut PyObj, *const c_char) -> c_int,
    pub dict_copy: Fn1,
    pub dict_size: unsafe extern "C" fn(*mut PyObj) -> isize,
    pub context_copy_current: Fn0,
    pub context_enter: Int1,
    pub context_exit: Int1,
    pub get_buffer: unsafe extern "C" fn(*mut PyObj, *mut Buffer, c_int) -> c_int,
    pub release_buffer: unsafe extern "C" fn(*mut Buffer),
    pub type_from_spec: unsafe extern "C" fn(*mut TypeSpec) -> *mut PyObj,
    pub type_generic_alloc: unsafe extern "C" fn(*mut PyObj, isize) -> *mut PyObj,
    pub type_get_slot: unsafe extern "C" fn(*mut PyObj, c_int) -> *mut c_void,
    pub clear_weakrefs: Void1,
    pub unicode_from_format: unsafe extern "C" fn(*const c_char, ...) -> *mut PyObj,
    pub generic_alias: Fn2,
    pub cfunction_new: unsafe extern "C" fn(*mut MethodDef, *mut PyObj, *mut PyObj) -> *mut PyObj,
    pub lock_allocate: unsafe extern "C" fn() -> *mut c_void,
    pub lock_acquire_timed: unsafe extern "C" fn(*mut c_void, i64, c_int) -> c_int,
    pub lock_release: unsafe extern "C" fn(*mut c_void),
    pub lock_free: unsafe extern "C" fn(*mut c_void),
    pub check_signals: unsafe extern "C" fn() -> c_int,
    pub thread_state_swap: unsafe extern "C" fn(*mut c_void) -> *mut c_void,
    /// `None`.
    pub none: *mut PyObj,
    /// The binding's exception for a receive from a closed, drained channel.
    pub exc_closed: *mut PyObj,
    /// The binding's exception for a park that `parked` refuses.
    pub exc_context: *mut PyObj,
    pub exc_keyboard_interrupt: *mut PyObj,
    pub exc_system_exit: *mut PyObj,
    pub exc_type_error: *mut PyObj,
    pub exc_value_error: *mut PyObj,
    pub exc_runtime_error: *mut PyObj,
    /// The binding's `(rc, kind) -> exception instance` (see `raise_rc`).
    pub hook_error: *mut PyObj,
    /// The binding's `go` for callers that are not homed goroutines (it finds the
    /// caller's home, or raises).
    pub hook_go: *mut PyObj,
    /// True where `PyThreadState_Swap` leaves the GIL alone (`swap_keeps_gil`), so
    /// that `parked` carries it from one homed goroutine to the next.
    pub carry_gil: bool,
}

// SAFETY: plain function pointers and process-lifetime objects (`install` takes a
// reference to each object), called and used under the GIL by whichever thread
// holds it.
unsafe impl Send for Api {}
// SAFETY: shared only as an immutable table (`API` is never changed once published);
// every use of its entries happens under the GIL.
unsafe impl Sync for Api {}

impl Api {
    /// The objects `install` keeps a reference to.
    fn objects(&self) -> [*mut PyObj; 10] {
        [
            self.none,
            self.exc_closed,
            self.exc_context,
            self.exc_keyboard_interrupt,
            self.exc_system_exit,
            self.exc_type_error,
            self.exc_value_error,
            self.exc_runtime_error,
            self.hook_error,
            self.hook_go,
        ]
    }
}

static API: AtomicPtr<Api> = AtomicPtr::new(ptr::null_mut());

/// Installs the table and makes the builtins (once per process; a second call for
/// the same interpreter is accepted and ignored). 0, `-EALREADY` (another
/// interpreter) or `-ENOMEM` (a builtin could not be made: a Python exception is
/// set).
///
/// # Safety
/// The GIL is held, and `api` holds the running interpreter's entry points (with the
/// signatures `Api` gives them) and live objects.
pub unsafe fn install(api: Api) -> i32 {
    let fresh = Box::into_raw(Box::new(api));
    match API.compare_exchange(ptr::null_mut(), fresh, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => {
            // SAFETY: our contract: the GIL is held and the objects are the
            // interpreter's; the references taken keep them alive for good.
            unsafe {
                for o in api.objects() {
                    (api.incref)(o);
                }
                make_builtins(&api)
            }
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

// ---------------------------------------------------------------------------------
// the stable structs

/// CPython's `PyMethodDef`.
#[repr(C)]
pub struct MethodDef {
    pub name: *const c_char,
    pub meth: *const c_void,
    pub flags: c_int,
    pub doc: *const c_char,
}

/// CPython's `PyMemberDef`.
#[repr(C)]
pub struct MemberDef {
    pub name: *const c_char,
    pub type_code: c_int,
    pub offset: isize,
    pub flags: c_int,
    pub doc: *const c_char,
}

/// CPython's `PyGetSetDef`.
#[repr(C)]
pub struct GetSetDef {
    pub name: *const c_char,
    pub get: Option<unsafe extern "C" fn(*mut PyObj, *mut c_void) -> *mut PyObj>,
    pub set: *const c_void,
    pub doc: *const c_char,
    pub closure: *mut c_void,
}

/// CPython's `PyType_Slot`.
#[repr(C)]
pub struct TypeSlot {
    pub slot: c_int,
    pub pfunc: *const c_void,
}

/// CPython's `PyType_Spec`.
#[repr(C)]
pub struct TypeSpec {
    pub name: *const c_char,
    pub basicsize: c_int,
    pub itemsize: c_int,
    pub flags: c_uint,
    pub slots: *mut TypeSlot,
}

/// CPython's `Py_buffer`.
#[repr(C)]
pub struct Buffer {
    pub buf: *mut c_void,
    pub obj: *mut PyObj,
    pub len: isize,
    pub itemsize: isize,
    pub readonly: c_int,
    pub ndim: c_int,
    pub format: *mut c_char,
    pub shape: *mut isize,
    pub strides: *mut isize,
    pub suboffsets: *mut isize,
    pub internal: *mut c_void,
}

impl Buffer {
    pub const fn empty() -> Buffer {
        Buffer {
            buf: ptr::null_mut(),
            obj: ptr::null_mut(),
            len: 0,
            itemsize: 0,
            readonly: 0,
            ndim: 0,
            format: ptr::null_mut(),
            shape: ptr::null_mut(),
            strides: ptr::null_mut(),
            suboffsets: ptr::null_mut(),
            internal: ptr::null_mut(),
        }
    }
}

pub const METH_VARARGS: c_int = 0x0001;
pub const METH_KEYWORDS: c_int = 0x0002;
pub const METH_NOARGS: c_int = 0x0004;
pub const METH_O: c_int = 0x0008;
pub const METH_CLASS: c_int = 0x0010;
pub const METH_FASTCALL: c_int = 0x0080;
pub const PY_TP_DEALLOC: c_int = 52;
pub const PY_TP_DOC: c_int = 56;
pub const PY_TP_METHODS: c_int = 64;
pub const PY_TP_NEW: c_int = 65;
pub const PY_TP_REPR: c_int = 66;
pub const PY_TP_MEMBERS: c_int = 72;
pub const PY_TP_GETSET: c_int = 73;
pub const PY_TP_FREE: c_int = 74;
pub const T_PYSSIZET: c_int = 19;
pub const READONLY: c_int = 1;
pub const TPFLAGS_DISALLOW_INSTANTIATION: c_uint = 1 << 7;
pub const TPFLAGS_BASETYPE: c_uint = 1 << 10;
pub const PYBUF_SIMPLE: c_int = 0;
pub const PYBUF_WRITABLE: c_int = 1;

/// A table CPython keeps a pointer to (method, member and getset definitions):
/// never written after its static initialisation.
pub struct Static<T>(pub core::cell::UnsafeCell<T>);
// SAFETY: see the type's comment: CPython only reads through the pointer it is
// given, and nothing here writes to it.
unsafe impl<T> Sync for Static<T> {}

impl<T> Static<T> {
    pub const fn new(v: T) -> Static<T> {
        Static(core::cell::UnsafeCell::new(v))
    }
    pub fn get(&self) -> *mut T {
        self.0.get()
    }
}

/// A `MethodDef` (as a const, for the statics).
pub const fn method(
    name: &'static core::ffi::CStr,
    meth: *const c_void,
    flags: c_int,
    doc: &'static core::ffi::CStr,
) -> MethodDef {
    MethodDef {
        name: name.as_ptr(),
        meth,
        flags,
        doc: doc.as_ptr(),
    }
}

/// The terminator of a method table.
pub const METHODS_END: MethodDef = MethodDef {
    name: ptr::null(),
    meth: ptr::null(),
    flags: 0,
    doc: ptr::null(),
};

// ---------------------------------------------------------------------------------
// the builtins

/// The builtin functions and types, by name (made by `install`).
struct Builtin {
    name: &'static str,
    obj: AtomicPtr<PyObj>,
}

static BUILTINS: [Builtin; 20] = {
    const fn b(name: &'static str) -> Builtin {
        Builtin {
            name,
            obj: AtomicPtr::new(ptr::null_mut()),
        }
    }
    [
        b("yield_"),
        b("self_id"),
        b("sleep"),
        b("block_io"),
        b("wait_edge"),
        b("close_fd"),
        b("adopt_fd"),
        b("disown_fd"),
        b("go"),
        b("Goroutine"),
        b("sock_recv"),
        b("sock_recv_into"),
        b("sock_send"),
        b("sock_sendall"),
        b("Lock"),
        b("RLock"),
        b("get_ident"),
        b("chan_send"),
        b("chan_recv"),
        b("select"),
    ]
};

/// Makes every builtin. 0, or -ENOMEM with a Python exception set.
///
/// # Safety
/// The GIL is held; `api` is the installed table.
unsafe fn make_builtins(api: &Api) -> i32 {
    for b in BUILTINS.iter() {
        // SAFETY: the GIL is held (our contract).
        let obj = unsafe {
            match b.name {
                "Goroutine" => task::make_type(api),
                "Lock" => lock::make_lock_type(api),
                "RLock" => lock::make_rlock_type(api),
                name => {
                    let def = io::function(name)
                        .or_else(|| chan::function(name))
                        .or_else(|| task::function(name))
                        .or_else(|| lock::function(name))
                        .expect("every builtin has a definition");
                    // CPython keeps the (static) definition's pointer.
                    (api.cfunction_new)(def, ptr::null_mut(), ptr::null_mut())
                }
            }
        };
        if obj.is_null() {
            return -libc::ENOMEM;
        }
        b.obj.store(obj, Ordering::Release);
    }
    0
}

/// A new reference to the builtin called `name`, or null (unknown, or before
/// `install`).
///
/// # Safety
/// The GIL is held.
pub unsafe fn builtin(name: &[u8]) -> *mut PyObj {
    let Some(api) = api() else {
        return ptr::null_mut();
    };
    for b in BUILTINS.iter() {
        if b.name.as_bytes() == name {
            let o = b.obj.load(Ordering::Acquire);
            if !o.is_null() {
                // SAFETY: the GIL is held (our contract); o is a builtin kept alive
                // by BUILTINS' reference.
                unsafe { (api.incref)(o) };
            }
            return o;
        }
    }
    ptr::null_mut()
}

/// Runs the body of a function CPython calls (a builtin, a method, a slot) inside
/// `boundary` (a panic is a fatal error, not an unwind into CPython), with the
/// installed table; null when there is none (cannot happen: the functions are made
/// by `install`).
#[inline(always)]
pub fn py_entry(name: &str, f: impl FnOnce(&'static Api) -> *mut PyObj) -> *mut PyObj {
    crate::runtime::boundary::boundary(
        name,
        std::panic::AssertUnwindSafe(|| match api() {
            Some(api) => f(api),
            None => ptr::null_mut(),
        }),
    )
}

// ---------------------------------------------------------------------------------
// object helpers (all with the GIL held)

/// `Py_TYPE(o)` (borrowed).
///
/// # Safety
/// `o` is a live object.
#[inline]
pub unsafe fn type_of(o: *mut PyObj) -> *mut PyObj {
    // SAFETY: every object starts with ObjHead (our contract: a live object).
    unsafe { (*(o as *mut ObjHead)).ob_type }
}

/// A new reference to `o`.
///
/// # Safety
/// The GIL is held; `o` is a live object.
#[inline]
pub unsafe fn new_ref(api: &Api, o: *mut PyObj) -> *mut PyObj {
    // SAFETY: our contract.
    unsafe { (api.incref)(o) };
    o
}

/// A new reference to `None`.
///
/// # Safety
/// The GIL is held.
#[inline]
pub unsafe fn none(api: &Api) -> *mut PyObj {
    // SAFETY: the GIL is held (our contract); None is alive for good.
    unsafe { new_ref(api, api.none) }
}

/// Frees an instance of one of the heap types made here (the end of a tp_dealloc).
///
/// # Safety
/// The GIL is held; `o` is an instance whose reference count reached zero, and
/// nothing uses it afterwards.
pub unsafe fn free_instance(api: &Api, o: *mut PyObj) {
    // SAFETY: our contract: `o` is dying; its type (a heap type, maybe a Python
    // subclass of ours) gives the matching free function, and its instances hold a
    // reference to it, dropped here as CPython's heap types require.
    unsafe {
        let tp = type_of(o);
        let free = (api.type_get_slot)(tp, PY_TP_FREE);
        if !free.is_null() {
            let free: unsafe extern "C" fn(*mut c_void) = core::mem::transmute(free);
            free(o);
        }
        (api.decref)(tp);
    }
}

/// Seconds (None, or a number) as a timeout in nanoseconds, as the binding's `_ns`:
/// None -> -1 (no limit), <= 0 -> 0, else at least 1. None: not a number (a Python
/// exception is set).
///
/// # Safety
/// The GIL is held; `o` is a live object.
pub unsafe fn timeout_ns(api: &Api, o: *mut PyObj) -> Option<i64> {
    if o == api.none {
        return Some(-1);
    }
    // SAFETY: the GIL is held and o is live (our contract).
    let s = unsafe { (api.float_as_double)(o) };
    // SAFETY: as above.
    if s == -1.0 && !unsafe { (api.err_occurred)() }.is_null() {
        return None;
    }
    if s.is_nan() {
        // SAFETY: the GIL is held; the exception type is alive for good.
        unsafe { (api.set_string)(api.exc_value_error, c"timeout is NaN".as_ptr()) };
        return None;
    }
    if s <= 0.0 {
        return Some(0);
    }
    Some(((s * 1e9) as i64).max(1))
}

/// Sets the Python exception for a failed operation: the binding's
/// `hook_error(rc, kind)` makes it (kind: `RAISE_*`). Returns null, for `return`.
///
/// # Safety
/// The GIL is held.
pub unsafe fn raise_rc(code: i32, kind: i32) -> *mut PyObj {
    let Some(api) = api() else {
        return ptr::null_mut();
    };
    // SAFETY: the GIL is held (our contract); the hook and the exception it returns
    // are live objects, and every reference made here is dropped.
    unsafe {
        let rc = (api.long_from)(code as c_long);
        let k = (api.long_from)(kind as c_long);
        if rc.is_null() || k.is_null() {
            return ptr::null_mut();
        }
        let args = [rc, k];
        let exc = call_with(api, api.hook_error, &args);
        (api.decref)(rc);
        (api.decref)(k);
        if exc.is_null() {
            return ptr::null_mut(); // the hook raised: that exception stands
        }
        (api.set_object)(type_of(exc), exc);
        (api.decref)(exc);
    }
    ptr::null_mut()
}

/// `raise_rc` kinds: the general mapping (`goroutine._error`), a socket
/// operation's, `join`'s, a lock acquire's bad timeout (-ENOTSUP: a timeout for a
/// non-blocking call, -EINVAL: negative, -ERANGE: too large).
pub const RAISE_GENERAL: i32 = 0;
pub const RAISE_SOCKET: i32 = 1;
pub const RAISE_JOIN: i32 = 2;
pub const RAISE_LOCK: i32 = 3;

/// Calls `f(*args)`.
///
/// # Safety
/// The GIL is held; `f` and the arguments are live objects.
unsafe fn call_with(api: &Api, f: *mut PyObj, args: &[*mut PyObj; 2]) -> *mut PyObj {
    // SAFETY: our contract; the tuple takes its own references to the arguments.
    unsafe {
        let tuple = (api.tuple_pack)(2, args[0], args[1]);
        if tuple.is_null() {
            return ptr::null_mut();
        }
        let r = (api.call)(f, tuple, ptr::null_mut());
        (api.decref)(tuple);
        r
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
        Caller::Homed(arg) if api.carry_gil => unsafe {
            parked_carrying(api, &*(arg as *const task::Task), f)
        },
        // SAFETY: as above.
        Caller::Homed(arg) => unsafe {
            let t = &*(arg as *const task::Task);
            let ts = (api.save_thread)();
            if ts != t.tstate() {
                // 3.11: a ctypes callback running on the OS thread's own state.
                (api.restore_thread)(ts);
                return Err(-libc::EPERM);
            }
            t.home().checkpoint();
            let r = f();
            (api.restore_thread)(ts);
            Ok(r)
        },
    }
}

/// True for the interpreters whose `PyThreadState_Swap` changes the current thread
/// state without releasing or taking the GIL (3.11; from 3.12 on it does both), given
/// `sys.hexversion`.
pub fn swap_keeps_gil(hexversion: usize) -> bool {
    (0x030B_0000..0x030C_0000).contains(&hexversion)
}

/// `parked` for a homed goroutine where the GIL can be carried (see the module docs):
/// detaches the goroutine's thread state keeping the GIL, leaves both to the next
/// goroutine, runs `f`, then attaches the thread state again (taking the GIL only if
/// the home thread let go of it meanwhile).
///
/// # Safety
/// As `parked`: the GIL is held, by `t`'s goroutine (the caller) on its home thread.
unsafe fn parked_carrying<R>(api: &Api, t: &task::Task, f: impl FnOnce() -> R) -> Result<R, i32> {
    // SAFETY: our contract; current_g is the caller's own descriptor, whose flags
    // only it writes, on this thread.
    unsafe {
        let ts = (api.thread_state_swap)(ptr::null_mut());
        if ts != t.tstate() {
            // A ctypes callback running on the OS thread's own state.
            (api.thread_state_swap)(ts);
            return Err(-libc::EPERM);
        }
        let home = t.home().home();
        let g = crate::runtime::m::current_g();
        home.carry(ts, let_go_gil);
        (*g).flags |= TAKES_CARRY;
        t.home().checkpoint();
        let r = f();
        (*g).flags &= !TAKES_CARRY;
        if home.take_carried().is_null() {
            (api.restore_thread)(ts); // let go of meanwhile: take the GIL again
        } else {
            (api.thread_state_swap)(ts); // still held by this thread: attach ts
        }
        Ok(r)
    }
}

/// `Home::let_go` for a carried GIL: attaches `ts`, the thread state of the goroutine
/// that parked last (none is current while the GIL is carried), and releases the GIL
/// from it, as that goroutine would have on parking.
///
/// # Safety
/// Runs on the home thread, which holds the GIL, with no thread state current; `ts`
/// is the thread state `parked_carrying` left with the GIL (still alive: its
/// goroutine is parked).
unsafe fn let_go_gil(ts: *mut c_void) {
    let Some(api) = api() else { return };
    // SAFETY: our contract.
    unsafe {
        (api.thread_state_swap)(ts);
        let _ = (api.save_thread)();
    }
}

/// Sets the binding's exception for a refused or failed channel operation (the
/// channel builtins, `chan.rs`, and the ctypes exports of pybinding.rs): its
/// closed-channel exception for -EPIPE, the
/// general mapping (`raise_rc`) for a context's error (-ECANCELED, -ETIMEDOUT), its
/// context exception otherwise.
///
/// # Safety
/// The GIL is held.
pub unsafe fn raise(code: i32) {
    let Some(api) = api() else { return };
    let exc = if code == -libc::EPIPE {
        api.exc_closed
    } else if code == -libc::ECANCELED || code == -libc::ETIMEDOUT {
        // SAFETY: the GIL is held (our contract).
        unsafe { raise_rc(code, RAISE_GENERAL) };
        return;
    } else {
        api.exc_context
    };
    // SAFETY: the GIL is held (our contract); exc is an exception type kept alive by
    // install, and a NULL value means "no arguments".
    unsafe { (api.set_object)(exc, ptr::null_mut()) };
}
