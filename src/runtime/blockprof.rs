//! `GRDEBUG=blockprof=1`: which library calls still block a processor.
//!
//! When sysmon finds a goroutine that has held its processor for longer than 10 ms
//! inside one system call, and the call did not come through the hook layer
//! (`libgoroutine_hook.so` parks what it covers; a call it passes through, such as a
//! read on a terminal, is its business), it prints one line to stderr naming the
//! goroutine, the blocking function and its caller, the first time it sees that call
//! site:
//!
//! ```text
//! libgoroutine: blockprof: goroutine 5 (worker) held its processor 12 ms in system call 61
//! (wait4 in libc.so.6), called from reap_child+0x2c (/srv/app)
//! ```
//!
//! How: sysmon calls `check` on every round. A processor whose goroutine has not
//! changed for 1 ms is looked at (at most every millisecond): its thread's
//! `/proc/self/task/TID/syscall` gives the system call it sleeps in (or "running"),
//! with its stack pointer and program counter, and `schedstat` how many times the
//! thread has been scheduled in. Seen in the same call (number and pc) with the
//! thread not scheduled in since, 10 ms apart, the goroutine has been in that one
//! call all along. The caller is found by scanning the goroutine's stack upward from
//! the stack pointer (within its bounds) for the first return address outside libc
//! whose call instruction goes into libc (see `caller_of`; code bytes are read with
//! `process_vm_readv`, which fails instead of faulting), and named with dladdr as
//! `gr_dump` names functions. A scan is not an unwind: with no frame pointers a stale
//! word can pass for the caller, so the name is a strong hint, not a proof (DWARF
//! unwinding of another thread's stack was the alternative, at the price of a CFI
//! interpreter or a dependency). A goroutine inside `gr_blocking` holds no processor
//! and is never reported. Everything here runs on the sysmon thread, and only with
//! blockprof on.

use core::sync::atomic::Ordering;
use std::sync::Mutex;

use crate::runtime::g::{WaitReason, G};
use crate::runtime::p::P_RUNNING;
use crate::runtime::sched::{allp, nprocs_limit};
use crate::runtime::sys;

/// A goroutine in one system call this long is reported.
const BLOCKED_NS: i64 = 10_000_000;
/// A processor is looked at once its goroutine has run this long, and at most this
/// often.
const LOOK_EVERY_NS: i64 = 1_000_000;
/// Stack words searched for the caller's return address.
const STACK_WORDS: usize = 256;

/// What sysmon last saw on one processor.
#[derive(Default)]
struct Watch {
    tick: u32,
    since: i64,
    looked: i64,
    /// (system call number, pc, times scheduled in, first seen) while in a call.
    call: Option<(i64, usize, u64, i64)>,
    reported: bool,
}

struct State {
    watches: Vec<Watch>,
    /// Call sites already seen (their return address, or the pc when the caller
    /// is unknown), reported or found to come through the hook layer. Few.
    sites: Vec<usize>,
}

static STATE: Mutex<State> = Mutex::new(State {
    watches: Vec::new(),
    sites: Vec::new(),
});

/// One look at every processor (sysmon's round). Does nothing unless
/// `GRDEBUG=blockprof=1`.
pub fn check(now: i64) {
    if !crate::runtime::debug::settings().blockprof {
        return;
    }
    let mut st = STATE.lock().unwrap_or_else(|e| e.into_inner());
    let st = &mut *st;
    let limit = nprocs_limit();
    if st.watches.len() < limit {
        st.watches.resize_with(limit, Watch::default);
    }
    for (i, w) in st.watches.iter_mut().enumerate().take(limit) {
        let p = allp(i);
        if p.is_null() {
            continue;
        }
        // SAFETY: Ps are never freed; status and schedtick are atomics.
        let (status, tick) = unsafe {
            (
                (*p).status.load(Ordering::Acquire),
                (*p).schedtick.load(Ordering::Acquire),
            )
        };
        if status != P_RUNNING || tick != w.tick {
            *w = Watch {
                tick,
                since: now,
                ..Watch::default()
            };
            continue;
        }
        if w.reported || now - w.since < LOOK_EVERY_NS || now - w.looked < LOOK_EVERY_NS {
            continue;
        }
        w.looked = now;
        // SAFETY: p.m and m.curg are pointers to descriptors that are never freed
        // while the runtime runs; they are read once, as the P's owner may change them.
        let (tid, g) = unsafe {
            let m = core::ptr::read_volatile(&(*p).m);
            if m.is_null() {
                continue;
            }
            (
                (*m).tid.load(Ordering::Relaxed),
                core::ptr::read_volatile(&(*m).curg),
            )
        };
        if tid == 0 || g.is_null() {
            continue;
        }
        let Some((nr, sp, pc)) = in_syscall(tid) else {
            w.call = None;
            continue;
        };
        let runs = scheduled_in(tid);
        let first = match w.call {
            Some((n, c, r, first)) if n == nr && c == pc && r == runs => first,
            _ => {
                w.call = Some((nr, pc, runs, now));
                continue;
            }
        };
        if now - first < BLOCKED_NS {
            continue;
        }
        w.reported = true;
        // SAFETY: a goroutine's descriptor is never freed; it is blocked in the kernel,
        // so its stack bounds and wait reason stay as read.
        let g = unsafe { &*g };
        if g.wait_reason == WaitReason::Blocking as u8 {
            continue;
        }
        report(g, &mut st.sites, now - w.since, nr, sp, pc);
        // The goroutine may have moved on meanwhile: then the line named a call it
        // was in a moment ago, which is still true.
    }
}

/// Prints the line for a goroutine blocked in system call `nr` at `pc`, unless its
/// call site was reported before or the call came through the hook layer.
fn report(g: &G, sites: &mut Vec<usize>, held_ns: i64, nr: i64, sp: usize, pc: usize) {
    let obj = object_of(pc);
    // SAFETY: the stack field is set before the goroutine first runs and stays until
    // it exits; it is blocked in the kernel now.
    let stack = unsafe { core::ptr::read_volatile(&g.stack) };
    let caller = stack.and_then(|s| caller_of(sp, s.lo, s.hi, obj.0));
    let site = caller.unwrap_or(pc);
    if sites.contains(&site) {
        return;
    }
    sites.push(site);
    let caller_obj = caller.map(object_of);
    if caller_obj
        .as_ref()
        .is_some_and(|(_, name)| name.contains("libgoroutine_hook"))
    {
        return; // the hook layer's own pass-through call
    }
    let name = String::from_utf8_lossy(g.name_str()).into_owned();
    let called_from = match (caller, caller_obj) {
        (Some(c), Some((_, file))) => {
            format!("called from {} ({file})", crate::runtime::debug::symbol(c))
        }
        _ => "called from an unknown site".to_string(),
    };
    sys::stderr(&format!(
        "libgoroutine: blockprof: goroutine {} ({}) held its processor {} ms in system call \
         {nr} ({} in {}), {called_from}\n",
        g.id(),
        if name.is_empty() { "unnamed" } else { &name },
        held_ns / 1_000_000,
        crate::runtime::debug::symbol(pc)
            .split('+')
            .next()
            .unwrap_or("?"),
        obj.1.rsplit('/').next().unwrap_or("?"),
    ));
}

/// The system call thread `tid` is blocked in: (number, stack pointer, pc), from
/// /proc/self/task/TID/syscall ("running", or a negative number outside a call: None).
fn in_syscall(tid: u32) -> Option<(i64, usize, usize)> {
    let mut buf = [0u8; 256];
    let path = format!("/proc/self/task/{tid}/syscall\0");
    let text = sys::read_file(path.as_bytes(), &mut buf).ok()?;
    let text = core::str::from_utf8(text).ok()?;
    let f: Vec<&str> = text.split_whitespace().collect();
    let nr: i64 = f.first()?.parse().ok()?;
    if nr < 0 || f.len() < 3 {
        return None;
    }
    let hex = |s: &str| usize::from_str_radix(s.trim_start_matches("0x"), 16).ok();
    Some((nr, hex(f[f.len() - 2])?, hex(f[f.len() - 1])?))
}

/// How many times thread `tid` has been scheduled in (third field of schedstat), or 0.
fn scheduled_in(tid: u32) -> u64 {
    let mut buf = [0u8; 128];
    let path = format!("/proc/self/task/{tid}/schedstat\0");
    sys::read_file(path.as_bytes(), &mut buf)
        .ok()
        .and_then(|t| core::str::from_utf8(t).ok())
        .and_then(|t| t.split_whitespace().nth(2)?.parse().ok())
        .unwrap_or(0)
}

/// (load address, file name) of the object containing `addr` ((0, "?") if none).
fn object_of(addr: usize) -> (usize, String) {
    // SAFETY: dladdr only reads the loader's tables.
    unsafe {
        let mut info: libc::Dl_info = core::mem::zeroed();
        if libc::dladdr(addr as *const libc::c_void, &mut info) != 0 && !info.dli_fname.is_null() {
            let name = std::ffi::CStr::from_ptr(info.dli_fname)
                .to_string_lossy()
                .into_owned();
            return (info.dli_fbase as usize, name);
        }
    }
    (0, "?".into())
}

/// The caller of the blocked call: the first word on the stack above `sp` (within
/// [lo, hi)) that is a return address (it follows a call instruction) in an object
/// other than `base` (the one the pc is in, libc) and other than libgoroutine itself
/// (the runtime makes no blocking call on a goroutine; its return addresses found
/// here are stale words from earlier calls), and whose call goes into `base` or the
/// hook layer, where that can be told (a direct call, or one through the PLT or GOT).
fn caller_of(sp: usize, lo: usize, hi: usize, base: usize) -> Option<usize> {
    if sp < lo || sp >= hi || sp % 8 != 0 {
        return None;
    }
    let runtime = object_of(caller_of as *const () as usize).0;
    let words = ((hi - sp) / 8).min(STACK_WORDS);
    (0..words)
        // SAFETY: [sp, hi) is the goroutine's own stack, in use and mapped.
        .map(|i| unsafe { core::ptr::read_volatile((sp + i * 8) as *const usize) })
        .find(|&w| {
            let (obj, _) = object_of(w);
            if obj == 0 || obj == base || obj == runtime {
                return false;
            }
            match call_target(w) {
                None => false,
                Some(None) => true,
                Some(Some(t)) => {
                    let (tobj, tname) = object_of(t);
                    tobj == base || tname.contains("libgoroutine_hook")
                }
            }
        })
}

/// Reads `N` bytes of this process's memory at `addr`, or None where it is not
/// mapped (process_vm_readv fails instead of faulting).
fn peek<const N: usize>(addr: usize) -> Option<[u8; N]> {
    let mut out = [0u8; N];
    let local = libc::iovec {
        iov_base: out.as_mut_ptr() as *mut libc::c_void,
        iov_len: N,
    };
    let remote = libc::iovec {
        iov_base: addr as *mut libc::c_void,
        iov_len: N,
    };
    // SAFETY: process_vm_readv on our own process copies into `out` or fails.
    let n = unsafe { libc::process_vm_readv(libc::getpid(), &local, 1, &remote, 1, 0) };
    (n == N as isize).then_some(out)
}

fn peek_word(addr: usize) -> Option<usize> {
    peek::<8>(addr).map(usize::from_ne_bytes)
}

/// Whether `ret` follows a call instruction (None: it does not), and where that call
/// goes when it can be told (Some(None): an indirect call through a register). A
/// call to a PLT stub is followed to the function its GOT slot holds.
fn call_target(ret: usize) -> Option<Option<usize>> {
    let code: [u8; 7] = peek(ret.checked_sub(7)?)?;
    let b = |back: usize| code[7 - back];
    let disp = |back: usize| i32::from_le_bytes([b(back), b(back - 1), b(back - 2), b(back - 3)]);
    if b(5) == 0xe8 {
        let target = ret.wrapping_add_signed(disp(4) as isize);
        return Some(Some(through_plt(target).unwrap_or(target)));
    }
    if b(6) == 0xff && b(5) == 0x15 {
        return Some(peek_word(ret.wrapping_add_signed(disp(4) as isize)));
    }
    let register = (b(2) == 0xff && b(1) & 0xf8 == 0xd0)
        || (b(3) == 0x41 && b(2) == 0xff && b(1) & 0xf8 == 0xd0)
        || (b(3) == 0xff && b(2) & 0xf8 == 0x50);
    register.then_some(None)
}

/// The function a PLT stub at `addr` jumps to (`jmp *GOT(%rip)`, optionally after
/// endbr64 and with a bnd prefix), or None if it is not one.
fn through_plt(addr: usize) -> Option<usize> {
    let code: [u8; 11] = peek(addr)?;
    let at = if code[..4] == [0xf3, 0x0f, 0x1e, 0xfa] {
        4
    } else {
        0
    };
    let at = if code[at] == 0xf2 { at + 1 } else { at };
    if code[at] != 0xff || code[at + 1] != 0x25 || at + 6 > code.len() {
        return None;
    }
    let disp = i32::from_le_bytes([code[at + 2], code[at + 3], code[at + 4], code[at + 5]]);
    peek_word((addr + at + 6).wrapping_add_signed(disp as isize))
}
