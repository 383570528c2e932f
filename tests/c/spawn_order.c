/*
 * The order in which a processor runs what its goroutines spawn (p.rs, lifo.rs): the
 * child goes to `runnext`, and the goroutine it displaces to the P's spawn stack,
 * taken newest first by the owner and oldest first by thieves.
 *
 *   1. depth first: a 10-ary tree of spawns with 100,000 leaves (111,111 goroutines,
 *      each node spawning its children, then receiving their values on a channel of
 *      its own) on one processor never has more than 1,000 goroutines alive at once
 *      (spawned and not yet done: a descriptor and a stack each; 51-76 measured). In
 *      Go's order (the displaced sibling to the back of the run queue) the tree is
 *      expanded almost whole before its leaves run: 8,304 alive.
 *   2. thieves see the spawn stack: on two processors, a goroutine spawns two
 *      spinners that wait for each other without ever parking or yielding; the first
 *      is in the spawn stack while the second runs, so they meet only if the other
 *      processor takes it from there, or sysmon rescues it after ~10 ms (bounded by
 *      5 s). At least half of 20 rounds must meet without sysmon (all 20 need it
 *      when thieves do not look at the spawn stack).
 *   3. no starvation: on one processor, a goroutine left at the bottom of the spawn
 *      stack (a spawn displaced it from runnext) runs although a storm of spawns
 *      keeps the stack's top churning (each storm goroutine spawns one or two more
 *      until the storm is over): its oldest is moved to the ring once it has waited
 *      ~125,000 schedules, and the ring gets a turn after at most 64 picks from
 *      runnext and the spawn stack. The yielder must make 50 yields, which end the
 *      storm; starved, it would end at the watchdog.
 */
#include "check.h"

#include <stdatomic.h>

/* -- 1. depth first */

#define LEAVES 100000
#define ALIVE_BOUND 1000

static atomic_long alive, max_alive;

struct node {
    long num, size;
    gr_chan *out;
};

static void note_alive(long d)
{
    long now = atomic_fetch_add(&alive, d) + d;
    long m = atomic_load(&max_alive);
    while (now > m && !atomic_compare_exchange_weak(&max_alive, &m, now)) {
    }
}

static void tree_node(void *arg)
{
    struct node *n = arg;
    long sum = n->num;
    if (n->size > 1) {
        struct node kids[10];
        gr_chan *c = gr_chan_new(sizeof(long), 0);
        CHECK(c != NULL);
        long step = n->size / 10;
        for (int i = 0; i < 10; i++) {
            kids[i] = (struct node){ n->num + i * step, step, c };
            note_alive(1);
            SPAWN(tree_node, &kids[i]);
        }
        sum = 0;
        for (int i = 0; i < 10; i++) {
            long v;
            CHECK_EQ(gr_chan_recv(c, &v), 0);
            sum += v;
        }
        gr_chan_free(c);
    }
    note_alive(-1);
    CHECK_EQ(gr_chan_send(n->out, &sum), 0);
}

static void depth_first(void *arg)
{
    (void)arg;
    gr_chan *c = gr_chan_new(sizeof(long), 0);
    CHECK(c != NULL);
    struct node root = { 0, LEAVES, c };
    note_alive(1);
    SPAWN(tree_node, &root);
    long sum;
    CHECK_EQ(gr_chan_recv(c, &sum), 0);
    CHECK_EQ(sum, (long)LEAVES * (LEAVES - 1) / 2);
    gr_chan_free(c);
}

/* -- 2. thieves see the spawn stack */

static atomic_int arrived;

static void spinner(void *arg)
{
    (void)arg;
    atomic_fetch_add(&arrived, 1);
    int64_t deadline = now_ns() + latency_bound(5000000000LL);
    while (atomic_load(&arrived) < 2) {
        if (now_ns() > deadline)
            FAIL("the other spinner never ran: nobody took it from the spawn stack");
    }
}

static void stolen(void *arg)
{
    (void)arg;
    atomic_store(&arrived, 0);
    gr_id a = SPAWN(spinner, NULL); /* displaced to the spawn stack by b */
    gr_id b = SPAWN(spinner, NULL); /* runnext: runs once we park in the join */
    CHECK_EQ(gr_join(b), 0);
    CHECK_EQ(gr_join(a), 0);
}

/* -- 3. no starvation */

#define STORM_ALIVE 100
#define TURNS 50

static atomic_long storm_alive, yields_during;
static double storm_ms;
static atomic_int storm_over;

/* Spawns two more while fewer than STORM_ALIVE are alive, else one, until the storm
   is over: the spawn stack is never empty and keeps churning at its top. */
static void storm(void *arg)
{
    (void)arg;
    if (!atomic_load(&storm_over)) {
        int kids = atomic_load(&storm_alive) < STORM_ALIVE ? 2 : 1;
        for (int i = 0; i < kids; i++) {
            atomic_fetch_add(&storm_alive, 1);
            SPAWN(storm, NULL);
        }
    }
    atomic_fetch_sub(&storm_alive, 1);
}

static void yielder(void *arg)
{
    (void)arg;
    while (atomic_load(&yields_during) < TURNS) {
        gr_yield();
        atomic_fetch_add(&yields_during, 1);
    }
    atomic_store(&storm_over, 1);
}

static void no_starvation(void *arg)
{
    (void)arg;
    gr_id y = SPAWN(yielder, NULL);
    gr_yield(); /* the yielder runs, and yields back: it waits in runnext */
    atomic_store(&storm_alive, 1);
    SPAWN(storm, NULL); /* displaces the yielder to the spawn stack's bottom */
    int64_t t0 = now_ns();
    CHECK_EQ(gr_join(y), 0);
    storm_ms = (now_ns() - t0) / 1e6;
}

int main(void)
{
    watchdog(60);
    CHECK_EQ(gr_init(1), 1);
    CHECK_EQ(gr_main(depth_first, NULL), 0);
    printf("depth first: at most %ld of %d goroutines alive at once (bound %d)\n",
           atomic_load(&max_alive), LEAVES + LEAVES / 9, ALIVE_BOUND);
    if (atomic_load(&max_alive) > ALIVE_BOUND)
        FAIL("%ld goroutines alive at once: the tree ran breadth first", atomic_load(&max_alive));

    CHECK_EQ(gr_main(no_starvation, NULL), 0); /* a starved yielder ends at the watchdog */
    CHECK_EQ(gr_wait_all(), 0);
    printf("no starvation: a yielder at the spawn stack's bottom made %d yields in %.1f ms of spawn storm\n",
           TURNS, storm_ms);

    CHECK_EQ(gr_maxprocs(2), 1);
    int rescued = 0;
    for (int r = 0; r < 20; r++) {
        struct gr_stats before = { .size = sizeof before }, after = { .size = sizeof after };
        CHECK_EQ(gr_stats(&before), 0);
        CHECK_EQ(gr_main(stolen, NULL), 0);
        CHECK_EQ(gr_stats(&after), 0);
        rescued += after.sysmon_rescues != before.sysmon_rescues;
    }
    printf("thieves take from the spawn stack: 20 rounds, %d needed sysmon's rescue\n", rescued);
    /* sysmon rescues a P that has not scheduled for ~10 ms (so the spinners meet even
       without thieves); a thief takes the first spinner within microseconds, unless
       the machine is so loaded that the other worker does not run for that long */
    if (rescued > 10)
        FAIL("%d of 20 rounds needed sysmon: thieves did not take from the spawn stack", rescued);
    puts("ok");
    return 0;
}
