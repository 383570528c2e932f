/*
 * timers: N goroutines each arm one timer (gr_sleep of 2 s + i % 100 ms) and wait
 * for it to fire; reports the time from the first spawn until the last has woken,
 * how late the timers fired on average, and the memory used per armed timer
 * (VmRSS once all are armed, minus before, over N; mostly the parked goroutine).
 * The late figure includes running a million goroutines woken within 100 ms.
 *
 *   usage: timers [N=1000000] [procs=2]
 *
 * Output: timers procs=2 n=1000000 arm_ms=... total_ms=... mean_late_us=... rss_bytes_per_timer=...
 */
#include "bench.h"

#include <stdatomic.h>

static long n_timers;
static atomic_long woken, late_ns_sum, armed;

static long rss_kb(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb;
}

static void sleeper(void *arg) {
    int64_t ns = 2000000000 + ((intptr_t)arg % 100) * 1000000;
    uint64_t due = now_ns() + (uint64_t)ns;
    atomic_fetch_add(&armed, 1);
    gr_sleep(ns);
    uint64_t t = now_ns();
    atomic_fetch_add(&late_ns_sum, (long)(t > due ? t - due : 0));
    atomic_fetch_add(&woken, 1);
}

int main(int argc, char **argv) {
    n_timers = arg_long(argc, argv, 1, 1000000);
    int procs = (int)arg_long(argc, argv, 2, 2);
    gr_init(procs);
    long before = rss_kb();
    uint64_t t0 = now_ns();
    for (long i = 0; i < n_timers; i++)
        if (gr_spawn(sleeper, (void *)(intptr_t)i) <= 0) {
            fprintf(stderr, "spawn failed at %ld\n", i);
            return 1;
        }
    while (atomic_load(&armed) < n_timers)
        usleep(2000);
    long peak = rss_kb();
    uint64_t t_armed = now_ns();
    while (atomic_load(&woken) < n_timers)
        usleep(2000);
    uint64_t t1 = now_ns();
    gr_wait_all();
    printf("timers procs=%d n=%ld arm_ms=%.1f total_ms=%.1f mean_late_us=%.1f rss_bytes_per_timer=%.0f\n",
           procs, n_timers, (t_armed - t0) / 1e6, (t1 - t0) / 1e6, atomic_load(&late_ns_sum) / 1e3 / n_timers,
           (peak - before) * 1024.0 / n_timers);
    return 0;
}
