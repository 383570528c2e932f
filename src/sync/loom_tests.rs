//! Model checking of the channel, select, wait group, mutex, rwmutex, cond and semaphore state
//! machines with loom: loom threads stand in for goroutines, `shim` gives them loom's
//! atomics, a spinning waiter and a timeout that may fire at any point, and loom runs
//! every interleaving (up to a preemption bound) of each small scenario below.
//!
//! Checked in every interleaving: values arrive exactly once and in order; close
//! wakes every waiter; a select fires once; a timed-out select leaves nothing behind;
//! no waker wakes a waiter that has not finished parking, or touches it after the
//! wake (`shim`'s `parked` assertion and `alive` cells); nobody touches a channel or
//! wait group after the side that frees it has returned (their locks' `alive` cells);
//! all lock-guarded state is accessed under its lock (loom's `UnsafeCell` tracking).
//!
//! Run: `RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test --release --lib sync::loom_tests`
//! (`LOOM_MAX_PREEMPTIONS` overrides the bound set here).

use loom::sync::Arc;
use loom::thread;

use super::chan::Chan;
use super::cond::Cond;
use super::mutex::Mutex;
use super::rwmutex::RwMutex;
use super::select::{select, Case, RECV, SEND};
use super::sem::{Semaphore, Wait};
use super::shim::WaitReason;
use super::waitgroup::WaitGroup;

/// Explores `f` with at most 2 preemptions per execution (`LOOM_MAX_PREEMPTIONS`
/// overrides it).
fn model(f: impl Fn() + Sync + Send + 'static) {
    model_bound(2, f)
}

/// Scenarios with three threads: 1 preemption (plus every interleaving at blocking
/// points) keeps them to minutes.
fn model3(f: impl Fn() + Sync + Send + 'static) {
    model_bound(1, f)
}

fn model_bound(bound: usize, f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    if b.preemption_bound.is_none() {
        b.preemption_bound = Some(bound);
    }
    // The spin lock's waits are yields: allow long paths.
    b.max_branches = 1_000_000;
    b.check(f);
}

/// A raw pointer that may cross loom threads (the scenario decides who frees it).
struct P<T>(*mut T);
// SAFETY: only the pointer is sent; each scenario dereferences it while the object is
// live and frees it once, after every other thread is done with it (said at each use).
unsafe impl<T> Send for P<T> {}
// Not derived: that would ask T: Clone, and only the pointer is copied.
impl<T> Clone for P<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for P<T> {}

fn send(c: &Chan, v: u64) -> i32 {
    // SAFETY: every channel here has 8-byte elements, and v (8 bytes) lives across
    // the call.
    unsafe { c.send(&v as *const u64 as *const u8, true) }
}

fn try_send(c: &Chan, v: u64) -> i32 {
    // SAFETY: every channel here has 8-byte elements, and v (8 bytes) lives across
    // the call.
    unsafe { c.send(&v as *const u64 as *const u8, false) }
}

fn recv(c: &Chan) -> (i32, u64) {
    let mut v = u64::MAX;
    // SAFETY: every channel here has 8-byte elements, and v (8 bytes, writable)
    // lives across the call.
    let rc = unsafe { c.recv(&mut v as *mut u64 as *mut u8, true) };
    (rc, v)
}

/// Unbuffered hand-off, then the receiver frees the channel at once (`recv; free`):
/// the sender must be done with it.
#[test]
fn unbuffered_recv_then_free() {
    model(|| {
        let c = P(Box::into_raw(Chan::new(8, 0).unwrap()));
        let t = thread::spawn(move || {
            let c = c;
            // SAFETY: freed only after our value was received.
            assert_eq!(send(unsafe { &*c.0 }, 42), 0);
        });
        // SAFETY: live until we free it below.
        let (rc, v) = recv(unsafe { &*c.0 });
        assert_eq!((rc, v), (0, 42));
        // SAFETY: our receive returned: the sender no longer touches the channel.
        drop(unsafe { Box::from_raw(c.0) });
        t.join().unwrap();
    });
}

/// The receiver may come first or second; the sender frees after its send returns.
#[test]
fn unbuffered_send_then_free() {
    model(|| {
        let c = P(Box::into_raw(Chan::new(8, 0).unwrap()));
        let t = thread::spawn(move || {
            let c = c;
            // SAFETY: freed only after this receive returned.
            recv(unsafe { &*c.0 })
        });
        // SAFETY: live until freed below.
        assert_eq!(send(unsafe { &*c.0 }, 7), 0);
        let got = t.join().unwrap();
        assert_eq!(got, (0, 7));
        // SAFETY: both sides returned.
        drop(unsafe { Box::from_raw(c.0) });
    });
}

/// Capacity 1: a sender sends two values (the second waits for room), the
/// receiver takes both in order, then close: -EPIPE for receive and second close.
#[test]
fn buffered_fifo_then_close() {
    model(|| {
        let c = Arc::new(*Chan::new(8, 1).unwrap());
        let c1 = c.clone();
        let t = thread::spawn(move || {
            assert_eq!(send(&c1, 1), 0);
            assert_eq!(send(&c1, 2), 0);
        });
        assert_eq!(recv(&c), (0, 1));
        assert_eq!(recv(&c), (0, 2));
        t.join().unwrap();
        assert_eq!(c.close(), 0);
        assert_eq!(recv(&c).0, -libc::EPIPE);
        assert_eq!(c.close(), -libc::EPIPE);
    });
}

/// Close races with a receiver: it gets -EPIPE (woken, or finding it closed); the
/// channel is left with no waiter.
#[test]
fn close_wakes_receiver() {
    model(|| {
        let c = Arc::new(*Chan::new(8, 0).unwrap());
        let cr = c.clone();
        let r = thread::spawn(move || recv(&cr));
        assert_eq!(c.close(), 0);
        assert_eq!(r.join().unwrap().0, -libc::EPIPE);
        assert!(!c.has_waiters());
    });
}

/// Close races with a sender on a full buffer: -EPIPE (woken, or finding it
/// closed), and the buffered value is still received.
#[test]
fn close_wakes_sender() {
    model(|| {
        let c = Arc::new(*Chan::new(8, 1).unwrap());
        assert_eq!(send(&c, 1), 0);
        let cs = c.clone();
        let s = thread::spawn(move || send(&cs, 2));
        assert_eq!(c.close(), 0);
        assert_eq!(s.join().unwrap(), -libc::EPIPE);
        assert_eq!(recv(&c), (0, 1));
        assert_eq!(recv(&c).0, -libc::EPIPE);
        assert!(!c.has_waiters());
    });
}

/// A blocked receiver and a sender race with close: a value is either delivered
/// or the sender gets -EPIPE (never both, never lost). (3 threads: the slowest.)
#[test]
fn close_races_transfer() {
    model3(|| {
        let c = Arc::new(*Chan::new(8, 0).unwrap());
        let cr = c.clone();
        let r = thread::spawn(move || recv(&cr));
        let cs = c.clone();
        let s = thread::spawn(move || send(&cs, 5));
        assert_eq!(c.close(), 0);
        let (rr, v) = r.join().unwrap();
        let rs = s.join().unwrap();
        if rs == 0 {
            assert_eq!((rr, v), (0, 5));
        } else {
            assert_eq!((rs, rr), (-libc::EPIPE, -libc::EPIPE));
        }
        assert!(!c.has_waiters());
    });
}

fn sel(cases: &mut [Case], timeout: i64) -> i32 {
    // SAFETY: every caller builds its cases with `case` from channels it keeps alive
    // across the call and 8-byte locals, as the channels' 8-byte elements need.
    unsafe { select(cases, timeout) }
}

fn case(c: &Chan, op: i32, v: &mut u64) -> Case {
    Case {
        chan: c as *const Chan as *mut Chan,
        op,
        elem: v as *mut u64 as *mut u8,
        closed: 0,
    }
}

/// A blocking select over two unbuffered channels with a sender on each: it fires
/// exactly once; the other value is then received normally; nothing is left queued.
#[test]
fn select_two_senders() {
    model3(|| {
        let a = Arc::new(*Chan::new(8, 0).unwrap());
        let b = Arc::new(*Chan::new(8, 0).unwrap());
        let a1 = a.clone();
        let ta = thread::spawn(move || assert_eq!(send(&a1, 1), 0));
        let b1 = b.clone();
        let tb = thread::spawn(move || assert_eq!(send(&b1, 2), 0));
        let (mut x, mut y) = (0u64, 0u64);
        let mut cs = [case(&a, RECV, &mut x), case(&b, RECV, &mut y)];
        let i = sel(&mut cs, -1);
        assert!(i == 0 || i == 1);
        assert_eq!(cs[i as usize].closed, 0);
        let other = if i == 0 { recv(&b) } else { recv(&a) };
        if i == 0 {
            assert_eq!((x, other), (1, (0, 2)));
        } else {
            assert_eq!((y, other), (2, (0, 1)));
        }
        ta.join().unwrap();
        tb.join().unwrap();
        assert!(!a.has_waiters() && !b.has_waiters());
    });
}

/// A timed select against a sender that sends with try_send (so it never blocks):
/// the timeout and the sender race for the claim. Either the value arrives through
/// the select, or the select times out and the value is still there or was never
/// sent; never both, never lost; nothing stays queued.
#[test]
fn select_timeout_races_sender() {
    model(|| {
        let a = Arc::new(*Chan::new(8, 0).unwrap());
        let a1 = a.clone();
        let t = thread::spawn(move || try_send(&a1, 9));
        let mut x = 0u64;
        let mut cs = [case(&a, RECV, &mut x)];
        let r = sel(&mut cs, 1);
        let sent = t.join().unwrap();
        if r == 0 {
            assert_eq!((sent, x), (0, 9));
        } else {
            assert_eq!(r, -libc::ETIMEDOUT);
            assert_eq!(sent, -libc::EAGAIN);
        }
        assert!(!a.has_waiters());
    });
}

/// Two selects that each send on one channel and receive on the other (the same
/// two channels, opposite orders): no deadlock (address lock order), and the
/// exchange is consistent.
#[test]
fn select_cross() {
    model(|| {
        let a = Arc::new(*Chan::new(8, 0).unwrap());
        let b = Arc::new(*Chan::new(8, 0).unwrap());
        let (a1, b1) = (a.clone(), b.clone());
        let t = thread::spawn(move || {
            let (mut out, mut inp) = (1u64, 0u64);
            let mut cs = [case(&a1, SEND, &mut out), case(&b1, RECV, &mut inp)];
            let i = sel(&mut cs, -1);
            (i, inp)
        });
        // The main thread does the mirror image, but only as a try, then blocks on
        // whatever the other side still offers.
        let (mut out, mut inp) = (2u64, 0u64);
        let mut cs = [case(&b, SEND, &mut out), case(&a, RECV, &mut inp)];
        let mine = sel(&mut cs, -1);
        let (theirs, their_in) = t.join().unwrap();
        // Exactly one transfer happened: main received 1 (theirs = send on a) or
        // they received 2 (main sent on b).
        if mine == 1 {
            assert_eq!((theirs, inp), (0, 1));
        } else {
            assert_eq!((mine, theirs, their_in), (0, 1, 2));
        }
        assert!(!a.has_waiters() && !b.has_waiters());
    });
}

/// Wait group: two workers call done; the waiter frees the group when its wait
/// returns (`wait; free`): the last done must be finished with it.
#[test]
fn waitgroup_wait_then_free() {
    model3(|| {
        let wg = P(Box::into_raw(Box::new(WaitGroup::new())));
        // SAFETY: live until freed below.
        assert_eq!(unsafe { &*wg.0 }.add(2), 0);
        let ts: Vec<_> = (0..2)
            .map(|_| {
                thread::spawn(move || {
                    let wg = wg;
                    // SAFETY: freed only after the waiter's wait returned, which
                    // needs this done.
                    assert_eq!(unsafe { &*wg.0 }.add(-1), 0);
                })
            })
            .collect();
        // SAFETY: live until freed below, after this wait.
        assert_eq!(unsafe { &*wg.0 }.wait(), 0);
        // SAFETY: wait returned: no done touches it any more.
        drop(unsafe { Box::from_raw(wg.0) });
        for t in ts {
            t.join().unwrap();
        }
    });
}

/// Mutex: two threads and the main thread increment a counter under it (waiters
/// queue, are woken or handed the lock); unlock of an unlocked mutex is -EPERM.
#[test]
fn mutex_counter() {
    model3(|| {
        let m = Arc::new(Mutex::new());
        let n = Arc::new(loom::sync::atomic::AtomicUsize::new(0));
        let ts: Vec<_> = (0..2)
            .map(|_| {
                let (m, n) = (m.clone(), n.clone());
                thread::spawn(move || {
                    assert_eq!(m.lock(), 0);
                    // Not atomic as a whole: only the mutex makes it exact.
                    let v = n.load(loom::sync::atomic::Ordering::Relaxed);
                    n.store(v + 1, loom::sync::atomic::Ordering::Relaxed);
                    assert_eq!(m.unlock(), 0);
                })
            })
            .collect();
        for t in ts {
            t.join().unwrap();
        }
        assert_eq!(n.load(loom::sync::atomic::Ordering::Relaxed), 2);
        assert_eq!(m.unlock(), -libc::EPERM);
        assert!(!m.is_busy());
    });
}

// ---------------------------------------------------------------------------------
// cancellation: the context's claim races the waker's (`shim::cancel_my_waits`)

/// A receiver whose context is cancelled while it waits, against a sender that
/// tries once: the value moves (both say 0) or the cancel wins (the receiver says
/// -ECANCELED, the sender finds nobody: -EAGAIN); never both, never lost; the
/// cancelled receiver's sudog is off the queue, and the sender never touches its
/// waiter after it returned.
#[test]
fn recv_cancel_races_sender() {
    model(|| {
        let c = Arc::new(*Chan::new(8, 0).unwrap());
        let c1 = c.clone();
        let t = thread::spawn(move || {
            super::shim::cancel_my_waits();
            recv(&c1)
        });
        let sent = try_send(&c, 5);
        let (rc, v) = t.join().unwrap();
        if rc == 0 {
            assert_eq!((sent, v), (0, 5));
        } else {
            assert_eq!((rc, sent), (-libc::ECANCELED, -libc::EAGAIN));
        }
        assert!(!c.has_waiters());
    });
}

/// The same for a sender whose context is cancelled, against a receiver that tries
/// once; and a close afterwards finds nobody queued.
#[test]
fn send_cancel_races_receiver() {
    model(|| {
        let c = Arc::new(*Chan::new(8, 0).unwrap());
        let c1 = c.clone();
        let t = thread::spawn(move || {
            super::shim::cancel_my_waits();
            send(&c1, 6)
        });
        let mut v = 0u64;
        // SAFETY: an 8-byte channel and an 8-byte local.
        let got = unsafe { c.recv(&mut v as *mut u64 as *mut u8, false) };
        let sent = t.join().unwrap();
        if sent == 0 {
            assert_eq!((got, v), (0, 6));
        } else {
            assert_eq!((sent, got), (-libc::ECANCELED, -libc::EAGAIN));
        }
        assert_eq!(c.close(), 0);
        assert!(!c.has_waiters());
    });
}

/// A select whose context is cancelled, against a sender that tries once: it fires
/// once (with the value) or returns -ECANCELED with nothing taken and nothing left
/// queued.
#[test]
fn select_cancel_races_sender() {
    model(|| {
        let a = Arc::new(*Chan::new(8, 0).unwrap());
        let b = Arc::new(*Chan::new(8, 0).unwrap());
        let (a1, b1) = (a.clone(), b.clone());
        let t = thread::spawn(move || {
            super::shim::cancel_my_waits();
            let (mut x, mut y) = (0u64, 0u64);
            let mut cs = [case(&a1, RECV, &mut x), case(&b1, RECV, &mut y)];
            (sel(&mut cs, -1), x)
        });
        let sent = try_send(&a, 8);
        let (r, x) = t.join().unwrap();
        if r == 0 {
            assert_eq!((sent, x), (0, 8));
        } else {
            assert_eq!((r, sent), (-libc::ECANCELED, -libc::EAGAIN));
        }
        assert!(!a.has_waiters() && !b.has_waiters());
    });
}

/// A wait group waiter whose context is cancelled, against the zeroing done: the
/// wait returns 0 or -ECANCELED, and the done (which claims under the lock) never
/// touches the cancelled waiter after it left.
#[test]
fn waitgroup_cancel_races_done() {
    model(|| {
        let wg = Arc::new(WaitGroup::new());
        assert_eq!(wg.add(1), 0);
        let w1 = wg.clone();
        let t = thread::spawn(move || {
            super::shim::cancel_my_waits();
            w1.wait()
        });
        assert_eq!(wg.add(-1), 0);
        let r = t.join().unwrap();
        assert!(r == 0 || r == -libc::ECANCELED);
        assert!(!wg.has_waiters());
    });
}

/// A cond waiter whose context is cancelled, against a signal: the wait returns 0
/// or -ECANCELED, with the mutex locked again either way (as pthread's), and nobody
/// is left queued; the signal never wakes a waiter its context claimed (`shim`).
#[test]
fn cond_cancel_races_signal() {
    model(|| {
        let m = Arc::new(Mutex::new());
        // SAFETY: `m` outlives the cond: the closure's Arc is dropped after `cv`'s.
        let cv = Arc::new(unsafe { Cond::new(&*m) });
        let (m1, c1) = (m.clone(), cv.clone());
        let t = thread::spawn(move || {
            super::shim::cancel_my_waits();
            assert_eq!(m1.lock(), 0);
            let rc = c1.wait(-1);
            // -EPERM unless the wait locked the mutex again.
            assert_eq!(m1.unlock(), 0);
            rc
        });
        assert_eq!(cv.signal(), 0);
        let rc = t.join().unwrap();
        assert!(rc == 0 || rc == -libc::ECANCELED);
        assert!(!cv.has_waiters());
    });
}

/// A broadcast to two waiters (each waits until a flag, set under the mutex, is
/// up): both return holding the mutex, and the woken waiters leave the cond's queue
/// alone (broadcast hands each off its private list before the wake: a waiter that
/// found itself still linked there once "unlinked" itself from the cond's queue
/// without the cond's lock, which loom reports as a race on the queue).
#[test]
fn cond_broadcast_wakes_two() {
    use loom::cell::UnsafeCell;
    struct Flag(UnsafeCell<bool>);
    // SAFETY: the flag is read and written only with the mutex held.
    unsafe impl Sync for Flag {}
    // Two preemptions: both waiters must be parked when the broadcast comes (a bound
    // of 1 never gets there, and misses the bug this model was written for).
    model_bound(2, || {
        let m = Arc::new(Mutex::new());
        // SAFETY: `m` outlives the cond: the closure's Arc is dropped after `cv`'s.
        let cv = Arc::new(unsafe { Cond::new(&*m) });
        let flag = Arc::new(Flag(UnsafeCell::new(false)));
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let (m1, c1, f1) = (m.clone(), cv.clone(), flag.clone());
                thread::spawn(move || {
                    assert_eq!(m1.lock(), 0);
                    // SAFETY: the mutex is held whenever the flag is touched.
                    while !f1.0.with(|p| unsafe { *p }) {
                        assert_eq!(c1.wait(-1), 0);
                    }
                    assert_eq!(m1.unlock(), 0);
                })
            })
            .collect();
        assert_eq!(m.lock(), 0);
        // SAFETY: the mutex is held.
        flag.0.with_mut(|p| unsafe { *p = true });
        assert_eq!(m.unlock(), 0);
        assert_eq!(cv.broadcast(), 0);
        for t in waiters {
            t.join().unwrap();
        }
        assert!(!cv.has_waiters());
    });
}

/// A semaphore request whose context is cancelled, against the release that would
/// serve it: it gets the token (0) or gives up (-ECANCELED) and the token stays
/// free; never both, never lost, nobody left queued.
#[test]
fn sem_cancel_races_release() {
    model(|| {
        let s = Arc::new(Semaphore::new(1));
        assert_eq!(s.try_acquire(1), 1);
        let s1 = s.clone();
        let t = thread::spawn(move || {
            super::shim::cancel_my_waits();
            s1.acquire(
                1,
                Wait::Interruptible { timeout_ns: -1 },
                WaitReason::Semaphore,
            )
        });
        assert_eq!(s.release(1), 0);
        let rc = t.join().unwrap();
        let free = s.try_acquire(1);
        if rc == 0 {
            assert_eq!(free, 0);
        } else {
            assert_eq!((rc, free), (-libc::ECANCELED, 1));
        }
        assert!(!s.has_waiters());
    });
}

// ---------------------------------------------------------------------------------
// rwmutex: a read count spread over slots, a writer that adds them up

/// The data a rwmutex guards: readers read it together, a writer writes it alone
/// (loom reports a read that overlaps the write as a data race).
struct Guarded(loom::cell::UnsafeCell<u64>);
// SAFETY: accessed only under the rwmutex of each scenario (which loom checks).
unsafe impl Sync for Guarded {}

/// A fresh mutex and the data it guards (0).
fn rw_and_data() -> (Arc<RwMutex>, Arc<Guarded>) {
    (
        Arc::new(RwMutex::new()),
        Arc::new(Guarded(loom::cell::UnsafeCell::new(0))),
    )
}

/// A reader that comes in through slot `inn` and leaves through slot `out` (a
/// different one: it moved CPUs in between), reading the data inside. Returns what it
/// read.
fn read_through(m: &RwMutex, d: &Guarded, inn: usize, out: usize) -> u64 {
    m.rlock_at(inn);
    // SAFETY: read-locked.
    let v = d.0.with(|p| unsafe { *p });
    assert_eq!(m.runlock_at(out), 0);
    v
}

/// `read_through` on a thread of its own.
fn reader_thread(
    m: &Arc<RwMutex>,
    d: &Arc<Guarded>,
    inn: usize,
    out: usize,
) -> thread::JoinHandle<u64> {
    let (m, d) = (m.clone(), d.clone());
    thread::spawn(move || read_through(&m, &d, inn, out))
}

/// A writer adds one to the data under the write lock.
fn write_once(m: &RwMutex, d: &Guarded) {
    assert_eq!(m.lock(), 0);
    // SAFETY: write-locked.
    d.0.with_mut(|p| unsafe { *p += 1 });
    assert_eq!(m.unlock(), 0);
}

/// A reader that comes in through slot 0 and leaves through slot 1 (it moved CPUs),
/// against a writer: the writer gets in only when the reader is out, and the reader
/// only when the writer is; afterwards the mutex is free (the slots, +1 and -1 or
/// folded, add up to 0) and a read unlock of it through slot 1 is refused. After one
/// more write lock and unlock (which folds the slots) a read unlock through slot 0
/// is refused too: where the reader left while the writer waited, nothing had
/// folded its +1 in slot 0 before.
#[test]
fn rwmutex_reader_moves_against_writer() {
    model(|| {
        let (m, d) = rw_and_data();
        let t = reader_thread(&m, &d, 0, 1);
        write_once(&m, &d);
        let seen = t.join().unwrap();
        assert!(seen == 0 || seen == 1);
        assert!(!m.is_busy());
        assert_eq!(m.runlock_at(1), -libc::EPERM);
        assert_eq!(m.try_lock(), 0);
        assert_eq!(m.unlock(), 0);
        assert_eq!(m.runlock_at(0), -libc::EPERM);
        assert_eq!(m.runlock_at(1), -libc::EPERM);
        assert!(!m.is_busy());
    });
}

/// Two readers on different slots (one of them leaving through the other's) and a
/// writer: readers may be in together, the writer alone; whoever comes last, the
/// writer is let in exactly once (a stray second token on `writer_sem` would leave
/// the mutex busy at the end).
#[test]
fn rwmutex_two_readers_one_writer() {
    model3(|| {
        let (m, d) = rw_and_data();
        let readers = [reader_thread(&m, &d, 0, 1), reader_thread(&m, &d, 1, 1)];
        write_once(&m, &d);
        for t in readers {
            t.join().unwrap();
        }
        assert!(!m.is_busy());
        assert_eq!(m.try_lock(), 0);
        assert_eq!(m.try_lock(), -libc::EBUSY);
        assert_eq!(m.unlock(), 0);
        assert!(!m.is_busy());
    });
}

/// A writer's `try_lock` against a reader coming and going: it gets the lock (0)
/// only with the reader out, else gives up (-EBUSY) leaving nothing behind: no
/// token on `writer_sem`, no reader held back.
#[test]
fn rwmutex_try_lock_races_reader() {
    model(|| {
        let (m, d) = rw_and_data();
        let t = reader_thread(&m, &d, 1, 0);
        if m.try_lock() == 0 {
            // SAFETY: write-locked.
            d.0.with_mut(|p| unsafe { *p += 1 });
            assert_eq!(m.unlock(), 0);
        }
        t.join().unwrap();
        assert!(!m.is_busy());
        assert_eq!(m.try_lock(), 0);
        assert_eq!(m.unlock(), 0);
    });
}

/// A reader that leaves through another slot than it came in by, a writer that
/// takes the lock twice, and a reader that stays on one slot: a reader that saw the
/// first wait's `W_WAIT` and adds up the slots late (while the other reader folds
/// them, or after the writer has come and gone) must not claim the second wait for
/// the writer while a reader is inside.
#[test]
fn rwmutex_late_claim_against_second_writer() {
    model3(|| {
        let (m, d) = rw_and_data();
        let mover = reader_thread(&m, &d, 0, 1);
        let (m2, d2) = (m.clone(), d.clone());
        let writer = thread::spawn(move || {
            write_once(&m2, &d2);
            write_once(&m2, &d2);
        });
        read_through(&m, &d, 1, 1);
        mover.join().unwrap();
        writer.join().unwrap();
        assert!(!m.is_busy());
    });
}
