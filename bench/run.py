#!/usr/bin/env python3
"""The benchmark driver (issue 7): runs every workload on every system, interleaved,
and writes REPORT.md, raw.json and one SVG chart per workload: a full run into
bench/results/ (committed), a --quick or --smallest one into target/bench/.

It owns the table of what is measured (WORKLOADS: workload -> systems -> command,
sizes for the full, --quick and --smallest modes, the metric keys and the goals) and
the whole measuring loop. Built this way because the comparison is only honest when
the systems run side by side in one invocation: round r runs A B C, round r+1 runs
B C A (rotated), so the drift of this shared 2-CPU machine hits every system alike,
and every ratio in the report compares runs that were adjacent in time.

Programs (the contract every program follows: positional [size] [procs] [more...] in
the C program's order; one output line whose first token is the workload name, or
threads_<name>, then key=value pairs):
    libgoroutine   bench/<w>               (bench/*.c, make -C bench; GR_MAXPROCS too)
    go             target/bench-go/<w>     (make -C bench go; GOMAXPROCS too; skipped
                                            when missing)
    threads        bench/threads_<w>       (pthreads; they pin themselves to the
                                            first procs CPUs)
    hook, raw      bench/<w> ... hooked|raw (hookrw: one program, two modes)
httpd and httpd_hook start their servers through `bench/httpd.sh --serve` (the one place that
builds and starts them) and drives wrk itself. The Python workloads call the
functions of bench/python/bench_goroutine.py and bench_gevent.py in the bench venv
(target/pyvenv-bench, set up by `bench/python/run.sh --venv`).

Writes into --out (default: bench/results for a full run, whose results are
committed; target/bench for --quick and --smallest, so that a short run never
overwrites them; --report-only: bench/results): REPORT.md (machine, versions, a goals
table, a table per workload, metric and procs, the ratios and their spread, the
instruction counts of icount.json and the hand-written ANALYSIS.md when they exist),
raw.json (every run: command, output, values, seconds, load), medians.tsv (for
scripts and tests/bench_suite.rs) and <workload>.svg.

Standard library only. Usage:
    bench/run.py [--quick | --smallest] [--only w1,w2] [--rounds N] [--procs 1,2]
                 [--out DIR]
    bench/run.py --report-only [--out DIR]   the report again from DIR/raw.json
    bench/run.py --list                      the workloads and their systems
"""

import argparse
import json
import math
import os
import platform
import random
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
TARGET = os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target")
if not os.path.isabs(TARGET):
    TARGET = os.path.join(ROOT, TARGET)
LIBDIR = os.path.join(TARGET, "release")
GO_BIN_DIR = os.path.join(TARGET, "bench-go")
PY_VENV = os.path.join(TARGET, "pyvenv-bench")
# The committed results of the last full run (and ANALYSIS.md, icount.json beside them).
RESULTS = os.path.join(HERE, "results")
MODES = ("full", "quick", "smallest")


# ---------------------------------------------------------------------------------
# What is measured


class Metric:
    """One number a run produces (the key in the program's output line).

    goal: ("max", {procs: value}) for "libgoroutine's median <= value",
          ("ratio_min", {procs: value}) for "libgoroutine / reference >= value",
          ("ratio_max", {procs: value}) for "libgoroutine / reference <= value",
          or None. goal_size: the size the goal is defined at (None: any size)."""

    def __init__(self, key, label, unit, better="lower", goal=None, goal_size=None, total=False):
        self.key, self.label, self.unit, self.better = key, label, unit, better
        self.goal, self.goal_size = goal, goal_size
        # total: the value grows with the size (not per operation), so systems run at
        # different sizes are not compared.
        self.total = total

    def goal_text(self, procs, reference):
        kind, table = self.goal
        if kind == "max":
            text = f"<= {table[procs]:,g} {self.unit}"
        elif kind == "ratio_max":
            text = f"<= {table[procs]}x {reference}"
        else:
            text = f">= {table[procs]}x {reference}"
        if self.goal_size:
            text += f" at size {self.goal_size:,}"
        return text


class Workload:
    """kind: "prog" (the program contract above), "httpd" or "python".
    sizes: {mode: {system or "*": size}}; extra: {mode: [args after size, procs]};
    systems: the first is the one measured (libgoroutine or goroutine), the second is
    the reference the goals are stated against (Go or gevent)."""

    def __init__(self, name, kind, systems, metrics, sizes, extra=None, procs=(1, 2),
                 what="", chart_metrics=None, derive=None):
        self.name, self.kind, self.systems, self.metrics = name, kind, systems, metrics
        self.sizes, self.extra, self.procs, self.what = sizes, extra or {}, procs, what
        self.chart_metrics = chart_metrics or [metrics[0].key]
        # derive(kv) -> more key=value pairs computed from a program's output line
        self.derive = derive

    def size(self, mode, system):
        s = self.sizes[mode]
        return s.get(system, s.get("*"))

    def metric(self, key):
        return next(m for m in self.metrics if m.key == key)


PROG_SYSTEMS = ("libgoroutine", "go", "threads")
GOAL_1M = 1_000_000

WORKLOADS = [
    Workload(
        "spawn", "prog", PROG_SYSTEMS,
        [Metric("warm_best_ns", "spawn + wait, warm (best of rounds 2..R)", "ns/goroutine",
                goal=("max", {1: 40, 2: 60})),
         Metric("cold_ns", "spawn + wait, cold (round 1)", "ns/goroutine")],
        {"full": {"*": 1_000_000, "threads": 10_000},
         "quick": {"*": 30_000, "threads": 1_000},
         "smallest": {"*": 2_000, "threads": 100}},
        extra={"full": [3], "quick": [3], "smallest": [2]},
        what="N trivial goroutines (atomic add), wait for all; args N procs rounds"),
    Workload(
        "yield", "prog", PROG_SYSTEMS,
        [Metric("ns_per_switch", "yield, 2 goroutines", "ns/switch",
                goal=("max", {1: 8})),
         Metric("cpu_ns_per_switch", "yield, process CPU time", "ns/switch")],
        {"full": {"*": 10_000_000, "threads": 200_000},
         "quick": {"*": 1_000_000, "threads": 50_000},
         "smallest": {"*": 20_000, "threads": 2_000}},
        extra={m: [1] for m in MODES},
        what="2 goroutines yield in a loop; args yields-per-goroutine procs reps"),
    Workload(
        "chanpp", "prog", PROG_SYSTEMS,
        [Metric("ns_per_roundtrip", "unbuffered channel ping-pong", "ns/round trip",
                goal=("max", {1: 40, 2: 60})),
         Metric("cpu_ns_per_roundtrip", "channel ping-pong, process CPU time", "ns/round trip")],
        {"full": {"*": 2_000_000, "threads": 20_000},
         "quick": {"*": 200_000, "threads": 5_000},
         "smallest": {"*": 5_000, "threads": 500}},
        extra={m: [1] for m in MODES},
        what="ping -> pong over two unbuffered channels; args round-trips procs reps"),
    Workload(
        "threadring", "prog", PROG_SYSTEMS,
        [Metric("ns_per_hop", "thread-ring, 503 goroutines", "ns/hop",
                goal=("max", {1: 25, 2: 25})),
         Metric("cpu_ns_per_hop", "thread-ring, process CPU time", "ns/hop")],
        {"full": {"*": 50_000_000, "threads": 200_000},
         "quick": {"*": 1_000_000, "threads": 10_000},
         "smallest": {"*": 20_000, "threads": 2_000}},
        extra={m: [1] for m in MODES},
        what="a token passed around a ring of 503 goroutines; args hops procs reps"),
    Workload(
        "skynet", "prog", PROG_SYSTEMS,
        [Metric("ms", "skynet (second repetition in the process)", "ms",
                goal=("max", {2: 150}), goal_size=GOAL_1M, total=True),
         Metric("ns_per_goroutine", "skynet per goroutine", "ns/goroutine"),
         Metric("cpu_ms", "skynet, process CPU time (all threads)", "ms", total=True),
         Metric("cpu_ns_per_goroutine", "skynet per goroutine, process CPU time",
                "ns/goroutine")],
        {"full": {"*": 1_000_000, "threads": 1_000},
         "quick": {"*": 100_000, "threads": 1_000},
         "smallest": {"*": 1_000, "threads": 100}},
        extra={m: [2] for m in MODES},
        what="a 10-ary tree of goroutines summing its leaves over fresh channels; "
             "args leaves procs reps (2 reps per run, the last one counts); threads "
             "run a smaller tree, so compare the per-goroutine figures",
        derive=lambda kv: {} if not kv.get("goroutines") else {
            "ns_per_goroutine": kv.get("ms", 0) * 1e6 / kv["goroutines"],
            "cpu_ns_per_goroutine": kv.get("cpu_ms", 0) * 1e6 / kv["goroutines"]},
        chart_metrics=["ns_per_goroutine"]),
    Workload(
        "parkmem", "prog", PROG_SYSTEMS,
        [Metric("rss_bytes_per_goroutine", "memory per parked goroutine (RSS)", "bytes",
                goal=("max", {1: 4400, 2: 4400})),
         Metric("rss_pte_bytes_per_goroutine", "memory per parked goroutine (RSS + page tables)",
                "bytes", goal=("max", {1: 5000, 2: 5000})),
         Metric("ns_per_spawn", "time to spawn and park each", "ns/goroutine")],
        {"full": {"*": 1_000_000, "threads": 10_000},
         "quick": {"*": 30_000, "threads": 1_000},
         "smallest": {"*": 2_000, "threads": 200}},
        what="N goroutines parked on one channel receive; args N procs"),
    Workload(
        "timerstop", "prog", ("libgoroutine", "go"),
        [Metric("ns_per_timer", "timer create + stop", "ns/timer",
                goal=("ratio_max", {1: 1.0, 2: 1.0})),
         Metric("cpu_ns_per_timer", "timer create + stop, process CPU time", "ns/timer")],
        {"full": {"*": 2_000_000}, "quick": {"*": 300_000}, "smallest": {"*": 5_000}},
        extra={m: [1] for m in MODES},
        what="a timer due in an hour, created and stopped (Go: time.NewTimer + Stop; C: "
             "gr_timer_new + gr_timer_stop + gr_timer_free), by procs goroutines at once; "
             "args timers procs reps"),
    Workload(
        "rwread", "prog", ("libgoroutine", "go"),
        [Metric("ns_per_pair", "RWMutex read lock + unlock, shared", "ns/pair",
                goal=("ratio_max", {2: 1.0})),
         Metric("cpu_ns_per_pair", "RWMutex read lock + unlock, process CPU time", "ns/pair")],
        {"full": {"*": 50_000_000}, "quick": {"*": 5_000_000}, "smallest": {"*": 50_000}},
        extra={m: [1] for m in MODES},
        what="procs goroutines take and drop read locks of one shared RWMutex (Go's "
             "sync.RWMutex RLock + RUnlock), an empty critical section; args pairs procs "
             "reps"),
    Workload(
        "ctxcancel", "prog", ("libgoroutine", "go"),
        [Metric("ns_per_ctx", "context made + cancelled", "ns/context",
                goal=("ratio_max", {1: 1.0, 2: 1.0})),
         Metric("cpu_ns_per_ctx", "context made + cancelled, process CPU time", "ns/context")],
        {"full": {"*": 2_000_000}, "quick": {"*": 300_000}, "smallest": {"*": 5_000}},
        extra={m: [1] for m in MODES},
        what="a cancellable child of one shared cancellable context, made and cancelled "
             "(Go: context.WithCancel + cancel; C: gr_ctx_new + gr_ctx_cancel + "
             "gr_ctx_free), by procs goroutines at once; args contexts procs reps"),
    Workload(
        "httpd", "httpd", ("libgoroutine", "go", "threads"),
        [Metric("rps_c100", "requests/s, 100 connections", "req/s", better="higher",
                goal=("ratio_min", {1: 1.2, 2: 1.2})),
         Metric("rps_c1000", "requests/s, 1,000 connections", "req/s", better="higher",
                goal=("ratio_min", {1: 1.2, 2: 1.2})),
         Metric("p99_us_c100", "p99 latency, 100 connections", "us"),
         Metric("p99_us_c1000", "p99 latency, 1,000 connections", "us")],
        # size = wrk duration in whole seconds (wrk takes no fractions); extra = the
        # warm-up of each server at each connection count (seconds, not counted)
        {"full": {"*": 5}, "quick": {"*": 1}, "smallest": {"*": 1}},
        extra={"full": [2], "quick": [0], "smallest": [0]},
        what="fixed 14-byte keep-alive HTTP response, wrk -t2 -c100 and -c1000 "
             "(servers pinned to the first procs CPUs for threads, GR_MAXPROCS / GOMAXPROCS)",
        chart_metrics=["rps_c100", "rps_c1000"]),
    Workload(
        "httpd_hook", "httpd", ("hook", "libgoroutine"),
        [Metric("rps_c100", "requests/s, 100 connections", "req/s", better="higher",
                goal=("ratio_min", {1: 0.9, 2: 0.9})),
         Metric("rps_c1000", "requests/s, 1,000 connections", "req/s", better="higher",
                goal=("ratio_min", {1: 0.9, 2: 0.9})),
         Metric("p99_us_c100", "p99 latency, 100 connections", "us"),
         Metric("p99_us_c1000", "p99 latency, 1,000 connections", "us")],
        {"full": {"*": 5}, "quick": {"*": 1}, "smallest": {"*": 1}},
        extra={"full": [2], "quick": [0], "smallest": [0]},
        what="httpd with plain blocking accept/read/write under libgoroutine_hook.so "
             "(bench/httpd_hook.c) beside c_examples/http_hello.c (gr_read/gr_write), "
             "both a goroutine per connection; same servers and wrk runs as httpd",
        chart_metrics=["rps_c100", "rps_c1000"]),
    Workload(
        "hookrw", "prog", ("hook", "raw"),
        [Metric("cpu_ns_per_rw", "CPU time of a ready socket's write + read", "ns",
                goal=("ratio_max", {1: 1.1, 2: 1.1})),
         Metric("ns_per_rw", "wall time of a ready socket's write + read", "ns")],
        {"full": {"*": 1_000_000}, "quick": {"*": 200_000}, "smallest": {"*": 5_000}},
        what="write(64 B) + read(64 B) on a socketpair that is always ready, on a "
             "goroutine: libc's calls under the hook layer (hook) against the system "
             "calls themselves through syscall(2) (raw); args rounds procs hooked|raw"),
    Workload(
        "py_spawn", "python", ("goroutine", "gevent"),
        [Metric("warm_ns", "Python spawn + join, warm", "ns/goroutine",
                goal=("max", {1: 5000})),
         Metric("cold_ns", "Python spawn + join, cold", "ns/goroutine")],
        {"full": {"*": {}}, "quick": {"*": {"n": 5_000}}, "smallest": {"*": {"n": 1_000, "rounds": 2}}},
        procs=(1,), what="bench/python spawn: N goroutines doing nothing, spawned then joined"),
    Workload(
        "py_yield", "python", ("goroutine", "gevent", "greenlet"),
        [Metric("roundtrip_ns", "Python yield round trip", "ns",
                goal=("max", {1: 300}))],
        {"full": {"*": {}}, "quick": {"*": {"n": 50_000}, "greenlet": {"n": 100_000}},
         "smallest": {"*": {"n": 5_000}}},
        procs=(1,), what="bench/python yield: gr.yield_() vs gevent.sleep(0) ping-pong "
                         "(greenlet: the raw switch round trip, gevent's floor)"),
    Workload(
        "py_chanpp", "python", ("goroutine", "gevent"),
        [Metric("roundtrip_ns", "Python channel ping-pong", "ns")],
        {"full": {"*": {}}, "quick": {"*": {"n": 50_000}}, "smallest": {"*": {"n": 2_000}}},
        procs=(1,), what="bench/python chanpp: gr.Chan vs gevent.queue.Channel"),
    Workload(
        "py_echo", "python", ("goroutine", "gevent"),
        [Metric("rps", "Python TCP echo, 50 connections x 64 B", "round trips/s", better="higher",
                goal=("ratio_min", {1: 1.5})),
         Metric("p99_us", "echo p99 latency", "us")],
        {"full": {"*": {}}, "quick": {"*": {"seconds": 1.0}},
         "smallest": {"*": {"seconds": 0.3, "conns": 10}}},
        procs=(1,), what="bench/python echo: client and server goroutines in one process"),
    Workload(
        "py_crawl", "python", ("goroutine", "gevent"),
        [Metric("rps", "Python crawler, requests.get x 2,000, 100 at a time", "requests/s",
                better="higher", goal=("ratio_min", {1: 1.2})),
         Metric("cpu_us_per_req", "crawler's client CPU time per request", "us")],
        {"full": {"*": {}}, "quick": {"*": {"n": 500}}, "smallest": {"*": {"n": 100, "conc": 20}}},
        procs=(1,), what="bench/python crawl: requests.get against bench/httpd_threads after each "
                         "library's monkey.patch_all()"),
    Workload(
        "py_echo_std", "python", ("goroutine", "gevent"),
        [Metric("rps", "Python TCP echo with the patched socket module", "round trips/s",
                better="higher", goal=("ratio_min", {1: 1.0})),
         Metric("p99_us", "echo (patched socket module) p99 latency", "us")],
        {"full": {"*": {}}, "quick": {"*": {"seconds": 1.0}},
         "smallest": {"*": {"seconds": 0.3, "conns": 10}}},
        procs=(1,), what="bench/python echo_std: the echo workload written with the plain socket "
                         "module, after each library's monkey.patch_all()"),
    Workload(
        "py_parkmem", "python", ("goroutine", "gevent"),
        [Metric("bytes_per_goroutine", "Python parked goroutine (RSS)", "bytes")],
        {"full": {"*": {}}, "quick": {"*": {"n": 5_000}}, "smallest": {"*": {"n": 500}}},
        procs=(1,), what="bench/python parkmem: goroutines parked on one channel"),
]
BY_NAME = {w.name: w for w in WORKLOADS}

# Rounds and per-run time limits by mode.
DEFAULT_ROUNDS = {"full": 5, "quick": 3, "smallest": 1}
RUN_TIMEOUT_S = {"full": 600, "quick": 120, "smallest": 60}


# ---------------------------------------------------------------------------------
# Small helpers


def human_secs(s):
    s = int(round(max(0, s)))
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s}s"


def capture(argv, env=None, timeout=20):
    """stdout of a command, stripped, or "" when it cannot run."""
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env)
        return (r.stdout or r.stderr).strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def cpu_list(procs):
    """The CPUs a pinned program may use for `procs` processors: the first procs of
    those this process may run on."""
    allowed = sorted(os.sched_getaffinity(0))
    return ",".join(str(c) for c in allowed[:procs])


def parse_kv_line(line, names):
    """key=value pairs (numbers only) of a line whose first token is one of names."""
    tok = line.split()
    if not tok or tok[0] not in names:
        return None
    kv = {}
    for t in tok[1:]:
        k, sep, v = t.partition("=")
        if sep:
            try:
                kv[k] = float(v)
            except ValueError:
                pass
    return kv


def prog_values(w, stdout):
    """The metric values of a program's output: from the last line (named <w> or
    threads_<w>) that has any of them, after w.derive; None when no line has one.
    (spawn prints a line per round, then the summary that has the metrics.)"""
    keys = [m.key for m in w.metrics]
    found = None
    for line in stdout.splitlines():
        kv = parse_kv_line(line, (w.name, "threads_" + w.name))
        if kv is None:
            continue
        if w.derive:
            kv.update(w.derive(kv))
        if any(k in kv for k in keys):
            found = {k: kv[k] for k in keys if k in kv}
    return found


def find_go_toolchain():
    """The go command, for its version: $GO, bench/env.sh's venv (target/benchvenv,
    which `make -C bench go` creates), `go` on PATH. Never installs anything."""
    for c in (os.environ.get("GO", ""), os.path.join(TARGET, "benchvenv", "bin", "go"),
              shutil.which("go") or ""):
        if c and os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    return None


def free_port_base(n=3):
    """A port p such that p .. p+n-1 are free on 127.0.0.1 right now, below the
    kernel's ephemeral range: httpd.sh starts its servers one at a time and probes
    each with a connection, whose own local port comes from that range, and a probe's
    socket lingering in TIME_WAIT on a port a later server wants made its bind fail
    (EADDRINUSE, for every round of the next minute)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(10000, max(10001, low - n))
        ok = True
        for p in range(base, base + n):
            t = socket.socket()
            try:
                t.bind(("127.0.0.1", p))
            except OSError:
                ok = False
            finally:
                t.close()
            if not ok:
                break
        if ok:
            return base
    raise RuntimeError("no free ports on 127.0.0.1")


# ---------------------------------------------------------------------------------
# Running one measurement


class Runner:
    def __init__(self, args):
        self.args = args
        self.mode = "smallest" if args.smallest else "quick" if args.quick else "full"
        self.rounds = args.rounds or DEFAULT_ROUNDS[self.mode]
        self.timeout = RUN_TIMEOUT_S[self.mode]
        self.runs = []
        self.notes = []  # things the report must say (systems skipped, ...)
        self.go = find_go_toolchain()
        self.py = None
        self.py_gevent = False
        self.py_requests = False
        self.started = time.time()
        self.done = 0
        self.total = 0
        self.durations = {}  # (workload, system) -> [seconds]
        self.tty = sys.stderr.isatty()

    # --- which systems can run

    def prog_argv(self, w, system, procs):
        size = w.size(self.mode, system)
        extra = w.extra.get(self.mode, [])
        args = [str(size), str(procs)] + [str(e) for e in extra]
        if system == "libgoroutine":
            return [os.path.join(HERE, w.name)] + args
        if system == "go":
            return [os.path.join(GO_BIN_DIR, w.name)] + args
        if system == "threads":
            return [os.path.join(HERE, "threads_" + w.name)] + args
        if system in ("hook", "raw"):  # one program, two modes (bench/hookrw.c)
            return [os.path.join(HERE, w.name)] + args + [{"hook": "hooked"}.get(system, system)]
        raise ValueError(system)

    def available(self, w, system):
        """None when the system can run this workload, else why not."""
        if w.kind == "prog":
            exe = self.prog_argv(w, system, 1)[0]
            if not os.access(exe, os.X_OK):
                how = {"go": "make -C bench go"}.get(system, "make -C bench")
                return f"{os.path.relpath(exe, ROOT)} is missing (built by `{how}`)"
            return None
        if w.kind == "httpd":
            if not shutil.which("wrk"):
                return "wrk is missing (apt-get install -y wrk)"
            if system == "threads" and not shutil.which("taskset"):
                return "taskset (util-linux) is missing"
            if system == "go" and not os.access(os.path.join(GO_BIN_DIR, "httpd"), os.X_OK):
                return "target/bench-go/httpd is missing (built by `make -C bench go`)"
            return None
        if w.kind == "python":
            if self.py is None:
                return "no Python for the binding"
            if system in ("gevent", "greenlet") and not self.py_gevent:
                return f"gevent/greenlet are not installed in {os.path.relpath(PY_VENV, ROOT)}"
            if w.name == "py_crawl" and not self.py_requests:
                return f"requests is not installed for {self.py} (bench/python/run.sh --venv installs it)"
            return None
        raise ValueError(w.kind)

    def setup_python(self):
        """The bench venv's python (created by bench/python/run.sh --venv unless
        --smallest, which only uses what exists); falls back to python3 for the
        goroutine side alone."""
        venv_py = os.path.join(PY_VENV, "bin", "python")
        if not self.args.smallest:
            r = subprocess.run([os.path.join(HERE, "python", "run.sh"), "--venv"],
                               capture_output=True, text=True)
            if r.returncode != 0:
                self.notes.append("bench/python/run.sh --venv failed: " + r.stderr.strip()[-300:])
        if os.access(venv_py, os.X_OK):
            self.py = venv_py
        else:
            self.py = sys.executable
        self.py_gevent = subprocess.run([self.py, "-c", "import gevent, greenlet"],
                                        capture_output=True).returncode == 0
        self.py_requests = subprocess.run([self.py, "-c", "import requests"],
                                          capture_output=True).returncode == 0

    # --- progress

    def estimate_left(self, pending):
        if not self.durations:
            return None
        flat = [d for ds in self.durations.values() for d in ds]
        mean_all = sum(flat) / len(flat)
        left = 0.0
        for key in pending:
            ds = self.durations.get(key)
            if ds:
                left += sum(ds) / len(ds)
            elif BY_NAME[key[0]].kind == "httpd":  # a wrk run takes its duration
                left += BY_NAME[key[0]].size(self.mode, "*")
            else:
                left += mean_all
        return left

    def progress(self, text, pending):
        left = self.estimate_left(pending)
        tail = f" - about {human_secs(left)} left" if left is not None else ""
        line = f"[{self.done + 1}/{self.total}] {text}{tail}"
        if self.tty:
            sys.stderr.write("\r\x1b[K" + line)
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()

    def finish_progress(self):
        if self.tty:
            sys.stderr.write("\r\x1b[K")
        sys.stderr.write(f"done: {self.done} runs in {human_secs(time.time() - self.started)}\n")

    # --- one run of a program

    def run_prog(self, w, system, procs):
        argv = self.prog_argv(w, system, procs)
        env = dict(os.environ, GR_MAXPROCS=str(procs), GOMAXPROCS=str(procs))
        rec = {"argv": [os.path.relpath(a, ROOT) if a.startswith(ROOT) else a for a in argv]}
        try:
            r = subprocess.run(argv, capture_output=True, text=True, timeout=self.timeout, env=env)
        except subprocess.TimeoutExpired:
            rec["error"] = f"timed out after {self.timeout} s"
            return rec
        rec["output"] = r.stdout[-2000:]
        if r.returncode != 0:
            rec["error"] = f"exit status {r.returncode}: {r.stderr.strip()[-500:]}"
            return rec
        values = prog_values(w, r.stdout)
        if values is None:
            rec["error"] = "no output line with " + ", ".join(m.key for m in w.metrics)
            return rec
        rec["values"] = values
        return rec

    def run_python(self, w, system):
        kwargs = w.size(self.mode, system)
        name = w.name[len("py_"):]
        code = (
            "import json, sys\n"
            "impl, name, kw = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])\n"
            "import common\n"
            "mod = __import__('bench_goroutine' if impl == 'goroutine' else 'bench_gevent')\n"
            "fn = {'yield': 'yield_', 'greenlet': 'greenlet_switch'}.get(name, name)\n"
            "common.emit({'workload': name, 'impl': impl, **getattr(mod, fn)(**kw)})\n"
        )
        if system == "greenlet":
            name = "greenlet"
        impl = "goroutine" if system == "goroutine" else "gevent"
        env = dict(os.environ,
                   GOROUTINE_LIBRARY=os.path.join(LIBDIR, "libgoroutine.so"),
                   PYTHONPATH=os.pathsep.join([os.path.join(ROOT, "bindings", "python"),
                                               os.path.join(HERE, "python")]))
        argv = [self.py, "-c", code, impl, name, json.dumps(kwargs)]
        rec = {"argv": ["python", "-c", "<bench/run.py runner>", impl, name, json.dumps(kwargs)]}
        try:
            r = subprocess.run(argv, capture_output=True, text=True, timeout=self.timeout,
                               env=env, cwd=ROOT)
        except subprocess.TimeoutExpired:
            rec["error"] = f"timed out after {self.timeout} s"
            return rec
        rec["output"] = r.stdout[-2000:]
        if r.returncode != 0:
            rec["error"] = f"exit status {r.returncode}: {r.stderr.strip()[-500:]}"
            return rec
        vals = None
        for line in r.stdout.splitlines():
            if line.startswith("{"):
                vals = json.loads(line)
        keys = [m.key for m in w.metrics]
        if not vals or not any(k in vals for k in keys):
            rec["error"] = "no JSON line with " + ", ".join(keys)
            return rec
        rec["values"] = {k: float(vals[k]) for k in keys if k in vals}
        return rec

    # --- httpd: servers from bench/httpd.sh --serve, wrk from here

    def start_servers(self, procs, systems):
        base = free_port_base(4)
        env = dict(os.environ, PORT_BASE=str(base), PROCS=str(procs),
                   PROCS_CPUS=cpu_list(procs), LIBGOROUTINE_DIR=LIBDIR)
        if "go" not in systems:
            env["NO_GO"] = "1"
        proc = subprocess.Popen([os.path.join(HERE, "httpd.sh"), "--serve"], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)
        ports, log = {}, []
        deadline = time.time() + 120
        while time.time() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            log.append(line)
            tok = line.split()
            if tok[:1] == ["ready"] and len(tok) == 3:
                ports[{"go-net": "go"}.get(tok[1], tok[1])] = int(tok[2])
            if tok[:1] == ["serving"]:
                return proc, ports, None
        err = proc.stderr.read() if proc.poll() is not None else ""
        self.stop_servers(proc)
        return None, {}, ("bench/httpd.sh --serve did not start its servers: "
                          + ("".join(log) + err).strip()[-800:])

    @staticmethod
    def stop_servers(proc):
        if proc is None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def run_wrk(self, port, conns, seconds):
        argv = ["wrk", "-t2", f"-c{conns}", f"-d{seconds}s", "--latency", f"http://127.0.0.1:{port}/"]
        rec = {"argv": argv}
        try:
            r = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
        except subprocess.TimeoutExpired:
            rec["error"] = "wrk timed out"
            return rec
        out = r.stdout
        m = re.search(r"^Requests/sec:\s+([\d.]+)", out, re.M)
        if r.returncode != 0 or not m or float(m.group(1)) == 0:
            rec["error"] = "wrk: no answers: " + (out + r.stderr).strip()[-400:]
            return rec
        vals = {"rps": float(m.group(1))}
        m = re.search(r"^\s*99%\s+([\d.]+)(us|ms|s)\b", out, re.M)
        if m:
            vals["p99_us"] = float(m.group(1)) * {"us": 1, "ms": 1e3, "s": 1e6}[m.group(2)]
        errs = re.findall(r"^\s*(Socket errors:.*|Non-2xx.*)$", out, re.M)
        if errs:
            rec["wrk_errors"] = "; ".join(errs)
        rec["values"] = vals
        return rec

    # --- the loop

    def plan(self, workloads):
        """[(workload, procs, round, [systems in this round's order])]."""
        plan = []
        for w in workloads:
            systems = []
            for s in w.systems:
                why = self.available(w, s)
                if why:
                    self.notes.append(f"{w.name}: {s} skipped: {why}")
                else:
                    systems.append(s)
            procs_list = [p for p in w.procs if p in self.args.procs] or []
            for p in procs_list:
                for r in range(self.rounds):
                    k = r % len(systems) if systems else 0
                    plan.append((w, p, r, systems[k:] + systems[:k]))
        return plan

    def record(self, w, system, procs, rnd, rec, seconds, size):
        rec.update(workload=w.name, system=system, procs=procs, round=rnd + 1,
                   seconds=round(seconds, 3), size=size,
                   load1=float(open("/proc/loadavg").read().split()[0]))
        self.runs.append(rec)
        self.durations.setdefault((w.name, system), []).append(seconds)
        self.done += 1
        if "error" in rec:
            msg = f"{w.name} procs={procs} {system} round {rnd + 1}: {rec['error']}"
            sys.stderr.write(("\r\x1b[K" if self.tty else "") + "error: " + msg + "\n")

    def run_all(self, workloads):
        if any(w.kind == "python" for w in workloads):
            self.setup_python()
        plan = self.plan(workloads)
        # The queue of (workload, system) still to run, for the time estimate.
        pending = []
        for w, p, r, systems in plan:
            for s in systems:
                pending += [(w.name, s)] * len(self.httpd_conns(w))
        self.total = len(pending)
        for w in workloads:
            steps = [(p, r, systems) for (w_, p, r, systems) in plan if w_ is w]
            if w.kind == "httpd":
                # The servers stay up across the rounds of one procs value.
                for procs in sorted({p for p, _, _ in steps}):
                    self.run_httpd(w, procs, [(r, s) for p, r, s in steps if p == procs], pending)
                continue
            for procs, rnd, systems in steps:
                for s in systems:
                    self.progress(f"{w.name} procs={procs} {s} round {rnd + 1}/{self.rounds}", pending)
                    t0 = time.time()
                    if w.kind == "prog":
                        rec = self.run_prog(w, s, procs)
                    else:
                        rec = self.run_python(w, s)
                    pending.remove((w.name, s))
                    self.record(w, s, procs, rnd, rec, time.time() - t0, w.size(self.mode, s))
        self.finish_progress()

    @staticmethod
    def httpd_conns(w):
        """The wrk connection counts of httpd (from its rps_c<N> metrics); [1] otherwise."""
        return [int(m.key[len("rps_c"):]) for m in w.metrics if m.key.startswith("rps_c")] or [1]

    def run_httpd(self, w, procs, rounds, pending):
        systems = rounds[0][1]
        duration = w.size(self.mode, "*")
        warmup = w.extra[self.mode][0]
        conns_list = self.httpd_conns(w)
        proc, ports, err = self.start_servers(procs, systems)
        try:
            for conns in conns_list:
                if proc and warmup:
                    for s in systems:
                        if s in ports:
                            self.run_wrk(ports[s], conns, warmup)
                for rnd, order in rounds:
                    for s in order:
                        self.progress(f"httpd -c{conns} procs={procs} {s} round {rnd + 1}/{self.rounds}",
                                      pending)
                        t0 = time.time()
                        if err:
                            rec = {"error": err}
                        elif s not in ports:
                            rec = {"error": f"bench/httpd.sh started no {s} server"}
                        else:
                            rec = self.run_wrk(ports[s], conns, duration)
                        if "values" in rec:
                            rec["values"] = {f"{k}_c{conns}": v for k, v in rec["values"].items()}
                        rec["conns"] = conns
                        pending.remove((w.name, s))
                        self.record(w, s, procs, rnd, rec, time.time() - t0, duration)
        finally:
            self.stop_servers(proc)


# ---------------------------------------------------------------------------------
# The machine and the versions


def machine_info():
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = "?"
    try:
        with open("/proc/meminfo") as f:
            kb = int(f.readline().split()[1])
            mem = f"{kb / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "cpus_allowed": len(os.sched_getaffinity(0)),
        "memory": mem,
        "kernel": platform.release(),
        "loadavg_start": open("/proc/loadavg").read().split()[:3],
    }


def versions(runner):
    v = {
        "gcc": capture(["gcc", "--version"]).splitlines()[:1],
        "rustc": capture(["rustc", "--version"]),
        "go": capture([runner.go, "version"]) if runner.go else "not found",
        "wrk": (capture(["wrk", "--version"]).splitlines() or [""])[0],
        "git": capture(["git", "-C", ROOT, "describe", "--always", "--dirty", "--abbrev=12"]),
    }
    v["gcc"] = v["gcc"][0] if v["gcc"] else "?"
    if runner.py:
        v["python"] = capture([runner.py, "-c", "import sys; print(sys.version.split()[0])"])
        if runner.py_gevent:
            v["gevent"] = capture([runner.py, "-c",
                                   "import gevent, greenlet; print(gevent.__version__, "
                                   "'/ greenlet', greenlet.__version__)"])
    return v


# ---------------------------------------------------------------------------------
# The report


def fmt(x):
    if x is None:
        return "-"
    a = abs(x)
    if a >= 100:
        return f"{x:,.0f}"
    if a >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def fmt_ratio(r, lo, hi):
    if r is None:
        return "-"
    return f"{r:.3g}x ({lo:.3g}-{hi:.3g})" if lo is not None else f"{r:.3g}x"


def fmt_tick(t):
    return f"{int(t):,}" if t == int(t) else f"{t:g}"


def values_of(runs, w, system, procs, key):
    """{round: value} of the successful runs."""
    return {r["round"]: r["values"][key] for r in runs
            if r["workload"] == w and r["system"] == system and r["procs"] == procs
            and key in r.get("values", {})}


class Stats:
    def __init__(self, by_round):
        self.by_round = by_round
        v = list(by_round.values())
        self.n = len(v)
        self.median = statistics.median(v) if v else None
        self.lo = min(v) if v else None
        self.hi = max(v) if v else None


def ratio_stats(a, b):
    """libgoroutine / other: the ratio of the medians and the min-max of the ratios of
    the same round (those two runs were adjacent in time)."""
    if a.median is None or not b.median:
        return None, None, None
    per_round = [a.by_round[r] / b.by_round[r] for r in a.by_round if b.by_round.get(r)]
    return a.median / b.median, (min(per_round) if per_round else None), \
        (max(per_round) if per_round else None)


def goal_status(w, m, procs, stats, size):
    """(status, text) for the metric's goal at procs, or None when it has none here."""
    if not m.goal or procs not in m.goal[1]:
        return None
    kind, table = m.goal
    want = table[procs]
    primary, ref = w.systems[0], w.systems[1]
    if m.goal_size is not None and size != m.goal_size:
        return "NOT JUDGED", f"the goal is for size {m.goal_size:,}; this run used {size:,}"
    a = stats.get(primary)
    if kind == "max":
        if a is None or a.median is None:
            return "NO DATA", ""
        ok = a.median <= want
        return ("MET" if ok else "MISSED"), (f"{fmt(a.median)} {m.unit}, {a.median / want:.2f}x "
                                             f"the goal of {want:,g}")
    b = stats.get(ref)
    if a is None or a.median is None or b is None or not b.median:
        return "NO DATA", f"needs {ref} measured in the same run"
    ratio = a.median / b.median
    ok = ratio <= want if kind == "ratio_max" else ratio >= want
    return ("MET" if ok else "MISSED"), f"{ratio:.2f}x {ref}, against a goal of {want}x"


def svg_chart(w, runs, procs_list, path):
    """Bar chart of medians with min-max whiskers: groups = (metric, procs), bars =
    systems. Log scale when the values span more than 30x."""
    colors = {"libgoroutine": "#1f77b4", "goroutine": "#1f77b4", "go": "#2ca02c",
              "gevent": "#2ca02c", "threads": "#d62728", "greenlet": "#9467bd",
              "hook": "#ff7f0e", "raw": "#7f7f7f"}
    groups = []
    for key in w.chart_metrics:
        m = w.metric(key)
        for p in procs_list:
            bars = []
            for s in w.systems:
                st = Stats(values_of(runs, w.name, s, p, key))
                if st.n:
                    bars.append((s, st))
            if bars:
                label = (f"procs={p}" if len(w.chart_metrics) == 1
                         else f"{m.label.split(', ')[-1]}, procs={p}")
                groups.append((label, bars))
    if not groups:
        return False
    m0 = w.metric(w.chart_metrics[0])
    vals = [v for _, bars in groups for _, st in bars for v in (st.lo, st.hi) if v and v > 0]
    vmin, vmax = min(vals), max(vals)
    log = vmax / vmin > 30
    width, height, left, top, bottom = max(560, 120 + 190 * len(groups)), 400, 80, 64, 60
    plot_h = height - top - bottom
    if log:
        lo_e, hi_e = math.floor(math.log10(vmin)), math.ceil(math.log10(vmax))
        if hi_e == lo_e:
            hi_e += 1

        def y(v):
            v = max(v, 10 ** lo_e)
            return top + plot_h * (1 - (math.log10(v) - lo_e) / (hi_e - lo_e))
        ticks = [10 ** e for e in range(lo_e, hi_e + 1)]
    else:
        step = 10 ** math.floor(math.log10(vmax / 5)) if vmax > 0 else 1
        for mult in (1, 2, 5, 10):
            if vmax / (step * mult) <= 6:
                step *= mult
                break
        top_v = step * math.ceil(vmax / step)

        def y(v):
            return top + plot_h * (1 - v / top_v)
        ticks = [step * i for i in range(int(round(top_v / step)) + 1)]
    better = "lower is better" if m0.better == "lower" else "higher is better"
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="sans-serif" font-size="12">',
           "<!-- Generated by bench/run.py: medians with min-max whiskers -->",
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{width / 2}" y="22" text-anchor="middle" font-size="15">{w.name}: '
           f'{m0.unit}</text>',
           f'<text x="{width / 2}" y="40" text-anchor="middle" fill="#555">bars: median, '
           f'whiskers: min-max; {better}{", log scale" if log else ""}</text>']
    for t in ticks:
        ty = y(t)
        out.append(f'<line x1="{left}" x2="{width - 20}" y1="{ty:.1f}" y2="{ty:.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{left - 6}" y="{ty + 4:.1f}" text-anchor="end">{fmt_tick(t)}</text>')
    out.append(f'<line x1="{left}" x2="{left}" y1="{top}" y2="{top + plot_h}" stroke="black"/>')
    x = left + 20 + (width - 20 - left - 20 - 190 * len(groups)) / 2  # groups centred
    for label, bars in groups:
        bw = 150 / max(len(bars), 1)
        for i, (s, st) in enumerate(bars):
            bx = x + i * bw
            by = y(st.median)
            col = colors.get(s, "#777")
            out.append(f'<rect x="{bx:.1f}" y="{by:.1f}" width="{bw - 6:.1f}" '
                       f'height="{top + plot_h - by:.1f}" fill="{col}"><title>{s}: median '
                       f'{fmt(st.median)}, min {fmt(st.lo)}, max {fmt(st.hi)} ({st.n} runs)</title></rect>')
            cx = bx + (bw - 6) / 2
            out.append(f'<line x1="{cx:.1f}" x2="{cx:.1f}" y1="{y(st.hi):.1f}" y2="{y(st.lo):.1f}" stroke="black"/>')
            for v in (st.lo, st.hi):
                out.append(f'<line x1="{cx - 5:.1f}" x2="{cx + 5:.1f}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="black"/>')
            out.append(f'<text x="{cx:.1f}" y="{min(by, y(st.hi)) - 4:.1f}" text-anchor="middle" '
                       f'font-size="10">{fmt(st.median)}</text>')
            out.append(f'<text x="{cx:.1f}" y="{top + plot_h + 14}" text-anchor="middle" font-size="10">{s}</text>')
        out.append(f'<text x="{x + 75:.1f}" y="{top + plot_h + 32}" text-anchor="middle">{label}</text>')
        x += 190
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")
    return True


def report(runner, workloads, out_dir, machine, vers, took):
    runs = runner.runs
    mode = runner.mode
    L = ["<!-- Generated by bench/run.py (make bench); edit bench/run.py or "
         "bench/results/ANALYSIS.md, not this file. -->", ""]
    L.append("# libgoroutine benchmark report")
    L.append("")
    if mode != "full":
        L.append(f"**{mode.upper()} MODE** (`bench/run.py --{mode}`): reduced sizes and "
                 f"{runner.rounds} round(s); the numbers show the suite works, not what the "
                 "library achieves. Regenerate with `make bench` on a quiet machine.")
        L.append("")
    L.append(f"Generated by `bench/run.py` ({mode} mode, {runner.rounds} rounds, interleaved: "
             f"round r runs the systems in an order rotated by r) on "
             f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(runner.started))}; "
             f"took {human_secs(took)}. Raw results: [raw.json](raw.json).")
    L.append("")
    L.append("## Machine")
    L.append("")
    L.append(f"- CPU: {machine['cpu']}, {machine['cores']} cores ({machine['cpus_allowed']} usable), "
             f"{machine['memory']} memory")
    L.append(f"- Kernel: Linux {machine['kernel']}; load average at start "
             f"{' '.join(machine['loadavg_start'])}, at the end {' '.join(machine['loadavg_end'])}")
    L.append(f"- gcc: {vers['gcc']}; rustc: {vers['rustc']}; Go: {vers['go']}")
    L.append(f"- Python: {vers.get('python', '-')}; gevent: {vers.get('gevent', 'not installed')}; "
             f"{vers['wrk'] or 'wrk: -'}")
    L.append(f"- libgoroutine: git {vers['git']}")
    loads = [float(x) for x in machine["loadavg_start"][:1] + machine["loadavg_end"][:1]]
    loads += [r["load1"] for r in runs if "load1" in r]
    if any("load1" in r for r in runs):
        L.append(f"- Load average (1 minute) after each run: {min(loads):g} to {max(loads):g} "
                 "(the suite's own thread-per-task runs, thousands of threads in threads_skynet "
                 "and threads_parkmem, raise it themselves)")
    L.append("")
    # Other work is judged by the load before the suite started: during and after it
    # the load average counts the suite's own threads.
    load = float(machine["loadavg_start"][0])
    if load > machine["cpus_allowed"]:
        L.append(f"**The machine was busy**: a load average of {load:g} on "
                 f"{machine['cpus_allowed']} CPUs when the run started. Absolute "
                 "figures are inflated by other work and vary between rounds; the ratios "
                 "within a round (adjacent runs) and the CPU-time figures are the more "
                 "reliable comparison. Regenerate on a quiet machine before quoting numbers.")
        L.append("")
    L.append("## How to read this")
    L.append("")
    L.append("Every figure is the median of the rounds, with the smallest and largest value "
             "(min-max). The ratio column is libgoroutine's median over the other system's median "
             "(below 1 means libgoroutine needs less time or memory; for requests/s and round "
             "trips/s above 1 means libgoroutine serves more); its spread is the min-max of the "
             "ratios taken within each round, whose two runs were adjacent in time. Goals are "
             "those of issue 7, judged on the median.")
    L.append("")
    if runner.notes:
        L.append("Not measured in this run:")
        L.append("")
        for n in runner.notes:
            L.append(f"- {n}")
        L.append("")

    # Goals summary
    L.append("## Goals")
    L.append("")
    L.append("| workload | metric | procs | goal | libgoroutine | reference | ratio (spread) "
             "| status | where it stands |")
    L.append("|---|---|---|---|---|---|---|---|---|")
    judged = {}
    for w in workloads:
        for m in w.metrics:
            if not m.goal:
                continue
            for p in w.procs:
                if p not in runner.args.procs:
                    continue
                stats = {s: Stats(values_of(runs, w.name, s, p, m.key)) for s in w.systems}
                size = w.size(mode, w.systems[0])
                gs = goal_status(w, m, p, stats, size)
                if gs is None:
                    continue
                judged[(w.name, m.key, p)] = gs
                ref = w.systems[1]
                r, lo, hi = ratio_stats(stats[w.systems[0]], stats[ref])
                L.append(f"| {w.name} | {m.label} | {p} | {m.goal_text(p, w.systems[1])} | "
                         f"{fmt(stats[w.systems[0]].median)} {m.unit} | "
                         f"{ref} {fmt(stats[ref].median)} | {fmt_ratio(r, lo, hi)} | "
                         f"**{gs[0]}** | {gs[1]} |")
    L.append("")

    for w in workloads:
        procs_list = [p for p in w.procs if p in runner.args.procs]
        L.append(f"## {w.name}")
        L.append("")
        if w.kind == "httpd":
            sizes = (f"wrk runs of {w.size(mode, '*')} s, after a warm-up of "
                     f"{w.extra[mode][0]} s per server and connection count")
        else:
            sizes = "sizes: " + ", ".join(
                f"{s} {w.size(mode, s) if w.kind != 'python' else json.dumps(w.size(mode, s)) if w.size(mode, s) else 'the defaults of bench/python'}"
                for s in w.systems)
        L.append(f"{w.what}; {sizes}.")
        L.append("")
        svg = os.path.join(out_dir, f"{w.name}.svg")
        if svg_chart(w, runs, procs_list, svg):
            L.append(f"![{w.name}]({w.name}.svg)")
            L.append("")
        for m in w.metrics:
            for p in procs_list:
                stats = {s: Stats(values_of(runs, w.name, s, p, m.key)) for s in w.systems}
                if not any(st.n for st in stats.values()):
                    continue
                L.append(f"### {m.label} ({m.unit}, {'lower' if m.better == 'lower' else 'higher'} "
                         f"is better), procs={p}")
                L.append("")
                L.append(f"| system | median | min-max | runs | {w.systems[0]} / system (spread) |")
                L.append("|---|---|---|---|---|")
                a = stats[w.systems[0]]
                for s in w.systems:
                    st = stats[s]
                    if s == w.systems[0]:
                        ratio = "-"
                    elif m.total and w.size(mode, s) != w.size(mode, w.systems[0]):
                        ratio = f"- (run at size {w.size(mode, s):,})"
                    else:
                        ratio = fmt_ratio(*ratio_stats(a, st))
                    if st.n:
                        L.append(f"| {s} | {fmt(st.median)} | {fmt(st.lo)}-{fmt(st.hi)} | {st.n} | {ratio} |")
                    else:
                        L.append(f"| {s} | no data | | 0 | |")
                gs = judged.get((w.name, m.key, p))
                if gs:
                    L.append("")
                    L.append(f"Goal {m.goal_text(p, w.systems[1])}: **{gs[0]}** ({gs[1]}).")
                L.append("")
        errs = [r for r in runs if r["workload"] == w.name and "error" in r]
        if errs:
            L.append("Failed runs:")
            L.append("")
            for r in errs:
                L.append(f"- {r['system']} procs={r['procs']} round {r['round']}: "
                         f"{r['error'].splitlines()[0][:300]}")
            L.append("")

    icount = os.path.join(RESULTS, "icount.json")
    if os.path.exists(icount):
        L.append("## Instructions per operation (callgrind, criterion micro-benchmarks)")
        L.append("")
        try:
            with open(icount) as f:
                data = json.load(f)
            L.append("From `bench/results/icount.json` (`make bench-check`).")
            L.append("")
            L.append("| benchmark | instructions per operation |")
            L.append("|---|---|")
            for k, v in sorted(data.items()):
                if isinstance(v, (int, float)):
                    L.append(f"| {k} | {fmt(float(v))} |")
        except (OSError, ValueError) as e:
            L.append(f"bench/results/icount.json could not be read: {e}")
        L.append("")

    analysis = os.path.join(RESULTS, "ANALYSIS.md")
    if os.path.exists(analysis):
        with open(analysis) as f:
            text = f.read().strip()
        # Its opening comment (what the file is) is for its readers, not the report's.
        text = re.sub(r"\A<!--.*?-->\s*", "", text, flags=re.S)
        # Its headings go one level down, under this report's own.
        text = re.sub(r"^(#+) ", lambda m_: "#" + m_.group(1) + " ", text, flags=re.M)
        L.append(text)
        L.append("")

    with open(os.path.join(out_dir, "REPORT.md"), "w") as f:
        f.write("\n".join(L))
    return judged


def write_medians(runner, workloads, path):
    """medians.tsv: one line per workload, metric, procs and system that has numbers
    (tab-separated, a header line first), for scripts and tests/bench_suite.rs."""
    lines = ["workload\tmetric\tprocs\tsystem\truns\tmedian\tmin\tmax"]
    for w in workloads:
        for m in w.metrics:
            for p in w.procs:
                for s in w.systems:
                    st = Stats(values_of(runner.runs, w.name, s, p, m.key))
                    if st.n:
                        lines.append(f"{w.name}\t{m.key}\t{p}\t{s}\t{st.n}\t{st.median:g}\t"
                                     f"{st.lo:g}\t{st.hi:g}")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


# ---------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--quick", action="store_true", help="reduced sizes, 3 rounds (under 3 minutes)")
    g.add_argument("--smallest", action="store_true",
                   help="the tiniest sizes, 1 round (for tests/bench_suite.rs)")
    ap.add_argument("--only", default="", help="comma-separated workloads: "
                    + ",".join(w.name for w in WORKLOADS))
    ap.add_argument("--rounds", type=int, default=0, help="rounds (default 5 full, 3 quick, 1 smallest)")
    ap.add_argument("--procs", default="1,2", help="processor counts to run at (default 1,2)")
    ap.add_argument("--out", help="output directory (default: bench/results for a full run, "
                    "target/bench for --quick and --smallest)")
    ap.add_argument("--report-only", action="store_true",
                    help="write REPORT.md, medians.tsv and the SVGs again from DIR/raw.json "
                         "(after editing ANALYSIS.md, say) without running anything")
    ap.add_argument("--list", action="store_true",
                    help="print each workload and its systems (the measured one first), then exit")
    args = ap.parse_args()
    if args.list:
        for w in WORKLOADS:
            print(w.name, *w.systems)
        return 0
    try:
        args.procs = [int(p) for p in args.procs.split(",") if p]
    except ValueError:
        ap.error("--procs takes numbers like 1,2")
    if not args.procs or min(args.procs) < 1:
        ap.error("--procs takes numbers >= 1")
    if args.out is None:
        short = args.quick or args.smallest
        args.out = os.path.join(TARGET, "bench") if short else RESULTS
    if args.rounds < 0:
        ap.error("--rounds must be >= 1")
    names = [n for n in args.only.split(",") if n]
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        ap.error("unknown workload(s): " + ", ".join(unknown))
    workloads = [w for w in WORKLOADS if not names or w.name in names]

    # Every connection of wrk and of the servers needs a descriptor.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    os.makedirs(args.out, exist_ok=True)
    raw_path = os.path.join(args.out, "raw.json")
    if args.report_only:
        with open(raw_path) as f:
            raw = json.load(f)
        args.quick, args.smallest = raw["mode"] == "quick", raw["mode"] == "smallest"
        args.rounds, args.procs = raw["rounds"], raw["procs"]
        runner = Runner(args)
        runner.started, runner.runs, runner.notes = raw["started"], raw["runs"], raw["notes"]
        took, machine, vers = raw["seconds"], raw["machine"], raw["versions"]
        for r in runner.runs:  # values again from the stored output (derived ones too)
            w = BY_NAME.get(r["workload"])
            if w and w.kind == "prog" and "values" in r and r.get("output"):
                r["values"] = prog_values(w, r["output"]) or r["values"]
        ran = {r["workload"] for r in runner.runs}
        workloads = [w for w in workloads if w.name in ran]
    else:
        runner = Runner(args)
        machine = machine_info()
        try:
            runner.run_all(workloads)
        except KeyboardInterrupt:
            sys.stderr.write("\ninterrupted: writing the report of what ran\n")
        took = time.time() - runner.started
        machine["loadavg_end"] = open("/proc/loadavg").read().split()[:3]
        vers = versions(runner)
        with open(raw_path, "w") as f:
            json.dump({"mode": runner.mode, "rounds": runner.rounds, "procs": args.procs,
                       "started": runner.started, "seconds": round(took, 1), "machine": machine,
                       "versions": vers, "notes": runner.notes, "runs": runner.runs}, f, indent=1)
    judged = report(runner, workloads, args.out, machine, vers, took)
    write_medians(runner, workloads, os.path.join(args.out, "medians.tsv"))
    missed = [k for k, v in judged.items() if v[0] == "MISSED"]
    met = [k for k, v in judged.items() if v[0] == "MET"]
    print(f"wrote {os.path.join(args.out, 'REPORT.md')}: goals met {len(met)}, missed {len(missed)}, "
          f"{sum(1 for r in runner.runs if 'error' in r)} failed runs, {len(runner.notes)} skipped")
    for n in runner.notes:
        print("  " + n)
    return 0


if __name__ == "__main__":
    sys.exit(main())
