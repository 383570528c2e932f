/*
 * Timers and tickers (gr_timer_*): what each call promises, one case at a time.
 *   - a timer fires once, not before its time, sending the monotonic time of the
 *     firing (CLOCK_MONOTONIC ns, between the deadline and the receive) on a
 *     capacity-1 channel of int64_t; ns <= 0 fires at once;
 *   - gr_timer_stop: 1 while pending (and nothing arrives later), 1 when the value
 *     is still unread (the channel is emptied: Go 1.23's rule), 0 once the value was
 *     received, 0 when stopped twice;
 *   - gr_timer_reset: 1 on a pending timer, which then fires at the new time only;
 *     1 on a fired, unread one, whose old value is gone (the next value is newer
 *     than the reset); 0 on a received one; a ticker reset to a one-shot fires once;
 *   - a ticker ticks every period (values increasing, the n-th not before n
 *     periods), drops ticks while one is unread (after a pause the channel holds 1,
 *     and the tick after it fired after the drain, not during the pause), stops for
 *     good on stop;
 *   - the channel works in gr_select beside other channels, and for a plain thread;
 *   - bad input: NULL is -EINVAL/NULL, a negative period is NULL/-EINVAL, free with
 *     a receiver parked on the channel is -EBUSY.
 * Time bounds are generous sanity bounds (the machine is shared): "not early" is
 * exact, "on time" allows 500 ms.
 */
#include "check.h"

#define MS 1000000LL
#define LATE (500 * MS)

/* Receives one value within `ns`: 1 and *v set, or 0 on timeout. */
static int recv_within(gr_timer *t, int64_t ns, int64_t *v)
{
    gr_case c = { gr_timer_chan(t), GR_RECV, v, 0 };
    int rc = gr_select(&c, 1, ns);
    if (rc == -ETIMEDOUT)
        return 0;
    CHECK_EQ(rc, 0);
    CHECK_EQ(c.closed, 0);
    return 1;
}

static void test_one_shot(void)
{
    int64_t t0 = now_ns();
    gr_timer *t = gr_timer_new(30 * MS, 0);
    CHECK(t != NULL);
    gr_chan *c = gr_timer_chan(t);
    CHECK(c != NULL);
    CHECK_EQ(gr_chan_cap(c), 1);
    int64_t v = 0;
    CHECK_EQ(gr_chan_recv(c, &v), 0);
    int64_t t1 = now_ns();
    if (t1 - t0 < 30 * MS)
        FAIL("fired after %lld ns, before its 30 ms", (long long)(t1 - t0));
    if (v < t0 + 30 * MS || v > t1)
        FAIL("value %lld not in [deadline %lld, receive %lld]", (long long)v,
             (long long)(t0 + 30 * MS), (long long)t1);
    CHECK(t1 - t0 < 30 * MS + LATE);
    /* Once only. */
    CHECK_EQ(recv_within(t, 60 * MS, &v), 0);
    CHECK_EQ(gr_timer_stop(t), 0);
    CHECK_EQ(gr_timer_free(t), 0);

    /* ns <= 0: at once. */
    for (int64_t ns = 0; ns >= -1; ns--) {
        t0 = now_ns();
        t = gr_timer_new(ns, 0);
        CHECK(t != NULL);
        CHECK_EQ(recv_within(t, LATE, &v), 1);
        CHECK(v >= t0);
        CHECK_EQ(gr_timer_free(t), 0);
    }
}

static void test_stop(void)
{
    int64_t v;
    /* Pending: 1, and nothing arrives after. */
    gr_timer *t = gr_timer_new(40 * MS, 0);
    CHECK(t != NULL);
    CHECK_EQ(gr_timer_stop(t), 1);
    CHECK_EQ(recv_within(t, 100 * MS, &v), 0);
    CHECK_EQ(gr_timer_stop(t), 0); /* already stopped */

    /* Fired, unread: 1, and the value is gone. */
    CHECK_EQ(gr_timer_reset(t, 0, 0), 0);
    while (gr_chan_len(gr_timer_chan(t)) == 0)
        gr_sleep(MS);
    CHECK_EQ(gr_timer_stop(t), 1);
    CHECK_EQ(gr_chan_len(gr_timer_chan(t)), 0);
    CHECK_EQ(gr_chan_try_recv(gr_timer_chan(t), &v), -EAGAIN);

    /* Fired and received: 0. */
    CHECK_EQ(gr_timer_reset(t, 1 * MS, 0), 0);
    CHECK_EQ(recv_within(t, LATE, &v), 1);
    CHECK_EQ(gr_timer_stop(t), 0);
    CHECK_EQ(gr_timer_free(t), 0);
}

static void test_reset(void)
{
    int64_t v;
    /* Pending: 1, fires at the new time, not the old. */
    int64_t t0 = now_ns();
    gr_timer *t = gr_timer_new(20 * MS, 0);
    CHECK(t != NULL);
    CHECK_EQ(gr_timer_reset(t, 120 * MS, 0), 1);
    CHECK_EQ(recv_within(t, 60 * MS, &v), 0); /* the old 20 ms deadline passed */
    CHECK_EQ(recv_within(t, LATE, &v), 1);
    if (now_ns() - t0 < 120 * MS || v < t0 + 120 * MS)
        FAIL("reset timer fired %lld ns after the reset, before its 120 ms",
             (long long)(v - t0));

    /* Fired, unread: 1, and the old value never arrives: the next one is newer. */
    CHECK_EQ(gr_timer_reset(t, 0, 0), 0);
    while (gr_chan_len(gr_timer_chan(t)) == 0)
        gr_sleep(MS);
    int64_t t_reset = now_ns();
    CHECK_EQ(gr_timer_reset(t, 10 * MS, 0), 1);
    CHECK_EQ(recv_within(t, LATE, &v), 1);
    if (v < t_reset + 10 * MS)
        FAIL("received a value from before the reset (%lld ns before it)",
             (long long)(t_reset - v));

    /* Received: 0. */
    CHECK_EQ(gr_timer_reset(t, 5 * MS, 0), 0);
    CHECK_EQ(recv_within(t, LATE, &v), 1);

    /* Bad period: nothing changes (stays stopped). */
    CHECK_EQ(gr_timer_reset(t, 5 * MS, -1), -EINVAL);
    CHECK_EQ(recv_within(t, 40 * MS, &v), 0);
    CHECK_EQ(gr_timer_free(t), 0);
}

static void test_ticker(void)
{
    const int64_t period = 20 * MS;
    int64_t t0 = now_ns();
    gr_timer *t = gr_timer_new(period, period);
    CHECK(t != NULL);
    int64_t prev = t0, v;
    for (int i = 0; i < 5; i++) {
        CHECK_EQ(recv_within(t, LATE, &v), 1);
        if (v <= prev)
            FAIL("tick %d at %lld, not after the previous one (%lld)", i, (long long)v,
                 (long long)prev);
        prev = v;
    }
    /* A tick never comes before its deadline (late ones skip deadlines, never add). */
    if (v < t0 + 5 * period)
        FAIL("5 ticks in %lld ns, before 5 periods", (long long)(v - t0));

    /* A slow reader: one tick kept, the rest dropped, then new ticks again. */
    gr_sleep(10 * period);
    CHECK_EQ(gr_chan_len(gr_timer_chan(t)), 1);
    int64_t before_drain = now_ns();
    CHECK_EQ(recv_within(t, 0, &v), 1); /* the kept one, from the pause */
    CHECK(v < before_drain);
    CHECK_EQ(recv_within(t, LATE, &v), 1); /* the next: fired after the drain */
    if (v <= before_drain)
        FAIL("a tick from the pause was queued behind the kept one (%lld ns before the "
             "drain)", (long long)(before_drain - v));

    /* Stop: 1 (it was ticking), and silence after. */
    CHECK_EQ(gr_timer_stop(t), 1);
    CHECK_EQ(recv_within(t, 3 * period, &v), 0);

    /* Reset to a ticker, then to a one-shot: fires once. */
    CHECK_EQ(gr_timer_reset(t, period, period), 0);
    CHECK_EQ(recv_within(t, LATE, &v), 1);
    CHECK_EQ(gr_timer_reset(t, period, 0), 1);
    CHECK_EQ(recv_within(t, LATE, &v), 1);
    CHECK_EQ(recv_within(t, 3 * period, &v), 0);
    CHECK_EQ(gr_timer_free(t), 0);
}

/* The channel in a select beside another: the timer case fires while the other
 * channel stays silent; a value on the other channel wins over a timer far away. */
static void test_select(void)
{
    gr_chan *other = gr_chan_new(sizeof(long), 1);
    gr_timer *t = gr_timer_new(20 * MS, 0);
    CHECK(other && t);
    long x = 0;
    int64_t v = 0;
    gr_case cs[2] = { { other, GR_RECV, &x, 0 }, { gr_timer_chan(t), GR_RECV, &v, 0 } };
    CHECK_EQ(gr_select(cs, 2, -1), 1);
    CHECK(v > 0);
    CHECK_EQ(gr_timer_reset(t, 3600 * 1000 * MS, 0), 0);
    x = 7;
    CHECK_EQ(gr_chan_send(other, &x), 0);
    x = 0;
    CHECK_EQ(gr_select(cs, 2, -1), 0);
    CHECK_EQ(x, 7);
    CHECK_EQ(gr_timer_stop(t), 1);
    CHECK_EQ(gr_timer_free(t), 0);
    CHECK_EQ(gr_chan_free(other), 0);
}

static gr_timer *waited;
static int waiter_rc = 1;
static int64_t waiter_value;

static void timer_waiter(void *arg)
{
    (void)arg;
    waiter_rc = gr_chan_recv(gr_timer_chan(waited), &waiter_value);
}

static void test_free_busy(void)
{
    waited = gr_timer_new(3600 * 1000 * MS, 0);
    CHECK(waited != NULL);
    gr_id id = SPAWN(timer_waiter, NULL);
    await_goroutine_waiting(id, "chan receive");
    CHECK_EQ(gr_timer_free(waited), -EBUSY);
    CHECK_EQ(gr_timer_reset(waited, 0, 0), 1);
    CHECK_EQ(gr_join(id), 0);
    CHECK_EQ(waiter_rc, 0);
    CHECK(waiter_value > 0);
    CHECK_EQ(gr_timer_free(waited), 0);
}

static void test_bad_input(void)
{
    CHECK(gr_timer_new(MS, -1) == NULL);
    CHECK(gr_timer_chan(NULL) == NULL);
    CHECK_EQ(gr_timer_stop(NULL), -EINVAL);
    CHECK_EQ(gr_timer_reset(NULL, 0, 0), -EINVAL);
    CHECK_EQ(gr_timer_free(NULL), -EINVAL);
}

static void run_all(void *arg)
{
    (void)arg;
    test_one_shot();
    test_stop();
    test_reset();
    test_ticker();
    test_select();
    test_free_busy();
    test_bad_input();
}

int main(void)
{
    watchdog(60);
    CHECK_EQ(gr_init(2), 2);
    /* On a goroutine... */
    CHECK_EQ(gr_main(run_all, NULL), 0);
    /* ...and on a plain thread (receives block the thread). */
    test_one_shot();
    test_stop();
    test_ticker();
    test_bad_input();
    struct gr_stats st = { .size = sizeof st };
    CHECK_EQ(gr_stats(&st), 0);
    CHECK_EQ(st.timers, 0);
    puts("ok");
    return 0;
}
