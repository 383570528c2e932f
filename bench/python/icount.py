#!/usr/bin/env python3
"""Instructions per operation of the Python workloads, goroutine vs gevent, under
callgrind: what the load of a shared machine does not change.

Each workload of bench_goroutine.py / bench_gevent.py runs twice under
`valgrind --tool=callgrind` (all threads of the process; a server in another
process, as crawl's, is not counted), at a small and a larger size, and

    instructions per operation = (Ir(large) - Ir(small)) / (operations between them)

which leaves out what the run costs once (interpreter start-up, imports, patching).
Both libraries run with the same environment: requests reads every environment
variable twice per call (proxy settings), so their number changes its cost.

    bench/python/icount.py                         every workload, both libraries
    bench/python/icount.py spawn echo              some workloads
    bench/python/icount.py --impl goroutine crawl  one library
    bench/python/icount.py --top 25 echo           also where the instructions go
                                                   (self cost per function, per op)
    --keep DIR   keep the callgrind dumps there (for callgrind_annotate)

Uses the bench venv's python (bench/python/run.sh --venv) and the library at
GOROUTINE_LIBRARY or target/release. GR_MAXPROCS=1, as bench/icount.py: the
goroutine side's idle workers then do not spin, which callgrind's serialisation of
threads would make erratic.
"""

import argparse
import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

# name: (what one operation is, keyword arguments small, large, operations between)
WORKLOADS = {
    "spawn": ("spawn + join of a goroutine doing nothing (warm)",
              {"n": 2000, "rounds": 2}, {"n": 2000, "rounds": 3}, 2000),
    "echo": ("echo round trip, 64 B, the library's socket (client + server side)",
             {"conns": 10, "rounds": 100}, {"conns": 10, "rounds": 300}, 2000),
    "echo_std": ("echo round trip, 64 B, the patched socket module",
                 {"conns": 10, "rounds": 100}, {"conns": 10, "rounds": 300}, 2000),
    "crawl": ("requests.get against bench/httpd_threads, 20 at a time (client only)",
              {"n": 100, "conc": 20}, {"n": 300, "conc": 20}, 200),
    "crawl_unpatched": ("the same without monkey patching (one request at a time: the blocking "
                        "calls block the thread), the floor under crawl",
                        {"n": 100, "conc": 20, "patch": False}, {"n": 300, "conc": 20, "patch": False}, 200),
}
# Workloads that only one library runs.
ONLY = {"crawl_unpatched": "goroutine"}
IMPLS = ("goroutine", "gevent")


def venv_python():
    r = subprocess.run([os.path.join(HERE, "run.sh"), "--venv"], stdout=subprocess.PIPE, text=True,
                       check=True)
    return r.stdout.strip().splitlines()[-1]


def run(py, impl, workload, kwargs, out):
    prog = os.path.join(HERE, "bench_goroutine.py" if impl == "goroutine" else "bench_gevent.py")
    cmd = ["valgrind", "--tool=callgrind", "--separate-threads=no", f"--callgrind-out-file={out}",
           py, prog, workload.split("_unpatched")[0]] + [f"{k}={v!r}" for k, v in kwargs.items()]
    env = dict(os.environ, GR_MAXPROCS="1",
               PYTHONPATH=os.pathsep.join([os.path.join(ROOT, "bindings", "python"), HERE]))
    env.setdefault("GOROUTINE_LIBRARY", os.path.join(ROOT, "target", "release", "libgoroutine.so"))
    r = subprocess.run(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        sys.exit(f"{impl} {workload} failed under valgrind:\n" + "\n".join(r.stderr.splitlines()[-15:]))
    with open(out) as f:
        for line in f:
            if line.startswith(("totals:", "summary:")):
                return int(line.split()[1])
    sys.exit(f"{out}: no totals line")


def self_costs(path):
    """Self instructions per function of a dump (callgrind_annotate's table), keyed
    by "file:function" with the file's directory and a recursion mark ('2) dropped."""
    r = subprocess.run(["callgrind_annotate", "--threshold=100", "--inclusive=no", "--auto=no", path],
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, check=True)
    costs = collections.Counter()
    row = re.compile(r"^\s*([\d,]+) \([ \d.]+%\)\s+(.*?)(?: \[.*\])?$")
    in_table = False
    for line in r.stdout.splitlines():
        if line.startswith("Ir") and "file:function" in line:
            in_table = True
            continue
        m = row.match(line) if in_table else None
        if m:
            fn = re.sub(r"'\d+$", "", os.path.basename(m.group(2)))
            costs[fn] += int(m.group(1).replace(",", ""))
    return costs


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("workloads", nargs="*", choices=[[]] + list(WORKLOADS), default=[])
    ap.add_argument("--impl", action="append", choices=IMPLS)
    ap.add_argument("--top", type=int, default=0)
    ap.add_argument("--keep")
    a = ap.parse_args()
    if not shutil.which("valgrind"):
        sys.exit("needs valgrind (Debian package valgrind)")
    py = venv_python()
    outdir = a.keep or tempfile.mkdtemp(prefix="pyicount.")
    os.makedirs(outdir, exist_ok=True)
    try:
        print("| operation | " + " | ".join(a.impl or IMPLS) + " |")
        print("|---|" + "---|" * len(a.impl or IMPLS))
        tops = []
        for w in a.workloads or list(WORKLOADS):
            what, small, large, ops = WORKLOADS[w]
            cells = []
            for impl in a.impl or IMPLS:
                if ONLY.get(w, impl) != impl:
                    cells.append("-")
                    continue
                f1 = os.path.join(outdir, f"{w}.{impl}.small")
                f2 = os.path.join(outdir, f"{w}.{impl}.large")
                per_op = (run(py, impl, w, large, f2) - run(py, impl, w, small, f1)) / ops
                cells.append(f"{per_op:,.0f}")
                if a.top:
                    c1, c2 = self_costs(f1), self_costs(f2)
                    diff = {fn: (c2[fn] - c1[fn]) / ops for fn in set(c1) | set(c2)}
                    tops.append((f"{w} / {impl}: {per_op:,.0f} per op", diff))
            print(f"| {w}: {what} | " + " | ".join(cells) + " |", flush=True)
        for title, diff in tops:
            print(f"\n{title}; top functions (self instructions per op):")
            for fn, v in sorted(diff.items(), key=lambda kv: -kv[1])[: a.top]:
                print(f"  {v:10,.0f}  {fn}")
    finally:
        if not a.keep:
            shutil.rmtree(outdir, ignore_errors=True)


if __name__ == "__main__":
    main()
