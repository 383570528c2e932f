#!/usr/bin/env bash
# Python benchmarks: libgoroutine's binding side by side with gevent/greenlet (PyPI),
# same workloads, same interpreter, alternating runs; prints the median of RUNS runs
# of each and the ratio. See README.md in this folder for the workloads.
#
#   bench/python/run.sh                 RUNS=5, all workloads
#   RUNS=3 bench/python/run.sh echo     some workloads only
#   bench/python/run.sh --venv          only create the venv (if needed) and print its
#                                       python (bench/run.py, the full suite, uses it)
#
# Uses target/pyvenv-bench (CPython 3.11 by default, PYTHON=... to change) with gevent,
# greenlet and requests installed, and the library at target/release (GOROUTINE_LIBRARY).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
RUNS=${RUNS:-5}
TARGET=${CARGO_TARGET_DIR:-target}
case "$TARGET" in /*) ;; *) TARGET=$ROOT/$TARGET ;; esac
PY=${PYTHON:-}
if [ -z "$PY" ]; then
    PY=$(command -v python3.11 || ls -d "$HOME"/.pyenv/versions/3.11.*/bin/python 2>/dev/null | tail -1 || command -v python3)
fi
VENV=$TARGET/pyvenv-bench
if [ ! -x "$VENV/bin/python" ]; then
    "$PY" -m venv "$VENV"
fi
"$VENV/bin/python" -c 'import gevent, greenlet, requests' 2>/dev/null || "$VENV/bin/pip" install -q gevent greenlet requests
if [ "${1:-}" = --venv ]; then
    echo "$VENV/bin/python"
    exit 0
fi
[ -n "${GOROUTINE_LIBRARY:-}" ] || cargo build --release
export GOROUTINE_LIBRARY=${GOROUTINE_LIBRARY:-$TARGET/release/libgoroutine.so}
WORKLOADS=${*:-spawn yield chanpp echo echo_std crawl parkmem}
case " $WORKLOADS " in *" crawl "*) make -s -C bench httpd_threads ;; esac  # crawl's server
OUT=$(mktemp)
trap 'rm -f "$OUT"' EXIT
export PYTHONPATH=$ROOT/bindings/python:$ROOT/bench/python
for w in $WORKLOADS; do
    for i in $(seq 1 "$RUNS"); do
        "$VENV/bin/python" bench/python/bench_goroutine.py "$w" >> "$OUT"
        "$VENV/bin/python" bench/python/bench_gevent.py "$w" >> "$OUT"
        if [ "$w" = yield ]; then
            "$VENV/bin/python" bench/python/bench_gevent.py greenlet >> "$OUT"
        fi
    done
done
"$VENV/bin/python" bench/python/summarize.py "$OUT" "$("$VENV/bin/python" -c 'import sys, gevent, greenlet; print("CPython %s, gevent %s, greenlet %s" % (sys.version.split()[0], gevent.__version__, greenlet.__version__))')" "$RUNS"
