/*
 * ctxcancel: make a cancellable context and cancel it, as Go's
 * `ctx, cancel := context.WithCancel(parent); cancel()`; here gr_ctx_new,
 * gr_ctx_cancel and gr_ctx_free (C frees what Go's collector frees). The parent is
 * one cancellable context shared by every goroutine (`shared`, the default: a
 * request's context under the server's, so each new context joins the parent's
 * children and leaves them again), or none (`root`: Go's context.Background(), which
 * Go never links a child to). `procs` goroutines do it at once, N / procs times
 * each, after a warm-up of a tenth as many; every context must say -ECANCELED after
 * its cancel. ns per context = elapsed / N.
 *
 *   usage: ctxcancel [contexts=2000000] [procs=1] [reps=1] [parent=shared|root]
 *
 * Output, one line per repetition:
 *   ctxcancel procs=1 contexts=2000000 ns_per_ctx=61.2 cpu_ns_per_ctx=60.8
 */
#include "bench.h"


static gr_ctx *parent; /* NULL for `root` */
static long per_goroutine;

static void make_cancel(long n)
{
    for (long i = 0; i < n; i++) {
        gr_ctx *c = gr_ctx_new(parent);
        if (!c)
            DIE("gr_ctx_new failed");
        gr_ctx_cancel(c);
        if (gr_ctx_err(c) != -ECANCELED)
            DIE("gr_ctx_err: the context is not cancelled");
        gr_ctx_free(c);
    }
}

static void worker(void *arg)
{
    (void)arg;
    make_cancel(per_goroutine);
}

int main(int argc, char **argv)
{
    long n = arg_long(argc, argv, 1, 2000000);
    int procs = (int)arg_long(argc, argv, 2, 1);
    long reps = arg_long(argc, argv, 3, 1);
    const char *mode = argc > 4 ? argv[4] : "shared";
    if (n < procs || procs < 1 || (strcmp(mode, "shared") != 0 && strcmp(mode, "root") != 0))
        DIE("usage: ctxcancel [contexts] [procs] [reps] [shared|root]");
    gr_init(procs);
    if (strcmp(mode, "shared") == 0 && !(parent = gr_ctx_new(NULL)))
        DIE("gr_ctx_new failed");
    per_goroutine = n / procs;
    make_cancel(n / 10); /* warm-up: malloc's caches */
    for (long r = 0; r < reps; r++) {
        uint64_t cpu, ns = run_parallel(procs, worker, NULL, &cpu);
        long total = per_goroutine * procs;
        printf("ctxcancel procs=%d contexts=%ld ns_per_ctx=%.1f cpu_ns_per_ctx=%.1f\n", procs,
               total, (double)ns / total, (double)cpu / total);
        fflush(stdout);
    }
    if (parent && gr_ctx_err(parent) != 0)
        DIE("the shared parent was cancelled");
    gr_ctx_free(parent);
    return 0;
}
