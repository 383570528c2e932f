/*
 * After a burst, free stacks go back to the kernel: 100,000 goroutines each touch
 * 16 KiB of stack and park; once they have all finished and the runtime has been
 * idle for a while (sysmon returns surplus stacks unused for a second), RSS falls
 * back near where it was before the burst.
 */
#include "check.h"

#include <stdatomic.h>

#define N 100000

static atomic_int release_gate;
static gr_id gate;

static void gate_fn(void *arg)
{
    (void)arg;
    while (!atomic_load(&release_gate))
        gr_sleep(1000000);
}

static void parked(void *arg)
{
    (void)arg;
    volatile char buf[16 << 10];
    memset((char *)buf, 1, sizeof buf);
    gr_join(gate);
    CHECK(buf[100] == 1);
}

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            break;
    if (f)
        fclose(f);
    return kib;
}

int main(void)
{
    watchdog(60);
    long before = rss_kib();
    gate = SPAWN(gate_fn, NULL);
    for (int i = 0; i < N; i++)
        SPAWN(parked, NULL);
    while (gr_count() > 0 && rss_kib() - before < (long)N * 16)
        gr_sleep(1000000), usleep(1000);
    long peak = rss_kib();
    CHECK(peak - before >= (long)N * 16); /* every goroutine touched its 16 KiB */
    atomic_store(&release_gate, 1);
    CHECK_EQ(gr_wait_all(), 0);
    long after = peak;
    for (int i = 0; i < 100 && after - before > (peak - before) / 10; i++) {
        usleep(50000);
        after = rss_kib();
    }
    printf("RSS before %ld KiB, with %d parked goroutines %ld KiB, after %ld KiB\n", before, N, peak,
           after);
    if (after - before > (peak - before) / 10)
        FAIL("RSS stayed at %ld KiB (peak %ld, before %ld)", after, peak, before);
    puts("ok");
    return 0;
}
