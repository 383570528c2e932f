// Package benchutil owns what the Go twins of the C workloads in bench/ share, so
// that each measures and reads its arguments exactly as bench/bench.h does for C:
// arguments as numbers with k/M suffixes (ArgLong = arg_long), the process's CPU
// time from CLOCK_PROCESS_CPUTIME_ID (CPUTime = cpu_ns), /proc/self/status fields
// in KiB (ProcStatusKB = proc_status_kb), and Die for a failed check (exit 1).
// Standard library only: the clock is read with the raw clock_gettime system call.
package benchutil

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

// ArgLong returns os.Args[i] as a number (accepts 1e6, 1000000, 1M, 10k), or dflt
// when absent; a malformed or negative argument exits with status 2, as in C.
func ArgLong(i int, dflt int64) int64 {
	if i >= len(os.Args) {
		return dflt
	}
	s := os.Args[i]
	mult := 1.0
	switch {
	case strings.HasSuffix(s, "k"), strings.HasSuffix(s, "K"):
		mult, s = 1e3, s[:len(s)-1]
	case strings.HasSuffix(s, "m"), strings.HasSuffix(s, "M"):
		mult, s = 1e6, s[:len(s)-1]
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v < 0 {
		fmt.Fprintf(os.Stderr, "bad argument: %s\n", os.Args[i])
		os.Exit(2)
	}
	return int64(v * mult)
}

// Arg returns os.Args[i], or dflt when absent.
func Arg(i int, dflt string) string {
	if i >= len(os.Args) {
		return dflt
	}
	return os.Args[i]
}

var start = time.Now()

// NowNs is a monotonic clock in ns (the same clock as CLOCK_MONOTONIC, up to an offset).
func NowNs() int64 { return int64(time.Since(start)) }

const clockProcessCPUTimeID = 2 // CLOCK_PROCESS_CPUTIME_ID, <linux/time.h>

// CPUNs is the CPU time of the whole process (all threads) in ns.
func CPUNs() int64 {
	var ts syscall.Timespec
	_, _, errno := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockProcessCPUTimeID,
		uintptr(unsafe.Pointer(&ts)), 0)
	if errno != 0 {
		Die("clock_gettime(CLOCK_PROCESS_CPUTIME_ID): %v", errno)
	}
	return ts.Nano()
}

// ProcStatusKB returns a field of /proc/self/status in KiB ("VmRSS", "VmPTE"), or -1.
func ProcStatusKB(field string) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, field+":") {
			fields := strings.Fields(line[len(field)+1:])
			if len(fields) > 0 {
				if v, err := strconv.ParseInt(fields[0], 10, 64); err == nil {
					return v
				}
			}
			return -1
		}
	}
	return -1
}

// Parallel runs body in procs goroutines at once (a workload that measures what all
// processors together do, as b.RunParallel) and returns the wall time in ns from
// before the first starts until the last has returned, and the process CPU time of
// the same stretch.
func Parallel(procs int64, body func()) (ns, cpu int64) {
	var wg sync.WaitGroup
	t0, c0 := NowNs(), CPUNs()
	wg.Add(int(procs))
	for p := int64(0); p < procs; p++ {
		go func() {
			body()
			wg.Done()
		}()
	}
	wg.Wait()
	return NowNs() - t0, CPUNs() - c0
}

// Die reports a failed check on stderr and exits with status 1 (stdout flushed
// first: fmt.Printf writes unbuffered to os.Stdout).
func Die(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench error: "+format+"\n", args...)
	os.Exit(1)
}
