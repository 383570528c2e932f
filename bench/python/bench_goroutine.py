"""libgoroutine's Python binding on the workloads of bench/python/README.md.

    python bench_goroutine.py spawn|yield|chanpp|echo|parkmem|crawl|echo_std [key=value...]   -> one JSON line

(key=value: the workload function's keyword arguments, such as n=5000)
"""

import sys
import time

import goroutine as gr
from goroutine import socket as gsocket

import common


def spawn(n=100_000, rounds=3):
    def noop():
        pass

    def main():
        out = []
        for _ in range(rounds):
            t = time.perf_counter()
            gs = [gr.go(noop) for _ in range(n)]
            for g in gs:
                g.join()
            out.append((time.perf_counter() - t) / n * 1e9)
            del gs
        return out

    r = gr.run(main)
    return {"cold_ns": r[0], "warm_ns": min(r[1:])}


def yield_(n=500_000):
    def loop():
        y = gr.yield_
        for _ in range(n):
            y()

    def main():
        t = time.perf_counter()
        a, b = gr.go(loop), gr.go(loop)
        a.join()
        b.join()
        return (time.perf_counter() - t) / n * 1e9

    return {"roundtrip_ns": gr.run(main)}


def chanpp(n=200_000):
    def pong(a, b):
        for _ in range(n):
            b.send(a.recv())

    def main():
        a, b = gr.Chan(), gr.Chan()
        gr.go(pong, a, b)
        t = time.perf_counter()
        for i in range(n):
            a.send(i)
            b.recv()
        return (time.perf_counter() - t) / n * 1e9

    return {"roundtrip_ns": gr.run(main)}


def echo(**kw):
    return gr.run(common.echo, gsocket, gr.go, lambda g: g.join(), gr.sleep, **kw)


def parkmem(n=20_000):
    def main():
        ch = gr.Chan()
        before = common.rss_kib()
        gs = [gr.go(ch.recv) for _ in range(n)]
        gr.sleep(0.05)  # all started and parked
        while sum(1 for g in gs if not g.done()) < n:
            gr.sleep(0.01)
        after = common.rss_kib()
        pte = common.pte_kib()
        ch.close()
        for g in gs:
            try:
                g.join()
            except gr.ChanClosed:
                pass
        return {"bytes_per_goroutine": (after - before) * 1024 / n, "vmpte_kib": pte, "n": n}

    return gr.run(main)


def _patched(fn, *args, patch=True, **kw):
    """fn(*args, spawn, join, ...) from common.py inside gr.run, after patch_all()
    (patch=False: without it, so the blocking calls block the goroutines' thread:
    the baseline of bench/python/icount.py's crawl_unpatched)."""
    if patch:
        import goroutine.monkey

        goroutine.monkey.patch_all()
    return gr.run(fn, *args, gr.go, lambda g: g.join(), **kw)


def crawl(**kw):
    return _patched(common.crawl, **kw)


def echo_std(**kw):
    import socket

    return _patched(common.echo, socket, sleep=gr.sleep, **kw)


if __name__ == "__main__":
    w = sys.argv[1]
    fn = {"spawn": spawn, "yield": yield_, "chanpp": chanpp, "echo": echo, "parkmem": parkmem,
          "crawl": crawl, "echo_std": echo_std}[w]
    r = fn(**common.kwargs(sys.argv[2:]))
    common.emit({"workload": w, "impl": "goroutine", **r})
