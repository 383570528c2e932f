/*
 * Mutexes: lock/unlock/trylock, -EBUSY from trylock while held, -EPERM for unlock
 * of an unlocked mutex (nothing changes), -EBUSY from free while locked or waited
 * on, NULL is -EINVAL, and contention across 2 processors: goroutines and a plain
 * thread increment a plain counter under the mutex (nothing lost), with holders
 * that yield and sleep inside the critical section.
 */
#include "check.h"

#include <pthread.h>
#include <stdatomic.h>

static gr_mutex *mu;
static long counter;       /* guarded by mu */
static atomic_int inside;  /* holders at once: must stay <= 1 */

enum { GOROUTINES = 8, ITERS = 20000 };

static void critical(long i)
{
    if (atomic_fetch_add(&inside, 1) != 0)
        FAIL("two holders at once");
    long c = counter;
    if (i % 1000 == 0)
        gr_yield(); /* park-able work inside the lock */
    if (i % 5000 == 1)
        gr_sleep(100000);
    counter = c + 1;
    atomic_fetch_sub(&inside, 1);
}

static void incr(void *arg)
{
    (void)arg;
    for (long i = 0; i < ITERS; i++) {
        if (i % 7 == 0) {
            int rc;
            while ((rc = gr_mutex_trylock(mu)) == -EBUSY)
                gr_yield();
            CHECK_EQ(rc, 0);
        } else {
            CHECK_EQ(gr_mutex_lock(mu), 0);
        }
        critical(i);
        CHECK_EQ(gr_mutex_unlock(mu), 0);
    }
}

static void *thread_incr(void *arg)
{
    (void)arg;
    for (long i = 0; i < ITERS; i++) {
        CHECK_EQ(gr_mutex_lock(mu), 0);
        critical(i + 1);
        CHECK_EQ(gr_mutex_unlock(mu), 0);
    }
    return NULL;
}

static void hold_briefly(void *arg)
{
    (void)arg;
    CHECK_EQ(gr_mutex_lock(mu), 0);
    gr_sleep(2000000);
    CHECK_EQ(gr_mutex_unlock(mu), 0);
}

static void blocked_locker(void *arg)
{
    (void)arg;
    CHECK_EQ(gr_mutex_lock(mu), 0);
    CHECK_EQ(gr_mutex_unlock(mu), 0);
}

static void test_basic(void)
{
    gr_mutex *m = gr_mutex_new();
    CHECK(m != NULL);
    CHECK_EQ(gr_mutex_lock(NULL), -EINVAL);
    CHECK_EQ(gr_mutex_trylock(NULL), -EINVAL);
    CHECK_EQ(gr_mutex_unlock(NULL), -EINVAL);
    CHECK_EQ(gr_mutex_free(NULL), -EINVAL);
    CHECK_EQ(gr_mutex_unlock(m), -EPERM);
    CHECK_EQ(gr_mutex_trylock(m), 0);
    CHECK_EQ(gr_mutex_trylock(m), -EBUSY);
    CHECK_EQ(gr_mutex_free(m), -EBUSY);
    CHECK_EQ(gr_mutex_unlock(m), 0);
    CHECK_EQ(gr_mutex_unlock(m), -EPERM);
    CHECK_EQ(gr_mutex_lock(m), 0);
    CHECK_EQ(gr_mutex_unlock(m), 0);
    CHECK_EQ(gr_mutex_free(m), 0);
}

static void body(void *arg)
{
    (void)arg;
    test_basic();
    /* free is -EBUSY while a goroutine waits */
    mu = gr_mutex_new();
    CHECK_EQ(gr_mutex_lock(mu), 0);
    gr_id w = SPAWN(blocked_locker, NULL);
    gr_sleep(2000000);
    CHECK_EQ(gr_mutex_unlock(mu), 0);
    gr_join(w);
    CHECK_EQ(gr_mutex_free(mu), 0);

    /* contention */
    mu = gr_mutex_new();
    counter = 0;
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, thread_incr, NULL), 0);
    gr_id ids[GOROUTINES];
    for (int i = 0; i < GOROUTINES; i++)
        ids[i] = SPAWN(incr, NULL);
    for (int i = 0; i < GOROUTINES; i++)
        gr_join(ids[i]);
    pthread_join(t, NULL);
    CHECK_EQ(counter, (long)(GOROUTINES + 1) * ITERS);
    CHECK_EQ(gr_mutex_free(mu), 0);
}

int main(void)
{
    watchdog(60);
    test_basic();
    gr_init(2);
    int64_t t0 = now_ns();
    CHECK_EQ(gr_main(body, NULL), 0);
    printf("contended: %.1f ns per lock/unlock\n", (double)(now_ns() - t0) / ((GOROUTINES + 1) * ITERS));
    /* A plain thread waits while a goroutine holds it. */
    mu = gr_mutex_new();
    SPAWN(hold_briefly, NULL);
    gr_sleep(500000);
    CHECK_EQ(gr_mutex_lock(mu), 0);
    CHECK_EQ(gr_mutex_unlock(mu), 0);
    gr_wait_all();
    CHECK_EQ(gr_mutex_free(mu), 0);
    puts("ok");
    return 0;
}
