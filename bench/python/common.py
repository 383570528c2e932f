"""Helpers shared by the two benchmark programs."""

import json
import sys


def emit(d):
    print(json.dumps(d), flush=True)


def kwargs(args):
    """The key=value arguments of a benchmark program's command line, as keyword
    arguments (values are Python literals: n=5000, seconds=0.5)."""
    import ast

    out = {}
    for a in args:
        k, _, v = a.partition("=")
        out[k] = ast.literal_eval(v)
    return out


def _status(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def rss_kib():
    return _status("VmRSS")


def pte_kib():
    return _status("VmPTE")


def p99(samples):
    if not samples:
        return 0.0
    s = sorted(samples)
    return s[min(len(s) - 1, int(len(s) * 0.99))]


# --- workloads written once for both libraries: bench_goroutine.py and
# bench_gevent.py call them with their own spawn, join and sleep (after their
# monkey patching for crawl and echo_std)

import os
import socket
import subprocess
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HTTPD = os.path.join(ROOT, "bench", "httpd_threads")


class HttpdThreads:
    """bench/httpd_threads (fixed 14-byte response, a thread per connection) on a free
    port of 127.0.0.1, in its own process: the same server for both libraries."""

    def __enter__(self):
        if not os.access(HTTPD, os.X_OK):
            raise SystemExit("bench/httpd_threads is missing: make -C bench httpd_threads")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.proc = subprocess.Popen([HTTPD, str(self.port)], stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise SystemExit("bench/httpd_threads did not start")
                time.sleep(0.02)

    def __exit__(self, *exc):
        self.proc.terminate()
        self.proc.wait()


def crawl(spawn, join, n=2000, conc=100):
    """n requests.get calls against HttpdThreads, conc at a time (conc workers, each
    n/conc in a row; requests.get opens and closes a connection per call)."""
    import requests  # after the caller's patching

    per = n // conc
    with HttpdThreads() as srv:
        url = "http://127.0.0.1:%d/" % srv.port

        def worker():
            ok = 0
            for _ in range(per):
                r = requests.get(url)
                ok += r.status_code == 200 and r.content == b"Hello, World!\n"
            return ok

        t = time.perf_counter()
        cpu = os.times()
        oks = [join(g) for g in [spawn(worker) for _ in range(conc)]]
        took = time.perf_counter() - t
        cpu_end = os.times()
    n = per * conc
    if sum(oks) != n:
        raise SystemExit("crawl: %d of %d requests failed" % (n - sum(oks), n))
    # The client's CPU time per request (user + system, this process only): the
    # figure that other load on the machine disturbs least.
    cpu_s = (cpu_end.user - cpu.user) + (cpu_end.system - cpu.system)
    return {"rps": n / took, "cpu_us_per_req": cpu_s / n * 1e6, "n": n}


def echo(sockets, spawn, join, sleep, conns=50, seconds=5.0, size=64, rounds=None):
    """The echo workload (README.md): client and server goroutines in one process,
    with `sockets` as the socket module (the library's own, or the standard one
    after its monkey patching). `rounds`: each client makes exactly that many round
    trips instead of running for `seconds` (for counting instructions per round
    trip, icount.py)."""
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
        for _ in range(conns):
            c, _ = srv.accept()
            c.setsockopt(sockets.IPPROTO_TCP, sockets.TCP_NODELAY, 1)
            spawn(handle, c)

    def client(port, i, lat):
        c = sockets.create_connection(("127.0.0.1", port))
        c.setsockopt(sockets.IPPROTO_TCP, sockets.TCP_NODELAY, 1)
        n = 0
        pc = time.perf_counter
        while not stop[0] and n != rounds:
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

    srv = sockets.socket()
    srv.setsockopt(sockets.SOL_SOCKET, sockets.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(1024)
    port = srv.getsockname()[1]
    s = spawn(server, srv)
    lat = []
    t = time.perf_counter()
    cs = [spawn(client, port, i, lat) for i in range(conns)]
    if rounds is None:
        sleep(seconds)
        stop[0] = True
    for c in cs:
        join(c)
    took = time.perf_counter() - t
    join(s)
    srv.close()
    return {"rps": sum(counts) / took, "p99_us": p99(lat) * 1e6}
