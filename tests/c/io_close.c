/*
 * gr_close(fd) wakes every goroutine waiting on fd with -ECANCELED (within 100 ms),
 * then closes it; a new file that reuses the fd number sees no stale readiness.
 *
 *   1. waiters in gr_block_io(READ), gr_block_io(READ|WRITE), gr_read on a pipe's
 *      read end, and gr_write / gr_block_io(WRITE) on its full write end: each gets
 *      -ECANCELED when its fd is gr_close'd by a goroutine, then by a plain thread;
 *   2. stale readiness: an fd whose old file had readiness latched (an edge nobody
 *      consumed) and an event in flight is gr_close'd; a new, empty pipe that gets
 *      the same number must time out, and stays usable (a late write wakes it);
 *   3. the same after close(2) instead of gr_close, with nobody waiting: the new
 *      file under the old number is put into non-blocking mode by gr_read (the
 *      wrappers promise that), and gets no stale readiness.
 */
#include "check.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>

#define MS 1000000LL

enum kind { BLOCK_READ, BLOCK_RW, READ_WRAPPER, WRITE_WRAPPER, BLOCK_WRITE, NKINDS };
static const char *kind_name[] = { "gr_block_io(READ)", "gr_block_io(READ|WRITE)", "gr_read",
                                   "gr_write", "gr_block_io(WRITE)" };

struct waiter {
    int fd;
    enum kind kind;
    atomic_int started;
    int rc;
    int64_t woke_at;
};

static void wait_on(void *arg)
{
    struct waiter *w = arg;
    char buf[16];
    atomic_store(&w->started, 1);
    switch (w->kind) {
    case BLOCK_READ:
        w->rc = gr_block_io(w->fd, GR_READ, -1);
        break;
    case BLOCK_RW:
        w->rc = gr_block_io(w->fd, GR_READ | GR_WRITE, 10000 * MS);
        break;
    case READ_WRAPPER:
        w->rc = (int)gr_read(w->fd, buf, sizeof buf);
        break;
    case WRITE_WRAPPER:
        w->rc = (int)gr_write(w->fd, "x", 1);
        break;
    case BLOCK_WRITE:
        w->rc = gr_block_io(w->fd, GR_WRITE, -1);
        break;
    default:
        break;
    }
    w->woke_at = now_ns();
}

/* Fills a (non-blocking) pipe write end until it would block. */
static void fill(int fd)
{
    static char junk[65536];
    CHECK_EQ(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK), 0);
    while (write(fd, junk, sizeof junk) > 0) {
    }
    while (write(fd, junk, 1) > 0) {
    }
    CHECK(errno == EAGAIN);
}

struct closer {
    int fd;
    int64_t at;
};

static void *close_from_thread(void *arg)
{
    struct closer *c = arg;
    c->at = now_ns();
    CHECK_EQ(gr_close(c->fd), 0);
    return NULL;
}

static void one_kind(enum kind k, int from_thread)
{
    int p[2];
    CHECK_EQ(pipe(p), 0);
    int wfd = k == WRITE_WRAPPER || k == BLOCK_WRITE;
    if (wfd)
        fill(p[1]);
    struct waiter w = { .fd = p[wfd], .kind = k, .rc = 12345 };
    gr_id id = SPAWN(wait_on, &w);
    while (!atomic_load(&w.started))
        gr_sleep(1 * MS);
    gr_sleep(30 * MS); /* let it park */
    CHECK_EQ(w.rc, 12345);
    struct closer c = { p[wfd], 0 };
    if (from_thread) {
        pthread_t th;
        CHECK_EQ(pthread_create(&th, NULL, close_from_thread, &c), 0);
        CHECK_EQ(gr_join(id), 0);
        CHECK_EQ(pthread_join(th, NULL), 0);
    } else {
        c.at = now_ns();
        CHECK_EQ(gr_close(p[wfd]), 0);
        CHECK_EQ(gr_join(id), 0);
    }
    double lat = (w.woke_at - c.at) / 1e6;
    if (w.rc != -ECANCELED)
        FAIL("%s woken by gr_close from a %s returned %d (%s), expected -ECANCELED",
             kind_name[k], from_thread ? "plain thread" : "goroutine", w.rc, gr_strerror(w.rc));
    if (lat > 100)
        FAIL("%s: woke %.1f ms after gr_close", kind_name[k], lat);
    printf("%-24s closed by a %-12s: -ECANCELED after %.3f ms\n", kind_name[k],
           from_thread ? "plain thread" : "goroutine", lat);
    CHECK_EQ(close(p[!wfd]), 0);
    CHECK_EQ(fcntl(p[wfd], F_GETFD), -1); /* gr_close really closed it */
}

/* Several waiters on one fd (both directions of a socket... here: 3 readers and a
 * read+write waiter on a pipe read end) all get -ECANCELED. */
static void many_waiters(void)
{
    int p[2];
    CHECK_EQ(pipe(p), 0);
    struct waiter w[4] = { { .fd = p[0], .kind = BLOCK_READ }, { .fd = p[0], .kind = READ_WRAPPER },
                           { .fd = p[0], .kind = BLOCK_RW }, { .fd = p[0], .kind = BLOCK_READ } };
    gr_id ids[4];
    for (int i = 0; i < 4; i++)
        ids[i] = SPAWN(wait_on, &w[i]);
    gr_sleep(30 * MS);
    CHECK_EQ(gr_close(p[0]), 0);
    for (int i = 0; i < 4; i++) {
        CHECK_EQ(gr_join(ids[i]), 0);
        CHECK_EQ(w[i].rc, -ECANCELED);
    }
    CHECK_EQ(close(p[1]), 0);
    puts("4 waiters on one fd: all -ECANCELED");
}

/* Makes a pipe whose read end has the number `want` (the lowest free number; a
 * runtime thread may hold it for a moment, e.g. sysmon reading /proc: retry). */
static void pipe_at(int p[2], int want)
{
    for (int i = 0; i < 100; i++) {
        CHECK_EQ(pipe(p), 0);
        if (p[0] == want)
            return;
        close(p[0]);
        close(p[1]);
        gr_sleep(1 * MS);
    }
    FAIL("cannot get a pipe with the reused fd number %d", want);
}

static void stale_after_gr_close(void)
{
    int p[2], q[2];
    CHECK_EQ(pipe(p), 0);
    /* Register p[0] and get it woken once. */
    struct waiter w = { .fd = p[0], .kind = BLOCK_READ };
    gr_id id = SPAWN(wait_on, &w);
    gr_sleep(20 * MS);
    CHECK_EQ(write(p[1], "a", 1), 1);
    CHECK_EQ(gr_join(id), 0);
    CHECK_EQ(w.rc, GR_READ);
    /* More edges nobody consumes (latched), plus one likely still in flight. */
    gr_sleep(5 * MS);
    CHECK_EQ(write(p[1], "b", 1), 1);
    gr_sleep(5 * MS);
    CHECK_EQ(write(p[1], "c", 1), 1);
    int num = p[0];
    CHECK_EQ(close(p[1]), 0); /* a hang-up edge for p[0] too */
    CHECK_EQ(gr_close(p[0]), 0);
    pipe_at(q, num);
    /* The new pipe is empty and open: no readiness, old or new. */
    CHECK_EQ(gr_block_io(q[0], GR_READ, 0), -ETIMEDOUT);
    CHECK_EQ(gr_block_io(q[0], GR_READ, 50 * MS), -ETIMEDOUT);
    struct waiter w2 = { .fd = q[0], .kind = READ_WRAPPER, .rc = 12345 };
    id = SPAWN(wait_on, &w2);
    gr_sleep(50 * MS);
    if (w2.rc != 12345)
        FAIL("gr_read on a reused fd number returned %d with nothing written", w2.rc);
    CHECK_EQ(write(q[1], "new", 3), 3);
    CHECK_EQ(gr_join(id), 0);
    CHECK_EQ(w2.rc, 3);
    CHECK_EQ(gr_close(q[0]), 0);
    CHECK_EQ(gr_close(q[1]), 0);
    puts("fd reused after gr_close: no stale readiness");
}

static void stale_after_plain_close(void)
{
    int p[2], q[2];
    char buf[8];
    CHECK_EQ(pipe(p), 0);
    CHECK_EQ(write(p[1], "a", 1), 1);
    CHECK_EQ(gr_read(p[0], buf, sizeof buf), 1); /* the wrapper made p[0] non-blocking */
    CHECK(fcntl(p[0], F_GETFL) & O_NONBLOCK);
    CHECK_EQ(gr_block_io(p[0], GR_READ, 10 * MS), -ETIMEDOUT); /* registered */
    CHECK_EQ(write(p[1], "b", 1), 1);                          /* latched */
    int num = p[0];
    CHECK_EQ(close(p[0]), 0); /* nobody waits on it: close(2) is allowed */
    CHECK_EQ(close(p[1]), 0);
    pipe_at(q, num);
    CHECK(!(fcntl(q[0], F_GETFL) & O_NONBLOCK));
    CHECK_EQ(gr_block_io(q[0], GR_READ, 30 * MS), -ETIMEDOUT);
    CHECK_EQ(write(q[1], "z", 1), 1);
    CHECK_EQ(gr_read(q[0], buf, sizeof buf), 1);
    CHECK_EQ(buf[0], 'z');
    if (!(fcntl(q[0], F_GETFL) & O_NONBLOCK))
        FAIL("gr_read left a new file under a reused fd number (%d) in blocking mode: "
             "its next gr_read blocks the thread", q[0]);
    CHECK_EQ(gr_close(q[0]), 0);
    CHECK_EQ(gr_close(q[1]), 0);
    puts("fd reused after close(2): non-blocking, no stale readiness");
}

static void body(void *arg)
{
    (void)arg;
    for (int from_thread = 0; from_thread < 2; from_thread++)
        for (int k = 0; k < NKINDS; k++)
            one_kind(k, from_thread);
    many_waiters();
    stale_after_gr_close();
    stale_after_plain_close();
}

int main(void)
{
    watchdog(30);
    /* Keep low fd numbers free of surprises: stdin is /dev/null under the tests. */
    CHECK_EQ(gr_main(body, NULL), 0);
    CHECK_EQ(gr_wait_all(), 0);
    puts("ok");
    return 0;
}
