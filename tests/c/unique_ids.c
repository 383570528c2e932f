/*
 * Goroutine ids: 100,000 of them, spawned from the main thread and from four
 * spawner goroutines at once, are all > 0 and distinct, and gr_self() inside each
 * goroutine equals the id its spawn returned. gr_self() is 0 on a plain thread.
 */
#include "check.h"

#include <pthread.h>

#define N 100000

static gr_id spawned[N]; /* what gr_spawn returned for goroutine i */
static gr_id seen[N];    /* what gr_self() said inside goroutine i */

static void record(void *arg)
{
    long i = (long)(intptr_t)arg;
    seen[i] = gr_self();
}

static void spawner(void *arg)
{
    long from = (long)(intptr_t)arg;
    for (long i = from; i < from + N / 8; i++)
        spawned[i] = SPAWN(record, (void *)(intptr_t)i);
}

static int cmp_id(const void *a, const void *b)
{
    gr_id x = *(const gr_id *)a, y = *(const gr_id *)b;
    return (x > y) - (x < y);
}

static void *plain_thread(void *arg)
{
    (void)arg;
    CHECK_EQ(gr_self(), 0);
    return NULL;
}

int main(void)
{
    watchdog(60);
    CHECK_EQ(gr_self(), 0);

    /* Half from the main thread, half from four goroutines concurrently. */
    gr_id sp[4];
    for (int k = 0; k < 4; k++)
        sp[k] = SPAWN(spawner, (void *)(intptr_t)(N / 2 + k * (N / 8)));
    for (long i = 0; i < N / 2; i++)
        spawned[i] = SPAWN(record, (void *)(intptr_t)i);
    for (int k = 0; k < 4; k++)
        CHECK_EQ(gr_join(sp[k]), 0);
    CHECK_EQ(gr_wait_all(), 0);
    CHECK_EQ(gr_self(), 0);

    for (long i = 0; i < N; i++) {
        if (spawned[i] <= 0)
            FAIL("goroutine %ld: spawn returned %lld", i, (long long)spawned[i]);
        if (seen[i] != spawned[i])
            FAIL("goroutine %ld: gr_self() = %lld inside, spawn returned %lld", i,
                 (long long)seen[i], (long long)spawned[i]);
    }
    gr_id *all = malloc(sizeof spawned + 4 * sizeof(gr_id));
    memcpy(all, spawned, sizeof spawned);
    memcpy(all + N, sp, sizeof sp);
    qsort(all, N + 4, sizeof *all, cmp_id);
    for (long i = 1; i < N + 4; i++)
        if (all[i] == all[i - 1])
            FAIL("id %lld was given to two goroutines", (long long)all[i]);

    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, plain_thread, NULL), 0);
    CHECK_EQ(pthread_join(t, NULL), 0);
    printf("%d ids distinct, from %lld to %lld\n", N + 4, (long long)all[0],
           (long long)all[N + 3]);
    free(all);
    puts("ok");
    return 0;
}
