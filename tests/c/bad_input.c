/*
 * Every bad input and every call from a plain thread has a defined result (a
 * negative errno value, or documented behaviour), never a crash: NULL functions,
 * bad ids, bad stack sizes, thread locking outside a goroutine, double init,
 * gr_strerror of any code.
 */
#include "check.h"

#include <limits.h>
#include <pthread.h>

static void noop(void *arg)
{
    (void)arg;
}

static void check_plain_thread(void)
{
    CHECK_EQ(gr_self(), 0);
    gr_yield(); /* sched_yield: returns */
    CHECK_EQ(gr_lock_thread(), -EPERM);
    int rc = gr_unlock_thread();
    if (rc != -EPERM && rc != 0)
        FAIL("gr_unlock_thread() on a plain thread = %d", rc);
}

static void *plain_thread(void *arg)
{
    (void)arg;
    check_plain_thread();
    CHECK_EQ(gr_spawn(NULL, NULL), -EINVAL);
    CHECK_EQ(gr_join(0), -EINVAL);
    return NULL;
}

int main(void)
{
    watchdog(30);

    /* Before anything started the runtime. */
    const char *v = gr_version();
    CHECK(v != NULL && v[0] != '\0');
    CHECK_EQ(gr_count(), 0);
    check_plain_thread();

    /* Spawning. */
    CHECK_EQ(gr_spawn(NULL, NULL), -EINVAL);
    CHECK_EQ(gr_spawn(NULL, (void *)1), -EINVAL);
    gr_attr attr = { 0, "x", 0 };
    CHECK_EQ(gr_spawn_attr(NULL, NULL, &attr), -EINVAL);
    CHECK_EQ(gr_spawn_attr(NULL, NULL, NULL), -EINVAL);
    gr_attr tiny = { 1, "tiny", 0 }, page = { 4096, "page", 0 },
            huge = { (size_t)2 << 30, "huge", 0 }, max = { SIZE_MAX, "max", 0 };
    CHECK_EQ(gr_spawn_attr(noop, NULL, &tiny), -EINVAL);
    CHECK_EQ(gr_spawn_attr(noop, NULL, &page), -EINVAL);
    CHECK_EQ(gr_spawn_attr(noop, NULL, &huge), -EINVAL);
    CHECK_EQ(gr_spawn_attr(noop, NULL, &max), -EINVAL);
    /* A NULL attr is either the defaults or -EINVAL, never a crash. */
    gr_id d = gr_spawn_attr(noop, NULL, NULL);
    if (d > 0)
        CHECK_EQ(gr_join(d), 0);
    else
        CHECK_EQ(d, -EINVAL);
    CHECK_EQ(gr_main(NULL, NULL), -EINVAL);

    /* Joining. */
    CHECK_EQ(gr_join(0), -EINVAL);
    CHECK_EQ(gr_join(-1), -EINVAL);
    CHECK_EQ(gr_join(INT64_MIN), -EINVAL);
    CHECK_EQ(gr_join(INT64_MAX), -ESRCH);
    CHECK_EQ(gr_join((gr_id)1 << 50), -ESRCH);

    /* Init and maxprocs. */
    int np = gr_maxprocs(0);
    CHECK(np > 0);
    CHECK_EQ(gr_maxprocs(-5), np); /* n < 1 only queries */
    CHECK_EQ(gr_maxprocs(INT_MIN), np);
    CHECK_EQ(gr_join(gr_spawn(noop, NULL)), 0); /* the runtime is now running */
    CHECK_EQ(gr_init(0), -EALREADY);
    CHECK_EQ(gr_init(4), -EALREADY);
    CHECK_EQ(gr_init(-3), -EALREADY);
    CHECK_EQ(gr_maxprocs(0), np);

    /* gr_strerror names every code, known or not. */
    static const int codes[] = { 0,       -EINVAL, -ESRCH,   -EDEADLK, -EAGAIN, -ENOMEM,
                                 -EPERM,  -EBUSY,  -EALREADY, -EPIPE,  -1,      -4095,
                                 -99999,  1,       12345,    INT_MIN,  INT_MAX };
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        const char *s = gr_strerror(codes[i]);
        if (s == NULL || s[0] == '\0')
            FAIL("gr_strerror(%d) is NULL or empty", codes[i]);
    }
    CHECK(strcmp(gr_strerror(-EINVAL), gr_strerror(-ESRCH)) != 0);

    /* Plain threads other than main. */
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, plain_thread, NULL), 0);
    CHECK_EQ(pthread_join(t, NULL), 0);

    CHECK_EQ(gr_wait_all(), 0);
    CHECK_EQ(gr_count(), 0);
    printf("gr_version() = %s; gr_strerror(-EINVAL) = %s\n", v, gr_strerror(-EINVAL));
    puts("ok");
    return 0;
}
