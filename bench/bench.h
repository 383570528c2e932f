/*
 * Helpers shared by the C workloads in bench/ (included first by each).
 *
 * Every workload prints one machine-readable line per measurement:
 *     <workload> key=value key=value ...
 * (numbers without units in the value; the unit is in the key: ns_per_switch,
 * bytes_per_goroutine, ...). Parameters come from argv so tests can run them small.
 */
#ifndef GR_BENCH_H
#define GR_BENCH_H

#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "goroutine.h"

static inline uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* CPU time of the whole process (all threads), ns. On this shared machine a run can
   be descheduled for a while: cpu_* figures next to the wall-clock ones show it. */
static inline uint64_t cpu_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* argv[i] as a number (accepts 1e6, 1000000, 1M, 10k), or dflt when absent. */
static inline long arg_long(int argc, char **argv, int i, long dflt) {
    if (i >= argc)
        return dflt;
    char *end = NULL;
    double v = strtod(argv[i], &end);
    if (end && (*end == 'k' || *end == 'K'))
        v *= 1e3;
    else if (end && (*end == 'm' || *end == 'M'))
        v *= 1e6;
    if (end == argv[i] || v < 0) {
        fprintf(stderr, "bad argument: %s\n", argv[i]);
        exit(2);
    }
    return (long)v;
}

/* A "Field: N kB" line of a /proc file in KiB, or -1. */
static inline long proc_file_kb(const char *path, const char *field) {
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char line[256];
    size_t n = strlen(field);
    long v = -1;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, field, n) == 0 && line[n] == ':') {
            v = strtol(line + n + 1, NULL, 10);
            break;
        }
    }
    fclose(f);
    return v;
}

/* A field of /proc/self/status in KiB ("VmRSS", "VmPTE"), or -1. */
static inline long proc_status_kb(const char *field) { return proc_file_kb("/proc/self/status", field); }

#define DIE(...)                                                    \
    do {                                                            \
        fflush(stdout);                                             \
        fprintf(stderr, "bench error %s:%d: ", __FILE__, __LINE__); \
        fprintf(stderr, __VA_ARGS__);                               \
        fputc('\n', stderr);                                        \
        _exit(1);                                                   \
    } while (0)

/* run_parallel: `procs` goroutines run body(arg) at once (a workload that measures
   what all processors together do, as Go's b.RunParallel). */
struct bench_parallel {
    gr_fn body;
    void *arg;
    gr_wg *done;
};

static inline void bench_parallel_one(void *p) {
    struct bench_parallel *b = p;
    b->body(b->arg);
    gr_wg_done(b->done);
}

/* The wall time in ns from before the first goroutine is spawned until the last has
   returned; the process CPU time of the same stretch in *cpu. */
static inline uint64_t run_parallel(int procs, gr_fn body, void *arg, uint64_t *cpu) {
    struct bench_parallel b = { body, arg, gr_wg_new() };
    if (!b.done || gr_wg_add(b.done, procs) != 0)
        DIE("gr_wg_new/gr_wg_add failed");
    uint64_t t0 = now_ns(), c0 = cpu_ns();
    for (int p = 0; p < procs; p++)
        if (gr_spawn(bench_parallel_one, &b) <= 0)
            DIE("gr_spawn failed");
    gr_wg_wait(b.done);
    uint64_t ns = now_ns() - t0;
    *cpu = cpu_ns() - c0;
    gr_wait_all();
    gr_wg_free(b.done);
    return ns;
}

#endif
