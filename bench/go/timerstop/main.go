// timerstop, the Go twin of bench/timerstop.c: `t := time.NewTimer(time.Hour);
// t.Stop()`, in `procs` goroutines at once, N / procs times each, after a warm-up of
// a tenth as many; every Stop must return true. ns per timer = elapsed / N.
//
//	usage: timerstop [timers=2000000] [procs=1] [reps=1]
//
// Output, one line per repetition (the same keys as timerstop.c):
//
//	timerstop procs=1 timers=2000000 ns_per_timer=61.2 cpu_ns_per_timer=60.8
package main

import (
	"fmt"
	"runtime"
	"time"

	"libgoroutine/bench/internal/benchutil"
)

func createStop(n int64) {
	for i := int64(0); i < n; i++ {
		t := time.NewTimer(time.Hour)
		if !t.Stop() {
			benchutil.Die("Stop: the timer was not pending")
		}
	}
}

func main() {
	n := benchutil.ArgLong(1, 2000000)
	procs := benchutil.ArgLong(2, 1)
	reps := benchutil.ArgLong(3, 1)
	if n < procs || procs < 1 {
		benchutil.Die("usage: timerstop [timers] [procs] [reps]")
	}
	runtime.GOMAXPROCS(int(procs))
	per := n / procs
	createStop(n / 10)
	for r := int64(0); r < reps; r++ {
		ns, cpu := benchutil.Parallel(procs, func() { createStop(per) })
		total := per * procs
		fmt.Printf("timerstop procs=%d timers=%d ns_per_timer=%.1f cpu_ns_per_timer=%.1f\n",
			procs, total, float64(ns)/float64(total), float64(cpu)/float64(total))
	}
}
