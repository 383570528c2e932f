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

fn run(cap: usize, size: usize, ops: &[Op]) -> Result<(), TestCaseError> {
    let c = gr_chan_new(size, cap);
    prop_assert!(!c.is_null());
    let mut m = Model {
        cap,
        q: VecDeque::new(),
        closed: false,
    };
    let mut out = vec![0u8; size.max(1)];
    let outp = out.as_mut_ptr() as *mut c_void;
    for (step, o) in ops.iter().enumerate() {
        match *o {
            Op::TrySend(v) => {
                let e = elem(v, size);
                let rc = gr_chan_try_send(c, e.as_ptr() as *const c_void);
                prop_assert_eq!(rc, m.send(v), "step {} {:?}", step, o);
            }
            Op::TryRecv => {
                out.fill(0xEE);
                let rc = gr_chan_try_recv(c, outp);
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
                let mut k = gr_case {
                    chan: c,
                    op: GR_SEND,
                    elem: e.as_mut_ptr() as *mut c_void,
                    closed: 7,
                };
                let rc = unsafe_select(&mut k, 1);
                match m.send(v) {
                    0 => prop_assert_eq!((rc, k.closed), (0, 0)),
                    e if e == -libc::EPIPE => prop_assert_eq!((rc, k.closed), (0, 1)),
                    e => prop_assert_eq!(rc, e),
                }
            }
            Op::SelectRecv => {
                let mut k = gr_case {
                    chan: c,
                    op: GR_RECV,
                    elem: outp,
                    closed: 7,
                };
                let rc = unsafe_select(&mut k, 1);
                match m.recv() {
                    Ok(v) => {
                        prop_assert_eq!((rc, k.closed), (0, 0));
                        prop_assert_eq!(&out[..size], &elem(v, size)[..]);
                    }
                    Err(e) if e == -libc::EPIPE => prop_assert_eq!((rc, k.closed), (0, 1)),
                    Err(e) => prop_assert_eq!(rc, e),
                }
            }
            Op::SelectBoth(v) => {
                let mut e = elem(v, size);
                let mut k = [
                    gr_case {
                        chan: c,
                        op: GR_SEND,
                        elem: e.as_mut_ptr() as *mut c_void,
                        closed: 7,
                    },
                    gr_case {
                        chan: c,
                        op: GR_RECV,
                        elem: outp,
                        closed: 7,
                    },
                ];
                let rc = unsafe_select(&mut k[0], 2);
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
                let rc = gr_chan_close(c);
                prop_assert_eq!(rc, if m.closed { -libc::EPIPE } else { 0 });
                m.closed = true;
            }
            Op::Len => {
                prop_assert_eq!(gr_chan_len(c), m.q.len());
                prop_assert_eq!(gr_chan_cap(c), cap);
            }
        }
    }
    prop_assert_eq!(gr_chan_len(c), m.q.len());
    prop_assert_eq!(gr_chan_free(c), 0);
    Ok(())
}

fn unsafe_select(k: &mut gr_case, n: usize) -> i32 {
    gr_select(k as *mut gr_case, n, 0)
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
    let mut next_out = 0u8;
    for v in 0..1000u32 {
        let e = elem(v as u8, 40);
        if gr_chan_try_send(c, e.as_ptr() as *const c_void) == -libc::EAGAIN {
            let mut out = [0u8; 40];
            assert_eq!(gr_chan_try_recv(c, out.as_mut_ptr() as *mut c_void), 0);
            assert_eq!(&out[..], &elem(next_out, 40)[..]);
            next_out = next_out.wrapping_add(1);
            assert_eq!(gr_chan_try_send(c, e.as_ptr() as *const c_void), 0);
        }
    }
    assert_eq!(gr_chan_len(c), 5);
    assert_eq!(gr_chan_close(c), 0);
    assert_eq!(gr_chan_free(c), 0);
}
