/* wg_fanout: fan work out to many goroutines and wait for all with a wait group. */
/*
 * Counts the primes below 1,000,000 by giving each of 64 goroutines one slice of the
 * range; each writes its count into its own slot and calls gr_wg_done; main waits
 * with gr_wg_wait (Go's sync.WaitGroup), then adds the slots up. The work is CPU
 * bound, so it runs in parallel on GR_MAXPROCS processors (default: every CPU).
 *
 * Build: cc -O2 wg_fanout.c $(pkg-config --cflags --libs goroutine)
 * Run:   ./wg_fanout [LIMIT]       prints the count (78,498 below 1,000,000)
 */
#include <goroutine.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

enum { WORKERS = 64 };

struct slice {
    long lo, hi;  /* count primes in [lo, hi) */
    long count;   /* the result: written by this slice's goroutine only */
    gr_wg *wg;
};

static int is_prime(long n)
{
    if (n < 2)
        return 0;
    for (long d = 2; d * d <= n; d++)
        if (n % d == 0)
            return 0;
    return 1;
}

static void count_primes(void *arg)
{
    struct slice *s = arg;
    for (long n = s->lo; n < s->hi; n++)
        s->count += is_prime(n);
    gr_wg_done(s->wg); /* after this the goroutine must not touch s->wg: main may free it */
}

int main(int argc, char **argv)
{
    long limit = argc > 1 ? atol(argv[1]) : 1000000;
    static struct slice slices[WORKERS];
    gr_wg *wg = gr_wg_new();
    if (!wg || limit < 0)
        return 1;

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    gr_wg_add(wg, WORKERS); /* before spawning: the counter must not reach 0 early */
    for (int i = 0; i < WORKERS; i++) {
        slices[i] = (struct slice){ limit * i / WORKERS, limit * (i + 1) / WORKERS, 0, wg };
        gr_id id = gr_spawn(count_primes, &slices[i]);
        if (id < 0) {
            fprintf(stderr, "gr_spawn: %s\n", gr_strerror((int)id));
            return 1;
        }
    }
    int rc = gr_wg_wait(wg); /* blocks this plain thread until every slice is done */
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (rc != 0 || gr_wg_free(wg) != 0)
        return 1;

    long total = 0;
    for (int i = 0; i < WORKERS; i++)
        total += slices[i].count;
    printf("%ld primes below %ld, counted by %d goroutines on %d processors in %.1f ms\n", total,
           limit, WORKERS, gr_maxprocs(0),
           (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6);
    return limit == 1000000 && total != 78498;
}
