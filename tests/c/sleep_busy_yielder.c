/*
 * Timers fire next to a goroutine that yields in a loop (so the run queue never
 * empties) on ONE processor, round after round: 100 rounds of [start a yielder, sleep
 * 1 ms 20 times, stop the yielder, join it]. Every sleep must end within 500 ms (the
 * runtime's own lateness is a few ms; the rest of the bound is for a loaded 2-CPU
 * machine running other test programs beside this one, which can leave the one worker
 * thread off the CPU for 100 ms and more) and every round must finish (a lost timer
 * or a lost runnable goroutine hangs a round: the watchdog, 10 s, fails the test).
 * Prints the worst lateness.
 */
#include "check.h"

#include <stdatomic.h>

#define MS 1000000LL

static atomic_int stop;
static atomic_long yields;
static double worst_ms;

static void yielder(void *arg)
{
    (void)arg;
    long n = 0;
    while (!atomic_load(&stop)) {
        gr_yield();
        n++;
    }
    atomic_fetch_add(&yields, n);
}

static void round_body(void *arg)
{
    int round = (int)(intptr_t)arg;
    atomic_store(&stop, 0);
    gr_id y = SPAWN(yielder, NULL);
    for (int i = 0; i < 20; i++) {
        int64_t t0 = now_ns();
        CHECK_EQ(gr_sleep(1 * MS), 0);
        double late = (now_ns() - t0 - 1 * MS) / 1e6;
        if (late < 0)
            FAIL("round %d: gr_sleep(1 ms) returned %.3f ms early", round, -late);
        if (late > worst_ms)
            worst_ms = late;
        if (late > 500)
            FAIL("round %d, sleep %d: woke %.1f ms late next to a busy yielder", round, i, late);
    }
    atomic_store(&stop, 1);
    CHECK_EQ(gr_join(y), 0);
}

int main(void)
{
    watchdog(10);
    CHECK_EQ(gr_init(1), 1);
    int64_t t0 = now_ns();
    for (int r = 0; r < 100; r++)
        CHECK_EQ(gr_main(round_body, (void *)(intptr_t)r), 0);
    printf("100 rounds x 20 sleeps of 1 ms next to a busy yielder on 1 processor: %.0f ms, "
           "worst lateness %.3f ms, %ld yields\n", (now_ns() - t0) / 1e6, worst_ms, atomic_load(&yields));
    puts("ok");
    return 0;
}
