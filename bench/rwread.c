/*
 * rwread: read lock and unlock of one shared reader/writer mutex by `procs`
 * goroutines at once (Go's sync.RWMutex RLock + RUnlock, the case it exists for:
 * readers on every processor), N / procs pairs each, after a warm-up of a tenth as
 * many. ns per pair = elapsed / N (all goroutines' pairs together).
 *
 *   usage: rwread [pairs=20000000] [procs=2] [reps=1]
 *
 * Output, one line per repetition:
 *   rwread procs=2 pairs=20000000 ns_per_pair=12.3 cpu_ns_per_pair=24.1
 */
#include "bench.h"

static gr_rwmutex *rw;
static long per_goroutine;

static void read_pairs(long n)
{
    for (long i = 0; i < n; i++) {
        gr_rwmutex_rlock(rw); /* an empty critical section: the lock's own cost */
        gr_rwmutex_runlock(rw);
    }
}

static void reader(void *arg)
{
    (void)arg;
    read_pairs(per_goroutine);
}

int main(int argc, char **argv)
{
    long n = arg_long(argc, argv, 1, 20000000);
    int procs = (int)arg_long(argc, argv, 2, 2);
    long reps = arg_long(argc, argv, 3, 1);
    if (n < procs || procs < 1)
        DIE("usage: rwread [pairs] [procs] [reps]");
    gr_init(procs);
    rw = gr_rwmutex_new();
    if (!rw)
        DIE("gr_rwmutex_new failed");
    per_goroutine = n / procs;
    read_pairs(n / 10);
    for (long r = 0; r < reps; r++) {
        uint64_t cpu, ns = run_parallel(procs, reader, NULL, &cpu);
        long total = per_goroutine * procs;
        printf("rwread procs=%d pairs=%ld ns_per_pair=%.2f cpu_ns_per_pair=%.2f\n", procs, total,
               (double)ns / total, (double)cpu / total);
        fflush(stdout);
    }
    if (gr_rwmutex_free(rw) != 0)
        DIE("gr_rwmutex_free: still held");
    return 0;
}
