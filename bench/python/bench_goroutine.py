"""libgoroutine's Python binding on the workloads of bench/python/README.md.

    python bench_goroutine.py spawn|yield|chanpp|echo|parkmem|crawl|echo_std   -> one JSON line
"""

import json
import os
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


def echo(conns=50, seconds=5.0, size=64):
    msg = b"x" * size
    counts = [0] * conns
    stop = [False]

    def handle(c):
        with c:
            while True:
                d = c.recv(65536)
                if not d:
                    return
                c.sendall(d)

    def server(srv):
        while True:
            c, _ = srv.accept()
            c.setsockopt(gsocket.IPPROTO_TCP, gsocket.TCP_NODELAY, 1)
            gr.go(handle, c)

    def client(port, i, lat):
        c = gsocket.create_connection(("127.0.0.1", port))
        c.setsockopt(gsocket.IPPROTO_TCP, gsocket.TCP_NODELAY, 1)
        n = 0
        pc = time.perf_counter
        while not stop[0]:
            t = pc()
            c.sendall(msg)
            got = 0
            while got < size:
                got += len(c.recv(65536))
            n += 1
            if n % 16 == 0:
                lat.append(pc() - t)
        counts[i] = n
        c.close()

    def main():
        srv = gsocket.socket()
        srv.setsockopt(gsocket.SOL_SOCKET, gsocket.SO_REUSEADDR, 1)
        srv.bind(("127.0.0.1", 0))
        srv.listen(1024)
        port = srv.getsockname()[1]
        gr.go(server, srv)
        lat = []
        t = time.perf_counter()
        cs = [gr.go(client, port, i, lat) for i in range(conns)]
        gr.sleep(seconds)
        stop[0] = True
        for c in cs:
            c.join()
        took = time.perf_counter() - t
        return sum(counts) / took, common.p99(lat)

    # The server goroutines never end: run main in a thread-free way and exit hard.
    result = {}

    def outer():
        rps, p99 = main()
        result.update(rps=rps, p99_us=p99 * 1e6)
        common.emit({"workload": "echo", "impl": "goroutine", **result})
        sys.stdout.flush()
        os._exit(0)

    gr.run(outer)


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


def _patched(fn, **kw):
    """fn(spawn, join, ...) from common.py inside gr.run, after patch_all()."""
    import goroutine.monkey

    goroutine.monkey.patch_all()
    return gr.run(fn, gr.go, lambda g: g.join(), **kw)


def crawl(**kw):
    return _patched(common.crawl, **kw)


def echo_std(**kw):
    import goroutine.monkey

    goroutine.monkey.patch_all()
    return gr.run(common.echo_std, gr.go, lambda g: g.join(), gr.sleep, **kw)


if __name__ == "__main__":
    w = sys.argv[1]
    fn = {"spawn": spawn, "yield": yield_, "chanpp": chanpp, "echo": echo, "parkmem": parkmem,
          "crawl": crawl, "echo_std": echo_std}[w]
    r = fn()
    common.emit({"workload": w, "impl": "goroutine", **r})
