"""The client side of test_monkey.py, run in a child process (patching is for the
whole process and cannot be undone):

    python monkey_child.py BACKEND SCENARIO ARGS_JSON   -> prints "RESULT <json>"

BACKEND is "goroutine" (goroutine.monkey.patch_all(), scenarios inside gr.run) or
"gevent" (gevent.monkey.patch_all(), scenarios in the main greenlet): the same
scenarios, written against the standard library and PyPI clients only, run on both,
so they test what gevent users rely on. The adapter gives each backend's spawn,
join, run and native sleep (the backend's own, not the patched time.sleep).
"""

import json
import sys

BACKEND = sys.argv[1] if __name__ == "__main__" else "goroutine"

if BACKEND == "goroutine":
    import goroutine.monkey

    goroutine.monkey.patch_all()
    import goroutine as gr

    spawn = gr.go
    native_sleep = gr.sleep
    run = gr.run

    def join(g):
        return g.join()

elif BACKEND == "gevent":
    from gevent import monkey

    monkey.patch_all()
    import gevent

    spawn = gevent.spawn
    native_sleep = gevent.sleep

    def join(g):
        return g.get()

    def run(fn):
        return fn()

else:
    raise SystemExit("unknown backend %r" % BACKEND)

# Imported after patching, as a program that patches does.
import queue  # noqa: E402
import select  # noqa: E402
import socket  # noqa: E402
import ssl  # noqa: E402
import subprocess  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import urllib.request  # noqa: E402


def concurrently(n, fn, *args):
    """Runs fn(*args) in n goroutines (greenlets) at once: (results, seconds)."""
    t = time.monotonic()
    gs = [spawn(fn, *args) for _ in range(n)]
    out = [join(g) for g in gs]
    return out, time.monotonic() - t


def ticking(during):
    """Runs during() while another goroutine ticks every 10 ms: (its value, seconds,
    ticks seen meanwhile)."""
    ticks = []
    stop = []

    def ticker():
        while not stop:
            native_sleep(0.01)
            ticks.append(1)

    tk = spawn(ticker)
    t = time.monotonic()
    value = during()
    took = time.monotonic() - t
    n = len(ticks)
    stop.append(1)
    join(tk)
    return value, took, n


def s_sleep(args):
    _, took = concurrently(20, time.sleep, 0.2)
    return {"took": took}


def s_requests(args):
    import requests

    def get():
        return requests.get(args["url"], timeout=10).status_code

    codes, took = concurrently(20, get)
    return {"codes": codes, "took": took}


def s_urllib_tls(args):
    ctx = ssl.create_default_context(cafile=args["cafile"])

    def get():
        with urllib.request.urlopen(args["url"], context=ctx, timeout=10) as r:
            return [r.status, r.read().decode()]

    got, took = concurrently(10, get)
    return {"got": got, "took": took}


def s_redis(args):
    import redis

    r = redis.Redis(host="127.0.0.1", port=args["port"])
    r.ping()

    def pop():
        return r.blpop(["gr-test-empty"], timeout=1)

    got, took = concurrently(20, pop)
    return {"got": got, "took": took}


def s_psycopg(args):
    import psycopg

    conns, connect_took = concurrently(20, psycopg.connect, args["dsn"])

    def query(conn):
        with conn.cursor() as cur:
            cur.execute("SELECT pg_sleep(0.2), 42")
            return cur.fetchone()[1]

    t = time.monotonic()
    gs = [spawn(query, c) for c in conns]
    got = [join(g) for g in gs]
    took = time.monotonic() - t
    for c in conns:
        c.close()
    from psycopg import waiting

    return {"got": got, "took": took, "connect_took": connect_took, "wait": waiting.wait.__name__}


def s_subprocess(args):
    codes, took = concurrently(5, lambda: subprocess.run(["sleep", "0.3"]).returncode)
    out = subprocess.check_output(["sh", "-c", "sleep 0.1; echo out"])
    res = subprocess.run(["cat"], input=b"x" * 200000, capture_output=True)
    return {"codes": codes, "took": took, "out": out.decode(), "cat": len(res.stdout)}


def s_queue(args):
    q = queue.Queue()
    order = []

    def putter():
        native_sleep(0.05)
        order.append("put")
        q.put("item")

    p = spawn(putter)
    order.append("get")
    got = q.get(timeout=5)
    order.append("got")
    join(p)
    return {"got": got, "order": order}


def s_lock(args):
    lock = threading.Lock()
    order = []

    def holder():
        with lock:
            order.append("holder in")
            native_sleep(0.1)
            order.append("holder out")

    def wanter():
        native_sleep(0.02)
        order.append("wanter waits")
        with lock:
            order.append("wanter in")

    (_, took, ticks) = ticking(lambda: [join(g) for g in [spawn(holder), spawn(wanter)]])
    return {"order": order, "took": took}


def s_event_select(args):
    ev = threading.Event()
    ev_value, ev_took, ev_ticks = ticking(lambda: ev.wait(0.2))
    a, b = socket.socketpair()
    with a, b:
        sel_value, sel_took, sel_ticks = ticking(lambda: select.select([a], [], [], 0.2))
    return {
        "event": [ev_value, ev_took, ev_ticks],
        "select": [list(map(len, sel_value)), sel_took, sel_ticks],
    }


def s_thread(args):
    out = []
    native = set()

    def body(x):
        native.add(threading.get_native_id())
        time.sleep(0.05)
        out.append(x)

    ts = [threading.Thread(target=body, args=(i,)) for i in range(5)]
    t = time.monotonic()
    for th in ts:
        th.start()
    alive = [th.is_alive() for th in ts]
    for th in ts:
        th.join()
    return {
        "out": sorted(out),
        "alive_before": alive,
        "alive_after": [th.is_alive() for th in ts],
        "took": time.monotonic() - t,
        # goroutines (greenlets) run on the caller's OS thread; threads would not
        "same_os_thread": native == {threading.get_native_id()},
    }


SCENARIOS = {name[2:]: fn for name, fn in list(globals().items()) if name.startswith("s_")}

if __name__ == "__main__":
    scenario = SCENARIOS[sys.argv[2]]
    scenario_args = json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}
    result = run(lambda: scenario(scenario_args))
    print("RESULT " + json.dumps(result), flush=True)
