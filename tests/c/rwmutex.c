/*
 * Reader/writer mutexes (gr_rwmutex_*), on 2 processors:
 *   - readers hold it together: 8 reader goroutines all inside at once;
 *   - a writer holds it alone: goroutines and a plain thread mixing reads and
 *     writes, each checking on entry that nobody is inside who should not be (no
 *     reader while a writer is in, no second writer), and a plain counter the
 *     writers increment comes out exact;
 *   - a writer is not starved by a stream of readers: 4 readers overlap so that the
 *     lock is never free of readers, and a writer that asks still gets in (within
 *     2 s), while readers that arrive after it wait for it (how many raced its
 *     request is printed);
 *   - a reader that leaves on another CPU than it came in on (its read count is
 *     kept per CPU): a plain thread pinned to CPU 0 takes read locks, moves to
 *     CPU 1 and drops them, with a writer waiting meanwhile; the writer gets in
 *     when the last of them leaves, and not before;
 *   - try variants, -EPERM for unlocks of what is not locked (nothing changes),
 *     -EBUSY from free while held or waited on, NULL is -EINVAL.
 */
#include "check.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#define MS 1000000LL

static gr_rwmutex *rw;
static atomic_int readers_in, writers_in;

/* ------------------------------------------------------------ together */

enum { TOGETHER = 8 };
static atomic_int max_readers_in;

static void reader_together(void *arg)
{
    (void)arg;
    CHECK_EQ(gr_rwmutex_rlock(rw), 0);
    int n = atomic_fetch_add(&readers_in, 1) + 1;
    int m = atomic_load(&max_readers_in);
    while (n > m && !atomic_compare_exchange_weak(&max_readers_in, &m, n)) {
    }
    /* Stay until every reader is in (bounded: 5 s). */
    int64_t t0 = now_ns();
    while (atomic_load(&max_readers_in) < TOGETHER && now_ns() - t0 < 5000 * MS)
        gr_sleep(MS);
    atomic_fetch_sub(&readers_in, 1);
    CHECK_EQ(gr_rwmutex_runlock(rw), 0);
}

static void test_readers_together(void)
{
    for (int i = 0; i < TOGETHER; i++)
        SPAWN(reader_together, NULL);
    CHECK_EQ(gr_wait_all(), 0);
    CHECK_EQ(atomic_load(&max_readers_in), TOGETHER);
    printf("readers together: %d of %d inside at once\n", atomic_load(&max_readers_in),
           TOGETHER);
}

/* ------------------------------------------------------------ alone */

static long shared; /* written by writers only, under the write lock */

static void enter_read(void)
{
    atomic_fetch_add(&readers_in, 1);
    if (atomic_load(&writers_in) != 0)
        FAIL("a reader got in while a writer holds the lock");
}

static void enter_write(void)
{
    if (atomic_fetch_add(&writers_in, 1) != 0)
        FAIL("two writers at once");
    if (atomic_load(&readers_in) != 0)
        FAIL("a writer got in while %d readers hold the lock", atomic_load(&readers_in));
}

static void mixed(long seed, int iters)
{
    for (int i = 0; i < iters; i++) {
        if ((seed + i) % 5 == 0) {
            CHECK_EQ(gr_rwmutex_lock(rw), 0);
            enter_write();
            long v = shared;
            if (i % 64 == 0)
                gr_yield();
            shared = v + 1;
            atomic_fetch_sub(&writers_in, 1);
            CHECK_EQ(gr_rwmutex_unlock(rw), 0);
        } else {
            CHECK_EQ(gr_rwmutex_rlock(rw), 0);
            enter_read();
            if (i % 32 == 0)
                gr_yield();
            atomic_fetch_sub(&readers_in, 1);
            CHECK_EQ(gr_rwmutex_runlock(rw), 0);
        }
    }
}

enum { ALONE_G = 8, ALONE_ITERS = 20000 };

static void mixed_goroutine(void *arg)
{
    mixed((long)(intptr_t)arg, ALONE_ITERS);
}

static void *mixed_thread(void *arg)
{
    mixed((long)(intptr_t)arg, ALONE_ITERS);
    return NULL;
}

static void test_writer_alone(void)
{
    shared = 0;
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, mixed_thread, (void *)(intptr_t)3), 0);
    for (long i = 0; i < ALONE_G; i++)
        SPAWN(mixed_goroutine, (void *)(intptr_t)i);
    CHECK_EQ(gr_wait_all(), 0);
    CHECK_EQ(pthread_join(th, NULL), 0);
    long writes = 0;
    for (long g = 0; g < ALONE_G; g++)
        for (int i = 0; i < ALONE_ITERS; i++)
            writes += (g + i) % 5 == 0;
    for (int i = 0; i < ALONE_ITERS; i++)
        writes += (3 + i) % 5 == 0;
    CHECK_EQ(shared, writes);
    printf("writer alone: %ld writes and %ld reads, no overlap\n", writes,
           (long)(ALONE_G + 1) * ALONE_ITERS - writes);
}

/* ------------------------------------------------------------ not starved */

enum { STREAM = 4 };
static atomic_int stop_stream, writer_asking, writer_done;
static atomic_long reads_done, late_reads_before_writer;

static void stream_reader(void *arg)
{
    long i = (long)(intptr_t)arg;
    while (!atomic_load(&stop_stream)) {
        int asked = atomic_load(&writer_asking);
        CHECK_EQ(gr_rwmutex_rlock(rw), 0);
        /* Asked before we did, and not done: a waiting writer holds new readers
         * back; we got in before it only if we raced its request. */
        if (asked && !atomic_load(&writer_done))
            atomic_fetch_add(&late_reads_before_writer, 1);
        atomic_fetch_add(&readers_in, 1);
        /* Overlapping holds: the lock is never free of readers. */
        gr_sleep((1 + i % 3) * MS);
        atomic_fetch_sub(&readers_in, 1);
        CHECK_EQ(gr_rwmutex_runlock(rw), 0);
        atomic_fetch_add(&reads_done, 1);
    }
}

static void test_writer_not_starved(void)
{
    for (long i = 0; i < STREAM; i++)
        SPAWN(stream_reader, (void *)(intptr_t)i);
    while (atomic_load(&reads_done) < 100)
        gr_sleep(MS);
    atomic_store(&writer_asking, 1);
    int64_t t0 = now_ns();
    CHECK_EQ(gr_rwmutex_lock(rw), 0);
    int64_t waited = now_ns() - t0;
    CHECK_EQ(atomic_load(&readers_in), 0);
    atomic_store(&writer_done, 1);
    CHECK_EQ(gr_rwmutex_unlock(rw), 0);
    atomic_store(&stop_stream, 1);
    CHECK_EQ(gr_wait_all(), 0);
    printf("writer not starved: in after %.1f ms with %d readers streaming; %ld reads "
           "began after its request and before it got in (racing it)\n",
           waited / 1e6, STREAM, atomic_load(&late_reads_before_writer));
    if (waited > 2000 * MS)
        FAIL("the writer waited %.0f ms behind a stream of readers", waited / 1e6);
}

/* ------------------------------------------------------------ moved */

static atomic_int moved_writer_in;

static void moved_writer(void *arg)
{
    (void)arg;
    CHECK_EQ(gr_rwmutex_lock(rw), 0);
    atomic_store(&moved_writer_in, 1);
    CHECK_EQ(gr_rwmutex_unlock(rw), 0);
}

static void pin_to(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    CHECK_EQ(sched_setaffinity(0, sizeof set, &set), 0);
    sched_yield();
    CHECK_EQ(sched_getcpu(), cpu);
}

static void *moving_reader(void *arg)
{
    (void)arg;
    pin_to(0);
    CHECK_EQ(gr_rwmutex_rlock(rw), 0);
    CHECK_EQ(gr_rwmutex_rlock(rw), 0);
    gr_id w = gr_spawn(moved_writer, NULL);
    CHECK(w > 0);
    await_goroutine_waiting(w, "rwmutex write");
    pin_to(1);
    CHECK_EQ(gr_rwmutex_runlock(rw), 0); /* below 0 on CPU 1: checked, still held */
    usleep(20000);
    if (atomic_load(&moved_writer_in))
        FAIL("the writer got in while a reader that moved CPUs held the lock");
    CHECK_EQ(gr_rwmutex_tryrlock(rw), -EBUSY); /* the writer waits: new readers wait */
    CHECK_EQ(gr_rwmutex_runlock(rw), 0);       /* the last reader lets it in */
    CHECK_EQ(gr_join(w), 0);
    CHECK_EQ(atomic_load(&moved_writer_in), 1);
    /* Unlocked again (CPU 0 counted it in twice, CPU 1 out twice). */
    CHECK_EQ(gr_rwmutex_runlock(rw), -EPERM);
    CHECK_EQ(gr_rwmutex_trylock(rw), 0);
    CHECK_EQ(gr_rwmutex_unlock(rw), 0);
    return NULL;
}

static void test_reader_moves_cpu(void)
{
    cpu_set_t set;
    CHECK_EQ(sched_getaffinity(0, sizeof set, &set), 0);
    if (!CPU_ISSET(0, &set) || !CPU_ISSET(1, &set)) {
        printf("reader moves CPU: not run (CPUs 0 and 1 are not both available)\n");
        return;
    }
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, moving_reader, NULL), 0);
    CHECK_EQ(pthread_join(th, NULL), 0);
    printf("reader moves CPU: read-locked on CPU 0, unlocked on CPU 1, writer in after\n");
}

/* ------------------------------------------------------------ errors */

static void rlock_and_release(void *arg)
{
    (void)arg;
    CHECK_EQ(gr_rwmutex_rlock(rw), 0);
    CHECK_EQ(gr_rwmutex_runlock(rw), 0);
}

static void test_errors(void)
{
    CHECK(gr_rwmutex_rlock(NULL) == -EINVAL);
    CHECK(gr_rwmutex_runlock(NULL) == -EINVAL);
    CHECK(gr_rwmutex_lock(NULL) == -EINVAL);
    CHECK(gr_rwmutex_unlock(NULL) == -EINVAL);
    CHECK(gr_rwmutex_tryrlock(NULL) == -EINVAL);
    CHECK(gr_rwmutex_trylock(NULL) == -EINVAL);
    CHECK(gr_rwmutex_free(NULL) == -EINVAL);
    gr_rwmutex *m = gr_rwmutex_new();
    CHECK(m != NULL);
    CHECK_EQ(gr_rwmutex_runlock(m), -EPERM);
    CHECK_EQ(gr_rwmutex_unlock(m), -EPERM);
    /* Read-held: more readers, no writer; runlock twice is -EPERM the second time. */
    CHECK_EQ(gr_rwmutex_rlock(m), 0);
    CHECK_EQ(gr_rwmutex_tryrlock(m), 0);
    CHECK_EQ(gr_rwmutex_trylock(m), -EBUSY);
    CHECK_EQ(gr_rwmutex_unlock(m), -EPERM);
    CHECK_EQ(gr_rwmutex_free(m), -EBUSY);
    CHECK_EQ(gr_rwmutex_runlock(m), 0);
    CHECK_EQ(gr_rwmutex_runlock(m), 0);
    CHECK_EQ(gr_rwmutex_runlock(m), -EPERM);
    /* Write-held: no readers, no second writer, no read unlock. */
    CHECK_EQ(gr_rwmutex_lock(m), 0);
    CHECK_EQ(gr_rwmutex_tryrlock(m), -EBUSY);
    CHECK_EQ(gr_rwmutex_trylock(m), -EBUSY);
    CHECK_EQ(gr_rwmutex_runlock(m), -EPERM);
    CHECK_EQ(gr_rwmutex_free(m), -EBUSY);
    /* A reader waits for the writer: free is -EBUSY while it does. */
    rw = m;
    gr_id id = SPAWN(rlock_and_release, NULL);
    await_goroutine_waiting(id, "rwmutex read");
    CHECK_EQ(gr_rwmutex_free(m), -EBUSY);
    CHECK_EQ(gr_rwmutex_unlock(m), 0);
    CHECK_EQ(gr_join(id), 0);
    CHECK_EQ(gr_rwmutex_unlock(m), -EPERM);
    /* Still usable after every refusal. */
    CHECK_EQ(gr_rwmutex_trylock(m), 0);
    CHECK_EQ(gr_rwmutex_unlock(m), 0);
    CHECK_EQ(gr_rwmutex_free(m), 0);
}

int main(void)
{
    watchdog(60);
    CHECK_EQ(gr_init(2), 2);
    rw = gr_rwmutex_new();
    CHECK(rw != NULL);
    test_readers_together();
    test_writer_alone();
    test_writer_not_starved();
    test_reader_moves_cpu();
    CHECK_EQ(gr_rwmutex_free(rw), 0);
    test_errors();
    puts("ok");
    return 0;
}
