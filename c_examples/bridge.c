/* bridge: plain threads and goroutines talking over channels, both ways. */
/*
 * Channels work from any thread: on a plain thread (one the runtime did not start) a
 * call that would park a goroutine blocks the thread instead. So an existing threaded
 * program can hand work to goroutines and get answers back without any other glue.
 *
 *   client pthreads x3 --requests--> worker goroutines x8 --reply (one per client)--> client
 *                                          |
 *                                          +--events--> logger pthread
 *
 * Each client thread sends requests and blocks in gr_chan_recv for each answer; the
 * workers park (not block) while they wait. The logger thread receives until the
 * channel is closed (-EPIPE), as a goroutine would.
 *
 * Build: cc -O2 -pthread bridge.c $(pkg-config --cflags --libs goroutine)
 * Run:   ./bridge       prints what each side did; exits 0 when every answer was right
 */
#include <goroutine.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

enum { CLIENTS = 3, WORKERS = 8, REQUESTS = 1000 };

struct request {
    long n;          /* the question: the sum of 1..n */
    gr_chan *reply;  /* where the answer goes: the asking thread's own channel */
};

struct event {
    gr_id worker;    /* which goroutine answered */
    long n;
};

static gr_chan *requests, *events;
static gr_wg *workers_done;

/* A goroutine: answers requests until the channel is closed and drained. */
static void worker(void *arg)
{
    (void)arg;
    struct request rq;
    while (gr_chan_recv(requests, &rq) == 0) {
        long sum = rq.n * (rq.n + 1) / 2;
        if (rq.n % 100 == 0)
            gr_sleep(200000); /* now and then a slow answer (0.2 ms): only this goroutine waits */
        gr_chan_send(rq.reply, &sum);
        struct event ev = { gr_self(), rq.n };
        gr_chan_send(events, &ev); /* parks while the logger thread is behind */
    }
    gr_wg_done(workers_done);
}

/* A plain thread that asks goroutines for answers. */
static void *client(void *arg)
{
    long id = (long)(intptr_t)arg, wrong = 0;
    gr_chan *reply = gr_chan_new(sizeof(long), 1);
    if (!reply)
        return (void *)1;
    for (long i = 1; i <= REQUESTS; i++) {
        struct request rq = { id * REQUESTS + i, reply };
        long sum;
        if (gr_chan_send(requests, &rq) != 0 || gr_chan_recv(reply, &sum) != 0)
            return (void *)1; /* both block this thread, never a goroutine */
        wrong += sum != rq.n * (rq.n + 1) / 2;
    }
    gr_chan_free(reply);
    printf("client thread %ld: %d answers, %ld wrong\n", id, REQUESTS, wrong);
    return (void *)(intptr_t)(wrong != 0);
}

/* A plain thread that consumes what goroutines produce. */
static void *logger(void *arg)
{
    (void)arg;
    gr_id seen[WORKERS];
    int distinct = 0;
    long total = 0;
    struct event ev;
    while (gr_chan_recv(events, &ev) == 0) { /* -EPIPE: closed and drained */
        total++;
        int known = 0;
        for (int i = 0; i < distinct; i++)
            known |= seen[i] == ev.worker;
        if (!known && distinct < WORKERS)
            seen[distinct++] = ev.worker;
    }
    printf("logger thread: %ld events from %d worker goroutines\n", total, distinct);
    return (void *)(intptr_t)(total != CLIENTS * REQUESTS);
}

int main(void)
{
    requests = gr_chan_new(sizeof(struct request), 16);
    events = gr_chan_new(sizeof(struct event), 64);
    workers_done = gr_wg_new();
    if (!requests || !events || !workers_done)
        return 1;

    gr_wg_add(workers_done, WORKERS);
    for (int i = 0; i < WORKERS; i++)
        if (gr_spawn(worker, NULL) < 0)
            return 1;
    pthread_t clients[CLIENTS], log_thread;
    pthread_create(&log_thread, NULL, logger, NULL);
    for (long i = 0; i < CLIENTS; i++)
        pthread_create(&clients[i], NULL, client, (void *)(intptr_t)i);

    int failed = 0;
    for (int i = 0; i < CLIENTS; i++) {
        void *rc;
        pthread_join(clients[i], &rc);
        failed |= rc != NULL;
    }
    gr_chan_close(requests);   /* the workers drain it and return */
    gr_wg_wait(workers_done);  /* main, a plain thread, blocks until they have */
    gr_chan_close(events);     /* now the logger sees -EPIPE once it has read everything */
    void *rc;
    pthread_join(log_thread, &rc);
    failed |= rc != NULL;

    gr_chan_free(requests);
    gr_chan_free(events);
    gr_wg_free(workers_done);
    printf("%s\n", failed ? "FAILED" : "every answer arrived and was right");
    return failed;
}
