/*
 * threads_threadring: the pthreads twin of threadring.c: 503 threads in a ring of
 * one-slot mutex+condvar channels (threads.h) pass a token N times (each hop:
 * receive, decrement, send to the next). The thread that receives 0 reports its
 * number (N % 503 + 1) to the main thread, checked. ns per hop = elapsed / N. The
 * process is pinned to the first `procs` CPUs.
 *
 *   usage: threads_threadring [hops=1000000] [procs=1] [reps=1]
 *
 * (The default is a fiftieth of threadring.c's 50,000,000: a hop between threads
 * costs microseconds here; the driver passes a shrunk N likewise.)
 * Output, one line per repetition, with threadring.c's keys:
 *   threads_threadring procs=1 hops=1000000 winner=117 ns_per_hop=3115.0 cpu_ns_per_hop=3001.2
 */
#include "threads.h"

enum { RING = 503 };

static struct tchan ring[RING];
static struct tchan result;

static void *member(void *arg) {
    long id = (long)(intptr_t)arg, token;
    struct tchan *in = &ring[id], *out = &ring[(id + 1) % RING];
    while (tchan_recv(in, &token) == 0) { /* -EPIPE: the run is over */
        if (token == 0) {
            tchan_send(&result, id + 1);
            continue;
        }
        if (tchan_send(out, token - 1) != 0)
            break;
    }
    return NULL;
}

int main(int argc, char **argv) {
    long hops = arg_long(argc, argv, 1, 1000000);
    int procs = (int)arg_long(argc, argv, 2, 1);
    long reps = arg_long(argc, argv, 3, 1);
    if (procs < 1)
        DIE("usage: threads_threadring [hops] [procs] [reps]");
    pin_to_first_cpus(procs);
    pthread_t threads[RING];
    for (long r = 0; r < reps; r++) {
        tchan_init(&result);
        for (int i = 0; i < RING; i++)
            tchan_init(&ring[i]);
        for (long i = 0; i < RING; i++)
            threads[i] = thread_start(member, (void *)(intptr_t)i, 0);
        long winner = 0;
        uint64_t t0 = now_ns(), c0 = cpu_ns();
        tchan_send(&ring[0], hops);
        tchan_recv(&result, &winner);
        uint64_t ns = now_ns() - t0, cns = cpu_ns() - c0;
        for (int i = 0; i < RING; i++)
            tchan_close(&ring[i]);
        for (int i = 0; i < RING; i++)
            pthread_join(threads[i], NULL);
        for (int i = 0; i < RING; i++)
            tchan_destroy(&ring[i]);
        tchan_destroy(&result);
        if (winner != hops % RING + 1)
            DIE("winner %ld, expected %ld", winner, hops % RING + 1);
        printf("threads_threadring procs=%d hops=%ld winner=%ld ns_per_hop=%.1f cpu_ns_per_hop=%.1f\n", procs, hops,
               winner, hops ? (double)ns / hops : 0.0, hops ? (double)cns / hops : 0.0);
        fflush(stdout);
    }
    return 0;
}
