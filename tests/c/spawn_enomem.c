/*
 * Out of memory at spawn (reliability catalogue entry 3): under a low RLIMIT_AS,
 * set by this program itself once the runtime is warm, gr_spawn returns -ENOMEM
 * instead of crashing; nothing half-made leaks; the runtime stays usable.
 *
 * Stacks are reserved in slabs of address space (about 1 GiB per size class), so
 * the limit is set at the current address-space size plus 256 MiB: the slab the
 * warm-up mapped is used up, the next one cannot be had. Then:
 *   - goroutines that park on a channel are spawned until gr_spawn fails: it must be
 *     -ENOMEM, after at least 100 successes and before 100,000; once they have all
 *     started, spawning is tried again until a round gets none (a first -ENOMEM is
 *     not final: stacks freed into a processor's cache reach the shared pool later);
 *   - 200 more attempts (gr_spawn, and gr_spawn_attr with a 1 MiB stack, another
 *     class needing its own slab) are all -ENOMEM, and change nothing: gr_count,
 *     gr_stats' stacks_in_use and the address-space size stay where they were;
 *   - plain malloc and a channel still work under the limit;
 *   - closing the channel lets every parked goroutine finish (each got -EPIPE, none
 *     lost); then, under the same limit, half as many at once and as many as were
 *     parked in batches of 100 run to completion (freed stacks are reused). Not all
 *     of them at once: up to 256 freed stacks stay in each processor's cache, where a
 *     spawn from a plain thread does not look (docs/reliability.md, entry 3).
 * Run in the default guard mode (MADV_GUARD_INSTALL where the kernel has it) and,
 * re-executed with GR_GUARD=mprotect, in the fallback mode (where running out of
 * address space or out of guard budget may also show as -EAGAIN).
 */
#include "check.h"

#include <stdatomic.h>

#define MAX_SPAWN 100000

static atomic_long finished_epipe;
static atomic_long ran;

static atomic_long started;

static void parked(void *arg)
{
    long v;
    atomic_fetch_add(&started, 1);
    if (gr_chan_recv(arg, &v) == -EPIPE)
        atomic_fetch_add(&finished_epipe, 1);
}

static void quick(void *arg)
{
    (void)arg;
    atomic_fetch_add(&ran, 1);
}

/* VmSize (the address-space size RLIMIT_AS limits), in bytes. */
static long long vm_size(void)
{
    return proc_status("VmSize") * 1024LL;
}

static uint64_t stacks_in_use(void)
{
    struct gr_stats st = { .size = sizeof st };
    CHECK_EQ(gr_stats(&st), 0);
    return st.stacks_in_use;
}

static int out_of_memory(long long rc, int fallback)
{
    return rc == -ENOMEM || (fallback && rc == -EAGAIN);
}

int main(int argc, char **argv)
{
    (void)argc;
    watchdog(60);
    const char *guard = getenv("GR_GUARD");
    int fallback = guard && strcmp(guard, "mprotect") == 0;

    CHECK(gr_init(2) == 2);
    /* Warm up: threads started, the default class's first slab mapped. */
    for (int i = 0; i < 100; i++)
        CHECK_EQ(gr_join(SPAWN(quick, NULL)), 0);
    CHECK_EQ(gr_wait_all(), 0);

    struct rlimit old;
    CHECK_EQ(getrlimit(RLIMIT_AS, &old), 0);
    long long base = vm_size();
    struct rlimit low = { (rlim_t)(base + (256LL << 20)), old.rlim_max };
    CHECK_EQ(setrlimit(RLIMIT_AS, &low), 0);

    gr_chan *gate = gr_chan_new(sizeof(long), 0);
    CHECK(gate != NULL);
    /* Spawn until -ENOMEM; once the new ones have started (and freed stacks have
       settled in the pools) try again, until a round spawns nothing. */
    long spawned = 0, first = 0;
    long long rc = 0;
    int rounds = 0;
    for (long got = 1; got > 0 && rounds < 10; rounds++) {
        got = 0;
        while (spawned < MAX_SPAWN) {
            rc = gr_spawn(parked, gate);
            if (rc <= 0)
                break;
            spawned++;
            got++;
        }
        if (!out_of_memory(rc, fallback))
            FAIL("after %ld spawns under RLIMIT_AS: gr_spawn = %lld (%s), expected -ENOMEM",
                 spawned, rc, gr_strerror((int)rc));
        if (rounds == 0)
            first = spawned;
        while (atomic_load(&started) < spawned) /* each has its stack once it runs */
            sleep_ms(1);
        sleep_ms(20);
    }
    if (spawned < 100)
        FAIL("only %ld goroutines before -ENOMEM: the limit should leave room for more", spawned);
    printf("%s guards: %ld goroutines spawned under RLIMIT_AS = VmSize + 256 MiB, then %s "
           "(%ld more in %d later rounds)\n",
           fallback ? "mprotect" : "default", first, gr_strerror((int)rc), spawned - first,
           rounds - 1);

    /* Nothing half-made: failed spawns change nothing. */
    CHECK_EQ(gr_count(), spawned);
    uint64_t stacks = stacks_in_use();
    long long vm = vm_size();
    gr_attr big = { 1 << 20, "big", 0 };
    for (int i = 0; i < 100; i++) {
        rc = gr_spawn(parked, gate);
        if (!out_of_memory(rc, fallback))
            FAIL("retry %d: gr_spawn = %lld (%s)", i, rc, gr_strerror((int)rc));
        rc = gr_spawn_attr(parked, gate, &big);
        if (!out_of_memory(rc, fallback))
            FAIL("retry %d: gr_spawn_attr(1 MiB) = %lld (%s)", i, rc, gr_strerror((int)rc));
    }
    CHECK_EQ(gr_count(), spawned);
    CHECK_EQ(stacks_in_use(), stacks);
    if (vm_size() > vm + (1 << 20))
        FAIL("the address space grew by %lld KiB over 200 failed spawns", (vm_size() - vm) >> 10);

    /* Still usable under the limit. */
    void *p = malloc(1 << 16);
    CHECK(p != NULL);
    memset(p, 1, 1 << 16);
    free(p);
    gr_chan *c = gr_chan_new(sizeof(long), 4);
    long v = 9;
    CHECK_EQ(gr_chan_send(c, &v), 0);
    CHECK_EQ(gr_chan_recv(c, &v), 0);
    CHECK_EQ(gr_chan_free(c), 0);

    /* Nobody lost: every parked goroutine finishes. */
    CHECK_EQ(gr_chan_close(gate), 0);
    CHECK_EQ(gr_wait_all(), 0);
    CHECK_EQ(atomic_load(&finished_epipe), spawned);
    CHECK_EQ(gr_count(), 0);
    CHECK_EQ(gr_chan_free(gate), 0);

    /* The freed stacks serve new goroutines under the same limit: half as many as
       were parked at once in one burst (a processor's cache keeps up to 256 freed
       stacks, which a spawn from a plain thread does not reach), then as many as
       were parked, 100 at a time. */
    long again = 0;
    for (long i = 0; i < spawned / 2; i++, again++) {
        rc = gr_spawn(quick, NULL);
        if (rc <= 0)
            FAIL("respawn %ld of %ld after the parked ones finished: %lld (%s)", i, spawned / 2,
                 rc, gr_strerror((int)rc));
    }
    CHECK_EQ(gr_wait_all(), 0);
    for (long i = 0; i < spawned; i++, again++) {
        rc = gr_spawn(quick, NULL);
        if (rc <= 0)
            FAIL("respawn %ld (in batches of 100): %lld (%s)", i, rc, gr_strerror((int)rc));
        if (i % 100 == 99)
            CHECK_EQ(gr_wait_all(), 0);
    }
    CHECK_EQ(gr_wait_all(), 0);
    CHECK_EQ(atomic_load(&ran), 100 + again);
    CHECK_EQ(setrlimit(RLIMIT_AS, &old), 0);

    if (!fallback) {
        /* Again in the mprotect fallback mode, in a fresh process. */
        fflush(stdout);
        setenv("GR_GUARD", "mprotect", 1);
        char *args[] = { argv[0], NULL };
        /* argv[0], not /proc/self/exe: under valgrind that is valgrind's tool. */
        execv(argv[0], args);
        FAIL("cannot re-execute: %s", strerror(errno));
    }
    puts("ok");
    return 0;
}
