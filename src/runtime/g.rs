//! G: one goroutine's descriptor.
//!
//! Descriptors live in chunks of 4,096 (one lazily committed mapping each) that are
//! never freed: a G pointer stays dereferenceable for the life of the process, which
//! is what lets `gr_join` look a goroutine up by id without a table. The id encodes
//! the descriptor's index and a generation (`id = gen * MAX_DESCS + index + 1`, so the
//! first goroutines get ids 1, 2, 3...); the generation is bumped when the goroutine
//! exits, so an old id never names the descriptor's next occupant. Free descriptors
//! are cached per P, like stacks; a goroutine's stack is attached when it first runs
//! (see `runtime/stack/`).
//!
//! Who owns a G, by status:
//! - `FREE`: a stack cache (a P's or the global pool); nobody else touches it.
//! - `RUNNABLE`: exactly one run queue (or a P's runnext, or a locked M's hand-off).
//! - `RUNNING`: the M whose `curg` it is.
//! - `WAITING`: the object it waits on (channel, join list, timer...), which will
//!   call `ready()` once; its context is fully saved before that object can see it.
//! - `DEAD`: between exit and the deferred release to a cache.

use core::ffi::{c_char, c_void};
use core::ptr;
use core::sync::atomic::{AtomicPtr, AtomicU32, AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::arch::Context;
use crate::runtime::lock::SpinLock;
use crate::runtime::m::M;
use crate::runtime::park::Waiter;
use crate::runtime::prefetch;
use crate::runtime::stack::Stack;

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
    RwMutexRead,
    RwMutexWrite,
    Cond,
    Semaphore,
    Once,
    ChildWait,
}

pub type GrFn = unsafe extern "C" fn(arg: *mut c_void);

/// `G::flags`: the homed goroutine, parked, will take over what its home carries
/// (`Home::carry`) when it runs again, so the home thread need not let go of it first.
pub const TAKES_CARRY: u8 = 1;

/// Bytes of a goroutine's name kept in its descriptor (longer names are truncated).
pub(crate) const NAME_LEN: usize = 23;

#[repr(C)]
pub struct G {
    /// Saved stack pointer while not running (null until it first runs).
    pub ctx: Context,
    pub status: AtomicU32,
    /// Bumped at exit: ids carry the generation they were issued in.
    pub gen: AtomicU32,
    /// Index of this descriptor (see `id`).
    pub idx: u32,
    /// The errno value while switched out (it follows the goroutine across threads).
    pub errno: i32,
    pub func: Option<GrFn>,
    pub arg: *mut c_void,
    /// The stack, once the goroutine has first run (`None` before).
    pub stack: Option<Stack>,
    /// Stack size class (see `runtime/stack/`).
    pub class: u8,
    /// Set while locked to a thread (`gr_lock_thread`); `lock_depth` counts nesting.
    pub lockedm: AtomicPtr<M>,
    pub lock_depth: u32,
    pub wait_reason: u8,
    /// `TAKES_CARRY` or 0 (the goroutine's own, set and read on its home's thread).
    pub flags: u8,
    /// Guards `joiners` and the DEAD transition.
    pub join_lock: SpinLock,
    pub joiners: *mut Waiter,
    /// Intrusive link for free lists and the global run queue.
    pub link: *mut G,
    /// When the current wait began (ns, monotonic), for dumps.
    pub wait_since: i64,
    /// Id of the goroutine that spawned this one (0: a plain thread), for dumps.
    pub parent: i64,
    /// The function that goroutine was running when it spawned this one (its spawn
    /// site, kept here because the parent may be gone by the time of a dump).
    pub parent_func: Option<GrFn>,
    /// The home thread this goroutine is pinned to, or null (see `home.rs`).
    pub home: *mut crate::runtime::home::Home,
    /// Sanitizer state of this goroutine's stack (see `sanitizer.rs`).
    pub fiber: crate::runtime::sanitizer::Fiber,
    /// The context this goroutine is bound to (a reference), or null: its
    /// cancellation ends the goroutine's waits (see `context.rs`). Written only by the
    /// goroutine itself (and by spawn before it runs, and exit after).
    pub context: *const crate::runtime::context::Ctx,
    pub name: [u8; NAME_LEN + 1],
}

impl G {
    #[inline]
    pub fn id(&self) -> i64 {
        make_id(self.idx, self.gen.load(Ordering::Relaxed))
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

    /// Records who spawned this goroutine: `parent` is the spawning goroutine, or
    /// null for a plain thread.
    ///
    /// # Safety
    /// `parent` is null or a live descriptor (the caller's current goroutine).
    #[inline]
    pub unsafe fn set_parent(&mut self, parent: *const G) {
        // SAFETY: `parent` is null or the caller's current goroutine (this function's
        // contract): a descriptor (never unmapped) that no other thread writes while
        // it runs, apart from its atomics.
        (self.parent, self.parent_func) = match unsafe { parent.as_ref() } {
            None => (0, None),
            Some(p) => (p.id(), p.func),
        };
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
// SAFETY: ownership of the pointee is handed over by the run-queue protocol (the
// status list above says who owns a G); the pointer itself is plain data.
unsafe impl Send for GPtr {}
// SAFETY: a shared GPtr only gives out a copy of the pointer; dereferencing it is
// governed by the same ownership protocol, not by who holds the GPtr.
unsafe impl Sync for GPtr {}

// ---------------------------------------------------------------------------------
// the descriptor table

pub(crate) const CHUNK_BITS: u32 = 12;
const PER_CHUNK: usize = 1 << CHUNK_BITS;
pub(crate) const MAX_CHUNKS: usize = 4096;
pub(crate) const MAX_DESCS: i64 = (PER_CHUNK * MAX_CHUNKS) as i64;
/// Free descriptors a P keeps.
const CACHE_MAX: usize = 256;

pub(crate) static CHUNKS: [AtomicPtr<G>; MAX_CHUNKS] =
    [const { AtomicPtr::new(ptr::null_mut()) }; MAX_CHUNKS];
/// Descriptors carved so far.
pub(crate) static CARVED: AtomicUsize = AtomicUsize::new(0);
static FREE_LIST: Mutex<Vec<GPtr>> = Mutex::new(Vec::new());

#[inline]
pub fn make_id(idx: u32, gen: u32) -> i64 {
    gen as i64 * MAX_DESCS + idx as i64 + 1
}

fn desc(idx: usize) -> *mut G {
    let chunk = CHUNKS[idx >> CHUNK_BITS].load(Ordering::Acquire);
    // SAFETY: callers pass carved indexes, whose chunk is published.
    unsafe { chunk.add(idx & (PER_CHUNK - 1)) }
}

/// The descriptor an id refers to and the generation it was issued in, if that
/// descriptor was ever carved.
pub fn lookup(id: i64) -> Option<(*mut G, u32)> {
    if id <= 0 {
        return None;
    }
    let idx = ((id - 1) % MAX_DESCS) as usize;
    let gen = (id - 1) / MAX_DESCS;
    if gen > u32::MAX as i64 || idx >= CARVED.load(Ordering::Acquire) {
        return None;
    }
    Some((desc(idx), gen as u32))
}

/// A free descriptor (status FREE, generation current): from the P's cache, the
/// global free list, or a newly carved one. -ENOMEM when no chunk can be mapped,
/// -EAGAIN past 16M descriptors.
#[inline]
pub fn alloc(cache: Option<&mut Vec<GPtr>>) -> Result<*mut G, i32> {
    if let Some(cache) = cache {
        if let Some(g) = cache.pop() {
            // The next spawn's descriptor: most likely last written by another CPU
            // (where its goroutine exited), so its lines are on their way by then.
            if let Some(next) = cache.last() {
                prefetch::for_write(next.0, core::mem::size_of::<G>());
            }
            return Ok(g.0);
        }
        return refill_and_alloc(cache);
    }
    if let Some(g) = FREE_LIST.lock().unwrap_or_else(|e| e.into_inner()).pop() {
        return Ok(g.0);
    }
    carve()
}

/// `alloc` with an empty P cache: a quarter of a cache's worth from the global free
/// list (or a new descriptor).
#[cold]
fn refill_and_alloc(cache: &mut Vec<GPtr>) -> Result<*mut G, i32> {
    let mut free = FREE_LIST.lock().unwrap_or_else(|e| e.into_inner());
    let n = free.len().min(CACHE_MAX / 4);
    let at = free.len() - n;
    cache.extend_from_slice(&free[at..]);
    free.truncate(at);
    drop(free);
    match cache.pop() {
        Some(g) => Ok(g.0),
        None => carve(),
    }
}

fn carve() -> Result<*mut G, i32> {
    static CARVE_LOCK: Mutex<()> = Mutex::new(());
    let _l = CARVE_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let idx = CARVED.load(Ordering::Relaxed);
    if idx as i64 >= MAX_DESCS {
        return Err(-libc::EAGAIN);
    }
    let c = idx >> CHUNK_BITS;
    if CHUNKS[c].load(Ordering::Acquire).is_null() {
        let bytes = PER_CHUNK * core::mem::size_of::<G>();
        // SAFETY: a fresh anonymous mapping; zeroed memory is a valid FREE G.
        let mem = unsafe {
            libc::mmap(
                ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if mem == libc::MAP_FAILED {
            return Err(-libc::ENOMEM);
        }
        CHUNKS[c].store(mem as *mut G, Ordering::Release);
    }
    let g = desc(idx);
    // SAFETY: a never-used descriptor, ours alone.
    unsafe { (*g).idx = idx as u32 };
    CARVED.store(idx + 1, Ordering::Release);
    Ok(g)
}

/// Returns a dead goroutine's descriptor to the P's cache (bounded) or the free list.
///
/// Crate-private and safe: `g` is a descriptor of the table below (never unmapped)
/// that the caller owns as DEAD (the status protocol above).
#[inline]
pub(crate) fn free(g: *mut G, cache: Option<&mut Vec<GPtr>>) {
    mark_free(g);
    match cache {
        Some(cache) => {
            cache.push(GPtr(g));
            if cache.len() > CACHE_MAX {
                spill_cache(cache);
            }
        }
        None => FREE_LIST
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(GPtr(g)),
    }
}

/// A P cache past `CACHE_MAX`: its older half goes to the global free list.
#[cold]
fn spill_cache(cache: &mut Vec<GPtr>) {
    let keep = CACHE_MAX / 2;
    FREE_LIST
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .extend_from_slice(&cache[keep..]);
    cache.truncate(keep);
}

/// Makes a dead goroutine's descriptor FREE (before it goes to a cache: `free`, or a
/// P's stack cache with its stack).
///
/// Crate-private and safe, as `free`: the caller owns the DEAD descriptor.
#[inline(always)]
pub(crate) fn mark_free(g: *mut G) {
    // SAFETY: descriptors are never unmapped, and the caller owns this DEAD one, so
    // nobody else writes it. Its context is cleared so that a saved context is there
    // only once the next occupant has run (a debugger tells a goroutine that has not
    // started from a switched-out one by it, and so does `sched::set_running`).
    unsafe {
        (*g).ctx = Context::empty();
        (*g).status.store(FREE, Ordering::Release);
    }
}

/// Returns free descriptors (FREE, as `free` leaves them) to the global free list.
pub(crate) fn free_batch(gs: Vec<GPtr>) {
    if !gs.is_empty() {
        FREE_LIST
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(gs);
    }
}

/// Moves a P's cache to the global free list.
pub fn flush_cache(cache: &mut Vec<GPtr>) {
    if !cache.is_empty() {
        FREE_LIST
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .append(cache);
    }
}

/// Calls `f` with every descriptor ever carved (free ones included).
pub fn for_each(mut f: impl FnMut(&G)) {
    let n = CARVED.load(Ordering::Acquire);
    for i in 0..n {
        // SAFETY: i < carved.
        f(unsafe { &*desc(i) });
    }
}
