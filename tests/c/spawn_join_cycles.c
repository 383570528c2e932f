/*
 * No leak per goroutine (reliability catalogue entry 43, the counting part; the
 * memcheck and ASan/LSan parts are `make valgrind` and `make sanitize`). Owns the
 * check that a goroutine's whole life - spawn, the objects it uses, park, wake, join -
 * gives back everything it took: after a warm-up of 1,000 cycles, 10,000 more cycles
 * must not grow VmRSS (beyond a small allocator margin), the number of memory maps,
 * open file descriptors or threads.
 *
 * One cycle, from the main (plain) thread, on 2 processors: make a pipe, a buffered
 * channel, a wait group and a mutex; spawn a goroutine that locks the mutex, waits in
 * gr_read on the pipe (an epoll registration), sends on the channel, arms and fires a
 * timer (a 1 us select timeout on an empty channel) and calls gr_wg_done; main writes
 * the pipe, receives, waits, joins, then frees everything and gr_close()s the pipe.
 * Each cycle checks its own results, so a cycle that silently did nothing fails.
 */
#include "check.h"

#include <fcntl.h>

#define WARMUP 1000
#define CYCLES 10000

struct cycle {
    int rfd;
    gr_chan *ch, *empty;
    gr_wg *wg;
    gr_mutex *mu;
};

static void child(void *arg)
{
    struct cycle *c = arg;
    CHECK_EQ(gr_mutex_lock(c->mu), 0);
    char b = 0;
    CHECK_EQ(gr_read(c->rfd, &b, 1), 1);
    CHECK_EQ(b, 'x');
    int v = 7;
    CHECK_EQ(gr_chan_send(c->ch, &v), 0);
    gr_case k = { c->empty, GR_RECV, &v, 0 };
    CHECK_EQ(gr_select(&k, 1, 1000), -ETIMEDOUT);
    CHECK_EQ(gr_mutex_unlock(c->mu), 0);
    CHECK_EQ(gr_wg_done(c->wg), 0);
}

static void one_cycle(void)
{
    int p[2];
    CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
    struct cycle c = { p[0], gr_chan_new(sizeof(int), 1), gr_chan_new(sizeof(int), 0),
                       gr_wg_new(), gr_mutex_new() };
    CHECK(c.ch && c.empty && c.wg && c.mu);
    CHECK_EQ(gr_wg_add(c.wg, 1), 0);
    gr_id id = SPAWN(child, &c);
    CHECK_EQ(gr_write(p[1], "x", 1), 1);
    int v = 0;
    CHECK_EQ(gr_chan_recv(c.ch, &v), 0);
    CHECK_EQ(v, 7);
    CHECK_EQ(gr_wg_wait(c.wg), 0);
    CHECK_EQ(gr_join(id), 0);
    CHECK_EQ(gr_chan_free(c.ch), 0);
    CHECK_EQ(gr_chan_free(c.empty), 0);
    CHECK_EQ(gr_wg_free(c.wg), 0);
    CHECK_EQ(gr_mutex_free(c.mu), 0);
    CHECK_EQ(gr_close(p[0]), 0);
    CHECK_EQ(gr_close(p[1]), 0);
}

struct usage {
    long rss_kib, maps, fds, threads;
    struct gr_stats st;
};

static struct usage usage_now(void)
{
    struct usage u = { proc_status("VmRSS"), map_count(),
                       fd_count(), proc_status("Threads"),
                       { .size = sizeof(struct gr_stats) } };
    CHECK_EQ(gr_stats(&u.st), 0);
    return u;
}

int main(int argc, char **argv)
{
    int cycles = argc > 1 ? atoi(argv[1]) : CYCLES;
    CHECK(cycles > 0);
    watchdog(60 + cycles / 1000);
    CHECK_EQ(gr_init(2), 2);
    for (int i = 0; i < WARMUP; i++)
        one_cycle();
    struct usage before = usage_now();
    int64_t t0 = now_ns();
    for (int i = 0; i < cycles; i++)
        one_cycle();
    double us = (now_ns() - t0) / 1e3 / cycles;
    struct usage after = usage_now();
    printf("%d spawn/park/join cycles (%.1f us each): VmRSS %ld -> %ld KiB, maps %ld -> %ld, "
           "fds %ld -> %ld, threads %ld -> %ld\n",
           cycles, us, before.rss_kib, after.rss_kib, before.maps, after.maps, before.fds,
           after.fds, before.threads, after.threads);
    /* Exact: what each cycle took, it gave back. */
    CHECK_EQ(after.fds, before.fds);
    CHECK_EQ(after.st.goroutines, 0);
    /* The last cycle's stacks may still be on their way back when gr_join returns (a
     * joiner runs as soon as its goroutine is dead, while that goroutine's processor
     * still frees the stack; one per processor): all of them back within a second. */
    for (int w = 0; after.st.stacks_in_use != 0 && w < 1000; w++) {
        sleep_ms(1);
        CHECK_EQ(gr_stats(&after.st), 0);
    }
    if (after.st.stacks_in_use != 0)
        FAIL("%llu stacks in use 1 s after the cycles", (unsigned long long)after.st.stacks_in_use);
    CHECK_EQ(after.st.timers, 0);
    CHECK_EQ(after.st.fd_waiters, 0);
    /* Worker threads are made on demand (an idle one may be parked as the poller when
     * work arrives) and kept; they are bounded by the processors, not by the cycles.
     * A new worker brings its own maps (stack, guard, signal stack, malloc arena) and
     * some resident memory; nothing else may grow. A leak per cycle would show as
     * thousands: 10,000 stacks are >= 40 MiB, 10,000 channels or pipes >= 1 MiB. */
    long new_threads = after.threads - before.threads;
    if (new_threads > 2 || after.threads > 2 * 2 + 3)
        FAIL("threads grew from %ld to %ld over %d cycles", before.threads, after.threads,
             cycles);
    if (new_threads < 0)
        new_threads = 0;
    /* A few maps come and go with malloc's arenas (measured +-2). */
    if (after.maps > before.maps + 4 + 8 * new_threads)
        FAIL("memory maps grew from %ld to %ld over %d cycles (%ld new threads)", before.maps,
             after.maps, cycles, new_threads);
    /* Stacks also circulate: a goroutine spawned on one processor and ended on the
     * other leaves its stack in that one's cache (up to 256, then half go to the
     * global pool), so up to ~2 x 256 distinct stacks, each with its touched pages
     * (4-8 KiB), can be resident after any number of cycles: bounded, not a leak. */
    long rss_margin = 4096 + 512 * new_threads;
    if (after.rss_kib > before.rss_kib + rss_margin)
        FAIL("VmRSS grew by %ld KiB over %d cycles (margin %ld KiB)",
             after.rss_kib - before.rss_kib, cycles, rss_margin);
    puts("ok");
    return 0;
}
