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

#include <stdatomic.h>

#define MS 1000000LL

static atomic_int stop, in_call;
static atomic_llong worst_sleep_ns, worst_rtt_ns;
static int64_t t_stuck;

static void max_into(atomic_llong *a, long long v)
{
    long long m = atomic_load(a);
    while (v > m && !atomic_compare_exchange_weak(a, &m, v)) {
    }
}

static void stuck(void *arg)
{
    (void)arg;
    t_stuck = now_ns(); /* before in_call publishes it (body reads it after seeing in_call) */
    atomic_store(&in_call, 1);
    usleep(300000); /* blocks this thread; not wrapped in gr_blocking */
    atomic_store(&in_call, 0);
}

static void sleeper_loop(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop)) {
        int64_t t0 = now_ns();
        CHECK_EQ(gr_sleep(1 * MS), 0);
        if (atomic_load(&in_call))
            max_into(&worst_sleep_ns, now_ns() - t0);
    }
}

static gr_chan *ping, *pong;

static void ponger(void *arg)
{
    (void)arg;
    int v;
    while (gr_chan_recv(ping, &v) == 0)
        CHECK_EQ(gr_chan_send(pong, &v), 0);
}

static void pinger(void *arg)
{
    (void)arg;
    for (int i = 0; !atomic_load(&stop); i++) {
        int v = i, w = -1;
        int64_t t0 = now_ns();
        CHECK_EQ(gr_chan_send(ping, &v), 0);
        CHECK_EQ(gr_chan_recv(pong, &w), 0);
        CHECK_EQ(w, i);
        if (atomic_load(&in_call))
            max_into(&worst_rtt_ns, now_ns() - t0);
        gr_sleep(200000);
    }
    CHECK_EQ(gr_chan_close(ping), 0);
}

static void body(void *arg)
{
    (void)arg;
    /* 1: rescue latency of the goroutine queued behind the stuck one. */
    gr_id s = SPAWN(stuck, NULL);
    gr_yield(); /* the stuck goroutine runs now, on our only processor */
    int64_t back = now_ns();
    CHECK(atomic_load(&in_call)); /* still inside usleep: we were rescued */
    double rescue_ms = (back - t_stuck) / 1e6;
    printf("sysmon rescue: the goroutine queued behind an unwrapped usleep(300 ms) ran again "
           "after %.3f ms\n", rescue_ms);
    if (rescue_ms > 100)
        FAIL("rescued only after %.1f ms", rescue_ms);
    struct gr_stats st;
    CHECK_EQ(gr_stats(&st), 0);
    CHECK(st.sysmon_rescues >= 1); /* counted (and noted under GRDEBUG: c_tests.rs) */
    CHECK_EQ(gr_join(s), 0);

    /* 2: ping-pong and a sleeper across another unwrapped call. */
    ping = gr_chan_new(sizeof(int), 0);
    pong = gr_chan_new(sizeof(int), 0);
    CHECK(ping && pong);
    gr_id ids[3] = { SPAWN(sleeper_loop, NULL), SPAWN(ponger, NULL), SPAWN(pinger, NULL) };
    gr_sleep(20 * MS);
    s = SPAWN(stuck, NULL);
    CHECK_EQ(gr_join(s), 0);
    atomic_store(&stop, 1);
    for (int i = 0; i < 3; i++)
        CHECK_EQ(gr_join(ids[i]), 0);
    printf("during a second unwrapped usleep(300 ms): 1 ms sleeps took at most %.3f ms, "
           "ping-pong round trips at most %.3f ms\n", atomic_load(&worst_sleep_ns) / 1e6,
           atomic_load(&worst_rtt_ns) / 1e6);
    if (atomic_load(&worst_sleep_ns) > 100 * MS)
        FAIL("a 1 ms sleep took %.1f ms", atomic_load(&worst_sleep_ns) / 1e6);
    if (atomic_load(&worst_rtt_ns) > 100 * MS)
        FAIL("a round trip took %.1f ms", atomic_load(&worst_rtt_ns) / 1e6);
    CHECK_EQ(gr_chan_free(ping), 0);
    CHECK_EQ(gr_chan_free(pong), 0);

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
