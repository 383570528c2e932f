#!/usr/bin/env python3
"""Instructions per micro-operation under callgrind, and the regression guard.

Owns `make bench-check` / `make bench-baseline` (mk/bench.mk). Builds the
`microbench/icount.rs` program (cargo bench --no-run), runs it once under
`valgrind --tool=callgrind`, and reads the callgrind dumps it asks for: every
operation of microbench/common is measured at N and at 2N iterations, one dump each
(client requests ZERO_STATS / DUMP_STATS_AT around the region, all threads), so

    instructions per op = (Ir(2N) - Ir(N)) / N

which leaves out everything a region costs once (the harness overhead: spawning
the partner goroutine, the client requests, the first switches). Instruction
counts do not depend on how busy the (shared) machine is, so a rise means the code
does more work. Python 3 standard library only.

    bench/icount.py                   measure; write bench/results/icount.json
    bench/icount.py --check           ... and compare with bench/baseline/icount.json:
                                      exit 1 if any op rose more than --threshold %
    bench/icount.py --write-baseline  measure and rewrite the baseline
    bench/icount.py --top 12          also print where each op's instructions go
                                      (self cost per function, per op)
    --runs 3   run valgrind 3 times, report the median and the spread
    --only NAME (repeatable), --scale F (iterations x F), --keep DIR (dumps),
    --baseline FILE (another baseline to check against or write)

Exit status: 0 ok, 1 regression (with --check), 2 could not measure.
"""

import argparse
import collections
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "bench", "results", "icount.json")
BASELINE = os.path.join(ROOT, "bench", "baseline", "icount.json")
LABEL = re.compile(r"^desc: Trigger: Client Request: icount (\S+) (\d+)$")


class MeasureError(Exception):
    pass


def build_program():
    """Builds microbench/icount.rs with the bench profile; returns the executable."""
    cargo = os.environ.get("CARGO", "cargo")
    cmd = [cargo, "bench", "--bench", "icount", "--no-run", "--message-format=json"]
    proc = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        raise MeasureError(f"{' '.join(cmd)} failed ({proc.returncode})")
    exe = None
    for line in proc.stdout.splitlines():
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if (msg.get("reason") == "compiler-artifact"
                and msg.get("target", {}).get("name") == "icount"
                and msg.get("executable")):
            exe = msg["executable"]
    if exe is None:
        raise MeasureError("cargo reported no icount executable")
    return exe


def valgrind_version():
    return subprocess.run(["valgrind", "--version"], stdout=subprocess.PIPE,
                          text=True, check=True).stdout.strip()


def parse_dump(path):
    """(name, iters, total Ir, self Ir per function) of one dump, or None when
    it is not one of the program's labelled regions."""
    label = None
    total = None
    selfcost = collections.Counter()
    fn = None
    names = {}
    call_cost_next = False
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            c = line[:1]
            if c.isdigit() or c in "+-*":
                if call_cost_next:
                    # The line after calls= is the call's inclusive cost.
                    call_cost_next = False
                    continue
                parts = line.split()
                if len(parts) >= 2:
                    selfcost[fn] += int(parts[1])
            elif line.startswith("fn="):
                v = line[3:].strip()
                m = re.match(r"\((\d+)\)(?: (.*))?$", v)
                if m:
                    if m.group(2):
                        names[m.group(1)] = m.group(2)
                    v = names.get(m.group(1), v)
                fn = v
            elif line.startswith("calls="):
                call_cost_next = True
            elif line.startswith("desc: Trigger:"):
                m = LABEL.match(line.rstrip("\n"))
                if not m:
                    return None
                label = (m.group(1), int(m.group(2)))
            elif line.startswith("totals:"):
                total = int(line.split()[1])
    if label is None or total is None:
        return None
    if sum(selfcost.values()) != total:
        # Every cost line belongs to one function: a mismatch means this parser no
        # longer understands callgrind's format.
        raise MeasureError(f"{path}: functions sum to {sum(selfcost.values())}, totals: {total}")
    return label[0], label[1], total, selfcost


def run_once(exe, args, keep):
    """One valgrind run: {name: (Ir per op, Counter of self Ir per op by function)}."""
    outdir = keep or tempfile.mkdtemp(prefix="icount.")
    os.makedirs(outdir, exist_ok=True)
    for old in os.listdir(outdir):
        if old.startswith("callgrind.out."):
            os.unlink(os.path.join(outdir, old))
    cmd = ["valgrind", "--tool=callgrind", "--separate-threads=no",
           "--compress-strings=no", "--compress-pos=no",
           f"--callgrind-out-file={outdir}/callgrind.out.%p", exe] + args
    env = dict(os.environ, GR_MAXPROCS="1")
    try:
        proc = subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, timeout=900)
        if proc.returncode != 0:
            tail = "\n".join(proc.stderr.splitlines()[-15:])
            raise MeasureError(f"the program failed under valgrind ({proc.returncode}):\n{tail}")
        regions = collections.defaultdict(dict)
        for name in os.listdir(outdir):
            if not name.startswith("callgrind.out."):
                continue
            got = parse_dump(os.path.join(outdir, name))
            if got:
                op, iters, total, selfcost = got
                regions[op][iters] = (total, selfcost)
    finally:
        if not keep:
            shutil.rmtree(outdir, ignore_errors=True)
    result = {}
    for op, by_iters in regions.items():
        if len(by_iters) != 2:
            raise MeasureError(f"{op}: expected dumps at N and 2N, got {sorted(by_iters)}")
        n1, n2 = sorted(by_iters)
        (t1, s1), (t2, s2) = by_iters[n1], by_iters[n2]
        per_fn = collections.Counter()
        for fn in set(s1) | set(s2):
            per_fn[fn] = (s2[fn] - s1[fn]) / (n2 - n1)
        result[op] = ((t2 - t1) / (n2 - n1), per_fn)
    if not result:
        raise MeasureError("no labelled callgrind dumps (is valgrind's callgrind working?)")
    return result


def git_commit():
    try:
        return subprocess.run(["git", "describe", "--always", "--dirty"], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def measure(opts):
    exe = build_program()
    args = ["--scale", repr(opts.scale)]
    for name in opts.only:
        args += ["--only", name]
    runs = []
    for i in range(opts.runs):
        keep = os.path.join(opts.keep, f"run{i + 1}") if opts.keep else None
        runs.append(run_once(exe, args, keep))
    names = list(runs[0])
    counts = {}
    spread = {}
    for op in names:
        vals = [r[op][0] for r in runs]
        med = statistics.median(vals)
        counts[op] = round(med, 1)
        spread[op] = (max(vals) - min(vals)) / med * 100 if med else 0.0
    meta = {
        "valgrind": valgrind_version(),
        "commit": git_commit(),
        "unit": "instructions per operation (callgrind Ir, all threads)",
        "runs": opts.runs,
        "scale": opts.scale,
    }
    if opts.only:
        meta["only"] = opts.only
    return counts, spread, meta, runs


def order(names):
    """Ops in a stable order (by name)."""
    return sorted(names)


def write_json(path, counts, meta):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    data = {"_meta": meta}
    data.update({k: counts[k] for k in order(counts)})
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2)
        f.write("\n")


def print_top(runs, top):
    for op in order(runs[0]):
        total, cycles = runs[0][op]
        # callgrind names a function re-entered on another goroutine's stack fn'2
        # (it sees the switch as recursion): one function, one line.
        per_fn = collections.Counter()
        for fn, v in cycles.items():
            per_fn[re.sub(r"'\d+$", "", fn or "???")] += v
        print(f"\n{op}: {total:.1f} instructions per op; top functions (self):")
        for fn, v in sorted(per_fn.items(), key=lambda kv: -kv[1])[:top]:
            if v < 0.05:
                break
            print(f"  {v:9.1f}  {100 * v / total:5.1f}%  {fn}")


def check(counts, threshold, baseline):
    """Compares with the baseline; returns True when nothing rose > threshold %."""
    try:
        with open(baseline, encoding="utf-8") as f:
            base = json.load(f)
    except FileNotFoundError:
        print(f"no baseline at {baseline} (make bench-baseline writes it)")
        return False
    base_meta = base.pop("_meta", {})
    ok = True
    print(f"baseline: commit {base_meta.get('commit', '?')}, {base_meta.get('valgrind', '?')}")
    print(f"{'bench':<40} {'baseline':>10} {'now':>10} {'change':>8}")
    for op in order(set(base) | set(counts)):
        if op not in counts:
            print(f"{op:<40} {base[op]:>10.1f} {'-':>10} {'':>8}  not measured")
            continue
        if op not in base:
            print(f"{op:<40} {'-':>10} {counts[op]:>10.1f} {'':>8}  new (not in baseline)")
            continue
        change = (counts[op] - base[op]) / base[op] * 100
        verdict = ""
        if change > threshold:
            verdict = f"  REGRESSION (> +{threshold:g}%)"
            ok = False
        print(f"{op:<40} {base[op]:>10.1f} {counts[op]:>10.1f} {change:>+7.1f}%{verdict}")
    return ok


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--check", action="store_true", help="compare with the baseline")
    p.add_argument("--write-baseline", action="store_true", help="rewrite the baseline")
    p.add_argument("--threshold", type=float, default=10.0, help="allowed rise in %%")
    p.add_argument("--baseline", default=BASELINE, help="baseline file (read or written)")
    p.add_argument("--runs", type=int, default=1)
    p.add_argument("--scale", type=float, default=1.0)
    p.add_argument("--only", action="append", default=[])
    p.add_argument("--keep", help="keep the callgrind dumps in this directory")
    p.add_argument("--top", type=int, default=0, help="print the top functions per op")
    opts = p.parse_args()
    if opts.runs < 1 or opts.scale <= 0:
        p.error("--runs >= 1 and --scale > 0")
    if shutil.which("valgrind") is None:
        print("icount: valgrind is not installed (apt-get install valgrind)", file=sys.stderr)
        return 2
    try:
        counts, spread, meta, runs = measure(opts)
    except MeasureError as e:
        print(f"icount: {e}", file=sys.stderr)
        return 2
    print(f"{'bench':<40} {'instr/op':>10}" + (f" {'spread':>8}" if opts.runs > 1 else ""))
    for op in order(counts):
        extra = f" {spread[op]:>7.2f}%" if opts.runs > 1 else ""
        print(f"{op:<40} {counts[op]:>10.1f}{extra}")
    write_json(RESULTS, counts, meta)
    print(f"wrote {os.path.relpath(RESULTS, ROOT)}")
    if opts.top:
        print_top(runs, opts.top)
    if opts.write_baseline:
        write_json(opts.baseline, counts, meta)
        print(f"wrote {os.path.relpath(opts.baseline, ROOT)}")
    if opts.check and not check(counts, opts.threshold, opts.baseline):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
