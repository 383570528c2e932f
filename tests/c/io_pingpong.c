/*
 * Many goroutines parking on fds at once: 100 socketpairs with a goroutine at each
 * end passing one byte back and forth 2,000 times (gr_write, then gr_read), on every
 * processor, then the same on one processor. Every goroutine parks in gr_read over
 * and over while readiness for the same fds arrives all the time: the netpoller
 * must never be polled while a parking goroutine still holds its fd's lock (that
 * hangs the workers), and no wake-up may be lost. Prints round trips per second.
 */
#include "check.h"

#include <stdatomic.h>
#include <sys/socket.h>

enum { PAIRS = 100, ROUNDS = 2000 };

static atomic_long done_rounds;

struct end {
    int fd;
    int first;
};

static void player(void *arg)
{
    struct end *e = arg;
    char c = 'x';
    for (int i = 0; i < ROUNDS; i++) {
        if (e->first)
            CHECK_EQ(gr_write(e->fd, &c, 1), 1);
        ptrdiff_t n = gr_read(e->fd, &c, 1);
        if (n != 1)
            FAIL("gr_read = %td (%s) in round %d", n, gr_strerror((int)n), i);
        if (!e->first)
            CHECK_EQ(gr_write(e->fd, &c, 1), 1);
        else
            atomic_fetch_add_explicit(&done_rounds, 1, memory_order_relaxed);
    }
}

static void run(const char *what)
{
    static struct end ends[2 * PAIRS];
    atomic_store(&done_rounds, 0);
    for (int i = 0; i < PAIRS; i++) {
        int sv[2];
        CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        ends[2 * i] = (struct end){ sv[0], 1 };
        ends[2 * i + 1] = (struct end){ sv[1], 0 };
    }
    int64_t t0 = now_ns();
    for (int i = 0; i < 2 * PAIRS; i++)
        SPAWN(player, &ends[i]);
    CHECK_EQ(gr_wait_all(), 0);
    double s = (now_ns() - t0) / 1e9;
    CHECK_EQ(atomic_load(&done_rounds), (long)PAIRS * ROUNDS);
    printf("%s: %d x %d socket round trips in %.3f s (%.0f per second)\n", what, PAIRS, ROUNDS, s,
           PAIRS * ROUNDS / s);
    for (int i = 0; i < 2 * PAIRS; i++)
        CHECK_EQ(gr_close(ends[i].fd), 0);
}

int main(void)
{
    watchdog(40);
    int n = gr_init(0);
    CHECK(n > 0);
    char what[64];
    snprintf(what, sizeof what, "%d processors", n);
    run(what);
    CHECK_EQ(gr_maxprocs(1), n);
    run("1 processor");
    puts("ok");
    return 0;
}
