/*
 * A pipeline in the Go style: a producer sends jobs on a buffered channel, a pool
 * of workers turns each job into a result, and a collector gathers the results
 * with gr_select, also watching a "done" channel and giving up after a timeout if
 * the results stop coming.
 *
 *   producer --jobs--> worker x4 --results--> collector
 *                                 workers' wait group closes `results` at the end
 *
 * Build: gcc -O2 pipeline.c $(pkg-config --cflags --libs goroutine)
 *    or: gcc -O2 -I include pipeline.c -L target/release -lgoroutine
 * Prints one summary line; exits 0 when every job came back exactly once.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "goroutine.h"

enum { JOBS = 10000, WORKERS = 4 };

struct job {
    long id;
    long n;
};

struct result {
    long id;
    long square;
    int worker;
};

static gr_chan *jobs, *results, *done;
static gr_wg *workers_wg;

static void producer(void *arg)
{
    (void)arg;
    for (long i = 0; i < JOBS; i++) {
        struct job j = { i, i % 1000 };
        if (gr_chan_send(jobs, &j) != 0)
            break; /* somebody closed the jobs channel: stop */
    }
    gr_chan_close(jobs); /* no more work: workers drain and stop */
}

static void worker(void *arg)
{
    int me = (int)(intptr_t)arg;
    struct job j;
    while (gr_chan_recv(jobs, &j) == 0) { /* -EPIPE once closed and drained */
        struct result r = { j.id, j.n * j.n, me };
        if (j.id % 1000 == 0)
            gr_sleep(100000); /* some jobs are slow */
        gr_chan_send(results, &r);
    }
    gr_wg_done(workers_wg);
}

/* Closes `results` once every worker is finished. */
static void closer(void *arg)
{
    (void)arg;
    gr_wg_wait(workers_wg);
    gr_chan_close(results);
}

static void collector(void *arg)
{
    (void)arg;
    static unsigned char seen[JOBS];
    long got = 0, sum = 0, per_worker[WORKERS] = { 0 };
    int timeouts = 0;
    for (;;) {
        struct result r;
        gr_case cases[2] = {
            { results, GR_RECV, &r, 0 },
            { done, GR_RECV, NULL, 0 }, /* zero-size elements: a pure signal */
        };
        int rc = gr_select(cases, 2, 500 * 1000000LL); /* 500 ms without a result: give up */
        if (rc == -ETIMEDOUT) {
            timeouts++;
            fprintf(stderr, "pipeline: no result for 500 ms, giving up\n");
            break;
        }
        if (rc == 1 || (rc == 0 && cases[0].closed))
            break; /* told to stop, or every worker is finished */
        if (rc != 0) {
            fprintf(stderr, "pipeline: gr_select: %s\n", gr_strerror(rc));
            exit(1);
        }
        if (r.id < 0 || r.id >= JOBS || seen[r.id]++ || r.square != (r.id % 1000) * (r.id % 1000)) {
            fprintf(stderr, "pipeline: bad or duplicate result %ld\n", r.id);
            exit(1);
        }
        got++;
        sum += r.square;
        per_worker[r.worker]++;
    }
    printf("pipeline: %ld results from %d workers (", got, WORKERS);
    for (int w = 0; w < WORKERS; w++)
        printf("%s%ld", w ? " " : "", per_worker[w]);
    printf("), sum of squares %ld, %d timeouts\n", sum, timeouts);
    if (got != JOBS)
        exit(1);
}

int main(void)
{
    jobs = gr_chan_new(sizeof(struct job), 64);
    results = gr_chan_new(sizeof(struct result), 0);
    done = gr_chan_new(0, 0);
    workers_wg = gr_wg_new();
    if (!jobs || !results || !done || !workers_wg)
        return 1;
    gr_wg_add(workers_wg, WORKERS);
    for (int w = 0; w < WORKERS; w++)
        gr_spawn(worker, (void *)(intptr_t)w);
    gr_spawn(closer, NULL);
    gr_spawn(producer, NULL);
    gr_main(collector, NULL); /* runs the collector as a goroutine and waits for it */
    gr_chan_close(done);
    gr_wait_all();
    gr_chan_free(jobs);
    gr_chan_free(results);
    gr_chan_free(done);
    gr_wg_free(workers_wg);
    return 0;
}
