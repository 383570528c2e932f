// skynet, the Go twin of bench/skynet.c: a 10-ary tree of goroutines with
// `leaves` leaves (1,000,000: 1,111,111 goroutines). Each leaf sends its number;
// each inner node makes a fresh unbuffered channel, spawns its 10 children on it,
// sums their 10 values and sends the sum up. The root's sum is
// leaves*(leaves-1)/2 (499999500000), checked.
//
//	usage: skynet [leaves=1000000 (a power of 10)] [procs=2] [reps=1]
//
// The timed region is from spawning the root until its sum is received by the
// main goroutine. Output, one line per repetition (the same keys as skynet.c):
//
//	skynet procs=2 leaves=1000000 goroutines=1111111 sum=499999500000 ms=123.4 cpu_ms=240.1
package main

import (
	"fmt"
	"runtime"

	"libgoroutine/bench/internal/benchutil"
)

func skynet(out chan<- int64, num, size int64) {
	if size == 1 {
		out <- num
		return
	}
	c := make(chan int64)
	step := size / 10
	for i := int64(0); i < 10; i++ {
		go skynet(c, num+i*step, step)
	}
	var sum int64
	for i := 0; i < 10; i++ {
		sum += <-c
	}
	out <- sum
}

func main() {
	leaves := benchutil.ArgLong(1, 1000000)
	procs := benchutil.ArgLong(2, 2)
	reps := benchutil.ArgLong(3, 1)
	var g int64
	for l := leaves; l >= 1; l /= 10 {
		if l > 1 && l%10 != 0 {
			benchutil.Die("leaves must be a power of 10")
		}
		g += l
	}
	if procs < 1 || leaves < 1 {
		benchutil.Die("usage: skynet [leaves] [procs] [reps]")
	}
	runtime.GOMAXPROCS(int(procs))
	want := leaves * (leaves - 1) / 2
	for r := int64(0); r < reps; r++ {
		c := make(chan int64)
		t0, c0 := benchutil.NowNs(), benchutil.CPUNs()
		go skynet(c, 0, leaves)
		sum := <-c
		ns, cpu := benchutil.NowNs()-t0, benchutil.CPUNs()-c0
		if sum != want {
			benchutil.Die("sum %d, expected %d", sum, want)
		}
		fmt.Printf("skynet procs=%d leaves=%d goroutines=%d sum=%d ms=%.1f cpu_ms=%.1f\n",
			procs, leaves, g, sum, float64(ns)/1e6, float64(cpu)/1e6)
	}
}
