/*
 * chanpp: round trip of a value over two unbuffered channels between two
 * goroutines: ping sends on `to`, pong receives it and sends it back on `from`.
 * ns per round trip = elapsed / round trips (after a warm-up of a tenth as many).
 *
 *   usage: chanpp [roundtrips=2000000] [procs=1] [reps=1]
 *
 * Output, one line per repetition:
 *   chanpp procs=1 roundtrips=2000000 ns_per_roundtrip=45.6 cpu_ns_per_roundtrip=45.1
 */
#include "bench.h"

static gr_chan *to, *from;
static long rounds;
static uint64_t elapsed_ns, elapsed_cpu_ns;

static void pong(void *arg)
{
    (void)arg;
    long v;
    while (gr_chan_recv(to, &v) == 0)
        gr_chan_send(from, &v);
}

static void ping(void *arg)
{
    (void)arg;
    long v = 0, w;
    gr_id id = gr_spawn(pong, NULL);
    if (id <= 0)
        DIE("gr_spawn: %s", gr_strerror((int)id));
    for (long i = 0; i < rounds / 10; i++) {
        gr_chan_send(to, &v);
        gr_chan_recv(from, &w);
    }
    uint64_t t0 = now_ns(), c0 = cpu_ns();
    for (long i = 0; i < rounds; i++) {
        v = i;
        gr_chan_send(to, &v);
        gr_chan_recv(from, &w);
        if (w != i)
            DIE("got %ld, expected %ld", w, i);
    }
    elapsed_ns = now_ns() - t0;
    elapsed_cpu_ns = cpu_ns() - c0;
    gr_chan_close(to);
    gr_join(id);
}

int main(int argc, char **argv)
{
    rounds = arg_long(argc, argv, 1, 2000000);
    int procs = (int)arg_long(argc, argv, 2, 1);
    long reps = arg_long(argc, argv, 3, 1);
    if (rounds < 1 || procs < 1)
        DIE("usage: chanpp [roundtrips] [procs] [reps]");
    gr_init(procs);
    for (long r = 0; r < reps; r++) {
        to = gr_chan_new(sizeof(long), 0);
        from = gr_chan_new(sizeof(long), 0);
        if (!to || !from)
            DIE("gr_chan_new failed");
        int rc = gr_main(ping, NULL);
        if (rc != 0)
            DIE("gr_main: %s", gr_strerror(rc));
        gr_chan_free(to);
        gr_chan_free(from);
        printf("chanpp procs=%d roundtrips=%ld ns_per_roundtrip=%.1f cpu_ns_per_roundtrip=%.1f\n", procs,
               rounds, (double)elapsed_ns / rounds, (double)elapsed_cpu_ns / rounds);
        fflush(stdout);
    }
    return 0;
}
