"""Goroutines: run, go, join, yield, per-goroutine interpreter state, errors."""

import contextvars
import gc
import sys
import threading
import time
import weakref

import pytest

import goroutine as gr
from conftest import run_python


def test_run_returns_value_and_waits_for_all():
    done = []

    def child(i):
        gr.yield_()
        done.append(i)

    def main(a, b=0):
        for i in range(5):
            gr.go(child, i)
        return a + b

    assert gr.run(main, 1, b=2) == 3
    assert sorted(done) == list(range(5))


def test_thousand_goroutines_interleave_yields():
    log = []

    def worker(i):
        for step in range(10):
            log.append((step, i))
            gr.yield_()

    def main():
        gs = [gr.go(worker, i) for i in range(1000)]
        for g in gs:
            g.join()

    gr.run(main)
    assert len(log) == 10_000
    # Round robin: every goroutine does step k before any does step k+2.
    steps = [s for s, _ in log]
    for k in range(0, len(steps), 1000):
        chunk = steps[k:k + 1000]
        assert max(chunk) - min(chunk) <= 1


def test_parks_inside_c_calls_mix_with_goroutines_that_yield():
    """Goroutines that park inside C calls made with the GIL released (through
    ctypes.CDLL: gr_yield and gr_sleep, as a C extension parks under the hook layer)
    run again among goroutines that switch through gr.yield_, between which 3.11
    passes the GIL without releasing it; and a plain Python thread, which needs the
    GIL for every step, keeps running beside them. A home thread that kept the GIL
    for a goroutine resuming in C would hang here (its ctypes return takes the GIL),
    and one that never gave it up would starve the thread: in a child interpreter,
    so that a hang fails the test at its timeout."""
    r = run_python(
        """
        import ctypes, threading, time
        import goroutine as gr
        from goroutine import _lib

        cdll = ctypes.CDLL(_lib.path)
        cdll.gr_sleep.argtypes = [ctypes.c_int64]
        cdll.gr_sleep.restype = ctypes.c_int
        cdll.gr_yield.restype = None
        done = threading.Event()
        counts = {"yield_": 0, "c_yield": 0, "c_sleep": 0, "thread": 0}

        def py_yielder():
            while not done.is_set():
                gr.yield_()
                counts["yield_"] += 1

        def c_yielder():
            while not done.is_set():
                cdll.gr_yield()
                counts["c_yield"] += 1
                gr.yield_()

        def c_sleeper():
            for _ in range(100):
                assert cdll.gr_sleep(100_000) == 0
                counts["c_sleep"] += 1

        def thread_body():
            for _ in range(200):
                counts["thread"] += 1
                time.sleep(0.0002)
            done.set()

        def main():
            th = threading.Thread(target=thread_body)
            th.start()
            for g in [gr.go(py_yielder), gr.go(py_yielder), gr.go(c_yielder), gr.go(c_sleeper)]:
                g.join()
            th.join()

        gr.run(main)
        assert counts["thread"] == 200 and counts["c_sleep"] == 100, counts
        assert counts["yield_"] > 0 and counts["c_yield"] > 0, counts
        print("ok")
        """,
        timeout=60,
    )
    assert r.returncode == 0 and "ok" in r.stdout, r.stderr


def test_join_values_and_exceptions():
    class Boom(Exception):
        pass

    def ok(x):
        gr.yield_()
        return x * 2

    def bad():
        gr.yield_()
        raise Boom("kaboom")

    def main():
        g1, g2 = gr.go(ok, 21), gr.go(bad)
        assert g1.join() == 42
        assert g1.join() == 42  # joining twice is fine
        with pytest.raises(Boom, match="kaboom") as ei:
            g2.join()
        # the traceback reaches into the goroutine's frame
        names = [f.name for f in __import__("traceback").extract_tb(ei.value.__traceback__)]
        assert "bad" in names
        assert g1.done() and g2.done()
        assert g1.id > 0 and g1.id != g2.id
        return "ok"

    assert gr.run(main) == "ok"


def test_join_timeout_and_self_join():
    def main():
        ch = gr.Chan()
        g = gr.go(ch.recv)
        with pytest.raises(TimeoutError):
            g.join(timeout=0.05)
        assert not g.done()
        ch.send("x")
        assert g.join(timeout=1) == "x"
        me = []

        def selfjoin():
            me.append(1)
            return selfjoin_g[0].join()

        selfjoin_g = []
        selfjoin_g.append(gr.go(selfjoin))
        with pytest.raises(RuntimeError, match="itself"):
            selfjoin_g[0].join()

    gr.run(main)


def test_main_exception_propagates():
    def main():
        gr.yield_()
        raise ValueError("from main")

    with pytest.raises(ValueError, match="from main"):
        gr.run(main)


def test_self_id():
    def main():
        ids = {gr.self_id()}
        gs = [gr.go(gr.self_id) for _ in range(3)]
        ids |= {g.join() for g in gs}
        assert {g.id for g in gs} <= ids
        return ids

    ids = gr.run(main)
    assert len(ids) == 4 and 0 not in ids
    assert gr.self_id() == 0


def test_generators_with_try_finally_across_switches():
    events = []

    class Ctx:
        def __init__(self, name):
            self.name = name

        def __enter__(self):
            events.append(("enter", self.name))
            gr.yield_()
            return self

        def __exit__(self, *exc):
            gr.yield_()
            events.append(("exit", self.name))

    def gen(n):
        for i in range(n):
            gr.yield_()
            yield i

    def worker(name):
        total = 0
        with Ctx(name):
            try:
                for v in gen(5):
                    total += v
                    gr.yield_()
                raise KeyError(name)
            except KeyError:
                gr.yield_()
                total += 100
            finally:
                gr.yield_()
                events.append(("finally", name))
        return total

    def main():
        gs = [gr.go(worker, n) for n in "abc"]
        return [g.join() for g in gs]

    assert gr.run(main) == [110, 110, 110]
    for n in "abc":
        assert events.index(("enter", n)) < events.index(("finally", n)) < events.index(("exit", n))


def test_deep_recursion_across_switches():
    limit = sys.getrecursionlimit()

    def rec(n):
        if n == 0:
            gr.yield_()
            return 0
        if n % 100 == 0:
            gr.yield_()
        return 1 + rec(n - 1)

    def main():
        depth = min(limit - 100, 900)
        gs = [gr.go(rec, depth) for _ in range(4)]
        return [g.join() for g in gs], depth

    results, depth = gr.run(main)
    assert results == [depth] * 4


def test_recursion_error_is_an_exception_not_a_crash():
    def rec(n):
        return rec(n + 1)

    def main():
        with pytest.raises(RecursionError):
            gr.go(rec, 0).join()
        return "survived"

    assert gr.run(main) == "survived"


def test_threading_local_per_goroutine():
    local = threading.local()

    def worker(i):
        local.value = i
        for _ in range(5):
            gr.yield_()
            assert local.value == i
        return local.value

    def main():
        local.value = "main"
        gs = [gr.go(worker, i) for i in range(20)]
        out = [g.join() for g in gs]
        assert local.value == "main"
        return out

    assert gr.run(main) == list(range(20))


def test_contextvars_per_goroutine_copied_from_spawner():
    var = contextvars.ContextVar("var", default="unset")

    def worker(i):
        seen = var.get()
        var.set(i)
        gr.yield_()
        assert var.get() == i
        return seen

    def main():
        var.set("parent")
        gs = [gr.go(worker, i) for i in range(10)]
        out = [g.join() for g in gs]
        assert var.get() == "parent"  # children's sets do not leak back
        return out

    assert gr.run(main) == ["parent"] * 10


def test_native_thread_is_the_runner():
    tid = threading.get_native_id()

    def worker():
        ids = set()
        for _ in range(20):
            ids.add(threading.get_native_id())
            gr.sleep(0.001)
        return ids

    def main():
        return set().union(*[g.join() for g in [gr.go(worker) for _ in range(10)]])

    assert gr.run(main) == {tid}


def test_goroutine_deleted_and_collected_before_it_runs_still_runs():
    ran = []

    class Payload:
        pass

    def body(p):
        gr.yield_()
        ran.append(type(p).__name__)

    def main():
        p = Payload()
        ref = weakref.ref(p)
        g = gr.go(body, p)
        del g, p
        gc.collect()
        assert ref() is not None  # the arguments are kept alive by the goroutine
        gr.sleep(0.01)
        gc.collect()
        return ref

    ref = gr.run(main)
    assert ran == ["Payload"]
    gc.collect()
    assert ref() is None  # and released once it ended


def test_unjoined_exception_goes_to_unraisablehook(monkeypatch):
    seen = []
    monkeypatch.setattr(sys, "unraisablehook", lambda args: seen.append((args.exc_type, str(args.exc_value))))

    def bad(tag):
        gr.yield_()
        raise ValueError(tag)

    def good():
        gr.sleep(0.01)
        return "still fine"

    def main():
        gr.go(bad, "orphan")  # handle dropped at once
        g = gr.go(bad, "kept")
        ok = gr.go(good)
        gr.sleep(0.02)
        assert ok.join() == "still fine"
        del g  # finished, never joined: reported now
        gr.go(bad, "joined")
        j = gr.go(bad, "joined2")
        with pytest.raises(ValueError):
            j.join()
        del j
        return "main done"

    assert gr.run(main) == "main done"
    gc.collect()
    tags = sorted(v for t, v in seen if t is ValueError)
    assert tags == ["joined", "kept", "orphan"]


def test_deadlock_is_reported():
    def main():
        gr.Chan().recv()

    with pytest.raises(gr.Deadlock):
        gr.run(main)

    def main2():
        ch = gr.Chan()
        gr.go(ch.recv)
        gr.go(ch.recv)
        gr.Chan().send(1)

    with pytest.raises(gr.Deadlock):
        gr.run(main2)
    # and the thread can run goroutines again afterwards
    assert gr.run(lambda: 7) == 7


def test_a_thread_that_has_not_used_the_runtime_yet_is_not_a_deadlock():
    # A plain thread feeds a channel after 1.5 s (past the first deadlock checks),
    # its first call into the runtime: until then it was still a possible waker.
    ch = gr.Chan(1)

    def feeder():
        time.sleep(1.5)
        for i in range(3):
            ch.send(i)

    t = threading.Thread(target=feeder)
    t.start()
    try:
        assert gr.run(lambda: [ch.recv() for _ in range(3)]) == [0, 1, 2]
    finally:
        t.join()

    # Once that thread has ended, the same wait is a deadlock again.
    with pytest.raises(gr.Deadlock):
        gr.run(ch.recv)


def test_go_outside_run_and_nested_run_are_errors():
    with pytest.raises(RuntimeError):
        gr.go(print)

    def main():
        with pytest.raises(RuntimeError):
            gr.run(print)
        return 1

    assert gr.run(main) == 1


def test_run_from_several_threads():
    results = {}

    def body(k):
        def main():
            tid = threading.get_native_id()
            out = []
            for i in range(50):
                out.append(gr.go(lambda i=i: (i, threading.get_native_id())).join())
                gr.yield_()
            assert all(t == tid for _, t in out)
            return sum(i for i, _ in out)

        results[k] = gr.run(main)

    ts = [threading.Thread(target=body, args=(k,)) for k in range(3)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert results == {0: 1225, 1: 1225, 2: 1225}


def test_many_sequential_runs_reuse_the_home():
    for i in range(50):
        assert gr.run(lambda i=i: gr.go(lambda: i).join()) == i


def test_goroutine_handle_type():
    """Goroutine is a type of the runtime (go and join are builtins): what Python code
    relies on in a handle still holds."""
    with pytest.raises(TypeError):
        gr.Goroutine()
    assert gr.Goroutine[int] is not None  # usable in type hints
    with pytest.raises(RuntimeError, match="inside gr.run"):
        gr.go(print)

    def body(x, *, k):
        gr.yield_()
        return (x, k)

    def main():
        kw = {"k": "kw"}
        g = gr.go(body, 1, **kw)
        kw["k"] = "changed after go"  # the goroutine has its own copy
        assert repr(g).startswith("<Goroutine %d running <function" % g.id)
        ref = weakref.ref(g)
        assert g.join(timeout=5) == (1, "kw") and g.join(5) == (1, "kw")
        assert "done" in repr(g) and g.done()
        del g
        assert ref() is None
        with pytest.raises(TypeError):
            gr.go()
        with pytest.raises(TypeError, match="not callable"):
            gr.go(42)
        ch = gr.Chan()
        h = gr.go(ch.recv)
        with pytest.raises(TypeError):
            h.join(timeout="soon")
        with pytest.raises(TypeError):
            h.join(1, 2)
        with pytest.raises(TypeError):
            h.join(deadline=1)
        with pytest.raises(TimeoutError):
            h.join(timeout=0)
        ch.send("late")
        assert h.join() == "late"
        return "ok"

    assert gr.run(main) == "ok"


def test_spawn_from_the_run_thread_outside_goroutines():
    """gr.go() from the thread inside gr.run but outside its goroutines (from 3.13 on,
    a signal handler runs there, between slices) starts a goroutine of that run."""
    import os
    import signal
    import time

    got = []

    def handler(signum, frame):
        got.append((gr.self_id(), gr.go(lambda: "from the handler")))

    def main():
        for _ in range(200):
            if got:
                return got[0][1].join(timeout=5)
            gr.sleep(0.01)
        return "no signal"

    # From another OS thread, so that the interpreter runs the handler when it
    # checks for signals, not at once in the raising call.
    killer = threading.Thread(target=lambda: (time.sleep(0.1), os.kill(os.getpid(), signal.SIGUSR1)))
    old = signal.signal(signal.SIGUSR1, handler)
    try:
        killer.start()
        assert gr.run(main) == "from the handler"
        if sys.version_info >= (3, 13):
            assert got[0][0] == 0  # the handler ran outside goroutines
    finally:
        killer.join()
        signal.signal(signal.SIGUSR1, old)
