/*
 * On one processor, two goroutines that yield after every step alternate strictly:
 * A B A B ... (or B A B A ...). The parent spawns both from inside gr_main and parks
 * in gr_join, so nothing else is runnable; both wait until the other has started.
 *
 * Then three: two goroutines X and Y alternate (swapping places through runnext,
 * the yield's fast path), and X spawns a third, Z, which also yields after every
 * step. The spawn leaves Y queued behind Z; from then on the three take turns, every
 * 3 consecutive steps made by all three. A yield that swapped with runnext while
 * others are queued would let X and Z keep the processor between them, Y waiting
 * for the streak bound (64 picks).
 */
#include "check.h"

#include <stdatomic.h>

#define ROUNDS 10000

static char trace[2 * ROUNDS + 1];
static atomic_int pos;
static atomic_int started;

/* Records one step of goroutine `me` at the next place of trace `t` (of `len`
 * steps), then yields. */
static void step(char *t, atomic_int *at, int len, char me)
{
    int p = atomic_fetch_add(at, 1);
    if (p < len)
        t[p] = me;
    gr_yield();
}

static void player(void *arg)
{
    char me = (char)(intptr_t)arg;
    atomic_fetch_add(&started, 1);
    while (atomic_load(&started) < 2)
        gr_yield();
    for (int i = 0; i < ROUNDS; i++)
        step(trace, &pos, 2 * ROUNDS, me);
}

static void root(void *arg)
{
    (void)arg;
    gr_id a = SPAWN(player, (void *)(intptr_t)'A');
    gr_id b = SPAWN(player, (void *)(intptr_t)'B');
    CHECK_EQ(gr_join(a), 0);
    CHECK_EQ(gr_join(b), 0);
}

#define ROUNDS3 3000

static char trace3[3 * ROUNDS3 + 1];
static atomic_int pos3, recording;

static void step3(char me)
{
    step(trace3, &pos3, 3 * ROUNDS3, me);
}

static void third(void *arg)
{
    (void)arg;
    for (int i = 0; i < ROUNDS3; i++)
        step3('Z');
}

static void pair_player(void *arg)
{
    char me = (char)(intptr_t)arg;
    for (int i = 0; i < 100; i++) /* alternate through runnext a while */
        gr_yield();
    gr_id z = 0;
    if (me == 'X') {
        z = SPAWN(third, NULL);
        atomic_store(&recording, 1);
    }
    while (!atomic_load(&recording))
        gr_yield();
    for (int i = 0; i < ROUNDS3; i++)
        step3(me);
    if (z)
        CHECK_EQ(gr_join(z), 0);
}

static void root3(void *arg)
{
    (void)arg;
    gr_id x = SPAWN(pair_player, (void *)(intptr_t)'X');
    gr_id y = SPAWN(pair_player, (void *)(intptr_t)'Y');
    CHECK_EQ(gr_join(x), 0);
    CHECK_EQ(gr_join(y), 0);
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

    CHECK_EQ(gr_main(root3, NULL), 0);
    CHECK_EQ(atomic_load(&pos3), 3 * ROUNDS3);
    /* The last window may hold a finisher's last step and not the others'. */
    for (int i = 0; i + 3 < 3 * ROUNDS3; i++) {
        char a = trace3[i], b = trace3[i + 1], c = trace3[i + 2];
        if (a == b || b == c || a == c) {
            int from = i > 20 ? i - 20 : 0;
            FAIL("three yielders do not take turns at step %d: ...%.40s...", i, trace3 + from);
        }
    }
    printf("%d steps of three yielders take turns: %.9s...\n", 3 * ROUNDS3, trace3);
    puts("ok");
    return 0;
}
