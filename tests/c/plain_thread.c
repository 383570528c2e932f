/*
 * Calls from a plain thread (reliability catalogue entry 10), in one place: on the
 * main thread and on a pthread that never used the runtime before, each blocking
 * call blocks that OS thread until a goroutine releases it 50 ms later, and returns
 * what it would return in a goroutine:
 *   gr_chan_recv, gr_chan_send (unbuffered), gr_select, gr_wg_wait, gr_mutex_lock,
 *   gr_join, gr_sleep, gr_block_io (woken by a goroutine's write), gr_wait_all;
 * each takes >= 45 ms (it really waited) and < 5 s, and the thread stays the same
 * thread (gettid before and after). Meanwhile goroutines keep running (the releasing
 * goroutine is one). And: gr_yield returns (sched_yield), gr_self is 0,
 * gr_lock_thread is -EPERM, gr_blocking just calls the function on this thread.
 */
#include "check.h"

#include <pthread.h>
#include <stdatomic.h>

#define DELAY_NS 50000000LL
#define MIN_NS 45000000LL
#define MAX_NS 5000000000LL

struct objects {
    gr_chan *chan;
    gr_wg *wg;
    gr_mutex *mutex;
    int pipe[2];
};

/* Each releaser sleeps 50 ms in a goroutine, then lets the plain thread go. */
static void release_recv(void *arg)
{
    struct objects *o = arg;
    long v = 11;
    gr_sleep(DELAY_NS);
    CHECK_EQ(gr_chan_send(o->chan, &v), 0);
}

static void release_send(void *arg)
{
    struct objects *o = arg;
    long v = 0;
    gr_sleep(DELAY_NS);
    CHECK_EQ(gr_chan_recv(o->chan, &v), 0);
    CHECK_EQ(v, 22);
}

static void release_wg(void *arg)
{
    struct objects *o = arg;
    gr_sleep(DELAY_NS);
    CHECK_EQ(gr_wg_done(o->wg), 0);
}

static void release_mutex(void *arg)
{
    struct objects *o = arg;
    gr_sleep(DELAY_NS);
    CHECK_EQ(gr_mutex_unlock(o->mutex), 0);
}

static void sleeper(void *arg)
{
    (void)arg;
    gr_sleep(DELAY_NS);
}

static void release_pipe(void *arg)
{
    struct objects *o = arg;
    gr_sleep(DELAY_NS);
    CHECK_EQ(gr_write(o->pipe[1], "x", 1), 1);
}

static void on_this_thread(void *arg)
{
    *(long *)arg = thread_id();
}

/* Checks one blocking call: it took 45 ms .. 5 s and the thread is the same. */
#define BLOCKS(call, want)                                                         \
    do {                                                                           \
        long tid_ = thread_id();                                                   \
        int64_t t0_ = now_ns();                                                    \
        long long rc_ = (call);                                                    \
        int64_t dt_ = now_ns() - t0_;                                              \
        if (rc_ != (want))                                                         \
            FAIL("[%s] %s = %lld, expected %lld", where, #call, rc_, (long long)(want)); \
        if (dt_ < MIN_NS || dt_ > MAX_NS)                                          \
            FAIL("[%s] %s took %.1f ms: it should block until released (50 ms)",   \
                 where, #call, dt_ / 1e6);                                         \
        if (thread_id() != tid_)                                                   \
            FAIL("[%s] %s: the thread changed", where, #call);                     \
    } while (0)

static void check_plain(const char *where)
{
    struct objects o;
    o.chan = gr_chan_new(sizeof(long), 0);
    o.wg = gr_wg_new();
    o.mutex = gr_mutex_new();
    CHECK(o.chan && o.wg && o.mutex);
    CHECK_EQ(pipe(o.pipe), 0);

    CHECK_EQ(gr_self(), 0);
    gr_yield();
    CHECK_EQ(gr_lock_thread(), -EPERM);
    long tid = 0;
    CHECK_EQ(gr_blocking(on_this_thread, &tid), 0);
    CHECK_EQ(tid, thread_id());

    long v = 0;
    SPAWN(release_recv, &o);
    BLOCKS(gr_chan_recv(o.chan, &v), 0);
    CHECK_EQ(v, 11);

    v = 22;
    SPAWN(release_send, &o);
    BLOCKS(gr_chan_send(o.chan, &v), 0);

    gr_case c = { o.chan, GR_RECV, &v, 0 };
    SPAWN(release_recv, &o);
    BLOCKS(gr_select(&c, 1, -1), 0);
    CHECK_EQ(v, 11);

    CHECK_EQ(gr_wg_add(o.wg, 1), 0);
    SPAWN(release_wg, &o);
    BLOCKS(gr_wg_wait(o.wg), 0);

    CHECK_EQ(gr_mutex_lock(o.mutex), 0);
    SPAWN(release_mutex, &o);
    BLOCKS(gr_mutex_lock(o.mutex), 0);
    CHECK_EQ(gr_mutex_unlock(o.mutex), 0);

    gr_id s = SPAWN(sleeper, NULL);
    BLOCKS(gr_join(s), 0);

    BLOCKS(gr_sleep(DELAY_NS), 0);

    SPAWN(release_pipe, &o);
    BLOCKS(gr_block_io(o.pipe[0], GR_READ, -1), GR_READ);

    SPAWN(sleeper, NULL);
    /* Waits until no goroutine is left. */
    BLOCKS(gr_wait_all(), 0);

    CHECK_EQ(gr_chan_free(o.chan), 0);
    CHECK_EQ(gr_wg_free(o.wg), 0);
    CHECK_EQ(gr_mutex_free(o.mutex), 0);
    close(o.pipe[0]);
    close(o.pipe[1]);
    printf("%s: every blocking call blocked the thread until released\n", where);
}

static void *fresh_pthread(void *arg)
{
    (void)arg;
    check_plain("pthread");
    return NULL;
}

int main(void)
{
    watchdog(60);
    check_plain("main thread");
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, fresh_pthread, NULL), 0);
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK_EQ(gr_count(), 0);
    puts("ok");
    return 0;
}
