// yield, the Go twin of bench/yield.c: 2 goroutines call runtime.Gosched() in a
// loop with runtime.GOMAXPROCS(procs) (1 by default); ns per switch = elapsed /
// total yields (both goroutines together). The main goroutine waits on a
// WaitGroup, so it is not runnable while they yield.
//
//	usage: yield [yields_per_goroutine=10000000] [procs=1] [reps=1]
//
// Output, one line per repetition (the same keys as yield.c):
//
//	yield procs=1 goroutines=2 yields=20000000 ns_per_switch=12.3 cpu_ns_per_switch=12.1
package main

import (
	"fmt"
	"runtime"
	"sync"

	"libgoroutine/bench/internal/benchutil"
)

func main() {
	perGoroutine := benchutil.ArgLong(1, 10000000)
	procs := benchutil.ArgLong(2, 1)
	reps := benchutil.ArgLong(3, 1)
	if perGoroutine < 1 || procs < 1 || reps < 1 {
		benchutil.Die("arguments must be >= 1")
	}
	runtime.GOMAXPROCS(int(procs))
	for r := int64(0); r < reps; r++ {
		var wg sync.WaitGroup
		t0, c0 := benchutil.NowNs(), benchutil.CPUNs()
		wg.Add(2)
		for i := 0; i < 2; i++ {
			go func() {
				for j := int64(0); j < perGoroutine; j++ {
					runtime.Gosched()
				}
				wg.Done()
			}()
		}
		wg.Wait()
		ns, cpu := benchutil.NowNs()-t0, benchutil.CPUNs()-c0
		total := 2 * perGoroutine
		fmt.Printf("yield procs=%d goroutines=2 yields=%d ns_per_switch=%.2f cpu_ns_per_switch=%.2f\n",
			procs, total, float64(ns)/float64(total), float64(cpu)/float64(total))
	}
}
