/*
 * Per-goroutine stack sizes through gr_attr: 1 MiB holds 900 KiB of locals; the
 * 32 KiB minimum works; sizes are rounded up to a power of two (33 KiB gives 64 KiB,
 * enough for 40 KiB of locals); 0 is the default (256 KiB: 192 KiB of locals); 1 GiB,
 * the maximum, is accepted. Below 32 KiB or above 1 GiB is -EINVAL. Many stacks of
 * mixed sizes at once do not overlap, each 60% full while it calls into the runtime
 * (runtime calls may use up to 8 KiB of the caller's stack).
 */
#include "check.h"

#include <stdatomic.h>

#define KiB ((size_t)1024)
#define MiB (1024 * KiB)
#define GiB (1024 * MiB)

struct job {
    size_t bytes; /* locals to use */
    unsigned seed;
    int done;
};

__attribute__((noinline)) static void use_locals(struct job *j)
{
    volatile unsigned char buf[j->bytes];
    for (size_t i = 0; i < j->bytes; i++)
        buf[i] = (unsigned char)(i * 13 + j->seed);
    gr_yield();
    for (size_t i = 0; i < j->bytes; i++)
        if (buf[i] != (unsigned char)(i * 13 + j->seed))
            FAIL("stack of job %u: byte %zu changed", j->seed, i);
}

static void run_job(void *arg)
{
    struct job *j = arg;
    use_locals(j);
    j->done = 1;
}

static void run_with(size_t stack_size, const char *name, size_t locals)
{
    struct job j = { locals, 7, 0 };
    gr_attr attr = { stack_size, name, 0 };
    gr_id id = gr_spawn_attr(run_job, &j, &attr);
    if (id <= 0)
        FAIL("gr_spawn_attr(stack_size=%zu) = %lld (%s)", stack_size, (long long)id,
             gr_strerror((int)id));
    CHECK_EQ(gr_join(id), 0);
    if (!j.done)
        FAIL("stack_size=%zu with %zu bytes of locals did not finish", stack_size, locals);
}

static void noop(void *arg)
{
    (void)arg;
}

static void expect_einval(size_t stack_size)
{
    gr_attr attr = { stack_size, "bad", 0 };
    gr_id id = gr_spawn_attr(noop, NULL, &attr);
    if (id != -EINVAL)
        FAIL("gr_spawn_attr(stack_size=%zu) = %lld, expected -EINVAL", stack_size, (long long)id);
}

int main(void)
{
    watchdog(30);
    run_with(1 * MiB, "big", 900 * KiB);
    run_with(32 * KiB, "min", 16 * KiB);
    run_with(33 * KiB, "rounded", 40 * KiB);
    run_with(0, "default", 192 * KiB);
    run_with(0, NULL, 64 * KiB);
    run_with(1 * GiB, "max", 64 * KiB);

    expect_einval(1);
    expect_einval(4096);
    expect_einval(16 * KiB);
    expect_einval(32 * KiB - 1);
    expect_einval(1 * GiB + 1);
    expect_einval(2 * GiB);
    expect_einval(SIZE_MAX);

    /* 300 goroutines with stacks of three sizes at once, each using 60% of its stack. */
    static const size_t sizes[3] = { 32 * KiB, 64 * KiB, 1 * MiB };
    static struct job jobs[300];
    gr_id ids[300];
    for (int i = 0; i < 300; i++) {
        size_t s = sizes[i % 3];
        gr_attr attr = { s, "mixed", 0 };
        jobs[i].bytes = s * 6 / 10;
        jobs[i].seed = (unsigned)i;
        jobs[i].done = 0;
        ids[i] = gr_spawn_attr(run_job, &jobs[i], &attr);
        if (ids[i] <= 0)
            FAIL("mixed spawn %d: %s", i, gr_strerror((int)ids[i]));
    }
    for (int i = 0; i < 300; i++) {
        CHECK_EQ(gr_join(ids[i]), 0);
        CHECK(jobs[i].done);
    }
    CHECK_EQ(gr_count(), 0);
    puts("ok");
    return 0;
}
