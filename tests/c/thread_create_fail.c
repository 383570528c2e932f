/*
 * Worker thread creation fails (reliability catalogue entry 27). Owns the proof of
 * what the runtime does when pthread_create fails (RLIMIT_NPROC, a cgroup's pids.max,
 * no memory for a thread stack), without needing root, seccomp or a real limit: this
 * program defines pthread_create itself, and the dynamic linker binds the library's
 * calls to it (an executable's definition interposes on libc's), so a switch makes
 * every thread creation fail with EAGAIN and counts the attempts.
 *
 * `thread_create_fail` (make test): the runtime is running, creation starts failing.
 *   1. 1,000 goroutines spawned while no thread can be made all run, on the workers
 *      that exist; no worker is counted that does not exist (gr_stats.threads as
 *      before, /proc Threads as before); the runtime did try (attempts counted);
 *   2. gr_blocking calls still complete while the processor cannot be handed to a new
 *      thread (the others wait for it instead);
 *   3. once threads can be made again, eight overlapping gr_blocking(usleep(200 ms))
 *      calls finish in well under the 800 ms they take on the 2 old workers: the
 *      runtime makes threads again, no state was left half-made.
 *
 * `thread_create_fail start` (make test, tests/c_tests.rs thread_create_fail_at_start):
 * the runtime starts while no thread can be made. Accepted: gr_init or gr_spawn
 * return a negative errno value (today -EAGAIN: no sysmon thread, nothing changed)
 * and then nothing is left alive and a later spawn works, or the goroutine runs once
 * threads can be made again; never a hang (bounded at 5 s).
 */
#include "check.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>

#define MS 1000000LL

static atomic_int fail_creation, attempts;

int pthread_create(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *), void *arg)
{
    static int (*real)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);
    if (!real)
        real = (int (*)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *))dlsym(
            RTLD_NEXT, "pthread_create");
    if (atomic_load(&fail_creation)) {
        atomic_fetch_add(&attempts, 1);
        return EAGAIN;
    }
    return real(t, attr, fn, arg);
}

static atomic_int ran;

static void work(void *arg)
{
    (void)arg;
    gr_yield();
    atomic_fetch_add(&ran, 1);
}

static void sleep_200ms(void *arg)
{
    (void)arg;
    usleep(200000);
}

static void blocker(void *arg)
{
    (void)arg;
    CHECK_EQ(gr_blocking(sleep_200ms, NULL), 0);
    atomic_fetch_add(&ran, 1);
}

static uint64_t stat_threads(void)
{
    struct gr_stats st = { .size = sizeof st };
    CHECK_EQ(gr_stats(&st), 0);
    return st.threads;
}

static void while_running(void)
{
    CHECK_EQ(gr_init(2), 2);
    CHECK_EQ(gr_join(SPAWN(work, NULL)), 0); /* a worker exists */
    atomic_store(&ran, 0);
    uint64_t threads = stat_threads();
    long os_threads = proc_status("Threads");

    atomic_store(&fail_creation, 1);
    for (int i = 0; i < 1000; i++)
        SPAWN(work, NULL);
    for (int i = 0; i < 4; i++)
        SPAWN(blocker, NULL);
    CHECK_EQ(gr_wait_all(), 0);
    CHECK_EQ(atomic_load(&ran), 1004);
    CHECK_EQ(stat_threads(), threads);
    CHECK_EQ(proc_status("Threads"), os_threads);
    int tried = atomic_load(&attempts);
    atomic_store(&fail_creation, 0);
    printf("with thread creation failing (%d attempts refused): 1,000 goroutines and 4 "
           "gr_blocking calls ran on the %llu existing workers\n",
           tried, (unsigned long long)threads);
    if (tried == 0)
        FAIL("the runtime never tried to make a thread: the test proved nothing");

    /* Threads can be made again: blocking calls overlap on new threads (on the 2
     * existing workers alone, 8 calls of 200 ms would take 800 ms). */
    atomic_store(&ran, 0);
    int64_t t0 = now_ns();
    for (int i = 0; i < 8; i++)
        SPAWN(blocker, NULL);
    CHECK_EQ(gr_wait_all(), 0);
    double ms = (now_ns() - t0) / 1e6;
    CHECK_EQ(atomic_load(&ran), 8);
    printf("afterwards: 8 overlapping gr_blocking(usleep(200 ms)) took %.0f ms, %llu workers\n",
           ms, (unsigned long long)stat_threads());
    if (stat_threads() <= threads)
        FAIL("no new worker thread after thread creation works again");
    if (ms > 600)
        FAIL("8 blocking calls of 200 ms took %.0f ms: too few new threads after the failure",
             ms);
}

static void at_start(void)
{
    atomic_store(&fail_creation, 1);
    int np = gr_init(2);
    gr_id id = gr_spawn(work, NULL);
    printf("with thread creation failing at start: gr_init = %d, gr_spawn = %lld\n", np,
           (long long)id);
    if (id < 0) {
        CHECK_EQ(gr_count(), 0);
        atomic_store(&fail_creation, 0);
        CHECK_EQ(gr_join(SPAWN(work, NULL)), 0);
    } else {
        CHECK(id > 0);
        sleep_ms(100);
        atomic_store(&fail_creation, 0);
        int64_t t0 = now_ns();
        CHECK_EQ(gr_join(id), 0);
        printf("the goroutine ran %.0f ms after threads could be made again\n",
               (now_ns() - t0) / 1e6);
    }
    CHECK_EQ(gr_wait_all(), 0);
}

int main(int argc, char **argv)
{
    watchdog(argc > 1 ? 5 : 30);
    if (argc > 1 && strcmp(argv[1], "start") == 0)
        at_start();
    else
        while_running();
    puts("ok");
    return 0;
}
