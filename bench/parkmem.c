/*
 * parkmem: N goroutines parked at once; memory per parked goroutine, and how long
 * spawning them (until the last one has parked) takes.
 *
 *   usage: parkmem [N=1000000] [procs=1]
 *
 * What they park on: one unbuffered channel receive (gr_chan_recv on a single
 * channel, as ../../shared/PEERS.md defines the workload) when the header has
 * channels (HAVE_GR_CHAN, set by the Makefile); otherwise gr_join on one "gate"
 * goroutine that waits (yielding, then sleeping once everyone is parked) until
 * the main thread releases it.
 *
 * Memory: VmRSS and VmPTE from /proc/self/status, read once the runtime is running
 * (a first goroutine has run, so the worker thread and the first slab exist) and
 * again with all N parked:
 *   rss_bytes_per_goroutine     = (VmRSS after - before) / N
 *   rss_pte_bytes_per_goroutine = ((VmRSS + VmPTE) after - before) / N
 *
 * Output:
 *   parkmem procs=1 n=1000000 wait=chan spawn_ms=812.3 ns_per_spawn=812.3 cpu_spawn_ms=790.1
 *     rss_bytes_per_goroutine=4321 rss_pte_bytes_per_goroutine=4987 ...  (one line)
 * (cpu_spawn_ms: the process's CPU time over the same interval, all threads.)
 */
#include "bench.h"

#include <stdatomic.h>

static long n_goroutines;
static atomic_long parked;
static atomic_int released;
static uint64_t spawn_ns, spawn_cpu_ns;
#ifdef HAVE_GR_CHAN
static gr_chan *chan;
#else
static gr_id gate_id;
#endif

static void noop(void *arg) { (void)arg; }

static void waiter(void *arg) {
    (void)arg;
    atomic_fetch_add_explicit(&parked, 1, memory_order_relaxed);
#ifdef HAVE_GR_CHAN
    int v;
    int rc = gr_chan_recv(chan, &v);
    if (rc != 0 && rc != -EPIPE)
        DIE("gr_chan_recv: %s", gr_strerror(rc));
#else
    int rc = gr_join(gate_id);
    if (rc != 0)
        DIE("gr_join(gate): %s", gr_strerror(rc));
#endif
}

#ifndef HAVE_GR_CHAN
static void gate(void *arg) {
    (void)arg;
    while (!atomic_load(&released)) {
        if (atomic_load_explicit(&parked, memory_order_relaxed) >= n_goroutines)
            usleep(200);
        gr_yield();
    }
}
#endif

static void spawner(void *arg) {
    (void)arg;
    uint64_t t0 = now_ns(), c0 = cpu_ns();
#ifndef HAVE_GR_CHAN
    gate_id = gr_spawn(gate, NULL);
    if (gate_id <= 0)
        DIE("gr_spawn(gate): %s", gr_strerror((int)gate_id));
#endif
    for (long i = 0; i < n_goroutines; i++) {
        gr_id id = gr_spawn(waiter, NULL);
        if (id <= 0)
            DIE("gr_spawn #%ld: %s", i, gr_strerror((int)id));
    }
    /* Let them all run to their park (on 1 proc the yield sends us to the back of
       the queue, behind every waiter). */
    while (atomic_load(&parked) < n_goroutines)
        gr_yield();
    spawn_ns = now_ns() - t0;
    spawn_cpu_ns = cpu_ns() - c0;
}

int main(int argc, char **argv) {
    n_goroutines = arg_long(argc, argv, 1, 1000000);
    int procs = (int)arg_long(argc, argv, 2, 1);
    if (n_goroutines < 1 || procs < 1)
        DIE("N and procs must be >= 1");
#ifdef HAVE_GR_CHAN
    const char *wait_name = "chan";
    chan = gr_chan_new(sizeof(int), 0);
    if (!chan)
        DIE("gr_chan_new failed");
#else
    const char *wait_name = "join";
#endif
    int rc = gr_init(procs);
    if (rc != procs)
        DIE("gr_init(%d) = %d", procs, rc);
    rc = gr_main(noop, NULL);
    if (rc != 0)
        DIE("gr_main: %s", gr_strerror(rc));
    usleep(20000);
    long rss0 = proc_status_kb("VmRSS"), pte0 = proc_status_kb("VmPTE");

    rc = gr_main(spawner, NULL);
    if (rc != 0)
        DIE("gr_main: %s", gr_strerror(rc));
    usleep(20000); /* the last waiters finish switching out */
    long rss1 = proc_status_kb("VmRSS"), pte1 = proc_status_kb("VmPTE");
    size_t alive = gr_count();

    uint64_t t0 = now_ns(); /* release_ms: from the close (which may do the waking) */
    atomic_store(&released, 1);
#ifdef HAVE_GR_CHAN
    rc = gr_chan_close(chan);
    if (rc != 0)
        DIE("gr_chan_close: %s", gr_strerror(rc));
#endif
    gr_wait_all();
    uint64_t exit_ns = now_ns() - t0;
    usleep(100000); /* idle workers return surplus stacks to the kernel */
    long rss2 = proc_status_kb("VmRSS");
#ifdef HAVE_GR_CHAN
    gr_chan_free(chan);
#endif

    double n = (double)n_goroutines;
    printf("parkmem procs=%d n=%ld wait=%s alive=%zu spawn_ms=%.1f ns_per_spawn=%.1f cpu_spawn_ms=%.1f "
           "rss_bytes_per_goroutine=%.0f rss_pte_bytes_per_goroutine=%.0f "
           "rss_before_kb=%ld rss_parked_kb=%ld pte_before_kb=%ld pte_parked_kb=%ld "
           "release_ms=%.1f rss_after_exit_kb=%ld\n",
           procs, n_goroutines, wait_name, alive, spawn_ns / 1e6, spawn_ns / n, spawn_cpu_ns / 1e6, (rss1 - rss0) * 1024.0 / n,
           ((rss1 + pte1) - (rss0 + pte0)) * 1024.0 / n, rss0, rss1, pte0, pte1, exit_ns / 1e6, rss2);
    return 0;
}
