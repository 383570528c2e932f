/*
 * threads_skynet: the pthreads twin of skynet.c: a 10-ary tree of threads, one per
 * node. Each leaf sends its number; each inner node makes a fresh one-slot
 * mutex+condvar channel (threads.h; malloc'ed, freed by whoever of the node and
 * its children is last done with it), starts its 10 children on it
 * (detached, default stack), sums their 10 values and sends the sum up. The root's
 * sum is leaves*(leaves-1)/2, checked. The process is pinned to the first `procs`
 * CPUs.
 *
 * A thread per node is infeasible at skynet.c's 1,000,000 leaves (1,111,111
 * threads, most alive at once; here pid_max is 32768): the argument is the same,
 * but the default is 10,000 leaves (11,111 threads) and the driver runs it so;
 * the leaves= key of the output line says which size was run. Past the system's
 * thread limit it stops with "pthread_create: Resource temporarily unavailable".
 *
 *   usage: threads_skynet [leaves=10000 (a power of 10)] [procs=2] [reps=1]
 *
 * Children read their arguments from their parent's stack, which stays alive until
 * the parent has received all 10 values, as in skynet.c. The timed region is from
 * starting the root until its sum arrives; between repetitions the main thread
 * waits (untimed) until every node thread has finished.
 *
 * Output, one line per repetition, with skynet.c's keys:
 *   threads_skynet procs=2 leaves=10000 goroutines=11111 sum=49995000 ms=123.4 cpu_ms=240.1
 */
#include "threads.h"

#include <stdatomic.h>

/* A node's channel, shared by the node and its 10 children: whoever drops the last
   reference destroys it (a sender may touch it after the receiver returned). */
struct node_chan {
    struct tchan c;
    atomic_int refs;
};

static struct node_chan *node_chan_new(int refs) {
    struct node_chan *nc = malloc(sizeof *nc);
    if (!nc)
        DIE("out of memory");
    tchan_init(&nc->c);
    atomic_init(&nc->refs, refs);
    return nc;
}

static void node_chan_unref(struct node_chan *nc) {
    if (atomic_fetch_sub(&nc->refs, 1) == 1) {
        tchan_destroy(&nc->c);
        free(nc);
    }
}

struct node {
    long num, size;
    struct node_chan *out;
};

static atomic_long running; /* node threads started and not yet finished */

static void *skynet(void *arg) {
    struct node *n = arg;
    long num = n->num, size = n->size;
    struct node_chan *out = n->out;
    if (size == 1) {
        tchan_send(&out->c, num);
    } else {
        struct node kids[10];
        struct node_chan *c = node_chan_new(11);
        long step = size / 10;
        for (int i = 0; i < 10; i++) {
            kids[i] = (struct node){ num + i * step, step, c };
            atomic_fetch_add(&running, 1);
            thread_start(skynet, &kids[i], 1);
        }
        long sum = 0, v = 0;
        for (int i = 0; i < 10; i++) {
            if (tchan_recv(&c->c, &v) != 0)
                DIE("a node's channel was closed");
            sum += v;
        }
        node_chan_unref(c);
        tchan_send(&out->c, sum);
    }
    node_chan_unref(out);
    atomic_fetch_sub(&running, 1);
    return NULL;
}

int main(int argc, char **argv) {
    long leaves = arg_long(argc, argv, 1, 10000);
    int procs = (int)arg_long(argc, argv, 2, 2);
    long reps = arg_long(argc, argv, 3, 1);
    long g = 0;
    for (long l = leaves; l >= 1; l /= 10) {
        if (l > 1 && l % 10)
            DIE("leaves must be a power of 10");
        g += l;
    }
    if (procs < 1 || leaves < 1)
        DIE("usage: threads_skynet [leaves] [procs] [reps]");
    pin_to_first_cpus(procs);
    for (long r = 0; r < reps; r++) {
        struct node_chan *c = node_chan_new(2);
        struct node root = { 0, leaves, c };
        long sum = 0;
        uint64_t t0 = now_ns(), c0 = cpu_ns();
        atomic_fetch_add(&running, 1);
        thread_start(skynet, &root, 1);
        tchan_recv(&c->c, &sum);
        uint64_t ns = now_ns() - t0, cns = cpu_ns() - c0;
        node_chan_unref(c);
        while (atomic_load(&running) > 0)
            usleep(1000);
        if (sum != leaves * (leaves - 1) / 2)
            DIE("sum %ld, expected %ld", sum, leaves * (leaves - 1) / 2);
        printf("threads_skynet procs=%d leaves=%ld goroutines=%ld sum=%ld ms=%.1f cpu_ms=%.1f\n", procs, leaves, g,
               sum, ns / 1e6, cns / 1e6);
        fflush(stdout);
    }
    return 0;
}
