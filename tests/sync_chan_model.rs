//! Property tests: random sequences of non-blocking channel operations (try_send,
//! try_recv, the same as one-case and two-case try selects, close, len) on a buffered
//! channel of random capacity and element size, compared step by step with a
//! `VecDeque` model. Run from a plain thread through the C ABI, so every result is
//! deterministic: the model says exactly what each call must return.

use std::collections::VecDeque;
use std::ffi::c_void;

use goroutine::ffi::sync::*;
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    TrySend(u8),
    TryRecv,
    SelectSend(u8),
    SelectRecv,
    /// A two-case try select: send `v` and receive on the same channel.
    SelectBoth(u8),
    Close,
    Len,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => any::<u8>().prop_map(Op::TrySend),
        4 => Just(Op::TryRecv),
        2 => any::<u8>().prop_map(Op::SelectSend),
        2 => Just(Op::SelectRecv),
        2 => any::<u8>().prop_map(Op::SelectBoth),
        1 => Just(Op::Close),
        1 => Just(Op::Len),
    ]
}

/// An element of `size` bytes derived from `v` (every byte differs, so a torn or
/// misplaced copy shows).
fn elem(v: u8, size: usize) -> Vec<u8> {
    (0..size).map(|i| v.wrapping_add(i as u8 * 31)).collect()
}

struct Model {
    cap: usize,
    q: VecDeque<u8>,
    closed: bool,
}

impl Model {
    /// What a send must return, and the model's new state.
    fn send(&mut self, v: u8) -> i32 {
        if self.closed {
            -libc::EPIPE
        } else if self.q.len() < self.cap {
            self.q.push_back(v);
            0
        } else {
            -libc::EAGAIN
        }
    }

    fn recv(&mut self) -> Result<u8, i32> {
        match self.q.pop_front() {
            Some(v) => Ok(v),
            None if self.closed => Err(-libc::EPIPE),
            None => Err(-libc::EAGAIN),
        }
    }
}

/// One channel made by gr_chan_new, and the calls these tests make on it. The
/// handle stays live until `free`, which consumes it; every element pointer passed
/// on is checked against the element size first.
struct Ch {
    c: *mut gr_chan,
    size: usize,
}

impl Ch {
    fn try_send(&self, e: &[u8]) -> i32 {
        assert!(e.len() >= self.size);
        // SAFETY: c is live (until free), and e holds at least size readable bytes.
        unsafe { gr_chan_try_send(self.c, e.as_ptr() as *const c_void) }
    }

    fn try_recv(&self, out: &mut [u8]) -> i32 {
        assert!(out.len() >= self.size);
        // SAFETY: c is live (until free), and out holds at least size writable bytes.
        unsafe { gr_chan_try_recv(self.c, out.as_mut_ptr() as *mut c_void) }
    }

    /// A try select (timeout 0) over cases on this channel.
    ///
    /// # Safety
    /// Each case's `elem` points to at least `size` bytes (writable for GR_RECV)
    /// that stay valid, and are not otherwise accessed, across the call.
    unsafe fn try_select(&self, k: &mut [gr_case]) -> i32 {
        assert!(k.iter().all(|k| k.chan == self.c));
        // SAFETY: every case names this live channel (asserted), and its elem is as
        // gr_select needs it (our contract).
        unsafe { gr_select(k.as_mut_ptr(), k.len(), 0) }
    }

    fn close(&self) -> i32 {
        // SAFETY: c is live (until free).
        unsafe { gr_chan_close(self.c) }
    }

    fn len(&self) -> usize {
        // SAFETY: c is live (until free).
        unsafe { gr_chan_len(self.c) }
    }

    fn cap(&self) -> usize {
        // SAFETY: c is live (until free).
        unsafe { gr_chan_cap(self.c) }
    }

    fn free(self) -> i32 {
        // SAFETY: c is live, and `self` is consumed: nothing uses it after this.
        unsafe { gr_chan_free(self.c) }
    }
}

fn run(cap: usize, size: usize, ops: &[Op]) -> Result<(), TestCaseError> {
    let c = gr_chan_new(size, cap);
    prop_assert!(!c.is_null());
    let c = Ch { c, size };
    let mut m = Model {
        cap,
        q: VecDeque::new(),
        closed: false,
    };
    let mut out = vec![0u8; size.max(1)];
    for (step, o) in ops.iter().enumerate() {
        match *o {
            Op::TrySend(v) => {
                let e = elem(v, size);
                let rc = c.try_send(&e);
                prop_assert_eq!(rc, m.send(v), "step {} {:?}", step, o);
            }
            Op::TryRecv => {
                out.fill(0xEE);
                let rc = c.try_recv(&mut out);
                match m.recv() {
                    Ok(v) => {
                        prop_assert_eq!(rc, 0, "step {} {:?}", step, o);
                        prop_assert_eq!(&out[..size], &elem(v, size)[..]);
                    }
                    Err(e) => {
                        prop_assert_eq!(rc, e, "step {} {:?}", step, o);
                        prop_assert!(out.iter().all(|&b| b == 0xEE), "elem written on failure");
                    }
                }
            }
            Op::SelectSend(v) => {
                let mut e = elem(v, size);
                let mut k = [gr_case {
                    chan: c.c,
                    op: GR_SEND,
                    elem: e.as_mut_ptr() as *mut c_void,
                    closed: 7,
                }];
                // SAFETY: the elem is e, size bytes, alive across the call.
                let rc = unsafe { c.try_select(&mut k) };
                match m.send(v) {
                    0 => prop_assert_eq!((rc, k[0].closed), (0, 0)),
                    e if e == -libc::EPIPE => prop_assert_eq!((rc, k[0].closed), (0, 1)),
                    e => prop_assert_eq!(rc, e),
                }
            }
            Op::SelectRecv => {
                let mut k = [gr_case {
                    chan: c.c,
                    op: GR_RECV,
                    elem: out.as_mut_ptr() as *mut c_void,
                    closed: 7,
                }];
                // SAFETY: the elem is out, at least size bytes, alive across the call.
                let rc = unsafe { c.try_select(&mut k) };
                match m.recv() {
                    Ok(v) => {
                        prop_assert_eq!((rc, k[0].closed), (0, 0));
                        prop_assert_eq!(&out[..size], &elem(v, size)[..]);
                    }
                    Err(e) if e == -libc::EPIPE => prop_assert_eq!((rc, k[0].closed), (0, 1)),
                    Err(e) => prop_assert_eq!(rc, e),
                }
            }
            Op::SelectBoth(v) => {
                let mut e = elem(v, size);
                let mut k = [
                    gr_case {
                        chan: c.c,
                        op: GR_SEND,
                        elem: e.as_mut_ptr() as *mut c_void,
                        closed: 7,
                    },
                    gr_case {
                        chan: c.c,
                        op: GR_RECV,
                        elem: out.as_mut_ptr() as *mut c_void,
                        closed: 7,
                    },
                ];
                // SAFETY: the elems are e (size bytes) and out (at least size bytes),
                // both alive across the call.
                let rc = unsafe { c.try_select(&mut k) };
                // Which case may fire: a send when there is room (or closed), a
                // receive when something is buffered (or closed).
                let can_send = m.closed || m.q.len() < m.cap;
                let can_recv = m.closed || !m.q.is_empty();
                match rc {
                    0 => {
                        prop_assert!(can_send, "step {}: send fired without room", step);
                        let r = m.send(v);
                        prop_assert_eq!(k[0].closed, (r == -libc::EPIPE) as i32);
                    }
                    1 => {
                        prop_assert!(can_recv, "step {}: receive fired with nothing", step);
                        match m.recv() {
                            Ok(v) => {
                                prop_assert_eq!(k[1].closed, 0);
                                prop_assert_eq!(&out[..size], &elem(v, size)[..]);
                            }
                            Err(_) => prop_assert_eq!(k[1].closed, 1),
                        }
                    }
                    rc => {
                        prop_assert_eq!(rc, -libc::EAGAIN);
                        prop_assert!(
                            !can_send && !can_recv,
                            "step {}: try select gave up with a ready case",
                            step
                        );
                    }
                }
            }
            Op::Close => {
                let rc = c.close();
                prop_assert_eq!(rc, if m.closed { -libc::EPIPE } else { 0 });
                m.closed = true;
            }
            Op::Len => {
                prop_assert_eq!(c.len(), m.q.len());
                prop_assert_eq!(c.cap(), cap);
            }
        }
    }
    prop_assert_eq!(c.len(), m.q.len());
    prop_assert_eq!(c.free(), 0);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn buffered_channel_matches_queue_model(
        cap in 0usize..9,
        size in prop_oneof![Just(0usize), Just(1), Just(4), Just(8), Just(16), Just(24), Just(100)],
        ops in proptest::collection::vec(op(), 0..200),
    ) {
        run(cap, size, &ops)?;
    }
}

#[test]
fn fifo_across_wraparound_large_elements() {
    // A deterministic long run: capacity 5, 1000 values of 40 bytes through the ring.
    let c = gr_chan_new(40, 5);
    assert!(!c.is_null());
    let c = Ch { c, size: 40 };
    let mut next_out = 0u8;
    for v in 0..1000u32 {
        let e = elem(v as u8, 40);
        if c.try_send(&e) == -libc::EAGAIN {
            let mut out = [0u8; 40];
            assert_eq!(c.try_recv(&mut out), 0);
            assert_eq!(&out[..], &elem(next_out, 40)[..]);
            next_out = next_out.wrapping_add(1);
            assert_eq!(c.try_send(&e), 0);
        }
    }
    assert_eq!(c.len(), 5);
    assert_eq!(c.close(), 0);
    assert_eq!(c.free(), 0);
}
