/*
 * gr_shutdown: 0 when nothing was started; -EBUSY at once while a goroutine is
 * parked or running (also when called from a goroutine); 0 once all finished, after
 * which the worker threads are gone; a second shutdown is 0; the runtime restarts
 * lazily on the next spawn (or gr_init), 20 times over, without leaking threads or
 * file descriptors.
 */
#include "check.h"

#include <dirent.h>
#include <stdatomic.h>

static atomic_int release_gate;
static gr_id gate;

static void gate_fn(void *arg)
{
    (void)arg;
    while (!atomic_load(&release_gate))
        gr_yield();
}

static void parked(void *arg)
{
    (void)arg;
    CHECK_EQ(gr_join(gate), 0);
}

static atomic_int ran;

static void work(void *arg)
{
    (void)arg;
    gr_yield();
    atomic_fetch_add(&ran, 1);
}

static void shutdown_from_goroutine(void *arg)
{
    (void)arg;
    CHECK_EQ(gr_shutdown(), -EBUSY);
}

static int open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    CHECK(d != NULL);
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

/* Worker threads may take a moment to exit after gr_shutdown returned. */
static long threads_settle(long want)
{
    long n = proc_status("Threads");
    for (int i = 0; i < 200 && n != want; i++) {
        sleep_ms(5);
        n = proc_status("Threads");
    }
    return n;
}

static void expect_busy(void)
{
    int64_t t0 = now_ns();
    CHECK_EQ(gr_shutdown(), -EBUSY);
    if (now_ns() - t0 > 2000000000LL)
        FAIL("gr_shutdown took %.0f ms to say -EBUSY", (now_ns() - t0) / 1e6);
}

int main(void)
{
    watchdog(60);
    long threads0 = proc_status("Threads");
    CHECK_EQ(threads0, 1);
    CHECK_EQ(gr_shutdown(), 0); /* nothing started */

    /* Busy while a goroutine is parked (and the gate running). */
    gate = SPAWN(gate_fn, NULL);
    gr_id p = SPAWN(parked, NULL);
    for (int i = 0; i < 100; i++)
        gr_yield();
    expect_busy();
    CHECK(gr_count() >= 1);
    CHECK_EQ(gr_main(shutdown_from_goroutine, NULL), 0);
    atomic_store(&release_gate, 1);
    CHECK_EQ(gr_join(p), 0);
    CHECK_EQ(gr_wait_all(), 0);

    int fds0 = open_fds();
    CHECK_EQ(gr_shutdown(), 0);
    CHECK_EQ(threads_settle(threads0), threads0);
    CHECK_EQ(gr_shutdown(), 0); /* double shutdown */
    CHECK_EQ(gr_count(), 0);
    CHECK_EQ(gr_self(), 0);

    /* Lazy restart, 20 times; with gr_init every other time. */
    for (int round = 0; round < 20; round++) {
        if (round % 2) {
            int np = gr_init(2);
            if (np != 2)
                FAIL("round %d: gr_init(2) after shutdown = %d", round, np);
        }
        atomic_store(&ran, 0);
        for (int i = 0; i < 1000; i++)
            SPAWN(work, NULL);
        CHECK_EQ(gr_wait_all(), 0);
        CHECK_EQ(atomic_load(&ran), 1000);
        CHECK_EQ(gr_shutdown(), 0);
        long t = threads_settle(threads0);
        if (t != threads0)
            FAIL("round %d: %ld threads after shutdown, expected %ld", round, t, threads0);
    }
    int fds1 = open_fds();
    if (fds1 > fds0)
        FAIL("%d file descriptors leaked over 20 restarts", fds1 - fds0);
    printf("shutdown and lazy restart x20: threads back to %ld, fds %d -> %d\n", threads0,
           fds0, fds1);
    puts("ok");
    return 0;
}
