/*
 * gr_once_do (Go's sync.Once), on 2 processors:
 *   - 1,000 goroutines and 4 plain threads race on one static gr_once whose function
 *     takes 30 ms: it runs exactly once, and every caller returns only after it has
 *     returned (each sees its effect, a flag it sets last);
 *   - later calls return at once without running anything;
 *   - a gr_once set to GR_ONCE_INIT, and one in zeroed heap memory, work the same;
 *   - the function calling gr_once_do on its own once gets -EDEADLK (and the outer
 *     call completes); NULL once or function is -EINVAL.
 */
#include "check.h"

#include <pthread.h>
#include <stdatomic.h>

#define MS 1000000LL

static gr_once once; /* static storage: zero */
static atomic_int runs, done_flag, returned_early, returned;

static void init_fn(void *arg)
{
    (void)arg;
    atomic_fetch_add(&runs, 1);
    gr_sleep(30 * MS); /* long enough that every caller arrives while it runs */
    atomic_store(&done_flag, 1);
}

static void caller(void)
{
    CHECK_EQ(gr_once_do(&once, init_fn, NULL), 0);
    if (!atomic_load(&done_flag))
        atomic_fetch_add(&returned_early, 1);
    atomic_fetch_add(&returned, 1);
}

static void caller_goroutine(void *arg)
{
    (void)arg;
    caller();
}

static void *caller_thread(void *arg)
{
    (void)arg;
    caller();
    return NULL;
}

static gr_once recursive_once = GR_ONCE_INIT;
static int inner_rc = 1;

static void recursive_fn(void *arg)
{
    (void)arg;
    inner_rc = gr_once_do(&recursive_once, recursive_fn, NULL);
}

static void count_fn(void *arg)
{
    atomic_fetch_add((atomic_int *)arg, 1);
}

enum { GOROUTINES = 1000, THREADS = 4 };

int main(void)
{
    watchdog(60);
    CHECK_EQ(gr_init(2), 2);
    pthread_t th[THREADS];
    for (long i = 0; i < GOROUTINES; i++) {
        SPAWN(caller_goroutine, NULL);
        if (i % 250 == 0)
            CHECK_EQ(pthread_create(&th[i / 250], NULL, caller_thread, NULL), 0);
    }
    CHECK_EQ(gr_wait_all(), 0);
    for (int i = 0; i < THREADS; i++)
        CHECK_EQ(pthread_join(th[i], NULL), 0);
    CHECK_EQ(atomic_load(&runs), 1);
    CHECK_EQ(atomic_load(&returned), GOROUTINES + THREADS);
    CHECK_EQ(atomic_load(&returned_early), 0);
    printf("%d racing callers: the function ran once, every caller returned after it\n",
           GOROUTINES + THREADS);

    /* Done: later calls return at once and run nothing. */
    int64_t t0 = now_ns();
    CHECK_EQ(gr_once_do(&once, init_fn, NULL), 0);
    CHECK(now_ns() - t0 < 20 * MS);
    CHECK_EQ(atomic_load(&runs), 1);

    /* GR_ONCE_INIT, and zeroed heap memory. */
    atomic_int n = 0;
    gr_once local = GR_ONCE_INIT;
    CHECK_EQ(gr_once_do(&local, count_fn, &n), 0);
    CHECK_EQ(gr_once_do(&local, count_fn, &n), 0);
    CHECK_EQ(atomic_load(&n), 1);
    gr_once *heap = calloc(1, sizeof *heap);
    CHECK(heap != NULL);
    CHECK_EQ(gr_once_do(heap, count_fn, &n), 0);
    CHECK_EQ(gr_once_do(heap, count_fn, &n), 0);
    CHECK_EQ(atomic_load(&n), 2);
    free(heap);

    /* Recursion: the inner call says so instead of waiting for itself. */
    CHECK_EQ(gr_once_do(&recursive_once, recursive_fn, NULL), 0);
    CHECK_EQ(inner_rc, -EDEADLK);

    CHECK_EQ(gr_once_do(NULL, count_fn, &n), -EINVAL);
    gr_once fresh = GR_ONCE_INIT;
    CHECK_EQ(gr_once_do(&fresh, NULL, NULL), -EINVAL);
    CHECK_EQ(gr_once_do(&fresh, count_fn, &n), 0); /* the NULL call ran nothing */
    CHECK_EQ(atomic_load(&n), 3);
    puts("ok");
    return 0;
}
