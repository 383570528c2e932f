/*
 * 1,000,000 goroutines parked at once on default (256 KiB) stacks: each joins one
 * gate goroutine that yields until it is released. Reports the time to spawn them
 * and the memory they cost, which must stay near one page per goroutine.
 */
#include "check.h"

#include <stdatomic.h>

#define N 1000000
#define MAX_KIB_EACH 16

static atomic_int release_gate;
static atomic_int parking;
static atomic_int woke;
static gr_id gate;

static void gate_fn(void *arg)
{
    (void)arg;
    while (!atomic_load(&release_gate))
        gr_yield();
}

static void parked(void *arg)
{
    (void)arg;
    atomic_fetch_add(&parking, 1);
    int rc = gr_join(gate);
    if (rc != 0)
        FAIL("gr_join(gate) = %d", rc);
    atomic_fetch_add(&woke, 1);
}

int main(void)
{
    watchdog(170);
    int np = gr_init(0);
    CHECK(np > 0);
    long rss0 = proc_status("VmRSS");
    int64_t t0 = now_ns();
    gate = SPAWN(gate_fn, NULL);
    for (long i = 0; i < N; i++) {
        gr_id id = gr_spawn(parked, NULL);
        if (id <= 0)
            FAIL("spawn %ld of %d: %s", i, N, gr_strerror((int)id));
    }
    int64_t t1 = now_ns();
    while (atomic_load(&parking) < N)
        sleep_ms(1);
    sleep_ms(20);
    int64_t t2 = now_ns();
    size_t alive = gr_count();
    long rss = proc_status("VmRSS");
    CHECK_EQ(alive, N + 1);
    CHECK_EQ(atomic_load(&woke), 0);

    atomic_store(&release_gate, 1);
    CHECK_EQ(gr_wait_all(), 0);
    int64_t t3 = now_ns();
    CHECK_EQ(atomic_load(&woke), N);
    CHECK_EQ(gr_count(), 0);

    double kib_each = (double)(rss - rss0) / N;
    printf("%d goroutines parked at once on %d processors: spawned in %.0f ms, all parked "
           "after %.0f ms, woken and finished in %.0f ms\n",
           N, np, (t1 - t0) / 1e6, (t2 - t0) / 1e6, (t3 - t2) / 1e6);
    printf("RSS %.1f MiB while parked (%.1f KiB per goroutine), peak %.1f MiB\n", rss / 1024.0,
           kib_each, proc_status("VmHWM") / 1024.0);
    if (kib_each > MAX_KIB_EACH)
        FAIL("a parked goroutine costs %.1f KiB, more than %d KiB", kib_each, MAX_KIB_EACH);
    puts("ok");
    return 0;
}
