/*
 * Goroutines that never yield (a 300 ms busy loop; no call into the runtime) on
 * 2 processors do not stop timers or the other goroutines:
 *   1. one spinner: a counter goroutine keeps counting and a goroutine sleeping
 *      1 ms in a loop wakes within 50 ms every time while it spins;
 *   2. a goroutine waiting on a pipe is woken by a plain thread's write during the
 *      spin, within 100 ms;
 *   3. two spinners (as many as processors): measured and printed only. sysmon adds
 *      a rescue processor only for a thread asleep in a system call, not for a busy
 *      loop (that would oversubscribe the CPUs), so nothing else runs until one of
 *      them ends; with GR_TEST_STRICT=1 in the environment the same bounds as for
 *      one spinner are enforced.
 */
#include "check.h"

#include <pthread.h>
#include <stdatomic.h>

#define MS 1000000LL

static atomic_int stop, spinning;
static atomic_long counter;
static atomic_llong worst_sleep_ns;

static void max_into(atomic_llong *a, long long v)
{
    long long m = atomic_load(a);
    while (v > m && !atomic_compare_exchange_weak(a, &m, v)) {
    }
}

struct spin {
    long counted;
    int64_t ns;
};

static void spinner(void *arg)
{
    struct spin *s = arg;
    atomic_fetch_add(&spinning, 1);
    long c0 = atomic_load(&counter);
    int64_t t0 = now_ns();
    while (now_ns() - t0 < 300 * MS) {
    } /* never yields */
    s->counted = atomic_load(&counter) - c0;
    s->ns = now_ns() - t0;
    atomic_fetch_sub(&spinning, 1);
}

static void counter_loop(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop)) {
        atomic_fetch_add(&counter, 1);
        gr_sleep(100000); /* 0.1 ms: a goroutine that parks often */
    }
}

static void sleeper_loop(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop)) {
        int64_t t0 = now_ns();
        CHECK_EQ(gr_sleep(1 * MS), 0);
        if (atomic_load(&spinning))
            max_into(&worst_sleep_ns, now_ns() - t0);
    }
}

static int p[2];
static int64_t t_write, t_woke;

static void pipe_reader(void *arg)
{
    (void)arg;
    char c;
    CHECK_EQ(gr_read(p[0], &c, 1), 1);
    t_woke = now_ns();
}

static void *late_writer(void *arg)
{
    (void)arg;
    sleep_ms(100);
    t_write = now_ns();
    CHECK_EQ(write(p[1], "x", 1), 1);
    return NULL;
}

static void round_(int nspin, int64_t limit_ns, int enforce)
{
    atomic_store(&stop, 0);
    atomic_store(&worst_sleep_ns, 0);
    t_woke = t_write = 0;
    gr_id c = SPAWN(counter_loop, NULL), s = SPAWN(sleeper_loop, NULL);
    gr_id r = SPAWN(pipe_reader, NULL);
    gr_sleep(10 * MS);
    struct spin sp[2] = { { 0, 0 }, { 0, 0 } };
    gr_id ids[2];
    for (int i = 0; i < nspin; i++)
        ids[i] = SPAWN(spinner, &sp[i]);
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, late_writer, NULL), 0);
    for (int i = 0; i < nspin; i++)
        CHECK_EQ(gr_join(ids[i]), 0);
    CHECK_EQ(pthread_join(th, NULL), 0);
    CHECK_EQ(gr_join(r), 0);
    atomic_store(&stop, 1);
    CHECK_EQ(gr_join(c), 0);
    CHECK_EQ(gr_join(s), 0);
    double wake = (t_woke - t_write) / 1e6;
    printf("%d spinner(s) on 2 processors: counter +%ld/+%ld during the spins, 1 ms sleeps took "
           "at most %.3f ms, a pipe reader woke %.3f ms after the write\n", nspin, sp[0].counted,
           sp[1].counted, atomic_load(&worst_sleep_ns) / 1e6, wake);
    if (!enforce)
        return;
    for (int i = 0; i < nspin; i++)
        if (sp[i].counted < 100)
            FAIL("the counter advanced only %ld times while spinner %d spun", sp[i].counted, i);
    if (atomic_load(&worst_sleep_ns) > limit_ns)
        FAIL("a 1 ms sleep took %.1f ms next to %d spinner(s)", atomic_load(&worst_sleep_ns) / 1e6,
             nspin);
    if (wake > 100)
        FAIL("the pipe reader woke %.1f ms after the write", wake);
}

static void body(void *arg)
{
    (void)arg;
    round_(1, 50 * MS, 1);
    const char *strict = getenv("GR_TEST_STRICT");
    round_(2, 100 * MS, strict && *strict == '1');
}

int main(void)
{
    watchdog(30);
    CHECK_EQ(pipe(p), 0);
    CHECK_EQ(gr_init(2), 2);
    CHECK_EQ(gr_main(body, NULL), 0);
    CHECK_EQ(gr_wait_all(), 0);
    puts("ok");
    return 0;
}
