"""gevent / greenlet on the workloads of bench/python/README.md (same shapes as
bench_goroutine.py).

    python bench_gevent.py spawn|yield|greenlet|chanpp|echo|parkmem|crawl|echo_std [key=value...]   -> one JSON line
"""



import sys
import time

import gevent
import gevent.event
import gevent.queue
import gevent.socket as gsocket
import greenlet

import common


def spawn(n=100_000, rounds=3):
    def noop():
        pass

    out = []
    for _ in range(rounds):
        t = time.perf_counter()
        gs = [gevent.spawn(noop) for _ in range(n)]
        gevent.joinall(gs)
        out.append((time.perf_counter() - t) / n * 1e9)
        del gs
    return {"cold_ns": out[0], "warm_ns": min(out[1:])}


def yield_(n=500_000):
    def loop():
        s = gevent.sleep
        for _ in range(n):
            s(0)

    t = time.perf_counter()
    gevent.joinall([gevent.spawn(loop), gevent.spawn(loop)])
    return {"roundtrip_ns": (time.perf_counter() - t) / n * 1e9}


def greenlet_switch(n=1_000_000):
    """Raw greenlet switch round trip (main -> g -> main), the floor gevent builds on."""
    def body():
        m = main.switch
        while True:
            m()

    main = greenlet.getcurrent()
    g = greenlet.greenlet(body)
    sw = g.switch
    t = time.perf_counter()
    for _ in range(n):
        sw()
    return {"roundtrip_ns": (time.perf_counter() - t) / n * 1e9}


def chanpp(n=200_000):
    a, b = gevent.queue.Channel(), gevent.queue.Channel()

    def pong():
        for _ in range(n):
            b.put(a.get())

    gevent.spawn(pong)
    t = time.perf_counter()
    for i in range(n):
        a.put(i)
        b.get()
    return {"roundtrip_ns": (time.perf_counter() - t) / n * 1e9}


def echo(**kw):
    return common.echo(gsocket, gevent.spawn, lambda g: g.get(), gevent.sleep, **kw)


def parkmem(n=20_000):
    ev = gevent.event.Event()
    before = common.rss_kib()
    gs = [gevent.spawn(ev.wait) for _ in range(n)]
    gevent.sleep(0.05)
    after = common.rss_kib()
    pte = common.pte_kib()
    ev.set()
    gevent.joinall(gs)
    return {"bytes_per_goroutine": (after - before) * 1024 / n, "vmpte_kib": pte, "n": n}


def _patched():
    from gevent import monkey

    monkey.patch_all()


def crawl(**kw):
    _patched()
    return common.crawl(gevent.spawn, lambda g: g.get(), **kw)


def echo_std(**kw):
    _patched()
    import socket

    return common.echo(socket, gevent.spawn, lambda g: g.get(), gevent.sleep, **kw)


if __name__ == "__main__":
    w = sys.argv[1]
    fn = {"spawn": spawn, "yield": yield_, "greenlet": greenlet_switch, "chanpp": chanpp, "echo": echo, "parkmem": parkmem,
          "crawl": crawl, "echo_std": echo_std}[w]
    common.emit({"workload": w, "impl": "gevent", **fn(**common.kwargs(sys.argv[2:]))})
