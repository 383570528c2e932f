/*
 * spawn: N trivial goroutines (an atomic add, then "done"), wait for all of them;
 * ns per goroutine. Round 1 is cold (stacks carved and first touched), later rounds
 * are warm (stacks reused from the caches); the summary line gives round 1 and the
 * best of rounds 2..R, as ../../shared/PEERS.md defines the workload.
 *
 *   usage: spawn [N=1000000] [procs=1] [rounds=3] [mode=waitall|join|wg]
 *
 * The spawning loop runs inside a goroutine (gr_main), as Go's main goroutine does;
 * the timed region is from the first spawn until the wait returns.
 *   waitall: gr_wait_all() from the spawning goroutine (returns when it is the last);
 *   join:    the ids are kept and each is gr_join'ed in order;
 *   wg:      a wait group (gr_wg_*), when the header has it (issue 4).
 *
 * Output, one line per round and a summary (cpu_ns_per_goroutine: the process's CPU
 * time over all threads per goroutine, which excludes time the machine ran something
 * else; with 2 procs it adds up both workers):
 *   spawn procs=1 n=1000000 mode=waitall round=1 ns_per_goroutine=123.4 cpu_ns_per_goroutine=120.1
 *   spawn procs=1 n=1000000 mode=waitall cold_ns=123.4 warm_best_ns=56.7
 */
#include "bench.h"

#include <stdatomic.h>

enum { WAITALL, JOIN, WG };

static long n_goroutines;
static int mode;
static atomic_long counter;
static gr_id *ids;
static uint64_t elapsed_ns, elapsed_cpu_ns;
#ifdef HAVE_GR_WG
static gr_wg *wg;
#endif

static void trivial(void *arg) {
    (void)arg;
    atomic_fetch_add_explicit(&counter, 1, memory_order_relaxed);
#ifdef HAVE_GR_WG
    if (mode == WG)
        gr_wg_done(wg);
#endif
}

static void spawner(void *arg) {
    (void)arg;
    long n = n_goroutines;
    uint64_t t0 = now_ns(), c0 = cpu_ns();
#ifdef HAVE_GR_WG
    if (mode == WG)
        gr_wg_add(wg, n);
#endif
    for (long i = 0; i < n; i++) {
        gr_id id = gr_spawn(trivial, NULL);
        if (id <= 0)
            DIE("gr_spawn #%ld: %s", i, gr_strerror((int)id));
        if (mode == JOIN)
            ids[i] = id;
    }
    switch (mode) {
    case WAITALL:
        gr_wait_all();
        break;
    case JOIN:
        for (long i = 0; i < n; i++) {
            int rc = gr_join(ids[i]);
            if (rc != 0)
                DIE("gr_join: %s", gr_strerror(rc));
        }
        break;
#ifdef HAVE_GR_WG
    case WG:
        gr_wg_wait(wg);
        break;
#endif
    }
    elapsed_ns = now_ns() - t0;
    elapsed_cpu_ns = cpu_ns() - c0;
}

int main(int argc, char **argv) {
    n_goroutines = arg_long(argc, argv, 1, 1000000);
    int procs = (int)arg_long(argc, argv, 2, 1);
    int rounds = (int)arg_long(argc, argv, 3, 3);
    const char *mode_name = argc > 4 ? argv[4] : "waitall";
    if (strcmp(mode_name, "waitall") == 0)
        mode = WAITALL;
    else if (strcmp(mode_name, "join") == 0)
        mode = JOIN;
#ifdef HAVE_GR_WG
    else if (strcmp(mode_name, "wg") == 0)
        mode = WG;
#endif
    else
        DIE("unknown mode %s (waitall, join"
#ifdef HAVE_GR_WG
            ", wg"
#endif
            ")", mode_name);
    if (n_goroutines < 1 || procs < 1 || rounds < 1)
        DIE("N, procs and rounds must be >= 1");
    if (mode == JOIN && !(ids = calloc((size_t)n_goroutines, sizeof *ids)))
        DIE("out of memory");
#ifdef HAVE_GR_WG
    if (mode == WG && !(wg = gr_wg_new()))
        DIE("gr_wg_new failed");
#endif
    int rc = gr_init(procs);
    if (rc != procs)
        DIE("gr_init(%d) = %d", procs, rc);

    double cold = 0, warm_best = 0;
    for (int r = 1; r <= rounds; r++) {
        rc = gr_main(spawner, NULL);
        if (rc != 0)
            DIE("gr_main: %s", gr_strerror(rc));
        long want = n_goroutines * r;
        if (atomic_load(&counter) != want)
            DIE("counter %ld, expected %ld", (long)atomic_load(&counter), want);
        double ns = (double)elapsed_ns / (double)n_goroutines;
        printf("spawn procs=%d n=%ld mode=%s round=%d ns_per_goroutine=%.1f cpu_ns_per_goroutine=%.1f\n", procs,
               n_goroutines, mode_name, r, ns, (double)elapsed_cpu_ns / (double)n_goroutines);
        fflush(stdout);
        if (r == 1)
            cold = ns;
        else if (warm_best == 0 || ns < warm_best)
            warm_best = ns;
    }
    if (rounds >= 2)
        printf("spawn procs=%d n=%ld mode=%s cold_ns=%.1f warm_best_ns=%.1f\n", procs, n_goroutines, mode_name, cold,
               warm_best);
    else
        printf("spawn procs=%d n=%ld mode=%s cold_ns=%.1f\n", procs, n_goroutines, mode_name, cold);
    gr_wait_all();
    return 0;
}
