/*
 * 1,000,000 gr_timers pending at once (issue 17's acceptance): each costs at most
 * 200 bytes, all of it (the timer, its channel, its node on the runtime's timer
 * heap), and no thread.
 *
 * Measured: VmRSS after creating N timers (deadlines 1 to 2 hours away, half of
 * them tickers), minus VmRSS before, over N; with malloc_trim(0) before the
 * baseline so that free memory malloc kept from earlier does not hide the cost. The
 * thread count must not grow, gr_stats must count exactly N armed timers, and a
 * stop of each must return 1 (all pending); after freeing them 0 timers are armed.
 * Then 1,000 more timers due within 50 ms fire, each once, while the million are
 * pending (arming and firing among them works).
 *
 *   usage: timer_million [N=1000000]
 */
#include "check.h"

#include <malloc.h>

#define MS 1000000LL

static uint64_t armed_timers(void)
{
    struct gr_stats st = { .size = sizeof st };
    CHECK_EQ(gr_stats(&st), 0);
    return st.timers;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    CHECK(n >= 1000);
    watchdog(120);
    CHECK_EQ(gr_init(2), 2);
    gr_timer **ts = malloc((size_t)n * sizeof *ts);
    CHECK(ts != NULL);
    /* Touch the array now, so its pages are not counted as the timers' (with a value
     * that is not 0: a compiler may drop zeroing stores into fresh memory). */
    for (long i = 0; i < n; i++)
        ts[i] = (gr_timer *)(intptr_t)1;
    long threads = proc_status("Threads");
    uint64_t armed0 = armed_timers();
    malloc_trim(0);
    long rss0 = proc_status("VmRSS");
    int64_t t0 = now_ns();
    for (long i = 0; i < n; i++) {
        int64_t due = (3600LL * 1000 + i % 3600000) * MS;
        ts[i] = gr_timer_new(due, i % 2 ? due : 0);
        if (!ts[i])
            FAIL("gr_timer_new failed at %ld", i);
    }
    int64_t t1 = now_ns();
    long rss1 = proc_status("VmRSS");
    double per = (rss1 - rss0) * 1024.0 / n;
    printf("%ld timers pending: %.1f bytes each (VmRSS %ld -> %ld KiB), created in %.0f ms "
           "(%.0f ns each)\n",
           n, per, rss0, rss1, (t1 - t0) / 1e6, (double)(t1 - t0) / n);
    CHECK_EQ(armed_timers(), armed0 + (uint64_t)n);
    CHECK_EQ(proc_status("Threads"), threads);
    if (per > 200)
        FAIL("%.1f bytes per pending timer, more than 200", per);

    /* Among the million: short timers arm and fire, each once. */
    enum { SHORT = 1000 };
    static gr_timer *shorts[SHORT];
    for (int i = 0; i < SHORT; i++) {
        shorts[i] = gr_timer_new((i % 50) * MS, 0);
        CHECK(shorts[i] != NULL);
    }
    for (int i = 0; i < SHORT; i++) {
        int64_t v;
        CHECK_EQ(gr_chan_recv(gr_timer_chan(shorts[i]), &v), 0);
        CHECK_EQ(gr_timer_stop(shorts[i]), 0);
        CHECK_EQ(gr_timer_free(shorts[i]), 0);
    }

    int64_t t2 = now_ns();
    for (long i = 0; i < n; i++) {
        if (gr_timer_stop(ts[i]) != 1)
            FAIL("timer %ld was not pending", i);
        CHECK_EQ(gr_timer_free(ts[i]), 0);
    }
    int64_t t3 = now_ns();
    printf("stopped and freed in %.0f ms (%.0f ns each)\n", (t3 - t2) / 1e6,
           (double)(t3 - t2) / n);
    CHECK_EQ(armed_timers(), armed0);
    free(ts);
    puts("ok");
    return 0;
}
