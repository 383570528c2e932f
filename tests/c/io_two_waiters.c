/*
 * Several goroutines waiting on one fd and direction are all woken, never a lost
 * wake-up:
 *   1. 2 (then 8) goroutines in gr_block_io(fd, GR_READ) on one pipe: one write
 *      wakes them all;
 *   2. 2 goroutines in gr_block_io(fd, GR_WRITE) on a full pipe: draining it wakes
 *      both;
 *   3. 2 readers in gr_read on one pipe, one byte written at a time 20 ms apart:
 *      each byte reaches exactly one reader, both finish (the loser of the first
 *      byte waits again and gets the second);
 *   4. a waiter with a short timeout leaves the list while another stays: the
 *      first times out, the second is still woken by a later write;
 *   5. a READ waiter and a READ|WRITE waiter on one socket: a write from the peer
 *      wakes both with GR_READ in their masks.
 * Run on 2 processors, 50 rounds of 1-3 (interleavings differ from round to round).
 */
#include "check.h"

#include <fcntl.h>
#include <stdatomic.h>
#include <sys/socket.h>

#define MS 1000000LL

struct w {
    int fd;
    int events;
    int64_t timeout;
    atomic_int state; /* 0 new, 1 about to wait, 2 returned */
    int rc;
    char byte;
};

static void block_waiter(void *arg)
{
    struct w *w = arg;
    atomic_store(&w->state, 1);
    w->rc = gr_block_io(w->fd, w->events, w->timeout);
    atomic_store(&w->state, 2);
}

static void read_waiter(void *arg)
{
    struct w *w = arg;
    atomic_store(&w->state, 1);
    w->rc = (int)gr_read(w->fd, &w->byte, 1);
    atomic_store(&w->state, 2);
}

static void wait_started(struct w *w, int n)
{
    for (int i = 0; i < n; i++)
        while (atomic_load(&w[i].state) == 0)
            gr_sleep(100000);
    gr_sleep(5 * MS); /* from "about to wait" to parked */
}

static void join_all(gr_id *ids, int n, int64_t limit_ms, const char *what)
{
    int64_t t0 = now_ns();
    for (int i = 0; i < n; i++)
        CHECK_EQ(gr_join(ids[i]), 0);
    if (now_ns() - t0 > limit_ms * MS)
        FAIL("%s: the waiters took %.1f ms to wake", what, (now_ns() - t0) / 1e6);
}

static void readers(int n)
{
    int p[2];
    CHECK_EQ(pipe(p), 0);
    struct w w[8];
    gr_id ids[8];
    for (int i = 0; i < n; i++) {
        w[i] = (struct w){ .fd = p[0], .events = GR_READ, .timeout = -1 };
        ids[i] = SPAWN(block_waiter, &w[i]);
    }
    wait_started(w, n);
    for (int i = 0; i < n; i++)
        CHECK_EQ(atomic_load(&w[i].state), 1);
    CHECK_EQ(write(p[1], "x", 1), 1);
    join_all(ids, n, 1000, "readers");
    for (int i = 0; i < n; i++)
        CHECK_EQ(w[i].rc, GR_READ);
    CHECK_EQ(gr_close(p[0]), 0);
    CHECK_EQ(gr_close(p[1]), 0);
}

static void writers(void)
{
    int p[2];
    static char junk[1 << 16];
    CHECK_EQ(pipe(p), 0);
    CHECK_EQ(fcntl(p[1], F_SETFL, O_NONBLOCK), 0);
    while (write(p[1], junk, sizeof junk) > 0) {
    }
    while (write(p[1], junk, 1) > 0) {
    }
    struct w w[2];
    gr_id ids[2];
    for (int i = 0; i < 2; i++) {
        w[i] = (struct w){ .fd = p[1], .events = GR_WRITE, .timeout = 5000 * MS };
        ids[i] = SPAWN(block_waiter, &w[i]);
    }
    wait_started(w, 2);
    for (int i = 0; i < 2; i++)
        CHECK_EQ(atomic_load(&w[i].state), 1);
    CHECK_EQ(fcntl(p[0], F_SETFL, O_NONBLOCK), 0);
    while (read(p[0], junk, sizeof junk) > 0) {
    }
    join_all(ids, 2, 1000, "writers");
    for (int i = 0; i < 2; i++)
        CHECK_EQ(w[i].rc, GR_WRITE);
    CHECK_EQ(gr_close(p[0]), 0);
    CHECK_EQ(gr_close(p[1]), 0);
}

static void two_readers_two_bytes(void)
{
    int p[2];
    CHECK_EQ(pipe(p), 0);
    struct w w[2];
    gr_id ids[2];
    for (int i = 0; i < 2; i++) {
        w[i] = (struct w){ .fd = p[0] };
        ids[i] = SPAWN(read_waiter, &w[i]);
    }
    wait_started(w, 2);
    CHECK_EQ(write(p[1], "1", 1), 1);
    gr_sleep(20 * MS);
    CHECK_EQ(write(p[1], "2", 1), 1);
    join_all(ids, 2, 1000, "gr_read x 2");
    CHECK_EQ(w[0].rc, 1);
    CHECK_EQ(w[1].rc, 1);
    CHECK((w[0].byte == '1' && w[1].byte == '2') || (w[0].byte == '2' && w[1].byte == '1'));
    CHECK_EQ(gr_close(p[0]), 0);
    CHECK_EQ(gr_close(p[1]), 0);
}

static void timeout_leaves_other(void)
{
    int p[2];
    CHECK_EQ(pipe(p), 0);
    struct w a = { .fd = p[0], .events = GR_READ, .timeout = 20 * MS };
    struct w b = { .fd = p[0], .events = GR_READ, .timeout = -1 };
    struct w c = { .fd = p[0], .events = GR_READ, .timeout = 30 * MS };
    gr_id ia = SPAWN(block_waiter, &b);
    gr_id ib = SPAWN(block_waiter, &a);
    gr_id ic = SPAWN(block_waiter, &c);
    CHECK_EQ(gr_join(ib), 0);
    CHECK_EQ(gr_join(ic), 0);
    CHECK_EQ(a.rc, -ETIMEDOUT);
    CHECK_EQ(c.rc, -ETIMEDOUT);
    CHECK_EQ(atomic_load(&b.state), 1);
    CHECK_EQ(write(p[1], "x", 1), 1);
    CHECK_EQ(gr_join(ia), 0);
    CHECK_EQ(b.rc, GR_READ);
    CHECK_EQ(gr_close(p[0]), 0);
    CHECK_EQ(gr_close(p[1]), 0);
}

static void socket_mixed(void)
{
    int sv[2];
    static char junk[1 << 16];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    /* Fill sv[0]'s send buffer so that it is not writable either. */
    CHECK_EQ(fcntl(sv[0], F_SETFL, O_NONBLOCK), 0);
    while (write(sv[0], junk, sizeof junk) > 0) {
    }
    while (write(sv[0], junk, 1) > 0) {
    }
    struct w r = { .fd = sv[0], .events = GR_READ, .timeout = -1 };
    struct w rw = { .fd = sv[0], .events = GR_READ | GR_WRITE, .timeout = 5000 * MS };
    gr_id ids[2] = { SPAWN(block_waiter, &r), SPAWN(block_waiter, &rw) };
    gr_sleep(20 * MS);
    CHECK_EQ(atomic_load(&r.state), 1);
    CHECK_EQ(atomic_load(&rw.state), 1);
    CHECK_EQ(write(sv[1], "x", 1), 1);
    join_all(ids, 2, 1000, "socket READ + READ|WRITE");
    CHECK_EQ(r.rc, GR_READ);
    CHECK(rw.rc > 0 && (rw.rc & GR_READ));
    CHECK_EQ(gr_close(sv[0]), 0);
    CHECK_EQ(gr_close(sv[1]), 0);
}

static void body(void *arg)
{
    (void)arg;
    for (int round = 0; round < 50; round++) {
        readers(2);
        writers();
        two_readers_two_bytes();
    }
    readers(8);
    timeout_leaves_other();
    socket_mixed();
}

int main(void)
{
    watchdog(60);
    gr_init(2);
    int64_t t0 = now_ns();
    CHECK_EQ(gr_main(body, NULL), 0);
    CHECK_EQ(gr_wait_all(), 0);
    printf("two waiters: all woken (%.0f ms)\n", (now_ns() - t0) / 1e6);
    puts("ok");
    return 0;
}
