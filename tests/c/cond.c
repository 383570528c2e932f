/*
 * Condition variables (gr_cond_*), on 2 processors:
 *   - signal wakes one waiter (the longest waiting), broadcast wakes all, and each
 *     woken waiter holds the mutex when it returns;
 *   - a timed wait returns -ETIMEDOUT no earlier than its time, with the mutex
 *     held again; a signal before the time wins;
 *   - no signal is lost to a waiter that is timing out: untimed consumers wait
 *     for tokens while "noise" waiters come and go with 20 us timeouts (passing on
 *     a signal they get, as a waiter with another predicate must); every token is
 *     consumed and the consumers all return within 5 s of the last one;
 *   - a queue with goroutine and plain-thread producers and consumers: every item
 *     consumed exactly once;
 *   - -EPERM from a wait without the mutex (nothing waited), -EBUSY from free while
 *     waited on, NULL is -EINVAL / NULL.
 */
#include "check.h"

#include <pthread.h>
#include <stdatomic.h>

#define MS 1000000LL
#define US 1000LL

static gr_mutex *mu;
static gr_cond *cv;

/* ------------------------------------------------------------ signal, broadcast */

enum { WAITERS = 5 };
static int turn_order[WAITERS], woken_n; /* under mu */
static atomic_int waiting;

static void waiter(void *arg)
{
    int i = (int)(intptr_t)arg;
    CHECK_EQ(gr_mutex_lock(mu), 0);
    atomic_fetch_add(&waiting, 1);
    CHECK_EQ(gr_cond_wait(cv), 0);
    /* Holds the mutex: trylock from here fails. */
    CHECK_EQ(gr_mutex_trylock(mu), -EBUSY);
    turn_order[woken_n++] = i;
    CHECK_EQ(gr_mutex_unlock(mu), 0);
}

static int woken(void)
{
    CHECK_EQ(gr_mutex_lock(mu), 0);
    int n = woken_n;
    CHECK_EQ(gr_mutex_unlock(mu), 0);
    return n;
}

static void test_signal_broadcast(void)
{
    gr_id ids[WAITERS];
    for (int i = 0; i < WAITERS; i++) {
        ids[i] = SPAWN(waiter, (void *)(intptr_t)i);
        await_goroutine_waiting(ids[i], "cond wait"); /* queued in this order */
    }
    CHECK_EQ(gr_cond_free(cv), -EBUSY);
    CHECK_EQ(gr_cond_signal(cv), 0);
    CHECK_EQ(gr_join(ids[0]), 0); /* the first to wait */
    gr_sleep(20 * MS);
    CHECK_EQ(woken(), 1); /* one signal, one waiter */
    CHECK_EQ(turn_order[0], 0);
    CHECK_EQ(gr_cond_signal(cv), 0);
    CHECK_EQ(gr_join(ids[1]), 0);
    CHECK_EQ(gr_cond_broadcast(cv), 0);
    CHECK_EQ(gr_wait_all(), 0);
    CHECK_EQ(woken(), WAITERS);
    /* Nobody waits: signal and broadcast are no-ops. */
    CHECK_EQ(gr_cond_signal(cv), 0);
    CHECK_EQ(gr_cond_broadcast(cv), 0);
    printf("signal woke the longest waiting, one at a time; broadcast the other %d\n",
           WAITERS - 2);
}

/* ------------------------------------------------------------ timeout */

static int signalled_flag; /* under mu */

static void late_signaller(void *arg)
{
    (void)arg;
    gr_sleep(20 * MS);
    CHECK_EQ(gr_mutex_lock(mu), 0);
    signalled_flag = 1;
    CHECK_EQ(gr_cond_signal(cv), 0);
    CHECK_EQ(gr_mutex_unlock(mu), 0);
}

static void test_timeout(void)
{
    CHECK_EQ(gr_mutex_lock(mu), 0);
    int64_t t0 = now_ns();
    CHECK_EQ(gr_cond_wait_timeout(cv, 30 * MS), -ETIMEDOUT);
    int64_t took = now_ns() - t0;
    if (took < 30 * MS)
        FAIL("timed out after %lld ns, before 30 ms", (long long)took);
    CHECK(took < 2000 * MS);
    CHECK_EQ(gr_mutex_trylock(mu), -EBUSY); /* held again */
    CHECK_EQ(gr_cond_wait_timeout(cv, 0), -ETIMEDOUT);
    CHECK_EQ(gr_mutex_trylock(mu), -EBUSY);
    /* A signal before the time wins. */
    signalled_flag = 0;
    gr_id id = SPAWN(late_signaller, NULL);
    t0 = now_ns();
    while (!signalled_flag) {
        int rc = gr_cond_wait_timeout(cv, 5000 * MS);
        CHECK_EQ(rc, 0);
    }
    CHECK(now_ns() - t0 < 4000 * MS);
    CHECK_EQ(gr_mutex_unlock(mu), 0);
    CHECK_EQ(gr_join(id), 0);
}

static void timeout_on_goroutine(void *arg)
{
    (void)arg;
    test_timeout();
}

/* ------------------------------------------------------------ no lost signal */

enum { CONSUMERS = 4, NOISE = 4, TOKENS = 3000 };
static long tokens;       /* under mu */
static long consumed;     /* under mu */
static int producing_done; /* under mu */
static atomic_int noise_stop;
static atomic_long noise_timeouts, noise_passed;

static void consumer(void *arg)
{
    (void)arg;
    CHECK_EQ(gr_mutex_lock(mu), 0);
    for (;;) {
        while (tokens == 0 && !producing_done)
            CHECK_EQ(gr_cond_wait(cv), 0);
        if (tokens == 0)
            break;
        tokens--;
        consumed++;
    }
    CHECK_EQ(gr_mutex_unlock(mu), 0);
}

static void noise(void *arg)
{
    (void)arg;
    while (!atomic_load(&noise_stop)) {
        CHECK_EQ(gr_mutex_lock(mu), 0);
        int rc = gr_cond_wait_timeout(cv, 20 * US);
        if (rc == 0) {
            /* Not our predicate: pass the signal on. */
            atomic_fetch_add(&noise_passed, 1);
            CHECK_EQ(gr_cond_signal(cv), 0);
        } else {
            CHECK_EQ(rc, -ETIMEDOUT);
            atomic_fetch_add(&noise_timeouts, 1);
        }
        CHECK_EQ(gr_mutex_unlock(mu), 0);
        if (rc != 0)
            gr_yield();
    }
}

static void test_no_lost_signal(void)
{
    gr_id cons[CONSUMERS];
    for (int i = 0; i < CONSUMERS; i++)
        cons[i] = SPAWN(consumer, NULL);
    for (int i = 0; i < NOISE; i++)
        SPAWN(noise, NULL);
    for (int i = 0; i < TOKENS; i++) {
        CHECK_EQ(gr_mutex_lock(mu), 0);
        tokens++;
        CHECK_EQ(gr_cond_signal(cv), 0);
        CHECK_EQ(gr_mutex_unlock(mu), 0);
        if (i % 4 == 0)
            gr_yield();
    }
    /* Every token is consumed without another signal: none was lost. */
    int64_t t0 = now_ns();
    for (;;) {
        CHECK_EQ(gr_mutex_lock(mu), 0);
        long c = consumed;
        CHECK_EQ(gr_mutex_unlock(mu), 0);
        if (c == TOKENS)
            break;
        if (now_ns() - t0 > 5000 * MS)
            FAIL("%ld of %d tokens consumed 5 s after the last signal: a signal was lost",
                 c, TOKENS);
        gr_sleep(MS);
    }
    CHECK_EQ(gr_mutex_lock(mu), 0);
    producing_done = 1;
    CHECK_EQ(gr_cond_broadcast(cv), 0);
    CHECK_EQ(gr_mutex_unlock(mu), 0);
    for (int i = 0; i < CONSUMERS; i++)
        CHECK_EQ(gr_join(cons[i]), 0);
    atomic_store(&noise_stop, 1);
    CHECK_EQ(gr_wait_all(), 0);
    printf("no lost signal: %d tokens consumed; noise waiters timed out %ld times and "
           "passed on %ld signals\n",
           TOKENS, atomic_load(&noise_timeouts), atomic_load(&noise_passed));
}

/* ------------------------------------------------------------ a queue */

enum { QCAP = 16, PRODUCERS = 3, ITEMS = 5000 };
static long q[QCAP];
static int qhead, qlen;         /* under mu */
static gr_cond *not_empty, *not_full;
static atomic_long sum_in, sum_out, n_out;

static void put(long v)
{
    CHECK_EQ(gr_mutex_lock(mu), 0);
    while (qlen == QCAP)
        CHECK_EQ(gr_cond_wait(not_full), 0);
    q[(qhead + qlen++) % QCAP] = v;
    CHECK_EQ(gr_cond_signal(not_empty), 0);
    CHECK_EQ(gr_mutex_unlock(mu), 0);
}

static long take(void)
{
    CHECK_EQ(gr_mutex_lock(mu), 0);
    while (qlen == 0)
        CHECK_EQ(gr_cond_wait(not_empty), 0);
    long v = q[qhead];
    qhead = (qhead + 1) % QCAP;
    qlen--;
    CHECK_EQ(gr_cond_signal(not_full), 0);
    CHECK_EQ(gr_mutex_unlock(mu), 0);
    return v;
}

static void producer(void *arg)
{
    long base = (long)(intptr_t)arg * ITEMS;
    for (long i = 1; i <= ITEMS; i++) {
        put(base + i);
        atomic_fetch_add(&sum_in, base + i);
    }
}

static void queue_consumer(void *arg)
{
    long n = (long)(intptr_t)arg;
    for (long i = 0; i < n; i++) {
        atomic_fetch_add(&sum_out, take());
        atomic_fetch_add(&n_out, 1);
    }
}

static void *thread_producer(void *arg)
{
    producer(arg);
    return NULL;
}

static void *thread_consumer(void *arg)
{
    queue_consumer(arg);
    return NULL;
}

static void test_queue(void)
{
    not_empty = gr_cond_new(mu);
    not_full = gr_cond_new(mu);
    CHECK(not_empty && not_full);
    pthread_t tp, tc;
    CHECK_EQ(pthread_create(&tp, NULL, thread_producer, (void *)(intptr_t)PRODUCERS), 0);
    CHECK_EQ(pthread_create(&tc, NULL, thread_consumer, (void *)(intptr_t)ITEMS), 0);
    for (long i = 0; i < PRODUCERS; i++) {
        SPAWN(producer, (void *)(intptr_t)i);
        SPAWN(queue_consumer, (void *)(intptr_t)ITEMS);
    }
    CHECK_EQ(gr_wait_all(), 0);
    CHECK_EQ(pthread_join(tp, NULL), 0);
    CHECK_EQ(pthread_join(tc, NULL), 0);
    CHECK_EQ(atomic_load(&n_out), (PRODUCERS + 1) * ITEMS);
    CHECK_EQ(atomic_load(&sum_out), atomic_load(&sum_in));
    CHECK_EQ(qlen, 0);
    CHECK_EQ(gr_cond_free(not_empty), 0);
    CHECK_EQ(gr_cond_free(not_full), 0);
    printf("queue: %d items through a 16-slot queue, each once\n", (PRODUCERS + 1) * ITEMS);
}

/* ------------------------------------------------------------ errors */

static void test_errors(void)
{
    CHECK(gr_cond_new(NULL) == NULL);
    CHECK_EQ(gr_cond_wait(NULL), -EINVAL);
    CHECK_EQ(gr_cond_wait_timeout(NULL, 0), -EINVAL);
    CHECK_EQ(gr_cond_signal(NULL), -EINVAL);
    CHECK_EQ(gr_cond_broadcast(NULL), -EINVAL);
    CHECK_EQ(gr_cond_free(NULL), -EINVAL);
    /* The mutex not locked: -EPERM at once, nothing waited, the mutex still free. */
    int64_t t0 = now_ns();
    CHECK_EQ(gr_cond_wait(cv), -EPERM);
    CHECK_EQ(gr_cond_wait_timeout(cv, 5000 * MS), -EPERM);
    CHECK(now_ns() - t0 < 1000 * MS);
    CHECK_EQ(gr_mutex_trylock(mu), 0);
    CHECK_EQ(gr_mutex_unlock(mu), 0);
}

int main(void)
{
    watchdog(60);
    CHECK_EQ(gr_init(2), 2);
    mu = gr_mutex_new();
    CHECK(mu != NULL);
    cv = gr_cond_new(mu);
    CHECK(cv != NULL);
    test_errors();
    test_signal_broadcast();
    CHECK_EQ(gr_main(timeout_on_goroutine, NULL), 0);
    test_timeout(); /* the same from the plain main thread */
    test_no_lost_signal();
    test_queue();
    CHECK_EQ(gr_cond_free(cv), 0);
    CHECK_EQ(gr_mutex_free(mu), 0);
    puts("ok");
    return 0;
}
