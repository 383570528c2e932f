"""Python goroutines never leave the thread that runs them, even while C goroutines
(M:N, on the runtime's worker threads) keep every processor busy and block threads."""

import ctypes
import os
import shutil
import subprocess
import threading

import pytest

import goroutine as gr
from conftest import REPO

C_LOAD = r"""
#include <goroutine.h>
#include <unistd.h>
#include <stdatomic.h>

static atomic_long hops;

static void spinner(void *arg) {
    long n = (long)arg;
    for (long i = 0; i < n; i++) {
        gr_yield();
        atomic_fetch_add(&hops, 1);
        if (i % 64 == 0) gr_sleep(20000);
    }
}

static void blocker(void *arg) {
    /* blocks its worker thread without gr_blocking: sysmon must rescue the P */
    usleep((useconds_t)(long)arg);
    atomic_fetch_add(&hops, 1);
}

long load_hops(void) { return atomic_load(&hops); }

int start_load(int spinners, long iters, int blockers) {
    for (int i = 0; i < spinners; i++)
        if (gr_spawn(spinner, (void *)iters) < 0) return -1;
    for (int i = 0; i < blockers; i++)
        if (gr_spawn(blocker, (void *)(long)(5000 + 1000 * (i % 5))) < 0) return -1;
    return 0;
}
"""


def _load_helper(tmp_path):
    """A tiny C library spawning C goroutines, linked to the libgoroutine Python loaded."""
    cc = shutil.which("gcc") or shutil.which("cc")
    header = os.path.join(REPO, "include", "goroutine.h")
    if not cc or not os.path.exists(header):
        return None
    libdir = os.path.dirname(os.path.realpath(gr._lib.path)) if os.sep in gr._lib.path else None
    if libdir is None:
        return None
    src = tmp_path / "load.c"
    src.write_text(C_LOAD)
    out = tmp_path / "libload.so"
    # Link against the very file Python loaded (same soname): one runtime.
    r = subprocess.run([cc, "-O2", "-shared", "-fPIC", "-I", os.path.join(REPO, "include"), "-o", str(out), str(src),
                        os.path.realpath(gr._lib.path)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.fail("cannot build the C load helper: " + r.stderr)
    lib = ctypes.CDLL(str(out))
    lib.start_load.argtypes = [ctypes.c_int, ctypes.c_long, ctypes.c_int]
    lib.load_hops.restype = ctypes.c_long
    return lib


def _pinned_run(start_load):
    tid = threading.get_native_id()
    seen = set()

    def worker(i):
        ch = gr.Chan(1)
        for k in range(200):
            seen.add(threading.get_native_id())
            if k % 3 == 0:
                gr.yield_()
            elif k % 3 == 1:
                gr.sleep(0.0005)
            else:
                ch.send(k)
                assert ch.recv() == k
        return i

    def main():
        start_load()
        gs = [gr.go(worker, i) for i in range(50)]
        return [g.join() for g in gs]

    assert gr.run(main) == list(range(50))
    assert seen == {tid}


def test_pinned_under_c_goroutine_load(tmp_path):
    lib = _load_helper(tmp_path)
    if lib is None:
        pytest.skip("no C compiler or header: covered by the libc variant")
    _pinned_run(lambda: lib.start_load(8, 20000, 40))
    assert lib.load_hops() > 0  # the C goroutines did run meanwhile


def test_pinned_under_blocking_c_goroutines_from_libc():
    """The same with C goroutines spawned straight from ctypes: libc's usleep(arg),
    which blocks a worker thread each time."""
    libc = ctypes.CDLL(None)
    spawn = gr._lib.cdll.gr_spawn
    spawn.restype = ctypes.c_int64
    spawn.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    usleep = ctypes.cast(libc.usleep, ctypes.c_void_p).value

    def start():
        for i in range(60):
            assert spawn(usleep, 2000 + 100 * i) > 0

    _pinned_run(start)


def test_python_callback_on_c_goroutine_cannot_park():
    """Python code entered from C on an M:N goroutine must not park (it could resume
    on another OS thread): ContextError."""
    errors = []
    done = threading.Event()

    @ctypes.CFUNCTYPE(None, ctypes.c_void_p)
    def body(_arg):
        try:
            gr.yield_()
        except gr.ContextError as e:
            errors.append(e)
        finally:
            done.set()

    spawn = gr._lib.cdll.gr_spawn
    spawn.restype = ctypes.c_int64
    spawn.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    assert spawn(ctypes.cast(body, ctypes.c_void_p), None) > 0
    assert done.wait(5)
    assert len(errors) == 1 and "park" in str(errors[0])
