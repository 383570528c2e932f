/*
 * Plain threads and goroutines talking over channels: the main thread and a
 * pthread exchange 1,000 messages each way with goroutines (unbuffered and
 * buffered), a plain thread blocks in gr_select (with and without a timeout) until
 * a goroutine sends, and a plain thread is woken by close.
 */
#include "check.h"

#include <pthread.h>

enum { N = 1000 };

struct pair {
    gr_chan *to_g, *from_g;
};

/* Echoes every value + 1 until to_g is closed, then closes from_g. */
static void echo(void *arg)
{
    struct pair *p = arg;
    long v;
    while (gr_chan_recv(p->to_g, &v) == 0) {
        v += 1;
        CHECK_EQ(gr_chan_send(p->from_g, &v), 0);
    }
    CHECK_EQ(gr_chan_close(p->from_g), 0);
}

/* Sends 0..N-1 to the plain side, then receives N values from it. */
static void g_side(void *arg)
{
    struct pair *p = arg;
    for (long i = 0; i < N; i++)
        CHECK_EQ(gr_chan_send(p->from_g, &i), 0);
    long sum = 0, v;
    for (long i = 0; i < N; i++) {
        CHECK_EQ(gr_chan_recv(p->to_g, &v), 0);
        CHECK_EQ(v, i * 2);
        sum += v;
    }
    CHECK_EQ(sum, (long)N * (N - 1));
}

static void exchange(size_t cap)
{
    struct pair p = { gr_chan_new(sizeof(long), cap), gr_chan_new(sizeof(long), cap) };
    /* plain -> goroutine -> plain, one at a time */
    gr_id e = SPAWN(echo, &p);
    for (long i = 0; i < N; i++) {
        long v;
        CHECK_EQ(gr_chan_send(p.to_g, &i), 0);
        CHECK_EQ(gr_chan_recv(p.from_g, &v), 0);
        CHECK_EQ(v, i + 1);
    }
    CHECK_EQ(gr_chan_close(p.to_g), 0);
    long v;
    CHECK_EQ(gr_chan_recv(p.from_g, &v), -EPIPE); /* woken by the goroutine's close */
    gr_join(e);
    CHECK_EQ(gr_chan_free(p.to_g), 0);
    CHECK_EQ(gr_chan_free(p.from_g), 0);

    /* all of one direction, then all of the other */
    p.to_g = gr_chan_new(sizeof(long), cap);
    p.from_g = gr_chan_new(sizeof(long), cap);
    gr_id g = SPAWN(g_side, &p);
    for (long i = 0; i < N; i++) {
        CHECK_EQ(gr_chan_recv(p.from_g, &v), 0);
        CHECK_EQ(v, i);
    }
    for (long i = 0; i < N; i++) {
        long x = 2 * i;
        CHECK_EQ(gr_chan_send(p.to_g, &x), 0);
    }
    gr_join(g);
    CHECK_EQ(gr_chan_free(p.to_g), 0);
    CHECK_EQ(gr_chan_free(p.from_g), 0);
}

static void *thread_main(void *arg)
{
    exchange((size_t)(intptr_t)arg);
    return NULL;
}

static gr_chan *late;

static void send_late(void *arg)
{
    (void)arg;
    gr_sleep(3000000);
    long v = 99;
    CHECK_EQ(gr_chan_send(late, &v), 0);
}

static void close_late(void *arg)
{
    (void)arg;
    gr_sleep(3000000);
    CHECK_EQ(gr_chan_close(late), 0);
}

int main(void)
{
    watchdog(60);
    for (int procs = 1; procs <= 2; procs++) {
        gr_maxprocs(procs);
        exchange(0);
        exchange(16);
        pthread_t t[2];
        CHECK_EQ(pthread_create(&t[0], NULL, thread_main, (void *)0), 0);
        CHECK_EQ(pthread_create(&t[1], NULL, thread_main, (void *)3), 0);
        pthread_join(t[0], NULL);
        pthread_join(t[1], NULL);
    }
    /* A plain thread blocked in select, woken by a goroutine's send. */
    late = gr_chan_new(sizeof(long), 0);
    gr_chan *never = gr_chan_new(sizeof(long), 0);
    for (int timed = 0; timed < 2; timed++) {
        long v = 0;
        gr_case k[2] = { { never, GR_RECV, &v, 0 }, { late, GR_RECV, &v, 0 } };
        SPAWN(send_late, NULL);
        CHECK_EQ(gr_select(k, 2, timed ? 5000000000LL : -1), 1);
        CHECK_EQ(v, 99);
        CHECK_EQ(k[1].closed, 0);
        gr_wait_all();
    }
    /* ... and by close. */
    SPAWN(close_late, NULL);
    long v;
    CHECK_EQ(gr_chan_recv(late, &v), -EPIPE);
    gr_wait_all();
    CHECK_EQ(gr_chan_free(late), 0);
    CHECK_EQ(gr_chan_free(never), 0);
    puts("ok");
    return 0;
}
