/*
 * A context's deadline fires on time under load (issue 17): with 10,000 goroutines
 * yielding in a loop on every processor, goroutines bound to contexts with 20-40 ms
 * deadlines, parked in gr_sleep(10 s) or gr_chan_recv, return -ETIMEDOUT within 2 ms
 * of the deadline (never before it) in 19 rounds of 20, and within 50 ms in every one.
 * The round let off is for the host: CI once saw round 0 return 4.2 ms late while the
 * other rounds took 4-17 us, about the time a worker thread waits for one of 2 cores
 * that something outside the process holds. A deadline the runtime served late by
 * design (at sysmon's next look, or with the next deadline) is late in every round,
 * and one that never fired is caught by the 50 ms.
 *
 * The scheduler looks at timers every 61 schedules and in sysmon; a deadline's cancel
 * runs right after the switch in which its timer fired. The lateness of each round is
 * printed, with the median and the worst, and beside them the same for a plain
 * gr_sleep of the same length with no context (the timer heap's own lateness under
 * this load, not checked here: sleep_busy_yielder is its test), so that a slow run
 * can be told from a slow deadline.
 */
#include "check.h"

#include <stdatomic.h>

#define MS 1000000LL

enum { YIELDERS = 10000, ROUNDS = 20 };

static atomic_int stop;
static atomic_long yields;

static void yielder(void *arg)
{
    (void)arg;
    long n = 0;
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        gr_yield();
        n++;
    }
    atomic_fetch_add(&yields, n);
}

struct timed {
    gr_chan *c;
    int64_t ns; /* for the plain sleep */
    int rc;
    int64_t returned_at;
};

static void sleep_plain(void *arg)
{
    struct timed *t = arg;
    t->rc = gr_sleep(t->ns);
    t->returned_at = now_ns();
}

static void sleep_bound(void *arg)
{
    struct timed *t = arg;
    t->rc = gr_sleep(10000 * MS);
    t->returned_at = now_ns();
}

static void recv_bound(void *arg)
{
    struct timed *t = arg;
    long v;
    t->rc = gr_chan_recv(t->c, &v);
    t->returned_at = now_ns();
}

static int cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void run(void *arg)
{
    (void)arg;
    for (int i = 0; i < YIELDERS; i++)
        SPAWN(yielder, NULL);
    gr_sleep(50 * MS); /* let them all run */
    gr_chan *c = gr_chan_new(sizeof(long), 0);
    int64_t late[ROUNDS], plain[ROUNDS];
    for (int r = 0; r < ROUNDS; r++) {
        struct timed p = { .ns = (20 + r) * MS, .rc = 1 };
        int64_t p0 = now_ns();
        gr_id pid = SPAWN(sleep_plain, &p);
        CHECK_EQ(gr_join(pid), 0);
        CHECK_EQ(p.rc, 0);
        plain[r] = p.returned_at - (p0 + p.ns);

        const int64_t ns = (20 + r) * MS;
        struct timed t = { .c = c, .rc = 1 };
        int64_t t0 = now_ns();
        gr_ctx *ctx = gr_ctx_with_timeout(NULL, ns);
        CHECK(ctx);
        gr_id id = gr_spawn_ctx(ctx, r % 2 ? recv_bound : sleep_bound, &t);
        CHECK(id > 0);
        CHECK_EQ(gr_join(id), 0);
        CHECK_EQ(t.rc, -ETIMEDOUT);
        /* t0 + ns is at or before the context's own deadline: the lateness printed is
         * an upper bound, and a return before t0 + ns would be early for sure. */
        if (t.returned_at < t0 + ns)
            FAIL("round %d: returned %lld us before the deadline", r,
                 (long long)((t0 + ns - t.returned_at) / 1000));
        late[r] = t.returned_at - (t0 + ns);
        printf("round %2d (%s): %.3f ms late (a plain gr_sleep: %.3f ms)\n", r,
               r % 2 ? "gr_chan_recv" : "gr_sleep", late[r] / 1e6, plain[r] / 1e6);
        CHECK_EQ(gr_ctx_free(ctx), 0);
    }
    atomic_store(&stop, 1);
    CHECK_EQ(gr_chan_free(c), 0);
    qsort(late, ROUNDS, sizeof late[0], cmp);
    qsort(plain, ROUNDS, sizeof plain[0], cmp);
    printf("deadline lateness under %d yielders: median %.3f ms, worst %.3f ms "
           "(plain gr_sleep: median %.3f ms, worst %.3f ms)\n",
           YIELDERS, late[ROUNDS / 2] / 1e6, late[ROUNDS - 1] / 1e6, plain[ROUNDS / 2] / 1e6,
           plain[ROUNDS - 1] / 1e6);
    /* late[] is sorted: the worst round may miss the 2 ms, not by more than 50 ms. */
    if (late[ROUNDS - 2] > latency_bound(2 * MS))
        FAIL("two or more deadlines fired over %.0f ms late under load; the second worst: "
             "%.3f ms", latency_bound(2 * MS) / 1e6, late[ROUNDS - 2] / 1e6);
    if (late[ROUNDS - 1] > latency_bound(50 * MS))
        FAIL("a deadline fired %.3f ms late under load (bound: %.0f ms)",
             late[ROUNDS - 1] / 1e6, latency_bound(50 * MS) / 1e6);
}

int main(void)
{
    watchdog(60);
    CHECK_EQ(gr_main(run, NULL), 0);
    CHECK_EQ(gr_wait_all(), 0);
    printf("the yielders yielded %ld times meanwhile\n", atomic_load(&yields));
    printf("ok\n");
    return 0;
}
