/*
 * On one processor, two goroutines that yield after every step alternate strictly:
 * A B A B ... (or B A B A ...). The parent spawns both from inside gr_main and parks
 * in gr_join, so nothing else is runnable; both wait until the other has started.
 */
#include "check.h"

#include <stdatomic.h>

#define ROUNDS 10000

static char trace[2 * ROUNDS + 1];
static atomic_int pos;
static atomic_int started;

static void player(void *arg)
{
    char me = (char)(intptr_t)arg;
    atomic_fetch_add(&started, 1);
    while (atomic_load(&started) < 2)
        gr_yield();
    for (int i = 0; i < ROUNDS; i++) {
        int p = atomic_fetch_add(&pos, 1);
        if (p < 2 * ROUNDS)
            trace[p] = me;
        gr_yield();
    }
}

static void root(void *arg)
{
    (void)arg;
    gr_id a = SPAWN(player, (void *)(intptr_t)'A');
    gr_id b = SPAWN(player, (void *)(intptr_t)'B');
    CHECK_EQ(gr_join(a), 0);
    CHECK_EQ(gr_join(b), 0);
}

int main(void)
{
    watchdog(30);
    CHECK_EQ(gr_init(1), 1);
    CHECK_EQ(gr_maxprocs(0), 1);
    CHECK_EQ(gr_main(root, NULL), 0);
    CHECK_EQ(atomic_load(&pos), 2 * ROUNDS);
    for (int i = 0; i + 1 < 2 * ROUNDS; i++) {
        if (trace[i] == trace[i + 1]) {
            int from = i > 20 ? i - 20 : 0;
            FAIL("no strict alternation at step %d: ...%.40s...", i, trace + from);
        }
    }
    printf("%d steps alternate strictly: %.8s...\n", 2 * ROUNDS, trace);
    puts("ok");
    return 0;
}
