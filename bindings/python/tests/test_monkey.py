"""goroutine.monkey.patch_all() against real clients and servers, and the same
scenarios under gevent.monkey.patch_all() (monkey_child.py holds the client side and
the backend adapter; each scenario runs in a child process, since patching is for
the whole process).

Servers, each in its own process, started here on free ports of 127.0.0.1 and
stopped after: an http.server.ThreadingHTTPServer that answers after 300 ms, its TLS
twin (a self-signed certificate made with the openssl command), redis-server, and
PostgreSQL 15 (initdb/pg_ctl in a temporary directory, as the postgres user).
Clients from PyPI: requests, redis (redis-py), psycopg 3 (the pure-Python package:
its sync API waits with select.poll, which patch_select makes park; the binary
package's C wait loop is the C hook layer's case), gevent.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time

import pytest

import goroutine
from conftest import REPO, need_module, need_tool

HERE = os.path.dirname(os.path.abspath(__file__))
CHILD = os.path.join(HERE, "monkey_child.py")
PKG_PARENT = os.path.dirname(os.path.dirname(goroutine.__file__))
PG_BIN = "/usr/lib/postgresql/15/bin"
BACKENDS = ["goroutine", "gevent"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, what, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("%s exited with %s" % (what, proc.returncode))
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("%s did not listen on %d" % (what, port))


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def child(backend, scenario, args=None, timeout=60, env=None):
    """Runs one scenario of monkey_child.py under `backend` (`env`: more environment
    variables); returns its result."""
    if backend == "gevent":
        need_module("gevent", "gevent")
    env = dict(os.environ, **(env or {}))
    env["PYTHONPATH"] = os.pathsep.join([PKG_PARENT] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    r = subprocess.run(
        [sys.executable, CHILD, backend, scenario, json.dumps(args or {})],
        capture_output=True, text=True, timeout=timeout, env=env,
    )
    lines = [line for line in r.stdout.splitlines() if line.startswith("RESULT ")]
    assert r.returncode == 0 and lines, "child failed (%s):\n%s\n%s" % (r.returncode, r.stdout, r.stderr)
    assert "MonkeyPatchWarning" not in r.stderr, r.stderr
    return json.loads(lines[-1][len("RESULT "):])


# ---------------------------------------------------------------------------------
# servers

SLOW_HTTP = textwrap.dedent(
    """
    import http.server, ssl, sys, time

    class Slow(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            time.sleep(0.3)
            body = b"slow ok"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    class Server(http.server.ThreadingHTTPServer):
        request_queue_size = 128

    srv = Server(("127.0.0.1", int(sys.argv[1])), Slow)
    if len(sys.argv) > 2:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(sys.argv[2], sys.argv[3])
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    srv.serve_forever()
    """
)


def make_cert(directory):
    """A self-signed certificate for 127.0.0.1 (the openssl command): (cert, key)."""
    need_tool("openssl", "openssl")
    cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )
    return cert, key


@pytest.fixture(scope="module")
def http_server():
    port = free_port()
    p = subprocess.Popen([sys.executable, "-c", SLOW_HTTP, str(port)])
    try:
        wait_port(port, p, "the HTTP server")
        yield "http://127.0.0.1:%d/" % port
    finally:
        stop(p)


@pytest.fixture(scope="module")
def tls_server():
    d = tempfile.mkdtemp(prefix="gr-tls-")
    cert, key = make_cert(d)
    port = free_port()
    p = subprocess.Popen([sys.executable, "-c", SLOW_HTTP, str(port), cert, key])
    try:
        wait_port(port, p, "the TLS server")
        yield {"url": "https://127.0.0.1:%d/" % port, "cafile": cert}
    finally:
        stop(p)
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def redis_port():
    exe = need_tool("redis-server", "redis-server")
    port = free_port()
    p = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_port(port, p, "redis-server")
        yield port
    finally:
        stop(p)


def _as_postgres(*cmd):
    return ["runuser", "-u", "postgres", "--"] + list(cmd) if os.geteuid() == 0 else list(cmd)


@pytest.fixture(scope="module")
def postgres_dsn():
    initdb = need_tool(os.path.join(PG_BIN, "initdb"), "postgresql-15")
    if os.geteuid() == 0:
        need_tool("runuser", "util-linux")
    d = tempfile.mkdtemp(prefix="gr-pg-")
    data = os.path.join(d, "data")
    if os.geteuid() == 0:
        shutil.chown(d, "postgres", "postgres")
    port = free_port()
    pg_ctl = os.path.join(PG_BIN, "pg_ctl")
    try:
        subprocess.run(_as_postgres(initdb, "-D", data, "-A", "trust", "-U", "postgres", "--no-sync"),
                       check=True, capture_output=True)
        subprocess.run(
            _as_postgres(pg_ctl, "-D", data, "-l", os.path.join(d, "log"), "-w", "-t", "30", "-o",
                         "-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50" % (port, d),
                         "start"),
            check=True, capture_output=True,
        )
        yield "host=127.0.0.1 port=%d user=postgres dbname=postgres" % port
    finally:
        subprocess.run(_as_postgres(pg_ctl, "-D", data, "-m", "immediate", "stop"), capture_output=True)
        shutil.rmtree(d, ignore_errors=True)


# ---------------------------------------------------------------------------------
# the acceptance scenarios, on both backends
#
# Bounds: the serial time of each is 4-20x its bound, so a bound that holds shows the
# calls overlapped; they are generous for a loaded 2-vCPU machine otherwise.


@pytest.mark.parametrize("backend", BACKENDS)
def test_time_sleep(backend):
    r = child(backend, "sleep")
    assert 0.19 <= r["took"] < 0.6, r


@pytest.mark.parametrize("backend", BACKENDS)
def test_requests_get(backend, http_server):
    need_module("requests", "requests")
    r = child(backend, "requests", {"url": http_server})
    assert r["codes"] == [200] * 20, r
    assert 0.29 <= r["took"] < 1.5, r


@pytest.mark.parametrize("backend", BACKENDS)
def test_urllib_https(backend, tls_server):
    r = child(backend, "urllib_tls", tls_server)
    assert r["got"] == [[200, "slow ok"]] * 10, r
    assert 0.29 <= r["took"] < 1.5, r


@pytest.mark.parametrize("backend", BACKENDS)
def test_redis_blpop(backend, redis_port):
    need_module("redis", "redis")
    r = child(backend, "redis", {"port": redis_port})
    assert r["got"] == [None] * 20, r
    assert 0.99 <= r["took"] < 2.0, r


@pytest.mark.parametrize("backend", BACKENDS)
def test_psycopg_pg_sleep(backend, postgres_dsn):
    need_module("psycopg", "psycopg")
    # The pure-Python implementation, also where psycopg-binary is installed (the
    # test below uses that one).
    r = child(backend, "psycopg", {"dsn": postgres_dsn}, env={"PSYCOPG_IMPL": "python"})
    assert r["got"] == [42] * 20, r
    assert 0.19 <= r["took"] < 1.0, r
    # The pure-Python package waits through select.poll (the binary's C loop would
    # block the thread: see README.md).
    assert r["wait"] in ("wait_poll", "wait_selector"), r


# psycopg's C implementation waits in C (poll(2) in psycopg_binary / psycopg_c),
# which no Python patch reaches: the C hook layer makes that poll park the goroutine.
PSYCOPG_C_SCRIPT = """
import json, sys, time
import psycopg
import goroutine as gr

dsn, n = sys.argv[1], int(sys.argv[2])

def connect():
    return psycopg.connect(dsn, autocommit=True)

def query(conn):
    return conn.execute("SELECT pg_sleep(0.2), 42").fetchone()[1]

conns = [g.join() for g in [gr.go(connect) for _ in range(n)]]
t = time.monotonic()
got = [g.join() for g in [gr.go(query, c) for c in conns]]
took = time.monotonic() - t
for c in conns:
    c.close()
print("RESULT " + json.dumps({"impl": psycopg.pq.__impl__, "got": got, "took": took}))
"""


def hook_library():
    """libgoroutine_hook.so beside the libgoroutine.so this suite loads (make hook,
    as tests/hook.rs does), with the soname link the hook library needs there."""
    lib = os.path.realpath(goroutine._lib.path)
    libdir = os.path.dirname(lib)
    soname = os.path.join(libdir, goroutine._lib.SYSTEM_LIBRARY)
    if not os.path.exists(soname):
        os.symlink(os.path.basename(lib), soname)
    # The checkout's Makefile (the package may be installed in a venv, far from it).
    r = subprocess.run(["make", "-s", "--no-print-directory", "-C", REPO, "hook", "HOOK_LIBDIR=" + libdir],
                       capture_output=True, text=True)
    assert r.returncode == 0, "make hook failed:\n" + r.stdout + r.stderr
    return os.path.join(libdir, "libgoroutine_hook.so"), lib


def run_psycopg_c(dsn, n, hook, lib, hook_on, tmp_path):
    script = tmp_path / "pg_c.py"
    script.write_text(PSYCOPG_C_SCRIPT)
    env = dict(os.environ, LD_PRELOAD=hook, GOROUTINE_LIBRARY=lib, GR_HOOK="1" if hook_on else "0",
               PYTHONPATH=os.pathsep.join([PKG_PARENT] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    env.pop("PSYCOPG_IMPL", None)
    r = subprocess.run([sys.executable, "-m", "goroutine", str(script), dsn, str(n)],
                       capture_output=True, text=True, timeout=60, env=env)
    lines = [line for line in r.stdout.splitlines() if line.startswith("RESULT ")]
    assert r.returncode == 0 and lines, "child failed (%s):\n%s\n%s" % (r.returncode, r.stdout, r.stderr)
    return json.loads(lines[-1][len("RESULT "):])


def test_psycopg_c_implementation_under_the_hook_layer(postgres_dsn, tmp_path):
    need_module("psycopg", "psycopg")
    import importlib.util

    if importlib.util.find_spec("psycopg_binary") is None and importlib.util.find_spec("psycopg_c") is None:
        need_module("psycopg_binary", "psycopg-binary")
    hook, lib = hook_library()
    r = run_psycopg_c(postgres_dsn, 20, hook, lib, True, tmp_path)
    assert r["impl"] in ("binary", "c"), r
    assert r["got"] == [42] * 20, r
    assert 0.19 <= r["took"] < 1.0, r  # serial: 4 s
    # The same with the hook layer off (GR_HOOK=0): each query holds the thread.
    r = run_psycopg_c(postgres_dsn, 5, hook, lib, False, tmp_path)
    assert r["got"] == [42] * 5 and r["took"] >= 0.95, r


@pytest.mark.parametrize("backend", BACKENDS)
def test_subprocess_run(backend):
    r = child(backend, "subprocess")
    assert r["codes"] == [0] * 5, r
    assert 0.29 <= r["took"] < 1.0, r
    assert r["out"] == "out\n" and r["cat"] == 200000, r


@pytest.mark.parametrize("backend", BACKENDS)
def test_queue_get_put(backend):
    r = child(backend, "queue")
    assert r == {"got": "item", "order": ["get", "put", "got"]}, r


@pytest.mark.parametrize("backend", BACKENDS)
def test_lock_held_across_a_park(backend):
    r = child(backend, "lock")
    assert r["order"] == ["holder in", "wanter waits", "holder out", "wanter in"], r
    assert r["took"] < 2.0, r


@pytest.mark.parametrize("backend", BACKENDS)
def test_event_wait_and_select_time_out_while_others_run(backend):
    r = child(backend, "event_select")
    value, took, ticks = r["event"]
    assert value is False and 0.19 <= took < 1.0 and ticks >= 5, r
    lens, took, ticks = r["select"]
    assert lens == [0, 0, 0] and 0.19 <= took < 1.0 and ticks >= 5, r


@pytest.mark.parametrize("backend", BACKENDS)
def test_thread_start_join(backend):
    r = child(backend, "thread")
    assert r["out"] == [0, 1, 2, 3, 4], r
    assert r["alive_before"] == [True] * 5 and r["alive_after"] == [False] * 5, r
    assert r["same_os_thread"], r
    assert r["took"] < 0.2, r  # five 50 ms sleeps overlapped (serial: 250 ms)
