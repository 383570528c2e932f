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
    bench/icount.py --locked          also count the locked (atomic read-modify-
                                      write) instructions per op, and where they are
                                      (callgrind --dump-instr=yes, matched against
                                      objdump's disassembly of the program)
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


def parse_dump(path, by_addr=None):
    """(name, iters, total Ir, self Ir per function) of one dump, or None when
    it is not one of the program's labelled regions. With `by_addr` (a dump made
    with --dump-instr=yes), also adds each instruction's cost to by_addr[address]
    and records each function's lowest address in by_addr.entry[function]."""
    label = None
    total = None
    selfcost = collections.Counter()
    fn = None
    names = {}
    call_cost_next = False
    cost_at = 2 if by_addr is not None else 1  # "addr line cost" or "line cost"
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            c = line[:1]
            if c.isdigit() or c in "+-*":
                if call_cost_next:
                    # The line after calls= is the call's inclusive cost.
                    call_cost_next = False
                    continue
                parts = line.split()
                if len(parts) > cost_at:
                    selfcost[fn] += int(parts[cost_at])
                    if by_addr is not None:
                        addr = int(parts[0], 0)
                        by_addr[addr] += int(parts[cost_at])
                        if addr < by_addr.entry.get(fn, addr + 1):
                            by_addr.entry[fn] = addr
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


class AddrCost(collections.Counter):
    """Ir by instruction address, and each function's lowest address seen."""

    def __init__(self):
        super().__init__()
        self.entry = {}


def run_once(exe, args, keep, per_instr=False):
    """One valgrind run: {name: (Ir per op, Counter of self Ir per op by function)};
    with `per_instr`, also {name: (Counter of executions per op by address, the
    lowest address seen of each function)} as a second value."""
    outdir = keep or tempfile.mkdtemp(prefix="icount.")
    os.makedirs(outdir, exist_ok=True)
    for old in os.listdir(outdir):
        if old.startswith("callgrind.out."):
            os.unlink(os.path.join(outdir, old))
    cmd = ["valgrind", "--tool=callgrind", "--separate-threads=no",
           "--compress-strings=no", "--compress-pos=no"]
    if per_instr:
        cmd.append("--dump-instr=yes")
    cmd += [f"--callgrind-out-file={outdir}/callgrind.out.%p", exe] + args
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
            by_addr = AddrCost() if per_instr else None
            got = parse_dump(os.path.join(outdir, name), by_addr)
            if got:
                op, iters, total, selfcost = got
                regions[op][iters] = (total, selfcost, by_addr)
    finally:
        if not keep:
            shutil.rmtree(outdir, ignore_errors=True)
    result = {}
    instrs = {}
    for op, by_iters in regions.items():
        if len(by_iters) != 2:
            raise MeasureError(f"{op}: expected dumps at N and 2N, got {sorted(by_iters)}")
        n1, n2 = sorted(by_iters)
        (t1, s1, a1), (t2, s2, a2) = by_iters[n1], by_iters[n2]
        per_fn = collections.Counter()
        for fn in set(s1) | set(s2):
            per_fn[fn] = (s2[fn] - s1[fn]) / (n2 - n1)
        result[op] = ((t2 - t1) / (n2 - n1), per_fn)
        if per_instr:
            per_addr = collections.Counter(
                {a: (a2[a] - a1[a]) / (n2 - n1) for a in set(a1) | set(a2)})
            instrs[op] = (per_addr, a2.entry)
    if not result:
        raise MeasureError("no labelled callgrind dumps (is valgrind's callgrind working?)")
    return (result, instrs) if per_instr else result


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
    instrs = None
    for i in range(opts.runs):
        keep = os.path.join(opts.keep, f"run{i + 1}") if opts.keep else None
        if opts.locked and i == 0:
            got, instrs = run_once(exe, args, keep, per_instr=True)
            runs.append(got)
        else:
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
    return counts, spread, meta, runs, (exe, instrs)


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


# A lock prefix, an xchg with memory (locked without one; `xchg %ax,%ax` is a
# nop) or mfence.
LOCKED = re.compile(r"^(lock\b|mfence\b|xchg\b.*\()")


def disassemble(exe):
    """{address: (function, instruction)} and {function: address} from objdump."""
    out = subprocess.run(["objdump", "-d", "-C", "--no-show-raw-insn", exe],
                         stdout=subprocess.PIPE, text=True, check=True).stdout
    code, entry, fn = {}, {}, None
    for line in out.splitlines():
        m = re.match(r"^([0-9a-f]+) <(.*)>:$", line)
        if m:
            fn = m.group(2)
            entry[fn] = int(m.group(1), 16)
            continue
        m = re.match(r"^\s+([0-9a-f]+):\s+(\S.*)$", line)
        if m and fn:
            code[int(m.group(1), 16)] = (fn, m.group(2).split("#")[0].strip())
    return code, entry


def print_locked(exe, instrs):
    """Locked instructions (a lock prefix, xchg with memory, mfence) executed per op,
    with their function and text. callgrind gives run-time addresses: the load
    offset is the one that most functions' lowest executed address (their entry)
    agrees on."""
    code, entry = disassemble(exe)
    stripped = {re.sub(r"::h[0-9a-f]{16}$", "", f): a for f, a in entry.items()}
    for op in order(instrs):
        per_addr, seen = instrs[op]
        offsets = collections.Counter(
            lo - stripped[fn] for fn, lo in seen.items() if fn in stripped)
        if not offsets:
            print(f"\n{op}: no function matched the disassembly")
            continue
        bias = offsets.most_common(1)[0][0]
        rows = collections.Counter()
        for addr, n in per_addr.items():
            fn, text = code.get(addr - bias, (None, ""))
            if fn and LOCKED.match(text) and n >= 0.005:
                rows[(fn, text)] += n
        total = sum(rows.values())
        print(f"\n{op}: {total:.2f} locked instructions per op")
        for (fn, text), n in sorted(rows.items(), key=lambda kv: -kv[1]):
            print(f"  {n:6.2f}  {text:<34} {re.sub(r'::h[0-9a-f]{16}$', '', fn)}")


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
    p.add_argument("--locked", action="store_true",
                   help="print the locked instructions executed per op (first run)")
    opts = p.parse_args()
    if opts.runs < 1 or opts.scale <= 0:
        p.error("--runs >= 1 and --scale > 0")
    if shutil.which("valgrind") is None:
        print("icount: valgrind is not installed (apt-get install valgrind)", file=sys.stderr)
        return 2
    try:
        counts, spread, meta, runs, (exe, instrs) = measure(opts)
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
    if opts.locked:
        print_locked(exe, instrs)
    if opts.write_baseline:
        write_json(opts.baseline, counts, meta)
        print(f"wrote {os.path.relpath(opts.baseline, ROOT)}")
    if opts.check and not check(counts, opts.threshold, opts.baseline):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
