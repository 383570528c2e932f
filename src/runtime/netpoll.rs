//! The netpoller: one epoll instance for the process, fds registered once
//! (edge-triggered), and a per-fd descriptor recording who waits to read and to write.
//!
//! Readiness is latched per direction (`rready`/`wready`): an edge that arrives while
//! nobody waits is remembered, so a goroutine that got EAGAIN and then waits cannot
//! miss it. A latched edge may be stale (the data was consumed since); callers retry
//! their I/O and wait again, so a stale edge costs one extra read, never a hang.
//!
//! Who polls: a worker with nothing to run blocks in `epoll_wait` with the next
//! timer's deadline as its timeout (only one at a time: the "poller"); busy workers
//! poll without blocking when their queues run dry; sysmon polls when nobody has for
//! 10 ms. Events are tagged with the fd and a generation (`seq`), bumped by `gr_close`
//! and by re-registration, so a new file that reuses an fd number never sees an old
//! file's readiness.
//!
//! Registration: for most fds every wait tries `EPOLL_CTL_ADD` (EEXIST means it is
//! still registered), because a program may close an fd with close(2), which drops
//! the kernel's registration silently, and a new file under the same number would
//! otherwise be taken for registered and its waiter never woken. An fd *adopted* with
//! `gr_io_adopt` (the hook layer adopts every fd it sees created, and sees every
//! close) is one whose every close goes through `close` below: it stays registered
//! between waits with no system call, until that close. Adopting also forgets what
//! was known about an earlier file under the number (its waiters get -ECANCELED).
//! `disown` undoes it for a file handed on open (Python's `socket.detach`), whose
//! next owner may close it with close(2).
//!
//! Lifetime: the epoll instance, the eventfd and the descriptor table are made when
//! the runtime starts (the table's chunks as fds are first seen) and freed by
//! `gr_shutdown` (`shutdown`), so that a process that stopped the runtime holds no
//! descriptor or memory of it; the next start makes new ones. Nothing of a goroutine
//! can be in the netpoller then, but a plain thread may be inside `gr_read`,
//! `gr_write`, `gr_close` or `gr_io_adopt` (holding a table entry while it blocks in
//! poll(2)): those calls count themselves (`TableUse`), and a shutdown that finds one
//! keeps the old chunks aside until a later shutdown finds none.
//!
//! A read that drained a TCP socket (`read`): when a `gr_read` on an adopted TCP
//! socket returns fewer bytes than asked, the kernel's receive queue was empty at that
//! moment, and any data that arrives later brings a new edge. So the next `gr_read`
//! waits for that edge first instead of asking the kernel and getting EAGAIN: one
//! system call fewer per request in a server that reads, writes its reply and reads
//! again (3 -> 2 per HTTP request). A latched edge ends the wait at once, so a stale
//! hint costs no more than the EAGAIN it saves. Only where the rule holds: adopted
//! fds (every close goes through `close`, which forgets the hint with the file),
//! whose protocol is TCP (asked once per adoption, SO_PROTOCOL, when first needed).
//! TCP urgent data is the one case where a short read leaves data queued (the read
//! stops at the urgent mark): fds are registered for EPOLLPRI, and an fd that
//! reports it loses the hint until it is closed.
//!
//! Several fds at once (`gr_poll`): one `Waiter` shared by a node on each fd's lists,
//! the select-wide lock protocol of `sync/select.rs` (`MultiWait::slock`), and a
//! count of edges per direction (`redges`/`wedges`) so that an edge between the
//! caller's poll(2) and its linking is never missed, even one taken by another waiter.

use core::cell::UnsafeCell;
use core::ptr;
use core::sync::atomic::{
    AtomicBool, AtomicI32, AtomicI64, AtomicPtr, AtomicU32, AtomicU64, AtomicU8, AtomicUsize,
    Ordering,
};
use std::sync::Mutex;

use crate::runtime::g::WaitReason;
use crate::runtime::lock::{nanotime, SpinLock};
use crate::runtime::park::{parkable_g, Waiter, Wake};
use crate::runtime::sys;

pub const READ: i32 = 1;
pub const WRITE: i32 = 2;

/// One waiter's node on one fd, in the read list, the write list, or both.
struct IoWaiter {
    /// The waiting party (shared by the nodes of a multi-fd wait).
    w: *const Waiter,
    /// A multi-fd wait's select-wide lock (null for a single wait): a waker that won
    /// the claim takes and drops it before `wake`, so it finds the waiter parked.
    slock: *const SpinLock,
    /// Directions waited for.
    events: i32,
    /// Set by the waker before `Waiter::wake`: ready mask or -ECANCELED.
    result: i32,
    rnext: *mut IoWaiter,
    wnext: *mut IoWaiter,
}

impl IoWaiter {
    fn new(w: *const Waiter, slock: *const SpinLock, events: i32) -> IoWaiter {
        IoWaiter {
            w,
            slock,
            events,
            result: 0,
            rnext: ptr::null_mut(),
            wnext: ptr::null_mut(),
        }
    }
}

struct PollDesc {
    lock: SpinLock,
    /// Generation of the registration (low 32 bits of every event's tag).
    seq: AtomicU32,
    /// A hint for `data_io`: a read or write on this fd said ENOTSOCK (a pipe, a
    /// tty). Reset by `gr_close`.
    not_socket: AtomicBool,
    /// Whether `read` may trust a short read (see the top of this file): `DRAIN_NO`,
    /// `DRAIN_ASK` (adopted; the protocol not yet asked) or `DRAIN_TCP`.
    drain_kind: AtomicU8,
    /// Read edges seen (a wrapping count; written under `lock`, read by `gr_poll`
    /// under it and by `read` without it).
    redges: AtomicU32,
    /// Set by a short `read` on a `DRAIN_TCP` fd: `DRAINED | redges` as it was after
    /// that read (0: not drained). The next `read` waits first if no edge came since
    /// (one that did may have been taken by another waiter on the fd).
    drained: AtomicU64,
    /// Everything else, guarded by `lock` (`state` gives the pointer).
    guarded: UnsafeCell<DescState>,
}

/// The fields of a `PollDesc` that its lock guards.
struct DescState {
    registered: bool,
    /// Every close of this fd goes through `close` (`gr_io_adopt`): a registration
    /// stays valid until then, so `register` makes no system call.
    adopted: bool,
    /// Write edges seen (a wrapping count, for `poll`; `PollDesc::redges` counts reads).
    wedges: u32,
    rready: bool,
    wready: bool,
    readers: *mut IoWaiter,
    writers: *mut IoWaiter,
}

// SAFETY: the plain fields are in `guarded`, read and written only under `lock`; the
// others are atomics. The waiter pointers refer to nodes their owners keep alive
// while linked.
unsafe impl Sync for PollDesc {}

/// `PollDesc::drain_kind` values.
const DRAIN_NO: u8 = 0;
const DRAIN_ASK: u8 = 1;
const DRAIN_TCP: u8 = 2;
/// The flag bit of `PollDesc::drained` (its low 32 bits are an edge count).
const DRAINED: u64 = 1 << 32;

const CHUNK: usize = 1024;
const NCHUNKS: usize = 1024;
static TABLE: [AtomicPtr<[PollDesc; CHUNK]>; NCHUNKS] =
    [const { AtomicPtr::new(ptr::null_mut()) }; NCHUNKS];

static EPFD: AtomicI32 = AtomicI32::new(-1);
static EVFD: AtomicI32 = AtomicI32::new(-1);
/// Held while the epoll instance and the eventfd are made or freed.
static LIFECYCLE: Mutex<()> = Mutex::new(());
/// Plain threads inside a call that holds a table entry (see `TableUse`).
static PLAIN_USERS: AtomicUsize = AtomicUsize::new(0);
/// Chunks taken out of `TABLE` by a shutdown while a plain thread could still hold
/// an entry of one; freed by a later shutdown that finds no such thread.
static RETIRED: Mutex<Vec<usize>> = Mutex::new(Vec::new());
/// Who holds the poller role, the one thread that blocks in `epoll_wait` (and the
/// only one that drains the eventfd): `POLLER_NONE`, an idle worker or an idle home
/// thread. Taken with a compare-exchange from `POLLER_NONE`; given back with
/// `sched::release_poller`.
pub static POLLER: AtomicU32 = AtomicU32::new(POLLER_NONE);
pub const POLLER_NONE: u32 = 0;
pub const POLLER_WORKER: u32 = 1;
pub const POLLER_HOME: u32 = 2;
/// The deadline the blocked poller sleeps until (i64::MAX: for ever).
static POLL_DEADLINE: AtomicI64 = AtomicI64::new(i64::MAX);
/// Goroutines waiting on fds (for deadlock detection and the non-blocking polls).
pub static WAITERS: AtomicUsize = AtomicUsize::new(0);
/// Home threads that are idle and want to be the poller (idle workers then leave
/// the role to them; see `home.rs`).
pub static HOME_WANTS_POLL: AtomicUsize = AtomicUsize::new(0);
/// epoll_pwait2 (nanosecond timeouts) said ENOSYS once: use epoll_wait from then on.
static NO_EPOLL_PWAIT2: AtomicBool = AtomicBool::new(false);
/// When anyone last polled (ns), for sysmon.
pub static LAST_POLL: AtomicI64 = AtomicI64::new(0);

/// Creates the epoll instance and the eventfd that interrupts it, unless they exist.
pub fn init() {
    if EPFD.load(Ordering::Acquire) >= 0 {
        return;
    }
    let _lifecycle = LIFECYCLE.lock().unwrap_or_else(|e| e.into_inner());
    if EPFD.load(Ordering::Acquire) >= 0 {
        return;
    }
    let ep = sys::epoll_create1(libc::EPOLL_CLOEXEC);
    let ev = sys::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC);
    if ep < 0 || ev < 0 {
        crate::runtime::fatal("cannot create the netpoller (epoll/eventfd)");
    }
    let mut e = libc::epoll_event {
        events: (libc::EPOLLIN | libc::EPOLLET) as u32,
        u64: u64::MAX,
    };
    // SAFETY: &mut e is a valid epoll_event for the call.
    unsafe { sys::epoll_ctl(ep, libc::EPOLL_CTL_ADD, ev, &mut e) };
    EVFD.store(ev, Ordering::Release);
    EPFD.store(ep, Ordering::Release);
}

/// Frees the netpoller at `gr_shutdown`: closes the epoll instance and the eventfd
/// and frees the descriptor table (see the top of this file). The caller has stopped
/// every worker and sysmon, and no goroutine exists. Nothing is freed while a home
/// thread is still inside `run` or holds the poller role (it may poll right now).
pub fn shutdown() {
    let _lifecycle = LIFECYCLE.lock().unwrap_or_else(|e| e.into_inner());
    if POLLER.load(Ordering::SeqCst) != POLLER_NONE
        || crate::runtime::home::HOMES_RUNNING.load(Ordering::SeqCst) > 0
    {
        return;
    }
    for fd in [
        EPFD.swap(-1, Ordering::AcqRel),
        EVFD.swap(-1, Ordering::AcqRel),
    ] {
        if fd >= 0 {
            sys::close(fd);
        }
    }
    POLL_DEADLINE.store(i64::MAX, Ordering::SeqCst);
    let mut retired = RETIRED.lock().unwrap_or_else(|e| e.into_inner());
    for chunk in TABLE.iter() {
        let c = chunk.swap(ptr::null_mut(), Ordering::SeqCst);
        if !c.is_null() {
            retired.push(c as usize);
        }
    }
    // A plain thread that counts itself after this load finds the table empty (the
    // swaps above come first in the single order of SeqCst operations): only one
    // counted before it can hold a retired chunk.
    if PLAIN_USERS.load(Ordering::SeqCst) == 0 {
        for c in retired.drain(..) {
            // SAFETY: taken out of the table above (or by an earlier shutdown), and no
            // plain thread that could hold an entry of it is left; goroutines and
            // pollers are gone.
            drop(unsafe { Box::from_raw(c as *mut [PollDesc; CHUNK]) });
        }
    }
}

/// A plain thread's use of the descriptor table, from before it looks an entry up
/// until it is done with it (across a blocking poll): `shutdown` leaves the table
/// alone while any exists. Threads with an M (workers, home threads inside `run`) need
/// no count: `shutdown` runs when none is left, or frees nothing.
struct TableUse {
    plain: bool,
}

impl TableUse {
    #[inline]
    fn enter() -> TableUse {
        let plain = crate::runtime::m::current_m().is_null();
        if plain {
            PLAIN_USERS.fetch_add(1, Ordering::SeqCst);
            // Pairs with `shutdown`: our table lookups come after this in the SeqCst
            // order, so they see the table as a concurrent shutdown left it.
            core::sync::atomic::fence(Ordering::SeqCst);
        }
        TableUse { plain }
    }
}

impl Drop for TableUse {
    fn drop(&mut self) {
        if self.plain {
            PLAIN_USERS.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

fn desc(fd: i32) -> Option<&'static PollDesc> {
    let fd = fd as usize;
    let (c, i) = (fd / CHUNK, fd % CHUNK);
    if c >= NCHUNKS {
        return None;
    }
    let mut chunk = TABLE[c].load(Ordering::Acquire);
    if chunk.is_null() {
        chunk = publish_chunk(c);
    }
    // SAFETY: i < CHUNK, and a published chunk is freed only by `shutdown`, when no
    // goroutine or poller exists and no plain thread is inside a `TableUse`; every
    // caller is one of those.
    Some(unsafe { &(*chunk)[i] })
}

/// Makes chunk `c` of the table (or takes the one another thread published first).
/// Out of line and built on the heap: a chunk is ~80 KB, and built as a value it
/// gave `desc` a stack frame that size, which every call probed page by page (the
/// stack-clash probes): ~5% of an HTTP server's CPU, and 80 KB of every goroutine's
/// stack committed by its first read.
#[cold]
#[inline(never)]
fn publish_chunk(c: usize) -> *mut [PollDesc; CHUNK] {
    let fresh: Box<[PollDesc]> = (0..CHUNK)
        .map(|_| PollDesc {
            lock: SpinLock::new(),
            seq: AtomicU32::new(0),
            not_socket: AtomicBool::new(false),
            drain_kind: AtomicU8::new(DRAIN_NO),
            redges: AtomicU32::new(0),
            drained: AtomicU64::new(0),
            guarded: UnsafeCell::new(DescState {
                registered: false,
                adopted: false,
                wedges: 0,
                rready: false,
                wready: false,
                readers: ptr::null_mut(),
                writers: ptr::null_mut(),
            }),
        })
        .collect();
    let fresh = Box::into_raw(fresh) as *mut [PollDesc; CHUNK];
    match TABLE[c].compare_exchange(ptr::null_mut(), fresh, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => fresh,
        Err(existing) => {
            // SAFETY: `fresh` came from Box::into_raw just above (a boxed slice of
            // CHUNK descriptors, laid out as the array) and lost the race to publish,
            // so nobody else has seen it: we still own it.
            drop(unsafe { Box::from_raw(fresh) });
            existing
        }
    }
}

impl PollDesc {
    /// Drops the drained-read note and makes `kind` the fd's `drain_kind` (a new
    /// file, a closed one, or urgent data).
    fn forget_drain(&self, kind: u8) {
        self.drain_kind.store(kind, Ordering::Relaxed);
        self.drained.store(0, Ordering::Relaxed);
    }
}

/// The lock-guarded fields of a descriptor, for use under its lock.
fn state(pd: &PollDesc) -> *mut DescState {
    pd.guarded.get()
}

/// Makes sure `fd` is in the epoll set. Ok(false): the fd cannot be polled (a regular
/// file), so it is always ready.
fn register(fd: i32, pd: &PollDesc) -> Result<bool, i32> {
    init();
    let p = state(pd);
    pd.lock.lock();
    // SAFETY: we hold pd.lock, which guards the descriptor's plain fields (p points
    // into a chunk that only `shutdown` frees, when no goroutine is left); `&mut e` is
    // a valid epoll_event.
    let result = unsafe {
        if (*p).adopted && (*p).registered {
            pd.lock.unlock();
            return Ok(true);
        }
        let seq = pd.seq.load(Ordering::Relaxed).wrapping_add(1);
        let mut e = libc::epoll_event {
            events: (libc::EPOLLIN
                | libc::EPOLLOUT
                | libc::EPOLLRDHUP
                | libc::EPOLLPRI
                | libc::EPOLLET) as u32,
            u64: fd as u32 as u64 | ((seq as u64) << 32),
        };
        let ep = EPFD.load(Ordering::Acquire);
        let mut r = sys::epoll_ctl(ep, libc::EPOLL_CTL_ADD, fd, &mut e);
        if r == -libc::EEXIST && !(*p).registered {
            // Registered under a tag from before `gr_io_adopt` or a failed close:
            // give it the new one.
            r = sys::epoll_ctl(ep, libc::EPOLL_CTL_MOD, fd, &mut e);
        }
        match r {
            0 => {
                pd.seq.store(seq, Ordering::Release);
                (*p).registered = true;
                (*p).rready = false;
                (*p).wready = false;
                Ok(true)
            }
            e if e == -libc::EEXIST => Ok(true),
            e if e == -libc::EPERM => Ok(false),
            e => Err(e),
        }
    };
    // SAFETY: this thread took pd.lock above and has not released it.
    unsafe { pd.lock.unlock() };
    result
}

/// A pollfd asking for the GR_READ/GR_WRITE directions in `events`.
fn pollfd_for(fd: i32, events: i32) -> libc::pollfd {
    let mut events_mask = 0;
    if events & READ != 0 {
        events_mask |= libc::POLLIN;
    }
    if events & WRITE != 0 {
        events_mask |= libc::POLLOUT;
    }
    libc::pollfd {
        fd,
        events: events_mask,
        revents: 0,
    }
}

/// What poll(2) says about `fd` right now, as a GR_READ/GR_WRITE mask (errors and
/// hang-ups count as ready for every requested direction), or -EBADF when `fd` is
/// not an open file (POLLNVAL: the same system call checks it).
fn poll_now(fd: i32, events: i32) -> i32 {
    if fd < 0 {
        return -libc::EBADF;
    }
    let mut pfd = pollfd_for(fd, events);
    // SAFETY: &mut pfd is one valid, writable pollfd, and nfds is 1.
    let n = unsafe { sys::poll(&mut pfd, 1, 0) };
    if n <= 0 {
        return 0;
    }
    if pfd.revents & libc::POLLNVAL != 0 {
        return -libc::EBADF;
    }
    revents_to_mask(pfd.revents as i32, events)
}

fn revents_to_mask(rev: i32, events: i32) -> i32 {
    if rev & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) as i32 != 0 {
        return events;
    }
    let mut m = 0;
    if rev & libc::POLLIN as i32 != 0 {
        m |= READ;
    }
    if rev & libc::POLLOUT as i32 != 0 {
        m |= WRITE;
    }
    m & events
}

/// `gr_block_io`: waits until `fd` is ready for `events`. Returns the ready mask, or
/// -EINVAL, -EBADF, -ETIMEDOUT, -ECANCELED.
pub fn block_io(fd: i32, events: i32, timeout_ns: i64) -> i32 {
    if events == 0 || events & !(READ | WRITE) != 0 {
        return -libc::EINVAL;
    }
    let mask = poll_now(fd, events);
    if mask != 0 {
        return mask; // ready, or -EBADF
    }
    if timeout_ns == 0 {
        return -libc::ETIMEDOUT;
    }
    if parkable_g().is_null() {
        return poll_blocking(fd, events, timeout_ns);
    }
    let Some(pd) = desc(fd) else {
        return poll_blocking(fd, events, timeout_ns);
    };
    match register(fd, pd) {
        Ok(true) => {}
        Ok(false) => return events,
        Err(e) => return e,
    }
    // Forget edges from before the poll above, then look again: anything after this
    // point is latched and seen by wait().
    pd.lock.lock();
    // SAFETY: we hold pd.lock, which guards the descriptor's plain fields (a chunk
    // entry, freed only by `shutdown`, when no goroutine is left), and release it only
    // after the last write.
    unsafe {
        let p = state(pd);
        if events & READ != 0 {
            (*p).rready = false;
        }
        if events & WRITE != 0 {
            (*p).wready = false;
        }
        pd.lock.unlock();
    }
    let mask = poll_now(fd, events);
    if mask != 0 {
        return mask;
    }
    wait(pd, events, timeout_ns)
}

/// Parks the calling goroutine until an edge in `events` (or a latched one), the
/// timeout, `gr_close`, or its context's cancel (a cancellation point: its error).
fn wait(pd: &PollDesc, events: i32, timeout_ns: i64) -> i32 {
    let p = state(pd);
    pd.lock.lock();
    // SAFETY: we hold pd.lock, which guards the descriptor's fields and lists; the
    // waiter lives on our stack until we return, and is off both lists by then on
    // every path (a waker unlinks what it claims; on a timeout we unlink it here).
    // block_timeout gets the held lock and a waiter that stays put until it returns.
    unsafe {
        let mut latched = 0;
        if events & READ != 0 && (*p).rready {
            (*p).rready = false;
            latched |= READ;
        }
        if events & WRITE != 0 && (*p).wready {
            (*p).wready = false;
            latched |= WRITE;
        }
        if latched != 0 {
            pd.lock.unlock();
            return latched;
        }
        let w = Waiter::cancellable();
        let mut iw = IoWaiter::new(&w, ptr::null(), events);
        let me: *mut IoWaiter = &mut iw;
        if events & READ != 0 {
            iw.rnext = (*p).readers;
            (*p).readers = me;
        }
        if events & WRITE != 0 {
            iw.wnext = (*p).writers;
            (*p).writers = me;
        }
        WAITERS.fetch_add(1, Ordering::SeqCst);
        let wake = w.wait(&pd.lock, WaitReason::Io, timeout_ns);
        WAITERS.fetch_sub(1, Ordering::SeqCst);
        let rc = match wake {
            Wake::Woken => return iw.result,
            Wake::TimedOut => -libc::ETIMEDOUT,
            Wake::Cancelled(e) => e,
        };
        pd.lock.lock();
        unlink(&mut (*p).readers, me, |w| &mut (*w).rnext);
        unlink(&mut (*p).writers, me, |w| &mut (*w).wnext);
        pd.lock.unlock();
        rc
    }
}

/// Removes `me` from the list at `head` (linked through `link`), if it is there.
///
/// # Safety
/// The caller holds the lock of the descriptor that owns the list; `head` points to
/// one of its list heads, and `link` maps a node to its link field in that list.
unsafe fn unlink(
    head: *mut *mut IoWaiter,
    me: *mut IoWaiter,
    link: impl Fn(*mut IoWaiter) -> *mut *mut IoWaiter,
) {
    // SAFETY: our contract: the descriptor lock is held, so the list is ours to
    // change, and nodes are alive while linked (their owners unlink them, under the
    // same lock, before they return).
    unsafe {
        let mut cur = head;
        while !(*cur).is_null() {
            if *cur == me {
                *cur = *link(me);
                return;
            }
            cur = link(*cur);
        }
    }
}

/// A plain thread waits in poll(2), retrying after signals with the time left.
fn poll_blocking(fd: i32, events: i32, timeout_ns: i64) -> i32 {
    let deadline = if timeout_ns < 0 {
        i64::MAX
    } else {
        nanotime().saturating_add(timeout_ns)
    };
    loop {
        let mut pfd = pollfd_for(fd, events);
        let left = if deadline == i64::MAX {
            -1
        } else {
            let left = deadline - nanotime();
            if left <= 0 {
                return -libc::ETIMEDOUT;
            }
            left
        };
        // SAFETY: &mut pfd is one valid, writable pollfd, and nfds is 1.
        let n = unsafe { sys::ppoll(&mut pfd, 1, left) };
        if n > 0 && pfd.revents & libc::POLLNVAL != 0 {
            return -libc::EBADF;
        }
        if n > 0 {
            let m = revents_to_mask(pfd.revents as i32, events);
            if m != 0 {
                return m;
            }
        } else if n < 0 && n != -libc::EINTR {
            return n;
        }
    }
}

/// `gr_io_wait`: after a non-blocking call on `fd` said EAGAIN for `events`, waits
/// for the next edge in those directions (or one latched since the last wait), the
/// timeout, or `close`. No poll(2) first: the caller's EAGAIN was the check. Returns
/// the directions of the edge (> 0; it may be stale, so the caller retries its call
/// and waits again on EAGAIN), -ETIMEDOUT, -ECANCELED, -EBADF or -EINVAL. Where the
/// caller may not park (a plain thread, inside gr_blocking) it blocks in poll(2).
pub fn wait_edge(fd: i32, events: i32, timeout_ns: i64) -> i32 {
    if events == 0 || events & !(READ | WRITE) != 0 {
        return -libc::EINVAL;
    }
    if fd < 0 {
        return -libc::EBADF;
    }
    if parkable_g().is_null() {
        return poll_blocking(fd, events, timeout_ns);
    }
    let Some(pd) = desc(fd) else {
        return poll_blocking(fd, events, timeout_ns);
    };
    match register(fd, pd) {
        Ok(true) => wait(pd, events, timeout_ns),
        Ok(false) => events,
        Err(e) => e,
    }
}

/// `gr_io_adopt`: `fd` is a file the caller has just made (socket, accept, pipe,
/// dup2...) and will close only through `close`. Forgets the previous file under
/// the number (its waiters get -ECANCELED, its events are dropped) and keeps `fd`
/// registered between waits from its first wait until `close`. Returns 0, or -EBADF
/// for a negative fd or one beyond the netpoller's table (2^20: such an fd simply
/// stays un-adopted).
pub fn adopt(fd: i32) -> i32 {
    let woken = with_desc_locked(fd, |pd, p| {
        pd.seq.fetch_add(1, Ordering::AcqRel);
        pd.not_socket.store(false, Ordering::Relaxed);
        pd.forget_drain(DRAIN_ASK);
        // SAFETY: with_desc_locked holds pd.lock, which guards the state and its
        // lists (take_all's contract).
        unsafe {
            (*p).registered = false;
            (*p).adopted = true;
            (*p).rready = false;
            (*p).wready = false;
            take_all(p)
        }
    });
    let Some(woken) = woken else {
        return -libc::EBADF;
    };
    // SAFETY: wake_list gets only waiters take_all claimed for us, and never touches
    // one after waking it.
    unsafe { wake_list(woken, -libc::ECANCELED) };
    0
}

/// Undoes `adopt` for a file that leaves the caller's hands open (Python's
/// `socket.detach`): its next owner may close it with close(2), so from now on every
/// wait asks epoll again (EPOLL_CTL_ADD, EEXIST while still registered), and a short
/// read no longer says the socket drained. Waiters and latched edges are kept: the
/// file is the same. Returns 0, or -EBADF for a negative fd or one beyond the table.
pub fn disown(fd: i32) -> i32 {
    let done = with_desc_locked(fd, |pd, p| {
        pd.forget_drain(DRAIN_NO);
        // SAFETY: with_desc_locked holds pd.lock, which guards the state.
        unsafe { (*p).adopted = false };
    });
    if done.is_some() {
        0
    } else {
        -libc::EBADF
    }
}

/// `f(pd, state)` on `fd`'s descriptor under its lock, the table in use meanwhile:
/// `Some` of what it returns, or None for a negative fd or one beyond the table.
fn with_desc_locked<R>(fd: i32, f: impl FnOnce(&PollDesc, *mut DescState) -> R) -> Option<R> {
    if fd < 0 {
        return None;
    }
    let _use = TableUse::enter();
    let pd = desc(fd)?;
    pd.lock.lock();
    let r = f(pd, state(pd));
    // SAFETY: this thread took pd.lock above and has not released it.
    unsafe { pd.lock.unlock() };
    Some(r)
}

/// The GR_READ/GR_WRITE directions a pollfd's events ask for. Only errors and
/// hang-ups (reported whatever was asked) count as a read edge.
fn pollfd_dirs(events: i16) -> i32 {
    let mut d = 0;
    if events
        & (libc::POLLIN | libc::POLLPRI | libc::POLLRDNORM | libc::POLLRDBAND | libc::POLLRDHUP)
        != 0
    {
        d |= READ;
    }
    if events & (libc::POLLOUT | libc::POLLWRNORM | libc::POLLWRBAND) != 0 {
        d |= WRITE;
    }
    if d == 0 {
        READ
    } else {
        d
    }
}

/// The part of a multi-fd wait (`poll`) that its nodes share.
struct MultiWait {
    w: Waiter,
    slock: SpinLock,
}

/// `gr_poll`: poll(2) that parks the goroutine. Fills `revents` as poll(2) does and
/// returns the number of fds with events, 0 after `timeout_ns` (negative: for ever),
/// or a negative errno value from poll(2) (-EFAULT, -EINVAL, -ENOMEM). Where the
/// caller may not park, it is poll(2) (ppoll, retried after signals).
///
/// On a goroutine: a poll(2) without waiting first; if nothing is ready, each fd is
/// registered (no system call for adopted fds) and its edge count noted, poll(2)
/// looks again, and the goroutine parks with a node on every fd's list, unless an
/// edge arrived since the counts were noted. Any wake-up (an edge, `close` of one of
/// the fds, the timeout) ends in a poll(2) that decides what is reported, so the
/// result is poll(2)'s own, never a latched edge's. A temporary epoll set per call
/// was the alternative: it costs 3 + n system calls per wait where this costs none
/// beyond the two poll(2)s (with adopted fds).
///
/// # Safety
/// `fds` points to `n` pollfds (it may be NULL when `n` is 0).
pub unsafe fn poll(fds: *mut libc::pollfd, n: usize, timeout_ns: i64) -> i32 {
    let each = |f: fn(i32)| {
        for i in 0..n {
            // SAFETY: the caller passes n entries.
            f(unsafe { (*fds.add(i)).fd });
        }
    };
    each(crate::runtime::sanitizer::hb_fd_release);
    // SAFETY: fds holds n pollfds (our contract).
    let r = unsafe { poll_fds(fds, n, timeout_ns) };
    each(crate::runtime::sanitizer::hb_fd_acquire);
    r
}

/// `poll`'s work, between the sanitizer edges.
///
/// # Safety
/// As for `poll`.
unsafe fn poll_fds(fds: *mut libc::pollfd, n: usize, timeout_ns: i64) -> i32 {
    let deadline = if timeout_ns < 0 {
        i64::MAX
    } else {
        nanotime().saturating_add(timeout_ns)
    };
    let left = |now: i64| {
        if deadline == i64::MAX {
            -1
        } else {
            (deadline - now).max(0)
        }
    };
    if timeout_ns == 0 || parkable_g().is_null() {
        loop {
            // SAFETY: fds holds n pollfds (our contract).
            let r = unsafe { sys::ppoll(fds, n, left(nanotime())) };
            if r != -libc::EINTR {
                return r;
            }
        }
    }
    // SAFETY: fds holds n pollfds (our contract).
    let r = unsafe { sys::poll(fds, n, 0) };
    if r != 0 {
        return r;
    }
    // SAFETY: fds holds n pollfds (our contract); poll(2) has just read them.
    let pfds = unsafe { core::slice::from_raw_parts(fds, n) };
    let mut descs: Vec<(&'static PollDesc, i32, u32, u32)> = Vec::with_capacity(n);
    for pfd in pfds {
        if pfd.fd < 0 {
            continue;
        }
        let dirs = pollfd_dirs(pfd.events);
        match desc(pfd.fd).map(|pd| (pd, register(pfd.fd, pd))) {
            Some((pd, Ok(true))) => descs.push((pd, dirs, 0, 0)),
            // Always ready (poll(2) said so already), or gone since (the next
            // poll(2) says POLLNVAL): nothing to wait for on it.
            Some((_, Ok(false))) | Some((_, Err(_))) => {}
            // Beyond the table: no way to wait here; block the thread instead.
            // SAFETY: fds holds n pollfds (our contract).
            None => return unsafe { sys::ppoll(fds, n, left(nanotime())) },
        }
    }
    let mut nodes: Vec<IoWaiter> = descs
        .iter()
        .map(|&(_, dirs, _, _)| IoWaiter::new(ptr::null(), ptr::null(), dirs))
        .collect();
    loop {
        for d in descs.iter_mut() {
            d.0.lock.lock();
            // SAFETY: we hold the descriptor's lock, which guards its counts.
            unsafe {
                let p = state(d.0);
                d.2 = d.0.redges.load(Ordering::Relaxed);
                d.3 = (*p).wedges;
                d.0.lock.unlock();
            }
        }
        // SAFETY: fds holds n pollfds (our contract).
        let r = unsafe { sys::poll(fds, n, 0) };
        let now = nanotime();
        if r != 0 || now >= deadline {
            return r;
        }
        let mw = MultiWait {
            w: Waiter::cancellable(),
            slock: SpinLock::new(),
        };
        // SAFETY: each descriptor's lists and counts are touched under its lock; the
        // nodes live in `nodes` (never resized) and are unlinked below on every path
        // before they or `mw` (in place on this stack) go; block_timeout gets mw's
        // held slock, which every waker that claims us takes before waking us.
        unsafe {
            mw.slock.lock();
            let mut linked = 0;
            let mut edge = false;
            for (d, node) in descs.iter().zip(nodes.iter_mut()) {
                let (pd, dirs, r0, w0) = *d;
                let p = state(pd);
                pd.lock.lock();
                if (dirs & READ != 0 && pd.redges.load(Ordering::Relaxed) != r0)
                    || (dirs & WRITE != 0 && (*p).wedges != w0)
                {
                    edge = true;
                    pd.lock.unlock();
                    break;
                }
                let me: *mut IoWaiter = node;
                (*me).w = &mw.w;
                (*me).slock = &mw.slock;
                (*me).rnext = ptr::null_mut();
                (*me).wnext = ptr::null_mut();
                if dirs & READ != 0 {
                    (*me).rnext = (*p).readers;
                    (*p).readers = me;
                }
                if dirs & WRITE != 0 {
                    (*me).wnext = (*p).writers;
                    (*p).writers = me;
                }
                pd.lock.unlock();
                linked += 1;
            }
            // An edge since the counts were taken: look again instead of parking,
            // unless a waker has already claimed us (it then wakes us at once).
            let park = !edge || !mw.w.claim();
            let mut cancelled = 0;
            if park {
                WAITERS.fetch_add(1, Ordering::SeqCst);
                if let Wake::Cancelled(e) = mw.w.wait(&mw.slock, WaitReason::Io, left(nanotime())) {
                    cancelled = e;
                }
                WAITERS.fetch_sub(1, Ordering::SeqCst);
            } else {
                mw.slock.unlock();
            }
            for (d, node) in descs.iter().zip(nodes.iter_mut()).take(linked) {
                let pd = d.0;
                let p = state(pd);
                let me: *mut IoWaiter = node;
                pd.lock.lock();
                unlink(&mut (*p).readers, me, |w| &mut (*w).rnext);
                unlink(&mut (*p).writers, me, |w| &mut (*w).wnext);
                pd.lock.unlock();
            }
            if cancelled != 0 {
                return cancelled;
            }
        }
    }
}

/// For the I/O wrappers: after EAGAIN, wait for the next edge in `dir`.
fn wait_again(fd: i32, dir: i32) -> i32 {
    let r = wait_edge(fd, dir, -1);
    if r < 0 {
        r
    } else {
        0
    }
}

/// Puts `fd` into non-blocking mode if it is not already. Asked every time (one
/// fcntl): a file closed with close(2) instead of gr_close and replaced under the
/// same number would otherwise be taken for non-blocking and block the thread.
fn set_nonblock(fd: i32) -> Result<(), i32> {
    let fl = sys::getfl(fd);
    if fl < 0 {
        return Err(fl);
    }
    if fl & libc::O_NONBLOCK == 0 {
        let r = sys::setfl(fd, fl | libc::O_NONBLOCK);
        if r < 0 {
            return Err(r);
        }
    }
    Ok(())
}

/// Runs `op` (which must not block; it returns a count or -errno) until it stops
/// saying EAGAIN, waiting for `dir` in between.
fn retry_io(fd: i32, dir: i32, mut op: impl FnMut() -> isize) -> isize {
    loop {
        let n = op();
        if n >= 0 {
            return n;
        }
        let e = -n as i32;
        if e == libc::EINTR {
            continue;
        }
        if e != libc::EAGAIN && e != libc::EWOULDBLOCK {
            return n;
        }
        let r = wait_again(fd, dir);
        if r < 0 {
            return r as isize;
        }
    }
}

/// A read or write that parks instead of blocking. A socket is asked with
/// MSG_DONTWAIT (`sock_op`): non-blocking for this call alone, with no fcntl to look
/// at or change the file's flags (two system calls fewer per request in a server).
/// Anything else says ENOTSOCK, is put in non-blocking mode and uses `file_op`. The
/// fd's `not_socket` hint saves that first try next time; a wrong hint costs only
/// time (a stale "socket" gets ENOTSOCK again; the fcntl path works for sockets too).
fn data_io(
    fd: i32,
    dir: i32,
    sock_op: impl FnMut() -> isize,
    file_op: impl FnMut() -> isize,
) -> isize {
    let _use = TableUse::enter();
    data_io_on(fd, desc(fd), dir, sock_op, file_op)
}

/// `data_io` with `fd`'s descriptor already looked up (inside the caller's
/// `TableUse`).
fn data_io_on(
    fd: i32,
    pd: Option<&PollDesc>,
    dir: i32,
    sock_op: impl FnMut() -> isize,
    file_op: impl FnMut() -> isize,
) -> isize {
    if pd.is_some_and(|pd| !pd.not_socket.load(Ordering::Relaxed)) {
        let n = retry_io(fd, dir, sock_op);
        if n != -(libc::ENOTSOCK as isize) {
            return n;
        }
        if let Some(pd) = pd {
            pd.not_socket.store(true, Ordering::Relaxed);
        }
    }
    if let Err(e) = set_nonblock(fd) {
        return e as isize;
    }
    retry_io(fd, dir, file_op)
}

/// `gr_read`: reads up to `n` bytes into `buf`, parking on EAGAIN; after a read
/// that drained an adopted TCP socket, waits for its next edge first (see the top of
/// this file).
///
/// # Safety
/// `buf` is valid for writes of `n` bytes (it may be null when `n` is 0) for the
/// whole call, and nothing else accesses it meanwhile.
pub unsafe fn read(fd: i32, buf: *mut u8, n: usize) -> isize {
    let _use = TableUse::enter();
    let pd = desc(fd);
    if pd.is_some_and(take_drained_on) && !parkable_g().is_null() {
        let r = wait_edge(fd, READ, -1);
        if r < 0 {
            return r as isize;
        }
    }
    let got = data_io_on(
        fd,
        pd,
        READ,
        // SAFETY: buf is writable for n bytes (our contract), as recv(2) takes it.
        || unsafe { sys::recv(fd, buf, n, libc::MSG_DONTWAIT) },
        // SAFETY: buf is writable for n bytes (our contract), as read(2) takes it.
        || unsafe { sys::read(fd, buf, n) },
    );
    if let Some(pd) = pd {
        if got > 0 && (got as usize) < n {
            note_short_read_on(fd, pd);
        }
    }
    got
}

/// `gr_io_note_short_read`: a read of `fd` returned fewer bytes than asked. If that
/// means its receive queue was empty (`drains_tcp`), remembers it with the edge count
/// of now, and returns true. See the top of this file.
pub fn note_short_read(fd: i32) -> bool {
    let _use = TableUse::enter();
    desc(fd).is_some_and(|pd| note_short_read_on(fd, pd))
}

/// `note_short_read` on `fd`'s descriptor `pd`.
fn note_short_read_on(fd: i32, pd: &PollDesc) -> bool {
    if !drains_tcp(fd, pd) {
        return false;
    }
    let mark = DRAINED | pd.redges.load(Ordering::Relaxed) as u64;
    pd.drained.store(mark, Ordering::Relaxed);
    true
}

/// `gr_io_read_drained`: true when a short read of `fd` was noted and no read edge
/// came since, so a read now would say EAGAIN: the caller waits for the edge first.
/// Forgets the note either way.
pub fn take_drained(fd: i32) -> bool {
    let _use = TableUse::enter();
    desc(fd).is_some_and(take_drained_on)
}

/// `take_drained` on a descriptor.
fn take_drained_on(pd: &PollDesc) -> bool {
    let mark = pd.drained.load(Ordering::Relaxed);
    if mark == 0 {
        return false;
    }
    // A plain store, not a swap (no locked instruction on every read): a note made
    // meanwhile by a concurrent reader of the fd may be lost, which costs that
    // reader's next read one EAGAIN, never a wait with data queued.
    pd.drained.store(0, Ordering::Relaxed);
    mark == DRAINED | pd.redges.load(Ordering::Relaxed) as u64
}

/// True when a short read on `fd` means its receive queue was empty: an adopted TCP
/// socket that has not reported urgent data. The protocol is asked once per adoption.
fn drains_tcp(fd: i32, pd: &PollDesc) -> bool {
    match pd.drain_kind.load(Ordering::Relaxed) {
        DRAIN_TCP => true,
        DRAIN_ASK => {
            let tcp = sys::getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_PROTOCOL)
                == Ok(libc::IPPROTO_TCP);
            let kind = if tcp { DRAIN_TCP } else { DRAIN_NO };
            // Not over a close, a new adoption or urgent data meanwhile.
            let _ = pd.drain_kind.compare_exchange(
                DRAIN_ASK,
                kind,
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
            tcp
        }
        _ => false,
    }
}

/// `gr_write`: writes up to `n` bytes from `buf`, parking on EAGAIN.
///
/// # Safety
/// `buf` is valid for reads of `n` bytes (it may be null when `n` is 0) for the
/// whole call.
pub unsafe fn write(fd: i32, buf: *const u8, n: usize) -> isize {
    data_io(
        fd,
        WRITE,
        // SAFETY: buf is readable for n bytes (our contract), as send(2) takes it.
        || unsafe { sys::send(fd, buf, n, libc::MSG_DONTWAIT) },
        // SAFETY: buf is readable for n bytes (our contract), as write(2) takes it.
        || unsafe { sys::write(fd, buf, n) },
    )
}

/// `gr_accept`: accepts a connection on `fd`, parking until one arrives.
///
/// # Safety
/// `addr` and `len` are both null, or `len` points to a writable socklen_t holding
/// the size of the writable buffer at `addr`, as accept4(2) takes them.
pub unsafe fn accept(fd: i32, addr: *mut libc::sockaddr, len: *mut libc::socklen_t) -> i32 {
    if let Err(e) = set_nonblock(fd) {
        return e;
    }
    // SAFETY: addr and len are as accept4(2) takes them (our contract).
    retry_io(fd, READ, || unsafe {
        sys::accept4(fd, addr, len, libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC) as isize
    }) as i32
}

/// `gr_connect`: connects `fd` to `addr`, parking until the connection is made.
///
/// # Safety
/// `addr` points to `len` readable bytes holding a socket address, as connect(2)
/// takes it.
pub unsafe fn connect(fd: i32, addr: *const libc::sockaddr, len: libc::socklen_t) -> i32 {
    if let Err(e) = set_nonblock(fd) {
        return e;
    }
    // SAFETY: addr points to len readable bytes (our contract).
    let r = unsafe { sys::connect(fd, addr, len) };
    if r == 0 {
        return 0;
    }
    if r != -libc::EINPROGRESS && r != -libc::EINTR {
        return r;
    }
    let r = wait_again(fd, WRITE);
    if r < 0 {
        return r;
    }
    match sys::getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_ERROR) {
        Ok(err) => -err,
        Err(e) => e,
    }
}

/// Wakes every goroutine waiting on `fd` with -ECANCELED, forgets its registration,
/// and closes it.
pub fn close(fd: i32) -> i32 {
    if fd < 0 {
        return -libc::EBADF;
    }
    let table_use = TableUse::enter();
    if let Some(pd) = desc(fd) {
        let p = state(pd);
        pd.lock.lock();
        // SAFETY: we hold pd.lock (the descriptor's fields and lists, and take_all's
        // contract); wake_list gets only waiters take_all claimed for us, and never
        // touches one after waking it.
        unsafe {
            pd.seq.fetch_add(1, Ordering::AcqRel);
            pd.not_socket.store(false, Ordering::Relaxed);
            pd.forget_drain(DRAIN_NO);
            let was = (*p).registered;
            (*p).registered = false;
            (*p).adopted = false;
            (*p).rready = false;
            (*p).wready = false;
            let woken = take_all(p);
            if was && EPFD.load(Ordering::Acquire) >= 0 {
                sys::epoll_ctl(
                    EPFD.load(Ordering::Acquire),
                    libc::EPOLL_CTL_DEL,
                    fd,
                    ptr::null_mut(),
                );
            }
            pd.lock.unlock();
            wake_list(woken, -libc::ECANCELED);
        }
    }
    drop(table_use);
    sys::close(fd).min(0)
}

/// Unlinks every waiter of a descriptor and returns those this caller wins, chained
/// by `rnext`.
///
/// # Safety
/// `p` is the state of a descriptor whose lock the caller holds.
unsafe fn take_all(p: *mut DescState) -> *mut IoWaiter {
    // SAFETY: our contract: the descriptor lock is held, so its lists are ours, and
    // linked waiters are alive (their owners unlink them under this lock first).
    unsafe {
        let mut seen: Vec<*mut IoWaiter> = Vec::new();
        let mut w = (*p).readers;
        while !w.is_null() {
            seen.push(w);
            w = (*w).rnext;
        }
        let mut w = (*p).writers;
        while !w.is_null() {
            if !seen.contains(&w) {
                seen.push(w);
            }
            w = (*w).wnext;
        }
        (*p).readers = ptr::null_mut();
        (*p).writers = ptr::null_mut();
        let mut out: *mut IoWaiter = ptr::null_mut();
        for &w in seen.iter().rev() {
            if (*(*w).w).claim() {
                (*w).rnext = out;
                out = w;
            }
        }
        out
    }
}

/// Wakes every waiter of a chain (linked by `rnext`) with `result`.
///
/// # Safety
/// Every waiter in the chain was claimed by the caller (`Waiter::claim`) and is off
/// every list; the caller touches none of them afterwards.
unsafe fn wake_list(mut w: *mut IoWaiter, result: i32) {
    while !w.is_null() {
        // SAFETY: our contract: each waiter is claimed by us, so alive until woken;
        // its next link is read before the wake, after which we never touch it.
        unsafe {
            let next = (*w).rnext;
            (*w).result = result;
            wake_node(w);
            w = next;
        }
    }
}

/// Wakes the waiter of a node whose claim the caller won (with no descriptor lock
/// held). A multi-fd waiter may still be linking its other nodes: its select-wide
/// lock, taken and dropped here, is released only once it is parked.
///
/// # Safety
/// The caller won the claim of `iw`'s waiter; it never touches `iw` afterwards.
unsafe fn wake_node(iw: *mut IoWaiter) {
    // SAFETY: our contract: the claim is ours, so the node, its waiter and a multi-fd
    // wait's slock live until the wake below; nothing is touched after it.
    unsafe {
        let w = (*iw).w;
        let slock = (*iw).slock;
        if !slock.is_null() {
            (*slock).lock();
            (*slock).unlock();
        }
        Waiter::wake(w);
    }
}

/// Unlinks every waiter of one direction, claiming each for an event with readiness
/// `mask`, and chains the won ones onto `woken` (through `rnext`).
///
/// # Safety
/// `p` is the state of a descriptor whose lock the caller holds.
unsafe fn collect(p: *mut DescState, read: bool, mask: i32, woken: &mut *mut IoWaiter) {
    // SAFETY: our contract: the descriptor lock is held, so its lists are ours (and
    // unlink's contract holds), and linked waiters are alive.
    unsafe {
        let head: *mut *mut IoWaiter = if read {
            &mut (*p).readers
        } else {
            &mut (*p).writers
        };
        let mut cur = *head;
        *head = ptr::null_mut();
        while !cur.is_null() {
            let next = if read { (*cur).rnext } else { (*cur).wnext };
            // A waiter on both lists leaves the other one too.
            if read {
                unlink(&mut (*p).writers, cur, |x| &mut (*x).wnext);
            } else {
                unlink(&mut (*p).readers, cur, |x| &mut (*x).rnext);
            }
            if (*(*cur).w).claim() {
                (*cur).result = mask & (*cur).events;
                (*cur).rnext = *woken;
                *woken = cur;
            }
            cur = next;
        }
    }
}

/// Handles one epoll event: latches readiness and wakes the waiters it satisfies.
/// Any tag is harmless: an fd out of range or a stale generation is ignored.
fn dispatch(tag: u64, ev: u32) {
    let fd = (tag & 0xffff_ffff) as i32;
    let seq = (tag >> 32) as u32;
    let Some(pd) = desc(fd) else { return };
    let p = state(pd);
    let r = ev & (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) as u32 != 0;
    let w = ev & (libc::EPOLLOUT | libc::EPOLLHUP | libc::EPOLLERR) as u32 != 0;
    let mask = if r { READ } else { 0 } | if w { WRITE } else { 0 };
    pd.lock.lock();
    // SAFETY: we hold pd.lock (the descriptor's fields and lists; collect's contract);
    // the chain holds only waiters collect claimed for us, alive until woken, and
    // each one's link is read before its wake, after which we never touch it.
    unsafe {
        if pd.seq.load(Ordering::Acquire) != seq || !(*p).registered {
            pd.lock.unlock();
            return; // an event for a closed file whose fd number was reused
        }
        if ev & libc::EPOLLPRI as u32 != 0 {
            // Urgent data: a read stops at its mark with data still queued.
            pd.forget_drain(DRAIN_NO);
        }
        let mut woken: *mut IoWaiter = ptr::null_mut();
        if r {
            pd.redges.fetch_add(1, Ordering::Relaxed);
            if (*p).readers.is_null() {
                (*p).rready = true;
            } else {
                collect(p, true, mask, &mut woken);
            }
        }
        if w {
            (*p).wedges = (*p).wedges.wrapping_add(1);
            if (*p).writers.is_null() {
                (*p).wready = true;
            } else {
                collect(p, false, mask, &mut woken);
            }
        }
        pd.lock.unlock();
        while !woken.is_null() {
            let next = (*woken).rnext;
            wake_node(woken);
            woken = next;
        }
    }
}

/// The poller's wait: polls the epoll set, waiting at most `timeout_ns` (0: not at
/// all; negative: for ever, until `break_poll`), readies every goroutine whose fd is
/// ready and consumes a pending `break_poll`. Only the holder of `POLLER` calls it.
/// Returns how many fd events were handled.
pub fn poll_as_poller(timeout_ns: i64) -> usize {
    poll_events(timeout_ns, true)
}

/// A look for ready fds without waiting, by a thread that is not the poller (a
/// worker between goroutines, sysmon). It leaves the eventfd signalled: a wake-up
/// meant for the blocked poller must reach it, and if this look consumed it the
/// poller would sleep on with work queued and nobody woken.
pub fn poll_ready() -> usize {
    poll_events(0, false)
}

fn poll_events(timeout_ns: i64, as_poller: bool) -> usize {
    init();
    let ep = EPFD.load(Ordering::Acquire);
    // Not zeroed (1.5 KiB per poll): the kernel fills the first n entries, and only
    // those are read.
    let mut evs = [const { core::mem::MaybeUninit::<libc::epoll_event>::uninit() }; 128];
    let evp = evs.as_mut_ptr() as *mut libc::epoll_event;
    let mut n = if NO_EPOLL_PWAIT2.load(Ordering::Relaxed) {
        -libc::ENOSYS
    } else {
        // SAFETY: evp is writable for evs.len() events.
        unsafe { sys::epoll_pwait2(ep, evp, evs.len() as i32, timeout_ns) }
    };
    if n == -libc::ENOSYS {
        // Before Linux 5.11 (or under valgrind 3.19): epoll_wait, in milliseconds.
        NO_EPOLL_PWAIT2.store(true, Ordering::Relaxed);
        let ms = if timeout_ns < 0 {
            -1
        } else {
            ((timeout_ns + 999_999) / 1_000_000).min(i32::MAX as i64) as i32
        };
        // SAFETY: evp is writable for evs.len() events.
        n = unsafe { sys::epoll_wait(ep, evp, evs.len() as i32, ms) };
    }
    LAST_POLL.store(nanotime(), Ordering::Relaxed);
    if n <= 0 {
        return 0;
    }
    let mut handled = 0;
    for e in &evs[..n as usize] {
        // SAFETY: the kernel initialised the first n entries, and n <= evs.len().
        let e = unsafe { e.assume_init_ref() };
        let tag = e.u64;
        if tag == u64::MAX {
            if !as_poller {
                continue;
            }
            let mut buf = 0u64;
            // SAFETY: read(2) of 8 bytes into &mut buf, a writable u64 (our eventfd is
            // non-blocking: EAGAIN when already drained).
            unsafe {
                sys::read(
                    EVFD.load(Ordering::Acquire),
                    &mut buf as *mut u64 as *mut u8,
                    8,
                )
            };
            continue;
        }
        dispatch(tag, e.events);
        handled += 1;
    }
    handled
}

/// Interrupts a blocked poller (new earlier timer, new work, shutdown).
pub fn break_poll() {
    let ev = EVFD.load(Ordering::Acquire);
    if ev >= 0 {
        let one = 1u64;
        // SAFETY: write(2) of 8 bytes from &one, a readable u64.
        unsafe { sys::write(ev, &one as *const u64 as *const u8, 8) };
    }
}

/// A timer now expires at `when`: wake the poller if it sleeps past that.
pub fn timer_moved(when: i64) {
    if POLLER.load(Ordering::SeqCst) != 0 && when < POLL_DEADLINE.load(Ordering::SeqCst) {
        break_poll();
    }
}

pub fn set_poll_deadline(when: i64) {
    POLL_DEADLINE.store(when, Ordering::SeqCst);
}

/// The poller, before it blocks: publishes the deadline it will sleep until (the
/// earliest timer, at most `limit`) and returns it. A timer armed between reading the
/// earliest deadline and publishing ours compared itself with the old deadline in
/// `timer_moved` and may not have interrupted us, so the earliest timer is read again
/// after the store (the store and that load pair with the timer's store of its
/// deadline and its load of ours: one of the two sees the other).
pub fn publish_poll_deadline(limit: i64) -> i64 {
    let mut when = crate::runtime::timer::next_when().min(limit);
    loop {
        set_poll_deadline(when);
        let again = crate::runtime::timer::next_when();
        if again >= when {
            return when;
        }
        when = again;
    }
}
