"""Helpers shared by the two benchmark programs."""

import json
import sys


def emit(d):
    print(json.dumps(d), flush=True)


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
