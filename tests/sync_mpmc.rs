//! Many producers, many consumers, through the C ABI, on 2 processors: producers
//! (goroutines and one plain thread) send (producer, sequence) pairs, consumers
//! (goroutines) receive them, each side mixing blocking calls, try calls and
//! selects with timeouts. Checked: nothing is lost (every producer's count and sum
//! arrive), nothing is duplicated or reordered (each consumer sees every producer's
//! sequence numbers strictly increasing, and the totals match exactly).
//!
//! `mpmc_5s` runs in `make test`; `mpmc_soak_60s` (capacities 0, 1 and 64, 20 s
//! each) in `make stress`.

use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use goroutine::ffi::core::{gr_init, gr_join, gr_maxprocs, gr_spawn, gr_yield};
use goroutine::ffi::sync::*;

/// One test at a time: the runtime is per process.
static SERIAL: Mutex<()> = Mutex::new(());

const PRODUCERS: usize = 6; // the last one is a plain thread
const CONSUMERS: usize = 5;

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct Item {
    producer: u64,
    seq: u64,
}

struct Shared {
    data: *mut gr_chan,
    /// Never ready: a second select case.
    never: *mut gr_chan,
    stop: AtomicBool,
    sent: [AtomicU64; PRODUCERS],
    sent_sum: [AtomicU64; PRODUCERS],
    recvd: [AtomicU64; PRODUCERS],
    recvd_sum: [AtomicU64; PRODUCERS],
    timeouts: AtomicU64,
    producers_left: *mut gr_wg,
    consumers_left: *mut gr_wg,
}
// SAFETY: the handles are raw pointers to the library's channels and wait groups,
// which any thread may use at once; the rest is atomics.
unsafe impl Sync for Shared {}

struct Arg {
    s: *const Shared,
    id: usize,
}

fn rng(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

fn produce(s: &Shared, id: usize, goroutine: bool) {
    let mut r = 0x9E37_79B9_7F4A_7C15u64 ^ (id as u64 + 1);
    let mut seq = 0u64;
    while !s.stop.load(Ordering::Relaxed) {
        let mut it = Item {
            producer: id as u64,
            seq,
        };
        let p = &mut it as *mut Item as *mut c_void;
        let rc = match rng(&mut r) % 4 {
            // SAFETY: the handles in Shared are live until run() frees them, after every user is joined; p points to an Item, the element size.
            0 => unsafe { gr_chan_send(s.data, p) },
            1 => loop {
                // SAFETY: as for the send above.
                match unsafe { gr_chan_try_send(s.data, p) } {
                    rc if rc == -libc::EAGAIN => {
                        if s.stop.load(Ordering::Relaxed) {
                            break rc;
                        }
                        if goroutine {
                            gr_yield();
                        } else {
                            std::thread::yield_now();
                        }
                    }
                    rc => break rc,
                }
            },
            k => {
                let mut cases = [
                    gr_case {
                        chan: s.never,
                        op: GR_RECV,
                        elem: p,
                        closed: 0,
                    },
                    gr_case {
                        chan: s.data,
                        op: GR_SEND,
                        elem: p,
                        closed: 0,
                    },
                ];
                let timeout = if k == 2 {
                    0
                } else {
                    (rng(&mut r) % 50_000) as i64
                };
                // SAFETY: two cases on live handles (as for the send above), each
                // elem p, an Item, the element size of both channels.
                match unsafe { gr_select(cases.as_mut_ptr(), 2, timeout) } {
                    1 => 0,
                    rc => {
                        assert!(
                            rc == -libc::ETIMEDOUT || rc == -libc::EAGAIN,
                            "select: {rc}"
                        );
                        s.timeouts.fetch_add(1, Ordering::Relaxed);
                        if rc == -libc::EAGAIN && goroutine {
                            gr_yield();
                        }
                        rc
                    }
                }
            }
        };
        if rc == 0 {
            s.sent[id].fetch_add(1, Ordering::Relaxed);
            s.sent_sum[id].fetch_add(seq, Ordering::Relaxed);
            seq += 1;
        }
    }
    // SAFETY: the handles in Shared are live until run() frees them, after every user is joined.
    assert_eq!(unsafe { gr_wg_done(s.producers_left) }, 0);
}

/// A goroutine body.
///
/// # Safety
/// `arg` is an `Arg` whose `Shared`, like the Arg, outlives the goroutine.
unsafe extern "C" fn producer(arg: *mut c_void) {
    // SAFETY: the test keeps Arg and Shared alive until every goroutine is joined.
    let (a, s) = unsafe {
        let a = &*(arg as *const Arg);
        (a, &*a.s)
    };
    produce(s, a.id, true);
}

/// A goroutine body.
///
/// # Safety
/// `arg` is an `Arg` whose `Shared`, like the Arg, outlives the goroutine.
unsafe extern "C" fn consumer(arg: *mut c_void) {
    // SAFETY: the test keeps Arg and Shared alive until every goroutine is joined.
    let (a, s) = unsafe {
        let a = &*(arg as *const Arg);
        (a, &*a.s)
    };
    let mut r = 0xD1B5_4A32_D192_ED03u64 ^ (a.id as u64 + 100);
    let mut last = [u64::MAX; PRODUCERS];
    loop {
        let mut it = Item::default();
        let p = &mut it as *mut Item as *mut c_void;
        let rc = match rng(&mut r) % 4 {
            // SAFETY: the handles in Shared are live until run() frees them, after every user is joined; p points to an Item, the element size.
            0 => unsafe { gr_chan_recv(s.data, p) },
            // SAFETY: as for the receive above.
            1 => match unsafe { gr_chan_try_recv(s.data, p) } {
                rc if rc == -libc::EAGAIN => {
                    gr_yield();
                    continue;
                }
                rc => rc,
            },
            k => {
                let mut cases = [
                    gr_case {
                        chan: s.data,
                        op: GR_RECV,
                        elem: p,
                        closed: 0,
                    },
                    gr_case {
                        chan: s.never,
                        op: GR_RECV,
                        elem: p,
                        closed: 0,
                    },
                ];
                let timeout = if k == 2 {
                    -1
                } else {
                    1 + (rng(&mut r) % 50_000) as i64
                };
                // SAFETY: two cases on live handles (as for the receive above), each
                // elem p, an Item, the element size of both channels.
                match unsafe { gr_select(cases.as_mut_ptr(), 2, timeout) } {
                    0 if cases[0].closed == 1 => -libc::EPIPE,
                    0 => 0,
                    rc => {
                        assert_eq!(rc, -libc::ETIMEDOUT);
                        s.timeouts.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                }
            }
        };
        if rc == -libc::EPIPE {
            break;
        }
        assert_eq!(rc, 0);
        let pr = it.producer as usize;
        assert!(pr < PRODUCERS, "corrupt item");
        assert!(
            last[pr] == u64::MAX || it.seq > last[pr],
            "producer {pr}: seq {} after {}",
            it.seq,
            last[pr]
        );
        last[pr] = it.seq;
        s.recvd[pr].fetch_add(1, Ordering::Relaxed);
        s.recvd_sum[pr].fetch_add(it.seq, Ordering::Relaxed);
    }
    // SAFETY: the handles in Shared are live until run() frees them, after every user is joined.
    assert_eq!(unsafe { gr_wg_done(s.consumers_left) }, 0);
}

fn run(cap: usize, secs: u64) {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    gr_init(2);
    gr_maxprocs(2);
    let s = Box::new(Shared {
        data: gr_chan_new(std::mem::size_of::<Item>(), cap),
        never: gr_chan_new(std::mem::size_of::<Item>(), 0),
        stop: AtomicBool::new(false),
        sent: Default::default(),
        sent_sum: Default::default(),
        recvd: Default::default(),
        recvd_sum: Default::default(),
        timeouts: AtomicU64::new(0),
        producers_left: gr_wg_new(),
        consumers_left: gr_wg_new(),
    });
    assert!(![s.data, s.never].iter().any(|c| c.is_null()));
    assert!(!s.producers_left.is_null() && !s.consumers_left.is_null());
    // SAFETY: the handles (checked above) are live until the frees at the end.
    unsafe {
        assert_eq!(gr_wg_add(s.producers_left, PRODUCERS as i64), 0);
        assert_eq!(gr_wg_add(s.consumers_left, CONSUMERS as i64), 0);
    }
    let sp: *const Shared = &*s;
    let pargs: Vec<Arg> = (0..PRODUCERS).map(|id| Arg { s: sp, id }).collect();
    let cargs: Vec<Arg> = (0..CONSUMERS).map(|id| Arg { s: sp, id }).collect();
    let mut ids = Vec::new();
    for a in &cargs {
        // SAFETY: consumer may run anywhere with its Arg, which (with Shared) stays
        // alive until every goroutine is joined below.
        ids.push(unsafe { gr_spawn(Some(consumer), a as *const Arg as *mut c_void) });
    }
    for a in &pargs[..PRODUCERS - 1] {
        // SAFETY: as for the consumers, with producer.
        ids.push(unsafe { gr_spawn(Some(producer), a as *const Arg as *mut c_void) });
    }
    assert!(ids.iter().all(|&id| id > 0));
    struct SendPtr(*const Shared);
    // SAFETY: Shared is Sync, and outlives the thread the pointer goes to.
    unsafe impl Send for SendPtr {}
    let plain = SendPtr(sp);
    let t = std::thread::spawn(move || {
        let p = plain;
        // SAFETY: Shared outlives the thread (joined below).
        produce(unsafe { &*p.0 }, PRODUCERS - 1, false)
    });
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(secs));
    s.stop.store(true, Ordering::Relaxed);
    // SAFETY: the handles are live until the frees at the end.
    unsafe {
        assert_eq!(gr_wg_wait(s.producers_left), 0);
        t.join().unwrap();
        assert_eq!(gr_chan_close(s.data), 0);
        assert_eq!(gr_wg_wait(s.consumers_left), 0);
    }
    for id in ids {
        assert_eq!(gr_join(id), 0);
    }
    let mut total = 0;
    for p in 0..PRODUCERS {
        let (n, sum) = (
            s.sent[p].load(Ordering::Relaxed),
            s.sent_sum[p].load(Ordering::Relaxed),
        );
        assert_eq!(s.recvd[p].load(Ordering::Relaxed), n, "producer {p}: count");
        assert_eq!(
            s.recvd_sum[p].load(Ordering::Relaxed),
            sum,
            "producer {p}: sum"
        );
        assert_eq!(
            sum,
            n * n.saturating_sub(1) / 2,
            "producer {p}: sequence sum"
        );
        assert!(n > 0, "producer {p} sent nothing");
        total += n;
    }
    eprintln!(
        "mpmc cap={cap}: {total} items in {:.1} s ({:.0} ns/item), {} timeouts/would-blocks",
        t0.elapsed().as_secs_f64(),
        t0.elapsed().as_nanos() as f64 / total as f64,
        s.timeouts.load(Ordering::Relaxed)
    );
    // SAFETY: every goroutine and the thread that used the handles is joined, and
    // nothing uses them after these frees.
    unsafe {
        assert_eq!(gr_chan_free(s.data), 0);
        assert_eq!(gr_chan_free(s.never), 0);
        assert_eq!(gr_wg_free(s.producers_left), 0);
        assert_eq!(gr_wg_free(s.consumers_left), 0);
    }
}

#[test]
fn mpmc_5s() {
    // 5 s over the three capacities.
    run(0, 2);
    run(1, 1);
    run(64, 2);
}

#[test]
#[ignore = "60 s soak: make stress"]
fn mpmc_soak_60s() {
    for cap in [0, 1, 64] {
        run(cap, 20);
    }
}
