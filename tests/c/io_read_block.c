/*
 * A goroutine blocked in gr_read parks; it does not block its processor. On ONE
 * processor: a reader waits on an empty pipe while a counter goroutine keeps running
 * (it yields in a loop, so the run queue never empties); a late writer wakes the
 * reader, which gets exactly the bytes written.
 *
 *   part 1: the late writer is a goroutine (gr_sleep 150 ms, then gr_write);
 *   part 2: the late writer is a plain thread using write(2): the readiness must be
 *           noticed although the only processor is busy with a yielding goroutine
 *           (busy workers poll, sysmon polls when nobody has for 10 ms);
 *   part 3: a socketpair, 64 KiB each way, with readers and writers on both ends
 *           (gr_write parks on a full socket buffer and wakes when it drains).
 */
#include "check.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>

static int pfd[2];
static atomic_long counter;
static atomic_int reader_done;
static int64_t t_write, t_read_returned;
static long counter_at_block, counter_at_write;
static char got[64];
static ptrdiff_t got_n;

static void count_loop(void *arg)
{
    (void)arg;
    while (!atomic_load(&reader_done)) {
        atomic_fetch_add(&counter, 1);
        gr_yield();
    }
}

static void reader(void *arg)
{
    (void)arg;
    counter_at_block = atomic_load(&counter);
    got_n = gr_read(pfd[0], got, sizeof got);
    t_read_returned = now_ns();
    atomic_store(&reader_done, 1);
}

static void goroutine_writer(void *arg)
{
    (void)arg;
    CHECK_EQ(gr_sleep(150 * 1000000LL), 0);
    counter_at_write = atomic_load(&counter);
    t_write = now_ns();
    CHECK_EQ(gr_write(pfd[1], "hello", 5), 5);
}

static void *thread_writer(void *arg)
{
    (void)arg;
    sleep_ms(150);
    counter_at_write = atomic_load(&counter);
    t_write = now_ns();
    CHECK_EQ(write(pfd[1], "world!", 6), 6);
    return NULL;
}

static void reset(void)
{
    CHECK_EQ(pipe(pfd), 0);
    atomic_store(&counter, 0);
    atomic_store(&reader_done, 0);
    memset(got, 0, sizeof got);
    got_n = -1;
}

static void part1(void *arg)
{
    (void)arg;
    reset();
    gr_id r = SPAWN(reader, NULL);
    gr_id c = SPAWN(count_loop, NULL);
    gr_id w = SPAWN(goroutine_writer, NULL);
    CHECK_EQ(gr_join(r), 0);
    CHECK_EQ(gr_join(c), 0);
    CHECK_EQ(gr_join(w), 0);
    CHECK_EQ(got_n, 5);
    CHECK(memcmp(got, "hello", 5) == 0);
    long advanced = counter_at_write - counter_at_block;
    double wake_ms = (t_read_returned - t_write) / 1e6;
    printf("goroutine writer: counter advanced by %ld while the reader was blocked; "
           "reader woke %.3f ms after the write\n", advanced, wake_ms);
    if (advanced < 1000)
        FAIL("the counter advanced only %ld times in 150 ms while a reader was blocked", advanced);
    if (wake_ms > 50)
        FAIL("the reader woke %.1f ms after the write (expected < 50 ms)", wake_ms);
    CHECK_EQ(gr_close(pfd[0]), 0);
    CHECK_EQ(gr_close(pfd[1]), 0);
}

static void part2(void *arg)
{
    (void)arg;
    reset();
    gr_id r = SPAWN(reader, NULL);
    gr_id c = SPAWN(count_loop, NULL);
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, thread_writer, NULL), 0);
    CHECK_EQ(gr_join(r), 0);
    CHECK_EQ(gr_join(c), 0);
    CHECK_EQ(pthread_join(th, NULL), 0);
    CHECK_EQ(got_n, 6);
    CHECK(memcmp(got, "world!", 6) == 0);
    long advanced = counter_at_write - counter_at_block;
    double wake_ms = (t_read_returned - t_write) / 1e6;
    printf("plain-thread writer: counter advanced by %ld; reader woke %.3f ms after the "
           "write (the only processor was busy yielding)\n", advanced, wake_ms);
    if (advanced < 1000)
        FAIL("the counter advanced only %ld times in 150 ms while a reader was blocked", advanced);
    if (wake_ms > 60)
        FAIL("the reader woke %.1f ms after the write (expected < 60 ms)", wake_ms);
    CHECK_EQ(gr_close(pfd[0]), 0);
    CHECK_EQ(gr_close(pfd[1]), 0);
}

/* part 3: bulk transfer over a socketpair, both directions at once. */
#define BULK (1 << 20)
static int sv[2];

struct xfer {
    int fd;
    unsigned seed;
    long moved;
};

static void bulk_writer(void *arg)
{
    struct xfer *x = arg;
    unsigned char buf[4096];
    unsigned s = x->seed;
    long sent = 0;
    while (sent < BULK) {
        size_t n = sizeof buf;
        if ((long)n > BULK - sent)
            n = BULK - sent;
        for (size_t i = 0; i < n; i++)
            buf[i] = (unsigned char)((s = s * 1103515245u + 12345u) >> 16);
        size_t off = 0;
        while (off < n) {
            ptrdiff_t w = gr_write(x->fd, buf + off, n - off);
            if (w <= 0)
                FAIL("gr_write = %td (%s)", w, gr_strerror((int)w));
            off += w;
        }
        sent += n;
    }
    x->moved = sent;
    CHECK_EQ(shutdown(x->fd, SHUT_WR), 0);
}

static void bulk_reader(void *arg)
{
    struct xfer *x = arg;
    unsigned char buf[3000];
    unsigned s = x->seed;
    long got_total = 0;
    for (;;) {
        ptrdiff_t r = gr_read(x->fd, buf, sizeof buf);
        if (r < 0)
            FAIL("gr_read = %td (%s)", r, gr_strerror((int)r));
        if (r == 0)
            break;
        for (ptrdiff_t i = 0; i < r; i++) {
            unsigned char want = (unsigned char)((s = s * 1103515245u + 12345u) >> 16);
            if (buf[i] != want)
                FAIL("byte %ld differs", got_total + i);
        }
        got_total += r;
    }
    x->moved = got_total;
}

static void part3(void *arg)
{
    (void)arg;
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    struct xfer w0 = { sv[0], 1, 0 }, r1 = { sv[1], 1, 0 };
    struct xfer w1 = { sv[1], 7, 0 }, r0 = { sv[0], 7, 0 };
    int64_t t0 = now_ns();
    gr_id ids[4] = { SPAWN(bulk_writer, &w0), SPAWN(bulk_reader, &r1), SPAWN(bulk_writer, &w1),
                     SPAWN(bulk_reader, &r0) };
    for (int i = 0; i < 4; i++)
        CHECK_EQ(gr_join(ids[i]), 0);
    CHECK_EQ(w0.moved, BULK);
    CHECK_EQ(r1.moved, BULK);
    CHECK_EQ(w1.moved, BULK);
    CHECK_EQ(r0.moved, BULK);
    printf("socketpair: 2 x %d bytes checked in %.1f ms\n", BULK, (now_ns() - t0) / 1e6);
    CHECK_EQ(gr_close(sv[0]), 0);
    CHECK_EQ(gr_close(sv[1]), 0);
}

int main(void)
{
    watchdog(30);
    CHECK_EQ(gr_init(1), 1);
    CHECK_EQ(gr_maxprocs(0), 1);
    CHECK_EQ(gr_main(part1, NULL), 0);
    CHECK_EQ(gr_main(part2, NULL), 0);
    CHECK_EQ(gr_main(part3, NULL), 0);
    CHECK_EQ(gr_wait_all(), 0);
    puts("ok");
    return 0;
}
