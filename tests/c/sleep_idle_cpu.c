/*
 * An idle runtime uses no CPU: with one goroutine asleep for 1 s (a timer pending,
 * nothing runnable), the whole process uses < 20 ms of CPU time, whether the main
 * thread waits in gr_join, gr_wait_all or gr_main (after a warm-up: the first start
 * of the runtime creates threads and stacks). Also with 1,000 goroutines asleep for
 * 1 s: from the moment they have all parked until the first one is due, < 20 ms.
 * Workers must block (in epoll_wait until the next timer, or on a futex), and
 * sysmon must back off.
 */
#include "check.h"

#include <stdatomic.h>

#define MS 1000000LL

static atomic_int woke, parked;
static long long cpu_at_parked;
static int64_t t_parked;
static int nsleepers;
static long long cpu_at_idle_end;
static int64_t t_idle_end;

static void sleeper(void *arg)
{
    int64_t ns = (int64_t)(intptr_t)arg;
    int64_t t0 = now_ns();
    if (atomic_fetch_add(&parked, 1) + 1 == nsleepers) {
        cpu_at_parked = cpu_us();
        t_parked = now_ns();
    }
    CHECK_EQ(gr_sleep(ns), 0);
    if (now_ns() - t0 < ns)
        FAIL("gr_sleep(%lld) returned after %lld ns", (long long)ns, (long long)(now_ns() - t0));
    atomic_fetch_add(&woke, 1);
}

static void main_body(void *arg)
{
    sleeper(arg);
}

static void measure(const char *how, int mode, int n)
{
    atomic_store(&woke, 0);
    atomic_store(&parked, 0);
    nsleepers = mode == 2 ? 1 : n;
    sleep_ms(50); /* let the previous round's workers settle */
    long long c0 = cpu_us();
    int64_t t0 = now_ns();
    gr_id id = 0;
    if (mode != 2)
        for (int i = 0; i < n; i++)
            id = SPAWN(sleeper, (void *)(intptr_t)(1000 * MS + (n > 1 ? i * 100 * MS / n : 0)));
    if (n > 1) {
        while (atomic_load(&parked) < n)
            sleep_ms(1);
        sleep_ms(900 - (now_ns() - t0) / MS);
        cpu_at_idle_end = cpu_us();
        t_idle_end = now_ns();
        CHECK_EQ(atomic_load(&woke), 0);
    }
    if (mode == 0)
        CHECK_EQ(gr_join(id), 0);
    if (mode == 0 || mode == 1)
        CHECK_EQ(gr_wait_all(), 0);
    if (mode == 2)
        CHECK_EQ(gr_main(main_body, (void *)(intptr_t)(1000 * MS)), 0);
    long long used = cpu_us() - c0;
    double wall = (now_ns() - t0) / 1e6;
    CHECK_EQ(atomic_load(&woke), mode == 2 ? 1 : n);
    if (n > 1) { /* the idle part only: after the spawns, before the first wake-up */
        used = cpu_at_idle_end - cpu_at_parked;
        wall = (t_idle_end - t_parked) / 1e6;
        how = "gr_wait_all (idle part)";
    }
    printf("%4d sleeping goroutine(s), main thread in %-23s: %.2f ms of CPU in %.0f ms\n", n, how,
           used / 1000.0, wall);
    if (used >= 20000)
        FAIL("%s: the runtime used %.1f ms of CPU while %d goroutine(s) slept 1 s", how,
             used / 1000.0, n);
}

int main(void)
{
    watchdog(30);
    CHECK(gr_init(0) > 0);
    CHECK_EQ(gr_main(main_body, (void *)(intptr_t)1), 0); /* warm-up */
    measure("gr_join", 0, 1);
    measure("gr_wait_all", 1, 1);
    measure("gr_main", 2, 1);
    measure("gr_wait_all", 1, 1000);
    puts("ok");
    return 0;
}
