/*
 * An idle runtime uses no CPU: after 10,000 goroutines have run (and yielded) on
 * every processor and finished, the process uses less than 50 ms of CPU time in
 * 500 ms of sleep. Checked twice: right after the work, and after a second burst.
 */
#include "check.h"

#include <stdatomic.h>

static atomic_int ran;

static void work(void *arg)
{
    (void)arg;
    for (int i = 0; i < 10; i++)
        gr_yield();
    atomic_fetch_add(&ran, 1);
}

static void burst(void)
{
    for (int i = 0; i < 10000; i++)
        SPAWN(work, NULL);
    CHECK_EQ(gr_wait_all(), 0);
}

static void check_idle(const char *when)
{
    long long c0 = cpu_us();
    int64_t t0 = now_ns();
    sleep_ms(500);
    long long used = cpu_us() - c0;
    printf("%s: %.1f ms of CPU in %.0f ms idle (%ld threads)\n", when, used / 1000.0,
           (now_ns() - t0) / 1e6, proc_status("Threads"));
    if (used >= 50000)
        FAIL("%s: the idle runtime used %.1f ms of CPU in 500 ms", when, used / 1000.0);
}

int main(void)
{
    watchdog(30);
    burst();
    check_idle("after the first burst");
    burst();
    sleep_ms(50);
    check_idle("after the second burst");
    CHECK_EQ(atomic_load(&ran), 20000);
    puts("ok");
    return 0;
}
