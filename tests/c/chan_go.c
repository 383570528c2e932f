/*
 * Behaviours of Go's own channel tests (runtime/chan_test.go), ported:
 * TestChan over capacities 0..19, TestNonblockRecvRace, TestNonblockSelectRace,
 * TestSelfSelect, TestSelectDuplicateChannel, TestMultiConsumer. Run on 1 and on
 * 2 processors.
 */
#include "check.h"

#include <stdatomic.h>

#define MS 1000000LL

static long recv_long(gr_chan *c)
{
    long v;
    CHECK_EQ(gr_chan_recv(c, &v), 0);
    return v;
}

static void send_long(gr_chan *c, long v)
{
    CHECK_EQ(gr_chan_send(c, &v), 0);
}

/* ---- TestChan ---- */

static atomic_int flag1, flag2;

static void recv_set1(void *c)
{
    long v;
    gr_chan_recv(c, &v);
    atomic_store(&flag1, 1);
}

static void recv_set2(void *c)
{
    long v;
    gr_chan_recv(c, &v);
    atomic_store(&flag2, 1);
}

static void send_set1(void *c)
{
    send_long(c, 0);
    atomic_store(&flag1, 1);
}

struct closer_arg {
    gr_chan *c, *done;
};

static void recv_expect_closed(void *arg)
{
    struct closer_arg *a = arg;
    long v = 0;
    int ok = gr_chan_recv(a->c, &v) == -EPIPE;
    send_long(a->done, ok);
}

static void send_100(void *c)
{
    for (long i = 0; i < 100; i++)
        send_long(c, i);
}

#define P 4
#define L 1000

static void send_L(void *c)
{
    for (long i = 0; i < L; i++)
        send_long(c, i);
}

struct counter_arg {
    gr_chan *c, *done;
    int counts[L];
};

static void recv_count(void *arg)
{
    struct counter_arg *a = arg;
    memset(a->counts, 0, sizeof a->counts);
    for (int i = 0; i < L; i++) {
        long v = recv_long(a->c);
        CHECK(v >= 0 && v < L);
        a->counts[v]++;
    }
    long self = (long)(intptr_t)a;
    send_long(a->done, self);
}

static void test_chan(void)
{
    static struct counter_arg ca[P];
    for (int cap = 0; cap < 20; cap++) {
        long v;
        {
            /* Receive from an empty channel blocks; a try receive does not. */
            gr_chan *c = gr_chan_new(sizeof(long), cap);
            atomic_store(&flag1, 0);
            atomic_store(&flag2, 0);
            SPAWN(recv_set1, c);
            SPAWN(recv_set2, c);
            gr_sleep(MS);
            if (atomic_load(&flag1) || atomic_load(&flag2))
                FAIL("chan[%d]: receive from empty chan", cap);
            gr_case k = { c, GR_RECV, &v, 0 };
            CHECK_EQ(gr_select(&k, 1, 0), -EAGAIN);
            CHECK_EQ(gr_chan_try_recv(c, &v), -EAGAIN);
            send_long(c, 0);
            send_long(c, 0);
            while (!atomic_load(&flag1) || !atomic_load(&flag2))
                gr_sleep(100000);
            CHECK_EQ(gr_chan_free(c), 0);
        }
        {
            /* Send to a full channel blocks; a try send does not. */
            gr_chan *c = gr_chan_new(sizeof(long), cap);
            for (long i = 0; i < cap; i++)
                send_long(c, i);
            atomic_store(&flag1, 0);
            SPAWN(send_set1, c);
            gr_sleep(MS);
            if (atomic_load(&flag1))
                FAIL("chan[%d]: send to full chan", cap);
            v = 0;
            gr_case k = { c, GR_SEND, &v, 0 };
            CHECK_EQ(gr_select(&k, 1, 0), -EAGAIN);
            CHECK_EQ(gr_chan_try_send(c, &v), -EAGAIN);
            recv_long(c);
            while (!atomic_load(&flag1))
                gr_sleep(100000);
            while (gr_chan_try_recv(c, &v) == 0) {
            }
            CHECK_EQ(gr_chan_free(c), 0);
        }
        {
            /* Receive the buffered values from a closed channel, then "closed". */
            gr_chan *c = gr_chan_new(sizeof(long), cap);
            for (long i = 0; i < cap; i++)
                send_long(c, i);
            CHECK_EQ(gr_chan_close(c), 0);
            for (long i = 0; i < cap; i++)
                CHECK_EQ(recv_long(c), i);
            CHECK_EQ(gr_chan_recv(c, &v), -EPIPE);
            CHECK_EQ(gr_chan_recv(c, &v), -EPIPE);
            gr_case k = { c, GR_RECV, &v, 0 };
            CHECK_EQ(gr_select(&k, 1, -1), 0);
            CHECK_EQ(k.closed, 1);
            CHECK_EQ(gr_chan_free(c), 0);
        }
        {
            /* Close unblocks a receiver. */
            gr_chan *c = gr_chan_new(sizeof(long), cap);
            gr_chan *done = gr_chan_new(sizeof(long), 0);
            struct closer_arg a = { c, done };
            SPAWN(recv_expect_closed, &a);
            gr_sleep(MS);
            CHECK_EQ(gr_chan_close(c), 0);
            CHECK_EQ(recv_long(done), 1);
            CHECK_EQ(gr_chan_free(c), 0);
            CHECK_EQ(gr_chan_free(done), 0);
        }
        {
            /* 100 values arrive uncorrupted in FIFO order (recv, then select). */
            gr_chan *c = gr_chan_new(sizeof(long), cap);
            SPAWN(send_100, c);
            for (long i = 0; i < 100; i++)
                CHECK_EQ(recv_long(c), i);
            SPAWN(send_100, c);
            for (long i = 0; i < 100; i++) {
                gr_case k = { c, GR_RECV, &v, 0 };
                CHECK_EQ(gr_select(&k, 1, -1), 0);
                CHECK_EQ(k.closed, 0);
                CHECK_EQ(v, i);
            }
            /* P senders, P receivers: every value arrives P times. */
            gr_chan *done = gr_chan_new(sizeof(long), 0);
            for (int p = 0; p < P; p++)
                SPAWN(send_L, c);
            for (int p = 0; p < P; p++) {
                ca[p].c = c;
                ca[p].done = done;
                SPAWN(recv_count, &ca[p]);
            }
            static int total[L];
            memset(total, 0, sizeof total);
            for (int p = 0; p < P; p++) {
                struct counter_arg *a = (struct counter_arg *)(intptr_t)recv_long(done);
                for (int i = 0; i < L; i++)
                    total[i] += a->counts[i];
            }
            for (int i = 0; i < L; i++)
                if (total[i] != P)
                    FAIL("chan[%d]: value %d received %d times, expected %d", cap, i, total[i], P);
            CHECK_EQ(gr_chan_free(c), 0);
            CHECK_EQ(gr_chan_free(done), 0);
        }
        {
            /* len and cap. */
            gr_chan *c = gr_chan_new(sizeof(long), cap);
            CHECK_EQ(gr_chan_len(c), 0);
            CHECK_EQ(gr_chan_cap(c), cap);
            for (long i = 0; i < cap; i++)
                send_long(c, i);
            CHECK_EQ(gr_chan_len(c), cap);
            CHECK_EQ(gr_chan_cap(c), cap);
            CHECK_EQ(gr_chan_free(c), 0);
        }
    }
}

/* ---- TestNonblockRecvRace ---- */

static void try_recv_must_be_ready(void *c)
{
    long v;
    gr_case k = { c, GR_RECV, &v, 0 };
    if (gr_select(&k, 1, 0) != 0)
        FAIL("chan is not ready");
}

static void test_nonblock_recv_race(void)
{
    for (int i = 0; i < 10000; i++) {
        gr_chan *c = gr_chan_new(sizeof(long), 1);
        long v = 1;
        send_long(c, 1);
        gr_id id = SPAWN(try_recv_must_be_ready, c);
        CHECK_EQ(gr_chan_close(c), 0);
        int rc = gr_chan_recv(c, &v);
        CHECK(rc == 0 || rc == -EPIPE);
        gr_join(id);
        CHECK_EQ(gr_chan_free(c), 0);
    }
}

/* ---- TestNonblockSelectRace (and its variant with the cases swapped) ---- */

struct race_arg {
    gr_chan *c1, *c2, *done;
    int swap;
};

static void select_two_or_default(void *arg)
{
    struct race_arg *a = arg;
    long v;
    gr_case k[2] = { { a->c1, GR_RECV, &v, 0 }, { a->c2, GR_RECV, &v, 0 } };
    if (a->swap) {
        gr_case t = k[0];
        k[0] = k[1];
        k[1] = t;
    }
    long ok = gr_select(k, 2, 0) >= 0;
    send_long(a->done, ok);
}

static void test_nonblock_select_race(void)
{
    gr_chan *done = gr_chan_new(sizeof(long), 1);
    for (int i = 0; i < 20000; i++) {
        struct race_arg a = { gr_chan_new(sizeof(long), 1), gr_chan_new(sizeof(long), 1), done, i & 1 };
        long v;
        send_long(a.c1, 1);
        SPAWN(select_two_or_default, &a);
        send_long(a.c2, 1);
        gr_case k = { a.c1, GR_RECV, &v, 0 };
        gr_select(&k, 1, 0);
        if (!recv_long(done))
            FAIL("no chan is ready (round %d)", i);
        gr_chan_free(a.c1);
        gr_chan_free(a.c2);
    }
    gr_chan_free(done);
}

/* ---- TestSelfSelect ---- */

struct self_arg {
    gr_chan *c;
    gr_wg *wg;
    long p;
    int cap;
};

static void self_select(void *arg)
{
    struct self_arg *a = arg;
    for (int i = 0; i < 1000; i++) {
        long out = a->p, in = -1;
        gr_case k[2] = { { a->c, GR_SEND, &out, 0 }, { a->c, GR_RECV, &in, 0 } };
        if (!(a->p == 0 || i % 2 == 0)) {
            gr_case t = k[0];
            k[0] = k[1];
            k[1] = t;
        }
        int r = gr_select(k, 2, -1);
        CHECK(r == 0 || r == 1);
        if (k[r].op == GR_RECV && a->cap == 0 && in == a->p)
            FAIL("self receive");
    }
    gr_wg_done(a->wg);
}

static void test_self_select(void)
{
    int caps[2] = { 0, 10 };
    for (int ci = 0; ci < 2; ci++) {
        gr_wg *wg = gr_wg_new();
        gr_chan *c = gr_chan_new(sizeof(long), caps[ci]);
        struct self_arg a[2];
        gr_wg_add(wg, 2);
        for (int p = 0; p < 2; p++) {
            a[p] = (struct self_arg){ c, wg, p, caps[ci] };
            SPAWN(self_select, &a[p]);
        }
        CHECK_EQ(gr_wg_wait(wg), 0);
        CHECK_EQ(gr_wg_free(wg), 0);
        long v;
        while (gr_chan_try_recv(c, &v) == 0) {
        }
        CHECK_EQ(gr_chan_free(c), 0);
    }
}

/* ---- TestSelectDuplicateChannel ---- */

static gr_chan *dc, *dd, *de;

static void dup_a(void *arg)
{
    (void)arg;
    long v;
    gr_case k[3] = { { dc, GR_RECV, &v, 0 }, { dc, GR_RECV, &v, 0 }, { dd, GR_RECV, &v, 0 } };
    CHECK_EQ(gr_select(k, 3, -1), 2);
    CHECK_EQ(v, 7);
    send_long(de, 9);
}

static void dup_b(void *arg)
{
    (void)arg;
    CHECK_EQ(recv_long(dc), 8);
}

static void test_select_duplicate_channel(void)
{
    dc = gr_chan_new(sizeof(long), 0);
    dd = gr_chan_new(sizeof(long), 0);
    de = gr_chan_new(sizeof(long), 0);
    SPAWN(dup_a, NULL);
    gr_sleep(MS); /* A queues first on c */
    gr_id b = SPAWN(dup_b, NULL);
    gr_sleep(MS); /* B queues on c after A */
    send_long(dd, 7); /* wakes A, which dequeues itself from c */
    CHECK_EQ(recv_long(de), 9);
    send_long(dc, 8); /* must wake B (c's queue intact) */
    gr_join(b);
    CHECK_EQ(gr_chan_free(dc), 0);
    CHECK_EQ(gr_chan_free(dd), 0);
    CHECK_EQ(gr_chan_free(de), 0);
}

/* ---- TestMultiConsumer ---- */

#define NWORK 23
#define NITER 271828
static const long pn[] = { 2, 3, 7, 11, 13, 17, 19, 23, 27, 31 };
#define NPN (sizeof pn / sizeof pn[0])

struct mc {
    gr_chan *q, *r;
    gr_wg *wg;
    long expect;
};
static struct mc mc;

static void mc_worker(void *arg)
{
    long w = (long)(intptr_t)arg, v;
    while (gr_chan_recv(mc.q, &v) == 0) {
        if (pn[w % NPN] == v)
            gr_yield(); /* mess with the FIFO-ish order */
        send_long(mc.r, v);
    }
    gr_wg_done(mc.wg);
}

static void mc_feeder(void *arg)
{
    (void)arg;
    long expect = 0;
    for (long i = 0; i < NITER; i++) {
        long v = pn[i % NPN];
        expect += v;
        send_long(mc.q, v);
    }
    mc.expect = expect;
    CHECK_EQ(gr_chan_close(mc.q), 0);
    CHECK_EQ(gr_wg_wait(mc.wg), 0);
    CHECK_EQ(gr_chan_close(mc.r), 0);
}

static void test_multi_consumer(void)
{
    mc.q = gr_chan_new(sizeof(long), NWORK * 3);
    mc.r = gr_chan_new(sizeof(long), NWORK * 3);
    mc.wg = gr_wg_new();
    CHECK_EQ(gr_wg_add(mc.wg, NWORK), 0);
    for (long i = 0; i < NWORK; i++)
        SPAWN(mc_worker, (void *)(intptr_t)i);
    SPAWN(mc_feeder, NULL);
    long n = 0, s = 0, v;
    while (gr_chan_recv(mc.r, &v) == 0) {
        n++;
        s += v;
    }
    CHECK_EQ(n, NITER);
    CHECK_EQ(s, mc.expect);
    gr_wait_all();
    CHECK_EQ(gr_chan_free(mc.q), 0);
    CHECK_EQ(gr_chan_free(mc.r), 0);
    CHECK_EQ(gr_wg_free(mc.wg), 0);
}

static void body(void *arg)
{
    (void)arg;
    test_chan();
    test_nonblock_recv_race();
    test_nonblock_select_race();
    test_self_select();
    test_select_duplicate_channel();
    test_multi_consumer();
}

int main(void)
{
    watchdog(120);
    for (int procs = 1; procs <= 2; procs++) {
        gr_maxprocs(procs);
        CHECK_EQ(gr_main(body, NULL), 0);
        CHECK_EQ(gr_wait_all(), 0);
        printf("procs=%d passed\n", procs);
    }
    puts("ok");
    return 0;
}
