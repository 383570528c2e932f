/*
 * threads_spawn: the pthreads comparison for spawn: N threads (default stack size),
 * each does the same atomic add as a spawn.c goroutine; ns per thread.
 *   batch: create all N, then join all N (what spawn.c does with goroutines);
 *   serial: create + join one at a time (thread creation latency without overlap).
 *
 *   usage: threads_spawn [N=10000] [rounds=3]
 *
 * Output, per round:
 *   threads_spawn n=10000 mode=batch round=1 ns_per_thread=12345.6
 *   threads_spawn n=10000 mode=serial round=1 ns_per_thread=12345.6
 */
#include "bench.h"

#include <pthread.h>
#include <stdatomic.h>

static atomic_long counter;

static void *trivial(void *arg) {
    (void)arg;
    atomic_fetch_add_explicit(&counter, 1, memory_order_relaxed);
    return NULL;
}

int main(int argc, char **argv) {
    long n = arg_long(argc, argv, 1, 10000);
    int rounds = (int)arg_long(argc, argv, 2, 3);
    if (n < 1 || rounds < 1)
        DIE("N and rounds must be >= 1");
    pthread_t *t = calloc((size_t)n, sizeof *t);
    if (!t)
        DIE("out of memory");
    for (int r = 1; r <= rounds; r++) {
        uint64_t t0 = now_ns();
        for (long i = 0; i < n; i++) {
            int rc = pthread_create(&t[i], NULL, trivial, NULL);
            if (rc != 0)
                DIE("pthread_create #%ld: %s", i, strerror(rc));
        }
        for (long i = 0; i < n; i++)
            pthread_join(t[i], NULL);
        uint64_t batch = now_ns() - t0;
        printf("threads_spawn n=%ld mode=batch round=%d ns_per_thread=%.1f\n", n, r, (double)batch / n);
        fflush(stdout);

        t0 = now_ns();
        for (long i = 0; i < n; i++) {
            pthread_t th;
            int rc = pthread_create(&th, NULL, trivial, NULL);
            if (rc != 0)
                DIE("pthread_create #%ld: %s", i, strerror(rc));
            pthread_join(th, NULL);
        }
        uint64_t serial = now_ns() - t0;
        printf("threads_spawn n=%ld mode=serial round=%d ns_per_thread=%.1f\n", n, r, (double)serial / n);
        fflush(stdout);
    }
    if (atomic_load(&counter) != 2 * n * rounds)
        DIE("counter %ld, expected %ld", (long)atomic_load(&counter), 2 * n * rounds);
    return 0;
}
