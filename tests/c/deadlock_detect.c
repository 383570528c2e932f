/*
 * Deadlock detection: gr_main, gr_join and gr_wait_all called from a plain thread
 * return -EDEADLK (within a second) when every goroutine is blocked for ever on
 * things only another goroutine could end, and NOT while anything could still wake
 * one. Not deadlocks (each must return 0, after the wait):
 *   N1  a goroutine sleeping 300 ms (a pending timer), then sending to main;
 *   N2  a goroutine inside gr_blocking(usleep(300 ms)), then sending;
 *   N3  a goroutine in gr_read on a pipe that a pthread (which never used the
 *       runtime) writes after 300 ms (an fd wait);
 *   N4  a pthread that has used the runtime, sleeping 300 ms in usleep, then
 *       sending on a buffered channel (a plain thread that could still wake one);
 *   N5  the same from a pthread that has never used the runtime before its send
 *       (any thread of the program might still wake one);
 * Deadlocks (each must return -EDEADLK in < 1 s, and the runtime must recover once
 * the program unblocks the goroutines itself):
 *   D1  gr_main: main joins A; A and B each receive on a channel nobody sends to;
 *       then closing both channels lets everything finish (gr_wait_all = 0);
 *   D2  gr_wait_all with two goroutines blocked in receives; then close;
 *   D3  gr_wait_all with a goroutine in gr_wg_wait (counter 1); then gr_wg_done;
 *   D4  gr_wait_all with a goroutine blocked on a mutex the main thread holds;
 *       then unlock;
 *   D5  gr_main: two goroutines that join each other (left blocked for ever).
 */
#include "check.h"

#include <pthread.h>
#include <stdatomic.h>

#define MS 1000000LL

static gr_chan *c1, *c2, *done;

static void recv_c1(void *arg)
{
    (void)arg;
    int v;
    int rc = gr_chan_recv(c1, &v);
    CHECK(rc == 0 || rc == -EPIPE);
}

static void recv_c2(void *arg)
{
    (void)arg;
    int v;
    int rc = gr_chan_recv(c2, &v);
    CHECK(rc == 0 || rc == -EPIPE);
}

static void send_done(void)
{
    int v = 1;
    CHECK_EQ(gr_chan_send(done, &v), 0);
}

static void sleep_then_send(void *arg)
{
    (void)arg;
    CHECK_EQ(gr_sleep(300 * MS), 0);
    send_done();
}

static void do_usleep(void *arg)
{
    usleep((useconds_t)(intptr_t)arg);
}

static void block_then_send(void *arg)
{
    (void)arg;
    CHECK_EQ(gr_blocking(do_usleep, (void *)(intptr_t)300000), 0);
    send_done();
}

static void recv_done(void *arg)
{
    void (*helper)(void *) = (void (*)(void *))arg;
    SPAWN(helper, NULL);
    int v;
    CHECK_EQ(gr_chan_recv(done, &v), 0);
}

static int p[2];

static void read_pipe(void *arg)
{
    (void)arg;
    char c;
    CHECK_EQ(gr_read(p[0], &c, 1), 1);
}

static void *write_pipe_later(void *arg)
{
    (void)arg;
    usleep(300000);
    CHECK_EQ(write(p[1], "x", 1), 1);
    return NULL;
}

static void nothing(void *arg)
{
    (void)arg;
}

static void *runtime_user_thread(void *arg)
{
    (void)arg;
    gr_id id = SPAWN(nothing, NULL); /* this thread has used the runtime */
    CHECK_EQ(gr_join(id), 0);
    usleep(300000);
    int v = 7;
    CHECK_EQ(gr_chan_send(c2, &v), 0); /* buffered: never blocks */
    return NULL;
}

static void *fresh_thread(void *arg)
{
    (void)arg;
    usleep(300000);
    int v = 7;
    CHECK_EQ(gr_chan_send(c2, &v), 0); /* its first call into the runtime */
    return NULL;
}

static void recv_c2_main(void *arg)
{
    (void)arg;
    int v = 0;
    CHECK_EQ(gr_chan_recv(c2, &v), 0);
    CHECK_EQ(v, 7);
}

static void expect_ok(const char *what, int rc, int64_t t0, double min_ms)
{
    double ms = (now_ns() - t0) / 1e6;
    printf("%-58s %d after %.1f ms\n", what, rc, ms);
    if (rc != 0)
        FAIL("%s returned %d (%s): not a deadlock", what, rc, gr_strerror(rc));
    if (ms < min_ms)
        FAIL("%s returned after %.1f ms, before the wake-up", what, ms);
}

static void expect_deadlock(const char *what, int rc, int64_t t0)
{
    double ms = (now_ns() - t0) / 1e6;
    printf("%-58s %d (%s) after %.1f ms\n", what, rc, rc == -EDEADLK ? "EDEADLK" : "?", ms);
    if (rc != -EDEADLK)
        FAIL("%s returned %d (%s), expected -EDEADLK", what, rc, gr_strerror(rc));
    if (ms > 1000)
        FAIL("%s took %.1f ms to report the deadlock", what, ms);
}

/* D1 */
static gr_id a_id;

static void main_joins_a(void *arg)
{
    (void)arg;
    a_id = SPAWN(recv_c1, NULL);
    SPAWN(recv_c2, NULL);
    CHECK_EQ(gr_join(a_id), 0); /* returns once c1 is closed */
}

/* D3 */
static gr_wg *wg;

static void wg_waiter(void *arg)
{
    (void)arg;
    CHECK_EQ(gr_wg_wait(wg), 0);
}

/* D4 */
static gr_mutex *mu;

static void mutex_locker(void *arg)
{
    (void)arg;
    CHECK_EQ(gr_mutex_lock(mu), 0);
    CHECK_EQ(gr_mutex_unlock(mu), 0);
}

/* D5 */
static gr_chan *ids_a, *ids_b;

static void join_peer(void *arg)
{
    gr_chan *mine = arg;
    gr_id peer;
    CHECK_EQ(gr_chan_recv(mine, &peer), 0);
    int rc = gr_join(peer); /* never returns */
    FAIL("a goroutine joined a goroutine that joins it: gr_join = %d (%s)", rc, gr_strerror(rc));
}

static void mutual_join(void *arg)
{
    (void)arg;
    gr_id a = SPAWN(join_peer, ids_a);
    gr_id b = SPAWN(join_peer, ids_b);
    CHECK_EQ(gr_chan_send(ids_a, &b), 0); /* a joins b */
    CHECK_EQ(gr_chan_send(ids_b, &a), 0); /* b joins a */
    gr_join(a);
}

int main(void)
{
    watchdog(30);
    done = gr_chan_new(sizeof(int), 0);
    c1 = gr_chan_new(sizeof(int), 0);
    c2 = gr_chan_new(sizeof(int), 1);
    ids_a = gr_chan_new(sizeof(gr_id), 0);
    ids_b = gr_chan_new(sizeof(gr_id), 0);
    wg = gr_wg_new();
    mu = gr_mutex_new();
    CHECK(done && c1 && c2 && ids_a && ids_b && wg && mu);
    CHECK_EQ(pipe(p), 0);

    int64_t t0 = now_ns();
    expect_ok("N1 gr_main, a goroutine sleeping 300 ms:", gr_main(recv_done, (void *)sleep_then_send), t0, 295);
    t0 = now_ns();
    expect_ok("N2 gr_main, a goroutine in gr_blocking(usleep 300 ms):",
              gr_main(recv_done, (void *)block_then_send), t0, 295);
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, write_pipe_later, NULL), 0);
    t0 = now_ns();
    expect_ok("N3 gr_main, gr_read woken by a thread after 300 ms:", gr_main(read_pipe, NULL), t0, 295);
    CHECK_EQ(pthread_join(th, NULL), 0);
    CHECK_EQ(pthread_create(&th, NULL, runtime_user_thread, NULL), 0);
    usleep(20000); /* it has used the runtime by now */
    t0 = now_ns();
    expect_ok("N4 gr_main, a plain thread sends after 300 ms:", gr_main(recv_c2_main, NULL), t0, 250);
    CHECK_EQ(pthread_join(th, NULL), 0);
    t0 = now_ns();
    CHECK_EQ(pthread_create(&th, NULL, fresh_thread, NULL), 0);
    expect_ok("N5 gr_main, a new thread's first call sends after 300 ms:", gr_main(recv_c2_main, NULL), t0,
              295);
    CHECK_EQ(pthread_join(th, NULL), 0);
    CHECK_EQ(gr_wait_all(), 0);

    /* D1 */
    t0 = now_ns();
    expect_deadlock("D1 gr_main, two goroutines receive for ever:", gr_main(main_joins_a, NULL), t0);
    CHECK_EQ(gr_count(), 3);
    CHECK_EQ(gr_chan_close(c1), 0);
    CHECK_EQ(gr_chan_close(c2), 0);
    CHECK_EQ(gr_wait_all(), 0);
    CHECK_EQ(gr_count(), 0);
    CHECK_EQ(gr_chan_free(c1), 0);
    CHECK_EQ(gr_chan_free(c2), 0);

    /* D2 */
    c1 = gr_chan_new(sizeof(int), 0);
    c2 = gr_chan_new(sizeof(int), 0);
    SPAWN(recv_c1, NULL);
    SPAWN(recv_c2, NULL);
    t0 = now_ns();
    expect_deadlock("D2 gr_wait_all, two goroutines receive for ever:", gr_wait_all(), t0);
    int v = 5;
    CHECK_EQ(gr_chan_send(c1, &v), 0); /* from the plain thread: wakes one */
    CHECK_EQ(gr_chan_close(c2), 0);
    CHECK_EQ(gr_wait_all(), 0);

    /* D3 */
    CHECK_EQ(gr_wg_add(wg, 1), 0);
    SPAWN(wg_waiter, NULL);
    t0 = now_ns();
    expect_deadlock("D3 gr_wait_all, a goroutine in gr_wg_wait:", gr_wait_all(), t0);
    CHECK_EQ(gr_wg_done(wg), 0);
    CHECK_EQ(gr_wait_all(), 0);

    /* D4 */
    CHECK_EQ(gr_mutex_lock(mu), 0);
    SPAWN(mutex_locker, NULL);
    t0 = now_ns();
    expect_deadlock("D4 gr_wait_all, a goroutine waits for a held mutex:", gr_wait_all(), t0);
    CHECK_EQ(gr_mutex_unlock(mu), 0);
    CHECK_EQ(gr_wait_all(), 0);

    /* D5 (last: these goroutines stay blocked) */
    t0 = now_ns();
    expect_deadlock("D5 gr_main, two goroutines join each other:", gr_main(mutual_join, NULL), t0);
    t0 = now_ns();
    expect_deadlock("   then gr_wait_all:", gr_wait_all(), t0);
    puts("ok");
    return 0;
}
