#!/usr/bin/env bash
# Runs the Python binding's pytest suite on each of CPython 3.11, 3.12 and 3.13 that is
# installed (found as pythonX.Y on PATH or in pyenv; a note names the missing ones; at
# least one is needed), each in its own venv under target/ (pytest and the clients of
# test_monkey.py from PyPI: tests/requirements.txt; so the first run needs the network,
# and python3 -m venv: Debian's python3-venv).
# Skipped tests are listed with their reasons (-rs) and appended to the skip log
# (conftest.py), which make test's summary counts.
#
#   bindings/python/run_tests.sh              once per version, against target/release
#   REPEAT=20 bindings/python/run_tests.sh    the stress run: 20 times per version
#   PACKAGE=1 bindings/python/run_tests.sh    also `pip install ./bindings/python` into a
#                                             fresh venv and run the suite on the bundled copy
#
# Extra arguments go to pytest. Exit status: non-zero if any run failed.
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
REPEAT=${REPEAT:-1}
TARGET=${CARGO_TARGET_DIR:-target}
case "$TARGET" in /*) ;; *) TARGET=$ROOT/$TARGET ;; esac
if [ -z "${GOROUTINE_LIBRARY:-}" ]; then
    cargo build --release || exit 1   # a no-op when up to date
fi
LIB=${GOROUTINE_LIBRARY:-$TARGET/release/libgoroutine.so}

find_python() {
    local v=$1 c
    if c=$(command -v "python$v" 2>/dev/null) && "$c" -c 'import sys; sys.exit(sys.version_info[:2] != tuple(map(int, "'"$v"'".split("."))))' 2>/dev/null; then
        echo "$c"; return 0
    fi
    local roots=()
    [ -n "${PYENV_ROOT:-}" ] && roots+=("$PYENV_ROOT")
    roots+=("$HOME/.pyenv" /root/.pyenv)
    for r in "${roots[@]}"; do
        for c in $(ls -d "$r"/versions/"$v".*/bin/python 2>/dev/null | sort -V -r); do
            [ -x "$c" ] && { echo "$c"; return 0; }
        done
    done
    return 1
}

setup_venv() {  # venv-dir python
    local venv=$1 py=$2
    if [ ! -x "$venv/bin/python" ]; then
        "$py" -c 'import ensurepip, venv' 2>/dev/null || {
            echo "FAIL: $py has no venv module (Debian package python3-venv): the Python suite needs it"
            return 1
        }
        "$py" -m venv "$venv" || return 1
    fi
    # find_spec: present without importing (psycopg needs libpq only when imported)
    "$venv/bin/python" -c 'import importlib.util as u, sys; sys.exit(any(u.find_spec(m) is None for m in sys.argv[1:]))' \
        pytest requests redis psycopg psycopg_binary gevent 2>/dev/null \
        || "$venv/bin/pip" install -q -r bindings/python/tests/requirements.txt || return 1
}

status=0
ran=0
for v in 3.11 3.12 3.13; do
    if ! py=$(find_python "$v"); then
        echo "note: CPython $v not found (python$v on PATH, or pyenv): the suite does not run on it"
        continue
    fi
    venv=$TARGET/pyvenv-$v
    setup_venv "$venv" "$py" || { echo "FAIL: cannot set up $venv"; status=1; continue; }
    for i in $(seq 1 "$REPEAT"); do
        echo "== CPython $v ($py), run $i/$REPEAT, library $LIB"
        GOROUTINE_LIBRARY=$LIB "$venv/bin/python" -m pytest -q -rs -p no:cacheprovider bindings/python/tests "$@" || status=1
        ran=$((ran + 1))
    done
done

if [ "${PACKAGE:-0}" = 1 ]; then
    py=$(find_python 3.11) || py=python3
    venv=$TARGET/pyvenv-package
    rm -rf "$venv"
    echo "== pip install ./bindings/python (bundled library), CPython 3.11"
    if "$py" -m venv "$venv" && "$venv/bin/pip" install -q -r bindings/python/tests/requirements.txt ./bindings/python; then
        rm -rf bindings/python/build
        (cd "$venv" && env -u GOROUTINE_LIBRARY "$venv/bin/python" -m pytest -q -rs -p no:cacheprovider "$ROOT/bindings/python/tests" "$@") || status=1
    else
        echo "FAIL: pip install ./bindings/python"; status=1
    fi
fi
[ "$ran" -gt 0 ] || { echo "FAIL: no CPython 3.11, 3.12 or 3.13 found: the suite did not run"; status=1; }
exit $status
