/*
 * gr_shutdown: 0 when nothing was started; -EBUSY at once while a goroutine is
 * parked or running (also when called from a goroutine); 0 once all finished, after
 * which the worker threads are gone and so are the netpoller's descriptors (the
 * process has the fds it had before the runtime started); a second shutdown is 0; the
 * runtime restarts lazily on the next spawn (or gr_init), 20 times over, each time
 * waiting in the netpoller, without leaking threads, file descriptors or memory maps;
 * and a plain thread blocked in gr_read across a shutdown still gets its data.
 */
#include "check.h"

#include <pthread.h>
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

/* A goroutine parks in the netpoller on a pipe (registering it) until main writes. */
static void reader(void *arg)
{
    int fd = *(int *)arg;
    char c = 0;
    CHECK_EQ(gr_read(fd, &c, 1), 1);
    CHECK_EQ(c, 'x');
}

static void io_through_netpoller(void)
{
    int p[2];
    CHECK_EQ(pipe(p), 0);
    gr_id r = SPAWN(reader, &p[0]);
    sleep_ms(2);
    CHECK_EQ(gr_write(p[1], "x", 1), 1);
    CHECK_EQ(gr_join(r), 0);
    CHECK_EQ(gr_close(p[0]), 0);
    CHECK_EQ(gr_close(p[1]), 0);
}

/* A plain thread in gr_read (blocked in poll(2), holding a netpoller table entry)
 * while the runtime shuts down: it must still get its byte. */
static void *plain_reader(void *arg)
{
    int fd = *(int *)arg;
    char c = 0;
    CHECK_EQ(gr_read(fd, &c, 1), 1);
    CHECK_EQ(c, 'y');
    return NULL;
}

static void plain_thread_reads_across_shutdown(void)
{
    int p[2];
    pthread_t t;
    CHECK_EQ(pipe(p), 0);
    SPAWN(work, NULL);
    CHECK_EQ(gr_wait_all(), 0);
    CHECK_EQ(pthread_create(&t, NULL, plain_reader, &p[0]), 0);
    sleep_ms(20); /* let it block */
    CHECK_EQ(gr_shutdown(), 0);
    CHECK_EQ(gr_write(p[1], "y", 1), 1);
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK_EQ(gr_close(p[0]), 0);
    CHECK_EQ(gr_close(p[1]), 0);
    CHECK_EQ(gr_shutdown(), 0);
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
    long fds_before = fd_count(); /* before the runtime ever started */
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

    io_through_netpoller();
    CHECK_EQ(gr_shutdown(), 0);
    CHECK_EQ(threads_settle(threads0), threads0);
    long fds0 = fd_count();
    if (fds0 != fds_before)
        FAIL("%ld file descriptors open after gr_shutdown, %ld before the runtime started "
             "(the netpoller's epoll instance and eventfd must be closed)",
             fds0, fds_before);
    CHECK_EQ(gr_shutdown(), 0); /* double shutdown */
    CHECK_EQ(gr_count(), 0);
    CHECK_EQ(gr_self(), 0);

    /* Lazy restart, 20 times; with gr_init every other time. Memory maps are counted
       from the end of the first round: what the runtime keeps for the process (stack
       slabs, descriptor chunks) is made by then. */
    long maps1 = 0;
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
        io_through_netpoller();
        CHECK_EQ(gr_shutdown(), 0);
        long t = threads_settle(threads0);
        if (t != threads0)
            FAIL("round %d: %ld threads after shutdown, expected %ld", round, t, threads0);
        long fds = fd_count();
        if (fds != fds_before)
            FAIL("round %d: %ld file descriptors open after gr_shutdown, %ld before the runtime "
                 "started", round, fds, fds_before);
        if (round == 0)
            maps1 = map_count();
    }
    /* A round that happens to run more worker threads at once than the first (a
       loaded machine) leaves glibc a thread stack cached and a malloc arena (4 maps a
       thread), bounded by the threads alive at once, not by the rounds; a map leaked
       per round would add 19. */
    long maps20 = map_count();
#ifndef __SANITIZE_ADDRESS__ /* ASan's allocator maps more while its quarantine fills */
    if (maps20 > maps1 + 8)
        FAIL("%ld memory maps after 20 restarts, %ld after the first", maps20, maps1);
#endif
    printf("shutdown and lazy restart x20: threads back to %ld, fds back to %ld each time, "
           "memory maps %ld -> %ld\n", threads0, fds_before, maps1, maps20);
    plain_thread_reads_across_shutdown();
    puts("a plain thread blocked in gr_read across gr_shutdown got its byte");
    puts("ok");
    return 0;
}
