/*
 * 200,000 goroutines on all processors: half spawned from the main (plain) thread,
 * half from one spawner goroutine per processor. Each adds its number to an atomic
 * sum and yields once; the sum proves every one ran exactly once, and the set of
 * worker threads they ran on proves more than one processor was used.
 */
#include "check.h"

#include <stdatomic.h>

#define N 200000

static atomic_llong sum;
static atomic_int ran;
static long tids[N + 1]; /* the thread each goroutine ran on (written once each) */

static void work(void *arg)
{
    long i = (long)(intptr_t)arg;
    tids[i] = thread_id();
    atomic_fetch_add(&sum, i);
    gr_yield();
    atomic_fetch_add(&ran, 1);
}

struct range {
    long from, to;
};

static void spawner(void *arg)
{
    struct range *r = arg;
    for (long i = r->from; i < r->to; i++)
        SPAWN(work, (void *)(intptr_t)i);
}

static int cmp_long(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;
    return (x > y) - (x < y);
}

int main(void)
{
    watchdog(60);
    int np = gr_init(0);
    CHECK(np > 0);

    int64_t t0 = now_ns();
    /* 1..N/2 from the main thread. */
    for (long i = 1; i <= N / 2; i++)
        SPAWN(work, (void *)(intptr_t)i);
    /* N/2+1..N from np spawner goroutines. */
    struct range *ranges = calloc((size_t)np, sizeof *ranges);
    long per = (N / 2 + np - 1) / np;
    for (int p = 0; p < np; p++) {
        ranges[p].from = N / 2 + 1 + p * per;
        ranges[p].to = ranges[p].from + per;
        if (ranges[p].to > N + 1)
            ranges[p].to = N + 1;
        SPAWN(spawner, &ranges[p]);
    }
    CHECK_EQ(gr_wait_all(), 0);
    int64_t t1 = now_ns();

    CHECK_EQ(atomic_load(&ran), N);
    CHECK_EQ(atomic_load(&sum), (long long)N * (N + 1) / 2);
    CHECK_EQ(gr_count(), 0);

    qsort(tids + 1, N, sizeof tids[0], cmp_long);
    int threads = 0;
    for (long i = 1; i <= N; i++) {
        CHECK(tids[i] > 0);
        if (i == 1 || tids[i] != tids[i - 1])
            threads++;
    }
    printf("%d goroutines on %d processors ran on %d worker threads in %.1f ms\n", N, np,
           threads, (t1 - t0) / 1e6);
    if (np > 1 && threads < 2)
        FAIL("%d processors but every goroutine ran on one thread", np);
    free(ranges);
    puts("ok");
    return 0;
}
