/*
 * gr_select: try (-EAGAIN) and timeout (-ETIMEDOUT) only when no case is ready,
 * fairness among ready cases (each of 2 > 30% over 10,000 rounds), the closed flag
 * for receive and send cases, send cases, the same channel twice, argument errors
 * (-EINVAL, nothing done), n = 0 as a sleep, and timeouts racing with senders
 * (nothing lost or duplicated). Also from a plain thread.
 */
#include "check.h"

#include <stdatomic.h>

#define MS 1000000LL

static void test_errors(void)
{
    gr_chan *c = gr_chan_new(sizeof(long), 1);
    long v = 5;
    gr_case k = { c, GR_SEND, &v, 0 };
    CHECK_EQ(gr_select(NULL, 1, 0), -EINVAL);
    CHECK_EQ(gr_select(NULL, 0, 0), -EAGAIN);
    CHECK_EQ(gr_select(NULL, 0, -1), -EINVAL);
    gr_case bad[2] = { k, { NULL, GR_RECV, &v, 0 } };
    CHECK_EQ(gr_select(bad, 2, -1), -EINVAL);
    bad[1] = (gr_case){ c, 3, &v, 0 };
    CHECK_EQ(gr_select(bad, 2, -1), -EINVAL);
    bad[1] = (gr_case){ c, GR_RECV, NULL, 0 };
    CHECK_EQ(gr_select(bad, 2, -1), -EINVAL);
    CHECK_EQ(gr_chan_len(c), 0); /* the valid send case was not done */
    CHECK_EQ(gr_chan_free(c), 0);
}

static void test_try_and_timeout(void)
{
    gr_chan *a = gr_chan_new(sizeof(long), 1), *b = gr_chan_new(sizeof(long), 0);
    long va = -1, vb = -1;
    gr_case k[2] = { { a, GR_RECV, &va, 0 }, { b, GR_RECV, &vb, 0 } };
    CHECK_EQ(gr_select(k, 2, 0), -EAGAIN);
    int64_t t0 = now_ns();
    CHECK_EQ(gr_select(k, 2, 20 * MS), -ETIMEDOUT);
    int64_t dt = now_ns() - t0;
    if (dt < 19 * MS || dt > 2000 * MS)
        FAIL("a 20 ms select timeout took %lld ns", (long long)dt);
    CHECK_EQ(gr_chan_free(a), 0); /* the timed-out select left no waiter behind */
    CHECK_EQ(gr_chan_free(b), 0);

    /* n = 0 with a timeout sleeps. */
    t0 = now_ns();
    CHECK_EQ(gr_select(NULL, 0, 5 * MS), -ETIMEDOUT);
    CHECK(now_ns() - t0 >= 5 * MS - 100000);

    /* A ready case always wins over try and timeout. */
    a = gr_chan_new(sizeof(long), 1);
    for (int i = 0; i < 1000; i++) {
        long x = i;
        CHECK_EQ(gr_chan_send(a, &x), 0);
        gr_case r = { a, GR_RECV, &va, 7 };
        CHECK_EQ(gr_select(&r, 1, i % 2 ? 0 : 1), 0);
        CHECK_EQ(r.closed, 0);
        CHECK_EQ(va, i);
    }
    /* Send cases: ready when there is room. */
    long x = 42;
    gr_case s = { a, GR_SEND, &x, 0 };
    CHECK_EQ(gr_select(&s, 1, 0), 0);
    CHECK_EQ(gr_select(&s, 1, 0), -EAGAIN); /* full */
    CHECK_EQ(gr_select(&s, 1, MS), -ETIMEDOUT);
    CHECK_EQ(gr_chan_len(a), 1);
    CHECK_EQ(gr_chan_recv(a, &va), 0);
    CHECK_EQ(va, 42);
    CHECK_EQ(gr_chan_free(a), 0);
}

static void test_closed(void)
{
    gr_chan *a = gr_chan_new(sizeof(long), 2), *b = gr_chan_new(sizeof(long), 0);
    long v = 1, w = 2;
    CHECK_EQ(gr_chan_send(a, &v), 0);
    CHECK_EQ(gr_chan_close(a), 0);
    gr_case k[2] = { { a, GR_RECV, &w, 9 }, { b, GR_RECV, &w, 9 } };
    CHECK_EQ(gr_select(k, 2, -1), 0); /* the buffered value first */
    CHECK_EQ(k[0].closed, 0);
    CHECK_EQ(w, 1);
    for (int i = 0; i < 3; i++) { /* then closed, for ever, also as a try */
        k[0].closed = 9;
        w = 77;
        CHECK_EQ(gr_select(k, 2, i == 0 ? -1 : 0), 0);
        CHECK_EQ(k[0].closed, 1);
        CHECK_EQ(w, 77);
    }
    /* A send case on a closed channel fires with closed = 1 and sends nothing. */
    gr_case s[2] = { { b, GR_RECV, &w, 0 }, { a, GR_SEND, &v, 0 } };
    CHECK_EQ(gr_select(s, 2, -1), 1);
    CHECK_EQ(s[1].closed, 1);
    CHECK_EQ(gr_chan_len(a), 0);
    CHECK_EQ(gr_chan_free(a), 0);
    CHECK_EQ(gr_chan_free(b), 0);
}

/* A blocked select woken by close. */
static gr_chan *cl_a, *cl_b;
static atomic_int cl_result = -100, cl_closed = -1;

static void select_until_closed(void *arg)
{
    long w;
    int send = arg != NULL;
    gr_case k[2] = { { cl_a, send ? GR_SEND : GR_RECV, &w, 0 }, { cl_b, GR_RECV, &w, 0 } };
    w = 3;
    int r = gr_select(k, 2, send ? 10000 * MS : -1);
    atomic_store(&cl_result, r);
    atomic_store(&cl_closed, r >= 0 ? k[r].closed : -1);
}

static void test_close_wakes_select(void)
{
    for (int send = 0; send < 2; send++) {
        cl_a = gr_chan_new(sizeof(long), 0);
        cl_b = gr_chan_new(sizeof(long), 0);
        gr_id id = SPAWN(select_until_closed, send ? (void *)1 : NULL);
        gr_sleep(2 * MS);
        CHECK_EQ(gr_chan_free(cl_a), -EBUSY);
        CHECK_EQ(gr_chan_free(cl_b), -EBUSY);
        CHECK_EQ(gr_chan_close(cl_a), 0);
        gr_join(id);
        CHECK_EQ(atomic_load(&cl_result), 0);
        CHECK_EQ(atomic_load(&cl_closed), 1);
        CHECK_EQ(gr_chan_free(cl_a), 0); /* the select unlinked itself from b */
        CHECK_EQ(gr_chan_free(cl_b), 0);
    }
}

static void test_fairness(void)
{
    enum { ROUNDS = 10000 };
    gr_chan *a = gr_chan_new(1, ROUNDS + 1), *b = gr_chan_new(1, ROUNDS + 1);
    char x = 1, y;
    for (int i = 0; i < ROUNDS; i++) {
        CHECK_EQ(gr_chan_send(a, &x), 0);
        CHECK_EQ(gr_chan_send(b, &x), 0);
    }
    int cnt[2] = { 0, 0 };
    for (int i = 0; i < ROUNDS; i++) {
        gr_case k[2] = { { a, GR_RECV, &y, 0 }, { b, GR_RECV, &y, 0 } };
        int r = gr_select(k, 2, i % 3 == 0 ? -1 : (i % 3 == 1 ? 0 : MS));
        CHECK(r == 0 || r == 1);
        cnt[r]++;
        CHECK_EQ(gr_chan_send(k[r].chan, &x), 0); /* keep both ready */
    }
    if (cnt[0] < ROUNDS * 3 / 10 || cnt[1] < ROUNDS * 3 / 10)
        FAIL("unfair select: %d / %d", cnt[0], cnt[1]);
    CHECK_EQ(gr_chan_free(a), 0);
    CHECK_EQ(gr_chan_free(b), 0);
}

static void test_duplicates(void)
{
    /* The same channel in several cases, some send and some receive. */
    gr_chan *c = gr_chan_new(sizeof(long), 3);
    long v[4] = { 10, 11, 12, 13 };
    for (int i = 0; i < 3; i++) {
        gr_case k[3] = { { c, GR_SEND, &v[0], 0 }, { c, GR_SEND, &v[1], 0 }, { c, GR_SEND, &v[2], 0 } };
        int r = gr_select(k, 3, -1);
        CHECK(r >= 0 && r < 3);
    }
    CHECK_EQ(gr_chan_len(c), 3);
    long sum = 0;
    for (int i = 0; i < 3; i++) {
        gr_case k[2] = { { c, GR_RECV, &v[3], 0 }, { c, GR_RECV, &v[3], 0 } };
        CHECK(gr_select(k, 2, 0) >= 0);
        sum += v[3];
    }
    CHECK(sum >= 30 && sum <= 36);
    CHECK_EQ(gr_chan_free(c), 0);
}

/* Timeouts racing with senders: nothing lost, nothing duplicated. */
enum { RACE_N = 20000 };
static gr_chan *race_c;
static atomic_int race_timeouts;

static void race_sender(void *arg)
{
    (void)arg;
    for (long i = 0; i < RACE_N; i++)
        CHECK_EQ(gr_chan_send(race_c, &i), 0);
}

static void race_receiver(void *arg)
{
    (void)arg;
    gr_chan *never = gr_chan_new(sizeof(long), 0);
    long v, expect = 0;
    while (expect < RACE_N) {
        gr_case k[2] = { { race_c, GR_RECV, &v, 0 }, { never, GR_RECV, &v, 0 } };
        int r = gr_select(k, 2, (expect % 7) * 1000); /* 0..6 us, 0 = try */
        if (r == -ETIMEDOUT || r == -EAGAIN) {
            atomic_fetch_add(&race_timeouts, 1);
            if (r == -EAGAIN)
                gr_yield(); /* no preemption: let the sender run */
            continue;
        }
        CHECK_EQ(r, 0);
        if (v != expect)
            FAIL("select received %ld, expected %ld", v, expect);
        expect++;
    }
    CHECK_EQ(gr_chan_free(never), 0);
}

static void test_timeout_race(int cap)
{
    race_c = gr_chan_new(sizeof(long), cap);
    gr_id s = SPAWN(race_sender, NULL);
    gr_id r = SPAWN(race_receiver, NULL);
    gr_join(s);
    gr_join(r);
    CHECK_EQ(gr_chan_free(race_c), 0);
}

static void body(void *arg)
{
    (void)arg;
    test_errors();
    test_try_and_timeout();
    test_closed();
    test_close_wakes_select();
    test_fairness();
    test_duplicates();
    test_timeout_race(0);
    test_timeout_race(1);
}

int main(void)
{
    watchdog(60);
    for (int procs = 1; procs <= 2; procs++) {
        gr_maxprocs(procs);
        CHECK_EQ(gr_main(body, NULL), 0);
        gr_wait_all();
    }
    /* From a plain thread as well. */
    test_errors();
    test_try_and_timeout();
    test_closed();
    test_fairness();
    test_duplicates();
    test_timeout_race(0);
    printf("timeouts seen in races: %d\n", atomic_load(&race_timeouts));
    puts("ok");
    return 0;
}
