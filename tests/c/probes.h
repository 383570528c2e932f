/*
 * Liveness probes for the tests that block one thread on purpose (blocking_usleep.c:
 * inside gr_blocking; sysmon_usleep.c: an unwrapped usleep): a goroutine sleeping
 * 1 ms in a loop and a channel ping-pong, which record their worst sleep and round
 * trip while `probe_in_call` is set. One copy of them, so both tests measure the
 * same thing. Include after check.h; start with probes_start(gap between round
 * trips), end with probes_stop().
 */
#ifndef GR_TEST_PROBES_H
#define GR_TEST_PROBES_H

#include <stdatomic.h>

static atomic_int probe_stop, probe_in_call;
static atomic_llong probe_worst_sleep_ns, probe_worst_rtt_ns;
static gr_chan *probe_ping, *probe_pong;
static gr_id probe_ids[3];

static void probe_max_into(atomic_llong *a, long long v)
{
    long long m = atomic_load(a);
    while (v > m && !atomic_compare_exchange_weak(a, &m, v)) {
    }
}

static void probe_sleeper(void *arg)
{
    (void)arg;
    while (!atomic_load(&probe_stop)) {
        int64_t t0 = now_ns();
        CHECK_EQ(gr_sleep(1000000), 0);
        if (atomic_load(&probe_in_call))
            probe_max_into(&probe_worst_sleep_ns, now_ns() - t0);
    }
}

static void probe_ponger(void *arg)
{
    (void)arg;
    int v;
    while (gr_chan_recv(probe_ping, &v) == 0)
        CHECK_EQ(gr_chan_send(probe_pong, &v), 0);
}

/* arg: the pause between round trips, in ns. */
static void probe_pinger(void *arg)
{
    int64_t gap = (int64_t)(intptr_t)arg;
    for (int i = 0; !atomic_load(&probe_stop); i++) {
        int v = i, w = -1;
        int64_t t0 = now_ns();
        CHECK_EQ(gr_chan_send(probe_ping, &v), 0);
        CHECK_EQ(gr_chan_recv(probe_pong, &w), 0);
        CHECK_EQ(w, i);
        if (atomic_load(&probe_in_call))
            probe_max_into(&probe_worst_rtt_ns, now_ns() - t0);
        gr_sleep(gap);
    }
    CHECK_EQ(gr_chan_close(probe_ping), 0);
}

/* Resets the records and spawns the probes. */
static void probes_start(int64_t rtt_gap_ns)
{
    atomic_store(&probe_stop, 0);
    atomic_store(&probe_worst_sleep_ns, 0);
    atomic_store(&probe_worst_rtt_ns, 0);
    probe_ping = gr_chan_new(sizeof(int), 0);
    probe_pong = gr_chan_new(sizeof(int), 0);
    CHECK(probe_ping && probe_pong);
    probe_ids[0] = SPAWN(probe_sleeper, NULL);
    probe_ids[1] = SPAWN(probe_ponger, NULL);
    probe_ids[2] = SPAWN(probe_pinger, (void *)(intptr_t)rtt_gap_ns);
}

/* Stops the probes (if probe_stop is not set yet), joins them, frees the channels. */
static void probes_stop(void)
{
    atomic_store(&probe_stop, 1);
    for (int i = 0; i < 3; i++)
        CHECK_EQ(gr_join(probe_ids[i]), 0);
    CHECK_EQ(gr_chan_free(probe_ping), 0);
    CHECK_EQ(gr_chan_free(probe_pong), 0);
}

#endif
