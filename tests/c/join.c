/*
 * gr_join semantics: it returns 0 only after the goroutine has finished (and its
 * writes are visible); joining a finished id again returns 0; an id never issued
 * is -ESRCH; joining yourself is -EDEADLK; ids <= 0 are -EINVAL. Many joiners of
 * one goroutine all wake. A plain thread (main, or a pthread) may join too: it
 * blocks until the goroutine has finished.
 */
#include "check.h"

#include <pthread.h>
#include <stdatomic.h>

#define UNKNOWN_ID ((gr_id)1 << 50)

static atomic_int finished;
static int plain_data[1000]; /* written by a goroutine without atomics, read after join */

static void slow(void *arg)
{
    (void)arg;
    for (int i = 0; i < 200; i++)
        gr_yield();
    for (int i = 0; i < 1000; i++)
        plain_data[i] = i * 3;
    atomic_store(&finished, 1);
}

static void quick(void *arg)
{
    atomic_fetch_add((atomic_int *)arg, 1);
}

static gr_id target;
static atomic_int target_done;
static atomic_int joined;

static void slow_target(void *arg)
{
    (void)arg;
    for (int i = 0; i < 500; i++)
        gr_yield();
    atomic_store(&target_done, 1);
}

static void joiner(void *arg)
{
    (void)arg;
    CHECK_EQ(gr_join(target), 0);
    CHECK(atomic_load(&target_done));
    atomic_fetch_add(&joined, 1);
}

static void self_joiner(void *arg)
{
    gr_id me = gr_self();
    CHECK(me > 0);
    CHECK_EQ(gr_join(me), -EDEADLK);
    *(int *)arg = 1;
}

static void root(void *arg)
{
    (void)arg;
    /* Join returns after the child has finished; its plain writes are visible. */
    atomic_store(&finished, 0);
    memset(plain_data, 0, sizeof plain_data);
    gr_id c = SPAWN(slow, NULL);
    CHECK_EQ(gr_join(c), 0);
    CHECK(atomic_load(&finished));
    for (int i = 0; i < 1000; i++)
        CHECK_EQ(plain_data[i], i * 3);

    /* A finished id joins again at once, any number of times. */
    CHECK_EQ(gr_join(c), 0);
    CHECK_EQ(gr_join(c), 0);

    /* A child that finished long before the join. */
    atomic_int n = 0;
    gr_id q = SPAWN(quick, &n);
    while (atomic_load(&n) == 0)
        gr_yield();
    for (int i = 0; i < 100; i++)
        gr_yield();
    CHECK_EQ(gr_join(q), 0);

    /* Self, unknown, invalid. */
    CHECK_EQ(gr_join(gr_self()), -EDEADLK);
    int self_ok = 0;
    gr_id s = SPAWN(self_joiner, &self_ok);
    CHECK_EQ(gr_join(s), 0);
    CHECK(self_ok);
    CHECK_EQ(gr_join(UNKNOWN_ID), -ESRCH);
    CHECK_EQ(gr_join(INT64_MAX), -ESRCH);
    CHECK_EQ(gr_join(0), -EINVAL);
    CHECK_EQ(gr_join(-1), -EINVAL);
    CHECK_EQ(gr_join(INT64_MIN), -EINVAL);

    /* 64 joiners of one goroutine all return after it finished. */
    atomic_store(&target_done, 0);
    atomic_store(&joined, 0);
    target = SPAWN(slow_target, NULL);
    gr_id js[64];
    for (int i = 0; i < 64; i++)
        js[i] = SPAWN(joiner, NULL);
    for (int i = 0; i < 64; i++)
        CHECK_EQ(gr_join(js[i]), 0);
    CHECK_EQ(atomic_load(&joined), 64);
}

static void *pthread_joiner(void *arg)
{
    gr_id id = *(gr_id *)arg;
    CHECK_EQ(gr_self(), 0);
    CHECK_EQ(gr_join(id), 0);
    CHECK(atomic_load(&finished));
    return NULL;
}

int main(void)
{
    watchdog(30);

    /* From the main thread (a plain thread): join blocks the thread. */
    gr_id c = SPAWN(slow, NULL);
    CHECK_EQ(gr_join(c), 0);
    CHECK(atomic_load(&finished));
    for (int i = 0; i < 1000; i++)
        CHECK_EQ(plain_data[i], i * 3);
    CHECK_EQ(gr_join(c), 0);
    CHECK_EQ(gr_join(0), -EINVAL);
    CHECK_EQ(gr_join(-7), -EINVAL);
    CHECK_EQ(gr_join(UNKNOWN_ID), -ESRCH);

    /* From goroutines. */
    CHECK_EQ(gr_main(root, NULL), 0);

    /* Four pthreads and the main thread join one goroutine together. */
    atomic_store(&finished, 0);
    gr_id t = SPAWN(slow, NULL);
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        CHECK_EQ(pthread_create(&th[i], NULL, pthread_joiner, &t), 0);
    CHECK_EQ(gr_join(t), 0);
    for (int i = 0; i < 4; i++)
        CHECK_EQ(pthread_join(th[i], NULL), 0);

    CHECK_EQ(gr_wait_all(), 0);
    CHECK_EQ(gr_count(), 0);
    puts("ok");
    return 0;
}
