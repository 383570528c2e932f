/*
 * Reliability catalogue entry 6, the bounded version (`make stress`; the everyday
 * 1,000,000-goroutine run without a time bound is million_parked.c): 1,000,000
 * goroutines alive at once, each parked in a receive on one unbuffered channel (the
 * "parkmem" workload), must all be spawned and parked within 30 s on the default
 * 256 KiB stacks. Prints the time to spawn, the time until all are parked, the RSS
 * per parked goroutine, the peak RSS (VmHWM), and the page faults and kernel time
 * the run took. Closing the channel then wakes every one of them with -EPIPE (none
 * lost) and they all finish.
 *
 * Why 30 s: each goroutine's first run touches one fresh stack page, so the run
 * takes ~1,060,000 page faults, and on the 2-vCPU VM this project is developed on a
 * first touch costs 5 to 13 us of kernel time (clear_page plus the host's backing of
 * the page): 5 to 13 s in all, from run to run, with the same fault count. The bound
 * is a sanity bound (a hang or a fault per page more would break it), not a speed
 * figure; the printed figures are the measurement.
 */
#include "check.h"

#include <stdatomic.h>
#include <sys/resource.h>

#define N 1000000
#define LIMIT_NS 30000000000LL

static atomic_long parking;
static atomic_long woke_epipe;

static void parked(void *arg)
{
    long v;
    atomic_fetch_add(&parking, 1);
    if (gr_chan_recv(arg, &v) == -EPIPE)
        atomic_fetch_add(&woke_epipe, 1);
}

int main(void)
{
    watchdog(120);
    int np = gr_init(0);
    CHECK(np > 0);
    gr_chan *c = gr_chan_new(sizeof(long), 0);
    CHECK(c != NULL);
    long rss0 = proc_status("VmRSS");
    int64_t t0 = now_ns();
    for (long i = 0; i < N; i++) {
        gr_id id = gr_spawn(parked, c);
        if (id <= 0)
            FAIL("spawn %ld of %d: %s", i, N, gr_strerror((int)id));
    }
    int64_t t1 = now_ns();
    /* Parked = entered the receive; the last few may still be on their way into it. */
    while (atomic_load(&parking) < N && now_ns() - t0 < 2 * LIMIT_NS)
        sleep_ms(1);
    int64_t t2 = now_ns();
    CHECK_EQ(atomic_load(&parking), N);
    CHECK_EQ(gr_count(), N);
    long rss = proc_status("VmRSS");
    printf("%d goroutines alive at once on %d processors: spawned in %.0f ms, all parked after "
           "%.0f ms\n",
           N, np, (t1 - t0) / 1e6, (t2 - t0) / 1e6);
    printf("RSS %.1f MiB while parked (%.2f KiB per goroutine), peak RSS %.1f MiB\n",
           rss / 1024.0, (double)(rss - rss0) / N, proc_status("VmHWM") / 1024.0);
    struct rusage ru;
    CHECK_EQ(getrusage(RUSAGE_SELF, &ru), 0);
    printf("%ld minor page faults, %.1f s in the kernel, %.1f s in user space so far\n",
           ru.ru_minflt, ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6,
           ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6);

    CHECK_EQ(gr_chan_close(c), 0);
    CHECK_EQ(gr_wait_all(), 0);
    int64_t t3 = now_ns();
    CHECK_EQ(atomic_load(&woke_epipe), N);
    CHECK_EQ(gr_count(), 0);
    CHECK_EQ(gr_chan_free(c), 0);
    printf("woken by close and finished in %.0f ms\n", (t3 - t2) / 1e6);
    if (t2 - t0 > LIMIT_NS)
        FAIL("1,000,000 goroutines took %.1f s to be alive and parked, more than 30 s",
             (t2 - t0) / 1e9);
    puts("ok");
    return 0;
}
