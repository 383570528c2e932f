// threadring, the Go twin of bench/threadring.c: 503 goroutines in a ring of
// unbuffered channels pass a token N times (each hop: receive, decrement, send to
// the next). The goroutine that receives 0 reports its number (N % 503 + 1) on a
// one-slot result channel, checked. ns per hop = elapsed / N. The main goroutine
// injects the token and waits for the result; closing every ring channel then
// ends the members (all are waiting to receive by then).
//
//	usage: threadring [hops=50000000] [procs=1] [reps=1]
//
// Output, one line per repetition (the same keys as threadring.c):
//
//	threadring procs=1 hops=50000000 winner=292 ns_per_hop=20.1 cpu_ns_per_hop=20.0
package main

import (
	"fmt"
	"runtime"
	"sync"

	"libgoroutine/bench/internal/benchutil"
)

const ringSize = 503

func main() {
	hops := benchutil.ArgLong(1, 50000000)
	procs := benchutil.ArgLong(2, 1)
	reps := benchutil.ArgLong(3, 1)
	if procs < 1 {
		benchutil.Die("usage: threadring [hops] [procs] [reps]")
	}
	runtime.GOMAXPROCS(int(procs))
	for r := int64(0); r < reps; r++ {
		result := make(chan int64, 1)
		var ring [ringSize]chan int64
		for i := range ring {
			ring[i] = make(chan int64)
		}
		var members sync.WaitGroup
		members.Add(ringSize)
		for i := 0; i < ringSize; i++ {
			in, out, id := ring[i], ring[(i+1)%ringSize], int64(i+1)
			go func() {
				defer members.Done()
				for token := range in {
					if token == 0 {
						result <- id
						continue
					}
					out <- token - 1
				}
			}()
		}
		t0, c0 := benchutil.NowNs(), benchutil.CPUNs()
		ring[0] <- hops
		winner := <-result
		ns, cpu := benchutil.NowNs()-t0, benchutil.CPUNs()-c0
		for _, c := range ring {
			close(c)
		}
		members.Wait()
		if winner != hops%ringSize+1 {
			benchutil.Die("winner %d, expected %d", winner, hops%ringSize+1)
		}
		perHop, cpuPerHop := 0.0, 0.0
		if hops > 0 {
			perHop, cpuPerHop = float64(ns)/float64(hops), float64(cpu)/float64(hops)
		}
		fmt.Printf("threadring procs=%d hops=%d winner=%d ns_per_hop=%.1f cpu_ns_per_hop=%.1f\n",
			procs, hops, winner, perHop, cpuPerHop)
	}
}
