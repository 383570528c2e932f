/*
 * A goroutine on the default stack (256 KiB) can use 192 KiB of locals: 100 of
 * them at once fill their arrays, yield (so the others run), then check every
 * byte. Overlapping or too small stacks would show as wrong sums or a crash.
 */
#include "check.h"

#include <stdatomic.h>

#define LOCALS (192 * 1024)
#define G 100

static atomic_int passed;

__attribute__((noinline)) static unsigned long use_locals(unsigned seed)
{
    volatile unsigned char buf[LOCALS];
    for (size_t i = 0; i < LOCALS; i++)
        buf[i] = (unsigned char)(i * 7 + seed);
    gr_yield();
    unsigned long sum = 0;
    for (size_t i = 0; i < LOCALS; i++) {
        if (buf[i] != (unsigned char)(i * 7 + seed))
            FAIL("goroutine %u: byte %zu of its locals changed", seed, i);
        sum += buf[i];
    }
    return sum;
}

static unsigned long expected_sum(unsigned seed)
{
    unsigned long sum = 0;
    for (size_t i = 0; i < LOCALS; i++)
        sum += (unsigned char)(i * 7 + seed);
    return sum;
}

static void worker(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg;
    unsigned long sum = use_locals(seed);
    if (sum != expected_sum(seed))
        FAIL("goroutine %u: sum %lu, expected %lu", seed, sum, expected_sum(seed));
    atomic_fetch_add(&passed, 1);
}

int main(void)
{
    watchdog(30);
    for (unsigned i = 0; i < G; i++)
        SPAWN(worker, (void *)(uintptr_t)i);
    CHECK_EQ(gr_wait_all(), 0);
    CHECK_EQ(atomic_load(&passed), G);
    printf("%d goroutines each used %d KiB of locals on the default stack\n", G, LOCALS / 1024);
    puts("ok");
    return 0;
}
