// rwread, the Go twin of bench/rwread.c: RLock + RUnlock of one shared
// sync.RWMutex by `procs` goroutines at once, N / procs pairs each, after a warm-up
// of a tenth as many. ns per pair = elapsed / N (all goroutines' pairs together).
//
//	usage: rwread [pairs=20000000] [procs=2] [reps=1]
//
// Output, one line per repetition (the same keys as rwread.c):
//
//	rwread procs=2 pairs=20000000 ns_per_pair=12.3 cpu_ns_per_pair=24.1
package main

import (
	"fmt"
	"runtime"
	"sync"

	"libgoroutine/bench/internal/benchutil"
)

var rw sync.RWMutex

func readPairs(n int64) {
	for i := int64(0); i < n; i++ {
		rw.RLock() // an empty critical section: the lock's own cost
		rw.RUnlock()
	}
}

func main() {
	n := benchutil.ArgLong(1, 20000000)
	procs := benchutil.ArgLong(2, 2)
	reps := benchutil.ArgLong(3, 1)
	if n < procs || procs < 1 {
		benchutil.Die("usage: rwread [pairs] [procs] [reps]")
	}
	runtime.GOMAXPROCS(int(procs))
	per := n / procs
	readPairs(n / 10)
	for r := int64(0); r < reps; r++ {
		ns, cpu := benchutil.Parallel(procs, func() { readPairs(per) })
		total := per * procs
		fmt.Printf("rwread procs=%d pairs=%d ns_per_pair=%.2f cpu_ns_per_pair=%.2f\n",
			procs, total, float64(ns)/float64(total), float64(cpu)/float64(total))
	}
}
