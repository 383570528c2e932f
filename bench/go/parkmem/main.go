// parkmem, the Go twin of bench/parkmem.c: N goroutines parked at once on one
// unbuffered channel receive; memory per parked goroutine, and how long spawning
// them (until the last one has parked) takes.
//
//	usage: parkmem [N=1000000] [procs=1]
//
// Memory, measured as parkmem.c does: VmRSS and VmPTE from /proc/self/status, read
// once the runtime is running (a first goroutine has run and 20 ms have passed)
// and again with all N parked (20 ms after the last one counted itself):
//
//	rss_bytes_per_goroutine     = (VmRSS after - before) / N
//	rss_pte_bytes_per_goroutine = ((VmRSS + VmPTE) after - before) / N
//
// The spawning loop runs in the main goroutine, then yields (runtime.Gosched) until
// every waiter has counted itself, as spawner() in parkmem.c does. Closing the
// channel releases them; release_ms is from the close (Go runs the woken waiters
// before close returns) until the last has returned (a WaitGroup);
// rss_after_exit_kb is read 100 ms later.
//
// Output: one line with the same keys as parkmem.c (alive: runtime.NumGoroutine()
// less the main goroutine):
//
//	parkmem procs=1 n=1000000 wait=chan alive=1000000 spawn_ms=812.3 ns_per_spawn=812.3 cpu_spawn_ms=790.1 rss_bytes_per_goroutine=4321 ...
package main

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"libgoroutine/bench/internal/benchutil"
)

func main() {
	n := benchutil.ArgLong(1, 1000000)
	procs := benchutil.ArgLong(2, 1)
	if n < 1 || procs < 1 {
		benchutil.Die("N and procs must be >= 1")
	}
	runtime.GOMAXPROCS(int(procs))
	gate := make(chan int)
	var parked atomic.Int64
	var exited sync.WaitGroup

	first := make(chan struct{})
	go func() { close(first) }()
	<-first
	time.Sleep(20 * time.Millisecond)
	rss0, pte0 := benchutil.ProcStatusKB("VmRSS"), benchutil.ProcStatusKB("VmPTE")

	t0, c0 := benchutil.NowNs(), benchutil.CPUNs()
	exited.Add(int(n))
	for i := int64(0); i < n; i++ {
		go func() {
			parked.Add(1)
			<-gate
			exited.Done()
		}()
	}
	for parked.Load() < n {
		runtime.Gosched()
	}
	spawnNs, spawnCPU := benchutil.NowNs()-t0, benchutil.CPUNs()-c0
	time.Sleep(20 * time.Millisecond) // the last waiters finish parking
	rss1, pte1 := benchutil.ProcStatusKB("VmRSS"), benchutil.ProcStatusKB("VmPTE")
	alive := runtime.NumGoroutine() - 1

	t1 := benchutil.NowNs() // release_ms from the close: in Go the close runs the waiters
	close(gate)
	exited.Wait()
	exitNs := benchutil.NowNs() - t1
	time.Sleep(100 * time.Millisecond)
	rss2 := benchutil.ProcStatusKB("VmRSS")

	nf := float64(n)
	fmt.Printf("parkmem procs=%d n=%d wait=chan alive=%d spawn_ms=%.1f ns_per_spawn=%.1f cpu_spawn_ms=%.1f "+
		"rss_bytes_per_goroutine=%.0f rss_pte_bytes_per_goroutine=%.0f "+
		"rss_before_kb=%d rss_parked_kb=%d pte_before_kb=%d pte_parked_kb=%d "+
		"release_ms=%.1f rss_after_exit_kb=%d\n",
		procs, n, alive, float64(spawnNs)/1e6, float64(spawnNs)/nf, float64(spawnCPU)/1e6,
		float64(rss1-rss0)*1024/nf, float64((rss1+pte1)-(rss0+pte0))*1024/nf,
		rss0, rss1, pte0, pte1, float64(exitNs)/1e6, rss2)
}
