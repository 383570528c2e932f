/*
 * threadring: 503 goroutines in a ring of unbuffered channels pass a token N times
 * (each hop: receive, decrement, send to the next). The goroutine that receives 0
 * reports its number (N % 503 + 1). ns per hop = elapsed / N.
 *
 *   usage: threadring [hops=50000000] [procs=1] [reps=1]
 *
 * Output, one line per repetition:
 *   threadring procs=1 hops=50000000 winner=292 ns_per_hop=20.1 cpu_ns_per_hop=20.0
 */
#include "bench.h"

enum { RING = 503 };

static gr_chan *ring[RING];
static gr_chan *result;

static void member(void *arg)
{
    long id = (long)(intptr_t)arg, token;
    gr_chan *in = ring[id], *out = ring[(id + 1) % RING];
    while (gr_chan_recv(in, &token) == 0) { /* -EPIPE: the run is over */
        if (token == 0) {
            long winner = id + 1;
            gr_chan_send(result, &winner);
            continue;
        }
        token--;
        if (gr_chan_send(out, &token) != 0)
            return;
    }
}

int main(int argc, char **argv)
{
    long hops = arg_long(argc, argv, 1, 50000000);
    int procs = (int)arg_long(argc, argv, 2, 1);
    long reps = arg_long(argc, argv, 3, 1);
    if (procs < 1)
        DIE("usage: threadring [hops] [procs] [reps]");
    gr_init(procs);
    for (long r = 0; r < reps; r++) {
        result = gr_chan_new(sizeof(long), 1);
        for (int i = 0; i < RING; i++)
            if (!(ring[i] = gr_chan_new(sizeof(long), 0)))
                DIE("gr_chan_new failed");
        for (long i = 0; i < RING; i++) {
            gr_id id = gr_spawn(member, (void *)(intptr_t)i);
            if (id <= 0)
                DIE("gr_spawn: %s", gr_strerror((int)id));
        }
        long winner = 0;
        uint64_t t0 = now_ns(), c0 = cpu_ns();
        gr_chan_send(ring[0], &hops); /* from this plain thread */
        gr_chan_recv(result, &winner);
        uint64_t ns = now_ns() - t0, cns = cpu_ns() - c0;
        for (int i = 0; i < RING; i++)
            gr_chan_close(ring[i]);
        gr_wait_all();
        for (int i = 0; i < RING; i++)
            gr_chan_free(ring[i]);
        gr_chan_free(result);
        if (winner != hops % RING + 1)
            DIE("winner %ld, expected %ld", winner, hops % RING + 1);
        printf("threadring procs=%d hops=%ld winner=%ld ns_per_hop=%.1f cpu_ns_per_hop=%.1f\n", procs, hops,
               winner, hops ? (double)ns / hops : 0.0, hops ? (double)cns / hops : 0.0);
        fflush(stdout);
    }
    return 0;
}
