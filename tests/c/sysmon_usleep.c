/*
 * A goroutine stuck in a blocking system call that nobody wrapped in gr_blocking
 * (usleep(300 ms)) on ONE processor: sysmon notices within ~20 ms and hands the
 * other goroutines to another thread.
 *   1. rescue latency: the main goroutine spawns the stuck one and yields to it;
 *      the time until the main goroutine runs again (it was queued behind the stuck
 *      one) must be < 100 ms (sysmon's threshold is 20 ms; printed); the rescue is
 *      counted in gr_stats.sysmon_rescues;
 *   2. while a second unwrapped usleep(300 ms) runs, a channel ping-pong and a 1 ms
 *      sleeper keep going: the longest round trip and the longest 1 ms sleep must
 *      stay under 100 ms (they may stall once, for the rescue);
 *   3. after both calls return everything still runs on the one processor.
 */
#include "check.h"
#include "probes.h"

#define MS 1000000LL

static int64_t t_stuck;

static void stuck(void *arg)
{
    (void)arg;
    t_stuck = now_ns(); /* before in_call publishes it (body reads it after seeing in_call) */
    atomic_store(&probe_in_call, 1);
    usleep(300000); /* blocks this thread; not wrapped in gr_blocking */
    atomic_store(&probe_in_call, 0);
}

static void body(void *arg)
{
    (void)arg;
    /* 1: rescue latency of the goroutine queued behind the stuck one. */
    gr_id s = SPAWN(stuck, NULL);
    gr_yield(); /* the stuck goroutine runs now, on our only processor */
    int64_t back = now_ns();
    CHECK(atomic_load(&probe_in_call)); /* still inside usleep: we were rescued */
    double rescue_ms = (back - t_stuck) / 1e6;
    printf("sysmon rescue: the goroutine queued behind an unwrapped usleep(300 ms) ran again "
           "after %.3f ms\n", rescue_ms);
    if (rescue_ms > 100)
        FAIL("rescued only after %.1f ms", rescue_ms);
    struct gr_stats st = { .size = sizeof st };
    CHECK_EQ(gr_stats(&st), 0);
    CHECK(st.sysmon_rescues >= 1); /* counted (and noted under GRDEBUG: c_tests.rs) */
    CHECK_EQ(gr_join(s), 0);

    /* 2: ping-pong and a sleeper across another unwrapped call. */
    probes_start(200000);
    gr_sleep(20 * MS);
    s = SPAWN(stuck, NULL);
    CHECK_EQ(gr_join(s), 0);
    probes_stop();
    printf("during a second unwrapped usleep(300 ms): 1 ms sleeps took at most %.3f ms, "
           "ping-pong round trips at most %.3f ms\n", atomic_load(&probe_worst_sleep_ns) / 1e6,
           atomic_load(&probe_worst_rtt_ns) / 1e6);
    if (atomic_load(&probe_worst_sleep_ns) > 100 * MS)
        FAIL("a 1 ms sleep took %.1f ms", atomic_load(&probe_worst_sleep_ns) / 1e6);
    if (atomic_load(&probe_worst_rtt_ns) > 100 * MS)
        FAIL("a round trip took %.1f ms", atomic_load(&probe_worst_rtt_ns) / 1e6);

    /* 3: afterwards, normal service on the one processor. */
    for (int i = 0; i < 10; i++)
        CHECK_EQ(gr_sleep(1 * MS), 0);
}

int main(void)
{
    watchdog(30);
    CHECK_EQ(gr_init(1), 1);
    CHECK_EQ(gr_main(body, NULL), 0);
    CHECK_EQ(gr_wait_all(), 0);
    CHECK_EQ(gr_maxprocs(0), 1);
    puts("ok");
    return 0;
}
