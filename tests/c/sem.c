/*
 * Weighted semaphores (gr_sem_*, golang.org/x/sync/semaphore), on 2 processors:
 *   - FIFO with weights: with all 10 tokens taken, a request for 10 queues first,
 *     then two requests for 1; releasing 1 token serves nobody (the big request is
 *     first and does not fit, and the small ones may not pass it), and try_acquire
 *     of 1 fails while they wait; releasing the other 9 serves the big one; its
 *     release serves both small ones;
 *   - a waiter that times out leaves, and the ones behind it move up: the big one
 *     gives up, the small one behind it is then served from the tokens that were
 *     free;
 *   - as a counting semaphore of 3 for 16 goroutines and a plain thread: never more
 *     than 3 holders at once, every acquire served;
 *   - try_acquire 1/0, acquire_timeout 0 only takes free tokens, release beyond the
 *     size and requests beyond it or negative are -EINVAL (nothing changes), free
 *     while waited on is -EBUSY, NULL is -EINVAL / NULL.
 */
#include "check.h"

#include <pthread.h>
#include <stdatomic.h>

#define MS 1000000LL

static gr_sem *sem;
static atomic_int served_order[3], n_served;

struct req {
    int64_t n;
    int tag;
    int64_t timeout;
    int rc;
};

static void requester(void *arg)
{
    struct req *r = arg;
    r->rc = r->timeout < 0 ? gr_sem_acquire(sem, r->n) : gr_sem_acquire_timeout(sem, r->n, r->timeout);
    if (r->rc == 0)
        atomic_store(&served_order[atomic_fetch_add(&n_served, 1)], r->tag);
}

static void test_fifo(void)
{
    sem = gr_sem_new(10);
    CHECK(sem != NULL);
    CHECK_EQ(gr_sem_acquire(sem, 10), 0);
    struct req big = { 10, 1, -1, 1 }, s1 = { 1, 2, -1, 1 }, s2 = { 1, 3, -1, 1 };
    gr_id ib = SPAWN(requester, &big);
    await_goroutine_waiting(ib, "semaphore");
    gr_id i1 = SPAWN(requester, &s1);
    await_goroutine_waiting(i1, "semaphore");
    gr_id i2 = SPAWN(requester, &s2);
    await_goroutine_waiting(i2, "semaphore");
    CHECK_EQ(gr_sem_release(sem, 1), 0);
    gr_sleep(30 * MS);
    CHECK_EQ(atomic_load(&n_served), 0); /* 1 free, but the big request is first */
    CHECK_EQ(gr_sem_try_acquire(sem, 1), 0); /* nor may a newcomer take it */
    CHECK_EQ(gr_sem_free(sem), -EBUSY);
    CHECK_EQ(gr_sem_release(sem, 9), 0);
    CHECK_EQ(gr_join(ib), 0);
    CHECK_EQ(big.rc, 0);
    CHECK_EQ(atomic_load(&n_served), 1);
    CHECK_EQ(atomic_load(&served_order[0]), 1);
    CHECK_EQ(gr_sem_release(sem, 10), 0);
    CHECK_EQ(gr_join(i1), 0);
    CHECK_EQ(gr_join(i2), 0);
    CHECK_EQ(s1.rc, 0);
    CHECK_EQ(s2.rc, 0);
    CHECK_EQ(atomic_load(&n_served), 3);
    CHECK_EQ(gr_sem_release(sem, 2), 0);
    CHECK_EQ(gr_sem_try_acquire(sem, 10), 1); /* all back */
    CHECK_EQ(gr_sem_release(sem, 10), 0);
    CHECK_EQ(gr_sem_free(sem), 0);
    printf("fifo: a request for 10 was served before two later requests for 1\n");
}

static void test_timeout_moves_up(void)
{
    sem = gr_sem_new(10);
    CHECK(sem != NULL);
    atomic_store(&n_served, 0);
    CHECK_EQ(gr_sem_acquire(sem, 8), 0); /* 2 free */
    struct req big = { 5, 1, 60 * MS, 1 }, small = { 2, 2, -1, 1 };
    gr_id ib = SPAWN(requester, &big);
    await_goroutine_waiting(ib, "semaphore");
    gr_id is = SPAWN(requester, &small);
    await_goroutine_waiting(is, "semaphore"); /* behind the big one, though 2 are free */
    int64_t t0 = now_ns();
    CHECK_EQ(gr_join(ib), 0);
    CHECK_EQ(big.rc, -ETIMEDOUT);
    CHECK(now_ns() - t0 < 2000 * MS);
    CHECK_EQ(gr_join(is), 0); /* served when the big one left */
    CHECK_EQ(small.rc, 0);
    CHECK_EQ(gr_sem_try_acquire(sem, 1), 0); /* 8 + 2 taken */
    CHECK_EQ(gr_sem_release(sem, 10), 0);
    /* A timed wait that is served in time returns 0. */
    CHECK_EQ(gr_sem_acquire_timeout(sem, 10, 1000 * MS), 0);
    CHECK_EQ(gr_sem_acquire_timeout(sem, 1, 0), -ETIMEDOUT); /* 0: only if free */
    CHECK_EQ(gr_sem_release(sem, 10), 0);
    CHECK_EQ(gr_sem_acquire_timeout(sem, 1, 0), 0);
    CHECK_EQ(gr_sem_release(sem, 1), 0);
    CHECK_EQ(gr_sem_free(sem), 0);
    printf("timeout: the big request left after its 60 ms and the small one behind it "
           "was served\n");
}

enum { HOLDERS = 3, CLIENTS = 16, ROUNDS = 500 };
static atomic_int inside, max_inside;

static void hold_once(void)
{
    CHECK_EQ(gr_sem_acquire(sem, 1), 0);
    int n = atomic_fetch_add(&inside, 1) + 1;
    int m = atomic_load(&max_inside);
    while (n > m && !atomic_compare_exchange_weak(&max_inside, &m, n)) {
    }
    gr_yield();
    atomic_fetch_sub(&inside, 1);
    CHECK_EQ(gr_sem_release(sem, 1), 0);
}

static void client(void *arg)
{
    (void)arg;
    for (int i = 0; i < ROUNDS; i++)
        hold_once();
}

static void *client_thread(void *arg)
{
    client(arg);
    return NULL;
}

static void test_counting(void)
{
    sem = gr_sem_new(HOLDERS);
    CHECK(sem != NULL);
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, client_thread, NULL), 0);
    for (int i = 0; i < CLIENTS; i++)
        SPAWN(client, NULL);
    CHECK_EQ(gr_wait_all(), 0);
    CHECK_EQ(pthread_join(th, NULL), 0);
    CHECK(atomic_load(&max_inside) <= HOLDERS);
    CHECK_EQ(gr_sem_try_acquire(sem, HOLDERS), 1);
    CHECK_EQ(gr_sem_release(sem, HOLDERS), 0);
    CHECK_EQ(gr_sem_free(sem), 0);
    printf("counting: %d acquires, at most %d holders at once (limit %d)\n",
           (CLIENTS + 1) * ROUNDS, atomic_load(&max_inside), HOLDERS);
}

static void test_errors(void)
{
    CHECK(gr_sem_new(-1) == NULL);
    CHECK_EQ(gr_sem_acquire(NULL, 1), -EINVAL);
    CHECK_EQ(gr_sem_acquire_timeout(NULL, 1, 0), -EINVAL);
    CHECK_EQ(gr_sem_try_acquire(NULL, 1), -EINVAL);
    CHECK_EQ(gr_sem_release(NULL, 1), -EINVAL);
    CHECK_EQ(gr_sem_free(NULL), -EINVAL);
    gr_sem *s = gr_sem_new(4);
    CHECK(s != NULL);
    CHECK_EQ(gr_sem_acquire(s, -1), -EINVAL);
    CHECK_EQ(gr_sem_acquire(s, 5), -EINVAL); /* more than the size: never servable */
    CHECK_EQ(gr_sem_acquire_timeout(s, 5, -1), -EINVAL);
    CHECK_EQ(gr_sem_try_acquire(s, -1), -EINVAL);
    CHECK_EQ(gr_sem_try_acquire(s, 5), 0);
    CHECK_EQ(gr_sem_release(s, -1), -EINVAL);
    CHECK_EQ(gr_sem_release(s, 1), -EINVAL); /* nothing taken */
    CHECK_EQ(gr_sem_acquire(s, 0), 0);
    CHECK_EQ(gr_sem_try_acquire(s, 3), 1);
    CHECK_EQ(gr_sem_release(s, 2), 0);
    CHECK_EQ(gr_sem_release(s, 2), -EINVAL); /* only 1 still taken */
    CHECK_EQ(gr_sem_release(s, 1), 0);
    CHECK_EQ(gr_sem_try_acquire(s, 4), 1);
    CHECK_EQ(gr_sem_release(s, 4), 0);
    CHECK_EQ(gr_sem_free(s), 0);
    gr_sem *zero = gr_sem_new(0);
    CHECK(zero != NULL);
    CHECK_EQ(gr_sem_try_acquire(zero, 0), 1);
    CHECK_EQ(gr_sem_acquire(zero, 1), -EINVAL);
    CHECK_EQ(gr_sem_free(zero), 0);
}

static void run(void *arg)
{
    (void)arg;
    test_errors();
    test_fifo();
    test_timeout_moves_up();
    test_counting();
}

int main(void)
{
    watchdog(60);
    CHECK_EQ(gr_init(2), 2);
    CHECK_EQ(gr_main(run, NULL), 0);
    puts("ok");
    return 0;
}
