#!/usr/bin/env python3
"""make test's runner (the suites are listed in mk/test.mk): runs each suite to the
end, whatever the ones before it did, then prints one line per suite (passed, failed,
skipped, ignored, time), every skip with the package that would have let it run, and
exits non-zero if any suite failed.

    mk/test_suites.py --logs DIR NAME=COMMAND...

Each COMMAND runs through the shell with GR_SKIP_LOG=DIR/NAME.skips (the skip helpers,
tests/common/mod.rs and bindings/python/tests/conftest.py, append a line there for
each skip) and its output goes to the terminal and to DIR/NAME.log. The counts come
from that log: libtest's `test result:` lines (cargo test) and pytest's closing lines.
A suite fails if its command exits non-zero or if its log holds no test results at all
(a suite that ran nothing proves nothing). With GR_REQUIRE_ALL=1 (.ci/run) a skip is a
failure too. The summary is also written to DIR/summary.txt.

Standard library only; Python is a prerequisite of make test (README).
"""

import argparse
import os
import re
import subprocess
import sys
import time

# libtest: "test result: ok. 12 passed; 0 failed; 3 ignored; 0 measured; ..."
CARGO_RESULT = re.compile(r"^test result: \w+\. (\d+) passed; (\d+) failed; (\d+) ignored", re.M)
# pytest's closing line, with -q or without: "[=== ]5 passed, 1 skipped in 0.12s[ ===]"
PYTEST_RESULT = re.compile(
    r"^(?:=+ )?((?:\d+ (?:passed|failed|skipped|errors?|xfailed|xpassed|deselected|warnings?)"
    r"(?:, )?)+) in [\d.]+s", re.M)


class Suite:
    def __init__(self, name, command):
        self.name, self.command = name, command
        self.passed = self.failed = self.ignored = self.results = 0
        self.status = None
        self.seconds = 0.0
        self.skips = []

    def run(self, logs):
        log_path = os.path.join(logs, self.name + ".log")
        skip_path = os.path.join(logs, self.name + ".skips")
        env = dict(os.environ, GR_SKIP_LOG=skip_path, PYTHONUNBUFFERED="1")
        print(f"\n== make test: {self.name}: {self.command}", flush=True)
        start = time.monotonic()
        with open(log_path, "wb") as log:
            p = subprocess.Popen(self.command, shell=True, env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            while chunk := p.stdout.read1(65536):
                sys.stdout.buffer.write(chunk)
                sys.stdout.flush()
                log.write(chunk)
            self.status = p.wait()
        self.seconds = time.monotonic() - start
        with open(log_path, encoding="utf-8", errors="replace") as f:
            self.count(f.read())
        if os.path.exists(skip_path):
            with open(skip_path, encoding="utf-8", errors="replace") as f:
                self.skips = [line.rstrip("\n") for line in f if line.strip()]

    def count(self, text):
        for m in CARGO_RESULT.finditer(text):
            self.results += 1
            self.passed += int(m.group(1))
            self.failed += int(m.group(2))
            self.ignored += int(m.group(3))
        for m in PYTEST_RESULT.finditer(text):
            self.results += 1
            for n, what in re.findall(r"(\d+) (\w+)", m.group(1)):
                if what == "passed":
                    self.passed += int(n)
                elif what in ("failed", "error", "errors"):
                    self.failed += int(n)

    def verdict(self):
        """None when the suite passed, else why not."""
        if self.status != 0:
            return f"exit status {self.status}"
        if self.results == 0:
            return "no test results in its output"
        if self.failed:
            return f"{self.failed} failed"
        return None


def fmt_secs(s):
    return f"{int(s // 60)}m{int(s % 60):02d}s" if s >= 60 else f"{s:.0f}s"


def summary(suites, logs, total_seconds, require_all):
    width = max(len(s.name) for s in suites)
    lines = ["", f"== make test summary ({fmt_secs(total_seconds)}; logs in {logs}/)"]
    for s in suites:
        why = s.verdict()
        counts = f"{s.passed} passed, {s.failed} failed, {len(s.skips)} skipped"
        if s.ignored:
            counts += f", {s.ignored} ignored (make stress)"
        state = "ok    " if why is None else "FAILED"
        line = f"{s.name:<{width}}  {state}  {counts}  [{fmt_secs(s.seconds)}]"
        if why is not None and not s.failed:
            line += f"  ({why})"
        lines.append(line)
    skips = [(s.name, line) for s in suites for line in s.skips]
    if skips:
        lines.append("")
        lines.append(f"skipped ({len(skips)}; a test that skips a part counts as passed too):")
        seen = {}
        for name, line in skips:
            seen[(name, line)] = seen.get((name, line), 0) + 1
        for (name, line), n in seen.items():
            lines.append(f"  {name}: {line}" + (f"  (x{n})" if n > 1 else ""))
    failed = [s.name for s in suites if s.verdict() is not None]
    lines.append("")
    if failed:
        lines.append(f"make test: FAILED: {', '.join(failed)} (see {logs}/<suite>.log)")
    elif skips and require_all:
        lines.append(f"make test: FAILED: GR_REQUIRE_ALL=1 and {len(skips)} skip(s)")
    else:
        lines.append(f"make test: {'all %d suites' % len(suites) if len(suites) > 1 else 'the suite'} passed"
                     + (f", {len(skips)} skip(s) listed above" if skips else ""))
    ok = not failed and not (skips and require_all)
    return "\n".join(lines) + "\n", ok


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--logs", required=True, help="directory for the logs (emptied first)")
    ap.add_argument("suites", nargs="+", metavar="NAME=COMMAND")
    args = ap.parse_args()
    suites = []
    for arg in args.suites:
        name, sep, command = arg.partition("=")
        if not sep or not name or not command.strip():
            ap.error(f"{arg!r} is not NAME=COMMAND")
        suites.append(Suite(name, command))
    os.makedirs(args.logs, exist_ok=True)
    for f in os.listdir(args.logs):
        os.remove(os.path.join(args.logs, f))
    start = time.monotonic()
    for s in suites:
        s.run(args.logs)
    text, ok = summary(suites, args.logs, time.monotonic() - start,
                       os.environ.get("GR_REQUIRE_ALL") == "1")
    sys.stdout.write(text)
    with open(os.path.join(args.logs, "summary.txt"), "w") as f:
        f.write(text)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
