/*
 * gr_lock_thread keeps a goroutine on its OS thread: three locked goroutines on two
 * processors keep their thread id and pthread_self over 1,000 yields while other
 * goroutines churn (yield, spawn, finish); unlocked goroutines may move. A
 * goroutine that returns while locked does not break the runtime.
 */
#include "check.h"

#include <pthread.h>
#include <stdatomic.h>

#define LOCKED 3
#define YIELDS 1000

/* glibc declares pthread_self() const: read it through a function gcc cannot see into. */
__attribute__((noinline, noipa)) static pthread_t current_pthread(void)
{
    return pthread_self();
}

static atomic_int stop;
static atomic_long churned;

static void short_lived(void *arg)
{
    (void)arg;
    gr_yield();
    atomic_fetch_add(&churned, 1);
}

static void churn(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop)) {
        gr_yield();
        gr_spawn(short_lived, NULL);
        atomic_fetch_add(&churned, 1);
    }
}

struct locked_result {
    long tid;
    int ok;
};

static void locked(void *arg)
{
    struct locked_result *r = arg;
    CHECK_EQ(gr_lock_thread(), 0);
    long tid = thread_id();
    pthread_t self = current_pthread();
    for (int i = 0; i < YIELDS; i++) {
        gr_yield();
        if (thread_id() != tid)
            FAIL("a locked goroutine moved from thread %ld to %ld after %d yields", tid,
                 thread_id(), i);
        if (!pthread_equal(current_pthread(), self))
            FAIL("a locked goroutine saw pthread_self change after %d yields", i);
    }
    CHECK_EQ(gr_unlock_thread(), 0);
    r->tid = tid;
    r->ok = 1;
}

static atomic_long unlocked_moves;

static void unlocked(void *arg)
{
    (void)arg;
    long tid = thread_id(), moves = 0;
    for (int i = 0; i < YIELDS; i++) {
        gr_yield();
        if (thread_id() != tid) {
            moves++;
            tid = thread_id();
        }
    }
    atomic_fetch_add(&unlocked_moves, moves);
}

static void exits_locked(void *arg)
{
    (void)arg;
    CHECK_EQ(gr_lock_thread(), 0);
    gr_yield();
}

int main(void)
{
    watchdog(60);
    CHECK_EQ(gr_init(2), 2);

    gr_id churners[8];
    for (int i = 0; i < 8; i++)
        churners[i] = SPAWN(churn, NULL);

    struct locked_result res[LOCKED];
    gr_id ids[LOCKED], un[4];
    memset(res, 0, sizeof res);
    for (int i = 0; i < LOCKED; i++)
        ids[i] = SPAWN(locked, &res[i]);
    for (int i = 0; i < 4; i++)
        un[i] = SPAWN(unlocked, NULL);
    for (int i = 0; i < LOCKED; i++) {
        CHECK_EQ(gr_join(ids[i]), 0);
        CHECK(res[i].ok);
    }
    for (int i = 0; i < 4; i++)
        CHECK_EQ(gr_join(un[i]), 0);

    /* A goroutine that ends while locked; the runtime goes on. */
    for (int i = 0; i < 4; i++)
        CHECK_EQ(gr_join(SPAWN(exits_locked, NULL)), 0);

    atomic_store(&stop, 1);
    for (int i = 0; i < 8; i++)
        CHECK_EQ(gr_join(churners[i]), 0);
    CHECK_EQ(gr_wait_all(), 0);

    /* And a fresh locked goroutine still works afterwards. */
    struct locked_result again = { 0, 0 };
    CHECK_EQ(gr_join(SPAWN(locked, &again)), 0);
    CHECK(again.ok);

    int distinct = res[0].tid != res[1].tid && res[1].tid != res[2].tid &&
                   res[0].tid != res[2].tid;
    printf("%d locked goroutines stayed on their threads (%s threads); unlocked ones moved "
           "%ld times; %ld churn steps\n",
           LOCKED, distinct ? "distinct" : "shared", atomic_load(&unlocked_moves),
           atomic_load(&churned));
    puts("ok");
    return 0;
}
