/*
 * timerstop: create a timer (due in an hour) and stop it, as Go's
 * `t := time.NewTimer(time.Hour); t.Stop()`; here gr_timer_new, gr_timer_stop and
 * gr_timer_free (C frees what Go's collector frees). `procs` goroutines do it at
 * once, N / procs times each, after a warm-up of a tenth as many; every stop must
 * return 1 (the timer was pending). ns per timer = elapsed / N.
 *
 *   usage: timerstop [timers=2000000] [procs=1] [reps=1]
 *
 * Output, one line per repetition:
 *   timerstop procs=1 timers=2000000 ns_per_timer=61.2 cpu_ns_per_timer=60.8
 */
#include "bench.h"

#define HOUR_NS (3600LL * 1000000000LL)

static long per_goroutine;

static void create_stop(long n)
{
    for (long i = 0; i < n; i++) {
        gr_timer *t = gr_timer_new(HOUR_NS, 0);
        if (!t)
            DIE("gr_timer_new failed");
        if (gr_timer_stop(t) != 1)
            DIE("gr_timer_stop: the timer was not pending");
        gr_timer_free(t);
    }
}

static void worker(void *arg)
{
    (void)arg;
    create_stop(per_goroutine);
}

int main(int argc, char **argv)
{
    long n = arg_long(argc, argv, 1, 2000000);
    int procs = (int)arg_long(argc, argv, 2, 1);
    long reps = arg_long(argc, argv, 3, 1);
    if (n < procs || procs < 1)
        DIE("usage: timerstop [timers] [procs] [reps]");
    gr_init(procs);
    per_goroutine = n / procs;
    create_stop(n / 10); /* warm-up: caches, the heap's table */
    for (long r = 0; r < reps; r++) {
        uint64_t cpu, ns = run_parallel(procs, worker, NULL, &cpu);
        long total = per_goroutine * procs;
        printf("timerstop procs=%d timers=%ld ns_per_timer=%.1f cpu_ns_per_timer=%.1f\n", procs, total,
               (double)ns / total, (double)cpu / total);
        fflush(stdout);
    }
    return 0;
}
