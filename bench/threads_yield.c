/*
 * threads_yield: the pthreads twin of yield.c: 2 threads call sched_yield() in a
 * loop, the process pinned to the first `procs` CPUs (1 by default, so both share
 * one CPU and each yield hands it to the other); ns per switch = elapsed / total
 * yields (both threads together), as yield.c computes it.
 *
 *   usage: threads_yield [yields_per_thread=1000000] [procs=1] [reps=1]
 *
 * (The default is a tenth of yield.c's: a kernel yield costs ~1 us here.)
 * Output, one line per repetition, with yield.c's keys (the name prefixed threads_):
 *   threads_yield procs=1 goroutines=2 yields=2000000 ns_per_switch=1080.0 cpu_ns_per_switch=1070.2
 * ("goroutines" counts the threads.)
 */
#include "threads.h"

static long per_thread;

static void *yielder(void *arg) {
    (void)arg;
    for (long i = 0; i < per_thread; i++)
        sched_yield();
    return NULL;
}

int main(int argc, char **argv) {
    per_thread = arg_long(argc, argv, 1, 1000000);
    int procs = (int)arg_long(argc, argv, 2, 1);
    int reps = (int)arg_long(argc, argv, 3, 1);
    if (per_thread < 1 || procs < 1 || reps < 1)
        DIE("arguments must be >= 1");
    pin_to_first_cpus(procs);
    for (int r = 0; r < reps; r++) {
        uint64_t t0 = now_ns(), c0 = cpu_ns();
        pthread_t t[2];
        for (int i = 0; i < 2; i++)
            t[i] = thread_start(yielder, NULL, 0);
        for (int i = 0; i < 2; i++)
            pthread_join(t[i], NULL);
        uint64_t ns = now_ns() - t0, cns = cpu_ns() - c0;
        long total = 2 * per_thread;
        printf("threads_yield procs=%d goroutines=2 yields=%ld ns_per_switch=%.2f cpu_ns_per_switch=%.2f\n", procs, total,
               (double)ns / (double)total, (double)cns / (double)total);
        fflush(stdout);
    }
    return 0;
}
