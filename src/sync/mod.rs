//! Go's communication vocabulary for goroutines and plain threads alike: channels
//! (`chan`), `select`, wait groups, mutexes and the rest of Go's `sync`, and timers
//! that fire on a channel. Every wait goes through
//! `runtime::park::Waiter`: a goroutine parks (its processor runs something else),
//! a plain thread sleeps on a futex.
//!
//! - `chan`: buffered and unbuffered channels of fixed-size elements; the sudog
//!   (one party parked on one queue) and the direct hand-off to a parked party.
//! - `select`: several channel operations at once, with a timeout.
//! - `waitgroup`, `mutex`: `sync.WaitGroup` and `sync.Mutex`.
//! - `rwmutex`, `cond`, `once`: `sync.RWMutex`, `sync.Cond`, `sync.Once`.
//! - `sem`: golang.org/x/sync's weighted semaphore (FIFO), and the counting
//!   semaphore `rwmutex` parks on.
//! - `timerchan`: `time.Timer` and `time.Ticker`, on the runtime's timer heap.
//! - `group`: Go's `errgroup` (a nursery): goroutines bound to one context that
//!   fail together (not modelled under loom: its members are real goroutines).
//! - `shim`: the primitives above come from here, so that the loom model checker
//!   can stand in for the runtime (`RUSTFLAGS="--cfg loom"`, see `loom_tests`).
//!
//! The C surface is `ffi::sync`.
#![allow(unexpected_cfgs)]

pub mod chan;
pub mod cond;
pub mod group;
pub mod mutex;
pub mod once;
pub mod rwmutex;
pub mod select;
pub mod sem;
pub(crate) mod shim;
pub mod timerchan;
pub mod waitgroup;

#[cfg(all(test, loom))]
mod loom_tests;
