/*
 * Wait groups: add/done/wait, a counter below zero is -EINVAL and changes nothing,
 * NULL is -EINVAL, waiters park (many goroutines and a plain thread wait on one
 * group), gr_wg_free is -EBUSY while somebody waits, and `wait; free` right after
 * the last done is safe (10,000 times, on 2 processors).
 */
#include "check.h"

#include <pthread.h>
#include <stdatomic.h>

static atomic_long work_done;

static void worker(void *arg)
{
    gr_wg *wg = arg;
    gr_yield();
    atomic_fetch_add(&work_done, 1);
    CHECK_EQ(gr_wg_done(wg), 0);
}

static atomic_int waiters_back;

static void waiter(void *arg)
{
    CHECK_EQ(gr_wg_wait(arg), 0);
    atomic_fetch_add(&waiters_back, 1);
}

static void *thread_waiter(void *arg)
{
    CHECK_EQ(gr_wg_wait(arg), 0);
    atomic_fetch_add(&waiters_back, 1);
    return NULL;
}

static void test_errors(void)
{
    gr_wg *wg = gr_wg_new();
    CHECK(wg != NULL);
    CHECK_EQ(gr_wg_add(NULL, 1), -EINVAL);
    CHECK_EQ(gr_wg_done(NULL), -EINVAL);
    CHECK_EQ(gr_wg_wait(NULL), -EINVAL);
    CHECK_EQ(gr_wg_free(NULL), -EINVAL);
    CHECK_EQ(gr_wg_wait(wg), 0); /* counter 0: returns at once */
    CHECK_EQ(gr_wg_done(wg), -EINVAL);
    CHECK_EQ(gr_wg_add(wg, -1), -EINVAL);
    CHECK_EQ(gr_wg_add(wg, 2), 0);
    CHECK_EQ(gr_wg_add(wg, -3), -EINVAL); /* nothing changes: */
    CHECK_EQ(gr_wg_add(wg, INT64_MAX), -EINVAL);
    CHECK_EQ(gr_wg_add(wg, 0), 0);
    CHECK_EQ(gr_wg_done(wg), 0);
    CHECK_EQ(gr_wg_done(wg), 0);
    CHECK_EQ(gr_wg_done(wg), -EINVAL);
    CHECK_EQ(gr_wg_wait(wg), 0);
    CHECK_EQ(gr_wg_free(wg), 0);
}

static void test_many(void)
{
    gr_wg *wg = gr_wg_new();
    atomic_store(&work_done, 0);
    atomic_store(&waiters_back, 0);
    CHECK_EQ(gr_wg_add(wg, 1), 0); /* held until every waiter is parked */
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, thread_waiter, wg), 0);
    for (int i = 0; i < 10; i++)
        SPAWN(waiter, wg);
    gr_sleep(5000000);
    CHECK_EQ(atomic_load(&waiters_back), 0);
    CHECK_EQ(gr_wg_free(wg), -EBUSY);
    CHECK_EQ(gr_wg_add(wg, 1000), 0);
    for (int i = 0; i < 1000; i++)
        SPAWN(worker, wg);
    CHECK_EQ(gr_wg_done(wg), 0);
    CHECK_EQ(gr_wg_wait(wg), 0);
    CHECK_EQ(atomic_load(&work_done), 1000);
    pthread_join(t, NULL);
    while (atomic_load(&waiters_back) != 11)
        gr_sleep(100000);
    CHECK_EQ(gr_wg_free(wg), 0);
}

static void test_wait_then_free(void)
{
    for (int i = 0; i < 10000; i++) {
        gr_wg *wg = gr_wg_new();
        int n = 1 + i % 4;
        CHECK_EQ(gr_wg_add(wg, n), 0);
        for (int k = 0; k < n; k++)
            SPAWN(worker, wg);
        CHECK_EQ(gr_wg_wait(wg), 0);
        CHECK_EQ(gr_wg_free(wg), 0); /* the last done never touches it again */
    }
}

static void body(void *arg)
{
    (void)arg;
    test_errors();
    test_many();
    test_wait_then_free();
}

int main(void)
{
    watchdog(60);
    test_errors();
    for (int procs = 1; procs <= 2; procs++) {
        gr_maxprocs(procs);
        CHECK_EQ(gr_main(body, NULL), 0);
        gr_wait_all();
    }
    /* A plain thread waits for goroutines. */
    gr_wg *wg = gr_wg_new();
    CHECK_EQ(gr_wg_add(wg, 100), 0);
    atomic_store(&work_done, 0);
    for (int i = 0; i < 100; i++)
        SPAWN(worker, wg);
    CHECK_EQ(gr_wg_wait(wg), 0);
    CHECK_EQ(atomic_load(&work_done), 100);
    CHECK_EQ(gr_wg_free(wg), 0);
    puts("ok");
    return 0;
}
