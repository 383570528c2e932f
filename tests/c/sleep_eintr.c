/*
 * EINTR: a 1 kHz SIGALRM storm (setitimer(ITIMER_REAL, 1 ms), handler installed
 * WITHOUT SA_RESTART, so epoll_wait, futex waits, poll and nanosleep in any thread
 * return EINTR) causes no error and no early or lost wake-up:
 *   - goroutines: gr_sleep(30 ms) x 5, gr_block_io(empty pipe, 30 ms) -> -ETIMEDOUT
 *     after >= 30 ms, gr_block_io(-1) and gr_read woken by a late writer, a channel
 *     receive woken by a late sender, on 2 processors, 8 goroutines at once;
 *   - plain thread: gr_sleep(30 ms), gr_block_io 30 ms timeout, gr_join of a
 *     goroutine sleeping 100 ms, gr_chan_recv from a goroutine sending after 50 ms,
 *     gr_wait_all;
 *   - at least 200 signals must have arrived meanwhile (the storm was real).
 * The watchdog is a thread here (alarm() shares ITIMER_REAL with the storm).
 */
#include "check.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/time.h>

#define MS 1000000LL

static atomic_long signals;

static void on_alarm(int sig)
{
    (void)sig;
    atomic_fetch_add(&signals, 1);
}

static void *watchdog_thread(void *arg)
{
    sleep_ms((long)(intptr_t)arg * 1000);
    static const char msg[] = "FAIL: watchdog: the test is still running after its time limit\n";
    if (write(2, msg, sizeof msg - 1) < 0) {
    }
    _exit(3);
    return NULL;
}

static void storm(int on)
{
    struct itimerval it = { { 0, on ? 1000 : 0 }, { 0, on ? 1000 : 0 } };
    CHECK_EQ(setitimer(ITIMER_REAL, &it, NULL), 0);
}

#define CHECK_TOOK(t0, min_ms, max_ms, what)                                            \
    do {                                                                                \
        double ms_ = (now_ns() - (t0)) / 1e6;                                           \
        if (ms_ < (min_ms) || ms_ > (max_ms))                                           \
            FAIL("%s took %.3f ms (expected %d..%d ms)", what, ms_, min_ms, max_ms);    \
    } while (0)

static void goroutine_checks(void *arg)
{
    (void)arg;
    int p[2];
    CHECK_EQ(pipe2(p, O_NONBLOCK), 0);
    for (int i = 0; i < 5; i++) {
        int64_t t0 = now_ns();
        int rc = gr_sleep(30 * MS);
        CHECK_EQ(rc, 0);
        CHECK_TOOK(t0, 30, 500, "gr_sleep(30 ms) under a signal storm");
        t0 = now_ns();
        rc = gr_block_io(p[0], GR_READ, 30 * MS);
        if (rc != -ETIMEDOUT)
            FAIL("gr_block_io(empty pipe, 30 ms) under a signal storm = %d (%s)", rc, gr_strerror(rc));
        CHECK_TOOK(t0, 30, 500, "gr_block_io 30 ms timeout under a signal storm");
    }
    CHECK_EQ(gr_close(p[0]), 0);
    CHECK_EQ(gr_close(p[1]), 0);
}

struct late {
    int fd;
    gr_chan *ch;
};

static void late_write(void *arg)
{
    struct late *l = arg;
    CHECK_EQ(gr_sleep(50 * MS), 0);
    CHECK_EQ(gr_write(l->fd, "x", 1), 1);
}

static void late_send(void *arg)
{
    struct late *l = arg;
    CHECK_EQ(gr_sleep(50 * MS), 0);
    int v = 42;
    CHECK_EQ(gr_chan_send(l->ch, &v), 0);
}

static void wakeups(void *arg)
{
    (void)arg;
    int p[2];
    CHECK_EQ(pipe(p), 0);
    struct late l = { p[1], gr_chan_new(sizeof(int), 0) };
    CHECK(l.ch != NULL);
    int64_t t0 = now_ns();
    gr_id w = SPAWN(late_write, &l);
    CHECK_EQ(gr_block_io(p[0], GR_READ, -1), GR_READ);
    CHECK_TOOK(t0, 50, 1000, "gr_block_io(-1) woken by a late write under a signal storm");
    CHECK_EQ(gr_join(w), 0);
    char c;
    CHECK_EQ(gr_read(p[0], &c, 1), 1);
    t0 = now_ns();
    w = SPAWN(late_write, &l);
    ptrdiff_t n = gr_read(p[0], &c, 1);
    if (n != 1)
        FAIL("gr_read under a signal storm = %td (%s)", n, gr_strerror((int)n));
    CHECK_TOOK(t0, 50, 1000, "gr_read woken by a late write under a signal storm");
    CHECK_EQ(gr_join(w), 0);
    t0 = now_ns();
    w = SPAWN(late_send, &l);
    int v = 0;
    CHECK_EQ(gr_chan_recv(l.ch, &v), 0);
    CHECK_EQ(v, 42);
    CHECK_TOOK(t0, 50, 1000, "gr_chan_recv woken by a late sender under a signal storm");
    CHECK_EQ(gr_join(w), 0);
    CHECK_EQ(gr_chan_free(l.ch), 0);
    CHECK_EQ(gr_close(p[0]), 0);
    CHECK_EQ(gr_close(p[1]), 0);
}

static void sleep_100ms(void *arg)
{
    (void)arg;
    CHECK_EQ(gr_sleep(100 * MS), 0);
}

int main(void)
{
    pthread_t wd;
    CHECK_EQ(pthread_create(&wd, NULL, watchdog_thread, (void *)(intptr_t)30), 0);
    CHECK_EQ(gr_init(2), 2);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm; /* no SA_RESTART */
    sigemptyset(&sa.sa_mask);
    CHECK_EQ(sigaction(SIGALRM, &sa, NULL), 0);

    storm(1);
    int64_t t_start = now_ns();

    /* Goroutines. */
    gr_id ids[8];
    for (int i = 0; i < 6; i++)
        ids[i] = SPAWN(goroutine_checks, NULL);
    ids[6] = SPAWN(wakeups, NULL);
    ids[7] = SPAWN(wakeups, NULL);
    for (int i = 0; i < 8; i++)
        CHECK_EQ(gr_join(ids[i]), 0);

    /* The plain (main) thread. */
    int p[2];
    CHECK_EQ(pipe(p), 0);
    for (int i = 0; i < 3; i++) {
        int64_t t0 = now_ns();
        CHECK_EQ(gr_sleep(30 * MS), 0);
        CHECK_TOOK(t0, 30, 500, "a plain thread's gr_sleep(30 ms) under a signal storm");
        t0 = now_ns();
        int rc = gr_block_io(p[0], GR_READ, 30 * MS);
        if (rc != -ETIMEDOUT)
            FAIL("a plain thread's gr_block_io(30 ms) under a signal storm = %d (%s)", rc,
                 gr_strerror(rc));
        CHECK_TOOK(t0, 30, 500, "a plain thread's gr_block_io 30 ms timeout under a signal storm");
        t0 = now_ns();
        gr_id s = SPAWN(sleep_100ms, NULL);
        CHECK_EQ(gr_join(s), 0);
        CHECK_TOOK(t0, 100, 1000, "a plain thread's gr_join of a 100 ms sleeper under a signal storm");
    }
    struct late l = { p[1], gr_chan_new(sizeof(int), 0) };
    int64_t t0 = now_ns();
    SPAWN(late_send, &l);
    int v = 0;
    CHECK_EQ(gr_chan_recv(l.ch, &v), 0);
    CHECK_EQ(v, 42);
    CHECK_TOOK(t0, 50, 1000, "a plain thread's gr_chan_recv under a signal storm");
    SPAWN(sleep_100ms, NULL);
    t0 = now_ns();
    CHECK_EQ(gr_wait_all(), 0);
    CHECK_TOOK(t0, 95, 1000, "a plain thread's gr_wait_all under a signal storm");
    CHECK_EQ(gr_chan_free(l.ch), 0);

    storm(0);
    long n = atomic_load(&signals);
    double secs = (now_ns() - t_start) / 1e9;
    printf("%ld SIGALRMs in %.2f s: no error, no early wake-up\n", n, secs);
    if (n < 200)
        FAIL("only %ld signals arrived: the storm was not real", n);
    puts("ok");
    return 0;
}
