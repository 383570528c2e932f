/*
 * threads_chanpp: the pthreads twin of chanpp.c: round trip of a value between two
 * threads through two one-slot mutex+condvar channels (threads.h): the main thread
 * sends on `to`, the pong thread receives it and sends it back on `from`. ns per
 * round trip = elapsed / round trips, after a warm-up of a tenth as many; every
 * reply is checked. The process is pinned to the first `procs` CPUs.
 *
 *   usage: threads_chanpp [roundtrips=200000] [procs=1] [reps=1]
 *
 * (The default is a tenth of chanpp.c's: a round trip costs microseconds here.)
 * Output, one line per repetition, with chanpp.c's keys (the name prefixed threads_):
 *   threads_chanpp procs=1 roundtrips=200000 ns_per_roundtrip=4266.0 cpu_ns_per_roundtrip=4100.3
 */
#include "threads.h"

static struct tchan to, from;

static void *pong(void *arg) {
    (void)arg;
    long v;
    while (tchan_recv(&to, &v) == 0)
        if (tchan_send(&from, v) != 0)
            DIE("pong: reply channel closed");
    return NULL;
}

int main(int argc, char **argv) {
    long rounds = arg_long(argc, argv, 1, 200000);
    int procs = (int)arg_long(argc, argv, 2, 1);
    long reps = arg_long(argc, argv, 3, 1);
    if (rounds < 1 || procs < 1)
        DIE("usage: threads_chanpp [roundtrips] [procs] [reps]");
    pin_to_first_cpus(procs);
    for (long r = 0; r < reps; r++) {
        tchan_init(&to);
        tchan_init(&from);
        pthread_t t = thread_start(pong, NULL, 0);
        long w = -1;
        for (long i = 0; i < rounds / 10; i++) {
            tchan_send(&to, 0);
            tchan_recv(&from, &w);
        }
        uint64_t t0 = now_ns(), c0 = cpu_ns();
        for (long i = 0; i < rounds; i++) {
            tchan_send(&to, i);
            if (tchan_recv(&from, &w) != 0 || w != i)
                DIE("got %ld, expected %ld", w, i);
        }
        uint64_t ns = now_ns() - t0, cns = cpu_ns() - c0;
        tchan_close(&to);
        pthread_join(t, NULL);
        tchan_destroy(&to);
        tchan_destroy(&from);
        printf("threads_chanpp procs=%d roundtrips=%ld ns_per_roundtrip=%.1f cpu_ns_per_roundtrip=%.1f\n", procs, rounds,
               (double)ns / rounds, (double)cns / rounds);
        fflush(stdout);
    }
    return 0;
}
