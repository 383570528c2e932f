/*
 * Timer channels firing into selects that are parking, on 2 busy processors: no
 * deadlock. 64 goroutines each select 3,000 times on a fresh timer's channel (due
 * in 0..40 us) and on a channel nobody sends on, so the timers fall due while the
 * workers are busy switching and sysmon fires some of them.
 *
 * 1. Untimed selects: every select returns the timer's case. A switch must not run
 *    due timers while the goroutine it leaves still holds its select's lock: a timer
 *    shard's lock may be held by another thread (sysmon) whose timer-channel send
 *    waits for that very select's lock. With the library from before that rule this
 *    part hung in 29 of 30 runs alone (tests/c/timer_races, about once in a hundred
 *    runs under load).
 * 2. The same selects with a timeout (30 us after the timer's due time): the timer's
 *    case or -ETIMEDOUT. A timed select arms its timeout after its switch, in the
 *    pending action: with the select's lock still held, that waited for a shard's
 *    lock that sysmon held while its callback waited for the select's lock, and this
 *    part hung in every run.
 */
#include "check.h"

#include <stdatomic.h>

enum { GOROUTINES = 64, ROUNDS = 3000 };

static gr_chan *never;
static atomic_long done;
static int timed; /* part 2: each select with a timeout */

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
        int rc = gr_select(cs, 2, timed ? delay + 30000 : -1);
        if (timed)
            CHECK(rc == 0 || rc == -ETIMEDOUT);
        else
            CHECK_EQ(rc, 0);
        CHECK_EQ(gr_timer_free(t), 0);
        atomic_fetch_add(&done, 1);
    }
}

static void part(int with_timeout)
{
    timed = with_timeout;
    atomic_store(&done, 0);
    for (int i = 0; i < GOROUTINES; i++)
        SPAWN(selector, (void *)(intptr_t)(i + 1));
    CHECK_EQ(gr_wait_all(), 0);
    CHECK_EQ(atomic_load(&done), (long)GOROUTINES * ROUNDS);
    printf("%s: %d selects returned\n", with_timeout ? "timed" : "untimed",
           GOROUTINES * ROUNDS);
}

int main(void)
{
    watchdog(60);
    CHECK_EQ(gr_init(2), 2);
    never = gr_chan_new(0, 0);
    CHECK(never != NULL);
    part(0);
    part(1);
    CHECK_EQ(gr_chan_free(never), 0);
    puts("ok");
    return 0;
}
