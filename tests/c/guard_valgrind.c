/*
 * Guard regions under valgrind (tests/c_tests.rs sets GR_TEST_UNDER_VALGRIND=1 when
 * it runs the programs under memcheck): the runtime makes them with mprotect, which
 * valgrind knows, so memcheck's leak check at exit does not read every word of every
 * guard one caught fault at a time (with MADV_GUARD_INSTALL guards, 2,000 parked
 * goroutines took 55 s to end; 2-4 s with mprotect guards). And it stops at 11,000
 * stacks, with -EAGAIN from gr_spawn, below the count at which valgrind's fixed table
 * of memory segments overflows and it exits (between 12,000 and 16,000 guards).
 *
 * Elsewhere the program checks what holds in every mode: 2,000 goroutines park and
 * the process ends with them parked, and the guard mode is one of the two.
 */
#include "check.h"

#define PARKED 2000
#define VALGRIND_STACKS 11000

static gr_chan *never; /* nothing is ever sent on it */

static void parked(void *arg)
{
    (void)arg;
    long v;
    gr_chan_recv(never, &v);
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
    if (!under_valgrind) {
        for (int i = 0; i < PARKED; i++)
            SPAWN(parked, NULL);
        return; /* main exits with them parked */
    }
    CHECK_EQ(st.guard_mode, 2);
    /* This goroutine's stack, and its spawner's, are among the 11,000. */
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
    /* The goroutines are still parked: the process ends with them (and, under
     * valgrind, runs the leak check over their stacks' guards). */
    printf("ok\n");
    return 0;
}
