/*
 * threads_spawn: the pthreads comparison for spawn: N threads (default stack size),
 * each does the same atomic add as a spawn.c goroutine; ns per thread.
 *   batch: create all N, then join all N (what spawn.c does with goroutines);
 *   serial: create + join one at a time (thread creation latency without overlap).
 *
 *   usage: threads_spawn [N=10000] [procs=1] [rounds=3] [mode=both|batch|serial]
 *
 * The arguments are spawn.c's (N is shrunk by the caller: threads cost ~100 times
 * more); the process is pinned to the first `procs` CPUs (threads.h). spawn.c's
 * modes waitall, join and wg run batch (all threads are waited for by joining
 * each, which is spawn.c's join) and print the mode name they were given, so the
 * driver finds the same mode= in every system's lines.
 * Output, per round, then a summary per mode (round 1 and the best of rounds
 * 2..R), with spawn.c's keys ("goroutine" is the unit of work: a thread here):
 *   threads_spawn procs=1 n=10000 mode=batch round=1 ns_per_goroutine=12345.6 cpu_ns_per_goroutine=9876.5
 *   threads_spawn procs=1 n=10000 mode=serial round=1 ns_per_goroutine=12345.6 cpu_ns_per_goroutine=9876.5
 *   threads_spawn procs=1 n=10000 mode=serial cold_ns=20638.1 warm_best_ns=20500.3
 *   threads_spawn procs=1 n=10000 mode=batch cold_ns=12345.6 warm_best_ns=12000.1
 * The batch summary comes last: it is spawn.c's measurement (bench/run.py reads the
 * last line).
 */
#include "threads.h"

#include <stdatomic.h>

static atomic_long counter;

static void *trivial(void *arg) {
    (void)arg;
    atomic_fetch_add_explicit(&counter, 1, memory_order_relaxed);
    return NULL;
}

/* One round of a mode: wall and CPU ns per thread, printed; returns the wall figure. */
static double report(int procs, long n, const char *mode, int round, uint64_t ns, uint64_t cpu) {
    double per = (double)ns / n;
    printf("threads_spawn procs=%d n=%ld mode=%s round=%d ns_per_goroutine=%.1f cpu_ns_per_goroutine=%.1f\n", procs,
           n, mode, round, per, (double)cpu / n);
    fflush(stdout);
    return per;
}

static void summary(int procs, long n, const char *mode, int rounds, double cold, double warm_best) {
    if (rounds >= 2)
        printf("threads_spawn procs=%d n=%ld mode=%s cold_ns=%.1f warm_best_ns=%.1f\n", procs, n, mode, cold,
               warm_best);
    else
        printf("threads_spawn procs=%d n=%ld mode=%s cold_ns=%.1f\n", procs, n, mode, cold);
}

int main(int argc, char **argv) {
    long n = arg_long(argc, argv, 1, 10000);
    int procs = (int)arg_long(argc, argv, 2, 1);
    int rounds = (int)arg_long(argc, argv, 3, 3);
    const char *mode = argc > 4 ? argv[4] : "both";
    int run_serial = strcmp(mode, "both") == 0 || strcmp(mode, "serial") == 0;
    int run_batch = !run_serial || strcmp(mode, "both") == 0;
    if (run_batch && strcmp(mode, "batch") && strcmp(mode, "both") && strcmp(mode, "waitall") &&
        strcmp(mode, "join") && strcmp(mode, "wg"))
        DIE("unknown mode %s (both, batch, serial; waitall, join, wg = batch)", mode);
    const char *batch_name = run_serial ? "batch" : mode;
    if (n < 1 || procs < 1 || rounds < 1)
        DIE("N, procs and rounds must be >= 1");
    pin_to_first_cpus(procs);
    pthread_t *t = calloc((size_t)n, sizeof *t);
    if (!t)
        DIE("out of memory");
    double batch[2] = { 0, 0 }, serial[2] = { 0, 0 }; /* cold, warm best */
    for (int r = 1; r <= rounds; r++) {
        if (run_batch) {
            uint64_t t0 = now_ns(), c0 = cpu_ns();
            for (long i = 0; i < n; i++)
                t[i] = thread_start(trivial, NULL, 0);
            for (long i = 0; i < n; i++)
                pthread_join(t[i], NULL);
            double per = report(procs, n, batch_name, r, now_ns() - t0, cpu_ns() - c0);
            if (r == 1)
                batch[0] = per;
            else if (batch[1] == 0 || per < batch[1])
                batch[1] = per;
        }
        if (run_serial) {
            uint64_t t0 = now_ns(), c0 = cpu_ns();
            for (long i = 0; i < n; i++)
                pthread_join(thread_start(trivial, NULL, 0), NULL);
            double per = report(procs, n, "serial", r, now_ns() - t0, cpu_ns() - c0);
            if (r == 1)
                serial[0] = per;
            else if (serial[1] == 0 || per < serial[1])
                serial[1] = per;
        }
    }
    long want = (long)(run_batch + run_serial) * n * rounds;
    if (atomic_load(&counter) != want)
        DIE("counter %ld, expected %ld", (long)atomic_load(&counter), want);
    if (run_serial)
        summary(procs, n, "serial", rounds, serial[0], serial[1]);
    if (run_batch) /* last: the line a driver that reads the last line compares */
        summary(procs, n, batch_name, rounds, batch[0], batch[1]);
    free(t);
    return 0;
}
