/*
 * Guard regions under valgrind (tests/c_tests.rs sets GR_TEST_UNDER_VALGRIND=1 when
 * it runs the programs under memcheck): the runtime makes them with mprotect, which
 * valgrind knows, so memcheck's leak check at exit does not read every word of every
 * guard one caught fault at a time; and it stops at 11,000 stacks, with -EAGAIN from
 * gr_spawn, below the count at which valgrind's fixed table of memory segments
 * overflows and it exits (between 12,000 and 16,000 guards).
 *
 * In every mode, 2,000 goroutines first sleep 20 ms and end; that part alone, run by
 * hand as `valgrind --leak-check=full target/release/c-tests/guard_valgrind` (without
 * GR_TEST_UNDER_VALGRIND), is the figure for the leak check's time: 40.5-41.4 s
 * with MADV_GUARD_INSTALL guards, 2.0-2.1 s with mprotect ones (2 runs each). Then, under valgrind, the
 * program parks goroutines up to the cap and ends with them parked.
 */
#include "check.h"

#define SLEEPERS 2000
#define VALGRIND_STACKS 11000

static gr_chan *never; /* nothing is ever sent on it */

static void parked(void *arg)
{
    (void)arg;
    long v;
    gr_chan_recv(never, &v);
}

static void sleeper(void *arg)
{
    (void)arg;
    CHECK_EQ(gr_sleep(20000000), 0); /* 20 ms */
}

static void run(void *arg)
{
    (void)arg;
    const char *v = getenv("GR_TEST_UNDER_VALGRIND");
    int under_valgrind = v && strcmp(v, "1") == 0;
    struct gr_stats st = { .size = sizeof st };
    CHECK_EQ(gr_stats(&st), 0);
    printf("guard mode %u (%s)%s\n", st.guard_mode,
           st.guard_mode == 1 ? "MADV_GUARD_INSTALL" : "mprotect",
           under_valgrind ? ", under valgrind" : "");
    CHECK(st.guard_mode == 1 || st.guard_mode == 2);
    never = gr_chan_new(sizeof(long), 0);
    CHECK(never);
    static gr_id sleepers[SLEEPERS];
    for (int i = 0; i < SLEEPERS; i++)
        sleepers[i] = SPAWN(sleeper, NULL);
    for (int i = 0; i < SLEEPERS; i++)
        CHECK_EQ(gr_join(sleepers[i]), 0);
    if (!under_valgrind)
        return;
    CHECK_EQ(st.guard_mode, 2);
    /* The stacks made so far (this goroutine's, the sleepers', which the parked ones
     * reuse) count among the 11,000. */
    long made = 0;
    for (;;) {
        gr_id id = gr_spawn(parked, NULL);
        if (id < 0) {
            CHECK_EQ(id, -EAGAIN);
            break;
        }
        made++;
        if (made > VALGRIND_STACKS)
            FAIL("spawned %ld goroutines under valgrind, past its 11,000 stacks", made);
    }
    st.size = sizeof st;
    CHECK_EQ(gr_stats(&st), 0);
    printf("under valgrind: %ld goroutines parked, then -EAGAIN; %llu mprotect guards\n", made,
           (unsigned long long)st.guards_used);
    CHECK(made >= VALGRIND_STACKS - 100);
    CHECK(st.guards_used <= VALGRIND_STACKS);
}

int main(void)
{
    watchdog(60);
    CHECK_EQ(gr_main(run, NULL), 0);
    /* Under valgrind the process ends with the goroutines still parked (and memcheck's
     * leak check goes over their stacks' guards). */
    printf("ok\n");
    return 0;
}
