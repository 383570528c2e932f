/*
 * A goroutine that yields in a loop cannot starve the goroutines that wait in the
 * global run queue or on the netpoller, on ONE processor, whose run queue then never
 * empties (Go's rule, kept here: the global queue and ready fds get a look every 61
 * schedules, and a yield that finds nothing else local looks at the global queue).
 * Three rounds: 1 yielder (alone on the processor, its yields find nothing local),
 * 2 yielders (they swap through runnext, the yield's fast path), 3 yielders (the
 * ring).
 *   1. global queue: a plain thread sends 100 timestamps on an unbuffered channel to
 *      a goroutine parked in gr_chan_recv; a plain thread has no processor, so each
 *      wake-up goes to the global queue. Every receive must come within 500 ms of its
 *      send.
 *   2. netpoller: a plain thread writes 100 timestamps into a pipe that a goroutine
 *      reads with gr_read (parked on the netpoller between writes). Every read must
 *      come within 500 ms of its write.
 * The bound is a sanity bound for a loaded 2-CPU machine (the runtime's own latency
 * is microseconds); a starved waiter never comes back, and the watchdog (20 s) fails
 * the test. Prints the worst latencies.
 */
#include "check.h"

#include <pthread.h>
#include <stdatomic.h>

#define MS 1000000LL
#define N 100
#define BOUND_MS 500.0

static atomic_int stop;
static gr_chan *ch;
static int pipefd[2];
static double worst_chan_ms, worst_pipe_ms;

static void yielder(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop))
        gr_yield();
}

static void receiver(void *arg)
{
    (void)arg;
    for (int i = 0; i < N; i++) {
        int64_t sent;
        CHECK_EQ(gr_chan_recv(ch, &sent), 0);
        double ms = (now_ns() - sent) / 1e6;
        if (ms > worst_chan_ms)
            worst_chan_ms = ms;
        if (ms > BOUND_MS)
            FAIL("receive %d came %.1f ms after its send, next to yielders", i, ms);
    }
}

static void reader(void *arg)
{
    (void)arg;
    for (int i = 0; i < N; i++) {
        int64_t sent;
        CHECK_EQ(gr_read(pipefd[0], &sent, sizeof sent), (long)sizeof sent);
        double ms = (now_ns() - sent) / 1e6;
        if (ms > worst_pipe_ms)
            worst_pipe_ms = ms;
        if (ms > BOUND_MS)
            FAIL("read %d came %.1f ms after its write, next to yielders", i, ms);
    }
}

static void *plain_sender(void *arg)
{
    (void)arg;
    for (int i = 0; i < N; i++) {
        sleep_ms(1);
        int64_t t = now_ns();
        CHECK_EQ(gr_chan_send(ch, &t), 0);
    }
    return NULL;
}

static void *plain_writer(void *arg)
{
    (void)arg;
    for (int i = 0; i < N; i++) {
        sleep_ms(1);
        int64_t t = now_ns();
        CHECK_EQ(write(pipefd[1], &t, sizeof t), (long)sizeof t);
    }
    return NULL;
}

static void round_body(void *arg)
{
    int yielders = (int)(intptr_t)arg;
    atomic_store(&stop, 0);
    gr_id ys[3];
    for (int i = 0; i < yielders; i++)
        ys[i] = SPAWN(yielder, NULL);
    gr_id r = SPAWN(receiver, NULL);
    gr_id p = SPAWN(reader, NULL);
    pthread_t ts, tw;
    CHECK_EQ(pthread_create(&ts, NULL, plain_sender, NULL), 0);
    CHECK_EQ(pthread_create(&tw, NULL, plain_writer, NULL), 0);
    CHECK_EQ(gr_join(r), 0);
    CHECK_EQ(gr_join(p), 0);
    atomic_store(&stop, 1);
    for (int i = 0; i < yielders; i++)
        CHECK_EQ(gr_join(ys[i]), 0);
    CHECK_EQ(pthread_join(ts, NULL), 0);
    CHECK_EQ(pthread_join(tw, NULL), 0);
}

int main(void)
{
    watchdog(20);
    CHECK_EQ(gr_init(1), 1);
    ch = gr_chan_new(sizeof(int64_t), 0);
    CHECK(ch != NULL);
    CHECK_EQ(pipe(pipefd), 0);
    for (int y = 1; y <= 3; y++) {
        worst_chan_ms = worst_pipe_ms = 0;
        CHECK_EQ(gr_main(round_body, (void *)(intptr_t)y), 0);
        printf("%d yielder(s) on 1 processor: worst latency %.3f ms through the global queue, "
               "%.3f ms through the netpoller (%d of each)\n",
               y, worst_chan_ms, worst_pipe_ms, N);
    }
    gr_chan_free(ch);
    puts("ok");
    return 0;
}
