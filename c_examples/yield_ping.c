/* yield_ping: two goroutines take turns using nothing but gr_yield. */
/*
 * "ping" and "pong" share a turn flag; each waits for its turn by yielding, prints,
 * and hands the turn over. Cooperative scheduling is all it takes: gr_yield lets the
 * other goroutine run (on the same processor, or on another one). Then the same game
 * without printing, timed, on one processor: the cost of a yield.
 *
 * Build: cc -O2 yield_ping.c $(pkg-config --cflags --libs goroutine)
 * Run:   ./yield_ping [ROUNDS]     (default 100,000 timed rounds)
 */
#include <goroutine.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static atomic_int turn;      /* 0: ping's turn, 1: pong's */
static long rounds = 5;      /* rounds each goroutine plays */
static int quiet;            /* the timed game prints nothing */
static atomic_long yields;

static void player(void *arg)
{
    int me = (int)(long)arg;
    for (long i = 0; i < rounds; i++) {
        while (atomic_load_explicit(&turn, memory_order_acquire) != me) {
            gr_yield(); /* not my turn: let the other one run */
            atomic_fetch_add_explicit(&yields, 1, memory_order_relaxed);
        }
        if (!quiet)
            printf("%s %ld\n", me == 0 ? "ping" : "pong", i + 1);
        atomic_store_explicit(&turn, 1 - me, memory_order_release);
    }
}

static int play(void)
{
    gr_id a = gr_spawn(player, (void *)0L);
    gr_id b = gr_spawn(player, (void *)1L);
    if (a < 0 || b < 0) {
        fprintf(stderr, "gr_spawn: %s\n", gr_strerror((int)(a < 0 ? a : b)));
        return 1;
    }
    return gr_join(a) != 0 || gr_join(b) != 0;
}

int main(int argc, char **argv)
{
    if (play() != 0)
        return 1;

    /* Timed: one processor, so every yield is a switch to the other goroutine. */
    long timed = argc > 1 ? atol(argv[1]) : 100000;
    if (timed < 1)
        timed = 1;
    int before = gr_maxprocs(1);
    quiet = 1;
    rounds = timed;
    atomic_store(&turn, 0);
    atomic_store(&yields, 0);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (play() != 0)
        return 1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    gr_maxprocs(before);
    double ns = (t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec);
    long y = atomic_load(&yields);
    printf("%ld rounds on 1 processor: %ld yields, %.0f ns per round, %.0f ns per yield\n",
           timed, y, ns / timed, y ? ns / y : 0.0);
    return 0;
}
