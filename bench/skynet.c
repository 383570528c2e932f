/*
 * skynet: a 10-ary tree of goroutines with 1,000,000 leaves (1,111,111 goroutines).
 * Each leaf sends its number; each inner node makes a fresh unbuffered channel,
 * spawns its 10 children on it, sums their 10 values, frees the channel (`recv;
 * free`: the library guarantees no sender touches it once the receives returned)
 * and sends the sum up. The root's sum is leaves*(leaves-1)/2 (499999500000).
 *
 * Children read their arguments from their parent's stack, which stays alive until
 * the parent has received all 10 values: nothing is allocated per goroutine here.
 *
 *   usage: skynet [leaves=1000000 (a power of 10)] [procs=2] [reps=1]
 *
 * Output, one line per repetition:
 *   skynet procs=2 leaves=1000000 goroutines=1111111 sum=499999500000 ms=123.4 cpu_ms=240.1
 */
#include "bench.h"

struct node {
    long num, size;
    gr_chan *out;
};

static void skynet(void *arg)
{
    struct node *n = arg;
    long num = n->num, size = n->size;
    gr_chan *out = n->out;
    if (size == 1) {
        gr_chan_send(out, &num);
        return;
    }
    struct node kids[10];
    gr_chan *c = gr_chan_new(sizeof(long), 0);
    if (!c)
        DIE("gr_chan_new failed");
    long step = size / 10;
    for (int i = 0; i < 10; i++) {
        kids[i] = (struct node){ num + i * step, step, c };
        gr_id id = gr_spawn(skynet, &kids[i]);
        if (id <= 0)
            DIE("gr_spawn: %s", gr_strerror((int)id));
    }
    long sum = 0, v;
    for (int i = 0; i < 10; i++) {
        gr_chan_recv(c, &v);
        sum += v;
    }
    gr_chan_free(c);
    gr_chan_send(out, &sum);
}

static long leaves;
static long sum;
static uint64_t elapsed_ns, elapsed_cpu_ns;

static void root(void *arg)
{
    (void)arg;
    gr_chan *c = gr_chan_new(sizeof(long), 0);
    struct node n = { 0, leaves, c };
    uint64_t t0 = now_ns(), c0 = cpu_ns();
    gr_id id = gr_spawn(skynet, &n);
    if (id <= 0)
        DIE("gr_spawn: %s", gr_strerror((int)id));
    gr_chan_recv(c, &sum);
    elapsed_ns = now_ns() - t0;
    elapsed_cpu_ns = cpu_ns() - c0;
    gr_chan_free(c);
}

int main(int argc, char **argv)
{
    leaves = arg_long(argc, argv, 1, 1000000);
    int procs = (int)arg_long(argc, argv, 2, 2);
    long reps = arg_long(argc, argv, 3, 1);
    long g = 0;
    for (long l = leaves; l >= 1; l /= 10) {
        if (l > 1 && l % 10)
            DIE("leaves must be a power of 10");
        g += l;
    }
    if (procs < 1 || leaves < 1)
        DIE("usage: skynet [leaves] [procs] [reps]");
    gr_init(procs);
    for (long r = 0; r < reps; r++) {
        int rc = gr_main(root, NULL);
        if (rc != 0)
            DIE("gr_main: %s", gr_strerror(rc));
        gr_wait_all();
        if (sum != leaves * (leaves - 1) / 2)
            DIE("sum %ld, expected %ld", sum, leaves * (leaves - 1) / 2);
        printf("skynet procs=%d leaves=%ld goroutines=%ld sum=%ld ms=%.1f cpu_ms=%.1f\n", procs, leaves, g, sum,
               elapsed_ns / 1e6, elapsed_cpu_ns / 1e6);
        fflush(stdout);
    }
    return 0;
}
