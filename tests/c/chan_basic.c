/*
 * Channel semantics through the C API: unbuffered rendezvous, buffered FIFO,
 * try_send/try_recv (-EAGAIN), len/cap, close (buffered values drain in order, then
 * -EPIPE for ever; sends and a second close get -EPIPE; every blocked sender and
 * receiver wakes with -EPIPE), zero-size elements, argument errors (-EINVAL),
 * -EBUSY from gr_chan_free while a goroutine waits, and the `recv; free` pattern
 * (the sender never touches the channel once the receive returned).
 */
#include "check.h"

#include <stdatomic.h>

static void sender_100(void *arg)
{
    gr_chan *c = arg;
    for (long i = 0; i < 100; i++)
        CHECK_EQ(gr_chan_send(c, &i), 0);
}

static atomic_int woke_epipe;

static void blocked_recv(void *arg)
{
    long v = -1;
    if (gr_chan_recv(arg, &v) == -EPIPE && v == -1)
        atomic_fetch_add(&woke_epipe, 1);
}

static void blocked_send(void *arg)
{
    long v = 7;
    if (gr_chan_send(arg, &v) == -EPIPE)
        atomic_fetch_add(&woke_epipe, 1);
}

struct rf {
    gr_chan *c;
    long v;
};

/* Sends one value on a fresh channel that the receiver frees right after. */
static void send_once(void *arg)
{
    struct rf *r = arg;
    CHECK_EQ(gr_chan_send(r->c, &r->v), 0);
}

static void test_errors(void)
{
    long v = 0;
    gr_chan *c = gr_chan_new(sizeof(long), 1);
    CHECK(c != NULL);
    CHECK_EQ(gr_chan_send(NULL, &v), -EINVAL);
    CHECK_EQ(gr_chan_recv(NULL, &v), -EINVAL);
    CHECK_EQ(gr_chan_try_send(NULL, &v), -EINVAL);
    CHECK_EQ(gr_chan_try_recv(NULL, &v), -EINVAL);
    CHECK_EQ(gr_chan_close(NULL), -EINVAL);
    CHECK_EQ(gr_chan_free(NULL), -EINVAL);
    CHECK_EQ(gr_chan_len(NULL), 0);
    CHECK_EQ(gr_chan_cap(NULL), 0);
    CHECK_EQ(gr_chan_send(c, NULL), -EINVAL);
    CHECK_EQ(gr_chan_recv(c, NULL), -EINVAL);
    CHECK_EQ(gr_chan_try_send(c, NULL), -EINVAL);
    CHECK_EQ(gr_chan_try_recv(c, NULL), -EINVAL);
    CHECK_EQ(gr_chan_len(c), 0); /* nothing changed */
    CHECK(gr_chan_new(SIZE_MAX / 2, 3) == NULL); /* size overflows */
    CHECK_EQ(gr_chan_free(c), 0);
}

static void test_buffered(void)
{
    gr_chan *c = gr_chan_new(sizeof(long), 5);
    long v;
    CHECK_EQ(gr_chan_cap(c), 5);
    CHECK_EQ(gr_chan_try_recv(c, &v), -EAGAIN);
    for (long i = 0; i < 5; i++) {
        CHECK_EQ(gr_chan_try_send(c, &i), 0);
        CHECK_EQ(gr_chan_len(c), i + 1);
    }
    v = 99;
    CHECK_EQ(gr_chan_try_send(c, &v), -EAGAIN);
    CHECK_EQ(gr_chan_len(c), 5);
    for (long i = 0; i < 3; i++) {
        CHECK_EQ(gr_chan_recv(c, &v), 0);
        CHECK_EQ(v, i);
    }
    for (long i = 5; i < 8; i++)
        CHECK_EQ(gr_chan_send(c, &i), 0); /* wraps around the ring */
    CHECK_EQ(gr_chan_close(c), 0);
    CHECK_EQ(gr_chan_close(c), -EPIPE);
    CHECK_EQ(gr_chan_send(c, &v), -EPIPE);
    CHECK_EQ(gr_chan_try_send(c, &v), -EPIPE);
    for (long i = 3; i < 8; i++) { /* drains in order after close */
        CHECK_EQ(gr_chan_recv(c, &v), 0);
        CHECK_EQ(v, i);
    }
    for (int k = 0; k < 3; k++) {
        v = 123;
        CHECK_EQ(gr_chan_recv(c, &v), -EPIPE);
        CHECK_EQ(gr_chan_try_recv(c, &v), -EPIPE);
        CHECK_EQ(v, 123); /* not written */
    }
    CHECK_EQ(gr_chan_free(c), 0);
}

static void test_unbuffered(void)
{
    gr_chan *c = gr_chan_new(sizeof(long), 0);
    long v = 1;
    CHECK_EQ(gr_chan_cap(c), 0);
    CHECK_EQ(gr_chan_try_send(c, &v), -EAGAIN); /* no receiver */
    CHECK_EQ(gr_chan_try_recv(c, &v), -EAGAIN); /* no sender */
    SPAWN(sender_100, c);
    for (long i = 0; i < 100; i++) {
        CHECK_EQ(gr_chan_recv(c, &v), 0);
        CHECK_EQ(v, i);
        CHECK_EQ(gr_chan_len(c), 0);
    }
    /* A parked sender makes try_recv succeed. */
    SPAWN(sender_100, c);
    for (long i = 0; i < 100; i++) {
        while (gr_chan_try_recv(c, &v) == -EAGAIN)
            gr_yield();
        CHECK_EQ(v, i);
    }
    CHECK_EQ(gr_chan_free(c), 0);
}

static void test_close_wakes_all(int cap)
{
    gr_chan *c = gr_chan_new(sizeof(long), cap);
    long v = 0;
    atomic_store(&woke_epipe, 0);
    for (int i = 0; i < cap; i++) /* fill: senders will block */
        CHECK_EQ(gr_chan_send(c, &v), 0);
    gr_id ids[20];
    for (int i = 0; i < 10; i++)
        ids[i] = SPAWN(blocked_send, c);
    gr_sleep(5000000); /* let them all park */
    CHECK_EQ(gr_chan_free(c), -EBUSY);
    CHECK_EQ(gr_chan_close(c), 0);
    for (int i = 0; i < 10; i++)
        gr_join(ids[i]);
    CHECK_EQ(atomic_load(&woke_epipe), 10);
    CHECK_EQ(gr_chan_len(c), cap); /* buffered values survive close */
    CHECK_EQ(gr_chan_free(c), 0);

    c = gr_chan_new(sizeof(long), cap);
    atomic_store(&woke_epipe, 0);
    for (int i = 0; i < 10; i++)
        ids[i] = SPAWN(blocked_recv, c);
    gr_sleep(5000000);
    CHECK_EQ(gr_chan_free(c), -EBUSY);
    CHECK_EQ(gr_chan_close(c), 0);
    for (int i = 0; i < 10; i++)
        gr_join(ids[i]);
    CHECK_EQ(atomic_load(&woke_epipe), 10);
    CHECK_EQ(gr_chan_free(c), 0);
}

static void test_zero_size(void)
{
    gr_chan *c = gr_chan_new(0, 2);
    CHECK(c != NULL);
    CHECK_EQ(gr_chan_send(c, NULL), 0);
    CHECK_EQ(gr_chan_send(c, NULL), 0);
    CHECK_EQ(gr_chan_try_send(c, NULL), -EAGAIN);
    CHECK_EQ(gr_chan_len(c), 2);
    CHECK_EQ(gr_chan_recv(c, NULL), 0);
    CHECK_EQ(gr_chan_try_recv(c, NULL), 0);
    CHECK_EQ(gr_chan_try_recv(c, NULL), -EAGAIN);
    CHECK_EQ(gr_chan_close(c), 0);
    CHECK_EQ(gr_chan_recv(c, NULL), -EPIPE);
    CHECK_EQ(gr_chan_free(c), 0);
    c = gr_chan_new(0, 0);
    CHECK(c != NULL);
    CHECK_EQ(gr_chan_free(c), 0);
}

static void test_recv_then_free(void)
{
    /* skynet's pattern, many times: receive, then free at once. */
    for (int round = 0; round < 20000; round++) {
        struct rf r = { gr_chan_new(sizeof(long), round % 3 == 0 ? 1 : 0), round };
        long v = -1;
        SPAWN(send_once, &r);
        if (round % 2)
            gr_yield(); /* sometimes the sender parks first */
        CHECK_EQ(gr_chan_recv(r.c, &v), 0);
        CHECK_EQ(v, round);
        CHECK_EQ(gr_chan_free(r.c), 0);
    }
}

static void body(void *arg)
{
    (void)arg;
    test_errors();
    test_buffered();
    test_unbuffered();
    test_close_wakes_all(0);
    test_close_wakes_all(3);
    test_zero_size();
    test_recv_then_free();
}

int main(void)
{
    watchdog(60);
    for (int procs = 1; procs <= 2; procs++) {
        gr_maxprocs(procs);
        CHECK_EQ(gr_main(body, NULL), 0);
        gr_wait_all();
    }
    test_errors(); /* from a plain thread too */
    test_buffered();
    test_zero_size();
    puts("ok");
    return 0;
}
