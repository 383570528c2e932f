//! G: one goroutine's descriptor.
//!
//! Descriptors live in per-slab arrays owned by `stack.rs`, one per stack slot, and
//! are never freed: a G pointer stays dereferenceable for the life of the process,
//! which is what lets `gr_join` look a goroutine up by id without a table. The id
//! encodes the slot and a generation (`id = gen * MAX_SLOTS + slot + 1`); the
//! generation is bumped when the goroutine exits, so an old id never names the
//! slot's next occupant.
//!
//! Who owns a G, by status:
//! - `FREE`: a stack cache (a P's or the global pool); nobody else touches it.
//! - `RUNNABLE`: exactly one run queue (or a P's runnext, or a locked M's hand-off).
//! - `RUNNING`: the M whose `curg` it is.
//! - `WAITING`: the object it waits on (channel, join list, timer...), which will
//!   call `ready()` once; its context is fully saved before that object can see it.
//! - `DEAD`: between exit and the deferred release to a cache.

use core::ffi::{c_char, c_void};
use core::sync::atomic::{AtomicPtr, AtomicU32, Ordering};

use crate::arch::Context;
use crate::runtime::lock::SpinLock;
use crate::runtime::m::M;
use crate::runtime::park::Waiter;

pub(crate) const FREE: u32 = 0;
pub(crate) const RUNNABLE: u32 = 1;
pub(crate) const RUNNING: u32 = 2;
pub(crate) const WAITING: u32 = 3;
pub(crate) const DEAD: u32 = 4;

/// Why a goroutine waits (for dumps and deadlock detection).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub enum WaitReason {
    None = 0,
    Join,
    WaitAll,
    ChanSend,
    ChanRecv,
    Select,
    WaitGroup,
    Mutex,
    Sleep,
    Io,
    Blocking,
    LockedThread,
}

pub type GrFn = unsafe extern "C" fn(arg: *mut c_void);

/// Bytes of a goroutine's name kept in its descriptor (longer names are truncated).
pub(crate) const NAME_LEN: usize = 23;

#[repr(C)]
pub struct G {
    /// Saved stack pointer while not running.
    pub ctx: Context,
    pub status: AtomicU32,
    /// Bumped at exit: ids carry the generation they were issued in.
    pub gen: AtomicU32,
    /// Global stack slot index (see `stack.rs`).
    pub slot: u32,
    /// The errno value while switched out (it follows the goroutine across threads).
    pub errno: i32,
    pub func: Option<GrFn>,
    pub arg: *mut c_void,
    /// Lowest usable and one-past-highest address of the stack.
    pub stack_lo: usize,
    pub stack_hi: usize,
    /// Set while locked to a thread (`gr_lock_thread`); `lock_depth` counts nesting.
    pub lockedm: AtomicPtr<M>,
    pub lock_depth: u32,
    pub wait_reason: u8,
    pub flags: u8,
    /// Guards `joiners` and the DEAD transition.
    pub join_lock: SpinLock,
    pub joiners: *mut Waiter,
    /// Intrusive link for free lists and the global run queue.
    pub link: *mut G,
    /// When the current wait began (ns, monotonic), for dumps.
    pub wait_since: i64,
    pub name: [u8; NAME_LEN + 1],
}

impl G {
    #[inline]
    pub fn id(&self) -> i64 {
        crate::stack::make_id(self.slot, self.gen.load(Ordering::Relaxed))
    }

    pub fn name_str(&self) -> &[u8] {
        let n = self.name.iter().position(|&b| b == 0).unwrap_or(NAME_LEN);
        &self.name[..n]
    }

    /// Copies a C string into the descriptor (truncating), or clears the name.
    ///
    /// # Safety
    /// `name` is NULL or a valid NUL-terminated string.
    pub unsafe fn set_name(&mut self, name: *const c_char) {
        self.name = [0; NAME_LEN + 1];
        if name.is_null() {
            return;
        }
        for i in 0..NAME_LEN {
            // SAFETY: we stop at the terminator, which the caller guarantees exists.
            let b = unsafe { *name.add(i) } as u8;
            if b == 0 {
                break;
            }
            self.name[i] = b;
        }
    }

    #[inline]
    pub fn is_locked(&self) -> bool {
        !self.lockedm.load(Ordering::Relaxed).is_null()
    }
}

/// A raw G pointer that may cross threads (the status protocol above says who owns it).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(transparent)]
pub struct GPtr(pub *mut G);
// SAFETY: ownership of the pointee is handed over by the run-queue protocol; the
// pointer itself is plain data.
unsafe impl Send for GPtr {}
unsafe impl Sync for GPtr {}
