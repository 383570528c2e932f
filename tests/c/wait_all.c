/*
 * gr_wait_all blocks until no goroutine is left (grandchildren included); from a
 * goroutine, until it is the only one left. With nothing running it returns at
 * once. gr_main runs its function as a goroutine and returns after it returned.
 * Rounds of a few exits on every processor each end in a wake (none is lost).
 */
#include "check.h"

#include <stdatomic.h>

static atomic_int finished;

static void leaf(void *arg)
{
    int yields = (int)(intptr_t)arg;
    for (int i = 0; i < yields; i++)
        gr_yield();
    atomic_fetch_add(&finished, 1);
}

static void parent(void *arg)
{
    (void)arg;
    for (int i = 0; i < 10; i++)
        SPAWN(leaf, (void *)(intptr_t)(i * 37 % 50)); /* not joined */
    atomic_fetch_add(&finished, 1);
}

static int main_ran;
static gr_id main_id;

static void in_goroutine(void *arg)
{
    (void)arg;
    main_id = gr_self();
    CHECK(main_id > 0);
    atomic_store(&finished, 0);
    for (int i = 0; i < 100; i++)
        SPAWN(parent, NULL);
    CHECK_EQ(gr_wait_all(), 0);
    CHECK_EQ(atomic_load(&finished), 100 * 11);
    CHECK_EQ(gr_count(), 1); /* only this goroutine */
    CHECK_EQ(gr_wait_all(), 0); /* again: returns at once */

    /* Many short rounds: the last exits of a round race the waiter on every P, and
     * an exit that still sees work queued on its own P leaves the wake to a later
     * exit (goexit's queued_here). A lost wake leaves this goroutine parked for
     * good: gr_main then returns -EDEADLK (the deadlock check), or the watchdog ends
     * the test. */
    for (int round = 0; round < 3000; round++) {
        atomic_store(&finished, 0);
        for (int i = 0; i < 4; i++)
            SPAWN(leaf, (void *)(intptr_t)((round + i) % 3));
        CHECK_EQ(gr_wait_all(), 0);
        CHECK_EQ(atomic_load(&finished), 4);
        CHECK_EQ(gr_count(), 1);
    }
    main_ran = 1;
}

int main(void)
{
    watchdog(30);
    /* Nothing running: returns at once. */
    CHECK_EQ(gr_wait_all(), 0);

    /* From the main thread: children and grandchildren. */
    for (int i = 0; i < 1000; i++)
        SPAWN(parent, NULL);
    CHECK_EQ(gr_wait_all(), 0);
    CHECK_EQ(atomic_load(&finished), 1000 * 11);
    CHECK_EQ(gr_count(), 0);

    /* From a goroutine (gr_main). */
    CHECK_EQ(gr_main(in_goroutine, NULL), 0);
    CHECK(main_ran);
    CHECK_EQ(gr_self(), 0);
    CHECK_EQ(gr_join(main_id), 0); /* it has finished */
    CHECK_EQ(gr_count(), 0);
    CHECK_EQ(gr_wait_all(), 0);
    puts("ok");
    return 0;
}
