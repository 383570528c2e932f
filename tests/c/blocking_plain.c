/*
 * gr_blocking outside the usual case:
 *   - from a plain thread (the main thread, and a pthread that never used the
 *     runtime) it just calls the function, on the calling thread, and returns 0;
 *   - gr_blocking(NULL, ...) is -EINVAL everywhere, and calls nothing;
 *   - nested: a function run by gr_blocking may itself call gr_blocking (it runs
 *     inline, still on the same thread);
 *   - in a goroutine, the function runs on the goroutine's current thread (the
 *     goroutine's stack: a local's address is visible to it), and the goroutine
 *     continues afterwards (maybe on another thread).
 */
#include "check.h"

#include <pthread.h>

struct call {
    long tid;
    int ran;
    int nested_rc;
    void *stack_addr;
};

static void record(void *arg)
{
    struct call *c = arg;
    c->tid = thread_id();
    c->ran++;
    c->stack_addr = __builtin_frame_address(0);
}

static void nested(void *arg)
{
    struct call *c = arg;
    struct call inner = { 0 };
    c->tid = thread_id();
    c->ran++;
    c->nested_rc = gr_blocking(record, &inner);
    CHECK_EQ(inner.ran, 1);
    CHECK_EQ(inner.tid, c->tid);
}

static void *plain(void *arg)
{
    (void)arg;
    struct call c = { 0 };
    CHECK_EQ(gr_blocking(record, &c), 0);
    CHECK_EQ(c.ran, 1);
    CHECK_EQ(c.tid, thread_id());
    CHECK_EQ(gr_blocking(NULL, &c), -EINVAL);
    CHECK_EQ(c.ran, 1);
    return NULL;
}

static void in_goroutine(void *arg)
{
    (void)arg;
    int here;
    struct call c = { 0 };
    CHECK_EQ(gr_blocking(record, &c), 0);
    CHECK_EQ(c.ran, 1);
    /* The function ran on this goroutine's stack, below our frame. */
    long long dist = (long long)((char *)&here - (char *)c.stack_addr);
    CHECK(dist > 0 && dist < 64 * 1024);
    CHECK_EQ(gr_blocking(NULL, NULL), -EINVAL);
    struct call n = { 0 };
    CHECK_EQ(gr_blocking(nested, &n), 0);
    CHECK_EQ(n.ran, 1);
    CHECK_EQ(n.nested_rc, 0);
    gr_yield();
    CHECK_EQ(gr_sleep(1000000), 0);
}

int main(void)
{
    watchdog(20);
    struct call c = { 0 };
    /* Before the runtime has started, and after. */
    CHECK_EQ(gr_blocking(record, &c), 0);
    CHECK_EQ(c.ran, 1);
    CHECK_EQ(c.tid, thread_id());
    CHECK_EQ(gr_blocking(NULL, NULL), -EINVAL);
    struct call n = { 0 };
    CHECK_EQ(gr_blocking(nested, &n), 0);
    CHECK_EQ(n.ran, 1);
    CHECK_EQ(n.nested_rc, 0);
    CHECK_EQ(n.tid, thread_id());

    CHECK_EQ(gr_main(in_goroutine, NULL), 0);
    CHECK_EQ(gr_blocking(record, &c), 0);
    CHECK_EQ(c.ran, 2);
    CHECK_EQ(c.tid, thread_id());

    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, plain, NULL), 0);
    CHECK_EQ(pthread_join(th, NULL), 0);

    /* Many goroutines, each a few calls. */
    for (int i = 0; i < 1000; i++)
        SPAWN(in_goroutine, NULL);
    CHECK_EQ(gr_wait_all(), 0);
    puts("ok");
    return 0;
}
