/*
 * Stacks cached by a busy processor do not pin memory (issue 16). On 2 processors,
 * two goroutines keep both busy (each yields in a loop, so neither processor ever goes
 * idle, which would hand its caches back another way); one of them spawns a burst of
 * 240 goroutines, each of which touches 192 KiB of its stack and waits; then the burst
 * ends. Freed stacks land in the cache of the processor they ran on (240 fit in one
 * cache), and nothing spawns any more. Within 10 s, RSS must fall back to within a
 * quarter of what the burst added, while the busy goroutines go on running (their
 * yields keep counting).
 *
 * Before idle stacks were returned, a busy processor's cache held the burst's stacks
 * for as long as it stayed busy: RSS stayed at the peak.
 */
#include "check.h"

#include <stdatomic.h>

#define BURST 240
#define TOUCH (192 << 10)

static atomic_int stop, finished, touched;
static atomic_long yields;
static gr_id gate;

static void gate_fn(void *arg)
{
    (void)arg;
    while (atomic_load(&touched) < BURST || !atomic_load(&stop))
        gr_sleep(1000000);
}

static void burst_fn(void *arg)
{
    (void)arg;
    volatile char buf[TOUCH];
    memset((char *)buf, 1, sizeof buf);
    atomic_fetch_add(&touched, 1);
    CHECK_EQ(gr_join(gate), 0);
    CHECK(buf[100] == 1 && buf[TOUCH - 100] == 1);
    atomic_fetch_add(&finished, 1);
}

static void busy_fn(void *arg)
{
    for (int i = 0; arg && i < BURST; i++)
        SPAWN(burst_fn, NULL);
    while (atomic_load(&stop) < 2) {
        gr_yield();
        atomic_fetch_add(&yields, 1);
    }
}

int main(void)
{
    watchdog(60);
    CHECK_EQ(gr_init(2), 2);
    long before = proc_status("VmRSS");
    gate = SPAWN(gate_fn, NULL);
    gr_id busy[2] = { SPAWN(busy_fn, NULL), SPAWN(busy_fn, "burst") };
    while (atomic_load(&touched) < BURST)
        sleep_ms(1);
    long peak = proc_status("VmRSS");
    long added = peak - before;
    if (added < (long)BURST * (TOUCH >> 10) * 3 / 4)
        FAIL("the burst added only %ld KiB of RSS", added);

    atomic_store(&stop, 1); /* the gate opens; the burst ends */
    while (atomic_load(&finished) < BURST)
        sleep_ms(1);
    int64_t t0 = now_ns();
    long after = peak, yields0 = atomic_load(&yields);
    while (now_ns() - t0 < 10000000000LL && after - before > added / 4) {
        sleep_ms(100);
        after = proc_status("VmRSS");
    }
    double secs = (now_ns() - t0) / 1e9;
    long busy_yields = atomic_load(&yields) - yields0;
    printf("RSS before %ld KiB, after a burst of %d x %d KiB %ld KiB, %.1f s after it %ld KiB; "
           "the busy goroutines yielded %ld times meanwhile\n",
           before, BURST, TOUCH >> 10, peak, secs, after, busy_yields);
    if (after - before > added / 4)
        FAIL("RSS stayed at %ld KiB for 10 s after the burst (before %ld, peak %ld)", after,
             before, peak);
    if (busy_yields < 1000)
        FAIL("the busy goroutines yielded only %ld times: the processors were not kept busy",
             busy_yields);
    atomic_store(&stop, 2);
    CHECK_EQ(gr_join(busy[0]), 0);
    CHECK_EQ(gr_join(busy[1]), 0);
    CHECK_EQ(gr_wait_all(), 0);
    puts("ok");
    return 0;
}
