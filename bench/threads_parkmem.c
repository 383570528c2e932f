/*
 * threads_parkmem: the pthreads twin of parkmem.c: N threads (default stack) blocked
 * at once on one channel receive (threads.h: a condition-variable wait); memory per
 * blocked thread, and how long starting them (until the last one has blocked) takes.
 * The process is pinned to the first `procs` CPUs.
 *
 *   usage: threads_parkmem [N=10000] [procs=1]
 *
 * N is shrunk from parkmem.c's 1,000,000 (a thread per task stops near pid_max,
 * 32768 here); the driver runs it with 10,000, and n= in the line says so.
 *
 * Memory, measured as parkmem.c does: VmRSS and VmPTE from /proc/self/status, read
 * once the process is running (one thread started and joined, 20 ms passed) and
 * again 20 ms after the last thread counted itself as blocked:
 *   rss_bytes_per_goroutine     = (VmRSS after - before) / N
 *   rss_pte_bytes_per_goroutine = ((VmRSS + VmPTE) after - before) / N
 * A thread also costs kernel memory outside the process's RSS; the extra key
 *   kernel_stack_bytes_per_thread = (KernelStack of /proc/meminfo, after - before) / N
 * gives its kernel stack (machine-wide figure: other processes' threads move it too).
 *
 * Output: one line with parkmem.c's keys and that one more:
 *   threads_parkmem procs=1 n=10000 wait=chan alive=10000 spawn_ms=... rss_bytes_per_goroutine=8494 ...
 */
#include "threads.h"

#include <stdatomic.h>

static struct tchan gate;
static atomic_long parked;

static void *waiter(void *arg) {
    (void)arg;
    long v;
    atomic_fetch_add_explicit(&parked, 1, memory_order_relaxed);
    if (tchan_recv(&gate, &v) != -EPIPE)
        DIE("the gate gave a value; it is only ever closed");
    return NULL;
}

static void *noop(void *arg) { return arg; }

int main(int argc, char **argv) {
    long n = arg_long(argc, argv, 1, 10000);
    int procs = (int)arg_long(argc, argv, 2, 1);
    if (n < 1 || procs < 1)
        DIE("N and procs must be >= 1");
    pin_to_first_cpus(procs);
    pthread_t *threads = calloc((size_t)n, sizeof *threads);
    if (!threads)
        DIE("out of memory");
    tchan_init(&gate);
    pthread_join(thread_start(noop, NULL, 0), NULL);
    usleep(20000);
    long rss0 = proc_status_kb("VmRSS"), pte0 = proc_status_kb("VmPTE");
    long ks0 = proc_file_kb("/proc/meminfo", "KernelStack");

    uint64_t t0 = now_ns(), c0 = cpu_ns();
    for (long i = 0; i < n; i++)
        threads[i] = thread_start(waiter, NULL, 0);
    while (atomic_load(&parked) < n)
        sched_yield();
    uint64_t spawn_ns = now_ns() - t0, spawn_cpu_ns = cpu_ns() - c0;
    usleep(20000); /* the last waiters finish going to sleep */
    long rss1 = proc_status_kb("VmRSS"), pte1 = proc_status_kb("VmPTE");
    long ks1 = proc_file_kb("/proc/meminfo", "KernelStack");
    long alive = atomic_load(&parked);

    uint64_t t1 = now_ns(); /* release_ms: from the close (the broadcast) on */
    tchan_close(&gate);
    for (long i = 0; i < n; i++)
        pthread_join(threads[i], NULL);
    uint64_t exit_ns = now_ns() - t1;
    usleep(100000);
    long rss2 = proc_status_kb("VmRSS");
    tchan_destroy(&gate);
    free(threads);

    double nd = (double)n;
    printf("threads_parkmem procs=%d n=%ld wait=chan alive=%ld spawn_ms=%.1f ns_per_spawn=%.1f cpu_spawn_ms=%.1f "
           "rss_bytes_per_goroutine=%.0f rss_pte_bytes_per_goroutine=%.0f "
           "rss_before_kb=%ld rss_parked_kb=%ld pte_before_kb=%ld pte_parked_kb=%ld "
           "release_ms=%.1f rss_after_exit_kb=%ld kernel_stack_bytes_per_thread=%.0f\n",
           procs, n, alive, spawn_ns / 1e6, spawn_ns / nd, spawn_cpu_ns / 1e6, (rss1 - rss0) * 1024.0 / nd,
           ((rss1 + pte1) - (rss0 + pte0)) * 1024.0 / nd, rss0, rss1, pte0, pte1, exit_ns / 1e6, rss2,
           (ks1 - ks0) * 1024.0 / nd);
    return 0;
}
