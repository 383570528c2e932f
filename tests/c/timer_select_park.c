/*
 * Timer channels firing into selects that are parking, on 2 busy processors: no
 * deadlock. 64 goroutines each select 3,000 times on a fresh timer's channel (due
 * in 0..40 us) and on a channel nobody sends on, so the timers fall due while the
 * workers are busy switching and sysmon fires some of them. A switch must not run
 * due timers while the goroutine it leaves still holds its select's lock: a timer
 * shard's lock may be held by another thread (sysmon) whose timer-channel send is
 * waiting for that very select's lock. With the library from before that rule
 * this program hung in 29 of 30 runs alone (tests/c/timer_races, about once in a
 * hundred runs under load). Every select must return the timer's case.
 */
#include "check.h"

#include <stdatomic.h>

enum { GOROUTINES = 64, ROUNDS = 3000 };

static gr_chan *never;
static atomic_long fired;

static void selector(void *arg)
{
    unsigned long seed = (unsigned long)(uintptr_t)arg;
    for (int i = 0; i < ROUNDS; i++) {
        seed = seed * 1103515245 + 12345;
        int64_t delay = (int64_t)((seed >> 8) % 40000);
        gr_timer *t = gr_timer_new(delay, 0);
        CHECK(t != NULL);
        int64_t when;
        gr_case cs[2] = { { gr_timer_chan(t), GR_RECV, &when, 0 }, { never, GR_RECV, NULL, 0 } };
        CHECK_EQ(gr_select(cs, 2, -1), 0);
        CHECK_EQ(gr_timer_free(t), 0);
        atomic_fetch_add(&fired, 1);
    }
}

int main(void)
{
    watchdog(60);
    CHECK_EQ(gr_init(2), 2);
    never = gr_chan_new(0, 0);
    CHECK(never != NULL);
    for (int i = 0; i < GOROUTINES; i++)
        SPAWN(selector, (void *)(intptr_t)(i + 1));
    CHECK_EQ(gr_wait_all(), 0);
    CHECK_EQ(atomic_load(&fired), (long)GOROUTINES * ROUNDS);
    CHECK_EQ(gr_chan_free(never), 0);
    printf("%d selects, each woken by its timer\n", GOROUTINES * ROUNDS);
    puts("ok");
    return 0;
}
