// ctxcancel, the Go twin of bench/ctxcancel.c: `ctx, cancel :=
// context.WithCancel(parent); cancel()`, with parent one cancellable context shared
// by every goroutine (`shared`, the default) or context.Background() (`root`), in
// `procs` goroutines at once, N / procs times each, after a warm-up of a tenth as
// many; every ctx.Err() must be context.Canceled after its cancel. ns per context =
// elapsed / N.
//
//	usage: ctxcancel [contexts=2000000] [procs=1] [reps=1] [parent=shared|root]
//
// Output, one line per repetition (the same keys as ctxcancel.c):
//
//	ctxcancel procs=1 contexts=2000000 ns_per_ctx=61.2 cpu_ns_per_ctx=60.8
package main

import (
	"context"
	"fmt"
	"runtime"

	"libgoroutine/bench/internal/benchutil"
)

var parent = context.Background()

func makeCancel(n int64) {
	for i := int64(0); i < n; i++ {
		ctx, cancel := context.WithCancel(parent)
		cancel()
		if ctx.Err() != context.Canceled {
			benchutil.Die("ctx.Err: the context is not cancelled")
		}
	}
}

func main() {
	n := benchutil.ArgLong(1, 2000000)
	procs := benchutil.ArgLong(2, 1)
	reps := benchutil.ArgLong(3, 1)
	mode := benchutil.Arg(4, "shared")
	if n < procs || procs < 1 || (mode != "shared" && mode != "root") {
		benchutil.Die("usage: ctxcancel [contexts] [procs] [reps] [shared|root]")
	}
	runtime.GOMAXPROCS(int(procs))
	var stop context.CancelFunc
	if mode == "shared" {
		parent, stop = context.WithCancel(context.Background())
		defer stop()
	}
	per := n / procs
	makeCancel(n / 10)
	for r := int64(0); r < reps; r++ {
		ns, cpu := benchutil.Parallel(procs, func() { makeCancel(per) })
		total := per * procs
		fmt.Printf("ctxcancel procs=%d contexts=%d ns_per_ctx=%.1f cpu_ns_per_ctx=%.1f\n",
			procs, total, float64(ns)/float64(total), float64(cpu)/float64(total))
	}
	if parent.Err() != nil {
		benchutil.Die("the shared parent was cancelled")
	}
}
