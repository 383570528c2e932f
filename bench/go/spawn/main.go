// spawn, the Go twin of bench/spawn.c: N trivial goroutines (an atomic add, then
// "done"), wait for all of them; ns per goroutine. Round 1 is cold, later rounds
// warm (Go reuses dead goroutines' g structs and stacks); the summary line gives
// round 1 and the best of rounds 2..R, as ../../../shared/PEERS.md defines it.
//
//	usage: spawn [N=1000000] [procs=1] [rounds=3] [mode=waitall|join|wg]
//
// The spawning loop runs in the main goroutine with runtime.GOMAXPROCS(procs);
// the timed region is from the first spawn until the wait returns. Go has no
// "wait for every goroutine", so waitall and wg are both a sync.WaitGroup (what
// PEERS.md's Go figure measures); join gives each goroutine a channel it closes
// and receives from each in order (Go's nearest to gr_join; one allocation more).
//
// Output: the same lines and keys as spawn.c:
//
//	spawn procs=1 n=1000000 mode=waitall round=1 ns_per_goroutine=123.4 cpu_ns_per_goroutine=120.1
//	spawn procs=1 n=1000000 mode=waitall cold_ns=123.4 warm_best_ns=56.7
package main

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"libgoroutine/bench/internal/benchutil"
)

var counter atomic.Int64

// round spawns n goroutines and waits for them as mode says; returns wall and CPU ns.
func round(n int64, mode string) (int64, int64) {
	t0, c0 := benchutil.NowNs(), benchutil.CPUNs()
	switch mode {
	case "waitall", "wg":
		var wg sync.WaitGroup
		wg.Add(int(n))
		for i := int64(0); i < n; i++ {
			go func() {
				counter.Add(1)
				wg.Done()
			}()
		}
		wg.Wait()
	case "join":
		done := make([]chan struct{}, n)
		for i := range done {
			c := make(chan struct{})
			done[i] = c
			go func() {
				counter.Add(1)
				close(c)
			}()
		}
		for _, c := range done {
			<-c
		}
	}
	return benchutil.NowNs() - t0, benchutil.CPUNs() - c0
}

func main() {
	n := benchutil.ArgLong(1, 1000000)
	procs := benchutil.ArgLong(2, 1)
	rounds := benchutil.ArgLong(3, 3)
	mode := benchutil.Arg(4, "waitall")
	if mode != "waitall" && mode != "join" && mode != "wg" {
		benchutil.Die("unknown mode %s (waitall, join, wg)", mode)
	}
	if n < 1 || procs < 1 || rounds < 1 {
		benchutil.Die("N, procs and rounds must be >= 1")
	}
	runtime.GOMAXPROCS(int(procs))

	var cold, warmBest float64
	for r := int64(1); r <= rounds; r++ {
		ns, cpu := round(n, mode)
		if got, want := counter.Load(), n*r; got != want {
			benchutil.Die("counter %d, expected %d", got, want)
		}
		perG := float64(ns) / float64(n)
		fmt.Printf("spawn procs=%d n=%d mode=%s round=%d ns_per_goroutine=%.1f cpu_ns_per_goroutine=%.1f\n",
			procs, n, mode, r, perG, float64(cpu)/float64(n))
		if r == 1 {
			cold = perG
		} else if warmBest == 0 || perG < warmBest {
			warmBest = perG
		}
	}
	if rounds >= 2 {
		fmt.Printf("spawn procs=%d n=%d mode=%s cold_ns=%.1f warm_best_ns=%.1f\n", procs, n, mode, cold, warmBest)
	} else {
		fmt.Printf("spawn procs=%d n=%d mode=%s cold_ns=%.1f\n", procs, n, mode, cold)
	}
}
