"""Turns the JSON lines of run.sh into a table of medians and ratios."""

import json
import statistics
import sys

rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
header = sys.argv[2] if len(sys.argv) > 2 else ""
runs = sys.argv[3] if len(sys.argv) > 3 else "?"


def med(workload, impl, key):
    v = [r[key] for r in rows if r["workload"] == workload and r["impl"] == impl and key in r]
    return (statistics.median(v), v) if v else (None, [])


def paired(w, gw, key):
    """The median of the ratios of the runs made one after the other (run.sh
    alternates the two libraries): steadier than the ratio of the medians when the
    machine's load drifts during the run."""
    a = med(w, "goroutine", key)[1]
    b = med(gw, "gevent", key)[1]
    r = [x / y for x, y in zip(a, b) if y]
    return statistics.median(r) if r else None


LINES = [
    # (label, workload, gevent workload, key, unit, better)
    ("spawn+join, cold (ns/goroutine)", "spawn", "spawn", "cold_ns", "ns", "lower"),
    ("spawn+join, warm (ns/goroutine)", "spawn", "spawn", "warm_ns", "ns", "lower"),
    ("yield ping-pong round trip (ns)", "yield", "yield", "roundtrip_ns", "ns", "lower"),
    ("  vs raw greenlet switch round trip (ns)", "yield", "greenlet", "roundtrip_ns", "ns", "lower"),
    ("unbuffered channel ping-pong (ns)", "chanpp", "chanpp", "roundtrip_ns", "ns", "lower"),
    ("TCP echo, 50 conns x 64 B (round trips/s)", "echo", "echo", "rps", "/s", "higher"),
    ("  echo p99 latency (us)", "echo", "echo", "p99_us", "us", "lower"),
    ("TCP echo, patched socket module (round trips/s)", "echo_std", "echo_std", "rps", "/s", "higher"),
    ("  its p99 latency (us)", "echo_std", "echo_std", "p99_us", "us", "lower"),
    ("crawler, requests.get x 2,000, 100 at a time (req/s)", "crawl", "crawl", "rps", "/s", "higher"),
    ("  its client CPU time per request (us)", "crawl", "crawl", "cpu_us_per_req", "us", "lower"),
    ("parked memory (bytes/goroutine, RSS)", "parkmem", "parkmem", "bytes_per_goroutine", "B", "lower"),
    ("  page tables after parking N (VmPTE KiB)", "parkmem", "parkmem", "vmpte_kib", "KiB", "lower"),
]

print(f"Python benchmarks, median of {runs} runs ({header})")
print()
print("| workload | goroutine | gevent | goroutine / gevent | median of paired runs' ratios |")
print("|---|---|---|---|---|")
for label, w, gw, key, unit, better in LINES:
    a, av = med(w, "goroutine", key)
    b, bv = med(gw, "gevent", key)
    if a is None and b is None:
        continue
    fa = "-" if a is None else f"{a:,.0f}"
    fb = "-" if b is None else f"{b:,.0f}"
    ratio = "-" if (a is None or b in (None, 0)) else f"{a / b:.2f}x"
    p = paired(w, gw, key)
    pr = "-" if p is None else f"{p:.2f}x"
    print(f"| {label} | {fa} | {fb} | {ratio} | {pr} |")
print()
print("raw runs:")
for r in rows:
    print("  " + json.dumps(r))
