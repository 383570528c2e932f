/*
 * yield: 2 goroutines call gr_yield() in a loop on `procs` processors (1 by
 * default); ns per switch = elapsed / total yields (both goroutines together).
 *
 *   usage: yield [yields_per_goroutine=10000000] [procs=1] [reps=1]
 *
 * Output, one line per repetition (cpu_ns_per_switch: the same from the process's
 * CPU time, which excludes time the machine ran something else):
 *   yield procs=1 goroutines=2 yields=20000000 ns_per_switch=12.3 cpu_ns_per_switch=12.1
 */
#include "bench.h"

static long per_goroutine;
static uint64_t elapsed_ns, elapsed_cpu_ns;

static void yielder(void *arg) {
    (void)arg;
    for (long i = 0; i < per_goroutine; i++)
        gr_yield();
}

static void body(void *arg) {
    (void)arg;
    uint64_t t0 = now_ns(), c0 = cpu_ns();
    for (int i = 0; i < 2; i++) {
        gr_id id = gr_spawn(yielder, NULL);
        if (id <= 0)
            DIE("gr_spawn: %s", gr_strerror((int)id));
    }
    gr_wait_all();
    elapsed_ns = now_ns() - t0;
    elapsed_cpu_ns = cpu_ns() - c0;
}

int main(int argc, char **argv) {
    per_goroutine = arg_long(argc, argv, 1, 10000000);
    int procs = (int)arg_long(argc, argv, 2, 1);
    int reps = (int)arg_long(argc, argv, 3, 1);
    if (per_goroutine < 1 || procs < 1 || reps < 1)
        DIE("arguments must be >= 1");
    int rc = gr_init(procs);
    if (rc != procs)
        DIE("gr_init(%d) = %d", procs, rc);
    for (int r = 0; r < reps; r++) {
        rc = gr_main(body, NULL);
        if (rc != 0)
            DIE("gr_main: %s", gr_strerror(rc));
        long total = 2 * per_goroutine;
        printf("yield procs=%d goroutines=2 yields=%ld ns_per_switch=%.2f cpu_ns_per_switch=%.2f\n", procs, total,
               (double)elapsed_ns / (double)total, (double)elapsed_cpu_ns / (double)total);
        fflush(stdout);
    }
    return 0;
}
