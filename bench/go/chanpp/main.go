// chanpp, the Go twin of bench/chanpp.c: round trip of a value over two unbuffered
// channels between two goroutines: ping (the main goroutine) sends on `to`, pong
// receives it and sends it back on `from`. ns per round trip = elapsed / round
// trips, after a warm-up of a tenth as many; every reply is checked.
//
//	usage: chanpp [roundtrips=2000000] [procs=1] [reps=1]
//
// Output, one line per repetition (the same keys as chanpp.c):
//
//	chanpp procs=1 roundtrips=2000000 ns_per_roundtrip=45.6 cpu_ns_per_roundtrip=45.1
package main

import (
	"fmt"
	"runtime"

	"libgoroutine/bench/internal/benchutil"
)

func main() {
	rounds := benchutil.ArgLong(1, 2000000)
	procs := benchutil.ArgLong(2, 1)
	reps := benchutil.ArgLong(3, 1)
	if rounds < 1 || procs < 1 {
		benchutil.Die("usage: chanpp [roundtrips] [procs] [reps]")
	}
	runtime.GOMAXPROCS(int(procs))
	for r := int64(0); r < reps; r++ {
		to, from := make(chan int64), make(chan int64)
		pongDone := make(chan struct{})
		go func() {
			for v := range to {
				from <- v
			}
			close(pongDone)
		}()
		for i := int64(0); i < rounds/10; i++ {
			to <- 0
			<-from
		}
		t0, c0 := benchutil.NowNs(), benchutil.CPUNs()
		for i := int64(0); i < rounds; i++ {
			to <- i
			if w := <-from; w != i {
				benchutil.Die("got %d, expected %d", w, i)
			}
		}
		ns, cpu := benchutil.NowNs()-t0, benchutil.CPUNs()-c0
		close(to)
		<-pongDone
		fmt.Printf("chanpp procs=%d roundtrips=%d ns_per_roundtrip=%.1f cpu_ns_per_roundtrip=%.1f\n",
			procs, rounds, float64(ns)/float64(rounds), float64(cpu)/float64(rounds))
	}
}
