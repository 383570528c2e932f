/*
 * A processor handed on with work in its `runnext` slot only is not stranded. A
 * goroutine locked to its thread spawns a child (which goes to its processor's
 * `runnext`) and joins it: the locked thread cannot run the child, so it hands its
 * processor on. With the other worker blocked in epoll_wait as the poller and no idle
 * thread, the hand-off goes through the poller. The poller used to put the processor
 * on the idle list and look only at the run queues that thieves can take from, never
 * at an idle processor's `runnext`, so the child never ran and the join waited for
 * ever (found by make stress's fuzz_scripts run). The same for a goroutine that spawns
 * and then makes a gr_blocking call: the child runs while the call blocks.
 */
#include "check.h"

#include <pthread.h>
#include <stdatomic.h>

#define ROUNDS 200

static atomic_int child_ran;

static void child(void *arg)
{
    (void)arg;
    atomic_store(&child_ran, 1);
}

/*
 * Runs for 2 ms without yielding: meanwhile the other worker, woken for the child,
 * finds nothing it may take (the child is in this processor's `runnext`) and goes
 * back to blocking in epoll_wait as the poller.
 */
static void busy_2ms(void)
{
    int64_t t0 = now_ns();
    while (now_ns() - t0 < 2000000)
        ;
}

/* The round the locked parent is in, and when it began: watched by `monitor`. */
static atomic_int round_no = -1;
static atomic_llong round_began;
static atomic_int finished;

/* A plain thread: fails the test if a round of the locked parent takes over 1 s. */
static void *monitor(void *arg)
{
    (void)arg;
    while (!atomic_load(&finished)) {
        int r = atomic_load(&round_no);
        long long began = atomic_load(&round_began);
        if (r >= 0 && now_ns() - began > latency_bound(1000 * 1000 * 1000) &&
            atomic_load(&round_no) == r)
            FAIL("round %d: the join of a child spawned by a locked goroutine has waited "
                 "over 1 s",
                 r);
        usleep(10 * 1000);
    }
    return NULL;
}

static void locked_parent(void *arg)
{
    (void)arg;
    CHECK_EQ(gr_lock_thread(), 0);
    for (int i = 0; i < ROUNDS; i++) {
        gr_id c = SPAWN(child, NULL);
        busy_2ms();
        atomic_store(&round_began, now_ns());
        atomic_store(&round_no, i);
        CHECK_EQ(gr_join(c), 0);
        atomic_store(&round_no, -1);
    }
    CHECK_EQ(gr_unlock_thread(), 0);
}

/* gr_blocking's function: waits until the child has run, at most 2 s. */
static void wait_for_child(void *arg)
{
    int64_t *took = arg;
    int64_t t0 = now_ns();
    while (!atomic_load(&child_ran) && now_ns() - t0 < latency_bound(2000000000LL))
        usleep(100);
    *took = now_ns() - t0;
}

static void blocking_parent(void *arg)
{
    (void)arg;
    for (int i = 0; i < ROUNDS / 4; i++) {
        atomic_store(&child_ran, 0);
        gr_id c = SPAWN(child, NULL);
        busy_2ms();
        int64_t took = 0;
        CHECK_EQ(gr_blocking(wait_for_child, &took), 0);
        if (!atomic_load(&child_ran))
            FAIL("round %d: a child spawned before a gr_blocking call did not run during "
                 "its %lld ms",
                 i, (long long)(took / 1000000));
        CHECK_EQ(gr_join(c), 0);
    }
}

int main(void)
{
    watchdog(60);
    CHECK_EQ(gr_init(2), 2);
    pthread_t mon;
    CHECK_EQ(pthread_create(&mon, NULL, monitor, NULL), 0);
    gr_id a = SPAWN(locked_parent, NULL);
    CHECK_EQ(gr_join(a), 0);
    atomic_store(&finished, 1);
    CHECK_EQ(pthread_join(mon, NULL), 0);
    gr_id b = SPAWN(blocking_parent, NULL);
    CHECK_EQ(gr_join(b), 0);
    printf("ok\n");
    return 0;
}
